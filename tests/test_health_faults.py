"""Seeded faults in stage 5 (health), on the real cluster: every stage-5 gate is made to fail
by a defect seeded for it, with a message that states what was measured, the limit and the
fix, while the other gates of the same run pass.

A namespace of our own (shipcheck-faults-XXXXXX, deleted at the end) gets a good baseline
from the REAL stages 4 and 5 (an inner pytest run, small profile, one replica per app): every
gate passes. Then one fault at a time is seeded and the real stages run again in an inner
run, selected with -k to the gate under test and gates that must still pass (stage 5's
`deployment` fixture deploys first: a no-op, unless the fault is in the values). Each fault
is undone before the next one; a fault in the values is undone by stage 5 itself (it rolls
back the releases its run changed when a gate fails).

  gate                                                 seeded defect                                  how
  test_quota_used_under_hard                           a leftover debug pod takes the last of pods=4  pod applied, --set
  test_usage_under_limits                              backend working set at ~95 % of its limit      exec memory-hog.py
  test_no_warning_events_since_deploy                  PostgreSQL down after the deploy: backend      StatefulSet scaled to 0
                                                       readiness answers 503                          (inner harness)
  test_services_resolve_and_answer_from_the_entry_pod  the backend's Service deleted                  Service deleted
  test_helm_test_passes                                (the same run)
  test_no_restarts_and_no_oomkilled                    the backend's main process exits once          exec: SIGTERM to PID 1
  test_zero_downtime                                   frontend maxSurge 0 / maxUnavailable 1, no     values file (stages 4+5:
                                                       preStop sleep, one replica                     the real upgrade; and
                                                                                                      --prove-zero-downtime)
  test_declared_checks_pass_through_the_cluster        frontend apiBaseUrl http://localhost:8000      values file
                                                       (the same, with checks that create the page's
                                                       task through the backend: the browser step)

Seeded inputs: tests/seeded/health/. Measured: reports/health-faults.json.

Run: .venv/bin/python -m pytest tests/test_health_faults.py -o addopts= -p no:cacheprovider
"""

from __future__ import annotations

import ast
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pipeline_lab
import pytest
import yaml
from pipeline_lab import InnerRun, settle

from shipcheck import config, deploy, kube, metrics, namespace, proofs, quota, rollout

# Local cluster only: its NetworkPolicy fault needs the local cluster's controller.
pytestmark = [pytest.mark.cluster, pipeline_lab.local_only]

SEEDED = Path(__file__).resolve().parent / "seeded" / "health"
NAMESPACE = f"shipcheck-faults-{secrets.token_hex(3)}"
POSTGRES, BACKEND, FRONTEND = "todo-postgres", "todo-backend", "todo-frontend"
STAGE4, STAGE5 = "stages/test_04_deploy.py", "stages/test_05_health.py"
SETTLE_TIMEOUT_S = 120.0  # for a seeded fault to show, or its undoing to roll out
TASKS_PATH = "/api/shipcheck-health-faults/tasks"  # a backend path, through the frontend's /api proxy
MEMORY_SHARE = 0.95  # the seeded working set, of the backend's memory limit (the gate's limit is 90 %)
# Each stage-5 gate and the seeded faults that fail it (the tests below).
GATE_FAULTS = {
    "test_quota_used_under_hard": ["quota"],
    "test_usage_under_limits": ["usage"],
    "test_no_warning_events_since_deploy": ["events"],
    "test_services_resolve_and_answer_from_the_entry_pod": ["no-service"],
    "test_helm_test_passes": ["no-service"],
    "test_no_restarts_and_no_oomkilled": ["restart"],
    "test_zero_downtime": ["downtime (real upgrade)", "downtime (synthetic)"],
    "test_declared_checks_pass_through_the_cluster": ["wrong-api", "wrong-api (browser)"],
    "test_network_policies_enforced_live": ["netpol-open"],
}

# Every run in our namespace: one replica per app (the node's 2 CPUs are shared with the
# pipeline's own namespace), a deploy timeout that bounds a missed signal.
ONE_REPLICA = SEEDED / "one-replica.yaml"
BASE_SETS = (f"namespace={NAMESPACE}", "timeouts_s.deploy=120", "timeouts_s.readiness_grace=15",
             f"components.{BACKEND}.values_files=[{ONE_REPLICA}]",
             f"components.{FRONTEND}.values_files=[{ONE_REPLICA}]")


def frontend_values(seeded: str) -> str:
    """--set for the frontend's values files: one replica, then tests/seeded/health/`seeded`."""
    return f"components.{FRONTEND}.values_files=[{ONE_REPLICA}, {SEEDED / seeded}]"


def any_of(*gates: str) -> tuple[str, ...]:
    """-k selecting these gates (every parameter of each)."""
    return ("-k", " or ".join(gates))


