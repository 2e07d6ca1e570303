"""The registry path on this machine, end to end (issue 14): a real registry (Debian's
docker-registry, TLS from a CA of its own, htpasswd) started by setup/registry.sh, the REAL
stages 1-5 run with --registry against it (pytester, a namespace of our own), the local
cluster pulling from it by digest with an image pull Secret, nothing loaded into its node.
Then seeded faults, each caught by the right gate with the right fix:

  fault                               driven by                 expected
  wrong password                      real stages 1+4           refused before any build (stage 1)
  a tag that was never pushed         deploy.deploy, frontend   ImagePull:not found < 30 s, rolled back
  the nodes do not trust the CA       deploy.deploy, frontend   ImagePull:tls < 30 s, rolled back
  the registry stopped mid-deploy     deploy.deploy, frontend   ImagePull:unreachable < 30 s, rolled back

After each fault the previous frontend release serves again (its health path answers 200
through the API server's service proxy). Detection times go to reports/registry-faults.json.

Run: .venv/bin/python -m pytest tests/test_registry.py -o addopts= -p no:cacheprovider
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pipeline_lab
import pytest
from pipeline_lab import InnerRun

from shipcheck import commands, config, deploy, helm as helm_mod, kube, plan, registry, tools

# Local cluster only: the nodes trust the lab registry's CA through the local cluster's containerd.
pytestmark = [pytest.mark.cluster, pytest.mark.docker, pipeline_lab.local_only]

REPO = pipeline_lab.REPO
SETUP = REPO / "setup" / "registry.sh"
SEEDED = Path(__file__).resolve().parent / "seeded" / "deploy"
NAMESPACE = f"shipcheck-registry-{secrets.token_hex(3)}"
PATH_PREFIX = "shipcheck-lab"  # under the registry: our images only
FRONTEND = "todo-frontend"
DETECT_LIMIT_S = 30.0
STAGES = ["stages/test_01_build.py", "stages/test_02_containers.py", "stages/test_03_charts.py",
          "stages/test_04_deploy.py", "stages/test_05_health.py"]
BASE_SETS = (f"namespace={NAMESPACE}", "timeouts_s.deploy=120",
             f"components.todo-backend.values_files=[{SEEDED / 'one-replica.yaml'}]",
             f"components.{FRONTEND}.values_files=[{SEEDED / 'one-replica.yaml'}]")


def registry_script(*args: str) -> commands.CommandResult:
    return commands.run(["bash", str(SETUP), *args], timeout_s=300, what=f"setup/registry.sh {' '.join(args)}")


# --- the registry ------------------------------------------------------------------------------
class LabRegistry:
    """The running registry: its address, CA, and credentials (read from set-up's root-only
    file, masked from the moment they are read; never in a report)."""

    def __init__(self) -> None:
        info = dict(line.split("=", 1) for line in registry_script("info").stdout.split())
        self.host, self.ca = info["REGISTRY_HOST"], info["REGISTRY_CA"]
        self.node_trust = Path(info["REGISTRY_NODE_TRUST"])
        creds = dict(line.split("=", 1) for line in Path(info["REGISTRY_CREDENTIALS"]).read_text().split())
        commands.redact(creds["REGISTRY_PASSWORD"])
        self.env = {"REGISTRY_USERNAME": creds["REGISTRY_USERNAME"], "REGISTRY_PASSWORD": creds["REGISTRY_PASSWORD"]}
        self.reference = f"{self.host}/{PATH_PREFIX}"

    def __repr__(self) -> str:
        return f"<LabRegistry {self.reference}>"

    @property
    def credentials(self) -> registry.Credentials:
        return registry.Credentials(self.env["REGISTRY_USERNAME"], self.env["REGISTRY_PASSWORD"])

    def args(self) -> tuple[str, ...]:
        return (f"--registry={self.reference}", f"--registry-ca={self.ca}")


NODE_CONTAINERD_CONFIG = Path("/var/lib/shipcheck-cluster/containerd.toml")


def start_lab_registry() -> LabRegistry:
    """The registry, started; skips when the local cluster's containerd does not read the
    per-registry trust (a cluster started by a set-up older than its config_path)."""
    config_text = NODE_CONTAINERD_CONFIG.read_text() if NODE_CONTAINERD_CONFIG.is_file() else ""
    if 'config_path = "/etc/shipcheck-containerd/certs.d"' not in config_text:
        pytest.skip(f"the local cluster's containerd ({NODE_CONTAINERD_CONFIG}) does not read "
                    "/etc/shipcheck-containerd/certs.d (config_path): it was started by an older setup/local-cluster.sh; "
                    "restart it with this one to let its node trust the registry's CA")
    registry_script("start")
    return LabRegistry()


@pytest.fixture(scope="module")
def lab_registry(lab_cluster) -> LabRegistry:
    return start_lab_registry()


@pytest.fixture(scope="module")
def fault_table(pytestconfig):
    rows: list[dict] = []
    yield rows
    if not rows:
        return
    out = REPO / "reports"
    out.mkdir(exist_ok=True)
    (out / "registry-faults.json").write_text(json.dumps({"namespace": NAMESPACE, "limit_s": DETECT_LIMIT_S,
                                                          "faults": rows}, indent=2) + "\n")
    header = f"{'fault':<34} {'gate / signal':<26} {'detected':>9}  recovery"
    lines = ["", f"registry faults (limit {DETECT_LIMIT_S:g} s; reports/registry-faults.json)", header, "-" * len(header)]
    lines += [f"{r['fault']:<34} {r['signal']:<26} {r['detected_after_s']:>7} s  {r['recovery']}" for r in rows]
    pipeline_lab.show_at_end(pytestconfig, lines)


def run(pytester, lab_registry: LabRegistry, stages: list[str], *sets: str, env: dict | None = None,
        prebuilt: bool = True, name: str = "inner") -> InnerRun:
    return pipeline_lab.run_stages(pytester, stages, (*BASE_SETS, *sets), args=lab_registry.args(),
                                   env={**lab_registry.env, **(env or {})}, prebuilt=prebuilt, name=name)


# --- the green path -----------------------------------------------------------------------------
@pytest.fixture
def baseline(pytester, state, lab_registry, lab_namespace) -> InnerRun:
    """Stages 1-5 with --registry: pushed, pulled by digest, green."""
    if "baseline" not in state:
        state["baseline"] = run(pytester, lab_registry, STAGES)
    inner = state["baseline"]
    bad = {t: c.outcome for t, c in inner.cases.items() if c.outcome in ("failed", "error")}
    if not inner.cases or bad:
        pytest.fail(f"stages 1-5 with --registry are not green (rc {inner.rc}): {bad}\n" + inner.tail(80),
                    pytrace=False)
    return inner


def test_stages_1_to_5_green_pulling_from_the_registry(baseline, lab_registry):
    skipped = {t: c.text.strip().splitlines()[0] for t, c in baseline.cases.items() if c.outcome == "skipped"}
    # Nothing on the registry path may skip: the push and digest gates ran for every component.
    assert baseline.outcome("test_registry_answers_and_accepts_the_credentials") == "passed"
    for component in ("todo-postgres", "todo-backend", FRONTEND):
        assert baseline.outcome(f"test_image_pushed_and_digest_read_back[{component}]") == "passed", skipped
        assert baseline.outcome(f"test_pods_run_the_stage1_images[{component}]") == "passed", skipped
    pushes = baseline.figures["pushes"]
    assert sorted(r["image"] for r in pushes) == sorted(f"{lab_registry.reference}/{c}:v1.0.0"
                                                        for c in ("todo-postgres", "todo-backend", FRONTEND))
    assert all(r["ok"] and r["digest"].startswith("sha256:") for r in pushes)
    # No image was loaded into the node on this path (the loader records every load).
    assert "image loads" not in baseline.figures, baseline.figures.get("image loads")


def test_pods_pull_by_digest_with_the_pull_secret(baseline, lab_registry, lab_cluster):
    apis = kube.KubeApis.connect(lab_cluster.kubeconfig, None)
    digests = {r["image"].rsplit("/", 1)[1].split(":")[0]: r["digest"] for r in baseline.figures["pushes"]}
    pods = [p for p in apis.core.list_namespaced_pod(NAMESPACE).items if not p.metadata.deletion_timestamp
            and (p.metadata.labels or {}).get("app.kubernetes.io/instance") in digests
            and not (p.metadata.annotations or {}).get("helm.sh/hook")]
    assert pods
    for pod in pods:
        release = pod.metadata.labels["app.kubernetes.io/instance"]
        assert [s.name for s in pod.spec.image_pull_secrets or []] == [registry.PULL_SECRET_NAME]
        for container in pod.spec.containers:
            assert container.image.startswith(f"{lab_registry.reference}/{release}:v1.0.0@sha256:")
            assert container.image_pull_policy == "IfNotPresent"
        for status in pod.status.container_statuses:
            assert status.image_id.endswith(f"@{digests[release]}"), (pod.metadata.name, status.image_id)
    secret = apis.core.read_namespaced_secret(registry.PULL_SECRET_NAME, NAMESPACE)
    assert secret.type == "kubernetes.io/dockerconfigjson"


def test_no_registry_secret_in_the_reports(baseline, lab_registry):
    password = lab_registry.env["REGISTRY_PASSWORD"]
    texts = [baseline.html, json.dumps(baseline.figures), baseline.output]
    texts += [c.text + c.system_out for c in baseline.cases.values()]
    assert not any(password in t for t in texts)


# --- fault: wrong password ----------------------------------------------------------------------------
def test_wrong_password_is_refused_before_any_build(pytester, baseline, lab_registry, fault_table):
    """The real stage 1 (its own `builds` fixture, not the lab's prebuilt one) with a wrong
    password: the registry refuses it, nothing is built or pushed, later stages skip."""
    start = time.monotonic()
    inner = run(pytester, lab_registry, ["stages/test_01_build.py", "stages/test_04_deploy.py"],
                env={"REGISTRY_PASSWORD": "not-the-password-" + secrets.token_hex(4)}, prebuilt=False, name="wrong-pw")
    seconds = time.monotonic() - start
    case = inner.failure("test_registry_answers_and_accepts_the_credentials")
    assert f"registry {lab_registry.reference}: credentials refused as shipcheck" in case.text, case.text[:1500]
    assert "Fix: check the user and password" in case.text
    output = inner.output
    assert "building 3 images" not in output and "pushing " not in output, inner.tail()
    assert inner.outcome("test_image_built_and_tagged[todo-backend]") in ("error", "failed")
    assert inner.outcome("test_release_deployed[todo-backend]") == "skipped"
    fault_table.append({"fault": "wrong password", "signal": "stage 1: credentials refused",
                        "detected_after_s": round(seconds, 1), "recovery": "nothing built, pushed or deployed"})


# --- image pull faults on the frontend release ----------------------------------------------------------
class Lab:
    """The frontend release in our namespace, and the ways to deploy it with a broken image."""

    def __init__(self, lab_cluster, kubectl_argv, lab_registry: LabRegistry, push: dict):
        self.cfg = config.load(REPO / "shipcheck.yaml", list(BASE_SETS))
        self.component = self.cfg.components[FRONTEND]
        self.helm = helm_mod.Helm(tools.binary("helm"), lab_cluster.helm_args(), NAMESPACE)
        self.apis = kube.KubeApis.connect(lab_cluster.kubeconfig, None)
        self.target = deploy.Target(self.helm, self.apis, kubectl_argv, 120, pulls_expected=True)
        self.registry = lab_registry
        self.repository, self.digest = push["image"].rsplit(":", 1)[0], push["digest"]
        self.kube_version = kube.server_version(self.apis)

    def plan(self, repository: str, tag: str) -> plan.ReleasePlan:
        return plan.make(self.helm, self.component, namespace=NAMESPACE, profile="small", kube_version=self.kube_version,
                         image_repository=repository, image_tag=tag, annotations={}, existing_secret=None,
                         pull_secrets=[registry.PULL_SECRET_NAME])

    def deploy(self, repository: str, tag: str, on_change=None) -> deploy.Outcome:
        return deploy.deploy(self.target, self.plan(repository, tag), on_change=on_change)

    def revision(self) -> int:
        return helm_mod.last_deployed_revision(self.helm.history(FRONTEND))

    def serving(self) -> int | None:
        """The frontend's health path through the API server's service proxy: its status."""
        return kube.service_request(self.apis, NAMESPACE, FRONTEND, self.component.port, self.component.health_path)[0]


@pytest.fixture
def lab(baseline, state, lab_cluster, kubectl_argv, lab_registry) -> Lab:
    if "lab" not in state:
        push = next(r for r in baseline.figures["pushes"] if f"/{FRONTEND}:" in r["image"])
        state["lab"] = Lab(lab_cluster, kubectl_argv, lab_registry, push)
    lab = state["lab"]
    assert lab.serving() == 200, "before the fault, the frontend does not serve"
    return lab


def check_pull_fault(lab: Lab, outcome: deploy.Outcome, previous: int, cause: str, fault: str, table: list) -> None:
    reason = f"ImagePull:{cause}"
    table.append({"fault": fault, "signal": reason if reason in [p.reason for p in outcome.problems] else
                  ",".join(p.reason for p in outcome.problems) or "-",
                  "detected_after_s": None if outcome.detected_after_s is None else round(outcome.detected_after_s, 1),
                  "recovery": outcome.recovery})
    assert not outcome.ok, outcome
    assert reason in [p.reason for p in outcome.problems], (outcome.message, outcome.problems)
    assert outcome.detected_after_s is not None and outcome.detected_after_s <= DETECT_LIMIT_S, outcome.detected_after_s
    assert deploy.rollout.FIX[reason] in outcome.fix
    assert outcome.recovery.endswith(f"rolled back to revision {previous}: rolled out and serving"), outcome.recovery
    assert lab.serving() == 200, "after the rollback, the previous frontend does not serve"


def test_a_tag_never_pushed_is_not_found(lab, fault_table):
    previous = lab.revision()
    outcome = lab.deploy(lab.repository, "v0.0.0-never-pushed")
    check_pull_fault(lab, outcome, previous, "not found", "a tag that was never pushed", fault_table)


def test_nodes_not_trusting_the_registry_ca_is_tls(lab, fault_table):
    """The hosts.toml that makes the node's containerd trust the CA is removed for this test.
    A repository name the node has never pulled forces a pull (same digest, new name)."""
    previous = lab.revision()
    registry_script("untrust", "nodes")
    try:
        assert not lab.registry.node_trust.exists()
        outcome = lab.deploy(f"{lab.repository}-tls-{secrets.token_hex(3)}", f"v1.0.0@{lab.digest}")
    finally:
        registry_script("trust", "nodes")
    check_pull_fault(lab, outcome, previous, "tls", "the nodes do not trust the CA", fault_table)


def test_registry_stopped_mid_deploy_is_unreachable(lab, fault_table):
    """The registry stops when helm is about to upgrade (deploy's on_change), after the
    plan was made: the pull then finds nobody at the address."""
    previous = lab.revision()
    try:
        outcome = lab.deploy(f"{lab.repository}-down-{secrets.token_hex(3)}", f"v1.0.0@{lab.digest}",
                             on_change=lambda: registry_script("stop"))
    finally:
        registry_script("start")
    check_pull_fault(lab, outcome, previous, "unreachable", "the registry stopped mid-deploy", fault_table)

