"""Seeded faults in stage 4 (deploy), on the real cluster: each one fails the stage fast,
names its signal, carries its evidence, and leaves the previous release serving.

A namespace of our own (shipcheck-faults-XXXXXX, deleted at the end) gets a good baseline
from the REAL stage 4 (an inner pytest run, small profile, one replica per app). The faults
then hit the backend release one after another, each starting from the good release the
previous one left behind:

  fault                        how it is driven                      expected signal
  crashing image               real stage 4 (inner run)              CrashLoopBackOff
  resources over the quota     real stage 4 (inner run)              fit check refuses, nothing deployed
  readiness on a wrong path    deploy.deploy (readiness_path=/nope)  Unhealthy, past timeouts_s.readiness_grace
  resources over the quota     deploy.deploy (no fit check)          FailedCreate (exceeded quota)
  helm killed mid-upgrade      helm, SIGKILL, then deploy.deploy     recovery from pending-upgrade
  image never loaded           deploy.deploy (tag never built,       ErrImageNeverPull
                               a chart whose pullPolicy is Never)

Values the suite injects win over values files, so faults on them (the readiness path, the
migration command, the tag) are made by changing the component (dataclasses.replace), as a
user's shipcheck.yaml would; faults in the chart's own values (resources, pull policy) come
from seeded values files. Every run here has timeouts_s.readiness_grace=15: readiness that
keeps failing is fatal only once the container has been up that long (a slow start is not
a failure), so its detection is judged against the grace plus 15 s.

While each bad upgrade is attempted and rolled back, a bounded request loop goes through the
API server's service proxy to the frontend's /api/health and, through the frontend, to a
backend path (tasks, from PostgreSQL): no request may fail. Detection times, recoveries and
request counts go to reports/fault-detection.json and a table at the end of the run.

Run: .venv/bin/python -m pytest tests/test_deploy_faults.py -o addopts= -p no:cacheprovider
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pipeline_lab
import pytest
from pipeline_lab import InnerRun

from shipcheck import commands, config, deploy, images, kube, providers, rollout, web
from shipcheck import plan as plan_mod

pytestmark = pytest.mark.cluster

REPO = pipeline_lab.REPO
SEEDED = Path(__file__).resolve().parent / "seeded" / "deploy"
NAMESPACE = f"shipcheck-faults-{secrets.token_hex(3)}"
POSTGRES, BACKEND, FRONTEND = "todo-postgres", "todo-backend", "todo-frontend"
GRACE_S = 15.0  # timeouts_s.readiness_grace of every run here
DETECT_LIMIT_S = 30.0  # a fatal signal must stop the deploy within this (readiness: after its container started)
FAULT_TIMEOUT_S = 120  # helm's timeout for a bad upgrade: far above the limit, so a miss shows as a miss
TASKS_PATH = "/api/shipcheck-faults/tasks"  # a backend path, through the frontend's /api proxy
LOCAL_CONTAINERD = "/run/shipcheck-containerd/containerd.sock"  # the local cluster's own containerd
NO_OP_GATE = "test_redeploy_without_change_is_a_no_op"  # judged on its own test below
ONE_REPLICA = SEEDED / "one-replica.yaml"

# Every run in our namespace: one replica per app (the node's 2 CPUs are shared with the
# pipeline's own namespace), a deploy timeout that bounds a missed signal, a short readiness grace.
BASE_SETS = (f"namespace={NAMESPACE}", "timeouts_s.deploy=120", f"timeouts_s.readiness_grace={GRACE_S:g}",
             f"components.{BACKEND}.values_files=[{ONE_REPLICA}]",
             f"components.{FRONTEND}.values_files=[{ONE_REPLICA}]")


def run_stage4(pytester: pytest.Pytester, *sets: str, profile: str = "small") -> InnerRun:
    """The real stages/test_04_deploy.py in a subprocess, on the app's shipcheck.yaml with our
    namespace and `sets` (--set) over it; JUnit, HTML and summary.json are read back."""
    return pipeline_lab.run_stages(pytester, ["stages/test_04_deploy.py"], (*BASE_SETS, *sets), profile=profile)


# --- the lab: our namespace, its good release, and the ways to hit it -------------------------------
@dataclass
class Lab:
    planner: pipeline_lab.Planner
    good: plan_mod.ReleasePlan  # the backend's plan as the baseline deployed it

    def __repr__(self) -> str:
        return f"<Lab namespace {NAMESPACE}>"

    @property
    def target(self) -> deploy.Target:
        return self.planner.target

    @property
    def backend(self) -> config.Component:
        return self.planner.cfg.components[BACKEND]

    def plan(self, component: config.Component) -> plan_mod.ReleasePlan:
        """A seeded backend's plan; its image-ID annotation stays the good image's."""
        return self.planner.plan(component, image_of=self.backend)

    def loop(self, max_s: float = 300) -> web.RequestLoop:
        return pipeline_lab.request_loop(self.target.apis, NAMESPACE, FRONTEND, 3000, ["/api/health", TASKS_PATH],
                                         max_s=max_s)

    def deploy(self, plan: plan_mod.ReleasePlan) -> tuple[deploy.Outcome, web.LoopResult]:
        """deploy.deploy of the backend to `plan`, under a request loop."""
        with self.loop() as loop:
            time.sleep(1.0)  # a few requests against the good release first
            outcome = deploy.deploy(dataclasses.replace(self.target, timeout_s=FAULT_TIMEOUT_S), plan)
            time.sleep(1.0)
        return outcome, loop.result

    def history(self) -> list[dict]:
        return self.target.helm.history(BACKEND)

    def serving_problems(self) -> list[str]:
        """Why the backend is NOT back at its good release, Ready and serving ([] when it is)."""
        return pipeline_lab.problems_left("the good backend serving", self._serving_problems)

    def _serving_problems(self) -> list[str]:
        current, why = deploy.up_to_date(self.target, self.good)
        problems = [] if current else [f"the release is not the good one: {why}"]
        problems += pipeline_lab.serving_problems(self.target.apis, NAMESPACE, BACKEND)
        pods = rollout.serving_pods(kube.read_release(self.target.apis, NAMESPACE, BACKEND).pods)
        good_image = self.planner.cfg.image_ref(self.backend)
        for pod in pods:
            images_run = [c.get("image", "") for c in pod["status"].get("containerStatuses") or []]
            if any(not image.endswith(good_image) for image in images_run):
                problems.append(f"pod {pod['metadata']['name']} runs {images_run}, expected {good_image}")
        if len(pods) != 1:
            problems.append(f"{len(pods)} serving backend pods, expected 1")
        for path in ("/api/health", TASKS_PATH):
            status = pipeline_lab.service_get(self.target.apis, NAMESPACE, FRONTEND, 3000, path)
            if status != 200:
                problems.append(f"GET {path} through the frontend: {status}")
        return problems


def evidence_titles(outcome: deploy.Outcome) -> list[str]:
    return [title for title, _ in outcome.evidence]


def evidence_text(outcome: deploy.Outcome, starts: str) -> str:
    return "\n".join(text for title, text in outcome.evidence if title.startswith(starts))


def reasons(outcome: deploy.Outcome) -> list[str]:
    return list(dict.fromkeys(p.reason for p in outcome.problems))


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fault_table(pytestconfig):
    """Rows of measured detections; written to reports/fault-detection.json and shown at the end."""
    rows: list[dict] = []
    yield rows
    if not rows:
        return
    path = pipeline_lab.write_report("fault-detection", {"namespace": NAMESPACE, "limit_s": DETECT_LIMIT_S,
                                                         "readiness_grace_s": GRACE_S, "faults": rows})
    header = f"{'fault':<28} {'driven by':<19} {'signal':<22} {'detected':>9} {'requests':>9} {'failed':>6}  recovery"
    lines = ["", f"seeded deploy faults (limit {DETECT_LIMIT_S:g} s; {path.relative_to(REPO)})", header,
             "-" * len(header)]
    for r in rows:
        detected = (f"{r['detected_after_s']:.1f} s" if r["detected_after_s"] is not None
                    else f"({r['recovered_after_s']:.1f} s)" if r.get("recovered_after_s") is not None else "-")
        lines.append(f"{r['fault']:<28} {r['driven_by']:<19} {', '.join(r['signals']) or '-':<22} {detected:>9} "
                     f"{r['requests']:>9} {r['failed_requests']:>6}  {r['recovery']}")
    pipeline_lab.show_at_end(pytestconfig, lines)


@pytest.fixture(scope="module")
def lab_cfg() -> config.Config:
    return pipeline_lab.app_config(BASE_SETS)


@pytest.fixture(scope="module")
def crash_image(lab_cluster, lab_cfg) -> str:
    """<backend image>-crash:<tag>: the stage-1 backend image with a start command that exits
    1. Removed afterwards from the engine and the cluster (only this tag)."""
    import docker

    engine = docker.from_env(timeout=120)
    backend = lab_cfg.components[BACKEND]
    base = lab_cfg.image_ref(backend)
    if not engine.images.list(name=base):
        pytest.fail(f"{base} is not in the engine: run stage 1 first (./pipeline test runs the stages before these tests)")
    ref = f"{backend.image}-crash:{backend.tag}"
    commands.run([*images.docker_cli(), "build", "-q", "-f", str(SEEDED / "crash.Dockerfile"), "--build-arg",
                  f"BASE={base}", "-t", ref, str(SEEDED)], env={"DOCKER_BUILDKIT": "1"}, timeout_s=300,
                 what=f"building {ref}")
    yield ref
    engine.images.remove(ref, force=True)
    # The copy the provider loaded into the node's containerd.
    name = f"docker.io/{ref}" if "/" in ref.split(":")[0] else f"docker.io/library/{ref}"
    if lab_cluster.provider == "kind":
        commands.run([*images.docker_cli(), "exec", f"{providers.CLUSTER_NAME}-control-plane", "ctr", "-n", "k8s.io",
                      "images", "rm", name], check=False, timeout_s=60)
    elif Path(LOCAL_CONTAINERD).exists():
        commands.run(["ctr", "--address", LOCAL_CONTAINERD, "-n", "k8s.io", "images", "rm", name],
                     check=False, timeout_s=60)


@pytest.fixture
def baseline(pytester, state, lab_namespace) -> InnerRun:
    """The real stage 4, green, in our namespace: the good release every fault starts from."""
    if "baseline" not in state:
        state["baseline"] = run_stage4(pytester)
    inner = state["baseline"]
    bad = inner.not_passed(ignore=(NO_OP_GATE,))
    if not inner.cases or bad:
        pytest.fail(f"the baseline stage-4 run is not green (rc {inner.rc}): {bad}\n" + inner.tail(), pytrace=False)
    return inner


@pytest.fixture
def lab(baseline, state, lab_cluster, kube_apis, kubectl_argv, lab_cfg) -> Lab:
    if "lab" not in state:
        target = pipeline_lab.deploy_target(lab_cluster, kube_apis, kubectl_argv, NAMESPACE,
                                            timeout_s=FAULT_TIMEOUT_S, readiness_grace_s=GRACE_S)
        planner = pipeline_lab.Planner(lab_cfg, target)
        state["lab"] = Lab(planner, planner.plan(lab_cfg.components[BACKEND]))
    lab = state["lab"]
    problems = lab.serving_problems()
    assert not problems, f"before the fault, the good release is not serving: {problems}"
    return lab


def record(table: list, fault: str, driven_by: str, outcome: deploy.Outcome | None, loop: web.LoopResult | None,
           **extra) -> None:
    table.append({"fault": fault, "driven_by": driven_by, "signals": reasons(outcome) if outcome else [],
                  "detected_after_s": None if outcome is None or outcome.detected_after_s is None
                  else round(outcome.detected_after_s, 1),
                  "recovery": outcome.recovery if outcome else "", "requests": loop.total if loop else 0,
                  "failed_requests": loop.failed if loop else 0, "request_errors": dict(loop.errors) if loop else {},
                  "evidence": evidence_titles(outcome) if outcome else [], **extra})


# --- the good baseline ----------------------------------------------------------------------------
def test_the_good_baseline_passes_every_stage4_gate(baseline, lab):
    """The real stage 4 deploys the three releases green (the fixture checks every gate but
    the no-change re-run, judged on its own below), and the lab's own plan of the backend is
    what it deployed (up to date: the faults below change one thing each)."""
    assert [(r["release"], r["ok"]) for r in baseline.figures["deploys"]][:3] == [
        (POSTGRES, True), (BACKEND, True), (FRONTEND, True)]
    assert [h["status"] for h in lab.history()] == ["deployed"]
    assert deploy.up_to_date(lab.target, lab.good)[0]


def test_a_no_change_rerun_with_values_files_is_a_no_op(baseline):
    case = baseline.cases[NO_OP_GATE]
    assert case.outcome == "passed", case.text[:600]


# --- 1 + 5: a crashing image, through the real stage 4, under traffic ------------------------------------
@dataclass
class CrashRun:
    inner: InnerRun
    loop: web.LoopResult
    previous_revision: int

    def __repr__(self) -> str:
        return f"<CrashRun {self.inner!r} {self.loop}>"


@pytest.fixture
def crash_run(pytester, lab, crash_image, state, fault_table) -> CrashRun:
    """Stage 4 again over the good release, as if stage 1 had built a backend that exits 1 at
    start, while requests go through the frontend."""
    if "crash" not in state:
        previous = int(lab.history()[-1]["revision"])
        with lab.loop(max_s=400) as loop:
            inner = run_stage4(pytester, f"components.{BACKEND}.image={crash_image.split(':')[0]}")
        state["crash"] = CrashRun(inner, loop.result, previous)
        row = (inner.deploys(BACKEND) or [{}])[0]
        case = inner.cases.get(f"test_release_deployed[{BACKEND}]")
        said = case.text.split("Fix:")[0] if case else ""
        fault_table.append({"fault": "crashing image", "driven_by": "stage 4 (inner run)",
                            "signals": [s for s in rollout.FATAL_WAITING if s in said],
                            "detected_after_s": row.get("failure_detected_after_s"),
                            "recovery": row.get("recovery", ""), "requests": loop.result.total,
                            "failed_requests": loop.result.failed, "request_errors": dict(loop.result.errors),
                            "evidence": sorted(set(re.findall(rf"Captured stdout diagnostics: {BACKEND} at failure: "
                                                              r"(.+?) -*(?:\\n|\n)", inner.html)))})
    return state["crash"]


def test_crashing_image_fails_stage4_fast_and_the_previous_release_keeps_serving(crash_run, lab):
    inner = crash_run.inner
    case = inner.failure(f"test_release_deployed[{BACKEND}]")
    # helm (run without --wait) has exited by then: the suite's own rollout watch calls the failure.
    assert re.search(rf"release {BACKEND}: (stopped helm after \d+ s: )?container {BACKEND}: CrashLoopBackOff: ",
                     case.text), case.text[:2000]
    assert "last exit code 1 (Error)" in case.text
    assert "Fix: read the container log below; fix the crash or its configuration" in case.text
    assert (f"Previous release: rolled back to revision {crash_run.previous_revision}: rolled out and serving"
            in case.text), case.text[:2000]
    row = inner.deploys(BACKEND)[0]
    assert row["ok"] is False and row["failure_detected_after_s"] <= DETECT_LIMIT_S, row
    # The rest of the stage judged what it should: the fit check passed, the frontend was never touched.
    assert inner.outcome("test_releases_fit_quota_and_nodes") == "passed"
    assert inner.outcome(f"test_release_deployed[{POSTGRES}]") == "passed"
    assert inner.outcome(f"test_release_deployed[{FRONTEND}]") == "skipped"
    assert inner.outcome(f"test_rolled_out[{BACKEND}]") == "skipped"
    # The previous release kept serving throughout, and serves now.
    assert crash_run.loop.total > 0 and crash_run.loop.failed == 0, f"during the bad upgrade: {crash_run.loop}"
    problems = lab.serving_problems()
    assert not problems, f"after the rollback: {problems}"


def test_crashing_image_evidence_is_in_the_html_report(crash_run):
    """Taken at the failure, before the rollback: the crashed container's own log (previous
    container too), the pod's description, the events and helm history."""
    html = crash_run.inner.html
    at_failure = f"Captured stdout diagnostics: {BACKEND} at failure: "
    for title, then in ((rf"log {BACKEND}-[a-z0-9]+-[a-z0-9]+/{BACKEND} \(previous container\)",
                         "shipcheck seeded crash: refusing to start"),
                        (rf"log {BACKEND}-[a-z0-9]+-[a-z0-9]+/{BACKEND}", "shipcheck seeded crash: refusing to start"),
                        (f"describe pods of {BACKEND}", "Name: "),
                        (f"helm history {BACKEND}", "REVISION"),
                        (f"events in {NAMESPACE} \\(oldest first\\)", "Normal ")):
        framed = re.escape(at_failure) + title + r" -*(\\n|\n)\s*" + re.escape(then)
        assert re.search(framed, html), f"no section {at_failure}{title} starting with {then!r} in the HTML report"
    assert "Back-off restarting failed container" in html  # the kubelet's BackOff events
    assert re.search(rf"Pod/{BACKEND}-[a-z0-9]+-[a-z0-9]+: BackOff x\d+", html)  # the events, one form


