"""Helm releases: install or upgrade, roll back, and recover from interrupted runs.

argv is built by pure functions and run through the one command runner. Helm is run
without --wait: the deploy stage watches the rollout itself and stops within seconds of
a clear failure, where `helm --wait` would sit out its whole timeout.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from . import commands

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")


@dataclass
class Helm:
    binary: str
    kube_args: list[str]  # --kubeconfig/--kube-context
    namespace: str

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *args, "--namespace", self.namespace, *self.kube_args]

    def run(self, *args: str, check: bool = True, timeout_s: float = 120, what: str = "") -> commands.CommandResult:
        return commands.run(self.argv(*args), check=check, timeout_s=timeout_s, what=what)

    # --- facts ---
    def history(self, release: str) -> list[dict]:
        result = self.run("history", release, "--max", "20", "-o", "json", check=False)
        return json.loads(result.stdout) if result.ok and result.stdout.strip() else []

    def status(self, release: str) -> str | None:
        history = self.history(release)
        return history[-1]["status"] if history else None

    def manifest(self, release: str) -> str:
        result = self.run("get", "manifest", release, check=False)
        return result.stdout if result.ok else ""

    def values(self, release: str) -> dict:
        result = self.run("get", "values", release, "-o", "json", check=False)
        return (json.loads(result.stdout) or {}) if result.ok else {}

    def template(self, release: str, chart: Path, values: dict, extra_values_files: tuple[Path, ...] = ()) -> str:
        with values_file(release, values) as path:
            args = ["template", release, str(chart)]
            for extra in extra_values_files:
                args += ["-f", str(extra)]
            return self.run(*args, "-f", path, what=f"rendering {release}").stdout

    # --- actions ---
    def upgrade_argv(self, release: str, chart: Path, values_path: str, timeout_s: float,
                     extra_values_files: tuple[Path, ...] = ()) -> list[str]:
        return self.argv(*upgrade_args(release, chart, values_path, timeout_s, extra_values_files))

    def rollback(self, release: str, revision: int, timeout_s: float) -> commands.CommandResult:
        return self.run("rollback", release, str(revision), "--wait", "--timeout", f"{int(timeout_s)}s",
                        check=False, timeout_s=timeout_s + 30)

    def uninstall(self, release: str, timeout_s: float = 120) -> commands.CommandResult:
        return self.run("uninstall", release, "--wait", "--timeout", f"{int(timeout_s)}s",
                        check=False, timeout_s=timeout_s + 30)


@contextlib.contextmanager
def values_file(release: str, values: dict) -> Iterator[str]:
    """The pipeline's values as a private temporary file (they hold no secrets: those live in
    Secrets that the charts reference by name)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"shipcheck-{release}-") as f:
        yaml.safe_dump(values, f)
        f.flush()
        yield f.name


# --- pure ------------------------------------------------------------------------------------
def upgrade_args(release: str, chart: Path, values_file: str, timeout_s: float,
                 extra_values_files: tuple[Path, ...] = ()) -> list[str]:
    args = ["upgrade", "--install", release, str(chart), "--timeout", f"{int(timeout_s)}s"]
    for path in extra_values_files:
        args += ["-f", str(path)]
    return args + ["-f", values_file]  # ours last: the pipeline's values win


def last_deployed_revision(history: list[dict]) -> int | None:
    """The newest revision that was deployed or superseded (served traffic)."""
    for entry in reversed(history):
        if entry["status"] in ("deployed", "superseded"):
            return int(entry["revision"])
    return None


def recovery_action(history: list[dict]) -> tuple[str, int | None] | None:
    """What to do with a release an interrupted run left pending: roll back to the last
    good revision, or uninstall a first install that never completed."""
    if not history or history[-1]["status"] not in PENDING:
        return None
    good = last_deployed_revision(history[:-1])
    return ("rollback", good) if good else ("uninstall", None)


def deep_merge(base: dict, override: dict) -> dict:
    """Helm's merge of values: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def merged_values(files: tuple[Path, ...], values: dict) -> dict:
    """What `helm get values` reports for a release installed with `-f file...` then `values`."""
    merged: dict = {}
    for path in files:
        merged = deep_merge(merged, yaml.safe_load(Path(path).read_text()) or {})
    return deep_merge(merged, values)


def manifests_equal(deployed: str, desired: str) -> bool:
    """Same set of objects with the same content, whatever the document order."""
    def docs(text: str) -> list[str]:
        return sorted(json.dumps(d, sort_keys=True) for d in yaml.safe_load_all(text) if d)
    return docs(deployed) == docs(desired)


def without_hooks(rendered: str) -> str:
    """`helm template` output minus hook objects, to compare with `helm get manifest`."""
    kept = [d for d in yaml.safe_load_all(rendered)
            if d and "helm.sh/hook" not in ((d.get("metadata") or {}).get("annotations") or {})]
    return yaml.safe_dump_all(kept)
