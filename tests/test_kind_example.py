"""The example CI job for users (examples/github-actions-kind.yml), run for real: its `run:`
steps (everything but the checkout and setup actions, which GitHub provides) against the
kind cluster `shipcheck` that `./pipeline kind create` made, with the job's environment.

Skipped unless that cluster answers: `./pipeline test` creates it after the local cluster is
stopped (one cluster at a time) when the kind pieces are built, runs this module, and
deletes it. By hand: `./pipeline kind create && pytest tests/test_kind_example.py -m kind`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import junit_report
import pytest
import yaml

from shipcheck import commands, progress, providers, tools

pytestmark = [pytest.mark.kind, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "examples" / "github-actions-kind.yml"


def run_steps() -> list[dict]:
    """The job's steps that run commands (not `uses:` actions)."""
    return [step for step in yaml.safe_load(JOB.read_text())["jobs"]["pipeline"]["steps"] if "run" in step]


@pytest.fixture(scope="module")
def kind_kubeconfig() -> str:
    path = providers.kind_kubeconfig()
    if not Path(path).exists():
        pytest.skip("no kind cluster: `./pipeline kind create` makes one (./pipeline test does when its pieces are built)")
    answered = commands.run([tools.binary("kubectl"), "--kubeconfig", path, "get", "--raw", "/readyz"],
                            check=False, timeout_s=30)
    if not answered.ok:
        pytest.skip(f"the kind cluster does not answer ({answered.tail(2)}): `./pipeline kind create`")
    return path


def test_the_example_job_runs_green_on_the_kind_cluster(kind_kubeconfig, tmp_path, monkeypatch):
    for variable in ("SHIPCHECK_CONFIG", "SHIPCHECK_CLUSTER", "SHIPCHECK_VALUES_PROFILE", "SHIPCHECK_REGISTRY",
                     "DATABASE_URL", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(variable, raising=False)  # the job's own environment only
    env = {"KUBECONFIG": kind_kubeconfig,
           "PATH": os.pathsep.join([str(tools.cache_bin_dir()), str(Path(sys.executable).parent), os.environ["PATH"]])}
    junit = tmp_path / "kind-junit.xml"
    for step in run_steps():
        # The job's secrets are empty here: without DATABASE_URL the in-cluster PostgreSQL is deployed.
        step_env = {**env, **{k: v for k, v in (step.get("env") or {}).items() if "${{" not in str(v)}}
        script = step["run"]
        if script.startswith("pytest stages/"):  # where the reports go, so they are not this run's own
            script += f" --junitxml={junit} --html={REPO / 'reports' / 'kind-example.html'} --self-contained-html"
        progress.say(f"example job step {step['name']!r}: {script}")
        result = commands.run(["bash", "-ec", script], cwd=REPO, env=step_env, check=False, timeout_s=1800,
                              on_line=lambda line: line.startswith("[shipcheck") and progress.say(f"(kind) {line}"))
        assert result.ok, (f"step {step['name']!r} of {JOB.name} failed on the kind cluster (exit {result.rc}) after "
                           f"{result.duration_s:.0f} s:\n{result.tail(60)}")
    cases = junit_report.parse(junit)
    bad = {name: case.outcome for name, case in cases.items() if case.outcome not in ("passed", "skipped")}
    assert cases and not bad, f"the pipeline on kind: {bad}"
