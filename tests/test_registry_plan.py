"""The registry path in the release plan (pure): the chart gets the pushed repository, the tag
pinned to the pushed digest, and the image pull Secret through values.image_pull_secrets;
the render must show each of them."""

import copy
from pathlib import Path

from shipcheck import helm, plan, registry
from shipcheck.commands import CommandResult
from shipcheck.config import Component, ValuesMapping

DIGEST = "sha256:" + "c" * 64
REPO = "192.0.2.2:5443/shipcheck/api"


def component(mapping=ValuesMapping()) -> Component:
    return Component(name="api", context=Path("."), dockerfile=Path("Dockerfile"), image="api", port=8000,
                     size_budget_mb=100, health_path="/health", readiness_path="/ready", tag="v1", release="api",
                     chart=Path("chart"), values=mapping)


def push(ok=True) -> registry.PushResult:
    return registry.PushResult("api:v1", f"{REPO}:v1", DIGEST if ok else None, 1.0)


def injected(c: Component, pull_secrets=("shipcheck-registry-pull",)) -> list[plan.Injection]:
    repository, tag = registry.image_values(c.image, c.tag, push())
    return plan.injections(c, image_repository=repository, image_tag=tag, annotations={}, existing_secret=None,
                           pull_secrets=pull_secrets)


def deployment(image=f"{REPO}:v1@{DIGEST}", pull_secrets=({"name": "shipcheck-registry-pull"},)):
    return {"kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"template": {"metadata": {}, "spec": {
                "imagePullSecrets": list(pull_secrets),
                "containers": [{"name": "api", "image": image, "imagePullPolicy": "IfNotPresent",
                                "livenessProbe": {"httpGet": {"path": "/health"}},
                                "readinessProbe": {"httpGet": {"path": "/ready"}}}]}}}}


SERVICE = {"kind": "Service", "metadata": {"name": "api"}, "spec": {"ports": [{"port": 8000}]}}


def rendered(c, manifests, found) -> plan.ReleasePlan:
    result = CommandResult(["helm", "template"], 0, "", "", 0.1)
    return plan.ReleasePlan(c, "ns", "defaults", "v1.34.4", (), tuple(found), helm.Rendered(result, manifests))


def test_image_values_without_a_push_are_the_local_image():
    assert registry.image_values("api", "v1", None) == ("api", "v1")


def test_helm_create_charts_get_repository_tag_at_digest_and_the_pull_secret():
    tree = plan.nested(injected(component()))
    assert tree["image"] == {"repository": REPO, "tag": f"v1@{DIGEST}", "pullPolicy": "IfNotPresent"}
    assert tree["imagePullSecrets"] == [{"name": "shipcheck-registry-pull"}]
    # helm create's template renders "{{ .Values.image.repository }}:{{ .Values.image.tag }}":
    assert f"{tree['image']['repository']}:{tree['image']['tag']}" == f"{REPO}:v1@{DIGEST}"
    assert registry.split_reference(f"{REPO}:v1@{DIGEST}") == (REPO, "v1", DIGEST)


def test_no_pull_secret_without_credentials_and_none_where_the_chart_has_no_such_value():
    assert "imagePullSecrets" not in plan.nested(injected(component(), pull_secrets=()))
    c = component(ValuesMapping(image_pull_secrets=None))
    assert "imagePullSecrets" not in plan.nested(injected(c))


def test_the_render_shows_the_pinned_image_and_the_pull_secret():
    c = component()
    assert plan.not_applied(rendered(c, [deployment(), SERVICE], injected(c))) == []


def test_a_chart_that_ignores_image_pull_secrets_is_named_with_the_fix():
    c = component()
    problems = plan.not_applied(rendered(c, [deployment(pull_secrets=()), SERVICE], injected(c)))
    assert len(problems) == 1 and "values.image_pull_secrets (imagePullSecrets=" in problems[0]
    assert "components.api.values.image_pull_secrets" in problems[0]


def test_a_render_without_the_digest_is_named():
    c = component()
    problems = plan.not_applied(rendered(c, [deployment(image=f"{REPO}:v1"), SERVICE], injected(c)))
    assert any("values.image_tag" in p for p in problems)


def test_running_digest_problems_reads_the_kubelets_image_id():
    pod = {"metadata": {"name": "api-1"}, "status": {"containerStatuses": [
        {"name": "api", "imageID": f"{REPO}@{DIGEST}"}]}}
    assert registry.running_digest_problems([pod], DIGEST) == []
    other = copy.deepcopy(pod)
    other["status"]["containerStatuses"][0]["imageID"] = "sha256:" + "d" * 64  # loaded, not pulled
    assert registry.running_digest_problems([other], DIGEST) == [f"api-1/api: sha256:{'d' * 64}"]
