"""The pipeline under least privilege (issue 14): an administrator makes the namespace, its
quota and examples/rbac/shipcheck-rbac.yaml; the suite then runs the REAL stages 1, 3, 4
and 5 (pytester) with a kubeconfig of that ServiceAccount only (a token, never the admin's
certificate), pulling from the registry of setup/registry.sh. Every gate must pass.

Also: what the account may NOT do (create namespaces, raise its quota, read another
namespace's Secrets, bind roles), and a cluster nothing here can load images into (an
account that may not read nodes, so the cluster cannot be recognised) refused before any
build when no registry is configured.

Run: .venv/bin/python -m pytest tests/test_least_privilege.py -o addopts= -p no:cacheprovider
"""

from __future__ import annotations

import base64
import copy
import secrets
from pathlib import Path

import pipeline_lab
import pytest
import yaml
from pipeline_lab import InnerRun

from shipcheck import commands, config, kube, namespace

# Local cluster only: it deploys from the lab registry the local cluster trusts.
pytestmark = [pytest.mark.cluster, pytest.mark.docker, pipeline_lab.local_only]

REPO = pipeline_lab.REPO
RBAC = REPO / "examples" / "rbac" / "shipcheck-rbac.yaml"
SEEDED = Path(__file__).resolve().parent / "seeded" / "deploy"
NAMESPACE = f"shipcheck-rbac-{secrets.token_hex(3)}"
ACCOUNT = "shipcheck"
NO_NODES = "shipcheck-no-nodes"  # bound to the Role only: cannot read nodes
STAGES = ["stages/test_01_build.py", "stages/test_03_charts.py", "stages/test_04_deploy.py",
          "stages/test_05_health.py"]
BASE_SETS = (f"namespace={NAMESPACE}", "timeouts_s.deploy=120",
             f"components.todo-backend.values_files=[{SEEDED / 'one-replica.yaml'}]",
             "components.todo-frontend.values_files=[" + str(SEEDED / "one-replica.yaml") + "]")


def rbac_docs(ns: str) -> list[dict]:
    """examples/rbac/ for namespace `ns` (the ClusterRoleBinding named per namespace), plus a
    second ServiceAccount bound to the Role alone."""
    docs = []
    for doc in yaml.safe_load_all(RBAC.read_text()):
        doc = copy.deepcopy(doc)
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["namespace"] = ns
        if doc["kind"] == "ClusterRoleBinding":
            doc["metadata"]["name"] = f"shipcheck-node-reader-{ns}"
        for subject in doc.get("subjects", []):
            subject["namespace"] = ns
        docs.append(doc)
    docs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NO_NODES, "namespace": ns}})
    docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": NO_NODES, "namespace": ns},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shipcheck-deployer"},
                 "subjects": [{"kind": "ServiceAccount", "name": NO_NODES, "namespace": ns}]})
    return docs


def account_kubeconfig(admin: kube.KubeApis, kubectl: list[str], account: str, path: Path) -> Path:
    """A kubeconfig with the account's token (TokenRequest, 2 h) and the cluster's CA only."""
    token = commands.run([*kubectl, "-n", NAMESPACE, "create", "token", account, "--duration=2h"],
                         timeout_s=60, what="a token for the ServiceAccount").stdout.strip()
    commands.redact(token)
    conf = admin.api_client.configuration
    ca = base64.b64encode(Path(conf.ssl_ca_cert).read_bytes()).decode()
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": account,
           "clusters": [{"name": "lab", "cluster": {"server": conf.host, "certificate-authority-data": ca}}],
           "users": [{"name": account, "user": {"token": token}}],
           "contexts": [{"name": account, "context": {"cluster": "lab", "user": account, "namespace": NAMESPACE}}]}
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def admin(lab_cluster) -> kube.KubeApis:
    return kube.KubeApis.connect(lab_cluster.kubeconfig, None)


