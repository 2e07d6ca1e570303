"""pytest plugin: configuration, stage ordering, evidence for the reports.

- Options live in the "shipcheck" group; each has a default and an environment fallback.
- The configuration file is loaded and validated in pytest_configure: a bad field stops
  the run before anything is built.
- Stages are the modules stages/test_NN_*.py, ordered with pytest-order. When a stage
  fails, every later stage is skipped with the reason.
- Fixtures register diagnosers while they hold live resources; when a test fails, each
  one's evidence (logs, events, describe output) is attached to that test's report
  (HTML log, JUnit system-out).
- Figures and the reports (reports/report.html, summary.json) are shipcheck.report's; live
  progress lines are shipcheck.progress's. Both are plugins registered here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from . import commands, validate
from .config import Config

pytest_plugins = ["shipcheck.report", "shipcheck.progress"]

STAGE_NAMES = {1: "build", 2: "containers", 3: "charts", 4: "deploy", 5: "health", 6: "cleanup"}
CONFIG_KEY = pytest.StashKey[Config]()
_failed_stages: dict[int, str] = {}
_diagnosers: dict[str, Callable[[], list[tuple[str, str]]]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shipcheck", "deployment pipeline (shipcheck)")
    group.addoption("--shipcheck-config", default=os.environ.get("SHIPCHECK_CONFIG"),
                    help="pipeline configuration file (env SHIPCHECK_CONFIG; default: shipcheck.yaml in the rootdir)")
    group.addoption("--set", dest="shipcheck_set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a configuration field, e.g. --set components.todo-frontend.size_budget_mb=180")
    group.addoption("--base-images", choices=("auto", "official", "stand-in"),
                    default=os.environ.get("SHIPCHECK_BASE_IMAGES", "auto"),
                    help="official base images, local stand-ins (setup/base-images.sh), or auto: official when "
                         "present in the engine (env SHIPCHECK_BASE_IMAGES; default auto)")
    group.addoption("--ca-bundle", default=os.environ.get("SHIPCHECK_CA_BUNDLE", "auto"),
                    help="CA bundle passed to builds as a BuildKit secret for pip/npm behind TLS-intercepting "
                         "proxies: a path, 'auto' (the host bundle when present) or 'none' (env SHIPCHECK_CA_BUNDLE)")
    group.addoption("--sequential-builds", action="store_true", default=False,
                    help="build images one after another instead of in parallel")
    group.addoption("--no-cache", dest="shipcheck_no_cache", action="store_true", default=False,
                    help="build without the BuildKit cache (cold build)")
    group.addoption("--cluster", default=os.environ.get("SHIPCHECK_CLUSTER"),
                    help="cluster provider: auto, existing, minikube, kind, k3d, local (env SHIPCHECK_CLUSTER; "
                         "default: cluster_provider in the configuration)")
    group.addoption("--values-profile", choices=("auto", "defaults", "small"),
                    default=os.environ.get("SHIPCHECK_VALUES_PROFILE", "auto"),
                    help="chart values profile: defaults, small (values-small.yaml, for a single 2-core node), or "
                         "auto: the defaults when they fit the cluster's nodes, else small (env SHIPCHECK_VALUES_PROFILE)")
    group.addoption("--prove-zero-downtime", action="store_true",
                    default=os.environ.get("SHIPCHECK_PROVE_ZERO_DOWNTIME") == "1",
                    help="roll every app to a new tag and back under a request loop even when a proof is recorded "
                         "for this exact render (env SHIPCHECK_PROVE_ZERO_DOWNTIME=1)")
    group.addoption("--keep-failed", action="store_true", default=os.environ.get("SHIPCHECK_KEEP_FAILED") == "1",
                    help="when stage 5 fails, leave the releases this run changed as they are for debugging instead "
                         "of rolling them back (env SHIPCHECK_KEEP_FAILED=1)")
    # The registry path (issue 14): overrides of `registry`/`registry_ca`, validated with the file.
    group.addoption("--registry", default=os.environ.get("SHIPCHECK_REGISTRY"), metavar="HOST[:PORT]/PATH",
                    help="push images there in stage 1 and deploy them by digest in stage 4 (credentials: "
                         "REGISTRY_USERNAME/REGISTRY_PASSWORD or your Docker login); overrides `registry` in the "
                         "configuration (env SHIPCHECK_REGISTRY; '' = load images into the nodes)")
    group.addoption("--registry-ca", default=os.environ.get("SHIPCHECK_REGISTRY_CA"), metavar="PATH",
                    help="the registry's CA certificate, when the host does not trust its TLS certificate; overrides "
                         "`registry_ca` (env SHIPCHECK_REGISTRY_CA)")
    group.addoption("--cleanup", action="store_true", default=os.environ.get("SHIPCHECK_CLEANUP") == "1",
                    help="run stage 6: uninstall the releases and delete the namespace (env SHIPCHECK_CLEANUP=1)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "order: stage order (pytest-order)")
    path = Path(config.getoption("shipcheck_config") or Path(config.rootpath) / "shipcheck.yaml")
    # Bad configuration, environment or options stop the run here, before anything is built.
    cfg, problems = validate.problems(path, config.getoption("shipcheck_set") + registry_overrides(config),
                                       config.getoption("cluster"))
    ca = config.getoption("ca_bundle")
    if ca not in ("auto", "none") and not Path(ca).is_file():
        problems.append(f"--ca-bundle {ca}: no such file (give a CA bundle's path, 'auto' or 'none'; env "
                        "SHIPCHECK_CA_BUNDLE)")
    if problems or cfg is None:
        raise pytest.UsageError(f"shipcheck configuration {path}:\n" + "\n".join(problems))
    config.stash[CONFIG_KEY] = cfg


def registry_overrides(config: pytest.Config) -> list[str]:
    """--registry/--registry-ca as `--set` overrides (validate.registry_overrides)."""
    return validate.registry_overrides(config.getoption("registry"), config.getoption("registry_ca"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    cfg = config.stash[CONFIG_KEY]
    parts = ", ".join(f"{c.name} ({c.role})" for c in cfg.components.values())
    return [f"shipcheck: {cfg.app} {cfg.version}; components: {parts}; namespace {cfg.namespace}"]


# --- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cfg(pytestconfig: pytest.Config) -> Config:
    """The validated pipeline configuration."""
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def register_diagnoser() -> Callable:
    """register_diagnoser(name, fn): while registered, fn() -> [(title, text)] is attached
    to the report of any failing test. Returns a function that unregisters it."""
    def register(name: str, fn: Callable[[], list[tuple[str, str]]]) -> Callable[[], None]:
        _diagnosers[name] = fn
        return lambda: _diagnosers.pop(name, None)
    return register


# --- stage ordering and skipping --------------------------------------------------------
def stage_failed(stage: int) -> bool:
    return stage in _failed_stages


def stage_of(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("order")
    if marker is None or "stages" not in Path(str(item.fspath)).parts:
        return None
    return int(marker.args[0] if marker.args else marker.kwargs.get("index"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    stage = stage_of(item)
    if stage is None:
        return
    if stage == 6 and not item.config.getoption("cleanup"):
        pytest.skip("cleanup is opt-in: pass --cleanup (or SHIPCHECK_CLEANUP=1) to uninstall and delete the namespace")
    earlier = sorted(s for s in _failed_stages if s < stage)
    if earlier:
        first = earlier[0]
        pytest.skip(f"stage {first} ({STAGE_NAMES.get(first, '?')}) failed at {_failed_stages[first]}; "
                    f"fix it first (later stages depend on it)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        stage = stage_of(item)
        if stage is not None:
            _failed_stages.setdefault(stage, item.nodeid)
        if report.when in ("call", "setup"):
            _attach_diagnostics(item, report)
    report.sections = [(title, commands.scrub(text)) for title, text in report.sections]
    if report.longrepr is not None:  # an assertion message may quote a secret too
        clean = commands.scrub(report.longreprtext)
        if clean != report.longreprtext:
            report.longrepr = clean
    return report


def _attach_diagnostics(item: pytest.Item, report: pytest.TestReport) -> None:
    for name, diagnose in list(_diagnosers.items()):
        try:
            evidence = diagnose()
        except Exception as exc:  # diagnostics never raise
            evidence = [(name, f"(could not collect diagnostics: {type(exc).__name__}: {exc})")]
        for title, text in evidence:
            text = commands.scrub(text)
            # On this report for the HTML; on the item for the teardown report, whose
            # "Captured stdout" sections junitxml writes to <system-out>.
            report.sections.append((f"Captured stdout diagnostics: {title}", text))
            item.add_report_section(report.when, f"stdout diagnostics: {title}", text)
