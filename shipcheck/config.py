"""The pipeline's configuration (version 2): one YAML file describing the app, validated on load.

The shape of every field is data: `shipcheck.schema.json` (JSON Schema 2020-12, checked with
jsonschema in config_schema.py); what a schema cannot say (paths inside the repository, names
that refer to declared things, quota quantities) is in config_rules.py; the YAML is read by
config_yaml.py, which refuses duplicate keys, tags and aliases gone wrong. This module holds
the objects everyone codes against and builds them, defaults resolved. Every problem names
its dotted field and is found before anything is built, so a typo costs a second, not a
ten-minute build. `--set a.b=c` overrides are applied to the raw document first and
validated the same way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config_rules, config_schema, config_yaml
from .config_rules import BROWSER_STAGES, REQUEST_STAGES, SECRET_REF, repository_of, resolve_path

ROLES = ("app", "database")
HADOLINT_THRESHOLDS = ("error", "warning", "info", "style")
PROVIDERS = ("auto", "existing", "minikube", "kind", "k3d", "local")
DEFAULT_TIMEOUTS_S = {"build": 1200.0, "container_healthy": 90.0, "deploy": 300.0, "readiness_grace": 60.0}


class ConfigError(ValueError):
    """Configuration problems, one per line; each line starts with the dotted field."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ValuesMapping:
    """Dotted chart value keys the suite sets or names in fixes; None: the chart has no such
    value. The defaults are `helm create`'s."""
    image_repository: str | None = "image.repository"
    image_tag: str | None = "image.tag"
    image_pull_policy: str | None = "image.pullPolicy"
    service_port: str | None = "service.port"
    fullname_override: str | None = "fullnameOverride"
    liveness_probe: str | None = "livenessProbe"
    readiness_probe: str | None = "readinessProbe"
    startup_probe: str | None = None
    resources: str | None = "resources"
    pod_security_context: str | None = "podSecurityContext"
    security_context: str | None = "securityContext"
    pod_annotations: str | None = "podAnnotations"
    existing_secret: str | None = None
    migrate_command: str | None = None
    hook_resources: str | None = None
    test_resources: str | None = None
    pod_disruption_budget: str | None = None
    network_policy_clients: str | None = None
    database_user: str | None = None
    database_name: str | None = None
    image_pull_secrets: str | None = "imagePullSecrets"  # registry path: the suite's pull Secret, by name


@dataclass(frozen=True)
class Database:
    user: str
    name: str
    password_secret: str
    password_key: str


@dataclass(frozen=True)
class Component:
    name: str
    context: Path
    dockerfile: Path
    image: str
    port: int
    size_budget_mb: float
    role: str = "app"
    uid: int = 1001
    health_path: str | None = None
    readiness_path: str | None = None  # resolved: health_path when not given
    tag: str = ""  # resolved: the component's tag, else the configuration's version
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    base_images: dict[str, str] = field(default_factory=dict)
    writable_paths: tuple[str, ...] = ("/tmp",)
    run_env: dict[str, str] = field(default_factory=dict)
    connects_to: tuple[str, ...] = ()
    migrate_command: tuple[str, ...] = ()
    chart: Path | None = None
    release: str | None = None  # resolved: the component name when it has a chart
    values_files: tuple[Path, ...] = ()
    values: ValuesMapping = ValuesMapping()
    database: Database | None = None
    helm_test: bool = True  # False: the chart's test pods are neither judged nor run (helm create's busybox pod)
    # Deprecated, for callers not yet on `secrets` (stage 2, fixtures.py): whether run_env
    # takes a key whose source is a database_url. Goes when they move.
    uses_database: bool = field(default=False, repr=False)

    @property
    def image_ref(self) -> str:
        return f"{self.image}:{self.tag}"

    def __repr__(self) -> str:
        return f"<Component {self.name}>"


@dataclass(frozen=True)
class KeySource:
    """Where one key of a Secret comes from."""
    kind: str  # "env" | "generate" | "database_url"
    env: str | None = None
    optional: bool = False
    length: int = 32
    scheme: str | None = None  # database_url only
    database: str | None = None  # database_url only: the database component used when env is unset


@dataclass(frozen=True)
class Check:
    name: str
    component: str
    stages: tuple[int, ...]
    request: dict | None = None  # method (default GET), path, headers, json
    expect: dict = field(default_factory=dict)  # status, json, json_exists, body_contains; empty: a 2xx status
    capture: dict[str, str] = field(default_factory=dict)
    browser: dict | None = None  # path, expect_text, expect_selector