def test_crashing_image_evidence_is_in_the_junit_report(crash_run):
    case = crash_run.inner.failure(f"test_release_deployed[{BACKEND}]")
    assert "shipcheck seeded crash: refusing to start" in case.system_out, case.system_out[:300]
    assert "Back-off restarting failed container" in case.system_out


# --- 3a: over the quota, refused before anything is deployed -----------------------------------------
def test_over_quota_is_refused_by_the_fit_check_before_deploying(pytester, lab, fault_table):
    before = lab.history()
    over = f"components.{BACKEND}.values_files=[{ONE_REPLICA}, {SEEDED / 'over-quota.yaml'}]"
    inner = run_stage4(pytester, over, profile="defaults")
    case = inner.failure("test_releases_fit_quota_and_nodes")
    fault_table.append({"fault": "over quota (fit check)", "driven_by": "stage 4 (inner run)",
                        "signals": ["fit check"], "detected_after_s": round(inner.cases[
                            "test_namespace_and_quota"].seconds + case.seconds, 1), "recovery": "nothing deployed",
                        "requests": 0, "failed_requests": 0, "request_errors": {}, "evidence": []})
    quota = f"{NAMESPACE}-quota"
    assert "profile defaults:" in case.text and "would not fit, so nothing was loaded or deployed" in case.text
    # The measured value, the limit and the fix.
    assert re.search(rf"requests\.cpu 3\.5 > quota 3 \({POSTGRES} 0\.25 \+ {BACKEND} 3 \+ {FRONTEND} 0\.25\)",
                     case.text), case.text[:3000]
    assert f"raise {quota}" in case.text and "lower resources.requests.cpu" in case.text, case.text[:3000]
    assert re.search(rf"{BACKEND} rolling update: requests\.cpu 6\.5 > quota 3", case.text), case.text[:3000]
    for release in (POSTGRES, BACKEND, FRONTEND):
        assert inner.outcome(f"test_release_deployed[{release}]") == "skipped"
    assert inner.figures.get("deploys") is None  # nothing was attempted
    assert lab.history() == before and not lab.serving_problems()