# --- the lab: our namespace, its releases, and the ways to hit them ---------------------------------
@dataclass
class Lab:
    planner: pipeline_lab.Planner  # shipcheck.yaml with BASE_SETS: what the baseline deployed

    def __repr__(self) -> str:
        return f"<Lab namespace {NAMESPACE}>"

    @property
    def apis(self) -> kube.KubeApis:
        return self.planner.target.apis

    @property
    def cfg(self) -> config.Config:
        return self.planner.cfg

    def frontend_revision(self) -> dict:
        """The frontend's revision before a run that changes it (what stage 5 must go back to)."""
        return {"previous": int(self.planner.target.helm.history(FRONTEND)[-1]["revision"])}

    def restore(self, release: str) -> None:
        """The release as the baseline deployed it (stage 5 rolls back a run's change when a
        gate fails; this is for a run where none did)."""
        component = next(c for c in self.cfg.components.values() if c.release == release)
        outcome = deploy.deploy(self.planner.target, self.planner.plan(component))
        assert outcome.ok, f"restoring {release}: {outcome.message}"

    def serving_pods(self, release: str) -> list[dict]:
        return rollout.serving_pods(kube.read_release(self.apis, NAMESPACE, release).pods)

    def pod(self, release: str) -> dict:
        """The release's one serving pod (one replica each)."""
        __tracebackhide__ = True
        pods = self.serving_pods(release)
        assert len(pods) == 1, f"{release}: {len(pods)} serving pods, expected 1: {[p['metadata']['name'] for p in pods]}"
        return pods[0]

    def exec(self, pod: str, argv: list[str], container: str | None = None, timeout_s: float = 60) -> tuple[int | None, str]:
        return kube.exec_in_pod(self.apis, NAMESPACE, pod, argv, container=container, timeout_s=timeout_s)

    def wait_serving(self, *releases: str, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Every release rolled out and Ready, and the todo path answering through the frontend."""
        __tracebackhide__ = True
        def probe() -> list[str]:
            problems = [p for r in releases for p in pipeline_lab.serving_problems(self.apis, NAMESPACE, r)]
            status = pipeline_lab.service_get(self.apis, NAMESPACE, FRONTEND, 3000, TASKS_PATH)
            return problems + ([] if status == 200 else [f"GET {TASKS_PATH} through the frontend: {status}"])
        settle(f"{', '.join(releases)} serving again", probe, done=lambda p: not p, timeout_s=timeout_s,
               describe="; ".join)

    def events(self, reason: str, name_prefix: str, since_s: float) -> list:
        return [e for e in kube.namespace_events(self.apis, NAMESPACE)
                if e.reason == reason and e.name.startswith(name_prefix) and (e.last_s or 0) >= since_s - 1]

    def working_set_mib(self, pod: str, container: str) -> float | None:
        node = self.apis.core.list_node().items[0].metadata.name
        used = metrics.pod_usage(metrics.read_summary(self.apis, node), NAMESPACE).get(pod, {}).get(container)
        return None if used is None else used["memory_bytes"] / 2**20

    def scale_postgres(self, replicas: int) -> None:
        self.apis.apps.patch_namespaced_stateful_set_scale(POSTGRES, NAMESPACE, {"spec": {"replicas": replicas}})


@dataclass
class FaultRun:
    """One seeded fault and the real stage(s) run over it."""
    fault: str
    inner: InnerRun
    seeded: dict = field(default_factory=dict)  # facts about the seeded state (pod names, figures)

    def __repr__(self) -> str:
        return f"<FaultRun {self.fault}: {self.inner!r}>"

    def message(self, gate: str) -> str:
        """The failed gate's assertion message, as pytest reports it ("AssertionError: ..."),
        without the traceback."""
        __tracebackhide__ = True
        return self.inner.failure(gate).text.split("\nassert ", 1)[0]

    def passed(self, *gates: str) -> None:
        """These gates (a name matches every parameter of it) passed in the same run."""
        __tracebackhide__ = True
        for gate in gates:
            found = {t: o for t, o in self.inner.outcomes().items() if t == gate or t.startswith(gate + "[")}
            assert found and set(found.values()) == {"passed"}, (
                f"{gate}: {found or 'not run'}, expected passed in the run with {self.fault}\n"
                + "\n".join(c.text[:800] for t, c in self.inner.cases.items() if t in found and c.outcome != "passed"))

    def after_failure(self) -> list[dict]:
        """What stage 5 did with the releases its run changed, once a gate failed."""
        return self.inner.figures.get("after the failed health stage", [])


def seeded_run(pytester, lab: Lab, state: dict, table: list, key: str, fault: str, seed: Callable[[], dict],
               undo: Callable[[], None], select: tuple[str, ...], sets: tuple[str, ...] = (),
               stages: tuple[str, ...] = (STAGE5,), conftest_extra: str = "", args: tuple[str, ...] = ()) -> FaultRun:
    """Once per module: seed the fault on the good release, run the real stage(s) over it, undo
    the fault (also when seeding or the run failed)."""
    if key not in state:
        if "not undone" in state:  # this fault would start from a broken namespace
            pytest.fail(f"an earlier fault was not undone: {state['not undone'][:500]}", pytrace=False)
        lab.wait_serving(POSTGRES, BACKEND, FRONTEND, timeout_s=60)
        facts: dict = {}
        try:
            facts = seed() or {}
            inner = pipeline_lab.run_stages(pytester, list(stages), (*BASE_SETS, *sets), args=(*select, *args),
                                            name=key.replace(" ", "-").replace("(", "").replace(")", ""),
                                            conftest_extra=conftest_extra)
        finally:
            try:
                undo()
                lab.wait_serving(POSTGRES, BACKEND, FRONTEND)
            except BaseException as exc:
                state["not undone"] = f"{fault}: {exc}"
                raise
        state[key] = FaultRun(fault, inner, facts)
        table.append({"fault": fault, "seconds": round(inner.duration_s, 1), "outcomes": inner.outcomes(),
                      "after_failure": FaultRun(fault, inner).after_failure()})
    return state[key]


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fault_table(pytestconfig):
    """One row per inner run: reports/health-faults.json, and a table at the end of the session."""
    rows: list[dict] = []
    yield rows
    if not rows:
        return
    path = pipeline_lab.write_report("health-faults", {"namespace": NAMESPACE, "runs": rows})
    lines = ["", f"seeded health faults in {NAMESPACE} (inner runs of the real stages; {path.name}):"]
    for row in rows:
        failed = sorted(t for t, o in row["outcomes"].items() if o == "failed")
        other = sorted({o for o in row["outcomes"].values() if o != "failed"})
        lines.append(f"  {row['fault']:<48} {row['seconds']:>6.1f} s  failed: {', '.join(failed) or '-'}"
                     f"  others: {', '.join(other) or '-'}")
    pipeline_lab.show_at_end(pytestconfig, lines)


@pytest.fixture
def baseline(pytester, state, lab_namespace, fault_table) -> InnerRun:
    """The real stages 4 and 5, green, in our namespace: the release every fault starts from."""
    if "baseline" not in state:
        state["baseline"] = pipeline_lab.run_stages(pytester, [STAGE4, STAGE5], BASE_SETS, name="baseline")
        fault_table.append({"fault": "(none: the good baseline)", "seconds": round(state["baseline"].duration_s, 1),
                            "outcomes": state["baseline"].outcomes(), "after_failure": []})
    inner = state["baseline"]
    bad = inner.not_passed()
    if not inner.cases or bad:
        pytest.fail(f"the baseline stages 4+5 run is not green (rc {inner.rc}): {bad}\n"
                    + "\n".join(c.text[:1500] for c in inner.cases.values() if c.outcome != "passed") + inner.tail(),
                    pytrace=False)
    return inner


@pytest.fixture
def lab(baseline, state, lab_cluster, kube_apis, kubectl_argv) -> Lab:
    if "lab" not in state:
        target = pipeline_lab.deploy_target(lab_cluster, kube_apis, kubectl_argv, NAMESPACE, timeout_s=120,
                                            readiness_grace_s=15)
        state["lab"] = Lab(pipeline_lab.Planner(pipeline_lab.app_config(BASE_SETS), target))
    return state["lab"]


# --- the good baseline ----------------------------------------------------------------------------
def test_every_stage5_gate_has_a_seeded_fault():
    """A gate added to stage 5 without a seeded fault here fails this (no cluster needed)."""
    tree = ast.parse((pipeline_lab.REPO / STAGE5).read_text())
    gates = {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    assert gates == set(GATE_FAULTS), (f"stage-5 gates without a seeded fault: {sorted(gates - set(GATE_FAULTS))}; "
                                       f"faults for gates that are gone: {sorted(set(GATE_FAULTS) - gates)}")


def test_the_good_baseline_passes_every_stage4_and_stage5_gate(baseline):
    """The control: without a seeded fault every gate passes (the fixture fails on any that
    did not), so each failure that follows is its fault's."""
    assert [(r["release"], r["ok"], r["skipped"]) for r in baseline.figures["deploys"]][:3] == [
        (POSTGRES, True, False), (BACKEND, True, False), (FRONTEND, True, False)]  # a first install
    for gate in GATE_FAULTS:
        ran = [t for t in baseline.cases if t == gate or t.startswith(gate + "[")]
        assert ran, f"{gate} did not run in the baseline: {sorted(baseline.cases)}"
    assert baseline.figures["zero downtime"][0]["proof"] == "synthetic"  # a first install: nothing to upgrade


# --- test_quota_used_under_hard: a leftover pod takes the quota's last pod ------------------------
QUOTA = ("quota", "a leftover debug pod at the pods quota")


def quota_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    debug = yaml.safe_load((SEEDED / "leftover-debug-pod.yaml").read_text())
    debug["metadata"]["namespace"] = NAMESPACE
    debug["spec"]["containers"][0]["image"] = lab.cfg.image_ref(lab.cfg.components[BACKEND])
    name = debug["metadata"]["name"]
    hard = sum(len(lab.serving_pods(r)) for r in (POSTGRES, BACKEND, FRONTEND)) + 1

    def seed() -> dict:
        kube.apply(lab.apis, [debug])
        settle(f"pod {name} Running", lambda: lab.apis.core.read_namespaced_pod(name, NAMESPACE).status.phase,
               done=lambda phase: phase == "Running")
        return {"hard": hard}

    def undo() -> None:
        lab.apis.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        settle(f"pod {name} gone", lambda: [p for p in lab.apis.core.list_namespaced_pod(NAMESPACE).items
                                            if p.metadata.name == name], done=lambda left: not left)
        kube.apply(lab.apis, namespace.manifests(lab.cfg))  # the configured quota again

    return seeded_run(pytester, lab, state, table, *QUOTA, seed, undo, sets=(f"resource_quota.pods={hard}",),
                      select=any_of("test_quota_used_under_hard", "test_no_restarts_and_no_oomkilled",
                                    "test_no_warning_events_since_deploy", "test_usage_under_limits"))


def test_a_leftover_pod_at_the_pods_quota_fails_the_quota_gate(pytester, lab, state, fault_table):
    run = quota_run(pytester, lab, state, fault_table)
    hard = run.seeded["hard"]
    text = run.message("test_quota_used_under_hard")
    # The measured value, the limit and the fix.
    assert f"ResourceQuota {NAMESPACE}-quota: ['pods used {hard} of hard {hard}']" in text, text[:1500]
    assert ("at the limit no rolling update can add its surge pod. Fix: lower the releases' resources or raise "
            "the quota.") in text, text[:1500]
    assert {"resource": "pods", "used": str(hard), "hard": str(hard), "share": "100%"} in run.inner.figures["quota used"]
    run.passed("test_no_restarts_and_no_oomkilled", "test_no_warning_events_since_deploy", "test_usage_under_limits")


# --- test_usage_under_limits: the backend's working set near its memory limit ----------------------
USAGE = ("usage", "backend memory at ~95 % of its limit")


def memory_limit_mib(pod: dict, container: str) -> float:
    spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
    return float(quota.parse_quantity(spec["resources"]["limits"]["memory"])) / 2**20


def start_detached(lab: Lab, pod: str, container: str, code: str, *args: str, out: str) -> None:
    """Start `python3 -c code args` in the container, detached from the exec that starts it
    (its output to `out`): no stream is held open while it runs (a held exec stream once
    blocked the module for minutes)."""
    launcher = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[1], *sys.argv[3:]], "
                "stdout=open(sys.argv[2], 'w'), stderr=subprocess.STDOUT, start_new_session=True)")
    code_rc, output = lab.exec(pod, ["python3", "-c", launcher, code, out, *args], container=container)
    assert code_rc == 0, f"starting a program in {pod}/{container}: exit {code_rc}: {output[-500:]}"


