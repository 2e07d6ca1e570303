"""Seeded faults in stage 4 (deploy), on the real cluster: each one fails the stage fast,
names its signal, carries its evidence, and leaves the previous release serving.

A namespace of our own (shipcheck-faults-XXXXXX, deleted at the end) gets a good baseline
from the REAL stage 4 (pytester, small profile, one replica per app). The faults then hit
the backend release one after another, each starting from the good release the previous
one left behind:

  fault                        how it is driven                      expected signal
  crashing image               real stage 4 (pytester)               CrashLoopBackOff
  resources over the quota     real stage 4 (pytester)               fit check refuses, nothing deployed
  readiness on a wrong path    deploy.deploy_release                 Unhealthy (readiness past failureThreshold)
  resources over the quota     deploy.deploy_release (no fit check)  FailedCreate (exceeded quota)
  helm killed mid-upgrade      helm, then deploy.deploy_release      recovery from pending-upgrade
  image never loaded           deploy.deploy_release                 ErrImageNeverPull

While each bad upgrade is attempted and rolled back, a bounded request loop goes through
the API server's service proxy to the frontend's /api/health and, through the frontend, to
a backend path (tasks, from PostgreSQL): no request may fail. Detection times, recoveries
and request counts go to reports/fault-detection.json and a table at the end of the run.

Run: .venv/bin/python -m pytest tests/test_deploy_faults.py -o addopts= -p no:cacheprovider
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pipeline_lab
import pytest
from pipeline_lab import InnerRun, http_status

from shipcheck import (
    charts,
    commands,
    config,
    deploy,
    images,
    kube,
    releases,
    traffic,
)

pytestmark = pytest.mark.cluster

REPO = pipeline_lab.REPO
SEEDED = Path(__file__).resolve().parent / "seeded" / "deploy"
NAMESPACE = f"shipcheck-faults-{secrets.token_hex(3)}"
BACKEND, FRONTEND = "todo-backend", "todo-frontend"
DETECT_LIMIT_S = 30.0  # a fatal signal must stop the deploy within this
FAULT_TIMEOUT_S = 120  # helm's timeout for a bad upgrade: far above the limit, so a miss shows as a miss
TASKS_PATH = "/api/shipcheck-faults/tasks"  # a backend path, through the frontend's /api proxy
CRASH_IMAGE = "todo-backend-crash"  # built FROM the stage-1 backend image (tests/seeded/deploy/crash.Dockerfile)
LOCAL_CONTAINERD = "/run/shipcheck-containerd/containerd.sock"  # the local cluster's own containerd
NO_OP_GATE = "test_redeploy_without_change_is_a_no_op"  # judged on its own test below

# Every run in our namespace: one replica per app (the node's 2 CPUs are shared with the
# pipeline's own namespace), and a deploy timeout that bounds a missed signal.
BASE_SETS = (f"namespace={NAMESPACE}", "timeouts_s.deploy=120",
             f"components.{BACKEND}.values_files=[{SEEDED / 'one-replica.yaml'}]",
             f"components.{FRONTEND}.values_files=[{SEEDED / 'one-replica.yaml'}]")

def run_stage4(pytester: pytest.Pytester, *sets: str, profile: str = "small") -> InnerRun:
    """The real stages/test_04_deploy.py in a subprocess, on the app's shipcheck.yaml with our
    namespace and `sets` (--set) over it; JUnit, HTML and summary.json are read back."""
    return pipeline_lab.run_stages(pytester, ["stages/test_04_deploy.py"], (*BASE_SETS, *sets), profile=profile)


# --- the lab: our namespace, its good release, and the ways to hit it -------------------------------
@dataclass
class Good:
    """The backend release as the baseline left it: what every fault must leave serving."""
    tree: dict  # helm get values: the values files' and the pipeline's, merged
    files: tuple[Path, ...]  # values files given before the tree (one-replica.yaml, values-small.yaml)
    manifest: str
    image: str


@dataclass
class Lab:
    helm: releases.Helm
    apis: deploy.KubeApis
    kubectl: list[str]
    frontend_url: str  # through the API server's service proxy: a ready endpoint per request
    good: Good
    chart: Path

    def __repr__(self) -> str:
        return f"<Lab namespace {self.helm.namespace}>"

    @property
    def urls(self) -> list[str]:
        return [self.frontend_url + "/api/health", self.frontend_url + TASKS_PATH]

    def deploy(self, tree: dict, timeout_s: float = FAULT_TIMEOUT_S) -> tuple[deploy.Outcome, traffic.LoopResult]:
        """deploy_release of the backend with `tree`, under a request loop."""
        with traffic.RequestLoop(self.urls, interval_s=0.2, max_s=300) as loop:
            time.sleep(1.0)  # a few requests against the good release first
            outcome = deploy.deploy_release(self.helm, self.apis, self.kubectl, BACKEND, self.chart, tree,
                                            self.good.files, timeout_s)
            time.sleep(1.0)
        return outcome, loop.result

    def history(self) -> list[dict]:
        return self.helm.history(BACKEND)

    def serving_problems(self) -> list[str]:
        """Why the backend is NOT back at its good release, Ready and serving ([] when it is)."""
        problems = []
        history = self.history()
        if not history or history[-1]["status"] != "deployed":
            problems.append(f"helm history ends with {history[-1] if history else 'nothing'}, expected deployed")
        if self.helm.values(BACKEND) != self.good.tree:
            problems.append("the deployed values are not the good release's")
        if not releases.manifests_equal(self.helm.manifest(BACKEND), self.good.manifest):
            problems.append("the deployed manifest is not the good release's")
        _, pods, _ = deploy.release_objects(self.apis, self.helm.namespace, BACKEND)
        pods = deploy.serving_pods(pods)
        for pod in pods:
            statuses = pod["status"].get("containerStatuses") or [{}]
            if pod["status"].get("phase") != "Running" or not all(c.get("ready") for c in statuses):
                problems.append(f"pod {pod['metadata']['name']} not Running and Ready ({pod['status'].get('phase')})")
            if any(c.get("image", "").split("/")[-1] != self.good.image for c in statuses):
                problems.append(f"pod {pod['metadata']['name']} runs {[c.get('image') for c in statuses]}, "
                                f"expected {self.good.image}")
        if len(pods) != 1:
            problems.append(f"{len(pods)} serving backend pods, expected 1")
        for url in self.urls:
            status = http_status(url)
            if status != 200:
                problems.append(f"GET {url.removeprefix(self.frontend_url)} through the frontend: {status}")
        return problems


def seeded_values(tree: dict, name: str) -> dict:
    """The good values with tests/seeded/deploy/`name` merged over them."""
    return pipeline_lab.seeded_values(tree, SEEDED / name)


def evidence_titles(outcome: deploy.Outcome) -> list[str]:
    return [title for title, _ in outcome.evidence]


def evidence_text(outcome: deploy.Outcome, starts: str) -> str:
    return "\n".join(text for title, text in outcome.evidence if title.startswith(starts))


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def fault_table(pytestconfig):
    """Rows of measured detections; written to reports/fault-detection.json and shown at the end."""
    rows: list[dict] = []
    yield rows
    if not rows:
        return
    out = REPO / "reports"
    out.mkdir(exist_ok=True)
    (out / "fault-detection.json").write_text(json.dumps({"namespace": NAMESPACE, "limit_s": DETECT_LIMIT_S,
                                                          "faults": rows}, indent=2) + "\n")
    header = f"{'fault':<28} {'driven by':<19} {'signal':<22} {'detected':>9} {'requests':>9} {'failed':>6}  recovery"
    lines = ["", f"seeded deploy faults (limit {DETECT_LIMIT_S:g} s; reports/fault-detection.json)", header,
             "-" * len(header)]
    for r in rows:
        detected = (f"{r['detected_after_s']:.1f} s" if r["detected_after_s"] is not None
                    else f"({r['recovered_after_s']:.1f} s)" if r.get("recovered_after_s") is not None else "-")
        lines.append(f"{r['fault']:<28} {r['driven_by']:<19} {', '.join(r['signals']) or '-':<22} {detected:>9} "
                     f"{r['requests']:>9} {r['failed_requests']:>6}  {r['recovery']}")
    pipeline_lab.show_at_end(pytestconfig, lines)


@pytest.fixture(scope="module")
def lab_cfg() -> config.Config:
    return config.load(REPO / "shipcheck.yaml", list(BASE_SETS))


@pytest.fixture(scope="module")
def crash_image(local_cluster, lab_cfg) -> str:
    """todo-backend-crash:<version>: the stage-1 backend image with a start command that
    exits 1. Removed afterwards from the engine and the cluster (only this tag)."""
    import docker

    engine = docker.from_env(timeout=120)
    base = lab_cfg.image_ref(lab_cfg.components[BACKEND])
    if not engine.images.list(name=base):
        pytest.fail(f"{base} is not in the engine: run stage 1 first (./pipeline test runs the stages before these tests)")
    ref = f"{CRASH_IMAGE}:{lab_cfg.version}"
    commands.run([*images.docker_cli(), "build", "-q", "-f", str(SEEDED / "crash.Dockerfile"), "--build-arg",
                  f"BASE={base}", "-t", ref, str(SEEDED)], env={"DOCKER_BUILDKIT": "1"}, timeout_s=300,
                 what=f"building {ref}")
    yield ref
    engine.images.remove(ref, force=True)
    if Path(LOCAL_CONTAINERD).exists():  # the copy setup/local-cluster.sh loaded into the cluster's containerd
        commands.run(["ctr", "--address", LOCAL_CONTAINERD, "-n", "k8s.io", "images", "rm", f"docker.io/library/{ref}"],
                     check=False, timeout_s=60)


@pytest.fixture
def baseline(pytester, state, lab_namespace) -> InnerRun:
    """The real stage 4, green, in our namespace: the good release every fault starts from."""
    if "baseline" not in state:
        state["baseline"] = run_stage4(pytester)
    inner = state["baseline"]
    bad = {t: c.outcome for t, c in inner.cases.items() if c.outcome != "passed" and t != NO_OP_GATE}
    if not inner.cases or bad:
        pytest.fail(f"the baseline stage-4 run is not green (rc {inner.result.ret}): {bad}\n" + inner.tail(),
                    pytrace=False)
    return inner


@pytest.fixture
def lab(baseline, state, local_cluster, kubectl_argv, lab_cfg, frontend_url) -> Lab:
    if "lab" not in state:
        helm = releases.Helm(charts.helm_binary(), local_cluster.helm_args(), NAMESPACE)
        component = lab_cfg.components[BACKEND]
        files = charts.release_values(lab_cfg, component, extra_files=(charts.profile_file(component, "small"),)).files
        good = Good(helm.values(BACKEND), files, helm.manifest(BACKEND), lab_cfg.image_ref(component))
        state["lab"] = Lab(helm, deploy.KubeApis.connect(local_cluster.kubeconfig, None), kubectl_argv,
                           frontend_url, good, component.chart)
    lab = state["lab"]
    problems = lab.serving_problems()
    assert not problems, f"before the fault, the good release is not serving: {problems}"
    return lab


def record(table: list, fault: str, driven_by: str, outcome: deploy.Outcome | None, loop: traffic.LoopResult | None,
           **extra) -> None:
    table.append({"fault": fault, "driven_by": driven_by,
                  "signals": list(dict.fromkeys(outcome.reasons)) if outcome else [],
                  "detected_after_s": None if outcome is None or outcome.detected_after_s is None
                  else round(outcome.detected_after_s, 1),
                  "recovery": outcome.recovery if outcome else "", "requests": loop.total if loop else 0,
                  "failed_requests": loop.failed if loop else 0, "request_errors": dict(loop.errors) if loop else {},
                  "evidence": evidence_titles(outcome) if outcome else [], **extra})


# --- the good baseline ----------------------------------------------------------------------------
def test_the_good_baseline_passes_every_stage4_gate(baseline, lab):
    """The real stage 4 deploys the three releases green (the fixture checks every gate but
    the no-change re-run, judged on its own below)."""
    assert [(r["release"], r["ok"]) for r in baseline.figures["deploys"]][:3] == [
        ("todo-postgres", True), (BACKEND, True), (FRONTEND, True)]
    assert [h["status"] for h in lab.history()] == ["deployed"]


def test_a_no_change_rerun_with_values_files_is_a_no_op(baseline):
    case = baseline.cases[NO_OP_GATE]
    assert case.outcome == "passed", case.text[:600]


# --- 1 + 5: a crashing image, through the real stage 4, under traffic ------------------------------------
@dataclass
class CrashRun:
    inner: InnerRun
    loop: traffic.LoopResult
    previous_revision: int

    def __repr__(self) -> str:
        return f"<CrashRun {self.inner!r} {self.loop}>"


@pytest.fixture
def crash_run(pytester, lab, crash_image, state, fault_table) -> CrashRun:
    """Stage 4 again over the good release, as if stage 1 had built a backend that exits 1 at
    start, while requests go through the frontend."""
    if "crash" not in state:
        previous = int(lab.history()[-1]["revision"])
        with traffic.RequestLoop(lab.urls, interval_s=0.2, max_s=400) as loop:
            inner = run_stage4(pytester, f"components.{BACKEND}.image={CRASH_IMAGE}")
        state["crash"] = CrashRun(inner, loop.result, previous)
        row = (inner.deploys(BACKEND) or [{}])[0]
        case = inner.cases.get(f"test_release_deployed[{BACKEND}]")
        said = case.text.split("Fix:")[0] if case else ""
        fault_table.append({"fault": "crashing image", "driven_by": "stage 4 (pytester)",
                            "signals": [s for s in kube.FIX if s in said],
                            "detected_after_s": row.get("failure_detected_after_s"),
                            "recovery": row.get("recovery", ""), "requests": loop.result.total,
                            "failed_requests": loop.result.failed, "request_errors": dict(loop.result.errors),
                            "evidence": sorted(set(re.findall(rf"Captured stdout diagnostics: {BACKEND} at failure: "
                                                              r"(.+?) -*\\n", inner.html)))})
    return state["crash"]


def test_crashing_image_fails_stage4_fast_and_the_previous_release_keeps_serving(crash_run, lab):
    inner = crash_run.inner
    case = inner.failure(f"test_release_deployed[{BACKEND}]")
    assert f"release {BACKEND}: container {BACKEND}: CrashLoopBackOff" in case.text, case.text[:2000]
    assert "last exit code 1 (Error)" in case.text
    assert "Fix: read the container log below; fix the crash or its configuration" in case.text
    assert (f"Previous release: rolled back to revision {crash_run.previous_revision}: rolled out and serving"
            in case.text)
    row = inner.deploys(BACKEND)[0]
    assert row["ok"] is False and row["failure_detected_after_s"] <= DETECT_LIMIT_S, row
    # The rest of the stage judged what it should: the fit check passed, the frontend was never touched.
    assert inner.outcome("test_releases_fit_quota_and_nodes") == "passed"
    assert inner.outcome("test_release_deployed[todo-postgres]") == "passed"
    assert inner.outcome(f"test_release_deployed[{FRONTEND}]") == "skipped"
    assert inner.outcome(f"test_rolled_out[{BACKEND}]") == "skipped"
    # The previous release kept serving throughout, and serves now.
    assert crash_run.loop.total > 0 and crash_run.loop.failed == 0, f"during the bad upgrade: {crash_run.loop}"
    problems = lab.serving_problems()
    assert not problems, f"after the rollback: {problems}"


def test_crashing_image_evidence_is_in_the_html_report(crash_run):
    """Taken at the failure, before the rollback: the crashed container's own log (previous
    container too), the pod's description, the events and helm history."""
    html = crash_run.inner.html
    at_failure = f"Captured stdout diagnostics: {BACKEND} at failure: "
    for title, then in ((rf"log {BACKEND}-[a-z0-9]+-[a-z0-9]+/{BACKEND} \(previous container\)",
                         "shipcheck seeded crash: refusing to start"),
                        (rf"log {BACKEND}-[a-z0-9]+-[a-z0-9]+/{BACKEND}", "shipcheck seeded crash: refusing to start"),
                        (f"describe pods of {BACKEND}", "Name: "),
                        (f"helm history {BACKEND}", "REVISION"),
                        (f"events in {NAMESPACE} \\(oldest first\\)", "LAST SEEN")):
        framed = re.escape(at_failure) + title + r" -*(\\n|\n)\s*" + re.escape(then)
        assert re.search(framed, html), f"no section {at_failure}{title} starting with {then!r} in the HTML report"
    assert "Back-off restarting failed container" in html  # the kubelet's BackOff events
    assert re.search(r"todo-backend-[a-z0-9]+-[a-z0-9]+ +0/1 +CrashLoopBackOff", html)  # kubectl get pods