# --- 2, 3b, 6, 4: deploy.deploy driven directly -----------------------------------------------------
@dataclass
class Attempt:
    """One bad upgrade of the backend over the good release, and what it left."""
    outcome: deploy.Outcome
    loop: web.LoopResult
    afterwards: list[str]  # Lab.serving_problems() right after it
    started_s: float  # wall clock, for "events since the bad upgrade"

    def __repr__(self) -> str:
        return f"<Attempt ok={self.outcome.ok} reasons={reasons(self.outcome)} {self.loop}>"


def seeded(fault: str, lab: Lab) -> config.Component:
    """The backend with fault `fault` seeded, as a user's configuration or chart values would."""
    backend = lab.backend
    if fault == READINESS:
        return dataclasses.replace(backend, readiness_path="/nope")
    if fault == OVER_QUOTA:
        return dataclasses.replace(backend, values_files=(ONE_REPLICA, SEEDED / "over-quota.yaml"))
    if fault == NEVER_LOADED:  # the chart's own pullPolicy (not injected), a tag never built
        return dataclasses.replace(backend, tag="v0.0.0-never-loaded",
                                   values=dataclasses.replace(backend.values, image_pull_policy=None),
                                   values_files=(ONE_REPLICA, SEEDED / "never-loaded.yaml"))
    raise ValueError(fault)


