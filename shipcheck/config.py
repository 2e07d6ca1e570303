"""The pipeline's configuration: one YAML file describing the app, validated on load.

Every problem is reported with the field's dotted name before anything is built, so a
typo costs a second, not a ten-minute build. Command-line `--set a.b=c` overrides are
applied to the raw document and validated the same way.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROLES = ("app", "database")
HADOLINT_THRESHOLDS = ("error", "warning", "info", "style")
PROVIDERS = ("auto", "existing", "minikube", "kind", "k3d", "local")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # DNS-1123 label: names become k8s objects
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ConfigError(ValueError):
    """A configuration problem; the message names the field and what would be valid."""


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
    readiness_path: str | None = None
    base_images: dict[str, str] = field(default_factory=dict)
    writable_paths: tuple[str, ...] = ("/tmp",)
    run_env: dict[str, str] = field(default_factory=dict)
    uses_database: bool = False
    migrate_command: tuple[str, ...] = ()
    chart: Path | None = None
    release: str | None = None
    values_files: tuple[Path, ...] = ()

    def __repr__(self) -> str:
        return f"<Component {self.name}>"


@dataclass(frozen=True)
class Config:
    root: Path
    app: str
    version: str
    components: dict[str, Component]
    stand_in_base_images: dict[str, str]
    hadolint_threshold: str
    namespace: str
    resource_quota: dict[str, str]
    kubernetes_version: str
    timeouts_s: dict[str, float]
    cluster_provider: str = "auto"
    source_url: str = ""

    def image_ref(self, component: Component) -> str:
        return f"{component.image}:{self.version}"

    @property
    def apps(self) -> list[Component]:
        return [c for c in self.components.values() if c.role == "app"]

    @property
    def databases(self) -> list[Component]:
        return [c for c in self.components.values() if c.role == "database"]


_COMPONENT_FIELDS = {
    # field: (type, required)
    "context": (str, True),
    "dockerfile": (str, True),
    "image": (str, True),
    "port": (int, True),
    "size_budget_mb": ((int, float), True),
    "role": (str, False),
    "uid": (int, False),
    "health_path": (str, False),
    "readiness_path": (str, False),
    "base_images": (dict, False),
    "writable_paths": (list, False),
    "run_env": (dict, False),
    "uses_database": (bool, False),
    "migrate_command": (list, False),
    "chart": (str, False),
    "release": (str, False),
    "values_files": (list, False),
}
_TOP_FIELDS = {
    "app": (str, True),
    "version": (str, True),
    "components": (dict, True),
    "stand_in_base_images": (dict, False),
    "hadolint_threshold": (str, False),
    "namespace": (str, False),
    "resource_quota": (dict, False),
    "kubernetes_version": (str, False),
    "timeouts_s": (dict, False),
    "cluster_provider": (str, False),
    "source_url": (str, False),
}
DEFAULT_TIMEOUTS_S = {"build": 1200.0, "container_healthy": 90.0, "deploy": 300.0}


def _check_fields(doc: dict, spec: dict, where: str) -> None:
    for key in doc:
        if key not in spec:
            raise ConfigError(f"{where}{key}: unknown key (known: {', '.join(sorted(spec))})")
    for key, (typ, required) in spec.items():
        if key not in doc:
            if required:
                raise ConfigError(f"{where}{key}: required field is missing")
            continue
        value = doc[key]
        if isinstance(value, bool) and typ in (int, (int, float)):
            raise ConfigError(f"{where}{key}: expected a number, got {value!r}")
        if not isinstance(value, typ):
            name = typ.__name__ if isinstance(typ, type) else "number"
            raise ConfigError(f"{where}{key}: expected {name}, got {type(value).__name__} {value!r}")


def _path_inside(root: Path, value: str, where: str, kind: str) -> Path:
    path = (root / value).resolve()
    exists = path.is_dir() if kind == "directory" else path.is_file()
    if not exists:
        raise ConfigError(f"{where}: {kind} {value!r} does not exist (looked in {root})")
    return path


def _component(root: Path, name: str, doc: Any) -> Component:
    where = f"components.{name}."
    if not _NAME.match(name):
        raise ConfigError(f"components.{name}: name must be a lowercase DNS label (a-z, 0-9, '-')")
    if not isinstance(doc, dict):
        raise ConfigError(f"components.{name}: expected a mapping of fields")
    _check_fields(doc, _COMPONENT_FIELDS, where)
    if doc["size_budget_mb"] <= 0:
        raise ConfigError(f"{where}size_budget_mb: must be positive, got {doc['size_budget_mb']}")
    if not 1 <= doc["port"] <= 65535:
        raise ConfigError(f"{where}port: must be 1-65535, got {doc['port']}")
    role = doc.get("role", "app")
    if role not in ROLES:
        raise ConfigError(f"{where}role: must be one of {ROLES}, got {role!r}")
    uid = doc.get("uid", 1001)
    if uid <= 0:
        raise ConfigError(f"{where}uid: must be a non-root UID (> 0), got {uid}")
    for key in ("health_path", "readiness_path"):
        if key in doc and not doc[key].startswith("/"):
            raise ConfigError(f"{where}{key}: must start with '/', got {doc[key]!r}")
    if role == "app" and "health_path" not in doc:
        raise ConfigError(f"{where}health_path: required for app components")
    if not _NAME.match(doc["image"].rsplit("/", 1)[-1]) or "@" in doc["image"]:
        raise ConfigError(f"{where}image: give the repository without a tag (the tag is 'version'), got {doc['image']!r}")
    for p in doc.get("writable_paths", []):
        if not isinstance(p, str) or not p.startswith("/"):
            raise ConfigError(f"{where}writable_paths: entries must be absolute paths, got {p!r}")
    for key in ("values_files", "migrate_command"):
        for item in doc.get(key, []):
            if not isinstance(item, str):
                raise ConfigError(f"{where}{key}: entries must be strings, got {item!r}")
    for key in ("base_images", "run_env"):
        for k, v in doc.get(key, {}).items():
            if not isinstance(v, str):
                raise ConfigError(f"{where}{key}.{k}: expected a string, got {v!r}")
    context = _path_inside(root, doc["context"], where + "context", "directory")
    dockerfile = _path_inside(root, doc["dockerfile"], where + "dockerfile", "file")
    chart = _path_inside(root, doc["chart"], where + "chart", "directory") if "chart" in doc else None
    values = tuple(_path_inside(root, v, where + "values_files", "file") for v in doc.get("values_files", []))
    return Component(
        name=name,
        context=context,
        dockerfile=dockerfile,
        image=doc["image"],
        port=doc["port"],
        size_budget_mb=float(doc["size_budget_mb"]),
        role=role,
        uid=uid,
        health_path=doc.get("health_path"),
        readiness_path=doc.get("readiness_path"),
        base_images=dict(doc.get("base_images", {})),
        writable_paths=tuple(doc.get("writable_paths", ["/tmp"])),
        run_env=dict(doc.get("run_env", {})),
        uses_database=doc.get("uses_database", False),
        migrate_command=tuple(doc.get("migrate_command", [])),
        chart=chart,
        release=doc.get("release", name if chart else None),
        values_files=values,
    )


def apply_overrides(doc: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a copy of the raw document."""
    doc = copy.deepcopy(doc)  # keeps key order: components deploy in the order written
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. components.todo-frontend.size_budget_mb=180")
        parts = key.split(".")
        target = doc
        for i, part in enumerate(parts[:-1]):
            if part not in target or not isinstance(target[part], dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is not a mapping in the configuration")
            target = target[part]
        target[parts[-1]] = yaml.safe_load(raw)
    return doc


def parse(doc: Any, root: Path) -> Config:
    if not isinstance(doc, dict):
        raise ConfigError("configuration: expected a mapping at the top level")
    _check_fields(doc, _TOP_FIELDS, "")
    if not _TAG.match(doc["version"]) or doc["version"] == "latest":
        raise ConfigError(f"version: must be a valid image tag other than 'latest', got {doc['version']!r}")
    if not doc["components"]:
        raise ConfigError("components: at least one component is required")
    components = {name: _component(root, name, c) for name, c in doc["components"].items()}
    threshold = doc.get("hadolint_threshold", "warning")
    if threshold not in HADOLINT_THRESHOLDS:
        raise ConfigError(f"hadolint_threshold: must be one of {HADOLINT_THRESHOLDS}, got {threshold!r}")
    namespace = doc.get("namespace", "default")
    if not _NAME.match(namespace):
        raise ConfigError(f"namespace: must be a lowercase DNS label, got {namespace!r}")
    timeouts = dict(DEFAULT_TIMEOUTS_S)
    for key, value in doc.get("timeouts_s", {}).items():
        if key not in DEFAULT_TIMEOUTS_S:
            raise ConfigError(f"timeouts_s.{key}: unknown key (known: {', '.join(DEFAULT_TIMEOUTS_S)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"timeouts_s.{key}: must be a positive number of seconds, got {value!r}")
        timeouts[key] = float(value)
    provider = doc.get("cluster_provider", "auto")
    if provider not in PROVIDERS:
        raise ConfigError(f"cluster_provider: must be one of {PROVIDERS}, got {provider!r}")
    quota = {str(k): str(v) for k, v in doc.get("resource_quota", {}).items()}
    kube_version = str(doc.get("kubernetes_version", "1.34"))
    if not re.match(r"^1\.\d+$", kube_version):
        raise ConfigError(f"kubernetes_version: expected MAJOR.MINOR such as 1.34, got {kube_version!r}")
    return Config(
        root=root,
        app=doc["app"],
        version=doc["version"],
        components=components,
        stand_in_base_images=dict(doc.get("stand_in_base_images", {})),
        hadolint_threshold=threshold,
        namespace=namespace,
        resource_quota=quota,
        kubernetes_version=kube_version,
        timeouts_s=timeouts,
        cluster_provider=provider,
        source_url=doc.get("source_url", ""),
    )


def load(path: Path, overrides: list[str] | None = None) -> Config:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist (set --shipcheck-config or SHIPCHECK_CONFIG)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse(apply_overrides(doc or {}, overrides or []), path.resolve().parent)