def test_crashing_image_evidence_is_in_the_junit_report(crash_run):
    case = crash_run.inner.failure(f"test_release_deployed[{BACKEND}]")
    assert "shipcheck seeded crash: refusing to start" in case.system_out, case.system_out[:300]
    assert "Back-off restarting failed container" in case.system_out


# --- 3a: over the quota, refused before anything is deployed -----------------------------------------
def test_over_quota_is_refused_by_the_fit_check_before_deploying(pytester, lab, fault_table):
    before = lab.history()
    over = (f"components.{BACKEND}.values_files=[{SEEDED / 'one-replica.yaml'}, {SEEDED / 'over-quota.yaml'}]")
    inner = run_stage4(pytester, over, profile="defaults")
    case = inner.failure("test_releases_fit_quota_and_nodes")
    fault_table.append({"fault": "over quota (fit check)", "driven_by": "stage 4 (pytester)",
                        "signals": ["fit check"], "detected_after_s": round(inner.cases[
                            "test_namespace_and_quota"].seconds, 1), "recovery": "nothing deployed",
                        "requests": 0, "failed_requests": 0, "request_errors": {}, "evidence": []})
    quota = f"{NAMESPACE}-quota"
    assert "profile defaults:" in case.text and "would not fit, so nothing was deployed" in case.text
    # The measured value, the limit and the fix.
    at_rest = (f"at rest: requests.cpu 3.5 > quota 3 (todo-postgres 0.25 + {BACKEND} 3 + {FRONTEND} 0.25). "
               f"Fix: lower resources.requests.cpu in the releases' values, or raise {quota}")
    assert at_rest in case.text, case.text[:3000]
    assert f"{BACKEND} rolling update: requests.cpu 6.5 > quota 3 (at rest 3.5 + surge pod 3)" in case.text
    for release in ("todo-postgres", BACKEND, FRONTEND):
        assert inner.outcome(f"test_release_deployed[{release}]") == "skipped"
    assert inner.figures.get("deploys") is None  # nothing was attempted
    assert lab.history() == before and not lab.serving_problems()


