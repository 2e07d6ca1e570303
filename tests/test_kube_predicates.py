"""Rollout judgement as pure predicates over plain dicts, as the API serialises them (kube.py)."""

import calendar
import time

import pytest

from shipcheck import kube

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
    assert kube.container_problems(pod(statuses=[RUNNING])) == []
    assert kube.container_problems(pod(statuses=[waiting("api", "ContainerCreating")])) == []
    assert kube.container_problems({"metadata": {"name": "p"}}) == []


def test_crashloop_brings_up_the_last_exit():
    cs = waiting("api", "CrashLoopBackOff", "back-off 40s restarting failed container",
                 last={"exitCode": 1, "reason": "Error"})
    assert kube.container_problems(pod(statuses=[cs])) == [
        ("CrashLoopBackOff", "container api: CrashLoopBackOff: back-off 40s restarting failed container; "
                             "last exit code 1 (Error)")]


def test_a_waiting_reason_without_message_is_explained():
    assert kube.container_problems(pod(statuses=[waiting("api", "ErrImageNeverPull")])) == [
        ("ErrImageNeverPull", "container api: ErrImageNeverPull: the image is not on the node and pullPolicy "
                              "forbids pulling")]


@pytest.mark.parametrize("reason", sorted(kube.FATAL_WAITING))
def test_every_fatal_waiting_reason_is_a_problem(reason):
    [(found, detail)] = kube.container_problems(pod(statuses=[waiting("api", reason, "details")]))
    assert found == reason and detail == f"container api: {reason}: details"


def test_init_containers_are_judged_too():
    cs = waiting("migrate", "CreateContainerConfigError", 'secret "todo-secrets" not found')
    assert kube.container_problems(pod(init=[cs], statuses=[waiting("api", "PodInitializing")])) == [
        ("CreateContainerConfigError", 'container migrate: CreateContainerConfigError: secret "todo-secrets" not found')]


def test_oomkilled_now_or_last_time():
    now = {"name": "api", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}
    before = waiting("api", "CrashLoopBackOff", "back-off", last={"reason": "OOMKilled", "exitCode": 137})
    assert kube.container_problems(pod(statuses=[now])) == [("OOMKilled", "container api: OOMKilled (exit 137)")]
    assert [r for r, _ in kube.container_problems(pod(statuses=[before]))] == ["CrashLoopBackOff", "OOMKilled"]


# --- workloads ---------------------------------------------------------------------------------
def deployment(want=2, gen=2, observed=2, updated=2, available=2, total=2, ready=2):
    status = {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
              "replicas": total, "readyReplicas": ready}
    return {"kind": "Deployment", "metadata": {"name": "todo-backend", "generation": gen},
            "spec": {"replicas": want}, "status": {k: v for k, v in status.items() if v}}


def test_a_rolled_out_deployment_is_done():
    done, summary = kube.deployment_rolled_out(deployment())
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
    assert kube.deployment_rolled_out(deployment(**change))[0] is False


def test_a_deployment_without_status_is_not_done_and_defaults_to_one_replica():
    done, summary = kube.deployment_rolled_out({"metadata": {"name": "web", "generation": 1}, "spec": {}})
    assert not done and "updated 0/1" in summary


def test_a_scaled_to_zero_deployment_is_done():
    assert kube.deployment_rolled_out(deployment(want=0, updated=0, available=0, total=0, ready=0))[0]


def statefulset(want=1, ready=1, updated=1, current="r1", update="r1", gen=1, observed=1):
    return {"kind": "StatefulSet", "metadata": {"name": "todo-postgres", "generation": gen}, "spec": {"replicas": want},
            "status": {"readyReplicas": ready, "updatedReplicas": updated, "currentRevision": current,
                       "updateRevision": update, "observedGeneration": observed}}


def test_statefulset_rollout():
    assert kube.statefulset_rolled_out(statefulset()) == (True, "statefulset todo-postgres: ready 1/1, updated 1/1")
    assert not kube.statefulset_rolled_out(statefulset(current="r1", update="r2"))[0]
    assert not kube.statefulset_rolled_out(statefulset(ready=0))[0]
    assert not kube.statefulset_rolled_out(statefulset(gen=2))[0]


# --- events ---------------------------------------------------------------------------------------
def event(reason, message, kind="Pod", name="todo-backend-7d9c-abcde", type_="Warning", count=1,
          first=NOW - 60, last=NOW - 1):
    return {"type": type_, "reason": reason, "message": message, "count": count,
            "involvedObject": {"kind": kind, "name": name}, "firstTimestamp": iso(first), "lastTimestamp": iso(last)}


QUOTA = ('pods "todo-backend-7d9c-xyz" is forbidden: exceeded quota: todo-quota, requested: requests.cpu=500m, '
         'used: requests.cpu=3, limited: requests.cpu=3')


def test_a_quota_refusal_is_fatal():
    assert kube.event_problem(event("FailedCreate", QUOTA, kind="ReplicaSet", name="todo-backend-7d9c"), NOW, {}) == (
        "FailedCreate", f"ReplicaSet todo-backend-7d9c: FailedCreate: {QUOTA}")


def test_normal_events_and_other_warnings_are_not_fatal():
    assert kube.event_problem(event("Scheduled", "assigned", type_="Normal"), NOW, {}) is None
    assert kube.event_problem(event("FailedCreate", "some transient error"), NOW, {}) is None
    assert kube.event_problem(event("BackOff", "Back-off pulling image"), NOW, {}) is None
    assert kube.event_problem(event("Unhealthy", "Liveness probe failed: 503", count=9), NOW, {}) is None


