"""The release plan's pure parts (plan.py): what the suite injects through the values
mapping, in which order values files apply, and whether each injection took effect."""

from pathlib import Path

from shipcheck import helm, plan
from shipcheck.commands import CommandResult
from shipcheck.config import Component, ValuesMapping

OURS = ValuesMapping(existing_secret="secret.existingSecret", migrate_command="migrations.command",
                     startup_probe="startupProbe")


def component(mapping=ValuesMapping(), **kw) -> Component:
    fields = dict(name="api", context=Path("."), dockerfile=Path("Dockerfile"), image="api", port=8000,
                  size_budget_mb=100, health_path="/health", readiness_path="/ready", tag="v1", release="api",
                  chart=Path("chart"), values=mapping)
    fields.update(kw)
    return Component(**fields)


def injected(c: Component, secret=None) -> list[plan.Injection]:
    return plan.injections(c, image_repository="api", image_tag="v1", annotations={plan.IMAGE_ID: "sha256:1"},
                           existing_secret=secret)


def test_helm_create_defaults_inject_image_probes_port_names_and_annotations():
    tree = plan.nested(injected(component()))
    assert tree == {"image": {"repository": "api", "tag": "v1", "pullPolicy": "IfNotPresent"},
                    "service": {"port": 8000}, "fullnameOverride": "api",
                    "livenessProbe": {"httpGet": {"path": "/health"}}, "readinessProbe": {"httpGet": {"path": "/ready"}},
                    "podAnnotations": {plan.IMAGE_ID: "sha256:1"}}


def test_a_null_mapping_key_injects_nothing_and_our_charts_map_the_rest():
    c = component(ValuesMapping(liveness_probe=None, readiness_probe=None, existing_secret="secret.existingSecret",
                                migrate_command="migrations.command"), migrate_command=("alembic", "upgrade", "head"))
    tree = plan.nested(injected(c, secret="api-secret"))
    assert "livenessProbe" not in tree and "readinessProbe" not in tree
    assert tree["secret"] == {"existingSecret": "api-secret"}
    assert tree["migrations"] == {"command": ["alembic", "upgrade", "head"]}


def test_the_users_files_win_over_the_profile_file(tmp_path):
    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "values-small.yaml").write_text("replicaCount: 1\n")
    mine = tmp_path / "mine.yaml"
    c = component(chart=chart, values_files=(mine,))
    assert plan.values_files(c, "small") == (chart / "values-small.yaml", mine)
    assert plan.values_files(c, "defaults") == (mine,)
    assert plan.values_files(component(chart=chart), "seed") == ()  # no such profile file


def test_referenced_names_finds_the_suites_objects_anywhere_in_values():
    values = {"volumes": [{"name": "creds", "secret": {"secretName": "notes-api-credentials"}}],
              "envFrom": [{"configMapRef": {"name": "notes-settings"}}], "image": {"tag": "notes-settings-x"}}
    assert plan.referenced_names(values, {"notes-api-credentials", "notes-settings", "other"}) == {
        "notes-api-credentials", "notes-settings"}


def rendered_plan(c: Component, manifests: list[dict], found: list[plan.Injection]) -> plan.ReleasePlan:
    result = CommandResult(["helm", "template"], 0, "", "", 0.1)
    return plan.ReleasePlan(c, "ns", "defaults", "v1.34.4", (), tuple(found), helm.Rendered(result, manifests))


def deployment(image="api:v1", liveness="/health", readiness="/ready", annotations=None, env=()):
    container = {"name": "api", "image": image, "imagePullPolicy": "IfNotPresent", "env": list(env),
                 "livenessProbe": {"httpGet": {"path": liveness, "port": "http"}},
                 "readinessProbe": {"httpGet": {"path": readiness, "port": "http"}}}
    return {"kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"template": {"metadata": {"annotations": annotations if annotations is not None
                                                              else {plan.IMAGE_ID: "sha256:1"}},
                                  "spec": {"containers": [container]}}}}


SERVICE = {"kind": "Service", "metadata": {"name": "api"}, "spec": {"ports": [{"port": 8000}]}}


def test_every_injection_that_took_effect_passes():
    c = component()
    assert plan.not_applied(rendered_plan(c, [deployment(), SERVICE], injected(c))) == []


def test_an_injection_the_chart_ignores_is_named_with_its_mapping_key():
    c = component()
    problems = plan.not_applied(rendered_plan(c, [deployment(liveness="/"), SERVICE], injected(c)))
    assert len(problems) == 1
    assert problems[0].startswith("api: the suite injected values.liveness_probe (livenessProbe.httpGet.path=\"/health\")")
    assert "components.api.values.liveness_probe" in problems[0]


def test_image_annotations_and_secret_must_show_in_the_render():
    c = component(OURS)
    found = injected(c, secret="api-secret")
    problems = plan.not_applied(rendered_plan(c, [deployment(image="nginx:1", annotations={}), SERVICE], found))
    keys = sorted(p.split("values.")[1].split(" ")[0] for p in problems)
    assert keys == ["existing_secret", "image_repository", "image_tag", "pod_annotations", "startup_probe"]
    env = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "api-secret", "key": "url"}}}]
    good = deployment(env=env)
    good["spec"]["template"]["spec"]["containers"][0]["startupProbe"] = {"httpGet": {"path": "/health"}}
    assert plan.not_applied(rendered_plan(c, [good, SERVICE], found)) == []
