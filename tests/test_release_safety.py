"""Nothing breaks itself (issue 11), on the real cluster: a run killed at any moment of an
upgrade is recovered by the next unattended run, a release left `failed` goes back to the
last revision that served, and a failure found in stage 5 puts back what the run changed.

A namespace of our own (shipcheck-faults-XXXXXX, deleted at the end) gets a good baseline from
the REAL stage 4 (an inner pytest run, small profile, one replica per app). Then:

(c) A release whose last revision is `failed` (an upgrade whose pre-upgrade hook timed out)
    above a superseded good revision and the deployed one: deploy.deploy rolls it back to
    the deployed revision (neither the failed one nor the older superseded one), and that
    revision serves.
(d) A frontend pointed at a wrong backend URL (a values file): stage 4 is green (its pods are
    Ready, its Service has endpoints), only stage 5's declared checks catch it. Stage 5 then
    rolls the frontend back to its previous revision and shows it serving, and says so in the
    report; with --keep-failed the broken revision is left live, and the report says that.
(a) Kill-and-rerun trials: the real stage 4 upgrading the backend is SIGKILLed (pytest alone,
    helm alone, both) at a moment of the upgrade (its pre-upgrade hook running; its new pod
    starting; helm just exited with the rollout still running), then stage 4 runs once more,
    unattended, with the same command: it must be green with the new or the previous release
    serving, and no helm left running. Each trial's times go to reports/release-safety.json.
    helm runs without --wait (the suite watches the rollout itself), so it has exited once
    the rollout runs: "helm alone" and "both" at the two later moments would kill no helm, and
    are listed as such rather than run.

(b) Duplicate release names are configuration: refused before any side effect by
    `python -m shipcheck.validate` and the plugin (tests/test_config_malformed.py, row
    "duplicate releases").

Run: .venv/bin/python -m pytest tests/test_release_safety.py -o addopts= -p no:cacheprovider
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pipeline_lab
import pytest
from pipeline_lab import Inner, InnerRun

from shipcheck import config, deploy, helm as helm_mod, kube, plan as plan_mod, rollout, web
from shipcheck.waiting import wait_until

pytestmark = pytest.mark.cluster

SEEDED = Path(__file__).resolve().parent / "seeded"
NAMESPACE = f"shipcheck-faults-{secrets.token_hex(3)}"
POSTGRES, BACKEND, FRONTEND = "todo-postgres", "todo-backend", "todo-frontend"
STAGE4, STAGE5 = "stages/test_04_deploy.py", "stages/test_05_health.py"
TASKS_PATH = "/api/shipcheck-release-safety/tasks"  # a backend path, through the frontend's /api proxy
ONE_REPLICA = SEEDED / "deploy" / "one-replica.yaml"
HOOK_S = 12  # the trials' pre-upgrade hook sleeps this long before migrating: a window to kill in
MOMENT_TIMEOUT_S = 240.0  # for a trial's moment to come
BASE_SETS = (f"namespace={NAMESPACE}", "timeouts_s.deploy=120", "timeouts_s.readiness_grace=15",
             f"components.{BACKEND}.values_files=[{ONE_REPLICA}]",
             f"components.{FRONTEND}.values_files=[{ONE_REPLICA}]")
WRONG_API = f"components.{FRONTEND}.values_files=[{ONE_REPLICA}, {SEEDED / 'health' / 'api-base-url-localhost.yaml'}]"


# --- the lab -------------------------------------------------------------------------------------------
@dataclass
class Lab:
    planner: pipeline_lab.Planner

    def __repr__(self) -> str:
        return f"<Lab namespace {NAMESPACE}>"

    @property
    def target(self) -> deploy.Target:
        return self.planner.target

    @property
    def apis(self) -> kube.KubeApis:
        return self.target.apis

    def component(self, name: str, **changes) -> config.Component:
        return dataclasses.replace(self.planner.cfg.components[name], **changes)

    def plan(self, component: config.Component) -> plan_mod.ReleasePlan:
        return self.planner.plan(component)

    def history(self, release: str = BACKEND) -> list[dict]:
        return self.target.helm.history(release)

    def tasks(self) -> int | str:
        """GET of a backend path through the frontend (the Service, through the API server)."""
        return pipeline_lab.service_get(self.apis, NAMESPACE, FRONTEND, 3000, TASKS_PATH)

    def loop(self) -> web.RequestLoop:
        return pipeline_lab.request_loop(self.apis, NAMESPACE, FRONTEND, 3000, ["/api/health", TASKS_PATH], max_s=900)

    def serving(self, release: str = BACKEND) -> list[str]:
        problems = pipeline_lab.serving_problems(self.apis, NAMESPACE, release)
        status = self.tasks()
        return problems + ([] if status == 200 else [f"GET {TASKS_PATH} through the frontend: {status}"])

    def settled(self, release: str = BACKEND) -> list[str]:
        return pipeline_lab.problems_left(f"{release} serving", lambda: self.serving(release))


def slow_hook(component: config.Component) -> tuple[str, ...]:
    """Its migration command, HOOK_S seconds later."""
    return ("python", "-c", f"import subprocess, sys, time; time.sleep({HOOK_S}); "
                            f"sys.exit(subprocess.call({list(component.migrate_command)!r}))")


def run_stage4(pytester, *sets: str, name: str = "inner") -> InnerRun:
    return pipeline_lab.run_stages(pytester, [STAGE4], (*BASE_SETS, *sets), name=name)


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def table(pytestconfig):
    """What each part measured: reports/release-safety.json, and a table at the end."""
    found: dict = {"namespace": NAMESPACE, "trials": [], "not run": [], "recovery": [], "stage 5 failure": []}
    yield found
    if not any(found[k] for k in ("trials", "recovery", "stage 5 failure")):
        return
    path = pipeline_lab.write_report("release-safety", found)
    lines = ["", f"kill-and-rerun trials in {NAMESPACE} ({path.name}):",
             f"  {'killed':<8} {'moment':<30} {'left':<17} {'killed run':<11} {'rerun':>7}  {'serving':<8} "
             f"{'requests':>8} {'failed':>6}  recovery by the rerun"]
    for t in found["trials"]:
        lines.append(f"  {t['killed']:<8} {t['moment']:<30} {t['left']:<17} {t['killed_run']:<11} "
                     f"{t['rerun_s']:>5.1f} s  {t['serving']:<8} {t['requests']:>8} {t['failed_requests']:>6}  "
                     f"{t['recovery'] or '-'}")
    for t in found["not run"]:
        lines.append(f"  {t['killed']:<8} {t['moment']:<30} not run: {t['why']}")
    pipeline_lab.show_at_end(pytestconfig, lines)


@pytest.fixture
def baseline(pytester, state, lab_namespace) -> InnerRun:
    """The real stage 4, green, in our namespace: the good releases."""
    if "baseline" not in state:
        state["baseline"] = run_stage4(pytester, name="baseline")
    inner = state["baseline"]
    if not inner.cases or inner.not_passed():
        pytest.fail(f"the baseline stage-4 run is not green (rc {inner.rc}): {inner.not_passed()}\n" + inner.tail(),
                    pytrace=False)
    return inner


@pytest.fixture
def lab(baseline, state, lab_cluster, kube_apis, kubectl_argv) -> Lab:
    if "lab" not in state:
        target = pipeline_lab.deploy_target(lab_cluster, kube_apis, kubectl_argv, NAMESPACE, timeout_s=120,
                                            readiness_grace_s=15)
        state["lab"] = Lab(pipeline_lab.Planner(pipeline_lab.app_config(BASE_SETS), target))
    return state["lab"]


# --- (c) a failed last revision goes back to the last deployed one ------------------------------------
def fail_an_upgrade(lab: Lab, component: config.Component) -> dict:
    """helm upgrade of `component` with a pre-upgrade hook slower than helm's timeout, as a run
    that died after helm marked the release failed: the last revision is `failed`."""
    bad = lab.plan(dataclasses.replace(component, migrate_command=slow_hook(component)))
    process = lab.target.helm.start_upgrade(BACKEND, bad.chart, bad.values_files, bad.values, timeout_s=5)
    process.wait(90)
    result = process.result()
    kube.delete_release_jobs(lab.apis, NAMESPACE, BACKEND)  # the hook Job helm gave up on
    last = lab.history()[-1]
    assert not result.ok and last["status"] == "failed", (result.tail(5), last)
    return last


def test_a_failed_last_revision_is_recovered_to_the_last_deployed_one(lab, table):
    good = lab.plan(lab.component(BACKEND))  # revision 1: what the baseline deployed
    newer = lab.plan(lab.component(BACKEND, readiness_path="/health"))  # serves too; its pods differ
    upgraded = deploy.deploy(lab.target, newer)
    assert upgraded.ok and not upgraded.skipped, upgraded
    failed = fail_an_upgrade(lab, lab.component(BACKEND, readiness_path="/health"))
    history = lab.history()
    assert [h["status"] for h in history] == ["superseded", "deployed", "failed"], history
    assert helm_mod.recovery_action(history) == ("rollback", upgraded.revision)

    start = time.monotonic()
    outcome = deploy.deploy(lab.target, newer)  # the next run, with the configuration that last served
    table["recovery"].append({"history": [h["status"] for h in history], "recovery": outcome.recovery,
                              "seconds": round(time.monotonic() - start, 1)})
    assert outcome.ok and outcome.skipped, outcome
    assert outcome.recovery == (f"recovered from failed at revision {failed['revision']} by rollback to revision "
                                f"{upgraded.revision}"), outcome.recovery
    # What serves is the deployed revision: not the failed one, not the older superseded one.
    assert deploy.up_to_date(lab.target, newer)[0] and not deploy.up_to_date(lab.target, good)[0]
    assert not (problems := lab.settled()), problems

    # Again on top: the failed revision the rollback left is `superseded` now, yet never served.
    failed_again = fail_an_upgrade(lab, lab.component(BACKEND, readiness_path="/health"))
    history = lab.history()
    left = next(h for h in history if h["revision"] == failed["revision"])
    assert left["status"] in ("superseded", "failed") and not helm_mod.served(left), left
    last_good = helm_mod.last_deployed_revision(history[:-1])
    assert last_good == history[-2]["revision"] and last_good != failed["revision"], history
    outcome = deploy.deploy(lab.target, good)  # and a run that goes on to another change
    table["recovery"].append({"history": [h["status"] for h in history], "recovery": outcome.recovery})
    assert outcome.ok and not outcome.skipped, outcome
    assert outcome.recovery == (f"recovered from failed at revision {failed_again['revision']} by rollback to "
                                f"revision {last_good}"), outcome.recovery
    assert deploy.up_to_date(lab.target, good)[0] and not (problems := lab.settled()), problems


# --- (d) a failure found in stage 5 rolls back what the run changed ---------------------------------
@dataclass
class Stage5Failure:
    inner: InnerRun
    previous: int  # the frontend's revision before the run
    good: plan_mod.ReleasePlan

    def action(self) -> str:
        rows = self.inner.figures.get("after the failed health stage", [])
        assert [r["release"] for r in rows] == [FRONTEND], rows
        return rows[0]["action"]


def stage5_failure(pytester, lab: Lab, state: dict, table: dict, keep: bool) -> Stage5Failure:
    key = "keep-failed" if keep else "rollback"
    if key not in state:
        good = lab.plan(lab.component(FRONTEND))
        assert deploy.up_to_date(lab.target, good)[0] and not lab.settled(FRONTEND)
        previous = int(lab.history(FRONTEND)[-1]["revision"])
        inner = pipeline_lab.run_stages(
            pytester, [STAGE4, STAGE5], (*BASE_SETS, WRONG_API), name=key,
            args=("-k", "test_release_deployed or test_rolled_out or test_services_have_ready_endpoints or "
                        "test_declared_checks_pass_through_the_cluster", *(["--keep-failed"] if keep else [])))
        state[key] = found = Stage5Failure(inner, previous, good)
        table["stage 5 failure"].append({"keep_failed": keep, "seconds": round(inner.duration_s, 1),
                                         "action": found.action(), "tasks_after": lab.tasks()})
    return state[key]


def test_a_stage5_failure_rolls_back_what_the_run_changed_and_shows_it_serving(pytester, lab, state, table):
    failure = stage5_failure(pytester, lab, state, table, keep=False)
    inner = failure.inner
    for gate in ("test_release_deployed", "test_rolled_out", "test_services_have_ready_endpoints"):
        assert inner.outcome(f"{gate}[{FRONTEND}]") == "passed", inner.cases.get(f"{gate}[{FRONTEND}]")
    message = inner.failure("test_declared_checks_pass_through_the_cluster").text
    assert "answered 502" in message, message[:1000]
    assert failure.action() == f"rolled back to revision {failure.previous}: rolled out and serving"
    history = lab.history(FRONTEND)
    assert history[-1]["status"] == "deployed" and history[-1]["description"] == f"Rollback to {failure.previous}"
    assert deploy.up_to_date(lab.target, failure.good)[0]
    assert not (problems := lab.settled(FRONTEND)), problems
    # The run said what it did, where a reviewer reads it.
    assert (f"stage 5 failed: release {FRONTEND} rolled back to revision {failure.previous}: rolled out and serving"
            in inner.output)
    assert "after the failed health stage" in inner.html and f"rolled back to revision {failure.previous}" in inner.html
    assert "after the failed health stage" in inner.summary_json


def test_keep_failed_leaves_the_failed_release_live_and_says_so(pytester, lab, state, table):
    stage5_failure(pytester, lab, state, table, keep=False)  # first: it leaves the good release
    failure = stage5_failure(pytester, lab, state, table, keep=True)
    history = lab.history(FRONTEND)
    left = int(history[-1]["revision"])
    assert failure.action() == f"left at revision {left} for debugging (--keep-failed)"
    assert history[-1]["status"] == "deployed" and not deploy.up_to_date(lab.target, failure.good)[0]
    assert str(lab.tasks()).startswith("502"), lab.tasks()  # the broken revision is what serves
    assert f"left at revision {left} for debugging (--keep-failed)" in failure.inner.html
    # Put the good frontend back for what follows.
    restored = deploy.deploy(lab.target, failure.good)
    assert restored.ok and not restored.skipped and not (problems := lab.settled(FRONTEND)), (restored, problems)


# --- (a) kill-and-rerun trials --------------------------------------------------------------------
MOMENTS = {
    "hook": "during the pre-upgrade hook",
    "rollout": "during the rollout",
    "helm exited": "just after helm exits",
}
TRIALS = [("pytest", "hook"), ("helm", "hook"), ("both", "hook"), ("pytest", "rollout"), ("pytest", "helm exited")]
NOT_RUN = [(killed, moment) for killed in ("helm", "both") for moment in ("rollout", "helm exited")]


def helm_pids() -> list[int]:
    return [pid for pid, _ in deploy.stray_helm(NAMESPACE, BACKEND)]


class Moment:
    """Watches an upgrade of the backend for one moment; `reached()` is polled."""

    def __init__(self, lab: Lab, moment: str):
        self.lab, self.moment = lab, moment
        self.since = time.time()
        self.helm_seen = False
        self.hook_seen_at: float | None = None

    def reached(self) -> bool:
        if self.moment == "hook":
            history = self.lab.history()
            jobs = self.lab.apis.batch.list_namespaced_job(NAMESPACE, label_selector=kube.selector(BACKEND)).items
            running = (bool(history) and history[-1]["status"] == "pending-upgrade"
                       and any((j.status.active or 0) > 0 for j in jobs))
            if running and self.hook_seen_at is None:
                self.hook_seen_at = time.monotonic()
            return running and time.monotonic() - self.hook_seen_at >= 2  # well inside it
        if self.moment == "helm exited":
            alive = bool(helm_pids())
            self.helm_seen |= alive
            return self.helm_seen and not alive
        state = kube.read_release(self.lab.apis, NAMESPACE, BACKEND)  # "rollout": a new pod, not Ready yet
        return any((kube.creation_s(p) or 0) >= self.since - 1 and not rollout.is_running_and_ready(p)
                   for p in rollout.serving_pods(state.pods))


def kill(killed: str, inner_pid: int) -> list[str]:
    """SIGKILL the targets (helm first: a pytest killed first would make the kernel send its
    helm SIGTERM); returns what was killed."""
    done = []
    if killed in ("helm", "both"):
        for pid in helm_pids():
            os.kill(pid, signal.SIGKILL)
            done.append(f"helm {pid}")
    if killed in ("pytest", "both"):
        os.kill(inner_pid, signal.SIGKILL)
        done.append(f"pytest {inner_pid}")
    return done


@pytest.mark.parametrize("killed, moment", TRIALS, ids=[f"{k} {m}" for k, m in TRIALS])
def test_a_killed_upgrade_is_recovered_by_one_unattended_rerun(pytester, lab, state, table, killed, moment):
    number = state["trials"] = state.get("trials", 0) + 1
    before = lab.plan(lab.component(BACKEND)) if "trial plan" not in state else state["trial plan"]
    # Each trial changes the backend's pods (its readiness path flips between two that serve)
    # and slows its pre-upgrade hook: the same --set for the killed run and the rerun.
    component = lab.component(BACKEND, readiness_path="/health" if number % 2 else "/ready")
    component = dataclasses.replace(component, migrate_command=slow_hook(component))
    sets = (f"components.{BACKEND}.readiness_path={component.readiness_path}",
            f"components.{BACKEND}.migrate_command={json.dumps(list(component.migrate_command))}")
    after = lab.plan(component)
    assert not deploy.up_to_date(lab.target, after)[0]
    # A NetworkPolicy controller admits pods a moment after they start: settle, then begin.
    pipeline_lab.settle("the app serving before the trial", lab.serving, done=lambda problems: not problems,
                        timeout_s=60, describe="; ".join)

    with lab.loop() as loop:
        inner = Inner(pytester, [STAGE4], (*BASE_SETS, *sets), name=f"trial-{number}")
        process = inner.start()
        watch = Moment(lab, moment)
        reached = wait_until(f"{MOMENTS[moment]} of the backend's upgrade", watch.reached,
                                          done=bool, timeout_s=MOMENT_TIMEOUT_S, interval_s=0.1,
                                          fatal=lambda _: None if process.running else "the run ended first")
        if not reached:
            run = inner.finish(process)
            pytest.fail(f"trial {killed} {moment}: {reached.reason}\n{run.tail()}")
        at_s = time.monotonic() - inner.started
        what = kill(killed, process.proc.pid)
        killed_run = inner.finish(process, timeout_s=300)  # helm alone: the run goes on and reacts
        time.sleep(3)
        left_status = lab.history()[-1]["status"]
        helm_left = helm_pids()
        start = time.monotonic()
        rerun = run_stage4(pytester, *sets, name=f"trial-{number}-rerun")
        rerun_s = time.monotonic() - start
        time.sleep(1)
    serving = ("new" if deploy.up_to_date(lab.target, after)[0] else
               "previous" if deploy.up_to_date(lab.target, before)[0] else "neither")
    state["trial plan"] = after if serving == "new" else before
    row = (rerun.deploys(BACKEND) or [{}])[0]
    table["trials"].append({
        "killed": killed, "moment": MOMENTS[moment], "killed_at_s": round(at_s, 1), "what": what,
        "left": left_status, "helm_left_running": helm_left,
        "killed_run": "killed" if killed_run.rc < 0 else f"rc {killed_run.rc}",
        "killed_run_outcomes": {t: o for t, o in killed_run.outcomes().items() if o != "passed"},
        "rerun_rc": rerun.rc, "rerun_s": round(rerun_s, 1), "recovery": row.get("recovery", ""),
        "rerun_upgraded": not row.get("skipped", True), "serving": serving,
        "requests": loop.result.total, "failed_requests": loop.result.failed, "request_errors": dict(loop.result.errors)})
    if killed == "helm":  # the run saw its helm die, said so and put the previous release back
        case = killed_run.failure(f"test_release_deployed[{BACKEND}]")
        assert re.search(r"helm upgrade failed \(exit -9\)", case.text), case.text[:1500]
        assert "Previous release: rolled back to revision" in case.text, case.text[:1500]
    assert not helm_left, f"helm still running after the kill, with nobody watching: {helm_left}"
    assert rerun.cases and not rerun.not_passed(), (
        f"the rerun after killing {killed} {MOMENTS[moment]} is not green (rc {rerun.rc}): {rerun.not_passed()}\n"
        + "\n".join(c.text[:1500] for c in rerun.cases.values() if c.outcome != "passed") + rerun.tail())
    assert serving in ("new", "previous") and not (problems := lab.settled()), (serving, problems)


def test_trials_not_run_are_listed_with_the_reason(table):
    """helm runs without --wait: once the rollout runs, there is no helm to kill."""
    for killed, moment in NOT_RUN:
        table["not run"].append({"killed": killed, "moment": MOMENTS[moment],
                                 "why": "helm has exited by then (the suite runs it without --wait and watches the "
                                        "rollout itself): " + ("nothing to kill" if killed == "helm" else
                                                               "the same as killing pytest alone")})
    assert len(TRIALS) + len(NOT_RUN) == 9