# --- 2, 3b, 6, 4: deploy_release driven directly -----------------------------------------------------
@dataclass
class Attempt:
    """One bad upgrade of the backend over the good release, and what it left."""
    outcome: deploy.Outcome
    loop: traffic.LoopResult
    afterwards: list[str]  # Lab.serving_problems() right after it
    started_s: float  # wall clock, for "events since the bad upgrade"

    def __repr__(self) -> str:
        return f"<Attempt ok={self.outcome.ok} reasons={sorted(set(self.outcome.reasons))} {self.loop}>"


def attempt(lab: Lab, state: dict, fault_table: list, fault: str, seeded: str) -> Attempt:
    """deploy_release with tests/seeded/deploy/`seeded` over the good values, once per module."""
    if seeded not in state:
        started = time.time()
        outcome, loop = lab.deploy(seeded_values(lab.good.tree, seeded))
        record(fault_table, fault, "deploy_release", outcome, loop)
        state[seeded] = Attempt(outcome, loop, lab.serving_problems(), started)
    return state[seeded]


def check_failed_on(tried: Attempt, signal: str, says: str) -> None:
    """The bad upgrade failed on `signal`, with the evidence taken before the rollback, and the
    good release served every request throughout and serves now."""
    __tracebackhide__ = True
    outcome = tried.outcome
    assert not outcome.ok, f"the bad upgrade succeeded: {outcome}"
    assert signal in outcome.reasons and says in outcome.message, (outcome.reasons, outcome.message)
    titles = evidence_titles(outcome)
    for wanted in (f"events in {NAMESPACE}", f"pods in {NAMESPACE}", f"describe pods of {BACKEND}",
                   f"helm status {BACKEND}", f"helm history {BACKEND}", "log "):
        assert any(t.startswith(wanted) for t in titles), f"no evidence {wanted!r} in {titles}"
    assert "REVISION" in evidence_text(outcome, f"helm history {BACKEND}")
    assert outcome.previous_revision is not None and outcome.recovery.startswith(
        f"rolled back to revision {outcome.previous_revision}: "), outcome.recovery
    assert tried.loop.total > 0 and tried.loop.failed == 0, f"during the bad upgrade: {tried.loop}"
    assert not tried.afterwards, f"after the rollback: {tried.afterwards}"


