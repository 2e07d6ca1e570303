"""Shared by the suite's own tests: pytester (for running real stages against seeded
charts) and the repository's location."""

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester", "pipeline_lab"]  # pipeline_lab: the fault modules' cluster fixtures

REPO = Path(__file__).resolve().parents[1]
# pytester gives inner runs their own HOME; keep them on the set-up's tool cache (helm).
os.environ.setdefault("SHIPCHECK_CACHE", str(Path.home() / ".cache" / "shipcheck"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # The plugin loads a configuration at start; the suite's own tests must not depend on the
    # app's shipcheck.yaml (a broken one would stop them all). An explicit --shipcheck-config wins.
    if not config.getoption("shipcheck_config", None):
        config.option.shipcheck_config = str(REPO / "tests" / "seeded" / "unit.shipcheck.yaml")
