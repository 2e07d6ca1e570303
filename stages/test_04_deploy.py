"""Stage 4: deploy the plan stage 3 validated, and prove it rolled out.

The fixtures do the work, one step each (shipcheck/deploy_fixtures.py): namespace and
quota, the fit check, Secrets, images into the nodes, then `helm upgrade --install` per
release, watched for fail-fast signals and rolled back on failure. Each test is a gate on
one step's facts or on what is running now.
"""

import pytest

from shipcheck import deploy, helm as helm_mod, kube as kube_mod, namespace, registry, rollout

pytestmark = pytest.mark.order(4)


@pytest.fixture
def outcome(deployment, deploy_plan, component) -> deploy.Outcome:
    """The component's outcome; a component that is not part of this deployment skips."""
    if deploy_plan.for_component(component) is None:
        pytest.skip(f"{component.name} is not deployed (external database)" if component.role == "database"
                    else f"{component.name} has no chart")
    found = deployment.outcomes.get(component.name)
    if found is None:
        pytest.skip(f"{component.name} was not deployed: the fit check or an earlier release failed "
                    "(see test_releases_fit_quota_and_nodes, test_release_deployed)")
    return found


@pytest.fixture
def rolled(outcome, component) -> deploy.Outcome:
    if not outcome.ok:
        pytest.skip(f"release {component.release} failed (see test_release_deployed[{component.name}])")
    return outcome


@pytest.fixture
def state(rolled, kube, cfg, component) -> rollout.ReleaseState:
    """What the cluster shows of the component's release now."""
    return kube_mod.read_release(kube, cfg.namespace, component.release)


def test_namespace_and_quota(namespace_applied, cfg, kube):
    ns = kube.core.read_namespace(cfg.namespace)
    expected = namespace.pod_security_labels(cfg.kubernetes_version)
    missing = {k: v for k, v in expected.items() if (ns.metadata.labels or {}).get(k) != v}
    assert not missing, (f"namespace {cfg.namespace}: Pod Security labels {missing} missing or different. "
                         "Fix: let the stage apply them (server-side apply), or remove conflicting labels.")
    if cfg.resource_quota:
        hard = kube.core.read_namespaced_resource_quota(namespace.quota_name(cfg), cfg.namespace).spec.hard
        assert {k: str(v) for k, v in hard.items()} == cfg.resource_quota, (
            f"ResourceQuota {namespace.quota_name(cfg)} has hard {hard}, configured {cfg.resource_quota}. "
            "Fix: the stage applies the configured quota; check for another manager of this object.")


def test_releases_fit_quota_and_nodes(fit):
    assert fit.ok, (f"profile {fit.profile}: {len(fit.problems)} phase(s) would not fit, so nothing was "
                    "loaded or deployed:\n" + "\n".join(fit.problems))


def test_secrets_and_config_maps_applied(secrets_applied, secrets_plan, fit, cfg, kube):
    if not fit.ok:
        pytest.skip("the fit check failed: nothing was written (see test_releases_fit_quota_and_nodes)")
    missing = [name for name in sorted(secrets_plan.secrets)
               if not kube.core.list_namespaced_secret(cfg.namespace, field_selector=f"metadata.name={name}").items]
    assert not missing, (f"Secrets {missing} are not in namespace {cfg.namespace} after they were applied. "
                         "Fix: check that the suite's account may create Secrets there (RBAC).")


def test_release_deployed(outcome, helm, component):
    assert outcome.ok, (
        f"release {component.release}: {outcome.message}. Fix: {outcome.fix}. "
        f"Previous release: {outcome.recovery or 'none (first install)'}. Evidence is attached below.")
    history = helm.history(component.release)
    assert history and history[-1]["status"] == "deployed" and int(history[-1]["revision"]) == outcome.revision, (
        f"release {component.release}: helm history ends with {history[-1] if history else 'nothing'}, expected "
        f"revision {outcome.revision} deployed. Fix: `helm -n {helm.namespace} history {component.release}`.")


def test_deployed_release_is_the_validated_plan(rolled, helm, deploy_plan, component):
    """What helm holds (manifests and hooks) is, object by object, what stage 3 validated."""
    plan = deploy_plan.for_component(component)
    differences = helm_mod.manifest_differences(helm.manifest(component.release), plan.manifests)
    assert not differences, (f"release {component.release}: {len(differences)} object(s) differ from the render "
                             f"stage 3 validated, limit 0: {differences}. Fix: nothing may change values or "
                             "templates between stages 3 and 4 (see the plan in shipcheck/plan.py).")


