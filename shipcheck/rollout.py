"""Is a release's rollout done, or has it clearly failed? Pure judgement over what the
cluster shows: workloads and pods as plain dicts (the API's JSON form), events as `Event`.

A clear failure (CrashLoopBackOff, image pull errors, a refused pod, unschedulable pods,
readiness that keeps failing long after the container started) ends a wait at once, with
the root cause brought up from the pod's containers or the events, and a fix that matches
that cause. A slow start is never a failure: Kubernetes does not kill a pod for failing
readiness, so neither do we until the start has had its grace.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from typing import Iterable

SCHEDULING_GRACE_S = 15.0
READINESS_GRACE_S = 60.0  # default for timeouts_s.readiness_grace: a normal start on a busy 2-core node

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
    "ErrImageNeverPull": "load the image into the cluster's nodes (stage 4 does this for its providers), or correct "
                         "the image reference in the chart values",
    "InvalidImageName": "correct image.repository/image.tag in the chart values",
    "CreateContainerConfigError": "create the Secret/ConfigMap the pod references, with every key it names "
                                  "(`secrets:`/`config_maps:` in shipcheck.yaml)",
    "CreateContainerError": "read the event below: the container spec refers to something the node cannot provide",
    "RunContainerError": "read the event below: the entrypoint or a mount failed at start",
    "OOMKilled": "raise the memory limit (resources.limits.memory) or reduce the app's memory use",
    "FailedScheduling": "lower the requests (resources.requests), or add node capacity",
    "Unhealthy": "the readiness probe must answer 200 once the app has started: check the probe's path and port "
                 "against what the app serves (its log is below)",
    "PodFailed": "a hook or test pod failed: read its log below",
    # Pod admission refusals, by cause
    "FailedCreate:quota": "lower the release's requests/limits or replicas, or raise the namespace ResourceQuota",
    "FailedCreate:PodSecurity": "make the pod meet Pod Security \"restricted\" (podSecurityContext/securityContext "
                                "values: runAsNonRoot, allowPrivilegeEscalation false, capabilities drop ALL, "
                                "seccompProfile RuntimeDefault); the event lists what it refused",
    "FailedCreate:webhook": "an admission webhook refused the pod: read its message below and satisfy its policy",
    "FailedCreate:invalid": "the pod spec is invalid: the event names the field; fix it in the chart",
    "FailedCreate:other": "read the event below: the controller could not create the pod",
    # Image pulls, by cause
    "ImagePull:unauthorized": "the registry refused the credentials: check REGISTRY_USERNAME/REGISTRY_PASSWORD and "
                              "the image pull Secret",
    "ImagePull:not found": "the image or tag is not in the registry: push it (stage 1 does when a registry is "
                           "configured) or correct the reference",
    "ImagePull:tls": "the nodes do not trust the registry's certificate: install its CA on the nodes "
                     "(containerd certs.d/hosts.toml)",
    "ImagePull:unreachable": "the nodes cannot reach the registry host: check its address, port and that it runs",
    "ImagePull:no registry": "the cluster tried to pull an image that was meant to be loaded into its nodes: load it "
                             "(stage 4 loads images for kind/minikube/k3d/local clusters), or configure `registry:` for "
                             "a cluster on another machine",
}


@dataclass(frozen=True)
class Event:
    """One Kubernetes event, in one form whatever API it came from. Times are epoch seconds."""

    type: str
    reason: str
    message: str
    kind: str  # of the involved object
    name: str
    count: int = 1
    first_s: float | None = None
    last_s: float | None = None

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: {self.reason} x{self.count}: {self.message}"


@dataclass(frozen=True)
class Problem:
    reason: str  # e.g. CrashLoopBackOff, FailedCreate:quota, ImagePull:tls
    detail: str

    @property
    def fix(self) -> str:
        return FIX.get(self.reason, "see the diagnostics below")


@dataclass
class ReleaseState:
    """What the cluster shows of one release: its workloads (Deployments, StatefulSets, Jobs,
    each with "kind"), pods and events (this release's objects only)."""

    release: str
    workloads: list[dict] = field(default_factory=list)
    pods: list[dict] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<ReleaseState {self.release}: {len(self.workloads)} workloads, {len(self.pods)} pods, {len(self.events)} events>"


def timestamp(value: str | None) -> float | None:
    """An API timestamp ('2025-06-01T12:00:00Z') as epoch seconds (API times are UTC)."""
    if not value:
        return None
    return float(calendar.timegm(time.strptime(str(value)[:19], "%Y-%m-%dT%H:%M:%S")))


# --- pods ------------------------------------------------------------------------------------
def is_job_pod(pod: dict) -> bool:
    meta = pod.get("metadata") or {}
    return (any(o.get("kind") == "Job" for o in meta.get("ownerReferences") or [])
            or "helm.sh/hook" in (meta.get("annotations") or {}))


def is_test_pod(pod: dict) -> bool:
    """A `helm test` pod: judged by helm test, never part of a rollout (a failed one stays
    until the next test run replaces it)."""
    hook = ((pod.get("metadata") or {}).get("annotations") or {}).get("helm.sh/hook", "")
    return bool({"test", "test-success"} & {h.strip() for h in hook.split(",")})


def serving_pods(pods: Iterable[dict]) -> list[dict]:
    """The release's long-running pods: not terminating, not run by a Job (hooks, tests)."""
    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and not is_job_pod(p)]


