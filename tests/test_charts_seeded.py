"""Charts and stage 3 on seeded defects.

- tool lookup and namespace manifests (pure; argv and values are tests/test_helm.py's and
  tests/test_plan.py's);
- the real charts rendered with helm (facts the gates rely on);
- pytester runs of the real stages/test_03_charts.py against a copied chart with defects
  seeded, asserting that exactly the right gates fail, each with its value, limit and fix.
  The inner run renders for a fixed target (Kubernetes v1.34.4, one 2-core node) with
  made-up image IDs: stage 3 judges charts, so it needs neither Docker nor a cluster there.
"""

import os
import shutil
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from helm_tool import HELM, needs_helm

from shipcheck import commands, config, helm as helm_mod, namespace, plan as plan_mod, quota, tools

REPO = Path(__file__).resolve().parents[1]
SEEDED = REPO / "tests" / "seeded"


def write_config(directory: Path) -> Path:
    """A hermetic configuration for the charts: the app's components as shipcheck.yaml
    describes them (the seed's), with stand-in build inputs (stage 3 builds nothing), so
    these tests never depend on the app's files or on shipcheck.yaml. The charts and inputs
    are copied next to it: configured paths must stay inside the configuration's directory."""
    for chart in ("todo-postgres", "todo-backend", "todo-frontend"):
        shutil.copytree(REPO / "charts" / chart, directory / "charts" / chart, dirs_exist_ok=True)
    shutil.copytree(SEEDED / "app", directory / "app", dirs_exist_ok=True)
    shutil.copy(SEEDED / "good.Dockerfile", directory / "good.Dockerfile")
    build = {"context": "app", "dockerfile": "good.Dockerfile", "size_budget_mb": 300}
    doc = {
        "app": "todo-chatbot", "version": "v1.0.0", "namespace": "todo", "kubernetes_version": "1.34",
        "entry": "todo-frontend",
        "resource_quota": {"requests.cpu": "3", "requests.memory": "6Gi", "limits.cpu": "4", "limits.memory": "8Gi",
                           "pods": "10"},
        "components": {
            "todo-postgres": {**build, "role": "database", "image": "todo-postgres", "port": 5432, "uid": 999,
                              "writable_paths": ["/tmp", "/var/run/postgresql", "/var/lib/postgresql/data"],
                              "database": {"user": "todo", "name": "todo", "password_secret": "todo-postgres-auth",
                                           "password_key": "postgres-password"},
                              "chart": "charts/todo-postgres"},
            "todo-backend": {**build, "image": "todo-backend", "port": 8000, "health_path": "/health",
                             "readiness_path": "/ready", "writable_paths": ["/tmp"],
                             "run_env": {"DATABASE_URL": "${secret:todo-backend-secret:database-url}"},
                             "migrate_command": ["alembic", "upgrade", "head"], "chart": "charts/todo-backend"},
            "todo-frontend": {**build, "image": "todo-frontend", "port": 3000, "health_path": "/api/health",
                              "writable_paths": ["/tmp", "/app/.next/cache"], "chart": "charts/todo-frontend",
                              "connects_to": ["todo-backend"]},  # declares frontend -> backend
        },
        "secrets": {"todo-backend-secret": {"database-url": {"database_url": {"env": "DATABASE_URL",
                                                                              "database": "todo-postgres"}}}},
    }
    path = directory / "charts.shipcheck.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return config.load(write_config(tmp_path_factory.mktemp("config")))


