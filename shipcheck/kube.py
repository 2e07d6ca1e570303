"""Kubernetes facts for the deploy and health stages, through the official client.

Pure predicates over plain dicts (`api_client.sanitize_for_serialization` output) decide
whether a rollout is done or has clearly failed; thin functions read the cluster. A
clear failure (CrashLoopBackOff, image pull errors, quota FailedCreate, unschedulable
pods, readiness failing past its threshold) ends a wait at once, with the root cause
brought up from the pod's containers or the ReplicaSet's events.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Any

FATAL_WAITING = {
    "CrashLoopBackOff": "the container keeps crashing",
    "ImagePullBackOff": "the image cannot be pulled",
    "ErrImagePull": "the image cannot be pulled",
    "ErrImageNeverPull": "the image is not on the node and pullPolicy forbids pulling",
    "InvalidImageName": "the image name is invalid",
    "CreateContainerConfigError": "the container's configuration is invalid (missing Secret or ConfigMap key?)",
    "CreateContainerError": "the container could not be created",
    "RunContainerError": "the container could not be started",
}
FIX = {
    "CrashLoopBackOff": "read the container log below; fix the crash or its configuration",
    "ImagePullBackOff": "load the image into the cluster (stage 4 does this) and use pullPolicy IfNotPresent",
    "ErrImagePull": "load the image into the cluster (stage 4 does this) and use pullPolicy IfNotPresent",
    "ErrImageNeverPull": "load the image into the cluster, or correct the tag",
    "CreateContainerConfigError": "create the Secret/ConfigMap the pod references, with every key it names",
    "OOMKilled": "raise resources.limits.memory or reduce the app's memory use",
    "FailedCreate": "lower the release's requests/limits or replicas, or raise the namespace ResourceQuota",
    "FailedScheduling": "lower requests, or add node capacity",
    "Unhealthy": "the readiness/liveness path must answer 200; check the probe path and the app log",
    "PodFailed": "a hook pod (migrations) failed: read its log below; check DATABASE_URL and that the database is up",
}
# Events that are not failures on their own (probes fail while an app starts).
SCHEDULING_GRACE_S = 15.0


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the API server answering 5xx or 429, or not answering yet (it is
    starting, or restarting). A 4xx is an answer: retrying cannot change it."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status > 0:
        return status >= 500 or status == 429
    return isinstance(exc, (ConnectionError, TimeoutError, OSError)) or type(exc).__name__ in (
        "MaxRetryError", "ProtocolError", "NewConnectionError")


def plain(api_client, obj) -> Any:
    """A client model as plain dicts/lists with camelCase keys, as kubectl shows it."""
    return api_client.sanitize_for_serialization(obj)


# --- pure predicates -------------------------------------------------------------------------
def container_problems(pod: dict) -> list[tuple[str, str]]:
    """(reason, detail) for each container of the pod in a fatal state."""
    problems = []
    status = pod.get("status") or {}
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for cs in statuses:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        terminated = state.get("terminated") or {}
        reason = waiting.get("reason")
        if reason in FATAL_WAITING:
            detail = waiting.get("message") or FATAL_WAITING[reason]
            if last:
                detail += f"; last exit code {last.get('exitCode')} ({last.get('reason')})"
            problems.append((reason, f"container {cs['name']}: {reason}: {detail}"))
        for term in (terminated, last):
            if term.get("reason") == "OOMKilled":
                problems.append(("OOMKilled", f"container {cs['name']}: OOMKilled (exit {term.get('exitCode')})"))
                break
    return problems


def deployment_rolled_out(dep: dict) -> tuple[bool, str]:
    """Done when the controller saw the latest spec and every replica is updated and available."""
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    want = spec.get("replicas", 1)
    gen, observed = dep["metadata"].get("generation", 0), status.get("observedGeneration", 0)
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    total, ready = status.get("replicas", 0), status.get("readyReplicas", 0)
    summary = (f"deployment {dep['metadata']['name']}: updated {updated}/{want}, available {available}/{want}, "
               f"ready {ready}/{want}, total {total}, observedGeneration {observed}/{gen}")
    done = observed >= gen and updated == want and available == want and total == want and ready == want
    return done, summary


def statefulset_rolled_out(sts: dict) -> tuple[bool, str]:
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    want = spec.get("replicas", 1)
    ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
    current_rev, update_rev = status.get("currentRevision"), status.get("updateRevision")
    gen, observed = sts["metadata"].get("generation", 0), status.get("observedGeneration", 0)
    summary = f"statefulset {sts['metadata']['name']}: ready {ready}/{want}, updated {updated}/{want}"
    done = observed >= gen and ready == want and updated == want and current_rev == update_rev
    return done, summary


def event_problem(event: dict, now_s: float, readiness_thresholds: dict[str, int]) -> tuple[str, str] | None:
    """A Warning event that is a clear failure: quota refusals, persistent unschedulability,
    readiness failing more times than the probe's failureThreshold."""
    if event.get("type") != "Warning":
        return None
    reason = event.get("reason")
    obj = event.get("involvedObject") or {}
    what = f"{obj.get('kind')} {obj.get('name')}"
    message = (event.get("message") or "").strip()
    if reason == "FailedCreate" and ("exceeded quota" in message or "forbidden" in message):
        return "FailedCreate", f"{what}: FailedCreate: {message}"
    if reason == "FailedScheduling":
        first = _event_time(event, "firstTimestamp")
        if first and now_s - first >= SCHEDULING_GRACE_S:
            return "FailedScheduling", f"{what}: FailedScheduling for {now_s - first:.0f} s: {message}"
    if reason == "Unhealthy" and message.startswith("Readiness probe failed"):
        threshold = readiness_thresholds.get(obj.get("name", ""), 3)
        if (event.get("count") or 1) >= threshold:  # when the kubelet itself marks the pod unready
            return "Unhealthy", f"{what}: readiness failed {event.get('count')} times (failureThreshold {threshold}): {message}"
    return None


