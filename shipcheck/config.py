"""The pipeline's configuration (version 2): one YAML file describing the app, validated on load.

The shape of every field is data: `shipcheck.schema.json` (JSON Schema 2020-12), checked with
jsonschema. This module keeps only what a schema cannot say: that paths exist and stay inside
the repository, that names refer to components and Secrets that exist, that quota values are
Kubernetes quantities. Every problem names its dotted field and is found before anything is
built, so a typo costs a second, not a ten-minute build. `--set a.b=c` overrides are applied
to the raw document first and validated the same way.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import config_schema, config_yaml

ROLES = ("app", "database")
HADOLINT_THRESHOLDS = ("error", "warning", "info", "style")
PROVIDERS = ("auto", "existing", "minikube", "kind", "k3d", "local")
DEFAULT_TIMEOUTS_S = {"build": 1200.0, "container_healthy": 90.0, "deploy": 300.0, "readiness_grace": 60.0}
BUILTIN_VARIABLES = ("user", "run")  # template variables of checks: a user id and a random run id
REQUEST_STAGES, BROWSER_STAGES = (2, 5), (5,)
SECRET_REF = re.compile(r"\$\{secret:([^:}]*):([^}]*)\}")  # run_env: ${secret:SECRET-NAME:KEY}
TEMPLATE_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
    resources: str | None = "resources"
    pod_security_context: str | None = "podSecurityContext"
    security_context: str | None = "securityContext"
    pod_annotations: str | None = "podAnnotations"
    existing_secret: str | None = None
    migrate_command: str | None = None
    hook_resources: str | None = None
    test_resources: str | None = None


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

    @property
    def stand_in_base_images(self) -> dict[str, str]:
        """Deprecated (stand-ins now answer to the official names); for fixtures.py until it moves."""
        return {}


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


# --- what the schema cannot say -----------------------------------------------------------
def repository_of(directory: Path) -> Path:
    """The git top level above `directory` (a .git directory or worktree file), else itself.
    Found by walking up, not by running git: validation starts no process."""
    for candidate in (directory, *directory.parents):
        if (candidate / ".git").exists():
            return candidate
    return directory


def _path(base: Path, repo: Path, value: str, where: str, kind: str, problems: list[str]) -> Path:
    path = (base / value).resolve()
    exists = path.is_file() if kind == "file" else path.is_dir()
    if not exists:
        problems.append(f"{where}: {'file' if kind == 'file' else 'directory'} {value!r} does not exist (looked in {base})")
    elif not path.is_relative_to(repo):
        problems.append(f"{where}: {value!r} is outside the repository {repo}; the build and charts may only "
                        "read files inside it (move it in, or the configuration next to it)")
    elif kind == "chart" and not (path / "Chart.yaml").is_file():
        problems.append(f"{where}: {value!r} has no Chart.yaml; give a Helm chart directory")
    return path


_QUOTA_KEYS = {"cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
               "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage"}
_QUOTA_COUNTS = {"pods", "services", "services.loadbalancers", "services.nodeports", "secrets", "configmaps",
                 "persistentvolumeclaims", "replicationcontrollers", "resourcequotas"}
_QUOTA_PATTERNS = (re.compile(r"^count/[a-z0-9.-]+$"),
                   re.compile(r"^[a-z0-9.-]+\.storageclass\.storage\.k8s\.io/(requests\.storage|persistentvolumeclaims)$"),
                   re.compile(r"^(requests\.)?hugepages-[0-9]+[KMG]i$"),
                   re.compile(r"^(requests|limits)\.[a-z0-9.-]+/[a-z0-9._-]+$"))  # extended resources
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")


@cache
def _parse_quantity():
    """kubernetes' own `parse_quantity`, loaded from its module file: importing the package
    imports the whole API client (about 0.5 s, most of what validation costs), and this
    module needs only `decimal`."""
    spec = importlib.util.find_spec("kubernetes")
    origin = Path(spec.origin).parent / "utils" / "quantity.py" if spec and spec.origin else None
    if origin is None or not origin.is_file():
        from kubernetes.utils import parse_quantity

        return parse_quantity
    module_spec = importlib.util.spec_from_file_location("shipcheck._kubernetes_quantity", origin)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.parse_quantity


def _quota_problems(quota: dict, problems: list[str]) -> None:
    for key, value in quota.items():
        where = f"resource_quota.{key}"
        count = key in _QUOTA_COUNTS or key.startswith("count/") or key.endswith("/persistentvolumeclaims")
        if not (key in _QUOTA_KEYS or count or any(p.match(key) for p in _QUOTA_PATTERNS)):
            known = sorted(_QUOTA_KEYS | _QUOTA_COUNTS)
            problems.append(f"{where}: not a ResourceQuota key (known: {', '.join(known)}, count/<resource>)")
            continue
        text = str(value)
        if not _QUANTITY.match(text):
            problems.append(f"{where}: must be a non-negative Kubernetes quantity such as 3, 500m or 8Gi, got {value!r}")
            continue
        try:
            amount = _parse_quantity()(text)
        except ValueError as exc:
            problems.append(f"{where}: not a Kubernetes quantity ({exc}), e.g. 3, 500m or 8Gi")
            continue
        if count and amount != int(amount):
            problems.append(f"{where}: must be a whole number of objects, got {value!r}")


def _template_problems(checks: list[dict], entry: str | None, problems: list[str]) -> None:
    """Every {variable} a check uses is built in or captured by an earlier check that runs in
    each of this check's stages."""
    captured: dict[str, set[int]] = {}  # variable -> stages in which it is available
    names: set[str] = set()
    for i, check in enumerate(checks):
        where = f"checks[{i}]"
        if check["name"] in names:
            problems.append(f"{where}.name: {check['name']!r} is the name of an earlier check; names must be unique")
        names.add(check["name"])
        stages = set(check.get("stages") or (BROWSER_STAGES if "browser" in check else REQUEST_STAGES))
        for part in ("request", "expect", "browser"):
            for text in _strings(check.get(part)):
                for variable in TEMPLATE_VARIABLE.findall(text):
                    if variable in BUILTIN_VARIABLES or stages <= captured.get(variable, set()):
                        continue
                    known = ", ".join(["user", "run", *captured]) 
                    problems.append(f"{where}.{part}: {{{variable}}} is not captured by an earlier check that runs in "
                                    f"stages {sorted(stages)} (variables: {known})")
        for variable in check.get("capture", {}):
            if variable in BUILTIN_VARIABLES:
                problems.append(f"{where}.capture.{variable}: is a built-in variable; choose another name")
            captured[variable] = captured.get(variable, set()) | stages


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _reference_problems(doc: dict, problems: list[str]) -> str | None:
    """Names that must refer to something declared; returns the entry component's name."""
    components = doc["components"]
    apps = [n for n, c in components.items() if c.get("role", "app") == "app"]
    entry = doc.get("entry")
    if entry is None:
        if len(apps) == 1:
            entry = apps[0]
        else:
            problems.append(f"entry: required when there is {'no' if not apps else 'more than one'} app component "
                            f"({', '.join(apps) or 'every component has role database'}): name the one users reach")
    elif entry not in apps:
        problems.append(f"entry: {entry!r} is not an app component (app components: {', '.join(apps) or 'none'})")
    releases: dict[str, str] = {}
    for name, comp in components.items():
        where = f"components.{name}"
        for target in comp.get("connects_to", []):
            if target == name or target not in components:
                problems.append(f"{where}.connects_to: {target!r} is not another component "
                                f"(components: {', '.join(components)})")
        if "chart" in comp:
            release = comp.get("release", name)
            if release in releases:
                problems.append(f"{where}.release: {release!r} is also the release of components.{releases[release]}; "
                                "two charts in one release overwrite each other: give each its own")
            releases.setdefault(release, name)
        else:
            for key in ("release", "values_files", "values"):
                if key in comp:
                    problems.append(f"{where}.{key}: only used with a chart; add chart or remove {key}")
        database = comp.get("database")
        if database and database["password_secret"] in doc.get("secrets", {}):
            problems.append(f"{where}.database.password_secret: {database['password_secret']!r} is also declared in "
                            "secrets; the suite creates it from the database block: use another name")
        for env, value in comp.get("run_env", {}).items():
            for secret, key in SECRET_REF.findall(value):
                if not _secret_has(doc, secret, key):
                    problems.append(f"{where}.run_env.{env}: ${{secret:{secret}:{key}}} names no declared Secret key "
                                    f"(secrets: {', '.join(_secret_keys(doc)) or 'none'})")
    for secret, keys in doc.get("secrets", {}).items():
        for key, source in keys.items():
            database = source.get("database_url", {}).get("database")
            if database is not None and components.get(database, {}).get("role") != "database":
                names = [n for n, c in components.items() if c.get("role") == "database"]
                problems.append(f"secrets.{secret}.{key}.database_url.database: {database!r} is not a database "
                                f"component (database components: {', '.join(names) or 'none'})")
    for i, check in enumerate(doc.get("checks", [])):
        target = check.get("component", entry)
        if "component" in check and target not in apps:
            problems.append(f"checks[{i}].component: {target!r} is not an app component "
                            f"(app components: {', '.join(apps) or 'none'})")
    return entry