# --- pure -------------------------------------------------------------------------------
def test_helm_found_in_the_cache_dir_when_not_on_path(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": str(empty), "SHIPCHECK_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    with pytest.raises(tools.ToolNotFound, match=r"helm not found on PATH nor at .*cache/bin/helm\. Fix: run "
                                                 r"`\./pipeline setup`"):
        tools.binary("helm", env)
    helm = tmp_path / "cache" / "bin" / "helm"
    helm.parent.mkdir(parents=True)
    helm.write_text("#!/bin/sh\n")
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    assert tools.binary("helm", env) == str(helm)
    del env["SHIPCHECK_CACHE"]
    assert tools.cache_bin_dir(env) == tmp_path / ".cache" / "shipcheck" / "bin"


def test_namespace_manifests_from_the_configuration(cfg):
    ns, rq = namespace.manifests(cfg)
    labels = ns["metadata"]["labels"]
    assert ns["metadata"]["name"] == "todo"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.34"
    assert (rq["metadata"]["name"], rq["metadata"]["namespace"]) == ("todo-quota", "todo")
    assert rq["spec"]["hard"] == {"requests.cpu": "3", "requests.memory": "6Gi", "limits.cpu": "4",
                                  "limits.memory": "8Gi", "pods": "10"}


# --- the real charts --------------------------------------------------------------------
def render(chart: str, *args: str, namespace_name: str = "todo") -> list[dict]:
    argv = [HELM, *helm_mod.template_argv(chart, REPO / "charts" / chart, kube_version="1.34"), "--namespace",
            namespace_name]
    result = commands.run(argv + list(args), check=False)
    assert result.ok, result.tail()
    return helm_mod.manifest_docs(result.stdout)


def by_kind(manifests, kind):
    return [m for m in manifests if m["kind"] == kind]


@needs_helm
def test_frontend_api_base_url_follows_the_release_namespace():
    (cm,) = by_kind(render("todo-frontend", namespace_name="staging"), "ConfigMap")
    assert cm["data"]["API_BASE_URL"] == "http://todo-backend.staging.svc.cluster.local:8000"
    (cm,) = by_kind(render("todo-frontend"), "ConfigMap")
    assert cm["data"]["API_BASE_URL"] == "http://todo-backend.todo.svc.cluster.local:8000"


@needs_helm
def test_backend_secret_is_made_only_from_set_values_and_existing_secret_wins():
    assert not by_kind(render("todo-backend"), "Secret")
    (secret,) = by_kind(render("todo-backend", "--set", "secret.databaseUrl=postgresql://u:p@h/d"), "Secret")
    assert secret["metadata"]["name"] == "todo-backend-secret"
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"  # before the migration Job
    manifests = render("todo-backend", "--set", "secret.existingSecret=mine", "--set", "secret.databaseUrl=x://u:p@h")
    assert not by_kind(manifests, "Secret")
    (job,) = by_kind(manifests, "Job")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "database-url"}
    assert env[1]["valueFrom"]["secretKeyRef"]["optional"] is True


@needs_helm
def test_config_change_rolls_the_pods():
    def checksum(*args):
        (d,) = by_kind(render("todo-backend", *args), "Deployment")
        return d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert checksum() != checksum("--set", "config.LOG_LEVEL=DEBUG")


@needs_helm
def test_migration_hook_job_settings():
    (job,) = by_kind(render("todo-backend"), "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert job["spec"]["backoffLimit"] <= 3 and job["spec"]["activeDeadlineSeconds"] > 0
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["alembic", "upgrade", "head"]


@needs_helm
def test_network_policy_admits_the_frontend_and_own_pods_only():
    (policy,) = by_kind(render("todo-backend"), "NetworkPolicy")
    sources = [peer["podSelector"]["matchLabels"] for peer in policy["spec"]["ingress"][0]["from"]]
    assert sources == [{"app.kubernetes.io/name": "todo-frontend"},
                       {"app.kubernetes.io/name": "todo-backend", "app.kubernetes.io/instance": "todo-backend"}]


@needs_helm
def test_postgres_is_one_statefulset_on_an_emptydir_unless_persistence_is_on():
    (sts,) = by_kind(render("todo-postgres"), "StatefulSet")
    assert sts["spec"]["replicas"] == 1
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]
    (sts,) = by_kind(render("todo-postgres", "--set", "persistence.enabled=true"), "StatefulSet")
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert "data" not in {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}
    notes = (REPO / "charts/todo-postgres/templates/NOTES.txt").read_text()
    assert "FOR CI AND DEVELOPMENT ONLY" in notes and "ALL DATA IS LOST" in notes


@needs_helm
def test_values_schema_rejects_a_typo():
    argv = [HELM, *helm_mod.template_argv("todo-backend", REPO / "charts/todo-backend"), "--set", "replicas=3"]
    result = commands.run(argv, check=False)
    assert not result.ok and "replicas" in result.stderr


@needs_helm
def test_small_profile_fits_the_2_core_node_with_everything_at_once(cfg):
    footprints = []
    helm = helm_mod.Helm(HELM, [], cfg.namespace)
    for c in cfg.components.values():
        rendered = helm.template(c.release, c.chart, plan_mod.values_files(c, "small"), None, "1.34")
        footprints.append(quota.footprint(c.release, rendered.manifests))
    peak = quota.everything_at_once(footprints)
    assert peak.total["requests.cpu"] == quota.parse_quantity("900m")  # 3+3 app pods, db, hook, 3 test pods
    assert quota.node_fit(peak, {"cpu": "2", "memory": "2Gi"}, {"cpu": "100m", "memory": "70Mi"}, 0.25).ok


