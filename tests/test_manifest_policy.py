"""Manifest policy on seeded defects: each check passes a good release and fails each defect
with the measured value, the limit and the fix."""

import copy
from types import SimpleNamespace

import pytest

from shipcheck import manifest_policy as mp

UID = 1001
REF = "todo-backend:v1.0.0"


def security():
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "runAsUser": UID, "runAsGroup": UID, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def pod_security():
    return {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def resources(cpu="250m", memory="256Mi"):
    return {"requests": {"cpu": cpu, "memory": memory, "ephemeral-storage": "64Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "256Mi"}}


def probe(path):
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10}


def good_release() -> list[dict]:
    """A backend release as our chart renders it: Deployment, migration hook, test pod, ConfigMap."""
    app = {"name": "todo-backend", "image": REF, "imagePullPolicy": "IfNotPresent", "securityContext": security(),
           "ports": [{"name": "http", "containerPort": 8000}], "resources": resources(),
           "env": [{"name": "LOG_FORMAT", "value": "json"},
                   {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "s", "key": "database-url"}}}],
           "startupProbe": probe("/health"), "livenessProbe": probe("/health"), "readinessProbe": probe("/ready"),
           "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "todo-backend"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "b"}},
                           "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                           "template": {"metadata": {"labels": {"app": "b"}},
                                        "spec": {"securityContext": pod_security(), "containers": [app],
                                                 "volumes": [{"name": "tmp", "emptyDir": {}}]}}}}
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "todo-backend-migrate", "annotations": {"helm.sh/hook": "pre-install,pre-upgrade"}},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "securityContext": pod_security(), "containers": [
               {"name": "migrate", "image": REF, "imagePullPolicy": "IfNotPresent", "command": ["alembic", "upgrade", "head"],
                "securityContext": security(), "resources": resources("100m", "128Mi")}]}}}}
    test = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "todo-backend-test", "annotations": {"helm.sh/hook": "test"}},
            "spec": {"restartPolicy": "Never", "securityContext": pod_security(), "containers": [
                {"name": "health", "image": REF, "imagePullPolicy": "IfNotPresent", "command": ["python3", "-c", "pass"],
                 "securityContext": security(), "resources": resources("50m", "64Mi")}]}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "todo-backend-config"},
              "data": {"LOG_LEVEL": "INFO", "API_BASE_URL": "http://todo-backend.todo.svc.cluster.local:8000"}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "todo-backend"},
               "spec": {"selector": {"app": "b"}, "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "todo-backend"},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "b"}}}}
    return [deployment, job, test, config, service, pdb]


def app_container(manifests):
    return manifests[0]["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture
def release():
    return copy.deepcopy(good_release())


def test_good_release_passes_every_check(release):
    assert mp.resource_problems(release) == []
    assert mp.probe_problems(release, "/health", "/ready", "todo-backend") == []
    assert mp.security_problems(release, UID) == []
    assert mp.writable_path_problems(release, ["/tmp"]) == []
    assert mp.image_problems(release, REF, "v1.0.0") == []
    assert mp.rollout_problems(release) == []
    assert mp.secret_value_problems(release) == []
    assert mp.schema_problems(release, "1.34") == []
    assert mp.service_selector_problems(release) == []
    assert mp.identical_probe_problems(release) == []
    assert mp.ephemeral_storage_problems(release) == []
    assert mp.pdb_problems(release) == []


def test_containers_cover_hook_and_test_pods(release):
    found = {c.where for c in mp.containers(release)}
    assert found == {"Deployment/todo-backend container todo-backend",
                     "Job/todo-backend-migrate container migrate (hook)",
                     "Pod/todo-backend-test container health (helm test)"}


# --- seeded defects ---------------------------------------------------------------------
def test_missing_limits(release):
    del app_container(release)["resources"]["limits"]
    (problem,) = mp.resource_problems(release)
    assert problem.startswith("Deployment/todo-backend container todo-backend: no resources.limits.cpu, "
                              "resources.limits.memory (required: requests and limits")
    assert "Fix: set resources.limits.cpu, resources.limits.memory in the chart's values." in problem


def test_missing_requests_on_the_hook_container_names_its_values(release):
    del release[1]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    (problem,) = mp.resource_problems(release)
    assert problem.startswith("Job/todo-backend-migrate container migrate (hook): no resources.requests.cpu")
    assert "Fix: set migrations.resources.requests.cpu" in problem


def test_request_above_limit(release):
    app_container(release)["resources"]["requests"]["cpu"] = "1"
    (problem,) = mp.resource_problems(release)
    assert "requests.cpu 1 > limits.cpu 500m" in problem and "Fix: lower resources.requests.cpu" in problem


def test_probe_on_a_wrong_path(release):
    app_container(release)["livenessProbe"] = probe("/healthz")
    (problem,) = mp.probe_problems(release, "/health", "/ready", "todo-backend")
    assert problem == ("Deployment/todo-backend container todo-backend: livenessProbe is GET /healthz on port http, "
                       "expected GET /health (health_path of components.todo-backend in shipcheck.yaml). Fix: set "
                       "healthCheck.path: /health in the chart's values, or correct health_path in shipcheck.yaml if "
                       "the app serves another path.")


def test_missing_readiness_probe_and_unknown_probe_port(release):
    del app_container(release)["readinessProbe"]
    app_container(release)["livenessProbe"]["httpGet"]["port"] = 9999
    problems = mp.probe_problems(release, "/health", "/ready", "todo-backend")
    assert any("no readinessProbe; expected GET /ready" in p and "healthCheck.readinessPath: /ready" in p
               for p in problems)
    assert any("livenessProbe probes port 9999, which is not a port of the container" in p for p in problems)


def test_liveness_without_startup_grace(release):
    del app_container(release)["startupProbe"]
    (problem,) = mp.probe_problems(release, "/health", "/ready")
    assert "livenessProbe starts after 0 s with no startupProbe (minimum 10 s)" in problem and "Fix:" in problem


def test_database_probes_may_be_exec(release):
    c = app_container(release)
    c["livenessProbe"] = c["readinessProbe"] = {"exec": {"command": ["pg_isready"]}}
    assert mp.probe_problems(release, None, None) == []
    del c["readinessProbe"]
    (problem,) = mp.probe_problems(release, None, None)
    assert "no readinessProbe; expected an exec or tcpSocket probe" in problem


def test_image_latest(release):
    app_container(release)["image"] = "todo-backend:latest"
    (problem,) = mp.image_problems(release, REF, "v1.0.0")
    assert problem == ("Deployment/todo-backend container todo-backend: image todo-backend:latest is tagged latest; "
                       "required the built tag todo-backend:v1.0.0 (version in shipcheck.yaml). Fix: set "
                       "image.repository: todo-backend and image.tag: v1.0.0 in the chart's values.")


def test_untagged_image_other_tag_pull_always_and_app_version(release):
    release[2]["spec"]["containers"][0]["image"] = "todo-backend"
    release[1]["spec"]["template"]["spec"]["containers"][0]["image"] = "todo-backend:v0.9.0"
    app_container(release)["imagePullPolicy"] = "Always"
    problems = mp.image_problems(release, REF, "v0.9.0")
    text = "\n".join(problems)
    assert "container health (helm test): image todo-backend is untagged (= latest)" in text
    assert "container migrate (hook): image todo-backend:v0.9.0, expected todo-backend:v1.0.0" in text
    assert "imagePullPolicy 'Always', required one of IfNotPresent, Never" in text
    assert "Chart appVersion v0.9.0 differs from the built tag v1.0.0" in text


def test_split_image_handles_registry_ports_and_digests():
    assert mp.split_image("localhost:5000/todo-backend") == ("localhost:5000/todo-backend", None)
    assert mp.split_image("localhost:5000/todo-backend:v1") == ("localhost:5000/todo-backend", "v1")
    assert mp.split_image("todo@sha256:abc") == ("todo", None)


def test_max_unavailable_1(release):
    release[0]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 1
    (problem,) = mp.rollout_problems(release)
    assert problem.startswith("Deployment/todo-backend: RollingUpdate maxUnavailable 1 = 1 pod(s) of 2, required 0")
    assert problem.endswith("Fix: set strategy.rollingUpdate.maxUnavailable: 0 in the chart's values.")


def test_default_strategy_and_recreate(release):
    del release[0]["spec"]["strategy"]["rollingUpdate"]
    assert mp.rollout_problems(release) == []  # the defaults, 25% of 2 replicas: surge 1 (up), unavailable 0 (down)
    release[0]["spec"]["replicas"] = 8
    problems = mp.rollout_problems(release)
    assert any("maxSurge 25% (default) = 2 pod(s) with 8 replicas, required 1" in p for p in problems)
    release[0]["spec"]["strategy"] = {"type": "Recreate"}
    (problem,) = mp.rollout_problems(release)
    assert "strategy Recreate, required RollingUpdate" in problem


def test_running_as_root(release):
    app_container(release)["securityContext"]["runAsUser"] = 0
    problems = mp.security_problems(release, UID)
    assert any(p.startswith("Deployment/todo-backend container todo-backend: runs as root (UID 0), required UID 1001")
               and "Fix:" in p for p in problems)


def test_pod_level_settings_apply_when_the_container_has_none(release):
    sc = app_container(release)["securityContext"]
    for key in ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile"):
        del sc[key]
    assert mp.security_problems(release, UID) == []


def test_each_restricted_rule(release):
    c = app_container(release)
    c["securityContext"].update(allowPrivilegeEscalation=True, readOnlyRootFilesystem=False, privileged=True,
                                capabilities={"add": ["NET_ADMIN"]}, seccompProfile={"type": "Unconfined"})
    pod = release[0]["spec"]["template"]["spec"]
    pod["securityContext"]["fsGroup"] = 0
    pod["hostNetwork"] = True
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    text = "\n".join(mp.security_problems(release, UID))
    for expected in ("allowPrivilegeEscalation is True, required false", "capabilities.drop is None, required [ALL]",
                     "capabilities.add is ['NET_ADMIN'], only NET_BIND_SERVICE is allowed",
                     "seccompProfile is {'type': 'Unconfined'}, required type RuntimeDefault",
                     "privileged is true, required false", "readOnlyRootFilesystem is False, required true",
                     "pod fsGroup 0, required 1001", "hostNetwork is true, required false",
                     "volume host is hostPath; Pod Security \"restricted\" allows only"):
        assert expected in text


def test_hook_and_test_pods_are_held_to_the_same_rules(release):
    release[2]["spec"]["securityContext"] = {}
    release[2]["spec"]["containers"][0]["securityContext"] = {}
    problems = mp.security_problems(release, UID)
    assert problems and all(p.startswith("Pod/todo-backend-test") for p in problems)


def test_writable_path_not_mounted(release):
    (problem,) = mp.writable_path_problems(release, ["/tmp", "/app/.next/cache"])
    assert problem.startswith("Deployment/todo-backend container todo-backend: /app/.next/cache is not mounted")
    assert "Fix: add it to writablePaths" in problem


def test_writable_path_on_a_read_only_volume(release):
    release[0]["spec"]["template"]["spec"]["volumes"] = [{"name": "tmp", "configMap": {"name": "x"}}]
    (problem,) = mp.writable_path_problems(release, ["/tmp"])
    assert "/tmp is mounted from tmp (configMap), which the app cannot write" in problem


def test_secret_value_in_a_configmap(release):
    release[3]["data"]["DATABASE_URL"] = "postgresql://todo:s3cr3t-pass@db:5432/todo"
    release[3]["data"]["OPENROUTER_API_KEY"] = "not-a-real-key-but-named-like-one"
    (problem,) = mp.secret_value_problems(release)
    assert problem.startswith("ConfigMap/todo-backend-config: 2 secret-looking value(s), limit 0: data.DATABASE_URL "
                              "(URL with a password); data.OPENROUTER_API_KEY (secret-named key OPENROUTER_API_KEY has "
                              "a value). Fix: put it in the Secret")
    assert "s3cr3t" not in problem  # a finding names where, never the value


def test_secret_value_in_a_literal_env(release):
    app_container(release)["env"].append({"name": "OPENROUTER_API_KEY", "value": "sk-or-v1-" + "a" * 40})
    (problem,) = mp.secret_value_problems(release)
    assert problem.startswith("Deployment/todo-backend container todo-backend: 1 secret-looking value(s), limit 0: "
                              "env OPENROUTER_API_KEY (OpenRouter/OpenAI key)")


def test_secret_in_a_values_file():
    values = {"secret": {"existingSecret": "", "name": "todo-backend-secret", "databaseUrl": "postgresql://u:pw1234@h/d",
                         "openrouterApiKey": ""},
              "env": [{"name": "API_TOKEN", "value": "abcdef123456"}, {"name": "LOG_LEVEL", "value": "INFO"}]}
    (problem,) = mp.values_secret_problems("charts/todo-backend/values.yaml", values)
    assert problem.startswith("charts/todo-backend/values.yaml: 2 secret-looking value(s), limit 0: "
                              "secret.databaseUrl (URL with a password); env[0].value (secret-named key API_TOKEN has "
                              "a value). Fix: remove it from the file")
    assert mp.values_secret_problems("v.yaml", {"secret": {"databaseUrl": "", "existingSecret": ""}}) == []


def test_field_invalid_for_the_target_kubernetes_version(release):
    # PodSpec.workloadRef exists from Kubernetes 1.35 on: valid there, unknown in 1.34.
    release[0]["spec"]["template"]["spec"]["workloadRef"] = {"name": "todo", "podGroup": "api"}
    assert mp.schema_problems(release, "1.35") == []
    (problem,) = mp.schema_problems(release, "1.34")
    assert problem.startswith("Deployment/todo-backend: spec.template.spec: Additional properties are not allowed "
                              "('workloadRef' was unexpected) (Kubernetes 1.34 schema, strict). Fix:")


def test_wrong_type_and_removed_api_version(release):
    release[0]["spec"]["replicas"] = "two"
    release.append({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
                    "spec": {"minAvailable": 1}})
    problems = mp.schema_problems(release, "1.34")
    assert problems[0].startswith("Deployment/todo-backend: spec.replicas: 'two' is not of type")
    assert problems[1].startswith("PodDisruptionBudget/pdb: apiVersion policy/v1beta1 kind PodDisruptionBudget does "
                                  "not exist in Kubernetes 1.34. Fix:")


def test_unsupported_kubernetes_version(release):
    (problem,) = mp.schema_problems(release, "1.99")
    assert problem.startswith("kubernetes-validate has no schemas for Kubernetes 1.99")


# --- what kube-score knows (issue 12) ---------------------------------------------------
# The component's values mapping as config.ValuesMapping carries it (our charts' keys).
OUR_VALUES = SimpleNamespace(resources="resources", liveness_probe="livenessProbe", readiness_probe="readinessProbe",
                             hook_resources="migrations.resources", test_resources="tests.resources",
                             pod_disruption_budget="podDisruptionBudget")


def service(release):
    return release[4]


def budget(release):
    return release[5]


def test_service_selector_that_matches_no_pod_template(release):
    service(release)["spec"]["selector"] = {"app": "b", "app.kubernetes.io/component": "apii"}
    (problem,) = mp.service_selector_problems(release)
    assert problem == (
        "Service/todo-backend: selector {app: b, app.kubernetes.io/component: apii} matches no pod template of this "
        "release (Deployment/todo-backend pods carry {app: b}); the Service would have no endpoints and every request "
        "to it would fail. Fix: make the Service's selector the labels the pod template carries (the chart's "
        "selectorLabels helper, used by both).")


def test_service_selecting_only_hook_or_test_pods_has_no_endpoints(release):
    release[1]["spec"]["template"]["metadata"] = {"labels": {"app": "migrate"}}
    service(release)["spec"]["selector"] = {"app": "migrate"}
    assert "matches no pod template" in mp.service_selector_problems(release)[0]


def test_service_named_target_port_that_no_container_declares(release):
    service(release)["spec"]["ports"][0]["targetPort"] = "web"
    (problem,) = mp.service_selector_problems(release)
    assert "port http targets the named port 'web', which no container of Deployment/todo-backend declares " \
           "(named ports: ['http'])" in problem


def test_services_without_selector_are_left_alone(release):
    service(release)["spec"] = {"type": "ExternalName", "externalName": "db.example.com"}
    assert mp.service_selector_problems(release) == []
    service(release)["spec"] = {"ports": [{"port": 5432}]}  # hand-made Endpoints
    assert mp.service_selector_problems(release) == []


@pytest.mark.parametrize("selector, labels, selected", [
    ({"app": "b"}, {"app": "b", "x": "y"}, True),
    ({"app": "b"}, {"app": "c"}, False),
    ({"matchLabels": {"app": "b"}}, {"app": "b"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api", "web"]}]}, {"tier": "web"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, {"tier": "web"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
    ({}, {"app": "b"}, False), (None, {"app": "b"}, False),
])
def test_label_selectors(selector, labels, selected):
    assert mp.selects(selector, labels) is selected


def test_identical_liveness_and_readiness(release):
    app_container(release)["readinessProbe"] = probe("/health")
    (problem,) = mp.identical_probe_problems(release, OUR_VALUES)
    assert problem.startswith("Deployment/todo-backend container todo-backend: livenessProbe and readinessProbe are "
                              "the same GET /health on port http, so a failing dependency")
    assert ("Fix: give readiness its own path that also checks what the pod needs to serve (the backend or database "
            "it calls): readiness_path in shipcheck.yaml (the suite sets readinessProbe.httpGet.path)") in problem
    # Same handler with other timings is still the same question asked twice.
    app_container(release)["readinessProbe"]["periodSeconds"] = 3
    assert len(mp.identical_probe_problems(release, OUR_VALUES)) == 1
    # Nothing to depend on (no connects_to): readiness has nothing more to check.
    assert mp.identical_probe_problems(release, OUR_VALUES, has_dependencies=False) == []


def test_missing_ephemeral_storage_names_each_containers_values(release):
    del app_container(release)["resources"]["limits"]["ephemeral-storage"]
    del release[1]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["ephemeral-storage"]
    app, hook = mp.ephemeral_storage_problems(release, OUR_VALUES)
    assert app.startswith("Deployment/todo-backend container todo-backend: no resources.limits.ephemeral-storage "
                          "(required on every container")
    assert "Fix: set resources.limits.ephemeral-storage in the chart's values" in app
    assert "Fix: set migrations.resources.requests.ephemeral-storage in the chart's values" in hook
    # helm create names (no mapping): the hook's resources have no value in such a chart.
    assert "Fix: add them to the template's resources" in mp.ephemeral_storage_problems(release)[1]


def test_two_replicas_without_a_disruption_budget(release):
    del release[5]
    (problem,) = mp.pdb_problems(release, OUR_VALUES)
    assert problem == ("Deployment/todo-backend: 2 replicas and no PodDisruptionBudget selects its pods: a node drain "
                       "(a cluster upgrade, an autoscaler scale-down) may evict every replica at once. Fix: set "
                       "podDisruptionBudget.enabled: true in the chart's values.")
    assert "add a PodDisruptionBudget to the chart (templates/pdb.yaml)" in mp.pdb_problems(release)[0]
    release[0]["spec"]["replicas"] = 1
    assert mp.pdb_problems(release) == []  # one replica: not required


@pytest.mark.parametrize("spec, replicas, allowed", [
    ({"maxUnavailable": 1}, 2, 1), ({"minAvailable": 1}, 2, 1), ({"minAvailable": "50%"}, 2, 1),
    ({"minAvailable": 2}, 2, 0), ({"minAvailable": "100%"}, 3, 0), ({"maxUnavailable": 0}, 2, 0),
    ({"maxUnavailable": "50%"}, 3, 2), ({"minAvailable": "50%"}, 3, 1), ({"maxUnavailable": 5}, 2, 2), ({}, 2, 0),
])
def test_disruptions_allowed_with_every_replica_healthy(spec, replicas, allowed):
    assert mp.disruptions_allowed({"spec": spec}, replicas) == allowed


def test_a_budget_that_blocks_every_drain(release):
    budget(release)["spec"] = {"minAvailable": 2, "selector": {"matchLabels": {"app": "b"}}}
    (problem,) = mp.pdb_problems(release, OUR_VALUES)
    assert problem == ("PodDisruptionBudget/todo-backend (minAvailable 2, 2 replicas): allows 0 evictions with every "
                       "replica healthy, required at least 1: `kubectl drain` waits forever on these pods. Fix: set "
                       "podDisruptionBudget.maxUnavailable: 1 (or podDisruptionBudget.minAvailable at most 1).")
    release[0]["spec"]["replicas"] = 1
    budget(release)["spec"]["minAvailable"] = 1  # the classic: minAvailable 1 on one replica
    assert "allows 0 evictions" in mp.pdb_problems(release)[0]


def test_a_budget_that_protects_nothing_or_twice(release):
    budget(release)["spec"]["maxUnavailable"] = "100%"
    (problem,) = mp.pdb_problems(release)
    assert "allows 2 evictions of 2 replicas, so a drain may take every pod at once" in problem
    budget(release)["spec"]["maxUnavailable"] = 1
    release.append(copy.deepcopy(budget(release)) | {"metadata": {"name": "extra"}})
    assert "selected by 2 PodDisruptionBudgets (PodDisruptionBudget/todo-backend, PodDisruptionBudget/extra)" in \
        mp.pdb_problems(release)[0]


def test_a_quota_fit_with_nothing_to_sum_fails():
    from shipcheck import quota

    helm_create = [{"kind": "Deployment", "metadata": {"name": "mychart"},
                    "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "resources": {}}]}}}}]
    hard = {"requests.cpu": "3", "limits.memory": "8Gi", "pods": "10"}
    (problem,) = mp.quota_measured_problems([quota.footprint("mychart", helm_create)], hard, "todo-quota")
    assert problem == ("Deployment/mychart (serving pods): no requests.cpu, limits.memory: the quota todo-quota limits "
                       "requests.cpu, limits.memory, so the fit check counted these pods as 0 and the namespace would "
                       "refuse them (\"must specify requests.cpu\"). Fix: set resources.requests and resources.limits "
                       "in the chart's values.")
