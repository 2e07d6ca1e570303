"""The suite's lab for seeded faults on the real cluster: the REAL stage modules run in a
pytest subprocess against the app's shipcheck.yaml, in a namespace of the test's own.

- `run_stages(pytester, ["stages/test_04_deploy.py"], sets)`: copies the repository's
  conftest.py and the named stage modules into the pytester directory, adds an inner
  stages/conftest.py that reuses the images stage 1 built (PREBUILT_CONFTEST), and runs
  them with `--set` overrides (namespace, values files, quota ...), `-o addopts=`, the
  small profile and a JUnit file of its own; returns an `InnerRun` (JUnit cases, the
  summary.json sections, the HTML report, the captured output, the duration).
  `start_stages` does the same in the background (a `commands.Process` to kill, and a
  function that reads the run back): the kill-and-rerun trials.
- `image_sets()`: `--set components.X.image=PREFIX...` when SHIPCHECK_LAB_IMAGE_PREFIX is set
  (e.g. `wt-faults/`: images a worktree built under its own names); empty by default, so the
  inner runs use the images the pipeline's stage 1 built.
- `service_get`, `request_loop`: requests to a Service through the API server's service
  proxy (kube.service_request), which picks a ready endpoint per request as the Service does.
- `serving_problems`: why a release is not rolled out with every serving pod Ready.
- `lab_provider()`: the cluster the labs use, the local one unless SHIPCHECK_LAB_CLUSTER=kind
  (./pipeline test runs tests/test_deploy_faults.py on kind that way); `local_only`, the mark
  of the modules that rely on the local cluster's specifics (its registry trust, its
  NetworkPolicy controller, its containerd).
- fixtures `lab_cluster`, `kube_apis`, `kubectl_argv`, `lab_namespace` (the requesting
  module's NAMESPACE, which must not exist yet, deleted with all it holds at the end) and
  `state` (what a module's tests share: pytester is per test); tests/conftest.py loads this
  module as a plugin.

Used by tests/test_deploy_faults.py (stage 4), tests/test_health_faults.py (stage 5),
tests/test_release_safety.py and tests/test_canary_secrets.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import junit_report
import pytest
from junit_report import Case

from shipcheck import app_secrets, commands, config, deploy, helm as helm_mod, kube, plan as plan_mod, providers
from shipcheck import rollout, tools, web
from shipcheck.config import Component
from shipcheck.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = str(Path(sys.executable).parent)
INNER_TIMEOUT_S = 900  # one inner run; a deploy stuck past its own timeouts shows as a timeout here
IMAGE_PREFIX = os.environ.get("SHIPCHECK_LAB_IMAGE_PREFIX", "")
# Variables of the outer environment that would change what an inner run does: its
# configuration, profile and cluster are given on its command line, and its database is the
# in-cluster one unless a test sets DATABASE_URL itself.
INNER_UNSET = ("SHIPCHECK_CONFIG", "SHIPCHECK_VALUES_PROFILE", "SHIPCHECK_CLUSTER", "SHIPCHECK_KEEP_FAILED",
               "SHIPCHECK_PROVE_ZERO_DOWNTIME", "SHIPCHECK_CLEANUP", "DATABASE_URL", "OPENROUTER_API_KEY", "KUBECONFIG",
               "SHIPCHECK_REGISTRY", "SHIPCHECK_REGISTRY_CA", "REGISTRY_USERNAME", "REGISTRY_PASSWORD")

# The inner sessions test stages 4 and 5 alone: stage 1 already built the images, and rebuilding
# them would retag the shared images with a new revision label. This fixture (in the inner
# stages/conftest.py) reports what the engine holds as built.
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


def app_config(sets: tuple[str, ...] = ()) -> config.Config:
    """The app's shipcheck.yaml with the lab's image names and `sets` over it."""
    return config.load(REPO / "shipcheck.yaml", [*image_sets(), *sets])


def image_sets() -> tuple[str, ...]:
    if not IMAGE_PREFIX:
        return ()
    cfg = config.load(REPO / "shipcheck.yaml")
    return tuple(f"components.{c.name}.image={IMAGE_PREFIX}{c.image}" for c in cfg.components.values())


# --- inner runs ---------------------------------------------------------------------------------
@dataclass
class InnerRun:
    rc: int
    output: str  # stdout and stderr of the inner pytest, as it printed them
    cases: dict[str, Case]
    figures: dict  # summary.json sections
    html: str
    duration_s: float
    label: str = "stage 4"
    junit_xml: str = ""
    summary_json: str = ""

    def __repr__(self) -> str:
        return f"<InnerRun {self.label} rc={self.rc} {len(self.cases)} tests {self.duration_s:.0f} s>"

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

    def not_passed(self, ignore: tuple[str, ...] = ()) -> dict[str, str]:
        return {t: c.outcome for t, c in self.cases.items() if c.outcome != "passed" and t not in ignore}

    def deploys(self, release: str) -> list[dict]:
        return [row for row in self.figures.get("deploys", []) if row["release"] == release]

    def tail(self, lines: int = 60) -> str:
        return "--- inner output (tail) ---\n" + "\n".join(self.output.splitlines()[-lines:])


def stage_label(stage_files: list[str]) -> str:
    """'stages/test_04_deploy.py', 'stages/test_05_health.py' -> 'stages 4+5'."""
    numbers = [str(int(Path(f).name.split("_")[1])) for f in stage_files]
    return ("stage " if len(numbers) == 1 else "stages ") + "+".join(numbers)


class Inner:
    """One inner run of the real stage modules `stage_files` (paths under the repository) in
    a subprocess, on the app's shipcheck.yaml with the lab's image names and `sets` (--set)
    over it and `args` (e.g. -k) after; JUnit (`name`-junit.xml), HTML and summary.json are
    read back. `conftest_extra` is appended to the inner stages/conftest.py (harness code for
    this run only, never a gate); `env` adds variables (a canary secret)."""

    def __init__(self, pytester: pytest.Pytester, stage_files: list[str], sets: tuple[str, ...] | list[str], *,
                 profile: str = "small", args: tuple[str, ...] = (), name: str = "inner", conftest_extra: str = "",
                 env: dict[str, str] | None = None, prebuilt: bool = True):
        self.path = pytester.path
        self.stage_files, self.name, self.env = stage_files, name, dict(env or {})
        (self.path / "conftest.py").write_text((REPO / "conftest.py").read_text())
        (self.path / "stages").mkdir(exist_ok=True)
        for stage in stage_files:
            (self.path / stage).write_text((REPO / stage).read_text())
        (self.path / "stages" / "conftest.py").write_text((PREBUILT_CONFTEST if prebuilt else "") + conftest_extra)
        self.reports = self.path / "reports"
        self.reports.mkdir(exist_ok=True)  # the plugin writes summary.json there
        (self.reports / "summary.json").unlink(missing_ok=True)  # an earlier run's in the same directory
        # Pin the inner rootdir here: a path argument under the repository would make pytest pick
        # the repository's pyproject.toml and rootdir, and the inner run write the repository's reports/.
        (self.path / "pytest.ini").write_text("[pytest]\n")
        self.junit, self.report = self.path / f"{name}-junit.xml", self.path / f"{name}-report.html"
        self.junit.unlink(missing_ok=True)
        self.report.unlink(missing_ok=True)
        set_args = [arg for item in (*image_sets(), *sets) for arg in ("--set", item)]
        self.argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={self.path}",
                     "-c", str(self.path / "pytest.ini"), "-o", "addopts=", "-o", "junit_family=xunit2",
                     "-o", "junit_logging=system-out", f"--junitxml={self.junit}", f"--html={self.report}",
                     "--self-contained-html", f"--shipcheck-config={REPO / 'shipcheck.yaml'}", f"--cluster={lab_provider()}",
                     f"--values-profile={profile}", *set_args, *args, *stage_files]
        self.started = 0.0

    def start(self) -> commands.Process:
        """Start it in the background; stopped by the kernel if this process dies."""
        with pytest.MonkeyPatch.context() as mp:
            for var in INNER_UNSET:
                mp.delenv(var, raising=False)  # the in-cluster PostgreSQL, the local cluster, our options only
            mp.setenv("PYTHONPATH", str(REPO))
            mp.setenv("PATH", os.pathsep.join([str(tools.cache_bin_dir()), VENV_BIN, os.environ["PATH"]]))
            for key, value in self.env.items():
                mp.setenv(key, value)
            self.started = time.monotonic()
            return commands.start(self.argv, cwd=self.path, die_with_parent=True)

    def finish(self, process: commands.Process, timeout_s: float = INNER_TIMEOUT_S) -> InnerRun:
        """Wait for it (stopping it past `timeout_s`) and read back what it wrote."""
        if not process.wait(timeout_s):
            process.stop(f"the inner run took over {timeout_s:g} s")
        result = process.result()
        summary = self.reports / "summary.json"
        summary_text = summary.read_text() if summary.exists() else ""
        return InnerRun(result.rc, result.stdout + result.stderr,
                        junit_report.parse(self.junit) if self.junit.exists() else {},
                        json.loads(summary_text)["sections"] if summary_text else {},
                        self.report.read_text() if self.report.exists() else "", time.monotonic() - self.started,
                        stage_label(self.stage_files), self.junit.read_text() if self.junit.exists() else "",
                        summary_text)


def run_stages(pytester: pytest.Pytester, stage_files: list[str], sets: tuple[str, ...] | list[str],
               **kwargs) -> InnerRun:
    """An `Inner` run to its end (see Inner for the arguments)."""
    inner = Inner(pytester, stage_files, sets, **kwargs)
    return inner.finish(inner.start())


def show_at_end(pytestconfig: pytest.Config, lines: list[str]) -> None:
    """Write `lines` to the terminal past output capture (a module fixture's teardown: the
    fault tables under the session's results)."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)


def write_report(name: str, payload: dict) -> Path:
    """reports/NAME.json of the repository (the measured tables of the fault modules)."""
    out = REPO / "reports"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


# --- the cluster, as the lab sees it -------------------------------------------------------------
def service_get(apis: kube.KubeApis, namespace: str, service: str, port: int, path: str) -> int | str:
    """The status of one GET through the API server's service proxy, or what went wrong."""
    try:
        status, body = kube.service_request(apis, namespace, service, port, path, timeout_s=10)
    except Exception as exc:  # noqa: BLE001 -- the error is the answer: what a request saw
        return f"{type(exc).__name__}: {exc}"
    return status if 200 <= status < 300 else f"{status}: {body[:120].decode(errors='replace')}"


def request_loop(apis: kube.KubeApis, namespace: str, service: str, port: int, paths: list[str],
                 interval_s: float = 0.2, max_s: float = 600) -> web.RequestLoop:
    """A bounded loop of GETs of `paths` on a Service through the API server's service proxy."""
    def send(path: str) -> tuple[int | None, str]:
        status, body = kube.service_request(apis, namespace, service, port, path, timeout_s=10)
        return status, body[:120].decode(errors="replace")
    return web.RequestLoop(paths, interval_s=interval_s, max_s=max_s, send=send)


def serving_problems(apis: kube.KubeApis, namespace: str, release: str) -> list[str]:
    """Why `release` is not rolled out with every serving pod Running and Ready ([] when it is)."""
    state = kube.read_release(apis, namespace, release)
    problems = [summary for done, summary in map(rollout.workload_rolled_out,
                                                 [w for w in state.workloads if w["kind"] != "Job"]) if not done]
    for pod in rollout.serving_pods(state.pods):
        if not rollout.is_running_and_ready(pod):
            problems.append(f"pod {pod['metadata']['name']} not Running and Ready ({pod['status'].get('phase')})")
    if not rollout.serving_pods(state.pods):
        problems.append(f"{release}: no serving pod")
    return problems


@dataclass
class Planner:
    """Release plans for the lab namespace exactly as stage 4 makes them (plan.for_component:
    the same values files, injected values, image-ID and Secret-digest annotations), so that a
    plan of an unchanged component is "up to date" with what an inner stage-4 run deployed,
    and a plan of a changed one (dataclasses.replace(component, readiness_path="/nope"))
    is that change alone."""

    cfg: config.Config
    target: deploy.Target
    profile: str = "small"

    def __repr__(self) -> str:
        return f"<Planner {self.cfg.namespace} ({self.profile})>"

    def plan(self, component: Component, image_of: Component | None = None) -> plan_mod.ReleasePlan:
        """`component`'s plan; its image-ID annotation is that of `image_of`'s image (default:
        its own), so a seeded tag that was never built still plans."""
        import docker

        ref = self.cfg.image_ref(image_of or component)
        image_id = docker.from_env(timeout=60).images.get(ref).id
        environ = {k: v for k, v in os.environ.items() if k not in INNER_UNSET}  # as the inner runs see it
        secrets = app_secrets.resolve(self.cfg, environ, app_secrets.read_from_cluster(self.target.apis.core,
                                                                                          self.cfg.namespace),
                                      app_secrets.cluster_host(self.cfg))
        clients = tuple(other.release for other in self.cfg.components.values() if component.name in other.connects_to)
        return plan_mod.for_component(self.target.helm, component, namespace=self.cfg.namespace, profile=self.profile,
                                      kube_version=kube.server_version(self.target.apis), image_id=image_id,
                                      secrets=secrets, clients=clients)


def deploy_target(cluster: providers.Cluster, apis: kube.KubeApis, kubectl: list[str], namespace: str, *,
                  timeout_s: float, readiness_grace_s: float) -> deploy.Target:
    """Where the lab deploys directly: the lab namespace, through the one Helm wrapper."""
    helm = helm_mod.Helm(tools.binary("helm"), cluster.helm_args(), namespace)
    return deploy.Target(helm, apis, kubectl, timeout_s, readiness_grace_s=readiness_grace_s)


def problems_left(what: str, probe: Callable[[], list[str]], timeout_s: float = 30.0) -> list[str]:
    """probe() once it returns no problems, else what it still says after `timeout_s`: a
    NetworkPolicy controller admits a new pod a moment after it starts (about 2 s here), so
    "serving" is judged after that moment, not at the first look."""
    waited = wait_until(what, probe, done=lambda problems: not problems, timeout_s=timeout_s, interval_s=1.0)
    return waited.state if isinstance(waited.state, list) else [str(waited.state)]


def settle(what: str, probe: Callable, done: Callable, timeout_s: float = 120.0, describe=repr):
    """wait_until that fails the test, naming what was waited for and what was seen last."""
    __tracebackhide__ = True
    waited = wait_until(what, probe, done=done, timeout_s=timeout_s, interval_s=1.0,
                        transient=lambda exc: kube.is_transient(exc) or isinstance(exc, (ConnectionError, OSError)),
                        describe=describe)
    assert waited, f"{what}: {waited.reason}; last seen: {describe(waited.state)}"
    return waited.state


# --- fixtures shared by the fault modules (this module is a plugin of tests/conftest.py) ----------
def lab_provider() -> str:
    return os.environ.get("SHIPCHECK_LAB_CLUSTER", "local")


local_only = pytest.mark.skipif(lab_provider() != "local", reason="relies on the local cluster's specifics "
                                f"(SHIPCHECK_LAB_CLUSTER={lab_provider()})")


@pytest.fixture(scope="module")
def lab_cluster() -> providers.Cluster:
    """The cluster the lab works on, never started here: the local one, or kind's `shipcheck`."""
    if lab_provider() == "kind":
        cluster = providers.Cluster("kind", providers.kind_kubeconfig(), f"kind-{providers.CLUSTER_NAME}", "kind")
        start = "./pipeline kind create"
    elif lab_provider() == "local":
        cluster, start = providers.Cluster("local", providers.LOCAL_KUBECONFIG, None, "local"), "./pipeline cluster start"
    else:
        raise pytest.UsageError(f"SHIPCHECK_LAB_CLUSTER={lab_provider()!r}: use local or kind")
    if not providers.context_reachable(cluster.kubeconfig, cluster.context):
        pytest.skip(f"the {cluster.provider} cluster ({cluster.kubeconfig}) does not answer: {start}")
    return cluster


@pytest.fixture(scope="module")
def kube_apis(lab_cluster) -> kube.KubeApis:
    return kube.KubeApis.connect(lab_cluster.kubeconfig, lab_cluster.context)


@pytest.fixture(scope="module")
def kubectl_argv(lab_cluster) -> list[str]:
    return [tools.binary("kubectl"), *lab_cluster.kube_args()]


@pytest.fixture(scope="module")
def lab_namespace(request, kube_apis):
    """The module's NAMESPACE (its baseline's stage-4 run creates it); deleted with all it holds."""
    name = request.module.NAMESPACE
    exists = [ns.metadata.name for ns in kube_apis.core.list_namespace().items if ns.metadata.name == name]
    assert not exists, f"namespace {name} exists already; not ours to use"
    yield name
    delete_namespace(kube_apis, name)


def delete_namespace(apis: kube.KubeApis, name: str, timeout_s: float = 180) -> None:
    """Delete a namespace of ours and wait until it is gone (its releases' records with it)."""
    try:
        apis.core.delete_namespace(name)
    except Exception as exc:
        if kube.is_not_found(exc):
            return
        raise
    wait_until(f"namespace {name} to go", lambda: [n for n in apis.core.list_namespace().items
                                                  if n.metadata.name == name],
               done=lambda left: not left, timeout_s=timeout_s, interval_s=2.0, transient=kube.is_transient,
               describe=lambda left: f"{len(left)} namespace(s) terminating")


@pytest.fixture(scope="module")
def state() -> dict:
    """What a module's tests share: the baseline run, the lab, each fault's run."""
    return {}