# --- pytester: the real stage against seeded charts -------------------------------------
def seed_chart(tmp_path: Path, name: str, values: dict | None = None, templates: dict | None = None) -> Path:
    """A copy of charts/<name> with `values` merged into values.yaml (None deletes a key)
    and `templates` {file: (old, new)} replaced."""
    chart = tmp_path / "seeded" / name
    shutil.copytree(REPO / "charts" / name, chart)
    doc = yaml.safe_load((chart / "values.yaml").read_text())

    def merge(target, patch):
        for key, value in patch.items():
            if value is None:
                target.pop(key, None)
            elif isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = value
    merge(doc, values or {})
    (chart / "values.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for file, (old, new) in (templates or {}).items():
        path = chart / "templates" / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new))
    return chart


INNER_CONFTEST = '''"""Stage 3 judges charts: a fixed target and made-up image IDs, no Docker, no cluster."""
from decimal import Decimal

import pytest

from shipcheck import app_secrets, fixtures, helm as helm_mod, images, tools


@pytest.fixture(scope="session")
def target_facts():
    return fixtures.TargetFacts("seeded", "v1.34.4", {"cpu": "2", "memory": "8Gi", "pods": "110"},
                                {"cpu": Decimal("0.1"), "memory": Decimal(70 * 2**20), "pods": Decimal(1)})


@pytest.fixture(scope="session")
def image_facts():
    return lambda c: images.ImageFacts(c.image_ref, "sha256:" + "0" * 64, 0, "1001", None, [], {}, [])


@pytest.fixture(scope="session")
def secrets_plan(cfg):
    return app_secrets.resolve(cfg, {}, app_secrets.nothing_existing, app_secrets.cluster_host(cfg))


@pytest.fixture(scope="session")
def helm(cfg):
    return helm_mod.Helm(tools.binary("helm"), [], cfg.namespace)
'''


