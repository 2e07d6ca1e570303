"""The one Helm wrapper: argv built by pure functions, run through `commands`.

Values reach helm in one order everywhere (lint, template, upgrade): the chart's own
values.yaml, then the values files of the plan (profile file, the user's files), then the
values the suite injects, given on stdin (`-f -`) so that no temporary file is ever left
behind. Helm is run without --wait: the deploy stage watches the rollout itself and stops
helm within seconds of a clear failure, where `helm --wait` sits out its whole timeout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from . import commands

HELM_TIMEOUT_S = 60.0
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")


class HelmError(RuntimeError):
    """helm could not answer a question about a release (cluster unreachable, no rights...)."""


# --- argv, pure --------------------------------------------------------------------------
def kube_version_flag(version: str) -> str:
    """'1.34' -> 'v1.34.0', 'v1.34.4' -> 'v1.34.4' (helm wants a full semantic version)."""
    version = version.lstrip("v").split("+")[0].split("-")[0]
    return f"v{version}.0" if version.count(".") == 1 else f"v{version}"


def values_args(files: Sequence[Path], injected: bool) -> list[str]:
    args: list[str] = []
    for path in files:
        args += ["-f", str(path)]
    return args + (["-f", "-"] if injected else [])


def lint_argv(chart: Path, files: Sequence[Path] = (), *, injected: bool = False, kube_version: str | None = None,
              strict: bool = True) -> list[str]:
    argv = ["lint", str(chart)] + (["--strict"] if strict else [])
    if kube_version:
        argv += ["--kube-version", kube_version_flag(kube_version)]
    return argv + values_args(files, injected)


def template_argv(release: str, chart: Path, files: Sequence[Path] = (), *, injected: bool = False,
                  kube_version: str | None = None) -> list[str]:
    """`helm template`, hooks and test pods included (they count against the quota too)."""
    argv = ["template", release, str(chart)]
    if kube_version:
        argv += ["--kube-version", kube_version_flag(kube_version)]
    return argv + values_args(files, injected)


def upgrade_argv(release: str, chart: Path, files: Sequence[Path], timeout_s: float, *, injected: bool = True) -> list[str]:
    return ["upgrade", "--install", release, str(chart), "--timeout", f"{int(timeout_s)}s",
            *values_args(files, injected)]


# --- history, pure -----------------------------------------------------------------------
def served(entry: dict) -> bool:
    """Did this revision complete and serve? `deployed`, or `superseded` after completing.
    A rollback marks the revision it leaves `superseded` even when that revision had failed;
    its description ("Upgrade ... failed: ...") still tells."""
    if entry["status"] == "deployed":
        return True
    return entry["status"] == "superseded" and "fail" not in str(entry.get("description", "")).lower()


def last_deployed_revision(history: list[dict]) -> int | None:
    """The newest revision that completed and served traffic: the one to go back to."""
    for entry in reversed(history):
        if served(entry):
            return int(entry["revision"])
    return None


def recovery_action(history: list[dict]) -> tuple[str, int | None] | None:
    """What to do with a release an interrupted or failed run left behind: roll back to the
    last good revision, or uninstall a first install that never completed. A release whose
    last revision is `failed` goes back to the last good one too, never to a failed or
    superseded-then-failed revision."""
    if not history or history[-1]["status"] not in PENDING + ("failed",):
        return None
    good = last_deployed_revision(history[:-1])
    if good is None:
        return ("uninstall", None)
    return ("rollback", good)


def manifest_docs(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict) and doc]


def object_key(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


def manifest_differences(deployed: Sequence[dict], desired: Sequence[dict]) -> list[str]:
    """Object by object: which objects are missing, extra, or different (by kind/name)."""
    have = {object_key(d): json.dumps(d, sort_keys=True) for d in deployed}
    want = {object_key(d): json.dumps(d, sort_keys=True) for d in desired}
    diffs = [f"{k}: not in the release" for k in want if k not in have]
    diffs += [f"{k}: in the release but not in the plan" for k in have if k not in want]
    diffs += [f"{k}: differs" for k in want if k in have and have[k] != want[k]]
    return diffs


# --- running ------------------------------------------------------------------------------
@dataclass
class Rendered:
    """A `helm template` run: the command's result and the manifests it printed."""

    result: commands.CommandResult
    manifests: list[dict]

    @property
    def ok(self) -> bool:
        return self.result.ok

    def __repr__(self) -> str:
        return f"<Rendered {len(self.manifests)} manifests, rc={self.result.rc}>"


@dataclass
class Helm:
    binary: str
    kube_args: list[str]  # --kubeconfig/--kube-context
    namespace: str

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *args, "--namespace", self.namespace, *self.kube_args]

    def run(self, *args: str, check: bool = False, timeout_s: float = 120, input_text: str | None = None,
            what: str = "") -> commands.CommandResult:
        return commands.run(self.argv(*args), check=check, timeout_s=timeout_s, input_text=input_text, what=what)

    # --- charts (no cluster) ---
    def lint(self, chart: Path, files: Sequence[Path], values: dict | None, kube_version: str) -> commands.CommandResult:
        return self.run(*lint_argv(chart, files, injected=values is not None, kube_version=kube_version),
                        input_text=_yaml(values), timeout_s=HELM_TIMEOUT_S)

    def template(self, release: str, chart: Path, files: Sequence[Path], values: dict | None,
                 kube_version: str) -> Rendered:
        result = self.run(*template_argv(release, chart, files, injected=values is not None, kube_version=kube_version),
                          input_text=_yaml(values), timeout_s=HELM_TIMEOUT_S)
        return Rendered(result, manifest_docs(result.stdout) if result.ok else [])

    # --- releases (facts) ---
    def history(self, release: str) -> list[dict]:
        """The release's revisions, oldest first; [] when there is no such release."""
        result = self.run("history", release, "--max", "20", "-o", "json")
        if result.ok:
            return json.loads(result.stdout or "[]")
        if "not found" in result.stderr:
            return []
        raise HelmError(f"`helm history {release}` failed: {result.tail(5)}")

    def manifest(self, release: str) -> list[dict]:
        """The release's objects (`helm get manifest`) and its hooks (`helm get hooks`)."""
        docs = []
        for what in ("manifest", "hooks"):
            result = self.run("get", what, release)
            if not result.ok:
                raise HelmError(f"`helm get {what} {release}` failed: {result.tail(5)}")
            docs += manifest_docs(result.stdout)
        return docs

    # --- releases (actions) ---
    def start_upgrade(self, release: str, chart: Path, files: Sequence[Path], values: dict,
                      timeout_s: float) -> commands.Process:
        return commands.start(self.argv(*upgrade_argv(release, chart, files, timeout_s)), input_text=_yaml(values),
                              die_with_parent=True)

    def rollback(self, release: str, revision: int, timeout_s: float) -> commands.CommandResult:
        return self.run("rollback", release, str(revision), "--wait", "--timeout", f"{int(timeout_s)}s",
                        timeout_s=timeout_s + 30)

    def uninstall(self, release: str, timeout_s: float = 120) -> commands.CommandResult:
        return self.run("uninstall", release, "--wait", "--timeout", f"{int(timeout_s)}s", timeout_s=timeout_s + 30)

    def test(self, release: str, timeout_s: float = 180) -> commands.CommandResult:
        return self.run("test", release, "--logs", "--timeout", f"{int(timeout_s)}s", timeout_s=timeout_s + 60)

    def releases(self) -> list[str]:
        return self.run("list", "--all", "--short").stdout.split()


def _yaml(values: dict | None) -> str | None:
    return None if values is None else yaml.safe_dump(values, sort_keys=True)
