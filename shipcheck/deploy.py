"""Deploy one Helm release and prove it rolled out, or fail fast and put the previous
release back.

helm runs in the background while the release's pods, workloads and events are watched:
a clear failure signal (kube.rollout_state) stops helm at once instead of waiting out its
timeout. After helm returns, the rollout is watched the same way. On failure the evidence
is collected first, then the release goes back to its previous revision (or a failed
first install is removed), and the previous revision is shown rolled out again.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import commands, diagnostics, kube, progress, releases
from .waiting import WaitResult, wait_until


@dataclass
class KubeApis:
    api_client: object
    core: object
    apps: object

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None) -> "KubeApis":
        from kubernetes import client, config as kconfig

        api = kconfig.new_client_from_config(config_file=kubeconfig, context=context)
        return cls(api, client.CoreV1Api(api), client.AppsV1Api(api))


@dataclass
class Outcome:
    release: str
    ok: bool
    skipped: bool = False  # nothing changed: no upgrade, no rollout
    revision: int | None = None
    previous_revision: int | None = None
    message: str = ""
    detected_after_s: float | None = None  # from the start of helm to the failure signal
    ready_after_s: float | None = None  # from the start of helm to rolled out
    recovery: str = ""  # what was done to put the previous release back
    reasons: list[str] = field(default_factory=list)  # fatal signals seen (CrashLoopBackOff, FailedCreate, ...)
    evidence: diagnostics.Evidence = field(default_factory=list, repr=False)


def selector(release: str) -> str:
    return f"app.kubernetes.io/instance={release}"


def release_objects(apis: KubeApis, namespace: str, release: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(workloads, pods, events) of a release, as plain dicts."""
    sel = selector(release)
    plain = lambda obj: kube.plain(apis.api_client, obj)  # noqa: E731
    workloads = []
    for kind, items in (("Deployment", apis.apps.list_namespaced_deployment(namespace, label_selector=sel).items),
                        ("StatefulSet", apis.apps.list_namespaced_stateful_set(namespace, label_selector=sel).items)):
        for item in items:
            workloads.append({**plain(item), "kind": kind})
    pods = [plain(p) for p in apis.core.list_namespaced_pod(namespace, label_selector=sel).items]
    names = tuple(w["metadata"]["name"] for w in workloads) + (release,)
    events = [plain(e) for e in apis.core.list_namespaced_event(namespace).items
              if (e.involved_object.name or "").startswith(names)]
    return workloads, pods, events


def serving_pods(pods: list[dict]) -> list[dict]:
    """The release's long-running pods: not terminating, not run by a Job (hooks, tests)."""
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and not any(o.get("kind") == "Job" for o in p["metadata"].get("ownerReferences") or [])
            and "helm.sh/hook" not in (p["metadata"].get("annotations") or {})]


def probe(apis: KubeApis, namespace: str, release: str, since_s: float):
    return lambda: kube.rollout_state(*release_objects(apis, namespace, release), since_s=since_s, now_s=time.time())


def watch_rollout(apis: KubeApis, namespace: str, release: str, since_s: float, timeout_s: float) -> WaitResult:
    return wait_until(f"release {release} to roll out", probe(apis, namespace, release, since_s),
                      done=lambda s: s.done, fatal=lambda s: "; ".join(d for _, d in s.fatal) or None,
                      timeout_s=timeout_s, interval_s=1.0, describe=str,
                      transient=(ConnectionError, OSError))


def run_helm_watched(argv: list[str], apis: KubeApis, namespace: str, release: str, since_s: float,
                     timeout_s: float) -> tuple[int | None, str, kube.RolloutState | None]:
    """Run helm; stop it as soon as the release shows a fatal signal (a hook Job that quota
    refuses would otherwise hold helm for its whole timeout). Returns (exit code or None if
    stopped, output, the fatal state if stopped)."""
    check = probe(apis, namespace, release, since_s)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        time.sleep(1.0)
        try:
            state = check()
        except Exception:
            continue
        if state.fatal or time.monotonic() > deadline:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            return None, commands.scrub(proc.stdout.read()), state
    return proc.returncode, commands.scrub(proc.stdout.read()), None


def recover_stuck(helm: releases.Helm, release: str, timeout_s: float) -> str:
    """Finish what an interrupted run left pending; returns what was done ('' if nothing)."""
    history = helm.history(release)
    action = releases.recovery_action(history)
    if action is None:
        return ""
    verb, revision = action
    stuck = f"{history[-1]['status']} at revision {history[-1]['revision']}"
    progress.say(f"release {release} was left {stuck} by an interrupted run: {verb} {revision or ''}".rstrip())
    result = helm.rollback(release, revision, timeout_s) if verb == "rollback" else helm.uninstall(release, timeout_s)
    if not result.ok:
        raise RuntimeError(f"release {release} is {stuck} and `helm {verb}` failed: {result.tail()}. "
                           f"Fix by hand: helm -n {helm.namespace} {verb} {release} {revision or ''}")
    return f"recovered from {stuck} by {verb}{f' to revision {revision}' if revision else ''}"


