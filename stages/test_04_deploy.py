"""Stage 4: deploy the releases to the cluster and prove they rolled out.

The `deployment` fixture does the work (namespace, quota, images, Secrets, fit check,
helm upgrade --install watched for fail-fast signals, rollback on failure). Each test is a
gate on what is running now.
"""

import pytest

from shipcheck import deploy, kube, namespace

pytestmark = pytest.mark.order(4)


@pytest.fixture
def deployed(deployment, component):
    """The component's outcome; a component that is not part of this deployment skips."""
    if component not in deployment.components:
        pytest.skip(f"{component.name} is not deployed (external DATABASE_URL)" if component.role == "database"
                    else f"{component.name} has no chart")
    outcome = deployment.outcome(component.name)
    if outcome is None:
        pytest.skip(f"{component.name} was not deployed: an earlier release or the fit check failed")
    return outcome


@pytest.fixture
def rolled(deployed, component):
    if not deployed.ok:
        pytest.skip(f"release {component.release} failed (see test_release_deployed[{component.name}])")
    return deployed


def test_namespace_and_quota(deployment, cfg, kube):
    ns = kube.core.read_namespace(cfg.namespace)
    expected = namespace.pod_security_labels(cfg.kubernetes_version)
    missing = {k: v for k, v in expected.items() if (ns.metadata.labels or {}).get(k) != v}
    assert not missing, (f"namespace {cfg.namespace}: Pod Security labels {missing} missing or different. "
                         "Fix: let the stage apply them (kubectl apply --server-side), or remove conflicting labels.")
    if cfg.resource_quota:
        hard = kube.core.read_namespaced_resource_quota(namespace.quota_name(cfg), cfg.namespace).spec.hard
        assert {k: str(v) for k, v in hard.items()} == cfg.resource_quota, (
            f"ResourceQuota {namespace.quota_name(cfg)} has hard {hard}, configured {cfg.resource_quota}. "
            "Fix: the stage applies the configured quota; check for another manager of this object.")


def test_releases_fit_quota_and_nodes(deployment):
    assert not deployment.fit_problems, (
        f"profile {deployment.profile}: {len(deployment.fit_problems)} phase(s) would not fit, so nothing was "
        "deployed:\n" + "\n".join(deployment.fit_problems))


def test_release_deployed(deployed, helm, component):
    assert deployed.ok, (
        f"release {component.release}: {deployed.message}. "
        f"Fix: {kube.fix_for(deployed.reasons)}. "
        f"Previous release: {deployed.recovery or 'none (first install)'}. Evidence is attached below.")
    history = helm.history(component.release)
    assert history and history[-1]["status"] == "deployed" and int(history[-1]["revision"]) == deployed.revision, (
        f"release {component.release}: helm history ends with {history[-1] if history else 'nothing'}, expected "
        f"revision {deployed.revision} deployed. Fix: `helm -n {helm.namespace} history {component.release}`.")


def test_rolled_out(rolled, kube, cfg, component):
    workloads, _, _ = deploy.release_objects(kube, cfg.namespace, component.release)
    assert workloads, f"release {component.release} has no Deployment or StatefulSet"
    for workload in workloads:
        done, summary = kube_rolled_out(workload)
        assert done, f"{summary}; expected every replica updated, available and ready. Fix: see the pod diagnostics."


def kube_rolled_out(workload: dict) -> tuple[bool, str]:
    return (kube.deployment_rolled_out(workload) if workload["kind"] == "Deployment"
            else kube.statefulset_rolled_out(workload))


def test_pods_running_and_ready(rolled, kube, cfg, component):
    _, pods, _ = deploy.release_objects(kube, cfg.namespace, component.release)
    pods = deploy.serving_pods(pods)
    bad = [f"{p['metadata']['name']}: phase {p['status'].get('phase')}, ready "
           f"{[c.get('ready') for c in p['status'].get('containerStatuses') or []]}"
           for p in pods if p["status"].get("phase") != "Running"
           or not all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]
    assert pods and not bad, f"release {component.release}: {len(bad)} of {len(pods)} pods not Running and Ready: {bad}"


def test_pods_run_the_stage1_images(rolled, kube, cfg, component, image_facts):
    expected = image_facts(component).id
    _, pods, _ = deploy.release_objects(kube, cfg.namespace, component.release)
    wrong = [f"{p['metadata']['name']}/{c['name']}: {c.get('image')} {c.get('imageID')}"
             for p in deploy.serving_pods(pods)
             for c in p["status"].get("containerStatuses") or []
             if not (c.get("imageID") or "").endswith(expected.split(":")[-1])]
    assert not wrong, (f"release {component.release}: containers not running the stage-1 image {cfg.image_ref(component)} "
                       f"({expected[:19]}): {wrong}. Fix: load the image into the cluster and let the pods roll.")


def test_redeploy_without_change_is_a_no_op(deployment, helm, kube, kubectl, cfg):
    """A second deploy with nothing changed must not touch the releases: same pods, no restarts."""
    if not deployment.outcomes or not all(o.ok for o in deployment.outcomes.values()):
        pytest.skip("the deploy did not succeed")

    def pods():
        return {(p["metadata"]["uid"], sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses") or []))
                for c in deployment.components
                for p in deploy.serving_pods(deploy.release_objects(kube, cfg.namespace, c.release)[1])}

    before = pods()
    for component in deployment.components:
        files, tree = deployment.values[component.name]
        again = deploy.deploy_release(helm, kube, kubectl, component.release, component.chart, tree, files,
                                      cfg.timeouts_s["deploy"])
        assert again.ok and again.skipped, (
            f"release {component.release}: a re-run with no change {'upgraded it' if again.ok else 'failed'} "
            f"({again.message or again.revision}); expected no upgrade. Fix: values or templates that change on "
            "every render (timestamps, random values) must be made stable.")
    assert pods() == before, "pods changed or restarted during a no-change re-deploy"
