"""Helm charts: find helm, build lint/template argv (pure), run them, parse what they render.

`release_values(cfg, component)` is the one place that decides what the pipeline passes
to a release (values files and --set-json values); stage 3 renders with it and the
deploy stage installs with it, so what is validated is what gets deployed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import commands
from .config import Component, Config

HELM_TIMEOUT_S = 60.0
PROFILES = ("defaults", "pipeline", "seed", "small")


class HelmNotFound(FileNotFoundError):
    """helm is neither on PATH nor in the set-up's cache."""


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where set-up and the suite keep what they build: $SHIPCHECK_CACHE, else ~/.cache/shipcheck."""
    env = os.environ if env is None else env
    return Path(env.get("SHIPCHECK_CACHE") or str(Path(env.get("HOME") or Path.home()) / ".cache" / "shipcheck"))


def cache_bin_dir(env: Mapping[str, str] | None = None) -> Path:
    return cache_dir(env) / "bin"


def tool_binary(name: str, env: Mapping[str, str] | None = None) -> str:
    """A set-up tool (helm, kubectl): on PATH, else in $SHIPCHECK_CACHE/bin (default ~/.cache/shipcheck/bin)."""
    env = os.environ if env is None else env
    found = shutil.which(name, path=env.get("PATH"))
    if found:
        return found
    cached = cache_bin_dir(env) / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    raise HelmNotFound(f"{name} not found on PATH nor at {cached}. Fix: run `bash setup/tools.sh` (installs the pinned "
                       f"{name} into that directory), or put {name} on PATH.")


def helm_binary(env: Mapping[str, str] | None = None) -> str:
    return tool_binary("helm", env)


# --- values -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ReleaseValues:
    """Values for one release: files (-f, in order) then exact-typed values (--set-json)."""

    files: tuple[Path, ...] = ()
    sets: dict[str, Any] = field(default_factory=dict)

    def argv(self) -> list[str]:
        args: list[str] = []
        for path in self.files:
            args += ["-f", str(path)]
        for key, value in self.sets.items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        return args

    def plus(self, *files: Path, **sets: Any) -> "ReleaseValues":
        return ReleaseValues(self.files + tuple(files), {**self.sets, **sets})

    def nested(self) -> dict:
        """The --set values as one nested mapping, for a values file (`-f`) after `files`."""
        tree: dict = {}
        for key, value in self.sets.items():
            *parents, leaf = key.split(".")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return tree


def release_values(cfg: Config, component: Component, *, existing_secret: str | None = None,
                   extra_files: tuple[Path, ...] = ()) -> ReleaseValues:
    """What the pipeline passes for `component`'s release: its values files from the
    configuration, then the image it built (repository and tag), the names and port, the
    probe paths, the migration command, and the name of the Secret the deploy stage
    creates (`existing_secret`), so no secret value ever goes through helm."""
    sets: dict[str, Any] = {
        "fullnameOverride": component.release or component.name,
        "image.repository": component.image,
        "image.tag": cfg.version,
        "image.pullPolicy": "IfNotPresent",
        "service.port": component.port,
    }
    if component.role == "app":
        sets["healthCheck.path"] = component.health_path
        sets["healthCheck.readinessPath"] = component.readiness_path or component.health_path
    if component.migrate_command:  # whether they run stays the chart's (migrations.enabled)
        sets["migrations.command"] = list(component.migrate_command)
    if existing_secret:
        sets["auth.existingSecret" if component.role == "database" else "secret.existingSecret"] = existing_secret
    return ReleaseValues(tuple(component.values_files) + tuple(extra_files), sets)


def profile_values(cfg: Config, component: Component, profile: str) -> ReleaseValues:
    """Values for a named profile: 'defaults' (the chart alone), 'pipeline' (release_values),
    'seed' and 'small' (the pipeline's values plus values-seed.yaml / values-small.yaml)."""
    if profile == "defaults":
        return ReleaseValues()
    base = release_values(cfg, component)
    if profile == "pipeline":
        return base
    if profile in ("seed", "small"):
        return base.plus(profile_file(component, profile))
    raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")


def profile_file(component: Component, profile: str) -> Path:
    assert component.chart is not None
    return component.chart / f"values-{profile}.yaml"


# --- argv (pure) ------------------------------------------------------------------------
def lint_argv(helm: str, chart: Path, values: ReleaseValues | None = None, *, strict: bool = True,
              kube_version: str | None = None) -> list[str]:
    argv = [helm, "lint", str(chart)]
    if strict:
        argv.append("--strict")
    if kube_version:
        argv += ["--kube-version", kube_version_flag(kube_version)]
    return argv + (values.argv() if values else [])


def template_argv(helm: str, chart: Path, release: str, namespace: str, values: ReleaseValues | None = None, *,
                  kube_version: str | None = None) -> list[str]:
    """`helm template`, hooks and test pods included (they count against the quota too)."""
    argv = [helm, "template", release, str(chart), "--namespace", namespace]
    if kube_version:
        argv += ["--kube-version", kube_version_flag(kube_version)]
    return argv + (values.argv() if values else [])


def kube_version_flag(version: str) -> str:
    """'1.34' -> 'v1.34.0' (helm wants a full semantic version)."""
    version = version.lstrip("v")
    return f"v{version}.0" if version.count(".") == 1 else f"v{version}"


# --- running ----------------------------------------------------------------------------
@dataclass
class Rendered:
    """A `helm template` run: the command's result and the manifests it printed."""

    chart: Path
    release: str
    profile: str
    result: commands.CommandResult
    manifests: list[dict]

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def duration_s(self) -> float:
        return self.result.duration_s

    def kinds(self) -> list[str]:
        return [f"{m.get('kind')}/{(m.get('metadata') or {}).get('name')}" for m in self.manifests]

    def __repr__(self) -> str:
        return f"<Rendered {self.release} ({self.profile}): {len(self.manifests)} manifests, rc={self.result.rc}>"


def parse_manifests(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict) and doc]


def lint(helm: str, chart: Path, values: ReleaseValues | None = None, *,
         kube_version: str | None = None) -> commands.CommandResult:
    return commands.run(lint_argv(helm, chart, values, kube_version=kube_version), check=False,
                        timeout_s=HELM_TIMEOUT_S)


def template(helm: str, chart: Path, release: str, namespace: str, values: ReleaseValues | None = None, *,
             kube_version: str | None = None, profile: str = "") -> Rendered:
    result = commands.run(template_argv(helm, chart, release, namespace, values, kube_version=kube_version),
                          check=False, timeout_s=HELM_TIMEOUT_S)
    manifests = parse_manifests(result.stdout) if result.ok else []
    return Rendered(chart, release, profile, result, manifests)


def chart_metadata(chart: Path) -> dict:
    return yaml.safe_load((Path(chart) / "Chart.yaml").read_text()) or {}


def values_files(chart: Path) -> list[Path]:
    """The chart's values.yaml and every values-*.yaml profile beside it."""
    chart = Path(chart)
    return sorted(p for p in chart.glob("values*.yaml") if p.is_file())


def load_values(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text()) or {}


def lint_problems(result: commands.CommandResult) -> list[str]:
    """The [ERROR]/[WARNING] lines of a helm lint run (with --strict, warnings fail too)."""
    text = result.stdout + "\n" + result.stderr
    lines = [line.strip() for line in text.splitlines() if "[ERROR]" in line or "[WARNING]" in line]
    if not lines and not result.ok:
        lines = [result.tail(10)]
    return lines