def usage_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    held: dict = {}

    def seed() -> dict:
        pod = lab.pod(BACKEND)
        name, limit = pod["metadata"]["name"], memory_limit_mib(pod, BACKEND)
        before = settle(f"a working-set figure of {name}/{BACKEND} in the kubelet summary",
                        lambda: lab.working_set_mib(name, BACKEND), done=lambda mib: mib is not None)
        hog_mib = int(MEMORY_SHARE * limit - before) - 8  # the hog's own interpreter takes ~8 MiB
        held["pod"] = name
        start_detached(lab, name, BACKEND, (SEEDED / "memory-hog.py").read_text(), str(hog_mib),
                       out="/tmp/memory-hog.out")
        said = settle(f"the memory hog in {name} to say it holds its memory",
                      lambda: lab.exec(name, ["cat", "/tmp/memory-hog.out"], container=BACKEND)[1],
                      done=lambda text: text.startswith("holding"), timeout_s=60)
        assert said.startswith("holding"), f"the memory hog in {name} did not start: {said!r}"
        seeded = settle(f"the working set of {name}/{BACKEND} above 90 % of {limit:.0f} MiB",
                        lambda: lab.working_set_mib(name, BACKEND), done=lambda mib: mib and mib > 0.9 * limit,
                        timeout_s=60)
        return {"pod": name, "limit_mib": limit, "before_mib": before, "seeded_mib": seeded}

    def undo() -> None:
        if "pod" in held:  # the hog wrote its PID; it also ends by itself after 300 s
            lab.exec(held["pod"], ["python3", "-c", "import os, signal; os.kill(int(open('/tmp/memory-hog.pid').read()), "
                                                    "signal.SIGTERM)"], container=BACKEND)

    return seeded_run(pytester, lab, state, table, *USAGE, seed, undo,
                      select=any_of("test_usage_under_limits", "test_quota_used_under_hard",
                                    "test_no_restarts_and_no_oomkilled"))