def is_running_and_ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    return status.get("phase") == "Running" and bool(statuses) and all(c.get("ready") for c in statuses)


def container_limit(pod: dict, container: str, resource: str) -> str | None:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == container:
            return ((c.get("resources") or {}).get("limits") or {}).get(resource)
    return None


def pull_cause(text: str) -> str:
    """Why an image pull failed, from the kubelet's message."""
    lower = text.lower()
    if any(s in lower for s in ("x509", "certificate", "tls:")):
        return "tls"
    if any(s in lower for s in ("unauthorized", "authorization failed", "no basic auth", "pull access denied",
                                "authentication required", "denied:", "403 forbidden")):
        return "unauthorized"
    if any(s in lower for s in ("not found", "manifest unknown", "404")):
        return "not found"
    if any(s in lower for s in ("dial tcp", "connection refused", "no such host", "i/o timeout", "no route to host",
                                "network is unreachable", "connection reset", "timeout")):
        return "unreachable"
    return "unreachable"


def container_problems(pod: dict, pull_messages: str = "", pulls_expected: bool = True) -> list[Problem]:
    """The pod's containers in a fatal state. `pull_messages`: the pod's "Failed" event
    messages, which say why a pull failed; `pulls_expected`: images come from a registry."""
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
            key = reason
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                cause = pull_cause(f"{waiting.get('message', '')} {pull_messages}") if pulls_expected else "no registry"
                key = f"ImagePull:{cause}"
                detail += f" (cause: {cause})"
            problems.append(Problem(key, f"container {cs['name']}: {reason}: {detail}"))
        for term in (terminated, last):
            if term.get("reason") == "OOMKilled":
                limit = container_limit(pod, cs["name"], "memory")
                problems.append(Problem("OOMKilled", f"container {cs['name']}: OOMKilled (exit {term.get('exitCode')}), "
                                                     f"memory limit {limit or 'none'}"))
                break
    return problems


def started_s(pod: dict) -> float | None:
    """When the pod's app containers last started (the latest of them), epoch seconds."""
    times = [timestamp(((cs.get("state") or {}).get("running") or {}).get("startedAt"))
             for cs in (pod.get("status") or {}).get("containerStatuses") or []]
    times = [t for t in times if t is not None]
    return max(times) if times else None


# --- workloads -------------------------------------------------------------------------------
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


def workload_rolled_out(workload: dict) -> tuple[bool, str]:
    if workload.get("kind") == "StatefulSet":
        return statefulset_rolled_out(workload)
    return deployment_rolled_out(workload)


# --- events ----------------------------------------------------------------------------------
def failed_create_cause(message: str) -> str:
    lower = message.lower()
    if "exceeded quota" in lower:
        return "quota"
    if "podsecurity" in lower or "pod security" in lower:
        return "PodSecurity"
    if "admission webhook" in lower:
        return "webhook"
    if " is invalid" in lower or "invalid value" in lower:
        return "invalid"
    return "other"


def event_problem(event: Event, now_s: float) -> Problem | None:
    """A Warning event that is a clear failure on its own: a refused pod, or a pod that stays
    unschedulable past a grace. (Readiness failures are judged with the pod: rollout_state.)"""
    if event.type != "Warning":
        return None
    where = f"{event.kind} {event.name}"
    message = event.message.strip()
    if event.reason == "FailedCreate":
        cause = failed_create_cause(message)
        return Problem(f"FailedCreate:{cause}", f"{where}: FailedCreate ({cause}): {message}")
    if event.reason == "FailedScheduling":
        first = event.first_s or event.last_s
        if first and now_s - first >= SCHEDULING_GRACE_S:
            return Problem("FailedScheduling", f"{where}: FailedScheduling for {now_s - first:.0f} s: {message}")
    return None