@dataclass(frozen=True)
class Config:
    root: Path  # the configuration file's directory: paths are relative to it
    app: str
    version: str
    components: dict[str, Component]
    hadolint_threshold: str = "warning"
    namespace: str = "default"
    resource_quota: dict[str, str] = field(default_factory=dict)
    kubernetes_version: str = "1.34"
    timeouts_s: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS_S))
    cluster_provider: str = "auto"
    source_url: str = ""
    entry: str = ""
    registry: str = ""
    registry_ca: Path | None = None  # the registry's CA (PEM), for the suite's own requests to it
    secrets: dict[str, dict[str, KeySource]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()

    def image_ref(self, component: Component) -> str:
        """Kept for old callers: `component.image_ref`."""
        return f"{component.image}:{component.tag or self.version}"

    @property
    def apps(self) -> list[Component]:
        return [c for c in self.components.values() if c.role == "app"]

    @property
    def databases(self) -> list[Component]:
        return [c for c in self.components.values() if c.role == "database"]

    @property
    def entry_component(self) -> Component:
        return self.components[self.entry]


# --- overrides ----------------------------------------------------------------------------
def apply_overrides(doc: Any, overrides: list[str]) -> Any:
    """Apply `a.b.c=value` overrides (value parsed as YAML, plain data only) to a copy of the
    raw document. The parent of the key must already be a mapping in the document."""
    doc = copy.deepcopy(doc)  # keeps key order: components deploy in the order written
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted KEY, "
                              "e.g. components.todo-frontend.size_budget_mb=180")
        if not isinstance(doc, dict):
            raise ConfigError(f"--set {item!r}: the configuration is not a mapping")
        target = doc
        for i, part in enumerate(parts[:-1]):
            here = ".".join(parts[: i + 1])
            child = target.get(part)
            if part not in target:
                has = ", ".join(map(str, target)) or "nothing"
                raise ConfigError(f"--set {item!r}: {here} is not in the configuration ({'.'.join(parts[:i]) or 'it'} "
                                  f"has {has}); set the whole value: --set '{here}=<value>'")
            if isinstance(child, list):
                raise ConfigError(f"--set {item!r}: {here} is a list; set the whole list: --set '{here}=[...]'")
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {here} is {config_schema.kind(child)} "
                                  f"{config_schema.show(child)}, not a mapping")
            target = child
        try:
            target[parts[-1]] = config_yaml.parse(raw, f"--set {item!r}")
        except config_yaml.YamlError as exc:
            hint = f"; quote a literal string: --set '{key}=\"...\"'" if exc.syntax else ""
            raise ConfigError(f"{exc}{hint}") from None
    return doc


# --- building the objects -----------------------------------------------------------------
def _key_source(source: dict) -> KeySource:
    if "env" in source:
        return KeySource("env", env=source["env"], optional=source.get("optional", False))
    if "generate" in source:
        return KeySource("generate", length=source["generate"])
    url = source["database_url"]
    return KeySource("database_url", env=url.get("env"), scheme=url.get("scheme", "postgresql"),
                     database=url.get("database"))


def _component(name: str, doc: dict, cfg: dict, base: Path, repo: Path, problems: list[str],
               database_keys: set[tuple[str, str]]) -> Component:
    where = f"components.{name}"
    before = len(problems)
    context = resolve_path(base, repo, doc["context"], f"{where}.context", "directory", problems)
    if "dockerfile" in doc or len(problems) == before:  # the default says nothing new when the context is wrong
        dockerfile = resolve_path(base, repo, doc.get("dockerfile", str(Path(doc["context"]) / "Dockerfile")),
                                  f"{where}.dockerfile", "file", problems)
    else:
        dockerfile = context / "Dockerfile"
    chart = resolve_path(base, repo, doc["chart"], f"{where}.chart", "chart", problems) if "chart" in doc else None
    values_files = tuple(resolve_path(base, repo, v, f"{where}.values_files[{i}]", "file", problems)
                         for i, v in enumerate(doc.get("values_files", [])))
    refs = {ref for value in doc.get("run_env", {}).values() for ref in SECRET_REF.findall(value)}
    return Component(
        name=name,
        context=context,
        dockerfile=dockerfile,
        image=doc["image"],
        port=int(doc["port"]),
        size_budget_mb=float(doc["size_budget_mb"]),
        role=doc.get("role", "app"),
        uid=int(doc.get("uid", 1001)),
        health_path=doc.get("health_path"),
        readiness_path=doc.get("readiness_path", doc.get("health_path")),
        tag=doc.get("tag", cfg["version"]),
        target=doc.get("target"),
        build_args=dict(doc.get("build_args", {})),
        base_images=dict(doc.get("base_images", {})),
        writable_paths=tuple(doc.get("writable_paths", ["/tmp"])),
        run_env=dict(doc.get("run_env", {})),
        connects_to=tuple(doc.get("connects_to", [])),
        migrate_command=tuple(doc.get("migrate_command", [])),
        chart=chart,
        release=doc.get("release", name) if chart else None,
        values_files=values_files,
        values=ValuesMapping(**doc.get("values", {})),
        database=Database(**doc["database"]) if "database" in doc else None,
        helm_test=bool(doc.get("helm_test", True)),
        uses_database=bool(refs & database_keys),
    )


