"""The configuration rules a JSON Schema cannot say: paths that exist and stay inside the
repository, names that refer to declared components and Secret keys, release names that do
not collide, template variables that are captured before use, quota keys and quantities.

Each function appends one line per problem, starting with the dotted field, to `problems`;
config.parse runs them after the schema, on a document the schema has already shaped.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import Any

BUILTIN_VARIABLES = ("user", "run")  # template variables of checks: a user id and a random run id
REQUEST_STAGES, BROWSER_STAGES = (2, 5), (5,)
SECRET_REF = re.compile(r"\$\{secret:([^:}]*):([^}]*)\}")  # run_env: ${secret:SECRET-NAME:KEY}
CONFIG_MAP_REF = re.compile(r"\$\{config_map:([^:}]*):([^}]*)\}")  # run_env: ${config_map:NAME:KEY}
TEMPLATE_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def repository_of(directory: Path) -> Path:
    """The git top level above `directory` (a .git directory or worktree file), else itself.
    Found by walking up, not by running git: validation starts no process."""
    for candidate in (directory, *directory.parents):
        if (candidate / ".git").exists():
            return candidate
    return directory


def resolve_path(base: Path, repo: Path, value: str, where: str, kind: str, problems: list[str]) -> Path:
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


def quota_problems(quota: dict, problems: list[str]) -> None:
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


def template_problems(checks: list[dict], problems: list[str]) -> None:
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
                    known = ", ".join([*BUILTIN_VARIABLES, *captured])
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


def reference_problems(doc: dict, problems: list[str]) -> str | None:
    """Names that must refer to something declared; returns the entry component's name."""
    apps = [n for n, c in doc["components"].items() if c.get("role", "app") == "app"]
    entry = _entry(doc.get("entry"), apps, problems)
    _component_references(doc, problems)
    _secret_references(doc, problems)
    for i, check in enumerate(doc.get("checks", [])):
        if "component" in check and check["component"] not in apps:
            problems.append(f"checks[{i}].component: {check['component']!r} is not an app component "
                            f"(app components: {', '.join(apps) or 'none'})")
    return entry


def _entry(entry: str | None, apps: list[str], problems: list[str]) -> str | None:
    if entry is None and len(apps) == 1:
        return apps[0]
    if entry is None:
        problems.append(f"entry: required when there is {'no' if not apps else 'more than one'} app component "
                        f"({', '.join(apps) or 'every component has role database'}): name the one users reach")
    elif entry not in apps:
        problems.append(f"entry: {entry!r} is not an app component (app components: {', '.join(apps) or 'none'})")
    return entry


def _component_references(doc: dict, problems: list[str]) -> None:
    components = doc["components"]
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
        for env, value in comp.get("run_env", {}).items():
            for secret, key in SECRET_REF.findall(value):
                if not _secret_has(doc, secret, key):
                    problems.append(f"{where}.run_env.{env}: ${{secret:{secret}:{key}}} names no declared Secret key "
                                    f"(secrets: {', '.join(_secret_keys(doc)) or 'none'})")
            for config_map, key in CONFIG_MAP_REF.findall(value):
                if key not in (doc.get("config_maps") or {}).get(config_map, {}):
                    known = [f"{n}:{k}" for n, keys in (doc.get("config_maps") or {}).items() for k in keys]
                    problems.append(f"{where}.run_env.{env}: ${{config_map:{config_map}:{key}}} names no declared "
                                    f"ConfigMap key (config_maps: {', '.join(known) or 'none'})")


def _secret_references(doc: dict, problems: list[str]) -> None:
    components, secrets = doc["components"], doc.get("secrets", {})
    for name, comp in components.items():
        database = comp.get("database")
        if database and database["password_secret"] in secrets:
            problems.append(f"components.{name}.database.password_secret: {database['password_secret']!r} is also "
                            "declared in secrets; the suite creates it from the database block: use another name")
    databases = [n for n, c in components.items() if c.get("role") == "database"]
    for secret, keys in secrets.items():
        for key, source in keys.items():
            database = source.get("database_url", {}).get("database")
            if database is not None and database not in databases:
                problems.append(f"secrets.{secret}.{key}.database_url.database: {database!r} is not a database "
                                f"component (database components: {', '.join(databases) or 'none'})")


def _secret_has(doc: dict, secret: str, key: str) -> bool:
    if key in doc.get("secrets", {}).get(secret, {}):
        return True
    return any((c.get("database") or {}).get("password_secret") == secret and c["database"]["password_key"] == key
               for c in doc["components"].values())


def _secret_keys(doc: dict) -> list[str]:
    keys = [f"{s}:{k}" for s, ks in doc.get("secrets", {}).items() for k in ks]
    return keys + [f"{d['password_secret']}:{d['password_key']}" for c in doc["components"].values()
                   if (d := c.get("database"))]