def _secret_has(doc: dict, secret: str, key: str) -> bool:
    if key in doc.get("secrets", {}).get(secret, {}):
        return True
    return any((c.get("database") or {}).get("password_secret") == secret and c["database"]["password_key"] == key
               for c in doc["components"].values())


def _secret_keys(doc: dict) -> list[str]:
    keys = [f"{s}:{k}" for s, ks in doc.get("secrets", {}).items() for k in ks]
    return keys + [f"{d['password_secret']}:{d['password_key']}" for c in doc["components"].values()
                   if (d := c.get("database"))]


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
    context = _path(base, repo, doc["context"], f"{where}.context", "directory", problems)
    if "dockerfile" in doc or len(problems) == before:  # the default says nothing new when the context is wrong
        dockerfile = _path(base, repo, doc.get("dockerfile", str(Path(doc["context"]) / "Dockerfile")),
                           f"{where}.dockerfile", "file", problems)
    else:
        dockerfile = context / "Dockerfile"
    chart = _path(base, repo, doc["chart"], f"{where}.chart", "chart", problems) if "chart" in doc else None
    values_files = tuple(_path(base, repo, v, f"{where}.values_files[{i}]", "file", problems)
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
        uses_database=bool(refs & database_keys),
    )


def _check(doc: dict, entry: str) -> Check:
    request = {"method": "GET", **doc["request"]} if "request" in doc else None
    default_stages = REQUEST_STAGES if request else BROWSER_STAGES
    return Check(name=doc["name"], component=doc.get("component", entry), stages=tuple(doc.get("stages", default_stages)),
                 request=request, expect=dict(doc.get("expect", {})), capture=dict(doc.get("capture", {})),
                 browser=dict(doc["browser"]) if "browser" in doc else None)


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
    entry = _reference_problems(doc, problems)
    _quota_problems(doc.get("resource_quota", {}), problems)
    _template_problems(doc.get("checks", []), entry, problems)
    secrets = {name: {key: _key_source(s) for key, s in keys.items()} for name, keys in doc.get("secrets", {}).items()}
    database_keys = {(name, key) for name, keys in secrets.items() for key, s in keys.items() if s.kind == "database_url"}
    components = {name: _component(name, c, doc, root, repo, problems, database_keys)
                  for name, c in doc["components"].items()}
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
    return parse(apply_overrides(doc if doc is not None else {}, overrides or []), path.resolve().parent)