def attempt(lab: Lab, state: dict, fault_table: list, fault: str) -> Attempt:
    """deploy.deploy of the backend with `fault` seeded, once per module."""
    if fault not in state:
        started = time.time()
        outcome, loop = lab.deploy(lab.plan(seeded(fault, lab)))
        record(fault_table, fault, "deploy.deploy", outcome, loop)
        state[fault] = Attempt(outcome, loop, lab.serving_problems(), started)
    return state[fault]


def check_failed_on(tried: Attempt, signal: str, says: str) -> None:
    """The bad upgrade failed on `signal`, with the evidence taken before the rollback, and the
    good release served every request throughout and serves now."""
    __tracebackhide__ = True
    outcome = tried.outcome
    assert not outcome.ok, f"the bad upgrade succeeded: {outcome}"
    assert signal in reasons(outcome) and says in outcome.message, (reasons(outcome), outcome.message)
    titles = evidence_titles(outcome)
    for wanted in (f"events in {NAMESPACE}", f"quota usage in {NAMESPACE}", f"describe pods of {BACKEND}",
                   f"helm status {BACKEND}", f"helm history {BACKEND}", "log "):
        assert any(t.startswith(wanted) for t in titles), f"no evidence {wanted!r} in {titles}"
    assert "REVISION" in evidence_text(outcome, f"helm history {BACKEND}")
    assert outcome.previous_revision is not None and outcome.recovery.startswith(
        f"rolled back to revision {outcome.previous_revision}: "), outcome.recovery
    assert tried.loop.total > 0 and tried.loop.failed == 0, f"during the bad upgrade: {tried.loop}"
    assert not tried.afterwards, f"after the rollback: {tried.afterwards}"