def test_unschedulable_is_fatal_only_after_the_grace():
    message = "0/1 nodes are available: 1 Insufficient cpu."
    assert kube.event_problem(event("FailedScheduling", message, first=NOW - 5), NOW, {}) is None
    assert kube.event_problem(event("FailedScheduling", message, first=NOW - 20), NOW, {}) == (
        "FailedScheduling", f"Pod todo-backend-7d9c-abcde: FailedScheduling for 20 s: {message}")


def test_an_unschedulable_event_with_only_event_time_is_judged():
    e = event("FailedScheduling", "0/1 nodes are available")
    del e["firstTimestamp"]
    e["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.123456Z", time.gmtime(NOW - 30))
    assert kube.event_problem(e, NOW, {})[0] == "FailedScheduling"


def test_readiness_failing_at_its_threshold_is_fatal():
    """At failureThreshold failures the kubelet marks the pod unready: that is the signal."""
    message = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    name = "todo-backend-7d9c-abcde"
    assert kube.event_problem(event("Unhealthy", message, count=2), NOW, {name: 3}) is None
    assert kube.event_problem(event("Unhealthy", message, count=3), NOW, {name: 3}) == (
        "Unhealthy", f"Pod {name}: readiness failed 3 times (failureThreshold 3): {message}")
    assert kube.event_problem(event("Unhealthy", message, count=4), NOW, {name: 10}) is None
    assert kube.event_problem(event("Unhealthy", message, count=4), NOW, {})[0] == "Unhealthy"  # default 3


def test_readiness_thresholds_take_the_smallest_per_pod():
    pods = [pod("a", probes=(5, 2)), pod("b", probes=(None,)), pod("c", probes=(7,))]
    assert kube.readiness_thresholds(pods) == {"a": 2, "b": 3, "c": 7}


# --- rollout_state ------------------------------------------------------------------------------------
def test_a_clean_rollout_is_done():
    state = kube.rollout_state([deployment(), statefulset()], [pod(statuses=[RUNNING])], [], NOW - 120, NOW)
    assert state.done and state.fatal == []
    assert str(state) == ("deployment todo-backend: updated 2/2, available 2/2, ready 2/2, total 2, "
                          "observedGeneration 2/2; statefulset todo-postgres: ready 1/1, updated 1/1")


def test_a_fatal_pod_fails_the_rollout_even_when_counts_look_done():
    crashing = pod(statuses=[waiting("api", "CrashLoopBackOff", "back-off")])
    state = kube.rollout_state([deployment()], [crashing], [], NOW - 120, NOW)
    assert not state.done and [r for r, _ in state.fatal] == ["CrashLoopBackOff"]
    assert str(state).endswith("container api: CrashLoopBackOff: back-off")


def test_pods_on_their_way_out_and_their_events_are_ignored():
    old = pod("todo-backend-old-xyz", statuses=[waiting("api", "CrashLoopBackOff")], deleting=True)
    old_event = event("Unhealthy", "Readiness probe failed: 503", name="todo-backend-old-xyz", count=50)
    gone_event = event("Unhealthy", "Readiness probe failed: 503", name="todo-backend-gone-abc", count=50)
    state = kube.rollout_state([deployment()], [old, pod(statuses=[RUNNING])], [old_event, gone_event], NOW - 120, NOW)
    assert state.done and state.fatal == []


def test_events_from_before_this_deploy_are_ignored():
    stale = event("FailedCreate", QUOTA, kind="ReplicaSet", name="todo-backend-1", first=NOW - 900, last=NOW - 600)
    fresh = event("FailedCreate", QUOTA, kind="ReplicaSet", name="todo-backend-2")
    state = kube.rollout_state([deployment(updated=1)], [], [stale, fresh, dict(fresh)], NOW - 120, NOW)
    assert not state.done
    assert state.fatal == [("FailedCreate", f"ReplicaSet todo-backend-2: FailedCreate: {QUOTA}")]  # once


def test_an_event_without_timestamps_counts_as_now():
    e = event("FailedCreate", QUOTA, kind="ReplicaSet")
    del e["firstTimestamp"], e["lastTimestamp"]
    assert kube.rollout_state([], [], [e], NOW - 10, NOW).fatal[0][0] == "FailedCreate"


# --- fixes ---------------------------------------------------------------------------------------------
def test_fix_for_names_each_fix_once():
    assert kube.fix_for(["ImagePullBackOff", "ErrImagePull", "FailedCreate"]) == (
        f"{kube.FIX['ImagePullBackOff']}; {kube.FIX['FailedCreate']}")
    assert kube.fix_for(["SomethingNew"]) == "see the diagnostics"
    assert kube.fix_for([]) == "see the diagnostics"


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
    state = kube.rollout_state([deployment()], [pod(statuses=[RUNNING])], [refused], NOW - 120, NOW)
    assert state.done and [r for r, _ in state.fatal] == ["FailedCreate"]


def test_old_pods_still_terminating_keep_the_rollout_open():
    old = pod("todo-backend-old-xyz", statuses=[RUNNING], deleting=True)
    old["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "todo-backend-old"}]
    state = kube.rollout_state([deployment()], [old, pod(statuses=[RUNNING])], [], NOW - 120, NOW)
    assert not state.done and "1 old pod(s) still terminating" in str(state)