def deploy_release(helm: releases.Helm, apis: KubeApis, kubectl: list[str], release: str, chart: Path,
                   values: dict, extra_values_files: tuple[Path, ...], timeout_s: float) -> Outcome:
    namespace = helm.namespace
    recovered = recover_stuck(helm, release, timeout_s)
    history = helm.history(release)
    previous = releases.last_deployed_revision(history)
    current = history[-1] if history else None

    desired = releases.without_hooks(helm.template(release, chart, values, extra_values_files))
    if (current and current["status"] == "deployed"
            and helm.values(release) == releases.merged_values(extra_values_files, values)
            and releases.manifests_equal(helm.manifest(release), desired)):
        progress.say(f"release {release} revision {current['revision']} is up to date: no upgrade")
        return Outcome(release, True, skipped=True, revision=int(current["revision"]), previous_revision=previous,
                       recovery=recovered)

    start, since = time.monotonic(), time.time()
    progress.say(f"helm upgrade --install {release} ({'upgrade from revision ' + str(previous) if previous else 'first install'})")
    with releases.values_file(release, values) as path:
        code, output, fatal_state = run_helm_watched(helm.upgrade_argv(release, chart, path, timeout_s, extra_values_files),
                                                     apis, namespace, release, since, timeout_s)
    failure, detected, reasons = "", None, []
    if code is None:
        reasons = list(dict.fromkeys(r for r, _ in fatal_state.fatal)) if fatal_state else []
        detected = time.monotonic() - start
        failure = f"stopped helm after {detected:.0f} s: {fatal_state or 'timed out'}"
    elif code != 0:
        detected = time.monotonic() - start
        failure = f"helm upgrade failed (exit {code}) after {detected:.0f} s: {output.strip()[-1500:]}"
    else:
        waited = watch_rollout(apis, namespace, release, since, max(1.0, timeout_s - (time.monotonic() - start)))
        if not waited:
            detected = time.monotonic() - start
            failure = f"{waited.reason} ({waited.state})"
            reasons = list(dict.fromkeys(r for r, _ in getattr(waited.state, "fatal", [])))
    if not failure:
        revision = releases.last_deployed_revision(helm.history(release))
        ready = time.monotonic() - start
        progress.say(f"release {release} revision {revision} rolled out in {ready:.1f} s")
        return Outcome(release, True, revision=revision, previous_revision=previous, ready_after_s=ready,
                       recovery=recovered)

    progress.say(f"release {release} FAILED: {failure[:300]}")
    evidence = diagnostics.collect(kubectl, helm, namespace, [release], apis.core)
    if code is None:  # helm was stopped: its hook Job would keep retrying
        commands.run([*kubectl, "delete", "jobs", "--namespace", namespace, "-l", selector(release),
                      "--ignore-not-found", "--wait=false"], check=False, timeout_s=60)
    recovery = restore_previous(helm, apis, release, previous, timeout_s)
    return Outcome(release, False, previous_revision=previous, message=failure, detected_after_s=detected,
                   recovery="; ".join(filter(None, [recovered, recovery])), evidence=evidence, reasons=reasons)


def restore_previous(helm: releases.Helm, apis: KubeApis, release: str, previous: int | None, timeout_s: float) -> str:
    """Roll back to the previous revision and show it rolled out again; remove a failed
    first install. Returns a sentence saying what happened."""
    # A stopped helm may have left the release pending; that is what recovery is for.
    if previous is None:
        result = helm.uninstall(release, timeout_s)
        return "failed first install uninstalled" if result.ok else f"uninstall failed: {result.tail()}"
    since = time.time()
    result = helm.rollback(release, previous, timeout_s)
    if not result.ok:
        return f"rollback to revision {previous} FAILED: {result.tail()}"
    waited = watch_rollout(apis, helm.namespace, release, since, timeout_s)
    state = "rolled out and serving" if waited else f"NOT rolled out: {waited.reason} ({waited.state})"
    return f"rolled back to revision {previous}: {state}"


# --- the whole deployment ---------------------------------------------------------------------
def apply_manifests(kubectl: list[str], docs: list[dict]) -> None:
    """Server-side apply (idempotent; our field manager owns what it sets)."""
    commands.run([*kubectl, "apply", "--server-side", "--force-conflicts", "--field-manager", "shipcheck", "-f", "-"],
                 input_text=yaml.safe_dump_all(docs), timeout_s=60, what="applying namespace resources")


@dataclass
class Deployment:
    profile: str
    components: list  # the Components deployed, in order
    values: dict  # component name -> (values files, values dict)
    fit_problems: list[str]
    outcomes: dict[str, Outcome]
    started_at: float  # wall clock, for "events since the deploy"
    external_database: bool

    def outcome(self, name: str) -> Outcome | None:
        return self.outcomes.get(name)


def pod_annotations(image_id: str, secret_digest: str | None) -> dict[str, str]:
    """A rebuilt image under the same tag, or a changed Secret, must roll the pods; an
    unchanged one must not. The annotations carry exactly that identity."""
    notes = {"shipcheck.io/image-id": image_id}
    if secret_digest:
        notes["shipcheck.io/secret-digest"] = secret_digest
    return notes