def check_detected_in_time(tried: Attempt, limit_s: float = DETECT_LIMIT_S) -> None:
    __tracebackhide__ = True
    seconds = tried.outcome.detected_after_s
    assert seconds is not None and seconds <= limit_s, (
        f"{reasons(tried.outcome)[:1]} detected after {seconds:.1f} s, limit {limit_s:g} s: "
        f"{tried.outcome.message[:300]}")


def check_reported_rolled_out(tried: Attempt) -> None:
    __tracebackhide__ = True
    expected = f"rolled back to revision {tried.outcome.previous_revision}: rolled out and serving"
    assert tried.outcome.recovery == expected, tried.outcome.recovery


READINESS = "readiness on /nope"
OVER_QUOTA = "over quota (no fit check)"
NEVER_LOADED = "image never loaded"


def test_readiness_on_a_wrong_path_fails_and_the_previous_release_keeps_serving(lab, state, fault_table):
    tried = attempt(lab, state, fault_table, READINESS)
    check_failed_on(tried, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")
    assert f"(grace {GRACE_S:g} s, timeouts_s.readiness_grace)" in tried.outcome.message, tried.outcome.message
    assert "Readiness probe failed" in evidence_text(tried.outcome, f"describe pods of {BACKEND}")
    check_reported_rolled_out(tried)


def test_readiness_on_a_wrong_path_is_detected_within_the_grace_plus_15_s(lab, state, fault_table):
    """Readiness is judged from the container's start (a slow start is not a failure): the
    failure must be called within the grace + 15 s of it. From helm's start, the migration
    hook and the pod's start come first; that figure is in the table too."""
    tried = attempt(lab, state, fault_table, READINESS)
    found = re.search(r"readiness still failing (\d+) s after the container started", tried.outcome.message)
    assert found, tried.outcome.message[:500]
    assert GRACE_S <= int(found[1]) <= GRACE_S + 15, (
        f"readiness failure called {found[1]} s after the container started, limit grace {GRACE_S:g} + 15 s: "
        f"{tried.outcome.message[:300]}")
    fault_table[[r["fault"] for r in fault_table].index(READINESS)]["after_container_start_s"] = int(found[1])


def test_over_quota_without_the_fit_check_is_a_failed_create_within_30_s(lab, state, fault_table):
    tried = attempt(lab, state, fault_table, OVER_QUOTA)
    check_failed_on(tried, "FailedCreate:quota", "exceeded quota")  # and rolled back, Ready and serving
    check_detected_in_time(tried)
    assert f"{NAMESPACE}-quota" in tried.outcome.message
    assert "requested: limits.cpu=3,requests.cpu=3" in tried.outcome.message, tried.outcome.message
    assert "exceeded quota" in evidence_text(tried.outcome, f"events in {NAMESPACE}")
    assert "requests.cpu" in evidence_text(tried.outcome, f"quota usage in {NAMESPACE}")
    assert "raise the namespace ResourceQuota" in tried.outcome.fix


def test_a_rollback_watch_ignores_the_failed_revisions_replicaset(lab, state, fault_table):
    tried = attempt(lab, state, fault_table, OVER_QUOTA)
    assert not tried.afterwards, tried.afterwards  # rolled back: the good release is Ready and serving
    waited = deploy.watch_rollout(lab.target, BACKEND, since_s=tried.started_s, timeout_s=15)
    assert waited.ok, f"{waited.reason} ({waited.state})"


def test_helm_killed_mid_upgrade_is_recovered_by_the_next_run(lab, fault_table):
    good_revision = int(lab.history()[-1]["revision"])
    slow = lab.plan(dataclasses.replace(lab.backend, migrate_command=("python", "-c", "import time; time.sleep(60)")))
    helm = lab.target.helm.start_upgrade(BACKEND, slow.chart, slow.values_files, slow.values, FAULT_TIMEOUT_S)
    pipeline_lab.settle("helm to leave the release pending-upgrade (its hook running)", lab.history,
                        done=lambda h: h and h[-1]["status"] == "pending-upgrade", timeout_s=60,
                        describe=lambda h: h[-1] if h else h)
    os.kill(helm.proc.pid, signal.SIGKILL)  # no chance to mark the release failed, as when a CI runner dies
    helm.wait(30)
    stuck = lab.history()[-1]
    assert stuck["status"] == "pending-upgrade", f"helm left {stuck}"

    start = time.monotonic()
    outcome, loop = lab.deploy(lab.good)  # the next normal run
    record(fault_table, "helm killed mid-upgrade", "deploy.deploy", outcome, loop,
           recovered_after_s=round(time.monotonic() - start, 1))
    assert outcome.ok, outcome
    assert outcome.recovery == (f"recovered from pending-upgrade at revision {stuck['revision']} by rollback to "
                                f"revision {good_revision}"), outcome.recovery
    assert outcome.skipped, "after the rollback the good release is up to date: nothing to upgrade"
    assert [h["status"] for h in lab.history()[-2:]] == ["pending-upgrade", "deployed"], lab.history()[-3:]
    assert loop.failed == 0, f"during the recovery: {loop}"
    problems = lab.serving_problems()
    assert not problems, f"after the recovery: {problems}"


# Last: a stopped helm leaves its hook Job; the deploy deletes it before rolling back.
def test_image_never_loaded_fails_fast_and_the_previous_release_keeps_serving(lab, state, fault_table):
    tried = attempt(lab, state, fault_table, NEVER_LOADED)
    check_failed_on(tried, "ErrImageNeverPull", ':v0.0.0-never-loaded" is not present')
    check_detected_in_time(tried)
    assert "ErrImageNeverPull" in evidence_text(tried.outcome, f"describe pods of {BACKEND}")
    assert "load the image into the cluster's nodes" in tried.outcome.fix


def test_image_never_loaded_rollback_is_reported_rolled_out(lab, state, fault_table):
    check_reported_rolled_out(attempt(lab, state, fault_table, NEVER_LOADED))