@pytest.fixture(scope="module")
def granted(admin, kubectl_argv, lab_namespace, tmp_path_factory) -> dict[str, Path]:
    """What an administrator does: the namespace with its Pod Security labels and quota (as
    the configuration says), and the RBAC example; returns each account's kubeconfig."""
    cfg = config.load(REPO / "shipcheck.yaml", list(BASE_SETS))
    kube.apply(admin, namespace.manifests(cfg))
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(admin.api_client)
    existed = bool(rbac.list_cluster_role(field_selector="metadata.name=shipcheck-node-reader").items)
    kube.apply(admin, rbac_docs(NAMESPACE))
    base = tmp_path_factory.mktemp("rbac")
    yield {name: account_kubeconfig(admin, kubectl_argv, name, base / f"{name}.kubeconfig") for name in (ACCOUNT, NO_NODES)}
    rbac.delete_cluster_role_binding(f"shipcheck-node-reader-{NAMESPACE}")
    if not existed:
        rbac.delete_cluster_role("shipcheck-node-reader")


@pytest.fixture(scope="module")
def lab_registry(lab_cluster):
    from test_registry import start_lab_registry

    return start_lab_registry()


def can_i(kubectl_argv: list[str], kubeconfig: Path, *args: str) -> bool:
    argv = [kubectl_argv[0], "--kubeconfig", str(kubeconfig), "auth", "can-i", *args]
    return commands.run(argv, check=False, timeout_s=30).stdout.strip() == "yes"


@pytest.mark.parametrize("what", [
    ("create", "namespaces"),
    ("patch", "resourcequotas", "-n", NAMESPACE),
    ("get", "secrets", "-n", "kube-system"),
    ("list", "pods", "--all-namespaces"),
    ("create", "rolebindings", "-n", NAMESPACE),
    ("create", "pods/eviction", "-n", "kube-system"),
], ids=lambda w: " ".join(w[:2]))
def test_the_account_may_not(granted, kubectl_argv, what):
    assert not can_i(kubectl_argv, granted[ACCOUNT], *what)


def test_the_account_may_what_the_pipeline_needs(granted, kubectl_argv):
    for what in (("create", "deployments.apps"), ("create", "secrets"), ("create", "pods/exec"),
                 ("get", "services/proxy"), ("patch", f"namespace/{NAMESPACE}"), ("list", "nodes")):
        assert can_i(kubectl_argv, granted[ACCOUNT], *what, "-n", NAMESPACE), what


@pytest.fixture
def inner(pytester, state, granted, lab_registry) -> InnerRun:
    if "inner" not in state:
        state["inner"] = pipeline_lab.run_stages(
            pytester, STAGES, BASE_SETS, args=("--cluster=existing", *lab_registry.args()),
            env={**lab_registry.env, "KUBECONFIG": str(granted[ACCOUNT])})
    return state["inner"]


def test_stages_1_3_4_5_pass_with_only_the_roles_permissions(inner):
    bad = {t: c.outcome for t, c in inner.cases.items() if c.outcome in ("failed", "error")}
    assert inner.cases and not bad, f"rc {inner.rc}: {bad}\n" + "\n".join(
        inner.cases[t].text[:800] for t in list(bad)[:3]) + inner.tail(60)
    for gate in ("test_namespace_and_quota", "test_release_deployed[todo-frontend]",
                 "test_pods_run_the_stage1_images[todo-backend]"):
        assert inner.outcome(gate) == "passed", gate
    output = inner.output
    # It ran as the account, and met the limits it was given.
    assert f"ResourceQuota {NAMESPACE}-quota: not allowed to apply it (RBAC)" in output
    assert "pods of other namespaces are not readable (RBAC)" in output
    # The one gate that needs more than the Role (a scratch namespace) skips and says so.
    live = inner.cases.get("test_network_policies_enforced_live")
    assert live is None or live.outcome == "skipped" and "may not create the scratch namespace" in live.text, live


def test_a_cluster_it_cannot_recognise_without_a_registry_is_refused_before_building(pytester, granted):
    """The Role-only account cannot read nodes: the cluster behind its context cannot be
    recognised, so nothing here could load images into it. With no registry, stage 1 stops
    before building, with the fix."""
    run = pipeline_lab.run_stages(pytester, ["stages/test_01_build.py"], BASE_SETS, args=("--cluster=existing",),
                                  env={"KUBECONFIG": str(granted[NO_NODES])}, prebuilt=False, name="no-route")
    case = run.cases.get("test_image_built_and_tagged[todo-backend]")
    assert case is not None and case.outcome == "error", run.tail()
    assert "its nodes could not be read (RBAC: list nodes)" in case.text
    assert "Fix: configure a registry" in case.text
    assert "building 3 images" not in run.output
