"""The suite's lab for seeded faults on the real cluster: the REAL stage modules run in a
pytester subprocess against the app's shipcheck.yaml, in a namespace of the test's own.

- `run_stages(pytester, ["stages/test_04_deploy.py"], sets)`: copies the repository's
  conftest.py and the named stage modules into the pytester directory, adds an inner
  stages/conftest.py that reuses the images stage 1 built (PREBUILT_CONFTEST), and runs
  them with `--set` overrides (namespace, values files, quota ...), `-o addopts=`, the
  small profile and a JUnit file of its own; returns an `InnerRun` (JUnit cases, the
  summary.json sections, the HTML report, the duration).
- `merge` / `seeded_values`: chart values with a seeded values file merged over them, as
  helm merges `-f` files.
- `http_status`: one GET, its status or the error, never raising.
- fixtures `local_cluster`, `kubectl_argv`, `lab_namespace` (the requesting module's
  NAMESPACE, which must not exist yet, deleted with all it holds at the end), `frontend_url`
  (the namespace's frontend through the API server's service proxy) and `state` (what a
  module's tests share: pytester is per test); tests/conftest.py loads this module as a plugin.

Used by tests/test_deploy_faults.py (stage 4) and tests/test_health_faults.py (stage 5).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import junit_report
import pytest
import yaml
from junit_report import Case

from shipcheck import commands, providers, tools, traffic

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = str(Path(sys.executable).parent)
INNER_TIMEOUT_S = 600  # one inner run; a deploy stuck past its own timeouts shows as a pytester timeout

# The inner sessions test stages 4 and 5 alone: stage 1 already built the images, and rebuilding
# them would retag the shared todo-* images with a new revision label. This fixture (in the
# inner stages/conftest.py) reports what the engine holds as built.
PREBUILT_CONFTEST = '''\
"""Stage 1 has run: reuse the images in the engine instead of building them again."""
import pytest

from shipcheck import images


@pytest.fixture(scope="session")
def builds(cfg, docker_client):
    def result(component):
        ref = cfg.image_ref(component)
        present = bool(docker_client.images.list(name=ref))
        missing = "" if present else f"{ref} is not in the engine: run stage 1"
        return images.BuildResult(component.name, ref, present, 0.0, {}, missing)
    return {c.name: result(c) for c in cfg.components.values()}
'''


@dataclass
class InnerRun:
    result: pytest.RunResult
    cases: dict[str, Case]
    figures: dict  # summary.json sections
    html: str
    duration_s: float
    label: str = "stage 4"

    def __repr__(self) -> str:
        return f"<InnerRun {self.label} rc={self.result.ret} {len(self.cases)} tests {self.duration_s:.0f} s>"

    def outcome(self, test_id: str) -> str:
        return self.cases[test_id].outcome if test_id in self.cases else "not run"

    def outcomes(self) -> dict[str, str]:
        return {test_id: case.outcome for test_id, case in self.cases.items()}

    def failure(self, test_id: str) -> Case:
        """The case of a gate that must have FAILED (not errored, not skipped)."""
        __tracebackhide__ = True
        case = self.cases.get(test_id)
        if case is None or case.outcome != "failed":
            pytest.fail(f"{test_id}: {case.outcome if case else 'not run'}, expected failed. "
                        f"{case.text[-1500:] if case else ''}\n" + self.tail())
        return case

    def deploys(self, release: str) -> list[dict]:
        return [row for row in self.figures.get("deploys", []) if row["release"] == release]

    def tail(self, lines: int = 60) -> str:
        return "--- inner output (tail) ---\n" + "\n".join(self.result.outlines[-lines:])


def stage_label(stage_files: list[str]) -> str:
    """'stages/test_04_deploy.py', 'stages/test_05_health.py' -> 'stages 4+5'."""
    numbers = [str(int(Path(f).name.split("_")[1])) for f in stage_files]
    return ("stage " if len(numbers) == 1 else "stages ") + "+".join(numbers)


def run_stages(pytester: pytest.Pytester, stage_files: list[str], sets: list[str] | tuple[str, ...], *,
               profile: str = "small", args: tuple[str, ...] = (), name: str = "inner",
               conftest_extra: str = "", env: dict[str, str] | None = None, prebuilt: bool = True) -> InnerRun:
    """The real stage modules `stage_files` (paths under the repository) in a subprocess, on
    the app's shipcheck.yaml with `sets` (--set) over it and `args` (e.g. -k) after; JUnit
    (`name`-junit.xml), HTML and summary.json are read back. `conftest_extra` is appended to
    the inner stages/conftest.py (harness code for this run only, never a gate); `env` is set
    for the inner run after the pipeline's own variables are cleared (registry credentials, a
    KUBECONFIG of a least-privilege account). `prebuilt=False` leaves stage 1's real `builds`
    fixture in place (for a run that must stop before any build)."""
    (pytester.path / "conftest.py").write_text((REPO / "conftest.py").read_text())
    (pytester.path / "stages").mkdir(exist_ok=True)
    for stage in stage_files:
        (pytester.path / stage).write_text((REPO / stage).read_text())
    (pytester.path / "stages" / "conftest.py").write_text((PREBUILT_CONFTEST if prebuilt else "") + conftest_extra)
    reports = pytester.path / "reports"
    reports.mkdir(exist_ok=True)  # the plugin writes summary.json there
    (reports / "summary.json").unlink(missing_ok=True)  # an earlier run's in the same directory
    # Pin the inner rootdir here: a path argument under the repository would make pytest pick
    # the repository's pyproject.toml and rootdir, and the inner run write the repository's reports/.
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    junit, report = pytester.path / f"{name}-junit.xml", pytester.path / f"{name}-report.html"
    set_args = [arg for item in sets for arg in ("--set", item)]
    start = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        for var in ("SHIPCHECK_CONFIG", "SHIPCHECK_VALUES_PROFILE", "SHIPCHECK_CLUSTER", "DATABASE_URL", "KUBECONFIG",
                    "SHIPCHECK_REGISTRY", "SHIPCHECK_REGISTRY_CA", "REGISTRY_USERNAME", "REGISTRY_PASSWORD"):
            mp.delenv(var, raising=False)  # the in-cluster PostgreSQL, the local cluster, our options only
        for var, value in (env or {}).items():
            mp.setenv(var, value)
        mp.setenv("PYTHONPATH", str(REPO))
        mp.setenv("PATH", os.pathsep.join([str(tools.cache_bin_dir()), VENV_BIN, os.environ["PATH"]]))
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", f"--rootdir={pytester.path}", "-c", str(pytester.path / "pytest.ini"),
            "-o", "addopts=", "-o", "junit_family=xunit2", "-o", "junit_logging=system-out",
            f"--junitxml={junit}", f"--html={report}", "--self-contained-html",
            f"--shipcheck-config={REPO / 'shipcheck.yaml'}", "--cluster=local", f"--values-profile={profile}",
            *set_args, *args, *stage_files, timeout=INNER_TIMEOUT_S)
    summary = reports / "summary.json"
    return InnerRun(result, junit_report.parse(junit) if junit.exists() else {},
                    json.loads(summary.read_text())["sections"] if summary.exists() else {},
                    report.read_text() if report.exists() else "", time.monotonic() - start, stage_label(stage_files))


def show_at_end(pytestconfig: pytest.Config, lines: list[str]) -> None:
    """Write `lines` to the terminal past output capture (a module fixture's teardown: the
    fault tables under the session's results)."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)


def merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, mappings merged key by key, anything else replaced (as helm's -f)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else copy.deepcopy(value)
    return out


def seeded_values(tree: dict, path: Path) -> dict:
    """The values `tree` with the seeded values file `path` merged over them."""
    return merge(tree, yaml.safe_load(Path(path).read_text()) or {})


def http_status(url: str) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception as exc:  # noqa: BLE001 -- the error is the answer: what a request saw
        return f"{type(exc).__name__}: {exc}"


# --- fixtures shared by the fault modules (this module is a plugin of tests/conftest.py) -------------------------------------------
@pytest.fixture(scope="module")
def local_cluster() -> providers.Cluster:
    if not providers.context_reachable(providers.LOCAL_KUBECONFIG):
        pytest.skip(f"the local cluster ({providers.LOCAL_KUBECONFIG}) does not answer: ./pipeline cluster start")
    return providers.Cluster("local", providers.LOCAL_KUBECONFIG, None, "local")


@pytest.fixture(scope="module")
def kubectl_argv(local_cluster) -> list[str]:
    return [tools.binary("kubectl"), *local_cluster.kube_args()]


@pytest.fixture(scope="module")
def lab_namespace(request, kubectl_argv):
    """The module's NAMESPACE (its baseline's stage-4 run creates it); deleted with all it holds."""
    name = request.module.NAMESPACE
    exists = commands.run([*kubectl_argv, "get", "namespace", name], check=False, timeout_s=30)
    assert not exists.ok, f"namespace {name} exists already; not ours to use"
    yield name
    commands.run([*kubectl_argv, "delete", "namespace", name, "--ignore-not-found", "--wait=true",
                  "--timeout=120s"], check=False, timeout_s=150)


@pytest.fixture(scope="module")
def frontend_url(kubectl_argv, lab_namespace):
    with traffic.service_proxy(kubectl_argv, lab_namespace, "todo-frontend", 3000) as url:
        yield url


@pytest.fixture(scope="module")
def state() -> dict:
    """What a module's tests share: the baseline run, the lab, each fault's run."""
    return {}