def test_memory_near_its_limit_fails_the_usage_gate(pytester, lab, state, fault_table):
    run = usage_run(pytester, lab, state, fault_table)
    pod, limit = run.seeded["pod"], run.seeded["limit_mib"]
    text = run.message("test_usage_under_limits")
    found = re.search(rf"usage over limits: {re.escape(pod)}/{BACKEND}: memory (\d+) MiB > 90% of its limit (\d+) MiB",
                      text)
    assert found, text[:1500]
    used_mib, limit_mib = int(found[1]), int(found[2])
    assert limit_mib == round(limit) and 0.9 * limit < used_mib <= limit, (used_mib, limit_mib, run.seeded)
    assert "Fix: raise resources.limits in the chart values, or find the leak." in text
    rows = [r for r in run.inner.figures["resource usage"] if r["pod"] == pod and r["resource"] == "memory MiB"]
    assert rows and rows[0]["usage"] > 0.9 * rows[0]["limit"], rows
    run.passed("test_quota_used_under_hard", "test_no_restarts_and_no_oomkilled")


# --- test_no_warning_events_since_deploy: PostgreSQL down, the backend's readiness fails ------------
EVENTS = ("events", "PostgreSQL down after the deploy: backend readiness 503")

# Harness for the events run only (appended to the inner stages/conftest.py). The database goes
# down once the run's deploy is done (a release that is not Ready would fail stage 4's watch
# first, which is its own gate), then the kubelet reports the backend's failed readiness probe
# every periodSeconds (10 s): the gate is asked once one has been reported since the deploy
# began (60 s at most). The gate judges.
DATABASE_DOWN_AFTER_THE_DEPLOY = f'''

import time as _time

from shipcheck import kube as _kube


@pytest.fixture(autouse=True)
def _seeded_database_down_after_the_deploy(request):
    if request.node.name != "test_no_warning_events_since_deploy":
        return
    live, kube, cfg = (request.getfixturevalue(name) for name in ("live", "kube", "cfg"))
    kube.apps.patch_namespaced_stateful_set_scale("{POSTGRES}", cfg.namespace, {{"spec": {{"replicas": 0}}}})
    deadline = _time.monotonic() + 60
    while _time.monotonic() < deadline:
        for event in _kube.namespace_events(kube, cfg.namespace):
            if (event.reason == "Unhealthy" and event.name.startswith("{BACKEND}-")
                    and event.message.startswith("Readiness probe failed") and (event.last_s or 0) >= live.started_at):
                return
        _time.sleep(1)
'''