def _check(doc: dict, entry: str) -> Check:
    request = {"method": "GET", **doc["request"]} if "request" in doc else None
    default_stages = REQUEST_STAGES if request else BROWSER_STAGES
    return Check(name=doc["name"], component=doc.get("component", entry), stages=tuple(doc.get("stages", default_stages)),
                 request=request, expect=dict(doc.get("expect", {})), capture=dict(doc.get("capture", {})),
                 browser=dict(doc["browser"]) if "browser" in doc else None)


def _registry_ca(doc: dict, root: Path, problems: list[str]) -> Path | None:
    """The registry's CA file (relative to the configuration file; usually outside the repository).
    The registry reference itself is checked here too, by the rules the push follows."""
    from .registry import RegistryError, parse as parse_registry

    if doc.get("registry"):
        try:
            parse_registry(doc["registry"])
        except RegistryError as exc:
            problems.append(str(exc))
    value = doc.get("registry_ca", "")
    if not value:
        return None
    path = (root / Path(value).expanduser()).resolve()
    if not doc.get("registry"):
        problems.append("registry_ca: set, but registry is empty; give registry too, or remove registry_ca")
    elif not path.is_file():
        problems.append(f"registry_ca: file {value!r} does not exist (looked in {root})")
    return path


def parse(doc: Any, root: Path) -> Config:
    """The Config for the raw document `doc`, whose relative paths are relative to `root`.
    Raises ConfigError listing every problem found."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"configuration: expected a mapping at the top level, got {config_schema.kind(doc)}")
    problems = config_schema.problems(doc)
    if problems:
        raise ConfigError(problems)  # the checks below rely on the shape the schema guarantees
    root = Path(root).resolve()
    repo = repository_of(root)
    entry = config_rules.reference_problems(doc, problems)
    config_rules.quota_problems(doc.get("resource_quota", {}), problems)
    config_rules.template_problems(doc.get("checks", []), problems)
    secrets = {name: {key: _key_source(s) for key, s in keys.items()} for name, keys in doc.get("secrets", {}).items()}
    database_keys = {(name, key) for name, keys in secrets.items() for key, s in keys.items() if s.kind == "database_url"}
    components = {name: _component(name, c, doc, root, repo, problems, database_keys)
                  for name, c in doc["components"].items()}
    registry_ca = _registry_ca(doc, root, problems)
    if problems:
        raise ConfigError(problems)
    return Config(
        root=root,
        app=doc["app"],
        version=doc["version"],
        components=components,
        hadolint_threshold=doc.get("hadolint_threshold", "warning"),
        namespace=doc.get("namespace", "default"),
        resource_quota={k: str(v) for k, v in doc.get("resource_quota", {}).items()},
        kubernetes_version=doc.get("kubernetes_version", "1.34"),
        timeouts_s={**DEFAULT_TIMEOUTS_S, **{k: float(v) for k, v in doc.get("timeouts_s", {}).items()}},
        cluster_provider=doc.get("cluster_provider", "auto"),
        source_url=doc.get("source_url", ""),
        entry=entry or "",
        registry=doc.get("registry", ""),
        registry_ca=registry_ca,
        secrets=secrets,
        config_maps={name: dict(keys) for name, keys in doc.get("config_maps", {}).items()},
        checks=tuple(_check(c, entry or "") for c in doc.get("checks", [])),
    )


def load(path: Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate the configuration file at `path`."""
    path = Path(path)
    try:
        doc = config_yaml.read(path)
    except config_yaml.YamlError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return parse(apply_overrides(doc if doc is not None else {}, overrides or []), path.resolve().parent)
    except RecursionError:  # the parser read it, copying or walking it does not
        raise ConfigError(f"{path}: nested too deeply") from None
