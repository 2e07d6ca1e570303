"""Rollout judgement as pure predicates over what the API shows (rollout.py): pods and workloads as
plain dicts, events as rollout.Event."""

import calendar
import time

import pytest

from shipcheck import kube, rollout
from shipcheck.rollout import Event, Problem, ReleaseState

NOW = float(calendar.timegm((2025, 6, 1, 12, 0, 0)))


def iso(seconds: float) -> str:
    """An API timestamp as sanitize_for_serialization writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))


def pod(name="todo-backend-7d9c-abcde", statuses=(), init=(), deleting=False, probes=(3,)):
    containers = [{"name": f"c{i}", "readinessProbe": {"failureThreshold": t} if t else None}
                  for i, t in enumerate(probes)]
    meta = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = iso(NOW)
    return {"metadata": meta, "spec": {"containers": [{k: v for k, v in c.items() if v is not None}
                                                      for c in containers]},
            "status": {"containerStatuses": list(statuses), "initContainerStatuses": list(init)}}


def waiting(name, reason, message=None, last=None):
    cs = {"name": name, "state": {"waiting": {"reason": reason, **({"message": message} if message else {})}}}
    if last:
        cs["lastState"] = {"terminated": last}
    return cs


RUNNING = {"name": "api", "state": {"running": {"startedAt": iso(NOW)}}, "ready": True}


# --- containers ------------------------------------------------------------------------------
def test_a_healthy_or_starting_pod_has_no_problems():
    assert rollout.container_problems(pod(statuses=[RUNNING])) == []
    assert rollout.container_problems(pod(statuses=[waiting("api", "ContainerCreating")])) == []
    assert rollout.container_problems({"metadata": {"name": "p"}}) == []


def test_crashloop_brings_up_the_last_exit():
    cs = waiting("api", "CrashLoopBackOff", "back-off 40s restarting failed container",
                 last={"exitCode": 1, "reason": "Error"})
    assert rollout.container_problems(pod(statuses=[cs])) == [
        Problem("CrashLoopBackOff", "container api: CrashLoopBackOff: back-off 40s restarting failed container; "
                                    "last exit code 1 (Error)")]


def test_a_waiting_reason_without_message_is_explained():
    assert rollout.container_problems(pod(statuses=[waiting("api", "ErrImageNeverPull")])) == [
        Problem("ErrImageNeverPull", "container api: ErrImageNeverPull: the image is not on the node and pullPolicy "
                                     "forbids pulling")]


@pytest.mark.parametrize("reason", sorted(set(rollout.FATAL_WAITING) - {"ErrImagePull", "ImagePullBackOff"}))
def test_every_fatal_waiting_reason_is_a_problem(reason):
    [problem] = rollout.container_problems(pod(statuses=[waiting("api", reason, "details")]))
    assert problem.reason == reason and problem.detail == f"container api: {reason}: details"


@pytest.mark.parametrize("message, cause", [
    ('failed to pull and unpack image "r.example:5000/x@sha256:1": failed to resolve reference: unexpected status '
     'from HEAD request: 401 Unauthorized', "unauthorized"),
    ('rpc error: code = NotFound desc = failed to pull and unpack image "r:5000/todo:v9": not found', "not found"),
    ("tls: failed to verify certificate: x509: certificate signed by unknown authority", "tls"),
    ('dial tcp 10.0.0.9:5443: connect: connection refused', "unreachable"),
    ('dial tcp: lookup registry.invalid: no such host', "unreachable"),
])
def test_pull_failures_are_classified_by_their_cause(message, cause):
    [problem] = rollout.container_problems(pod(statuses=[waiting("api", "ErrImagePull", message)]),
                                           pulls_expected=True)
    assert problem.reason == f"ImagePull:{cause}" and problem.fix == rollout.FIX[f"ImagePull:{cause}"]


def test_a_pull_where_images_were_loaded_says_so():
    [problem] = rollout.container_problems(pod(statuses=[waiting("api", "ImagePullBackOff", "Back-off pulling")]),
                                           pulls_expected=False)
    assert problem.reason == "ImagePull:no registry" and "load it" in problem.fix


def test_init_containers_are_judged_too():
    cs = waiting("migrate", "CreateContainerConfigError", 'secret "todo-secrets" not found')
    assert rollout.container_problems(pod(init=[cs], statuses=[waiting("api", "PodInitializing")])) == [
        Problem("CreateContainerConfigError",
                'container migrate: CreateContainerConfigError: secret "todo-secrets" not found')]


def test_oomkilled_now_or_last_time():
    now = {"name": "api", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}
    before = waiting("api", "CrashLoopBackOff", "back-off", last={"reason": "OOMKilled", "exitCode": 137})
    limited = pod(statuses=[now])
    limited["spec"]["containers"] = [{"name": "api", "resources": {"limits": {"memory": "256Mi"}}}]
    assert rollout.container_problems(limited) == [
        Problem("OOMKilled", "container api: OOMKilled (exit 137), memory limit 256Mi")]
    assert [p.reason for p in rollout.container_problems(pod(statuses=[before]))] == ["CrashLoopBackOff", "OOMKilled"]


# --- workloads ---------------------------------------------------------------------------------
def deployment(want=2, gen=2, observed=2, updated=2, available=2, total=2, ready=2):
    status = {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
              "replicas": total, "readyReplicas": ready}
    return {"kind": "Deployment", "metadata": {"name": "todo-backend", "generation": gen},
            "spec": {"replicas": want}, "status": {k: v for k, v in status.items() if v}}


def test_a_rolled_out_deployment_is_done():
    done, summary = rollout.deployment_rolled_out(deployment())
    assert done and summary == ("deployment todo-backend: updated 2/2, available 2/2, ready 2/2, total 2, "
                                "observedGeneration 2/2")


@pytest.mark.parametrize("change", [
    {"observed": 1},              # the controller has not seen the new spec
    {"updated": 1},               # old replicas remain
    {"available": 1},
    {"ready": 1},
    {"total": 3},                 # the surge pod is still there
    {"updated": 0, "available": 0, "total": 0, "ready": 0},  # status absent when zero
])
def test_a_deployment_mid_rollout_is_not_done(change):
    assert rollout.deployment_rolled_out(deployment(**change))[0] is False


def test_a_deployment_without_status_is_not_done_and_defaults_to_one_replica():
    done, summary = rollout.deployment_rolled_out({"metadata": {"name": "web", "generation": 1}, "spec": {}})
    assert not done and "updated 0/1" in summary


def test_a_scaled_to_zero_deployment_is_done():
    assert rollout.deployment_rolled_out(deployment(want=0, updated=0, available=0, total=0, ready=0))[0]


def statefulset(want=1, ready=1, updated=1, current="r1", update="r1", gen=1, observed=1):
    return {"kind": "StatefulSet", "metadata": {"name": "todo-postgres", "generation": gen}, "spec": {"replicas": want},
            "status": {"readyReplicas": ready, "updatedReplicas": updated, "currentRevision": current,
                       "updateRevision": update, "observedGeneration": observed}}


def test_statefulset_rollout():
    assert rollout.statefulset_rolled_out(statefulset()) == (True, "statefulset todo-postgres: ready 1/1, updated 1/1")
    assert not rollout.statefulset_rolled_out(statefulset(current="r1", update="r2"))[0]
    assert not rollout.statefulset_rolled_out(statefulset(ready=0))[0]
    assert not rollout.statefulset_rolled_out(statefulset(gen=2))[0]


# --- events ---------------------------------------------------------------------------------------
def event(reason, message, kind="Pod", name="todo-backend-7d9c-abcde", type_="Warning", count=1,
          first=NOW - 60, last=NOW - 1):
    return Event(type_, reason, message, kind, name, count, first, last)


QUOTA = ('pods "todo-backend-7d9c-xyz" is forbidden: exceeded quota: todo-quota, requested: requests.cpu=500m, '
         'used: requests.cpu=3, limited: requests.cpu=3')
POD_SECURITY = ('pods "todo-backend-7d9c-xyz" is forbidden: violates PodSecurity "restricted:v1.34": '
                'allowPrivilegeEscalation != false')


def test_a_quota_refusal_is_fatal_with_the_quota_fix():
    problem = rollout.event_problem(event("FailedCreate", QUOTA, kind="ReplicaSet", name="todo-backend-7d9c"), NOW)
    assert problem == Problem("FailedCreate:quota", f"ReplicaSet todo-backend-7d9c: FailedCreate (quota): {QUOTA}")
    assert "ResourceQuota" in problem.fix


@pytest.mark.parametrize("message, cause, words", [
    (POD_SECURITY, "PodSecurity", "Pod Security"),
    ('admission webhook "validate.kyverno.svc" denied the request: no latest tags', "webhook", "webhook"),
    ('Pod "x" is invalid: spec.containers[0].image: Required value', "invalid", "invalid"),
    ("some other refusal", "other", "read the event"),
])
def test_a_refused_pod_gets_the_fix_of_its_cause(message, cause, words):
    problem = rollout.event_problem(event("FailedCreate", message, kind="ReplicaSet"), NOW)
    assert problem.reason == f"FailedCreate:{cause}" and words in problem.fix and "ResourceQuota" not in problem.fix


def test_normal_events_and_other_warnings_are_not_fatal_on_their_own():
    assert rollout.event_problem(event("Scheduled", "assigned", type_="Normal"), NOW) is None
    assert rollout.event_problem(event("BackOff", "Back-off pulling image"), NOW) is None
    assert rollout.event_problem(event("Unhealthy", "Liveness probe failed: 503", count=9), NOW) is None
    assert rollout.event_problem(event("Unhealthy", "Readiness probe failed: 503", count=9), NOW) is None


def test_unschedulable_is_fatal_only_after_the_grace():
    message = "0/1 nodes are available: 1 Insufficient cpu."
    assert rollout.event_problem(event("FailedScheduling", message, first=NOW - 5), NOW) is None
    assert rollout.event_problem(event("FailedScheduling", message, first=NOW - 20), NOW) == Problem(
        "FailedScheduling", f"Pod todo-backend-7d9c-abcde: FailedScheduling for 20 s: {message}")


# --- readiness: a slow start is never a failure ------------------------------------------------
READY_FAIL = "Readiness probe failed: Get \"http://10.1.0.5:8000/ready\": dial tcp 10.1.0.5:8000: connect: connection refused"


def started(seconds_ago: float, ready: bool = False) -> dict:
    running = {"name": "api", "ready": ready, "state": {"running": {"startedAt": iso(NOW - seconds_ago)}}}
    return pod(statuses=[running])


def test_readiness_failing_while_the_app_starts_is_not_fatal():
    """A backend with no startupProbe fails readiness 3 times in its first 5 s: that is a start."""
    state = ReleaseState("todo-backend", [deployment(ready=1, available=1)], [started(5)],
                         [event("Unhealthy", READY_FAIL, count=3, first=NOW - 4, last=NOW - 1)])
    result = rollout.rollout_state(state, NOW - 120, NOW, readiness_grace_s=60)
    assert result.fatal == [] and not result.done


def test_readiness_still_failing_long_after_the_start_is_fatal():
    state = ReleaseState("todo-backend", [deployment(ready=1, available=1)], [started(90)],
                         [event("Unhealthy", READY_FAIL, count=9, first=NOW - 85, last=NOW - 2)])
    [problem] = rollout.rollout_state(state, NOW - 120, NOW, readiness_grace_s=60).fatal
    assert problem.reason == "Unhealthy" and "90 s after the container started (grace 60 s" in problem.detail
    assert "timeouts_s.readiness_grace" in problem.detail


def test_readiness_that_recovered_is_not_fatal():
    state = ReleaseState("todo-backend", [deployment()], [started(90, ready=True)],
                         [event("Unhealthy", READY_FAIL, count=9, first=NOW - 85, last=NOW - 60)])
    assert rollout.rollout_state(state, NOW - 120, NOW, readiness_grace_s=60).fatal == []


# --- rollout_state ------------------------------------------------------------------------------------
def test_a_clean_rollout_is_done():
    state = rollout.rollout_state(ReleaseState("r", [deployment(), statefulset()], [pod(statuses=[RUNNING])]),
                                  NOW - 120, NOW)
    assert state.done and state.fatal == []
    assert str(state) == ("deployment todo-backend: updated 2/2, available 2/2, ready 2/2, total 2, "
                          "observedGeneration 2/2; statefulset todo-postgres: ready 1/1, updated 1/1")


def test_a_fatal_pod_fails_the_rollout_even_when_counts_look_done():
    crashing = pod(statuses=[waiting("api", "CrashLoopBackOff", "back-off")])
    state = rollout.rollout_state(ReleaseState("r", [deployment()], [crashing]), NOW - 120, NOW)
    assert not state.done and state.reasons == ["CrashLoopBackOff"]
    assert str(state).endswith("container api: CrashLoopBackOff: back-off")


def test_pods_on_their_way_out_and_their_events_are_ignored():
    old = pod("todo-backend-old-xyz", statuses=[waiting("api", "CrashLoopBackOff")], deleting=True)
    old_event = event("FailedCreate", QUOTA, name="todo-backend-old-xyz")
    gone_event = event("FailedCreate", QUOTA, name="todo-backend-gone-abc")
    state = rollout.rollout_state(ReleaseState("r", [deployment()], [old, pod(statuses=[RUNNING])],
                                               [old_event, gone_event]), NOW - 120, NOW)
    assert state.fatal == []


def test_events_from_before_this_deploy_are_ignored():
    stale = event("FailedCreate", QUOTA, kind="ReplicaSet", name="todo-backend-1", first=NOW - 900, last=NOW - 600)
    fresh = event("FailedCreate", QUOTA, kind="ReplicaSet", name="todo-backend-2")
    state = rollout.rollout_state(ReleaseState("r", [deployment(updated=1)], [], [stale, fresh, fresh]), NOW - 120, NOW)
    assert not state.done
    assert state.fatal == [Problem("FailedCreate:quota", f"ReplicaSet todo-backend-2: FailedCreate (quota): {QUOTA}")]


def test_an_event_without_timestamps_counts_as_now():
    e = Event("Warning", "FailedCreate", QUOTA, "ReplicaSet", "x")
    assert rollout.rollout_state(ReleaseState("r", [], [], [e]), NOW - 10, NOW).reasons == ["FailedCreate:quota"]


def test_a_failed_hook_pod_is_fatal():
    hook = pod("todo-backend-migrate-abc", statuses=[{"name": "migrate", "state": {"terminated": {"exitCode": 1}}}])
    hook["metadata"]["ownerReferences"] = [{"kind": "Job", "name": "todo-backend-migrate"}]
    hook["status"]["phase"] = "Failed"
    state = rollout.rollout_state(ReleaseState("r", [], [hook]), NOW - 120, NOW)
    assert state.reasons == ["PodFailed"] and "migrate exit 1" in str(state)


def test_a_failed_helm_test_pod_is_not_part_of_the_rollout():
    """A failed `helm test` pod stays until the next test replaces it; a later deploy must not
    read it as a failed rollout (it made a no-change re-run upgrade the release)."""
    test_pod = pod("todo-postgres-test-ready", statuses=[{"name": "ready", "state": {"terminated": {"exitCode": 2}}}])
    test_pod["metadata"]["annotations"] = {"helm.sh/hook": "test", "helm.sh/hook-delete-policy": "before-hook-creation"}
    test_pod["status"]["phase"] = "Failed"
    state = rollout.rollout_state(ReleaseState("r", [], [test_pod]), 0, NOW)
    assert state.done and not state.fatal


# --- fixes ---------------------------------------------------------------------------------------------
def test_fix_for_names_each_fix_once():
    problems = [Problem("ImagePull:tls", "a"), Problem("ImagePull:tls", "b"), Problem("FailedCreate:quota", "c")]
    assert rollout.fix_for(problems) == f"{rollout.FIX['ImagePull:tls']}; {rollout.FIX['FailedCreate:quota']}"
    assert rollout.fix_for([Problem("SomethingNew", "x")]) == "see the diagnostics below"
    assert rollout.fix_for([]) == "see the diagnostics below"


# --- is_transient ------------------------------------------------------------------------------
class _ApiError(Exception):
    def __init__(self, status):
        self.status = status


@pytest.mark.parametrize("exc, transient", [
    (_ApiError(500), True), (_ApiError(503), True), (_ApiError(429), True),
    (_ApiError(404), False), (_ApiError(409), False), (_ApiError(403), False),
    (ConnectionRefusedError(), True), (TimeoutError(), True), (ValueError("bad"), False),
])
def test_only_server_errors_and_no_answer_are_transient(exc, transient):
    assert kube.is_transient(exc) is transient


def test_a_finished_rollout_is_not_failed_by_events_of_a_replicaset_being_scaled_away():
    refused = event("FailedCreate", "pods is forbidden: exceeded quota: todo-quota", kind="ReplicaSet",
                    name="todo-backend-bad")
    state = rollout.rollout_state(ReleaseState("r", [deployment()], [pod(statuses=[RUNNING])], [refused]), NOW - 120, NOW)
    assert state.done and state.reasons == ["FailedCreate:quota"]


def test_old_pods_still_terminating_keep_the_rollout_open():
    old = pod("todo-backend-old-xyz", statuses=[RUNNING], deleting=True)
    old["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "todo-backend-old"}]
    state = rollout.rollout_state(ReleaseState("r", [deployment()], [old, pod(statuses=[RUNNING])]), NOW - 120, NOW)
    assert not state.done and "1 old pod(s) still terminating" in str(state)
