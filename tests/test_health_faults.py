"""Seeded faults in stage 5 (health), on the real cluster: every stage-5 gate is made to fail
by a defect seeded for it, with a message that states what was measured, the limit and the
fix, while the other gates of the same run pass.

A namespace of our own (shipcheck-faults-XXXXXX, deleted at the end) gets a good baseline
from the REAL stages 4 and 5 (pytester, small profile, one replica per app): every gate
passes. Then one fault at a time is seeded and the real stages/test_05_health.py runs again,
selected with -k to the gate under test and gates that must still pass (its `deployment`
fixture re-deploys first: a no-op, unless the fault is in the values). Each fault is undone
before the next one.

  gate                                          seeded defect                                   how
  test_quota_used_under_hard                    a leftover debug pod takes the last of pods=4   kubectl apply, --set
  test_usage_under_limits                       backend working set at ~95 % of its limit       kubectl exec memory-hog.py
  test_no_warning_events_since_deploy           PostgreSQL down: backend readiness answers 503  kubectl scale --replicas=0
  test_backend_dns_resolves_from_frontend_pod   the backend's Service deleted                   kubectl delete service
  test_helm_test_passes                         (the same run)
  test_no_restarts_and_no_oomkilled             the backend's main process exits once           kubectl exec: SIGTERM to PID 1
  test_zero_downtime_upgrade                    frontend maxSurge 0 / maxUnavailable 1, no      values file (--set
                                                preStop sleep, one replica                      ...values_files)
  test_todo_flow_end_to_end                     frontend apiBaseUrl http://localhost:8000       values file
  test_page_renders_in_a_browser                (the same run)

Seeded inputs: tests/seeded/health/. The baseline takes about 2 minutes (a first install and
every gate, the zero-downtime upgrade alone about 65 s), each fault 10-70 s.

Run: .venv/bin/python -m pytest tests/test_health_faults.py -o addopts= -p no:cacheprovider
"""

from __future__ import annotations

import ast
import copy
import json
import re
import secrets
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pipeline_lab
import pytest
import yaml
from pipeline_lab import InnerRun, http_status

from shipcheck import (
    commands,
    config,
    deploy,
    kube,
    metrics,
    namespace,
    quota,
)
from shipcheck.waiting import wait_until

pytestmark = pytest.mark.cluster

SEEDED = Path(__file__).resolve().parent / "seeded" / "health"
NAMESPACE = f"shipcheck-faults-{secrets.token_hex(3)}"
POSTGRES, BACKEND, FRONTEND = "todo-postgres", "todo-backend", "todo-frontend"
STAGE4, STAGE5 = "stages/test_04_deploy.py", "stages/test_05_health.py"
SETTLE_TIMEOUT_S = 120.0  # for a seeded fault to show, or its undoing to roll out
TASKS_PATH = "/api/shipcheck-health-faults/tasks"  # a backend path, through the frontend's /api proxy
MEMORY_SHARE = 0.95  # the seeded working set, of the backend's memory limit (the gate's limit is 90 %)
# Each stage-5 gate and the seeded fault that fails it (the tests below, in this order).
GATE_FAULTS = {
    "test_quota_used_under_hard": "quota",
    "test_usage_under_limits": "usage",
    "test_no_warning_events_since_deploy": "events",
    "test_backend_dns_resolves_from_frontend_pod": "no-service",
    "test_helm_test_passes": "no-service",
    "test_no_restarts_and_no_oomkilled": "restart",
    "test_zero_downtime_upgrade": "downtime",
    "test_todo_flow_end_to_end": "wrong-api",
    "test_page_renders_in_a_browser": "wrong-api",
}

# Every run in our namespace: one replica per app (the node's 2 CPUs are shared with the
# pipeline's own namespace), and a deploy timeout that bounds a missed signal.
ONE_REPLICA = SEEDED / "one-replica.yaml"
BASE_SETS = (f"namespace={NAMESPACE}", "timeouts_s.deploy=120",
             f"components.{BACKEND}.values_files=[{ONE_REPLICA}]",
             f"components.{FRONTEND}.values_files=[{ONE_REPLICA}]")


def frontend_values(seeded: str) -> str:
    """--set for the frontend's values files: one replica, then tests/seeded/health/`seeded`."""
    return f"components.{FRONTEND}.values_files=[{ONE_REPLICA}, {SEEDED / seeded}]"