def events_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    def seed() -> dict:
        return {"pod": lab.pod(BACKEND)["metadata"]["name"]}

    def undo() -> None:
        lab.scale_postgres(1)
        settle(f"{POSTGRES} back", lambda: pipeline_lab.serving_problems(lab.apis, NAMESPACE, POSTGRES),
               done=lambda p: not p, describe="; ".join)
        # Its data lived in an emptyDir (the chart's default), so the schema is gone with the
        # pod: the release's own migration command creates it again.
        migrate = list(lab.cfg.components[BACKEND].migrate_command)
        settle("the backend's migrations on the new database",
               lambda: lab.exec(lab.pod(BACKEND)["metadata"]["name"], migrate, container=BACKEND, timeout_s=120),
               done=lambda result: result[0] == 0, describe=lambda result: str(result)[-300:])

    return seeded_run(pytester, lab, state, table, *EVENTS, seed, undo, conftest_extra=DATABASE_DOWN_AFTER_THE_DEPLOY,
                      select=any_of("test_no_warning_events_since_deploy", "test_no_restarts_and_no_oomkilled",
                                    "test_quota_used_under_hard"))


PROBE_FAILED = (r"Readiness probe failed: (HTTP probe failed with statuscode: 503"
                r"|Get \"http://[^\"]+/ready\": context deadline exceeded)")


def test_database_down_fails_the_warning_events_gate(pytester, lab, state, fault_table):
    run = events_run(pytester, lab, state, fault_table)
    pod = run.seeded["pod"]
    case = run.inner.failure("test_no_warning_events_since_deploy")
    # The probe fails either way depending on how fast the database client gives up: a 503 from
    # /ready, or /ready itself outliving the probe's timeout. Both are the gate doing its job.
    found = re.search(rf"(\d+) Warning event\(s\) since the deploy, limit 0:\s+Pod/{re.escape(pod)}: Unhealthy x(\d+): "
                      rf"{PROBE_FAILED}", case.text)
    assert found and int(found[1]) >= 1 and int(found[2]) >= 1, case.text[:1500]
    assert "Fix: each names its object and reason; see the attached pod descriptions." in case.text
    # ... and the pod descriptions are attached (HTML report, JUnit system-out), with the probe's failures.
    assert f"Captured stdout diagnostics: describe pods of {BACKEND}" in run.inner.html
    assert re.search(PROBE_FAILED, case.system_out), case.system_out[-1500:]
    run.passed("test_no_restarts_and_no_oomkilled", "test_quota_used_under_hard")


# --- DNS and helm test: the backend's Service deleted ---------------------------------------------
NO_SERVICE = ("no-service", "backend Service deleted")