def readiness_problem(pod: dict, events: list[Event], now_s: float, grace_s: float) -> Problem | None:
    """Readiness failing is fatal only when the app is clearly not starting: its container
    has been up longer than the grace a normal start needs and readiness still fails now."""
    name = pod["metadata"]["name"]
    failing = [e for e in events if e.kind == "Pod" and e.name == name and e.reason == "Unhealthy"
               and e.message.startswith("Readiness probe failed")]
    if not failing or is_running_and_ready(pod):
        return None
    latest = max(failing, key=lambda e: e.last_s or now_s)
    up_since = started_s(pod)
    if up_since is None or now_s - up_since < grace_s or now_s - (latest.last_s or now_s) > 30:
        return None
    return Problem("Unhealthy", f"pod {name}: readiness still failing {now_s - up_since:.0f} s after the container "
                                f"started (grace {grace_s:g} s, timeouts_s.readiness_grace), {latest.count} failures: "
                                f"{latest.message}")


# --- the whole rollout -----------------------------------------------------------------------
@dataclass
class RolloutState:
    done: bool
    summaries: list[str]
    fatal: list[Problem]

    def __str__(self) -> str:
        return "; ".join(self.summaries + [p.detail for p in self.fatal])

    @property
    def reasons(self) -> list[str]:
        return list(dict.fromkeys(p.reason for p in self.fatal))


def rollout_state(state: ReleaseState, since_s: float, now_s: float, *, readiness_grace_s: float = READINESS_GRACE_S,
                  pulls_expected: bool = False) -> RolloutState:
    """Judge a release's rollout from its workloads, pods and events since `since_s`."""
    summaries, done_all = [], True
    for w in state.workloads:
        if w.get("kind") == "Job":
            continue
        done, summary = workload_rolled_out(w)
        done_all &= done
        summaries.append(summary)
    # Old pods still terminating hold their requests on the node and in the quota: the next
    # release's surge pod must not be scheduled beside them, so the rollout is not over yet.
    terminating = [p for p in state.pods if p["metadata"].get("deletionTimestamp") and not is_job_pod(p)]
    if terminating:
        done_all = False
        summaries.append(f"{len(terminating)} old pod(s) still terminating")
    recent = [e for e in state.events if (e.last_s or now_s) >= since_s - 1]
    fatal: list[Problem] = []
    for pod in state.pods:
        created = timestamp(pod["metadata"].get("creationTimestamp")) or now_s
        if pod["metadata"].get("deletionTimestamp") or created < since_s - 1 or is_test_pod(pod):
            continue  # on its way out, or not made by this deploy (a left-over hook pod)
        name = pod["metadata"]["name"]
        pulls = " ".join(e.message for e in recent if e.kind == "Pod" and e.name == name and e.reason == "Failed")
        fatal += container_problems(pod, pulls, pulls_expected)
        if is_job_pod(pod):
            if (pod.get("status") or {}).get("phase") == "Failed":
                exits = [f"{cs['name']} exit {((cs.get('state') or {}).get('terminated') or {}).get('exitCode')}"
                         for cs in (pod["status"].get("containerStatuses") or [])]
                fatal.append(Problem("PodFailed", f"pod {name} failed ({', '.join(exits)})"))
            continue
        readiness = readiness_problem(pod, recent, now_s, readiness_grace_s)
        if readiness:
            fatal.append(readiness)
    pod_fatal = list(fatal)
    live = {p["metadata"]["name"] for p in state.pods if not p["metadata"].get("deletionTimestamp")}
    for event in recent:
        if event.kind == "Pod" and event.name not in live:
            continue
        problem = event_problem(event, now_s)
        if problem:
            fatal.append(problem)
    # A failing pod of this deploy blocks "done"; events do not: a ReplicaSet being scaled
    # away (a rollback) can still report FailedCreate after the rollout has finished.
    return RolloutState(done_all and not pod_fatal, summaries, list(dict.fromkeys(fatal)))


def fix_for(problems: Iterable[Problem | str]) -> str:
    fixes = [p.fix if isinstance(p, Problem) else FIX.get(p, "see the diagnostics below") for p in problems]
    return "; ".join(dict.fromkeys(fixes)) or "see the diagnostics below"
