"""Configuration v2: defaults, the schema's agreement with the code, paths inside the
repository, references between fields, overrides, and one clear error per bad field
(config.py, config_schema.py, config_yaml.py, shipcheck.schema.json).

Configurations are written to a tmp dir, except the last tests, which load the repo's own
shipcheck.yaml as it is and compare the README's table with the schema.
"""

import dataclasses
import functools
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from shipcheck import config, config_schema, validate
from shipcheck.config import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path):
    """A tmp project dir (not in git: it is its own repository) with a context and its
    Dockerfile, a chart and a values file."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "charts" / "web").mkdir(parents=True)
    (tmp_path / "charts" / "web" / "Chart.yaml").write_text("name: web\n")
    (tmp_path / "values.yaml").write_text("{}\n")
    return tmp_path


def minimal() -> dict:
    return {
        "app": "todo",
        "version": "v1.2.3",
        "components": {
            "web": {"context": "app", "image": "todo-web", "port": 3000, "health_path": "/health", "size_budget_mb": 200},
        },
    }


def full() -> dict:
    """Every kind of field at once: a database, two apps, secrets, config maps and checks."""
    doc = minimal()
    doc["entry"] = "web"
    doc["components"]["web"].update(chart="charts/web", connects_to=["api"], run_env={"API": "http://api:8000"})
    doc["components"]["api"] = {"context": "app", "dockerfile": "app/Dockerfile", "image": "todo-api", "port": 8000,
                                "health_path": "/health", "readiness_path": "/ready", "size_budget_mb": 300,
                                "tag": "v9", "target": "runtime", "build_args": {"MODE": "prod"},
                                "connects_to": ["db"], "run_env": {"DATABASE_URL": "${secret:api-secret:url}"},
                                "migrate_command": ["alembic", "upgrade", "head"], "chart": "charts/web",
                                "release": "todo-api", "values_files": ["values.yaml"],
                                "values": {"existing_secret": "secret.existingSecret", "liveness_probe": None}}
    doc["components"]["db"] = {"role": "database", "context": "app", "image": "todo-db", "port": 5432, "uid": 999,
                               "size_budget_mb": 250.5, "chart": "charts/web",
                               "database": {"user": "todo", "name": "todo", "password_secret": "db-auth",
                                            "password_key": "password"}}
    doc["secrets"] = {"api-secret": {"url": {"database_url": {"scheme": "postgresql+psycopg", "env": "DATABASE_URL",
                                                                "database": "db"}},
                                     "key": {"env": "API_KEY", "optional": True},
                                     "auth": {"generate": 48}}}
    doc["config_maps"] = {"settings": {"LOG_LEVEL": "info"}}
    doc["checks"] = [
        {"name": "health", "request": {"path": "/health"}, "expect": {"status": 200}},
        {"name": "create", "component": "api", "stages": [5],
         "request": {"method": "POST", "path": "/api/{user}/items", "json": {"title": "x {run}"}},
         "expect": {"status": 201, "json_exists": ["$.id"]}, "capture": {"item": "$.id"}},
        {"name": "page", "browser": {"path": "/items/{item}", "expect_text": "x {run}"}},
    ]
    return doc


def write(project: Path, doc, name: str = "shipcheck.yaml") -> Path:
    path = project / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def load(project: Path, doc, overrides=None) -> config.Config:
    return config.load(write(project, doc), overrides)


def problems_of(project: Path, doc, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(project, doc, overrides)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# --- a valid configuration ---------------------------------------------------------------
def test_minimal_configuration_gets_the_documented_defaults(project):
    cfg = load(project, minimal())
    web = cfg.components["web"]
    assert (web.role, web.uid, web.writable_paths, web.run_env, web.base_images, web.build_args) == (
        "app", 1001, ("/tmp",), {}, {}, {})
    assert web.tag == "v1.2.3" and web.image_ref == "todo-web:v1.2.3" and cfg.image_ref(web) == "todo-web:v1.2.3"
    assert web.dockerfile == project / "app" / "Dockerfile"  # <context>/Dockerfile
    assert web.readiness_path == "/health"  # the health path
    assert (web.chart, web.release, web.values_files, web.target, web.database) == (None, None, (), None, None)
    assert web.values == config.ValuesMapping() and web.connects_to == () and web.migrate_command == ()
    assert (cfg.hadolint_threshold, cfg.namespace, cfg.cluster_provider, cfg.kubernetes_version) == (
        "warning", "default", "auto", "1.34")
    assert cfg.timeouts_s == config.DEFAULT_TIMEOUTS_S and cfg.timeouts_s is not config.DEFAULT_TIMEOUTS_S
    assert cfg.timeouts_s["readiness_grace"] == 60.0
    assert (cfg.resource_quota, cfg.secrets, cfg.config_maps, cfg.checks) == ({}, {}, {}, ())
    assert (cfg.source_url, cfg.registry, cfg.entry) == ("", "", "web")  # the only app is the entry
    assert cfg.entry_component is web and cfg.root == project


def test_every_kind_of_field_parses(project):
    cfg = load(project, full())
    web, api, db = (cfg.components[n] for n in ("web", "api", "db"))
    assert list(cfg.components) == ["web", "api", "db"]  # the order written
    assert cfg.apps == [web, api] and cfg.databases == [db] and cfg.entry_component is web
    assert (web.release, api.release, db.release) == ("web", "todo-api", "db")
    assert api.image_ref == "todo-api:v9" and cfg.image_ref(api) == "todo-api:v9"  # its own tag wins
    assert (api.target, api.build_args, api.readiness_path) == ("runtime", {"MODE": "prod"}, "/ready")
    assert api.values_files == (project / "values.yaml",) and api.chart == project / "charts" / "web"
    assert api.values == config.ValuesMapping(existing_secret="secret.existingSecret", liveness_probe=None)
    assert api.values.image_repository == "image.repository" and api.values.readiness_probe == "readinessProbe"
    assert db.database == config.Database("todo", "todo", "db-auth", "password") and db.health_path is None
    assert (db.uid, db.size_budget_mb, db.readiness_path) == (999, 250.5, None)
    assert web.connects_to == ("api",) and api.migrate_command == ("alembic", "upgrade", "head")
    assert cfg.secrets == {"api-secret": {
        "url": config.KeySource("database_url", env="DATABASE_URL", scheme="postgresql+psycopg", database="db"),
        "key": config.KeySource("env", env="API_KEY", optional=True),
        "auth": config.KeySource("generate", length=48)}}
    assert cfg.config_maps == {"settings": {"LOG_LEVEL": "info"}}
    health, create, page = cfg.checks
    assert health == config.Check("health", "web", (2, 5), {"method": "GET", "path": "/health"}, {"status": 200}, {}, None)
    assert (create.component, create.stages, create.capture) == ("api", (5,), {"item": "$.id"})
    assert create.request["json"] == {"title": "x {run}"} and create.request["method"] == "POST"
    assert page == config.Check("page", "web", (5,), None, {}, {}, {"path": "/items/{item}", "expect_text": "x {run}"})
    assert repr(web) == "<Component web>"


def test_deprecated_shims_for_callers_not_yet_moved(project):
    cfg = load(project, full())
    assert cfg.components["api"].uses_database is True  # run_env takes the database_url key
    assert cfg.components["web"].uses_database is False


def test_a_config_built_by_hand_falls_back_to_the_version_for_its_image_ref():
    web = config.Component("web", Path("/c"), Path("/c/Dockerfile"), "todo-web", 3000, 100)
    cfg = config.Config(root=Path("/"), app="a", version="v1", components={"web": web})
    assert cfg.image_ref(web) == "todo-web:v1"


def test_numbers_become_the_types_the_code_expects(project):
    doc = minimal()
    doc["components"]["web"].update(port=3000.0, size_budget_mb=200)
    doc["timeouts_s"] = {"build": 60, "deploy": 12.5}
    doc["resource_quota"] = {"pods": 10, "requests.cpu": "3", "limits.memory": "8Gi", "limits.cpu": 0.5}
    cfg = load(project, doc)
    assert type(cfg.components["web"].port) is int and type(cfg.components["web"].size_budget_mb) is float
    assert cfg.timeouts_s == {**config.DEFAULT_TIMEOUTS_S, "build": 60.0, "deploy": 12.5}
    assert cfg.resource_quota == {"pods": "10", "requests.cpu": "3", "limits.memory": "8Gi", "limits.cpu": "0.5"}


@pytest.mark.parametrize("image", ["ghcr.io/example/todo-web", "localhost:5001/todo-web", "a/b/c_d", "todo.web"])
def test_image_repositories_with_a_registry_or_path_are_accepted(project, image):
    doc = minimal()
    doc["components"]["web"]["image"] = image
    assert load(project, doc).components["web"].image_ref == f"{image}:v1.2.3"


@pytest.mark.parametrize("key", ["requests.cpu", "limits.ephemeral-storage", "count/deployments.apps",
                                 "gold.storageclass.storage.k8s.io/requests.storage", "requests.nvidia.com/gpu",
                                 "hugepages-2Mi", "services.loadbalancers"])
def test_every_kind_of_quota_key_is_accepted(project, key):
    doc = minimal()
    doc["resource_quota"] = {key: "2"}
    assert load(project, doc).resource_quota == {key: "2"}


# --- the schema and the code agree ---------------------------------------------------------
def test_the_schema_is_valid_draft_2020_12():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(config_schema.schema())
    assert config_schema.schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _defs(name):
    return config_schema.schema()["$defs"][name]["properties"]


def test_the_schema_defaults_are_the_codes_defaults():
    mapping = _defs("valuesMapping")
    assert {f.name: f.default for f in dataclasses.fields(config.ValuesMapping)} == {
        k: v["default"] for k, v in mapping.items()}
    top = config_schema.schema()["properties"]
    assert {k: v["default"] for k, v in top["timeouts_s"]["properties"].items()} == config.DEFAULT_TIMEOUTS_S
    component = {f.name: f.default for f in dataclasses.fields(config.Component)}
    assert (component["uid"], component["role"], list(component["writable_paths"])) == (
        _defs("component")["uid"]["default"], _defs("component")["role"]["default"],
        _defs("component")["writable_paths"]["default"])
    cfg = {f.name: f.default for f in dataclasses.fields(config.Config)}
    for key in ("hadolint_threshold", "namespace", "kubernetes_version", "cluster_provider", "source_url", "registry"):
        assert cfg[key] == top[key]["default"], key
    assert tuple(top["cluster_provider"]["enum"]) == config.PROVIDERS
    assert tuple(top["hadolint_threshold"]["enum"]) == config.HADOLINT_THRESHOLDS
    assert tuple(_defs("component")["role"]["enum"]) == config.ROLES


def test_the_dataclasses_have_a_field_for_every_schema_property():
    pairs = [(config.ValuesMapping, "valuesMapping"), (config.Database, "database")]
    for cls, name in pairs:
        assert {f.name for f in dataclasses.fields(cls)} == set(_defs(name)), cls
    component = {f.name for f in dataclasses.fields(config.Component)}
    assert set(_defs("component")) <= component
    assert set(config_schema.schema()["properties"]) <= {f.name for f in dataclasses.fields(config.Config)}


# --- paths: relative to the file, inside the repository --------------------------------------
def test_paths_resolve_against_the_config_files_directory(project, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    doc = minimal()
    doc["components"]["web"].update(chart="charts/web", values_files=["values.yaml"])
    web = load(project, doc).components["web"]
    assert web.context == project / "app" and web.dockerfile == project / "app" / "Dockerfile"
    assert web.chart == project / "charts" / "web" and web.values_files == (project / "values.yaml",)
    assert web.context.is_absolute()


def test_absolute_paths_inside_the_repository_are_allowed(project):
    doc = minimal()
    doc["components"]["web"].update(context=str(project / "app"), dockerfile=str(project / "app" / "Dockerfile"))
    assert load(project, doc).components["web"].context == project / "app"


def test_the_repository_is_the_git_top_level_above_the_file(project):
    (project / ".git").mkdir()
    (project / "deploy").mkdir()
    doc = minimal()
    doc["components"]["web"]["context"] = "../app"  # beside the config's directory, inside the repository
    assert config.load(write(project / "deploy", doc)).components["web"].context == project / "app"
    assert config.repository_of(project / "deploy") == project
    assert config.repository_of(REPO / "shipcheck") == REPO  # a worktree's .git is a file


@pytest.mark.parametrize("where, value", [("context", "/"), ("context", ".."), ("dockerfile", "/etc/hostname"),
                                          ("values_files", ["/etc/hostname"])])
def test_a_path_outside_the_repository_is_refused(project, where, value):
    doc = minimal()
    doc["components"]["web"]["chart"] = "charts/web"
    doc["components"]["web"][where] = value
    field = f"components.web.{where}" + ("[0]" if isinstance(value, list) else "")
    shown = value[0] if isinstance(value, list) else value
    assert f"{field}: {shown!r} is outside the repository {project}; the build and charts may only read files " \
           "inside it (move it in, or the configuration next to it)" in problems_of(project, doc)


def test_a_symlink_out_of_the_repository_is_refused(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (project / "escape").symlink_to(outside)
    doc = minimal()
    doc["components"]["web"].update(context="escape", dockerfile="app/Dockerfile")
    assert problems_of(project, doc) == [f"components.web.context: 'escape' is outside the repository {project}; "
                                         "the build and charts may only read files inside it (move it in, or the "
                                         "configuration next to it)"]


# --- one clear error per bad field -------------------------------------------------------------
def _set(path: str, value):
    """A mutation of a document: set (or, with DELETE, remove) a dotted path; digits index lists."""
    def mutate(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is DELETE:
            del target[last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
        return doc
    return mutate


DELETE = object()
WEB, API = "components.web", "components.api"
TAG_RULE = ("must be an image tag other than 'latest': at most 128 letters, digits, '_', '.' and '-', not starting "
            "with '.' or '-'")
LABEL_RULE = ("must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a "
              "letter or digit")

BAD = [
    # (mutation of full(), an exact problem line)
    (_set("app", DELETE), "app: required field is missing"),
    (_set("namspace", "todo"), "namspace: unknown key; did you mean namespace? (known: app, version, source_url, "
                               "entry, registry, registry_ca, namespace, resource_quota, kubernetes_version, timeouts_s, "
                               "hadolint_threshold, cluster_provider, components, secrets, config_maps, checks)"),
    (_set("version", "latest"), f"version: {TAG_RULE}, got 'latest'"),
    (_set("version", "v1 0"), f"version: {TAG_RULE}, got 'v1 0'"),
    (_set("version", 1.0), "version: expected a string, got number 1.0 (quote it)"),
    (_set(f"{API}.tag", "latest"), f"{API}.tag: {TAG_RULE}, got 'latest'"),
    (_set("components", {}), "components: at least one component is required"),
    (_set("components", ["web"]), "components: expected a mapping, got list [\"web\"]"),
    (_set(f"{WEB}.port", DELETE), f"{WEB}.port: required field is missing"),
    (_set(f"{WEB}.size_budget", 100), f"{WEB}.size_budget: unknown key; did you mean size_budget_mb? (known: role, "
                                      "context, dockerfile, target, image, tag, build_args, base_images, port, "
                                      "helm_test, health_path, readiness_path, uid, size_budget_mb, writable_paths, connects_to, "
                                      "run_env, migrate_command, chart, release, values_files, values, database)"),
    (_set(f"{WEB}.port", "3000"), f"{WEB}.port: expected a whole number, got string '3000'"),
    (_set(f"{WEB}.port", True), f"{WEB}.port: expected a whole number, got boolean true"),
    (_set(f"{WEB}.port", 0), f"{WEB}.port: must be 1-65535, got 0"),
    (_set(f"{WEB}.port", 70000), f"{WEB}.port: must be 1-65535, got 70000"),
    (_set(f"{WEB}.size_budget_mb", 0), f"{WEB}.size_budget_mb: must be positive, got 0"),
    (_set(f"{WEB}.size_budget_mb", -5.5), f"{WEB}.size_budget_mb: must be positive, got -5.5"),
    (_set(f"{WEB}.size_budget_mb", float("nan")), f"{WEB}.size_budget_mb: must be a finite number, got nan"),
    (_set(f"{WEB}.size_budget_mb", "200MB"), f"{WEB}.size_budget_mb: expected a number, got string '200MB'"),
    (_set(f"{WEB}.role", "worker"), f"{WEB}.role: must be one of app, database, got 'worker'"),
    (_set(f"{WEB}.uid", 0), f"{WEB}.uid: must be a non-root UID, 1-4294967294, got 0"),
    (_set(f"{WEB}.uid", 2**32 - 1), f"{WEB}.uid: must be a non-root UID, 1-4294967294, got 4294967295"),
    (_set(f"{WEB}.health_path", "health"), f"{WEB}.health_path: must be a path starting with '/', without spaces, "
                                           "got 'health'"),
    (_set(f"{API}.readiness_path", "/re ady"), f"{API}.readiness_path: must be a path starting with '/', without "
                                               "spaces, got '/re ady'"),
    (_set(f"{WEB}.health_path", DELETE), f"{WEB}.health_path: required for app components (role app)"),
    (_set("components.db.database", DELETE), "components.db.database: required for role database"),
    (_set(f"{WEB}.database", {"user": "a", "name": "b", "password_secret": "c", "password_key": "d"}),
     f"{WEB}.database: only for role database"),
    (_set(f"{WEB}.image", "todo-web:v1"), f"{WEB}.image: must be an image repository without a tag or digest (the "
                                          "tag is 'tag', else 'version'), e.g. todo-backend or "
                                          "registry.example.com/team/todo-backend, got 'todo-web:v1'"),
    (_set(f"{WEB}.writable_paths", ["tmp"]), f"{WEB}.writable_paths[0]: must be an absolute path without spaces, "
                                             "got 'tmp'"),
    (_set(f"{WEB}.writable_paths", "/tmp"), f"{WEB}.writable_paths: expected a list, got string '/tmp'"),
    (_set(f"{WEB}.writable_paths", ["/tmp", "/tmp"]), f"{WEB}.writable_paths: entries must be unique, got "
                                                      "[\"/tmp\", \"/tmp\"]"),
    (_set(f"{WEB}.base_images", {"BASE": 3}), f"{WEB}.base_images.BASE: expected a string, got integer 3 (quote it)"),
    (_set(f"{WEB}.build_args", {"1X": "a"}), f"{WEB}.build_args.1X: must be an environment variable name: letters, "
                                             "digits and '_', not starting with a digit, got '1X'"),
    (_set(f"{WEB}.run_env", {"PORT": 8000}), f"{WEB}.run_env.PORT: expected a string, got integer 8000 (quote it)"),
    (_set(f"{WEB}.run_env", {"DEBUG": True}), f"{WEB}.run_env.DEBUG: expected a string, got boolean true (YAML reads "
                                              "yes/no/on/off/true/false as booleans: quote it)"),
    (_set(f"{WEB}.uses_database", True), f"{WEB}.uses_database: removed in configuration version 2: declare the "
                                         "Secret under secrets with a database_url source, and pass it in run_env as "
                                         "${secret:NAME:KEY}"),
    (_set("stand_in_base_images", {}), "stand_in_base_images: removed in configuration version 2: stand-ins now "
                                       "answer to the official image names (setup/base-images.sh); delete it"),
    (_set(f"{WEB}.context", "nope"), f"{WEB}.context: directory 'nope' does not exist (looked in {{project}})"),
    (_set(f"{WEB}.context", "app/Dockerfile"), f"{WEB}.context: directory 'app/Dockerfile' does not exist (looked "
                                               "in {project})"),
    (_set(f"{API}.dockerfile", "app"), f"{API}.dockerfile: file 'app' does not exist (looked in {{project}})"),
    (_set(f"{WEB}.context", "values.yaml"), f"{WEB}.context: directory 'values.yaml' does not exist (looked in "
                                            "{project})"),
    (_set(f"{WEB}.chart", "charts/api"), f"{WEB}.chart: directory 'charts/api' does not exist (looked in {{project}})"),
    (_set(f"{WEB}.chart", "app"), f"{WEB}.chart: 'app' has no Chart.yaml; give a Helm chart directory"),
    (_set(f"{API}.values_files", ["prod.yaml"]), f"{API}.values_files[0]: file 'prod.yaml' does not exist (looked "
                                                 "in {project})"),
    (_set(f"{API}.values_files", [1]), f"{API}.values_files[0]: expected a string, got integer 1 (quote it)"),
    (_set(f"{WEB}.values", {"image_tag": "image tag"}), f"{WEB}.values.image_tag: must be a dotted chart value key "
                                                        "such as image.repository, or null when the chart has no such "
                                                        "value, got 'image tag'"),
    (_set(f"{WEB}.values", {"probes": "x"}), f"{WEB}.values.probes: unknown key (known: image_repository, image_tag, "
                                             "image_pull_policy, service_port, fullname_override, liveness_probe, "
                                             "readiness_probe, startup_probe, resources, pod_security_context, security_context, "
                                             "pod_annotations, existing_secret, migrate_command, hook_resources, "
                                             "test_resources, pod_disruption_budget, network_policy_clients, database_user, "
                                             "database_name, image_pull_secrets)"),
    (_set(f"{API}.release", "todo-api-" + "x" * 45), f"{API}.release: must be a Helm release name: a DNS-1123 label "
                                                     "of at most 53 characters, got 'todo-api-" + "x" * 45 + "'"),
    (_set(f"{API}.release", "web"), f"{API}.release: 'web' is also the release of components.web; two charts in one "
                                    "release overwrite each other: give each its own"),
    (_set(f"{WEB}.release", "Web"), f"{WEB}.release: {LABEL_RULE}, got 'Web'"),
    (_set(f"{WEB}.connects_to", ["apii"]), f"{WEB}.connects_to: 'apii' is not another component (components: web, "
                                           "api, db)"),
    (_set(f"{WEB}.connects_to", ["web"]), f"{WEB}.connects_to: 'web' is not another component (components: web, "
                                          "api, db)"),
    (_set("entry", "db"), "entry: 'db' is not an app component (app components: web, api)"),
    (_set("entry", DELETE), "entry: required when there is more than one app component (web, api): name the one "
                            "users reach"),
    (_set("entry", "Web"), f"entry: {LABEL_RULE}, got 'Web'"),
    (_set("hadolint_threshold", "fatal"), "hadolint_threshold: must be one of error, warning, info, style, got 'fatal'"),
    (_set("namespace", "Todo"), f"namespace: {LABEL_RULE}, got 'Todo'"),
    (_set("namespace", "n" * 64), f"namespace: {LABEL_RULE}, got '{'n' * 60}'... (64 characters)"),
    (_set("timeouts_s", {"buidl": 10}), "timeouts_s.buidl: unknown key; did you mean build? (known: build, "
                                        "container_healthy, deploy, readiness_grace)"),
    (_set("timeouts_s", {"build": 0}), "timeouts_s.build: must be a positive number of seconds, got 0"),
    (_set("timeouts_s", {"build": True}), "timeouts_s.build: expected a number, got boolean true"),
    (_set("timeouts_s", {"deploy": float("inf")}), "timeouts_s.deploy: must be a finite number, got inf"),
    (_set("cluster_provider", "gke"), "cluster_provider: must be one of auto, existing, minikube, kind, k3d, local, "
                                      "got 'gke'"),
    (_set("kubernetes_version", "v1.34"), "kubernetes_version: must be MAJOR.MINOR such as \"1.34\", got 'v1.34'"),
    (_set("kubernetes_version", 1.30), "kubernetes_version: expected a string, got number 1.3 (quote it)"),
    (_set("registry", "https://registry.example.com"), "registry: must be host[:port][/path] (e.g. "
                                                       "registry.example.com:5000/team) or empty, got "
                                                       "'https://registry.example.com'"),
    (_set("source_url", "github.com/x"), "source_url: must be an http(s):// URL or empty, got 'github.com/x'"),
    (_set("resource_quota", ["pods=10"]), "resource_quota: expected a mapping, got list [\"pods=10\"]"),
    (_set("resource_quota", {"pods": "lots"}), "resource_quota.pods: must be a non-negative Kubernetes quantity such "
                                               "as 3, 500m or 8Gi, got 'lots'"),
    (_set("resource_quota", {"pods": None}), "resource_quota.pods: expected a string or a number, got null"),
    (_set("resource_quota", {"pods": "2.5"}), "resource_quota.pods: must be a whole number of objects, got '2.5'"),
    (_set("resource_quota", {"requests.cpu": "-1"}), "resource_quota.requests.cpu: must be a non-negative Kubernetes "
                                                     "quantity such as 3, 500m or 8Gi, got '-1'"),
    (_set("resource_quota", {"limits.memory": "8GB"}), "resource_quota.limits.memory: must be a non-negative "
                                                       "Kubernetes quantity such as 3, 500m or 8Gi, got '8GB'"),
    (_set("resource_quota", {"requests.gpu": "1"}), "resource_quota.requests.gpu: not a ResourceQuota key (known: "
                                                    "configmaps, cpu, ephemeral-storage, limits.cpu, "
                                                    "limits.ephemeral-storage, limits.memory, memory, "
                                                    "persistentvolumeclaims, pods, replicationcontrollers, "
                                                    "requests.cpu, requests.ephemeral-storage, requests.memory, "
                                                    "requests.storage, resourcequotas, secrets, services, "
                                                    "services.loadbalancers, services.nodeports, count/<resource>)"),
    (_set("secrets.api-secret.key", {"env": "API_KEY", "generate": 32}),
     "secrets.api-secret.key: give exactly one source: env, generate or database_url"),
    (_set("secrets.api-secret.key", {}), "secrets.api-secret.key: give exactly one source: env, generate or "
                                         "database_url"),
    (_set("secrets.api-secret.auth", {"generate": 32, "optional": True}),
     "secrets.api-secret.auth: optional applies only to env"),
    (_set("secrets.api-secret.auth", {"generate": 8}), "secrets.api-secret.auth.generate: must be a length of 16-1024 "
                                                       "characters, got 8"),
    (_set("secrets.api-secret.key", {"env": "api-key"}), "secrets.api-secret.key.env: must be the name of an environment "
                                                         "variable (letters, digits and '_'), not its value (the value "
                                                         "is not shown: it may be a secret)"),
    (_set("secrets.api-secret.key", {"env": 42}), "secrets.api-secret.key.env: expected a string, got integer "
                                                  "(not shown) (quote it)"),
    (_set("secrets.api-secret.url.database_url.scheme", "mysql"), "secrets.api-secret.url.database_url.scheme: must "
                                                                   "be postgres, postgresql or postgresql+DRIVER, got "
                                                                   "'mysql'"),
    (_set("secrets.api-secret.url.database_url", {"scheme": "postgresql"}),
     "secrets.api-secret.url.database_url: give env (an external database), database (a database component), or both"),
    (_set("secrets.api-secret.url.database_url.database", "api"), "secrets.api-secret.url.database_url.database: "
                                                                  "'api' is not a database component (database "
                                                                  "components: db)"),
    (_set("secrets.api-secret", {}), "secrets.api-secret: a Secret needs at least one key"),
    (_set("secrets.Api_Secret", {"k": {"generate": 32}}), "secrets.Api_Secret: must be a Kubernetes object name: at "
                                                          "most 253 lowercase letters, digits, '-' and '.', starting "
                                                          "and ending with a letter or digit, got 'Api_Secret'"),
    (_set("secrets.db-auth", {"k": {"generate": 32}}), "components.db.database.password_secret: 'db-auth' is also "
                                                       "declared in secrets; the suite creates it from the database "
                                                       "block: use another name"),
    (_set(f"{API}.run_env", {"URL": "${secret:api-secret:nope}"}), f"{API}.run_env.URL: ${{secret:api-secret:nope}} "
                                                                   "names no declared Secret key (secrets: "
                                                                   "api-secret:url, api-secret:key, api-secret:auth, "
                                                                   "db-auth:password)"),
    (_set("config_maps.settings", {"PORT": 8080}), "config_maps.settings.PORT: expected a string, got integer 8080 "
                                                   "(quote it)"),
    (_set("checks.0.name", DELETE), "checks[0].name: required field is missing"),
    (_set("checks.1.name", "health"), "checks[1].name: 'health' is the name of an earlier check; names must be unique"),
    (_set("checks.0.component", "db"), "checks[0].component: 'db' is not an app component (app components: web, api)"),
    (_set("checks.0.component", "nope"), "checks[0].component: 'nope' is not an app component (app components: web, "
                                         "api)"),
    (_set("checks.0.stages", [3]), "checks[0].stages[0]: must be one of 2, 5, got 3"),
    (_set("checks.0.stages", []), "checks[0].stages: needs at least 1 entry"),
    (_set("checks.0.request.method", "FETCH"), "checks[0].request.method: must be one of GET, HEAD, POST, PUT, PATCH, "
                                               "DELETE, OPTIONS, got 'FETCH'"),
    (_set("checks.0.request.path", "health"), "checks[0].request.path: must be a path starting with '/', without "
                                              "spaces, got 'health'"),
    (_set("checks.0.expect.status", 99), "checks[0].expect.status: must be 100-599, got 99"),
    (_set("checks.0.expect.json", {"title": "x"}), "checks[0].expect.json.title: must be a JSON path such as "
                                                   "$.a.b[0].c ('$', then .name or [index] steps), got 'title'"),
    (_set("checks.0.browser", {"path": "/"}), "checks[0]: give either request (with expect, capture) or browser"),
    (_set("checks.2.expect", {"status": 200}), "checks[2]: give either request (with expect, capture) or browser"),
    (_set("checks.2.browser", {"path": "/"}), "checks[2].browser: give expect_text, expect_selector or both"),
    (_set("checks.0.request.path", "/api/{task_id}"), "checks[0].request: {task_id} is not captured by an earlier "
                                                      "check that runs in stages [2, 5] (variables: user, run)"),
    (_set("checks.2.stages", [2, 5]), "checks[2].browser: {item} is not captured by an earlier check that runs in "
                                      "stages [2, 5] (variables: user, run, item)"),
    (_set("checks.1.capture", {"user": "$.id"}), "checks[1].capture.user: is a built-in variable; choose another name"),
]

@pytest.mark.parametrize("mutate, problem", BAD, ids=[p[:70] for _, p in BAD])
def test_a_bad_field_is_named_in_the_error(project, mutate, problem):
    assert problem.replace("{project}", str(project)) in problems_of(project, mutate(full()))


def test_every_problem_is_reported_at_once(project):
    doc = full()
    doc["components"]["web"]["port"] = 0
    doc["namespace"] = "Todo"
    doc["version"] = "latest"
    assert len(problems_of(project, doc)) == 3


def test_references_and_paths_are_checked_together(project):
    doc = full()
    doc["entry"] = "db"
    doc["components"]["web"]["context"] = "nope"
    assert [p.split(":")[0] for p in problems_of(project, doc)] == ["entry", "components.web.context"]


def test_a_wrong_context_does_not_also_blame_the_default_dockerfile(project):
    doc = minimal()
    doc["components"]["web"]["context"] = "nope"
    assert problems_of(project, doc) == [f"components.web.context: directory 'nope' does not exist (looked in {project})"]


def test_release_values_files_and_values_need_a_chart(project):
    doc = minimal()
    doc["components"]["web"].update(release="web", values_files=["values.yaml"], values={"resources": None})
    assert problems_of(project, doc) == [f"components.web.{k}: only used with a chart; add chart or remove {k}"
                                         for k in ("release", "values_files", "values")]


def test_a_key_that_yaml_reads_as_a_boolean_is_named(project):
    path = project / "shipcheck.yaml"
    path.write_text(yaml.safe_dump(minimal()) + "config_maps:\n  flags:\n    on: 'yes'\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.problems == ["config_maps.flags.True: the key is boolean true, not a string (YAML reads "
                                   "yes/no/on/off as booleans and digits as numbers: quote it)"]


def test_a_component_name_must_be_a_dns_label(project):
    doc = minimal()
    doc["components"]["Todo_Web"] = doc["components"].pop("web")
    assert problems_of(project, doc) == [f"components.Todo_Web: {LABEL_RULE}, got 'Todo_Web'"]


def test_a_component_must_be_a_mapping(project):
    doc = minimal()
    doc["components"]["web"] = "app"
    assert problems_of(project, doc) == ["components.web: expected a mapping, got string 'app'"]


def test_no_app_component_means_no_entry(project):
    doc = minimal()
    doc["components"]["web"].update(role="database", database={"user": "u", "name": "n", "password_secret": "s",
                                                               "password_key": "k"})
    assert problems_of(project, doc) == ["entry: required when there is no app component (every component has role "
                                         "database): name the one users reach"]


# --- the file itself -----------------------------------------------------------------------
def file_problem(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        config.load(path)
    (problem,) = info.value.problems
    return problem


def test_a_missing_file_says_how_to_point_at_one(tmp_path):
    assert file_problem(tmp_path / "nope.yaml") == (f"configuration file {tmp_path / 'nope.yaml'} does not exist (set "
                                                    "--shipcheck-config or SHIPCHECK_CONFIG)")


def test_a_directory_is_not_a_configuration_file(tmp_path):
    assert file_problem(tmp_path) == (f"configuration file {tmp_path} is a directory; give the file, e.g. "
                                      f"{tmp_path / 'shipcheck.yaml'}")


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "shipcheck.yaml"
    path.write_bytes(b"app: caf\xe9\n")
    assert file_problem(path) == f"configuration file {path}: not UTF-8 text (byte 0xe9 at offset 8); save it as UTF-8"


def test_a_utf8_byte_order_mark_is_fine(project):
    path = write(project, minimal())
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert config.load(path).app == "todo"


def test_invalid_yaml_is_reported_with_the_file_and_line(tmp_path):
    path = tmp_path / "shipcheck.yaml"
    path.write_text("app: todo\ncomponents: [unclosed\n")
    # libyaml and PyYAML word it differently: "(did not find) expected ',' or ']'"
    assert re.match(rf"{re.escape(str(path))}: not valid YAML at line 3, column 1: (did not find )?expected ',' or ']'",
                    file_problem(path))


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "shipcheck.yaml"
    path.write_text("app: a\ncomponents:\n  web:\n    port: 1\n    image: x\n    port: 2\n")
    assert file_problem(path) == (f"components.web.port: key 'port' appears twice at line 6 of {path} (first at "
                                  "line 4); YAML would keep only the last: remove one")


def test_yaml_merge_keys_are_not_duplicates(project):
    path = project / "shipcheck.yaml"
    path.write_text("app: todo\nversion: v1\nbase: &base {context: app, image: todo-web, port: 1, size_budget_mb: 9}\n"
                    "components:\n  web:\n    <<: *base\n    port: 3000\n    health_path: /health\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)  # merged, `port` given again beside the merge: no duplicate-key complaint
    assert info.value.problems == ["base: unknown key (known: app, version, source_url, entry, registry, registry_ca, namespace, "
                                   "resource_quota, kubernetes_version, timeouts_s, hadolint_threshold, "
                                   "cluster_provider, components, secrets, config_maps, checks)"]


@pytest.mark.parametrize("text, problem", [
    ("app: !!python/object/apply:os.system ['true']\n", "{path}: YAML tags such as !!python/object/apply:os.system "
                                                       "are not allowed (plain data only)"),
    ("a: &a [*a]\n", "a[0]: a YAML alias in {path} refers to a value that contains it (a cycle); write the value out"),
    ("a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdef", "bcdefg")),
     "{path}: expands to more than 100000 values (YAML aliases?); write it out plainly"),
    ("a: 1\n---\nb: 2\n", "{path}: not valid YAML at line 2, column 1: but found another document (expected a single "
                          "document in the stream)"),
    ("app: \"a\x01b\"\n", "{path}: not valid YAML: character U+0001 at offset 7 is not allowed (control characters); "
                          "remove it"),
    ("- app\n", "configuration: expected a mapping at the top level, got list"),
])
def test_hostile_yaml_is_refused_in_one_line(tmp_path, text, problem):
    path = tmp_path / "shipcheck.yaml"
    path.write_text(text)
    assert file_problem(path) == problem.replace("{path}", str(path))


def test_a_document_nested_too_deeply_is_refused(tmp_path):
    path = tmp_path / "shipcheck.yaml"
    path.write_text("a: " + "[" * 1000 + "]" * 1000 + "\n")
    # PyYAML runs out of recursion, libyaml stops at its maximum depth
    assert re.fullmatch(rf"{re.escape(str(path))}: (nested too deeply|not valid YAML at line 1, column \d+: .*depth.*)",
                        file_problem(path))


def test_an_empty_file_names_every_required_field(tmp_path):
    path = tmp_path / "shipcheck.yaml"
    path.write_text("")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.problems == ["app: required field is missing", "version: required field is missing",
                                   "components: required field is missing"]


# --- --set overrides ---------------------------------------------------------------------------
def test_overrides_are_parsed_as_yaml_and_validated(project):
    cfg = load(project, minimal(), ["components.web.size_budget_mb=180.5", "namespace=todo",
                                    "components.web.run_env={API: 'http://api:8000/?a=b'}", "timeouts_s={build: 30}"])
    web = cfg.components["web"]
    assert web.size_budget_mb == 180.5 and cfg.namespace == "todo" and cfg.timeouts_s["build"] == 30.0
    assert web.run_env == {"API": "http://api:8000/?a=b"}  # only the first '=' splits


def test_overrides_leave_the_raw_document_untouched():
    doc = minimal()
    out = config.apply_overrides(doc, ["components.web.port=8080"])
    assert out["components"]["web"]["port"] == 8080 and doc["components"]["web"]["port"] == 3000


@pytest.mark.parametrize("item, problem", [
    ("namespace", "--set 'namespace': expected KEY=VALUE with a dotted KEY, e.g. "
                  "components.todo-frontend.size_budget_mb=180"),
    ("=x", "--set '=x': expected KEY=VALUE with a dotted KEY"),
    ("components..port=1", "--set 'components..port=1': expected KEY=VALUE with a dotted KEY"),
    ("components.api.port=1", "--set 'components.api.port=1': components.api is not in the configuration (components "
                              "has web); set the whole value: --set 'components.api=<value>'"),
    ("timeouts_s.build=30", "--set 'timeouts_s.build=30': timeouts_s is not in the configuration (it has app, version, "
                            "components); set the whole value: --set 'timeouts_s=<value>'"),
    ("app.name=x", "--set 'app.name=x': app is string 'todo', not a mapping"),
    ("components.web.writable_paths.0=/x", "--set 'components.web.writable_paths.0=/x': components.web.writable_paths "
                                           "is a list; set the whole list: --set 'components.web.writable_paths=[...]'"),
    ("version=!!python/name:os.system", "--set 'version=!!python/name:os.system': YAML tags such as "
                                        "!!python/name:os.system are not allowed (plain data only); quote a literal "
                                        "string: --set 'version=\"...\"'"),
    ("components.web.run_env={A: '1', A: '2'}", "A: key 'A' appears twice at line 1 of --set "
                                                "\"components.web.run_env={A: '1', A: '2'}\" (first at line 1); YAML "
                                                "would keep only the last: remove one"),
])
def test_a_malformed_override_is_named(item, problem):
    doc = minimal()
    doc["components"]["web"]["writable_paths"] = ["/tmp"]
    with pytest.raises(ConfigError) as info:
        config.apply_overrides(doc, [item])
    assert info.value.problems[0].startswith(problem)


def test_an_override_that_is_not_yaml_says_to_quote_it():
    with pytest.raises(ConfigError) as info:
        config.apply_overrides(minimal(), ["version=[unclosed"])
    assert re.fullmatch(r"--set 'version=\[unclosed': not valid YAML at line \d, column \d+: .*expected ',' or '\]'.*; "
                        r"quote a literal string: --set 'version=\"...\"'", info.value.problems[0])


@pytest.mark.parametrize("item, problem", [
    ("components.web.port=0", "components.web.port: must be 1-65535, got 0"),
    ("components.web.prot=8080", "components.web.prot: unknown key; did you mean port?"),
    ("version=", "version: expected a string, got null"),
])
def test_an_override_to_a_bad_value_fails_like_the_file_would(project, item, problem):
    assert any(p.startswith(problem) for p in problems_of(project, minimal(), [item]))


# --- the repo's own configuration and the README --------------------------------------------------
@pytest.fixture(scope="module")
def repo_cfg() -> config.Config:
    return config.load(REPO / "shipcheck.yaml")


def test_the_repo_configuration_reproduces_the_seed_deployment(repo_cfg):
    cfg = repo_cfg
    assert (cfg.namespace, cfg.entry, cfg.version) == ("todo", "todo-frontend", "v1.0.0")
    assert cfg.resource_quota == {"requests.cpu": "3", "requests.memory": "6Gi", "limits.cpu": "4",
                                  "limits.memory": "8Gi", "pods": "10"}
    assert [c.name for c in cfg.databases] == ["todo-postgres"] and [c.name for c in cfg.apps] == [
        "todo-backend", "todo-frontend"]
    backend, frontend = cfg.components["todo-backend"], cfg.components["todo-frontend"]
    assert backend.connects_to == ("todo-postgres",) and frontend.connects_to == ("todo-backend",)
    assert backend.uses_database and not frontend.uses_database
    assert cfg.secrets["todo-backend-secret"] == {
        "database-url": config.KeySource("database_url", env="DATABASE_URL", scheme="postgresql", database="todo-postgres"),
        "openrouter-api-key": config.KeySource("env", env="OPENROUTER_API_KEY", optional=True)}
    assert cfg.components["todo-postgres"].database == config.Database("todo", "todo", "todo-postgres-auth",
                                                                       "postgres-password")
    for comp in cfg.components.values():
        assert comp.uid > 0 and comp.size_budget_mb > 0 and comp.chart and comp.tag == "v1.0.0"
        assert comp.release == comp.name


def test_the_repo_configuration_declares_the_todo_flow(repo_cfg):
    steps = {c.name: c for c in repo_cfg.checks}
    assert all(c.component == "todo-frontend" for c in repo_cfg.checks)
    assert steps["complete it"].request == {"method": "PATCH", "path": "/api/{user}/tasks/{task_id}/complete"}
    assert steps["complete it"].expect == {"status": 200, "json": {"$.completed": True}}
    assert steps["a chat command adds a task"].expect["json"] == {"$.tool_calls[0].name": "add_task"}
    assert steps["the page lists it"].stages == (5,) and steps["the page lists it"].browser["path"] == "/"
    assert [c.request["method"] for c in repo_cfg.checks if c.request and c.stages == (2, 5)] == [
        "GET", "POST", "GET", "PATCH", "DELETE", "POST", "GET"]


@functools.cache
def _values(chart: Path) -> dict:
    return yaml.safe_load((chart / "values.yaml").read_text())


def _has_value(chart: Path, dotted_key: str) -> bool:
    node = _values(chart)
    for part in dotted_key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_the_repo_values_mappings_name_keys_our_charts_have(repo_cfg):
    """Every non-null mapping key exists in the chart's values.yaml; a key the chart lacks is null."""
    for comp in repo_cfg.components.values():
        for field in dataclasses.fields(config.ValuesMapping):
            key = getattr(comp.values, field.name)
            if key is not None:
                assert _has_value(comp.chart, key), f"{comp.name}: values.{field.name} = {key} not in its chart"
    # Our app charts keep their probes in helm create's shape (and a startupProbe beside them).
    backend = repo_cfg.components["todo-backend"].values
    assert (backend.liveness_probe, backend.readiness_probe, backend.startup_probe) == (
        "livenessProbe", "readinessProbe", "startupProbe")


def test_the_readme_table_is_generated_from_the_schema():
    readme = (REPO / "README.md").read_text()
    match = re.search(r"<!-- configuration-table: start.*?-->\n(.*?)<!-- configuration-table: end -->", readme, re.S)
    assert match, "README.md has no configuration table markers"
    assert match.group(1) == config_schema.field_table(), (
        "README's configuration table differs from shipcheck/shipcheck.schema.json. Fix: regenerate it with "
        "`python -m shipcheck.validate --field-table` and paste it between the markers.")


def test_every_schema_property_has_a_description():
    rows = list(config_schema._rows(config_schema.schema(), ""))
    assert len(rows) > 80
    assert [field for field, _, _, meaning in rows if not meaning] == []


def test_validate_prints_the_field_table(capsys):
    assert validate.main(["--field-table"], environ={}) == 0
    assert capsys.readouterr().out == config_schema.field_table()


def test_the_schema_file_is_packaged_beside_the_module():
    assert config_schema.SCHEMA_PATH.parent == Path(config.__file__).parent
    assert json.loads(config_schema.SCHEMA_PATH.read_text())["title"].startswith("shipcheck.yaml")
    assert os.access(config_schema.SCHEMA_PATH, os.R_OK)
