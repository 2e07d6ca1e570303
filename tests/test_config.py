"""Configuration: defaults, overrides, and one clear error per bad field (config.py).

Every configuration here is written to a tmp dir; only the last test reads the repo's
shipcheck.yaml, with its paths stubbed, to pin the seed's defaults.
"""

from pathlib import Path

import pytest
import yaml

from shipcheck import config
from shipcheck.config import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path):
    """A tmp project dir with a context, a Dockerfile, a chart and a values file."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "charts" / "web").mkdir(parents=True)
    (tmp_path / "values.yaml").write_text("{}\n")
    return tmp_path


def minimal() -> dict:
    return {
        "app": "todo",
        "version": "v1.2.3",
        "components": {
            "web": {"context": "app", "dockerfile": "app/Dockerfile", "image": "todo-web", "port": 3000,
                    "health_path": "/health", "size_budget_mb": 200},
        },
    }


def load(project: Path, doc, overrides=None) -> config.Config:
    path = project / "shipcheck.yaml"
    path.write_text(yaml.safe_dump(doc))
    return config.load(path, overrides)


def error_of(project: Path, doc, overrides=None) -> str:
    with pytest.raises(ConfigError) as info:
        load(project, doc, overrides)
    return str(info.value)


# --- a valid configuration ---------------------------------------------------------------
def test_minimal_configuration_gets_the_documented_defaults(project):
    cfg = load(project, minimal())
    web = cfg.components["web"]
    assert (web.role, web.uid, web.writable_paths, web.run_env, web.base_images) == ("app", 1001, ("/tmp",), {}, {})
    assert (web.readiness_path, web.chart, web.release, web.values_files) == (None, None, None, ())
    assert web.uses_database is False and web.migrate_command == ()
    assert (cfg.hadolint_threshold, cfg.namespace, cfg.cluster_provider, cfg.kubernetes_version) == (
        "warning", "default", "auto", "1.34")
    assert cfg.timeouts_s == config.DEFAULT_TIMEOUTS_S and cfg.timeouts_s is not config.DEFAULT_TIMEOUTS_S
    assert cfg.resource_quota == {} and cfg.stand_in_base_images == {} and cfg.source_url == ""


def test_paths_resolve_against_the_config_files_directory(project, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    doc = minimal()
    doc["components"]["web"].update(chart="charts/web", values_files=["values.yaml"])
    web = load(project, doc).components["web"]
    assert web.context == project / "app" and web.dockerfile == project / "app" / "Dockerfile"
    assert web.chart == project / "charts" / "web" and web.values_files == (project / "values.yaml",)
    assert web.context.is_absolute()


def test_absolute_paths_are_allowed(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "Dockerfile").write_text("FROM scratch\n")
    doc = minimal()
    doc["components"]["web"].update(context=str(outside), dockerfile=str(outside / "Dockerfile"))
    web = load(project, doc).components["web"]
    assert web.context == outside and web.dockerfile == outside / "Dockerfile"


def test_release_defaults_to_the_component_name_when_it_has_a_chart(project):
    doc = minimal()
    doc["components"]["web"]["chart"] = "charts/web"
    assert load(project, doc).components["web"].release == "web"
    doc["components"]["web"]["release"] = "todo-web"
    assert load(project, doc).components["web"].release == "todo-web"


def test_image_ref_apps_databases_and_reprs(project):
    doc = minimal()
    doc["components"]["db"] = {"role": "database", "context": "app", "dockerfile": "app/Dockerfile",
                               "image": "todo-db", "port": 5432, "uid": 999, "size_budget_mb": 250.5}
    cfg = load(project, doc)
    web, db = cfg.components["web"], cfg.components["db"]
    assert cfg.image_ref(web) == "todo-web:v1.2.3"
    assert cfg.apps == [web] and cfg.databases == [db]
    assert db.health_path is None and db.uid == 999 and db.size_budget_mb == 250.5
    assert repr(web) == "<Component web>"


def test_timeouts_merge_with_the_defaults_as_floats(project):
    doc = minimal()
    doc["timeouts_s"] = {"build": 60, "deploy": 12.5}
    timeouts = load(project, doc).timeouts_s
    assert timeouts == {**config.DEFAULT_TIMEOUTS_S, "build": 60.0, "deploy": 12.5}
    assert all(isinstance(v, float) for v in timeouts.values())


def test_quota_values_become_strings(project):
    doc = minimal()
    doc["resource_quota"] = {"pods": 10, "requests.cpu": "3", "limits.memory": "8Gi"}
    assert load(project, doc).resource_quota == {"pods": "10", "requests.cpu": "3", "limits.memory": "8Gi"}


def test_an_image_with_a_registry_path_is_accepted(project):
    doc = minimal()
    doc["components"]["web"]["image"] = "ghcr.io/example/todo-web"
    assert load(project, doc).image_ref(load(project, doc).components["web"]) == "ghcr.io/example/todo-web:v1.2.3"


def test_an_image_in_a_registry_with_a_port_is_accepted(project):
    doc = minimal()
    doc["components"]["web"]["image"] = "localhost:5001/todo-web"
    cfg = load(project, doc)
    assert cfg.image_ref(cfg.components["web"]) == "localhost:5001/todo-web:v1.2.3"


# --- one clear error per bad field -----------------------------------------------------------
def _set(path: str, value):
    """A mutation of the minimal document: set (or with value DELETE, remove) a dotted path."""
    def mutate(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[part]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
        return doc
    return mutate


DELETE = object()
WEB = "components.web"

BAD = [
    # (mutation, the message names the field and says what is wrong)
    (_set("app", DELETE), "app: required field is missing"),
    (_set("namspace", "todo"), "namspace: unknown key (known: app, "),
    (_set("version", "latest"), "version: must be a valid image tag other than 'latest', got 'latest'"),
    (_set("version", "v1 0"), "version: must be a valid image tag other than 'latest', got 'v1 0'"),
    (_set("version", 1.0), "version: expected str, got float 1.0"),
    (_set("components", {}), "components: at least one component is required"),
    (_set("components", ["web"]), "components: expected dict, got list"),
    (_set(f"{WEB}.port", DELETE), f"{WEB}.port: required field is missing"),
    (_set(f"{WEB}.size_budget", 100), f"{WEB}.size_budget: unknown key (known: "),
    (_set(f"{WEB}.port", "3000"), f"{WEB}.port: expected int, got str '3000'"),
    (_set(f"{WEB}.port", True), f"{WEB}.port: expected a number, got True"),
    (_set(f"{WEB}.port", 0), f"{WEB}.port: must be 1-65535, got 0"),
    (_set(f"{WEB}.port", 70000), f"{WEB}.port: must be 1-65535, got 70000"),
    (_set(f"{WEB}.size_budget_mb", 0), f"{WEB}.size_budget_mb: must be positive, got 0"),
    (_set(f"{WEB}.size_budget_mb", -5.5), f"{WEB}.size_budget_mb: must be positive, got -5.5"),
    (_set(f"{WEB}.size_budget_mb", "200MB"), f"{WEB}.size_budget_mb: expected number, got str '200MB'"),
    (_set(f"{WEB}.role", "worker"), f"{WEB}.role: must be one of ('app', 'database'), got 'worker'"),
    (_set(f"{WEB}.uid", 0), f"{WEB}.uid: must be a non-root UID (> 0), got 0"),
    (_set(f"{WEB}.health_path", "health"), f"{WEB}.health_path: must start with '/', got 'health'"),
    (_set(f"{WEB}.readiness_path", "ready"), f"{WEB}.readiness_path: must start with '/', got 'ready'"),
    (_set(f"{WEB}.health_path", DELETE), f"{WEB}.health_path: required for app components"),
    (_set(f"{WEB}.image", "todo-web:v1"), f"{WEB}.image: give the repository without a tag (the tag is 'version')"),
    (_set(f"{WEB}.image", "Todo_Web"), f"{WEB}.image: give the repository without a tag"),
    (_set(f"{WEB}.writable_paths", ["tmp"]), f"{WEB}.writable_paths: entries must be absolute paths, got 'tmp'"),
    (_set(f"{WEB}.writable_paths", "/tmp"), f"{WEB}.writable_paths: expected list, got str '/tmp'"),
    (_set(f"{WEB}.base_images", {"BASE": 3}), f"{WEB}.base_images.BASE: expected a string, got 3"),
    (_set(f"{WEB}.run_env", {"PORT": 8000}), f"{WEB}.run_env.PORT: expected a string, got 8000"),
    (_set(f"{WEB}.uses_database", "yes"), f"{WEB}.uses_database: expected bool, got str 'yes'"),
    (_set(f"{WEB}.context", "nope"), f"{WEB}.context: directory 'nope' does not exist (looked in "),
    (_set(f"{WEB}.context", "app/Dockerfile"), f"{WEB}.context: directory 'app/Dockerfile' does not exist"),
    (_set(f"{WEB}.dockerfile", "app"), f"{WEB}.dockerfile: file 'app' does not exist"),
    (_set(f"{WEB}.chart", "charts/api"), f"{WEB}.chart: directory 'charts/api' does not exist"),
    (_set(f"{WEB}.values_files", ["prod.yaml"]), f"{WEB}.values_files: file 'prod.yaml' does not exist"),
    (_set("hadolint_threshold", "fatal"), "hadolint_threshold: must be one of ('error', 'warning', 'info', 'style')"),
    (_set("namespace", "Todo"), "namespace: must be a lowercase DNS label, got 'Todo'"),
    (_set("timeouts_s", {"buidl": 10}), "timeouts_s.buidl: unknown key (known: build, container_healthy, "),
    (_set("timeouts_s", {"build": 0}), "timeouts_s.build: must be a positive number of seconds, got 0"),
    (_set("timeouts_s", {"build": True}), "timeouts_s.build: must be a positive number of seconds, got True"),
    (_set("timeouts_s", {"build": "10m"}), "timeouts_s.build: must be a positive number of seconds, got '10m'"),
    (_set("cluster_provider", "gke"), "cluster_provider: must be one of ('auto', 'existing', "),
    (_set("kubernetes_version", "v1.34"), "kubernetes_version: expected MAJOR.MINOR such as 1.34, got 'v1.34'"),
    (_set("kubernetes_version", 1.30), "kubernetes_version: expected str, got float 1.3"),
    (_set("resource_quota", ["pods=10"]), "resource_quota: expected dict, got list"),
]


@pytest.mark.parametrize("mutate, message", BAD, ids=[m for _, m in BAD])
def test_a_bad_field_is_named_in_the_error(project, mutate, message):
    assert message in error_of(project, mutate(minimal()))


def test_a_component_name_must_be_a_dns_label(project):
    doc = minimal()
    doc["components"]["Todo_Web"] = doc["components"].pop("web")
    assert error_of(project, doc) == "components.Todo_Web: name must be a lowercase DNS label (a-z, 0-9, '-')"


def test_a_component_must_be_a_mapping(project):
    doc = minimal()
    doc["components"]["web"] = "app"
    assert error_of(project, doc) == "components.web: expected a mapping of fields"


def test_a_database_needs_no_health_path(project):
    doc = minimal()
    doc["components"]["web"].update(role="database")
    del doc["components"]["web"]["health_path"]
    assert load(project, doc).components["web"].health_path is None


def test_a_non_string_values_file_is_named_in_the_error(project):
    doc = minimal()
    doc["components"]["web"]["values_files"] = [1]
    assert "components.web.values_files" in error_of(project, doc)


# --- the file itself -----------------------------------------------------------------------
def test_a_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match=r"configuration file .*nope\.yaml does not exist \(set --shipcheck-config "
                                          r"or SHIPCHECK_CONFIG\)"):
        config.load(tmp_path / "nope.yaml")


def test_invalid_yaml_is_reported_with_the_file(tmp_path):
    path = tmp_path / "shipcheck.yaml"
    path.write_text("app: [unclosed\n")
    with pytest.raises(ConfigError, match=r"shipcheck\.yaml: not valid YAML"):
        config.load(path)


def test_an_empty_file_names_the_first_required_field(tmp_path):
    path = tmp_path / "shipcheck.yaml"
    path.write_text("")
    with pytest.raises(ConfigError, match=r"^app: required field is missing$"):
        config.load(path)


def test_a_top_level_list_is_rejected(tmp_path):
    path = tmp_path / "shipcheck.yaml"
    path.write_text("- app\n")
    with pytest.raises(ConfigError, match="configuration: expected a mapping at the top level"):
        config.load(path)


# --- --set overrides -----------------------------------------------------------------------------
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


@pytest.mark.parametrize("item, message", [
    ("namespace", "--set 'namespace': expected KEY=VALUE, e.g. components.todo-frontend.size_budget_mb=180"),
    ("=x", "--set '=x': expected KEY=VALUE"),
    ("components.api.port=1", "--set 'components.api.port=1': components.api is not a mapping in the configuration"),
    ("app.name=x", "--set 'app.name=x': app is not a mapping in the configuration"),
])
def test_a_malformed_override_is_named(item, message):
    with pytest.raises(ConfigError) as info:
        config.apply_overrides(minimal(), [item])
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("item, message", [
    ("components.web.port=0", "components.web.port: must be 1-65535, got 0"),
    ("components.web.prot=8080", "components.web.prot: unknown key"),
    ("version=", "version: expected str, got NoneType None"),
])
def test_an_override_to_a_bad_value_fails_like_the_file_would(project, item, message):
    assert message in error_of(project, minimal(), [item])


# --- the repo's configuration, its paths stubbed ---------------------------------------------------
def test_the_repo_configuration_reproduces_the_seed_deployment(tmp_path):
    """The repo's shipcheck.yaml parses (with its referenced files stubbed in a tmp dir, so
    this does not wait for the app's dirs) and keeps the seed's numbers."""
    doc = yaml.safe_load((REPO / "shipcheck.yaml").read_text())
    for comp in doc["components"].values():
        for key in ("context", "chart"):
            if key in comp:
                (tmp_path / comp[key]).mkdir(parents=True, exist_ok=True)
        for rel in [comp["dockerfile"], *comp.get("values_files", [])]:
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text("")
    (tmp_path / "shipcheck.yaml").write_text(yaml.safe_dump(doc))
    cfg = config.load(tmp_path / "shipcheck.yaml")
    assert cfg.namespace == "todo"
    assert {"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} <= set(cfg.resource_quota)
    assert cfg.version != "latest" and cfg.kubernetes_version.startswith("1.")
    for comp in cfg.components.values():
        assert comp.uid > 0 and comp.size_budget_mb > 0
        if comp.role == "app":
            assert comp.health_path and comp.health_path.startswith("/")
        # Every base image a Dockerfile declares has a stand-in for machines without a registry.
        assert set(comp.base_images) <= set(cfg.stand_in_base_images), comp.name