def test_rolled_out(state, component):
    workloads = [w for w in state.workloads if w["kind"] != "Job"]
    assert workloads, f"release {component.release} has no Deployment or StatefulSet"
    for workload in workloads:
        done, summary = rollout.workload_rolled_out(workload)
        assert done, f"{summary}; expected every replica updated, available and ready. Fix: see the pod diagnostics."


def test_pods_running_and_ready(state, component):
    pods = rollout.serving_pods(state.pods)
    bad = [f"{p['metadata']['name']}: phase {p['status'].get('phase')}, ready "
           f"{[c.get('ready') for c in p['status'].get('containerStatuses') or []]}"
           for p in pods if not rollout.is_running_and_ready(p)]
    assert pods and not bad, f"release {component.release}: {len(bad)} of {len(pods)} pods not Running and Ready: {bad}"


def test_services_have_ready_endpoints(state, rolled, kube, cfg, deploy_plan, component):
    """Every Service of the release selects ready pods of it: traffic has somewhere to go."""
    plan = deploy_plan.for_component(component)
    services = [m["metadata"]["name"] for m in plan.manifests if m.get("kind") == "Service"]
    empty = []
    for name in services:
        ready = kube_mod.ready_endpoints(kube, cfg.namespace, name)
        if not ready:
            empty.append(name)
    assert not empty, (f"release {component.release}: Service(s) {empty} have no ready endpoints, limit 0: their "
                       "selector matches none of the release's ready pods. Fix: make the Service's selector match the "
                       "pod template labels (compare `kubectl get svc -o yaml` with the pods' labels).")


def test_pods_run_the_stage1_images(state, image_facts, cluster, docker_client, component, pushed):
    """Each container runs the image stage 1 built: its imageID is that image's ID, or a digest
    the node (or the registry it came from) knows that image by. On the registry path it is
    the digest stage 1 pushed and read back."""
    push = pushed.get(component.name)
    if push is not None:  # the registry path: pulled by digest, so the imageID is the pushed manifest's
        wrong = registry.running_digest_problems(rollout.serving_pods(state.pods), push.digest)
        assert not wrong, (f"release {component.release}: containers not running the image stage 1 pushed "
                           f"({push.pinned_ref}): {wrong}. Fix: deploy by digest (the chart's image.tag receives "
                           "tag@digest through values.image_tag) and let the pods roll.")
        return
    facts = image_facts(component)
    known = {facts.id} | set(docker_client.images.get(facts.ref).attrs.get("RepoDigests") or [])
    known |= cluster.node_image_identities(component.image_ref)
    digests = {k.rsplit("@", 1)[-1].split(":")[-1] for k in known}
    wrong = [f"{p['metadata']['name']}/{c['name']}: {c.get('image')} {c.get('imageID')}"
             for p in rollout.serving_pods(state.pods)
             for c in p["status"].get("containerStatuses") or []
             if (c.get("imageID") or "").split(":")[-1] not in digests]
    assert not wrong, (f"release {component.release}: containers not running the stage-1 image {component.image_ref} "
                       f"({facts.id.split(':')[-1][:12]}): {wrong}. Fix: load the image into the cluster and let the "
                       "pods roll.")


def test_redeploy_without_change_is_a_no_op(deployment, deploy_target, kube, cfg):
    """A second deploy with nothing changed must not touch the releases: same pods, no restarts."""
    if not deployment.ok:
        pytest.skip("the deploy did not succeed (see test_release_deployed)")
    if not deployment.changed():
        return  # this run was itself a re-deploy with no change, and it touched nothing

    def pods():
        return {(p["metadata"]["uid"], sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses") or []))
                for plan in deployment.plan.releases
                for p in rollout.serving_pods(kube_mod.read_release(kube, cfg.namespace, plan.release).pods)}

    before = pods()
    for plan in deployment.plan.releases:
        again = deploy.deploy(deploy_target, plan)
        assert again.ok and again.skipped, (
            f"release {plan.release}: a re-run with no change {'upgraded it' if again.ok else 'failed'} "
            f"({again.message or again.revision}); expected no upgrade. Fix: values or templates that change on "
            "every render (timestamps, random values) must be made stable.")
    assert pods() == before, "pods changed or restarted during a no-change re-deploy"