def _event_time(event: dict, key: str) -> float | None:
    value = event.get(key) or event.get("eventTime")
    if not value:
        return None
    return float(calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")))  # API times are UTC


def readiness_thresholds(pods: list[dict]) -> dict[str, int]:
    """Per pod, the smallest readiness failureThreshold of its containers (default 3)."""
    thresholds = {}
    for pod in pods:
        values = [(c.get("readinessProbe") or {}).get("failureThreshold", 3)
                  for c in pod["spec"]["containers"] if c.get("readinessProbe")]
        thresholds[pod["metadata"]["name"]] = min(values) if values else 3
    return thresholds


@dataclass
class RolloutState:
    done: bool
    summaries: list[str]
    fatal: list[tuple[str, str]]  # (reason, detail)

    def __str__(self) -> str:
        return "; ".join(self.summaries + [d for _, d in self.fatal])


def rollout_state(workloads: list[dict], pods: list[dict], events: list[dict], since_s: float,
                  now_s: float) -> RolloutState:
    """Pure judgement of a release's rollout from its workloads, pods and recent events."""
    summaries, done_all = [], True
    for w in workloads:
        done, summary = (deployment_rolled_out(w) if w.get("kind") == "Deployment" else statefulset_rolled_out(w))
        done_all &= done
        summaries.append(summary)
    # Old pods still terminating hold their requests on the node and in the quota: the next
    # release's surge pod must not be scheduled beside them, so the rollout is not over yet.
    terminating = [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp")
                   and any(o.get("kind") in ("ReplicaSet", "StatefulSet") for o in p["metadata"].get("ownerReferences") or [])]
    if terminating:
        done_all = False
        summaries.append(f"{len(terminating)} old pod(s) still terminating")
    fatal = []
    for pod in pods:
        created = _event_time(pod["metadata"], "creationTimestamp") or now_s
        if pod["metadata"].get("deletionTimestamp") or created < since_s - 1:
            continue  # old pods on their way out, or not made by this deploy (a left-over hook pod)
        fatal += container_problems(pod)
        if (pod.get("status") or {}).get("phase") == "Failed":
            # A hook Job's pod of this deploy: retrying will not help.
            exits = [f"{cs['name']} exit {((cs.get('state') or {}).get('terminated') or {}).get('exitCode')}"
                     for cs in (pod["status"].get("containerStatuses") or [])]
            fatal.append(("PodFailed", f"pod {pod['metadata']['name']} failed ({', '.join(exits)})"))
    pod_fatal = list(fatal)
    thresholds = readiness_thresholds(pods)
    live_pods = {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}
    for event in events:
        seen = _event_time(event, "lastTimestamp") or now_s
        if seen < since_s - 1:
            continue  # from before this deploy
        obj_name = (event.get("involvedObject") or {}).get("name", "")
        if (event.get("involvedObject") or {}).get("kind") == "Pod" and obj_name not in live_pods:
            continue
        problem = event_problem(event, now_s, thresholds)
        if problem:
            fatal.append(problem)
    # A failing pod of this deploy blocks "done"; events do not: a ReplicaSet being scaled
    # away (a rollback) can still report FailedCreate after the rollout has finished.
    return RolloutState(done_all and not pod_fatal, summaries, list(dict.fromkeys(fatal)))


def fix_for(reasons: list[str]) -> str:
    return "; ".join(dict.fromkeys(FIX.get(r, "see the diagnostics") for r in reasons)) or "see the diagnostics"