def check_detected_in_time(tried: Attempt) -> None:
    __tracebackhide__ = True
    seconds = tried.outcome.detected_after_s
    assert seconds is not None and seconds <= DETECT_LIMIT_S, (
        f"{tried.outcome.reasons[:1]} detected after {seconds:.1f} s, limit {DETECT_LIMIT_S:g} s: "
        f"{tried.outcome.message[:300]}")


def check_reported_rolled_out(tried: Attempt) -> None:
    __tracebackhide__ = True
    expected = f"rolled back to revision {tried.outcome.previous_revision}: rolled out and serving"
    assert tried.outcome.recovery == expected, tried.outcome.recovery


READINESS = ("readiness on /nope", "readiness-wrong-path.yaml")
OVER_QUOTA = ("over quota (no fit check)", "over-quota.yaml")
NEVER_LOADED = ("image never loaded", "never-loaded.yaml")


def test_readiness_on_a_wrong_path_fails_and_the_previous_release_keeps_serving(lab, state, fault_table):
    tried = attempt(lab, state, fault_table, *READINESS)
    check_failed_on(tried, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")
    assert "(failureThreshold 3)" in tried.outcome.message
    assert "Readiness probe failed" in evidence_text(tried.outcome, f"describe pods of {BACKEND}")
    check_reported_rolled_out(tried)


def test_readiness_on_a_wrong_path_is_detected_within_30_s(lab, state, fault_table):
    check_detected_in_time(attempt(lab, state, fault_table, *READINESS))


def test_over_quota_without_the_fit_check_is_a_failed_create_within_30_s(lab, state, fault_table):
    tried = attempt(lab, state, fault_table, *OVER_QUOTA)
    check_failed_on(tried, "FailedCreate", "exceeded quota")  # and rolled back, Ready and serving (see below)
    check_detected_in_time(tried)
    assert f"{NAMESPACE}-quota" in tried.outcome.message
    assert "requested: limits.cpu=3,requests.cpu=3" in tried.outcome.message
    assert "exceeded quota" in evidence_text(tried.outcome, f"events in {NAMESPACE}")
    assert "requests.cpu" in evidence_text(tried.outcome, f"quota usage in {NAMESPACE}")


def test_a_rollback_watch_ignores_the_failed_revisions_replicaset(lab, state, fault_table):
    tried = attempt(lab, state, fault_table, *OVER_QUOTA)
    assert not tried.afterwards, tried.afterwards  # rolled back: the good release is Ready and serving
    waited = deploy.watch_rollout(lab.apis, NAMESPACE, BACKEND, since_s=tried.started_s, timeout_s=15)
    assert waited.ok, f"{waited.reason} ({waited.state})"


def test_helm_killed_mid_upgrade_is_recovered_by_the_next_run(lab, fault_table):
    good_revision = int(lab.history()[-1]["revision"])
    tree = seeded_values(lab.good.tree, "slow-hook.yaml")
    with releases.values_file(BACKEND, tree) as path:
        helm = subprocess.Popen(lab.helm.upgrade_argv(BACKEND, lab.chart, path, FAULT_TIMEOUT_S, lab.good.files),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and lab.history()[-1]["status"] != "pending-upgrade":
            time.sleep(0.5)
        helm.kill()  # SIGKILL: no chance to mark the release failed, as when a CI runner dies
        helm.wait()
    stuck = lab.history()[-1]
    assert stuck["status"] == "pending-upgrade", f"helm left {stuck}"

    start = time.monotonic()
    outcome, loop = lab.deploy(lab.good.tree)  # the next normal run
    record(fault_table, "helm killed mid-upgrade", "deploy_release", outcome, loop,
           recovered_after_s=round(time.monotonic() - start, 1))
    assert outcome.ok, outcome
    assert outcome.recovery == (f"recovered from pending-upgrade at revision {stuck['revision']} by rollback to "
                                f"revision {good_revision}"), outcome.recovery
    assert outcome.skipped, "after the rollback the good release is up to date: nothing to upgrade"
    assert [h["status"] for h in lab.history()[-2:]] == ["pending-upgrade", "deployed"]
    assert loop.failed == 0, f"during the recovery: {loop}"
    problems = lab.serving_problems()
    assert not problems, f"after the recovery: {problems}"


# Last: a stopped helm leaves its hook Job; the deploy deletes it before rolling back.
def test_image_never_loaded_fails_fast_and_the_previous_release_keeps_serving(lab, state, fault_table):
    tried = attempt(lab, state, fault_table, *NEVER_LOADED)
    check_failed_on(tried, "ErrImageNeverPull", 'Container image "todo-backend:v0.0.0-never-loaded" is not present')
    check_detected_in_time(tried)
    assert "ErrImageNeverPull" in evidence_text(tried.outcome, f"describe pods of {BACKEND}")


def test_image_never_loaded_rollback_is_reported_rolled_out(lab, state, fault_table):
    check_reported_rolled_out(attempt(lab, state, fault_table, *NEVER_LOADED))