def run_stage3(pytester, monkeypatch, *overrides: str) -> dict[str, tuple[str, str]]:
    """Run stages/test_03_charts.py in a subprocess; {test name: (outcome, message)}."""
    (pytester.path / "stages").mkdir()
    shutil.copy(REPO / "stages" / "test_03_charts.py", pytester.path / "stages")
    (pytester.path / "stages" / "conftest.py").write_text(INNER_CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    junit = pytester.path / "junit.xml"
    args = ["-p", "shipcheck.plugin", "-p", "shipcheck.fixtures", "-p", "no:cacheprovider", "--values-profile=defaults",
            f"--shipcheck-config={write_config(pytester.path)}", f"--junitxml={junit}", "stages/test_03_charts.py"]
    for item in overrides:
        args.append(f"--set={item}")
    result = pytester.runpytest_subprocess(*args)
    assert junit.is_file(), result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            outcomes[case.get("name")] = ("failed", (failure.get("message") or "") + "\n" + (failure.text or ""))
        elif skipped is not None:
            outcomes[case.get("name")] = ("skipped", skipped.get("message") or "")
        else:
            outcomes[case.get("name")] = ("passed", "")
    return outcomes


def failed(outcomes):
    return sorted(name for name, (outcome, _) in outcomes.items() if outcome == "failed")


@needs_helm
def test_stage3_seeded_backend_defects_fail_their_gates(pytester, monkeypatch, tmp_path):
    chart = seed_chart(pytester.path, "todo-backend", values={
        "resources": {"limits": None},  # missing limits
        "strategy": {"rollingUpdate": {"maxUnavailable": 1}},  # maxUnavailable 1
        "podSecurityContext": {"runAsUser": 0}, "securityContext": {"runAsUser": 0},  # running as root
        "config": {"DATABASE_URL": "postgresql://todo:hunter2hunter2@db:5432/todo"},  # a secret in a ConfigMap
    }, templates={"deployment.yaml": ('image: {{ include "todo-backend.image" . | quote }}',  # a hard-coded :latest
                                      "image: todo-backend:latest")})
    outcomes = run_stage3(pytester, monkeypatch, f"components.todo-backend.chart={chart}")
    assert failed(outcomes) == sorted([
        "test_injected_values_took_effect[todo-backend]",
        "test_requests_and_limits_on_every_container[todo-backend]",
        "test_ephemeral_storage_on_every_container[todo-backend]",  # its limits went with the others
        "test_quota_fit_has_something_to_sum",  # the quota caps limits the backend no longer sets
        "test_restricted_security_context[todo-backend]",
        "test_image_pinned_to_built_tag[todo-backend]",
        "test_rolling_update_surge_1_unavailable_0[todo-backend]",
        "test_no_secrets_in_configmaps_or_values_files[todo-backend]",
    ]), {k: v for k, v in outcomes.items() if v[0] == "failed"}
    message = {name: text for name, (_, text) in outcomes.items()}
    assert ('the suite injected values.image_tag (image.tag="v1.0.0"), but the render shows '
            "['todo-backend:latest']") in message["test_injected_values_took_effect[todo-backend]"]
    assert ("Deployment/todo-backend container todo-backend: no resources.limits.cpu, resources.limits.memory "
            "(required: requests and limits") in message["test_requests_and_limits_on_every_container[todo-backend]"]
    assert "image todo-backend:latest is tagged latest" in message["test_image_pinned_to_built_tag[todo-backend]"]
    assert ("Deployment/todo-backend: RollingUpdate maxUnavailable 1 = 1 pod(s) of 2, required 0") in message[
        "test_rolling_update_surge_1_unavailable_0[todo-backend]"]
    assert "runs as root (UID 0), required UID 1001" in message["test_restricted_security_context[todo-backend]"]
    secrets = message["test_no_secrets_in_configmaps_or_values_files[todo-backend]"]
    assert "ConfigMap/todo-backend-config: 1 secret-looking value(s), limit 0: data.DATABASE_URL (URL with a password)" in secrets
    assert "values.yaml: 1 secret-looking value(s), limit 0: config.DATABASE_URL (URL with a password)" in secrets
    assert "hunter2" not in secrets
    assert outcomes["test_quota_fit_at_rest"][0] == "passed"


@needs_helm
def test_stage3_seeded_probe_path_in_a_template_is_caught_by_the_mapping_gate(pytester, monkeypatch):
    """A chart that hard-codes its probe path ignores the injected one: the gate names the mapping key."""
    chart = seed_chart(pytester.path, "todo-backend", templates={"deployment.yaml": (
        "          livenessProbe:\n            {{- toYaml . | nindent 12 }}",
        "          livenessProbe:\n            httpGet: {path: /healthz, port: http}")})
    outcomes = run_stage3(pytester, monkeypatch, f"components.todo-backend.chart={chart}")
    assert "test_injected_values_took_effect[todo-backend]" in failed(outcomes)
    text = outcomes["test_injected_values_took_effect[todo-backend]"][1]
    assert 'values.liveness_probe (livenessProbe.httpGet.path="/health")' in text and "['/healthz']" in text
    assert "Fix: set components.todo-backend.values.liveness_probe" in text


@needs_helm
def test_stage3_seeded_surge_and_unknown_field_fail_quota_and_schema_gates(pytester, monkeypatch, tmp_path):
    chart = seed_chart(
        pytester.path, "todo-backend",
        values={"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}},  # the surge pod breaks the quota
        templates={"deployment.yaml": ("      automountServiceAccountToken: false\n",  # a 1.35-only field
                                       "      automountServiceAccountToken: false\n"
                                       "      workloadRef: {name: todo, podGroup: api}\n")})
    outcomes = run_stage3(pytester, monkeypatch, f"components.todo-backend.chart={chart}")
    assert failed(outcomes) == sorted([
        "test_manifests_valid_for_kubernetes_version[todo-backend]",
        "test_quota_fit_during_rollout[todo-backend]",
        "test_quota_fit_during_rollout[todo-frontend]",  # 2.75 at rest leaves no room for its surge + old pod
    ]), {k: v for k, v in outcomes.items() if v[0] == "failed"}
    rollout = outcomes["test_quota_fit_during_rollout[todo-backend]"][1]
    assert ("todo-backend rolling update: requests.cpu 4.75 > quota 3 (at rest 2.75 + surge pod 1 + old pod "
            "terminating 1). Fix: lower resources.requests.cpu or maxSurge, or raise todo-quota") in rollout
    assert ("todo-backend rolling update: limits.cpu 5.5 > quota 4 (at rest 3.5 + surge pod 1 + old pod terminating 1)"
            in rollout)
    assert ("Deployment/todo-backend: spec.template.spec: Additional properties are not allowed ('workloadRef' was "
            "unexpected) (Kubernetes 1.34 schema, strict). Fix:") in outcomes[
        "test_manifests_valid_for_kubernetes_version[todo-backend]"][1]
    assert outcomes["test_quota_fit_at_rest"][0] == "passed"