def any_of(*gates: str) -> tuple[str, ...]:
    """-k selecting these stage-5 gates (every parameter of each)."""
    return ("-k", " or ".join(gates))


# --- the lab: our namespace, its releases, and the ways to hit them ---------------------------------
@dataclass
class Lab:
    kubectl_argv: list[str]  # kubectl with the cluster's kubeconfig flags
    apis: deploy.KubeApis
    cfg: config.Config  # shipcheck.yaml with BASE_SETS: what the baseline deployed
    frontend_url: str  # through the API server's service proxy: a ready endpoint per request

    def __repr__(self) -> str:
        return f"<Lab namespace {NAMESPACE}>"

    def kubectl(self, *args: str, check: bool = True, timeout_s: float = 60,
                input_text: str | None = None) -> commands.CommandResult:
        __tracebackhide__ = True
        return commands.run([*self.kubectl_argv, "--namespace", NAMESPACE, *args], check=check, timeout_s=timeout_s,
                            input_text=input_text, what=f"kubectl {' '.join(args[:3])}")

    def serving_pods(self, release: str) -> list[dict]:
        return deploy.serving_pods(deploy.release_objects(self.apis, NAMESPACE, release)[1])

    def pod(self, release: str) -> dict:
        """The release's one serving pod (one replica each)."""
        __tracebackhide__ = True
        pods = self.serving_pods(release)
        assert len(pods) == 1, f"{release}: {len(pods)} serving pods, expected 1: {[p['metadata']['name'] for p in pods]}"
        return pods[0]

    def serving_problems(self, release: str) -> list[str]:
        """Why `release` is not rolled out with every serving pod Ready ([] when it is)."""
        workloads, pods, _ = deploy.release_objects(self.apis, NAMESPACE, release)
        problems = []
        for workload in workloads:
            done, summary = (kube.deployment_rolled_out(workload) if workload["kind"] == "Deployment"
                             else kube.statefulset_rolled_out(workload))
            if not done:
                problems.append(summary)
        for pod in deploy.serving_pods(pods):
            statuses = pod["status"].get("containerStatuses") or [{}]
            if not all(c.get("ready") for c in statuses):
                problems.append(f"pod {pod['metadata']['name']} not Ready")
        return problems

    def wait_serving(self, *releases: str, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Every release rolled out and Ready, and the todo path answering through the frontend."""
        __tracebackhide__ = True
        def probe() -> list[str]:
            problems = [p for r in releases for p in self.serving_problems(r)]
            status = http_status(self.frontend_url + TASKS_PATH)
            return problems + ([] if status == 200 else [f"GET {TASKS_PATH} through the frontend: {status}"])
        waited = wait_until(f"{', '.join(releases)} serving again", probe, done=lambda p: not p, timeout_s=timeout_s,
                            interval_s=1.0, transient=(ConnectionError, OSError), describe="; ".join)
        assert waited, f"{waited.what}: {waited.reason}; last seen: {waited.state}"

    def events(self, reason: str, name_prefix: str) -> list:
        return [e for e in self.apis.core.list_namespaced_event(NAMESPACE).items
                if e.reason == reason and (e.involved_object.name or "").startswith(name_prefix)]

    def working_set_mib(self, pod: str, container: str) -> float | None:
        node = self.apis.core.list_node().items[0].metadata.name
        used = metrics.pod_usage(metrics.read_summary(self.apis, node), NAMESPACE).get(pod, {}).get(container)
        return None if used is None else used["memory_bytes"] / 2**20


def settle(what: str, probe: Callable, done: Callable, timeout_s: float = SETTLE_TIMEOUT_S, describe=repr):
    """wait_until that fails the test, naming what was waited for and what was seen last."""
    __tracebackhide__ = True
    waited = wait_until(what, probe, done=done, timeout_s=timeout_s, interval_s=1.0,
                        transient=(ConnectionError, OSError), describe=describe)
    assert waited, f"{what}: {waited.reason}; last seen: {describe(waited.state)}"
    return waited.state


@dataclass
class FaultRun:
    """One seeded fault and the real stage 5 run over it."""
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


def seeded_run(pytester, lab: Lab, state: dict, table: list, key: str, fault: str, seed: Callable[[], dict],
               undo: Callable[[], None], select: tuple[str, ...], sets: tuple[str, ...] = (),
               conftest_extra: str = "") -> FaultRun:
    """Once per module: seed the fault on the good release, run the real stage 5 over it, undo
    the fault (also when seeding or the run failed)."""
    if key not in state:
        if "not undone" in state:  # this fault would start from a broken namespace
            pytest.fail(f"an earlier fault was not undone: {state['not undone'][:500]}", pytrace=False)
        lab.wait_serving(POSTGRES, BACKEND, FRONTEND, timeout_s=60)
        facts: dict = {}
        try:
            facts = seed() or {}
            inner = pipeline_lab.run_stages(pytester, [STAGE5], (*BASE_SETS, *sets), args=select, name=key,
                                            conftest_extra=conftest_extra)
        finally:
            try:
                undo()
            except BaseException as exc:
                state["not undone"] = f"{fault}: {exc}"
                raise
        state[key] = FaultRun(fault, inner, facts)
        table.append({"fault": fault, "seconds": round(inner.duration_s, 1), "outcomes": inner.outcomes()})
    return state[key]


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fault_table(pytestconfig):
    """One row per inner run, shown at the end of the session."""
    rows: list[dict] = []
    yield rows
    if not rows:
        return
    lines = ["", f"seeded health faults in {NAMESPACE} (inner runs of the real stages):"]
    for row in rows:
        failed = sorted(t for t, o in row["outcomes"].items() if o == "failed")
        other = sorted({o for o in row["outcomes"].values() if o != "failed"})
        lines.append(f"  {row['fault']:<44} {row['seconds']:>6.1f} s  failed: {', '.join(failed) or '-'}"
                     f"  others: {', '.join(other) or '-'}")
    pipeline_lab.show_at_end(pytestconfig, lines)


@pytest.fixture
def baseline(pytester, state, lab_namespace, fault_table) -> InnerRun:
    """The real stages 4 and 5, green, in our namespace: the release every fault starts from."""
    if "baseline" not in state:
        state["baseline"] = pipeline_lab.run_stages(pytester, [STAGE4, STAGE5], BASE_SETS, name="baseline")
        fault_table.append({"fault": "(none: the good baseline)", "seconds": round(state["baseline"].duration_s, 1),
                            "outcomes": state["baseline"].outcomes()})
    inner = state["baseline"]
    bad = {t: c.outcome for t, c in inner.cases.items() if c.outcome != "passed"}
    if not inner.cases or bad:
        pytest.fail(f"the baseline stages 4+5 run is not green (rc {inner.result.ret}): {bad}\n"
                    + "\n".join(c.text[:1500] for c in inner.cases.values() if c.outcome != "passed") + inner.tail(),
                    pytrace=False)
    return inner


@pytest.fixture
def lab(baseline, state, local_cluster, frontend_url, kubectl_argv) -> Lab:
    if "lab" not in state:
        state["lab"] = Lab(kubectl_argv, deploy.KubeApis.connect(local_cluster.kubeconfig, None),
                           config.load(pipeline_lab.REPO / "shipcheck.yaml", list(BASE_SETS)), frontend_url)
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


# --- test_quota_used_under_hard: a leftover pod takes the quota's last pod ------------------------
QUOTA = ("quota", "a leftover debug pod at the pods quota")


def quota_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    debug = yaml.safe_load((SEEDED / "leftover-debug-pod.yaml").read_text())
    debug["spec"]["containers"][0]["image"] = lab.cfg.image_ref(lab.cfg.components[BACKEND])
    name = debug["metadata"]["name"]
    hard = sum(len(lab.serving_pods(r)) for r in (POSTGRES, BACKEND, FRONTEND)) + 1

    def seed() -> dict:
        lab.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(debug))
        settle(f"pod {name} Running", lambda: json.loads(lab.kubectl("get", "pod", name, "-o", "json").stdout)[
            "status"].get("phase"), done=lambda phase: phase == "Running")
        return {"hard": hard}

    def undo() -> None:
        lab.kubectl("delete", "pod", name, "--ignore-not-found", "--wait=true", timeout_s=90)
        deploy.apply_manifests(lab.kubectl_argv, namespace.manifests(lab.cfg))  # the configured quota again

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


def usage_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    held: dict = {}

    def seed() -> dict:
        pod = lab.pod(BACKEND)
        name, limit = pod["metadata"]["name"], memory_limit_mib(pod, BACKEND)
        before = settle(f"a working-set figure of {name}/{BACKEND} in the kubelet summary",
                        lambda: lab.working_set_mib(name, BACKEND), done=lambda mib: mib is not None)
        hog_mib = int(MEMORY_SHARE * limit - before) - 8  # the hog's own interpreter takes ~8 MiB
        held["proc"] = proc = subprocess.Popen(
            [*lab.kubectl_argv, "exec", "-i", "--namespace", NAMESPACE, name, "-c", BACKEND, "--", "python3", "-c",
             (SEEDED / "memory-hog.py").read_text(), str(hog_mib)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started, _, _ = select.select([proc.stdout], [], [], 60)
        said = proc.stdout.readline().strip() if started else "(nothing within 60 s)"
        assert said.startswith("holding"), f"the memory hog in {name} did not start: {said!r}"
        seeded = settle(f"the working set of {name}/{BACKEND} above 90 % of {limit:.0f} MiB",
                        lambda: lab.working_set_mib(name, BACKEND), done=lambda mib: mib and mib > 0.9 * limit,
                        timeout_s=60)
        return {"pod": name, "limit_mib": limit, "before_mib": before, "seeded_mib": seeded}

    def undo() -> None:
        proc = held.get("proc")
        if proc is not None:
            proc.stdin.close()  # the hog exits on EOF
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

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
EVENTS = ("events", "PostgreSQL down: backend readiness 503")

# Harness for the events run only (appended to the inner stages/conftest.py): with PostgreSQL
# down the kubelet reports the backend's failed readiness probe every periodSeconds (10 s).
# Before the events gate looks, wait (30 s at most) until one has been reported since this
# run's deploy began, so the gate sees the fault whatever the probes' phase; the gate judges.
PROBE_FAILURE_SINCE_DEPLOY = '''

import time as _time


@pytest.fixture(autouse=True)
def _seeded_probe_failure_since_the_deploy(request):
    if request.node.name != "test_no_warning_events_since_deploy":
        return
    live, kube, cfg = (request.getfixturevalue(name) for name in ("live", "kube", "cfg"))
    deadline = _time.monotonic() + 30
    while _time.monotonic() < deadline:
        for event in kube.core.list_namespaced_event(cfg.namespace).items:
            seen = event.last_timestamp or event.event_time or event.first_timestamp
            if event.reason == "Unhealthy" and seen and seen.timestamp() >= live.started_at:
                return
        _time.sleep(1)
'''


def events_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    def seed() -> dict:
        since = time.time()
        pod = lab.pod(BACKEND)["metadata"]["name"]
        lab.kubectl("scale", "statefulset", POSTGRES, "--replicas=0")

        def failures() -> list:
            return [e for e in lab.events("Unhealthy", pod) if "Readiness probe failed" in (e.message or "")
                    and (e.last_timestamp or e.first_timestamp).timestamp() >= since - 1]
        settle(f"the kubelet to report {pod}'s readiness failing", failures, done=bool, describe=len)
        return {"pod": pod}

    def undo() -> None:
        lab.kubectl("scale", "statefulset", POSTGRES, "--replicas=1")
        settle(f"{POSTGRES} back", lambda: lab.serving_problems(POSTGRES), done=lambda p: not p, describe="; ".join)
        # Its data lived in an emptyDir (the chart's default), so the schema is gone with the
        # pod: the release's own migration command creates it again.
        settle("the backend's migrations on the new database",
               lambda: lab.kubectl("exec", f"deploy/{BACKEND}", "-c", BACKEND, "--",
                                   *lab.cfg.components[BACKEND].migrate_command, check=False, timeout_s=120),
               done=lambda result: result.ok, describe=lambda result: result.tail(3))
        lab.wait_serving(POSTGRES, BACKEND)

    return seeded_run(pytester, lab, state, table, *EVENTS, seed, undo, conftest_extra=PROBE_FAILURE_SINCE_DEPLOY,
                      select=any_of("test_no_warning_events_since_deploy", "test_no_restarts_and_no_oomkilled",
                                    "test_quota_used_under_hard"))


def test_database_down_fails_the_warning_events_gate(pytester, lab, state, fault_table):
    run = events_run(pytester, lab, state, fault_table)
    pod = run.seeded["pod"]
    case = run.inner.failure("test_no_warning_events_since_deploy")
    found = re.search(rf"(\d+) Warning event\(s\) since the deploy, limit 0:\s+Pod/{re.escape(pod)}: Unhealthy x(\d+): "
                      r"Readiness probe failed: HTTP probe failed with statuscode: 503", case.text)
    assert found and int(found[1]) >= 1 and int(found[2]) >= 1, case.text[:1500]
    assert "Fix: each names its object and reason; see the attached pod descriptions." in case.text
    # ... and the pod descriptions are attached (HTML report, JUnit system-out), with the probe's failures.
    assert f"Captured stdout diagnostics: describe pods of {BACKEND}" in run.inner.html
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in case.system_out
    run.passed("test_no_restarts_and_no_oomkilled", "test_quota_used_under_hard")


# --- DNS and helm test: the backend's Service deleted ---------------------------------------------
NO_SERVICE = ("no-service", "backend Service deleted")


def no_service_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    saved: dict = {}
    host = f"{BACKEND}.{NAMESPACE}.svc.cluster.local"
    lookup = f"require('dns').lookup('{host}', (e) => process.exit(e ? 0 : 1))"  # exit 0: does NOT resolve

    def seed() -> dict:
        saved["service"] = json.loads(lab.kubectl("get", "service", BACKEND, "-o", "json").stdout)
        lab.kubectl("delete", "service", BACKEND, "--wait=true")
        settle(f"{host} to stop resolving in the frontend pod (CoreDNS cache)",
               lambda: lab.kubectl("exec", f"deploy/{FRONTEND}", "--", "node", "-e", lookup, check=False).rc,
               done=lambda rc: rc == 0)
        return {"host": host}

    def undo() -> None:
        if "service" in saved:  # as helm made it (its ownership labels and annotations), a new cluster IP
            service = copy.deepcopy(saved["service"])
            meta = service["metadata"]
            service["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
            for key in ("clusterIP", "clusterIPs"):
                service["spec"].pop(key, None)
            service.pop("status", None)
            lab.kubectl("create", "-f", "-", input_text=json.dumps(service))
            lab.wait_serving(BACKEND)

    return seeded_run(pytester, lab, state, table, *NO_SERVICE, seed, undo,
                      select=any_of("test_backend_dns_resolves_from_frontend_pod", "test_helm_test_passes",
                                    "test_no_restarts_and_no_oomkilled"))


def test_a_deleted_backend_service_fails_the_dns_gate(pytester, lab, state, fault_table):
    run = no_service_run(pytester, lab, state, fault_table)
    text = run.message("test_backend_dns_resolves_from_frontend_pod")
    assert (f"from {FRONTEND}: {run.seeded['host']} -> DNS ENOTFOUND; expected it to resolve and GET /health to "
            "answer 200. Fix: check CoreDNS (kube-system), the Service name, and the NetworkPolicy allowing the "
            "frontend.") in text, text[:1500]
    run.passed("test_no_restarts_and_no_oomkilled")


def test_a_deleted_backend_service_fails_helm_test(pytester, lab, state, fault_table):
    run = no_service_run(pytester, lab, state, fault_table)
    text = run.message(f"test_helm_test_passes[{BACKEND}]")
    assert f"`helm test {BACKEND}` failed:" in text, text[:1500]
    assert f"{BACKEND}-test-health" in text, text[:1500]  # the failed test pod, named
    assert "Fix: the test pod checks the Service's health paths; its log is above." in text
    # The other releases' test pods still pass: only the backend's Service is gone.
    run.passed(f"test_helm_test_passes[{FRONTEND}]", f"test_helm_test_passes[{POSTGRES}]")
    # The test pod's log is attached to the report (diagnostics), with what it measured.
    case = run.inner.failure(f"test_helm_test_passes[{BACKEND}]")
    assert f"GET http://{BACKEND}:8000/health failed: <urlopen error [Errno -2] Name or service not known>" in (
        case.system_out)


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
        lab.kubectl("exec", pod, "-c", BACKEND, "--", "python3", "-c", "import os, signal; os.kill(1, signal.SIGTERM)")
        seen = settle(f"{pod}/{BACKEND} restarted and Ready again", container,
                      done=lambda c: c.get("restartCount", 0) >= 1 and c.get("ready"))
        return {"pod": pod, "restarts": seen["restartCount"], "last": seen["lastState"]["terminated"]}

    def undo() -> None:  # a fresh pod: no restart on record
        if "pod" in hit:
            lab.kubectl("delete", "pod", hit["pod"], "--ignore-not-found", "--wait=true", timeout_s=90)
        lab.wait_serving(BACKEND)

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


# --- test_zero_downtime_upgrade: a frontend rolling update that stops its only pod first -------------
DOWNTIME = ("downtime", "frontend maxSurge 0, no preStop sleep")


def downtime_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    # The values are the fault: the run's own deploy rolls them out, the next run's deploy
    # replaces them with its own.
    return seeded_run(pytester, lab, state, table, *DOWNTIME, dict, lambda: None,
                      sets=(frontend_values("no-surge-no-prestop.yaml"),),
                      select=any_of("test_zero_downtime_upgrade", "test_todo_flow_end_to_end"))


def test_a_rolling_update_without_surge_fails_the_zero_downtime_gate(pytester, lab, state, fault_table):
    run = downtime_run(pytester, lab, state, fault_table)
    frontend = run.inner.deploys(FRONTEND)
    assert frontend and frontend[0]["ok"] and not frontend[0]["skipped"], f"the seeded values were not rolled out: {frontend}"
    text = run.message("test_zero_downtime_upgrade")
    found = re.search(r"during the rolling updates: (\d+) failed of (\d+) requests in \d+ s \((.+?)\); limit 0 failed. "
                      r"Fix: readiness probes must gate traffic, maxUnavailable 0, and a preStop sleep must cover the "
                      r"endpoint removal \(preStopSleepSeconds\)\.", text)
    assert found and int(found[1]) > 0 and int(found[2]) > int(found[1]), text[:1500]
    row = run.inner.figures["zero downtime"][0]
    assert row["failed"] == int(found[1]) and row["rollouts"] == 4, row
    run.passed("test_todo_flow_end_to_end")  # between upgrades the frontend works


# --- the todo flow and the browser: the frontend's API_BASE_URL points nowhere --------------------------
WRONG_API = ("wrong-api", "frontend apiBaseUrl http://localhost:8000")


def wrong_api_run(pytester, lab: Lab, state: dict, table: list) -> FaultRun:
    return seeded_run(pytester, lab, state, table, *WRONG_API, dict, lambda: None,
                      sets=(frontend_values("api-base-url-localhost.yaml"),),
                      select=any_of("test_todo_flow_end_to_end", "test_page_renders_in_a_browser",
                                    "test_backend_dns_resolves_from_frontend_pod",
                                    f"(test_helm_test_passes and {FRONTEND})"))


def test_a_wrong_api_base_url_fails_the_todo_flow(pytester, lab, state, fault_table):
    run = wrong_api_run(pytester, lab, state, fault_table)
    case = run.inner.failure("test_todo_flow_end_to_end")
    # The frontend's own health answers; the first proxied call shows the status it got.
    assert re.search(r"POST /api/e2e-[0-9a-f]{6}/tasks answered 502: \{'detail': 'backend unreachable'\}; expected 201",
                     case.text), case.text[:1500]
    # The frontend's log (attached) says where it tried to go and why it failed.
    assert "-> localhost:8000: backend unreachable (ECONNREFUSED)" in case.system_out
    # The frontend itself is up and the backend resolves from it: only the path between is broken.
    run.passed("test_backend_dns_resolves_from_frontend_pod", f"test_helm_test_passes[{FRONTEND}]")


def test_the_todo_flow_failure_names_a_fix(pytester, lab, state, fault_table):
    run = wrong_api_run(pytester, lab, state, fault_table)
    message = run.message("test_todo_flow_end_to_end")
    assert "Fix: the frontend proxies /api/* to its API_BASE_URL" in message, message


def test_a_wrong_api_base_url_fails_the_browser_gate(pytester, lab, state, fault_table):
    run = wrong_api_run(pytester, lab, state, fault_table)
    message = run.message("test_page_renders_in_a_browser")
    assert ("could not create the demo task before rendering the page: POST /api/demo/tasks answered 502: "
            "{'detail': 'backend unreachable'}; expected 201.") in message, message


def test_the_browser_failure_names_the_expected_status_and_a_fix(pytester, lab, state, fault_table):
    run = wrong_api_run(pytester, lab, state, fault_table)
    message = run.message("test_page_renders_in_a_browser")
    assert "expected 201" in message and "Fix: the frontend proxies /api/* to its API_BASE_URL" in message, message