def no_service_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    saved: dict = {}
    host = f"{BACKEND}.{NAMESPACE}.svc.cluster.local"
    lookup = f"require('dns').lookup('{host}', (e) => process.exit(e ? 0 : 1))"  # exit 0: does NOT resolve

    def seed() -> dict:
        # The baseline's passed helm test is reused while the render is unchanged (a deleted
        # Service does not change it): forget it, so helm test runs over the fault, as it does
        # on the first run of a new render.
        lab.apis.core.patch_namespaced_config_map(proofs.CONFIGMAP, NAMESPACE, {"data": {proofs.helm_test_field(BACKEND): None}})
        saved["service"] = kube.plain(lab.apis, lab.apis.core.read_namespaced_service(BACKEND, NAMESPACE))
        lab.apis.core.delete_namespaced_service(BACKEND, NAMESPACE)
        frontend_pod = lab.pod(FRONTEND)["metadata"]["name"]
        settle(f"{host} to stop resolving in the frontend pod (CoreDNS cache)",
               lambda: lab.exec(frontend_pod, ["node", "-e", lookup])[0], done=lambda rc: rc == 0)
        return {"host": host}

    def undo() -> None:
        if "service" in saved:  # as helm made it (its ownership labels and annotations), on its old
            # cluster IP: clients that still hold that address (a connection pool, a resolver's
            # cache) would otherwise reach whatever answers for an unrouted address here.
            service = saved["service"]
            meta = service["metadata"]
            service["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
            service.pop("status", None)
            lab.apis.core.create_namespaced_service(NAMESPACE, service)
            # While the Service was gone, the frontend's server pooled a keep-alive connection
            # to its address, which this machine's outbound interception answered (404, empty
            # body) and keeps answering: new frontend pods start with fresh pools.
            lab.apis.core.delete_collection_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/name={FRONTEND}")

    return seeded_run(pytester, lab, state, table, *NO_SERVICE, seed, undo,
                      select=any_of("test_services_resolve_and_answer_from_the_entry_pod", "test_helm_test_passes",
                                    "test_no_restarts_and_no_oomkilled"))


def test_a_deleted_backend_service_fails_the_services_resolve_gate(pytester, lab, state, fault_table):
    run = no_service_run(pytester, lab, state, fault_table)
    text = run.message("test_services_resolve_and_answer_from_the_entry_pod")
    assert re.search(rf"from {FRONTEND}-[a-z0-9]+-[a-z0-9]+: {re.escape(run.seeded['host'])}:8000 -> node exit 2: "
                     r"DNS ENOTFOUND; expected it to resolve and answer GET /health with 200\. Fix: 'DNS' means CoreDNS "
                     r"or the Service name", text), text[:1500]
    run.passed("test_no_restarts_and_no_oomkilled")


def test_a_deleted_backend_service_fails_helm_test(pytester, lab, state, fault_table):
    run = no_service_run(pytester, lab, state, fault_table)
    text = run.message(f"test_helm_test_passes[{BACKEND}]")
    assert f"`helm test {BACKEND}` failed:" in text, text[:1500]
    assert f"{BACKEND}-test-health" in text, text[:1500]  # the failed test pod, named
    assert "Fix: the test pod's log and events are above" in text, text[:1500]
    # The other releases' test pods still pass: only the backend's Service is gone.
    run.passed(f"test_helm_test_passes[{FRONTEND}]", f"test_helm_test_passes[{POSTGRES}]")


def test_the_helm_test_failure_message_carries_the_test_pods_log(pytester, lab, state, fault_table):
    """helm writes its verdict to stderr and the test pod's log to stdout: the message has both."""
    run = no_service_run(pytester, lab, state, fault_table)
    message = run.message(f"test_helm_test_passes[{BACKEND}]")
    assert f"GET http://{BACKEND}:8000/health failed" in message, message


# --- test_no_restarts_and_no_oomkilled: the backend's main process exits once ------------------------
RESTART = ("restart", "backend main process exits once")


def restart_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    hit: dict = {}

    def container() -> dict:
        """The backend container's status in the pod that was hit ({} while it cannot be read)."""
        pods = [p for p in lab.serving_pods(BACKEND) if p["metadata"]["name"] == hit["pod"]]
        statuses = (pods[0]["status"].get("containerStatuses") or []) if pods else []
        return next((c for c in statuses if c["name"] == BACKEND), {})

    def seed() -> dict:
        hit["pod"] = pod = lab.pod(BACKEND)["metadata"]["name"]
        # uvicorn runs as PID 1 and stops on SIGTERM (exit 0); the kubelet starts it again.
        try:
            lab.exec(pod, ["python3", "-c", "import os, signal; os.kill(1, signal.SIGTERM)"], container=BACKEND)
        except Exception:  # noqa: BLE001 -- the exec may be cut short by the container it stopped
            pass
        seen = settle(f"{pod}/{BACKEND} restarted and Ready again", container,
                      done=lambda c: c.get("restartCount", 0) >= 1 and c.get("ready"))
        return {"pod": pod, "restarts": seen["restartCount"], "last": seen["lastState"]["terminated"]}

    def undo() -> None:  # a fresh pod: no restart on record
        if "pod" in hit:
            lab.apis.core.delete_namespaced_pod(hit["pod"], NAMESPACE)

    return seeded_run(pytester, lab, state, table, *RESTART, seed, undo,
                      select=any_of("test_no_restarts_and_no_oomkilled", "test_quota_used_under_hard",
                                    "test_usage_under_limits"))


def test_a_restarted_container_fails_the_restarts_gate(pytester, lab, state, fault_table):
    run = restart_run(pytester, lab, state, fault_table)
    pod, last = run.seeded["pod"], run.seeded["last"]
    case = run.inner.failure(f"test_no_restarts_and_no_oomkilled[{BACKEND}]")
    assert (f"{BACKEND}: 1 container(s) restarted, limit 0: ['{pod}/{BACKEND}: {run.seeded['restarts']} restart(s), "
            f"last termination {last['reason']} (exit {last['exitCode']})']. Fix: read the previous container's log "
            "(attached) and fix the crash or the liveness probe") in case.text, case.text[:1500]
    # ... and the previous container's log is attached: uvicorn's own words as it stopped.
    assert f"Captured stdout diagnostics: log {pod}/{BACKEND} (previous container)" in run.inner.html
    assert "Finished server process [1]" in case.system_out
    run.passed(f"test_no_restarts_and_no_oomkilled[{FRONTEND}]", f"test_no_restarts_and_no_oomkilled[{POSTGRES}]",
               "test_quota_used_under_hard", "test_usage_under_limits")


# --- test_zero_downtime: a frontend rolling update that stops its only pod first -------------
DOWNTIME_REAL = ("downtime (real upgrade)", "frontend maxSurge 0, no preStop sleep: the real upgrade")
DOWNTIME_SYNTHETIC = ("downtime (synthetic)", "frontend maxSurge 0, no preStop sleep: --prove-zero-downtime")
ZERO_DOWNTIME_MESSAGE = (r"during the rolling updates \({how}\): (\d+) failed of (\d+) requests in \d+ s \((.+?)\); "
                         r"limit 0 failed\. Fix: readiness probes must gate traffic, maxUnavailable 0, and a preStop "
                         r"sleep must cover the endpoint removal\.")


def downtime_real_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    """The values are the fault: stage 4 of the run upgrades the frontend to them while its
    request loop runs (the real upgrade), stage 5 judges the counts and, failing, rolls the
    frontend back."""
    return seeded_run(pytester, lab, state, table, *DOWNTIME_REAL, lab.frontend_revision, lambda: lab.restore(FRONTEND),
                      sets=(frontend_values("no-surge-no-prestop.yaml"),), stages=(STAGE4, STAGE5),
                      select=any_of("test_zero_downtime", "test_release_deployed", "test_rolled_out"))


def downtime_synthetic_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    return seeded_run(pytester, lab, state, table, *DOWNTIME_SYNTHETIC, lab.frontend_revision, lambda: lab.restore(FRONTEND),
                      sets=(frontend_values("no-surge-no-prestop.yaml"),), args=("--prove-zero-downtime",),
                      select=any_of("test_zero_downtime"))


def test_a_real_upgrade_without_surge_fails_the_zero_downtime_gate(pytester, lab, state, fault_table):
    run = downtime_real_run(pytester, lab, state, fault_table)
    frontend = run.inner.deploys(FRONTEND)
    assert frontend and frontend[0]["ok"] and not frontend[0]["skipped"], f"the seeded values were not rolled out: {frontend}"
    run.passed(f"test_release_deployed[{FRONTEND}]", f"test_rolled_out[{FRONTEND}]")  # stage 4 saw nothing wrong
    text = run.message("test_zero_downtime")
    found = re.search(ZERO_DOWNTIME_MESSAGE.format(how="real upgrade"), text)
    assert found and int(found[1]) > 0 and int(found[2]) > int(found[1]), text[:1500]
    row = run.inner.figures["zero downtime"][0]
    assert row["proof"] == "real upgrade" and row["failed"] == int(found[1]) and row["releases"] == FRONTEND, row
    # The failed stage put the frontend back, and said so.
    assert run.after_failure() == [{"release": FRONTEND, "action": f"rolled back to revision "
                                                                  f"{run.seeded['previous']}: rolled out and serving"}]


def test_a_synthetic_roll_without_surge_fails_the_zero_downtime_gate(pytester, lab, state, fault_table):
    run = downtime_synthetic_run(pytester, lab, state, fault_table)
    text = run.message("test_zero_downtime")
    found = re.search(ZERO_DOWNTIME_MESSAGE.format(how="synthetic"), text)
    assert found and int(found[1]) > 0 and int(found[2]) > int(found[1]), text[:1500]
    row = run.inner.figures["zero downtime"][0]
    assert row["proof"] == "synthetic" and row["failed"] == int(found[1]), row
    assert run.after_failure() == [{"release": FRONTEND, "action": f"rolled back to revision "
                                                                  f"{run.seeded['previous']}: rolled out and serving"}]


# --- the declared checks: the frontend's API_BASE_URL points nowhere ---------------------------------
WRONG_API = ("wrong-api", "frontend apiBaseUrl http://localhost:8000")
WRONG_API_BROWSER = ("wrong-api (browser)", "frontend apiBaseUrl http://localhost:8000, the page's task made "
                                            "through the backend")
# The app's checks, but the page's task is created and removed through the backend itself:
# every request passes, and only the page rendered by Chromium shows that the frontend
# cannot reach its backend.
BROWSER_CHECKS = ("checks=["
                  "{name: health, request: {path: /api/health}, expect: {status: 200}},"
                  "{name: a task for the page, component: todo-backend, stages: [5], request: {method: POST, "
                  "path: /api/demo/tasks, json: {title: 'browser check {run}'}}, expect: {status: 201}, "
                  "capture: {page_task_id: $.id}},"
                  "{name: the page lists it, browser: {path: /, expect_text: 'browser check {run}', "
                  "expect_selector: '[data-testid=\"task-list\"]'}},"
                  "{name: remove the page's task, component: todo-backend, stages: [5], request: {method: DELETE, "
                  "path: '/api/demo/tasks/{page_task_id}'}, expect: {status: 204}}]")


def wrong_api_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    return seeded_run(pytester, lab, state, table, *WRONG_API, lab.frontend_revision, lambda: lab.restore(FRONTEND),
                      sets=(frontend_values("api-base-url-localhost.yaml"),),
                      select=any_of("test_declared_checks_pass_through_the_cluster",
                                    "test_services_resolve_and_answer_from_the_entry_pod",
                                    f"(test_helm_test_passes and {FRONTEND})"))


def wrong_api_browser_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    return seeded_run(pytester, lab, state, table, *WRONG_API_BROWSER, lab.frontend_revision, lambda: lab.restore(FRONTEND),
                      sets=(frontend_values("api-base-url-localhost.yaml"), BROWSER_CHECKS),
                      select=any_of("test_declared_checks_pass_through_the_cluster"))


def test_a_wrong_api_base_url_fails_the_declared_checks(pytester, lab, state, fault_table):
    run = wrong_api_run(pytester, lab, state, fault_table)
    text = run.message("test_declared_checks_pass_through_the_cluster")
    # The frontend's own health answers; the first proxied call shows the status it got.
    assert re.search(r"check 'create a task' failed: POST /api/[a-z0-9-]+/tasks answered 502", text), text[:1500]
    assert "ok health: GET /api/health -> 200" in text, text[:1500]
    # The frontend's log (attached) says where it tried to go and why it failed.
    case = run.inner.failure("test_declared_checks_pass_through_the_cluster")
    assert "-> localhost:8000: backend unreachable (ECONNREFUSED)" in case.system_out
    # The frontend itself is up and the backend resolves from it: only the path between is broken.
    run.passed("test_services_resolve_and_answer_from_the_entry_pod", f"test_helm_test_passes[{FRONTEND}]")
    assert [r["release"] for r in run.after_failure()] == [FRONTEND], run.after_failure()


def test_the_declared_checks_failure_names_a_fix(pytester, lab, state, fault_table):
    run = wrong_api_run(pytester, lab, state, fault_table)
    message = run.message("test_declared_checks_pass_through_the_cluster")
    assert "Fix: check todo-frontend's configured backend URL" in message, message


def test_a_wrong_api_base_url_fails_the_browser_step_of_the_declared_checks(pytester, lab, state, fault_table):
    run = wrong_api_browser_run(pytester, lab, state, fault_table)
    message = run.message("test_declared_checks_pass_through_the_cluster")
    assert re.search(r"check 'the page lists it' failed: page / rendered by Chromium \(\d render\(s\)\) has .*; "
                     r"expected the text 'browser check [a-z0-9-]+' and an element", message), message[:1500]
    assert "ok a task for the page: POST /api/demo/tasks -> 201" in message, message[:1500]
    assert "Fix: the page must show it after its scripts ran" in message
    assert "(headless Chromium)" in run.inner.html  # the screenshot, attached to the gate


# --- NetworkPolicies: the database's policy opened to every pod, in place ----------------------------
NETPOL_OPEN = ("netpol-open", "todo-postgres NetworkPolicy ingress set to [{}] (admits every pod)")


def netpol_open_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    from kubernetes import client

    networking = client.NetworkingV1Api(lab.apis.api_client)
    saved: dict = {}

    def seed() -> dict:
        policy = networking.read_namespaced_network_policy(POSTGRES, NAMESPACE)
        saved["ingress"] = kube.plain(lab.apis, policy.spec.ingress)
        networking.patch_namespaced_network_policy(POSTGRES, NAMESPACE, {"spec": {"ingress": [{}]}})
        return {}

    def undo() -> None:
        if "ingress" in saved:
            networking.patch_namespaced_network_policy(POSTGRES, NAMESPACE, {"spec": {"ingress": saved["ingress"]}})
    return seeded_run(pytester, lab, state, table, *NETPOL_OPEN, seed, undo,
                      select=any_of("test_network_policies_enforced_live", "test_declared_checks_pass_through_the_cluster"))


def test_a_database_policy_open_to_every_pod_fails_the_live_network_policy_gate(pytester, lab, state, fault_table):
    """Only the live gate sees it: the app works (its checks pass), but a pod matching no
    component now reaches PostgreSQL."""
    run = netpol_open_run(pytester, lab, state, fault_table)
    outcome = run.inner.outcomes().get("test_network_policies_enforced_live")
    if outcome == "skipped":
        pytest.skip("this cluster does not enforce NetworkPolicies (setup/local-cluster.sh starts kube-router)")
    message = run.message("test_network_policies_enforced_live")
    assert re.search(r"matching no component\) -> .*todo-postgres.*5432.*expected refused", message), message[:1500]
    assert "Fix: narrow the server's NetworkPolicy (networkPolicy.allowedClients)" in message
    run.passed("test_declared_checks_pass_through_the_cluster")
