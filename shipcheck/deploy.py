"""Deploy one release plan and prove it rolled out, or fail fast and put the previous
release back.

Before touching a release: a helm that a killed run left running is waited on (or
stopped), a release left pending or failed is recovered to its last good revision, and a
rollout still in progress is waited on. A release is "up to date" only if its last revision
is deployed, what it holds (manifests and hooks) equals the plan's render, and its
workloads are rolled out.

helm runs in the background while the release's pods, workloads and events are watched:
a clear failure (rollout.rollout_state) stops helm at once instead of waiting out its
timeout. On failure the evidence is collected first, then the release goes back to its
previous revision (or a failed first install is removed), and the previous revision is
shown rolled out again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from . import commands, diagnostics, helm as helm_mod, kube, progress, rollout
from .plan import ReleasePlan
from .waiting import WaitResult, wait_until


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
    recovery: str = ""  # what was done to put the previous release back, or to settle it first
    problems: list[rollout.Problem] = field(default_factory=list)
    evidence: diagnostics.Evidence = field(default_factory=list, repr=False)

    @property
    def fix(self) -> str:
        return rollout.fix_for(self.problems)


@dataclass
class Target:
    """Where and how releases are deployed."""

    helm: helm_mod.Helm
    apis: kube.KubeApis
    kubectl: list[str]
    timeout_s: float
    readiness_grace_s: float = rollout.READINESS_GRACE_S
    pulls_expected: bool = False  # images come from a registry (else they were loaded into the nodes)

    @property
    def namespace(self) -> str:
        return self.helm.namespace


def state_of(target: Target, release: str, since_s: float) -> rollout.RolloutState:
    return rollout.rollout_state(kube.read_release(target.apis, target.namespace, release), since_s, time.time(),
                                 readiness_grace_s=target.readiness_grace_s, pulls_expected=target.pulls_expected)


def watch_rollout(target: Target, release: str, since_s: float, timeout_s: float) -> WaitResult:
    return wait_until(f"release {release} to roll out", lambda: state_of(target, release, since_s),
                      done=lambda s: s.done, fatal=lambda s: "; ".join(p.detail for p in s.fatal) or None,
                      timeout_s=timeout_s, interval_s=1.0, describe=str, transient=kube.is_transient)


# --- settle a release before touching it -----------------------------------------------------
def stray_helm(namespace: str, release: str) -> list[tuple[int, list[str]]]:
    """helm processes changing this release that this process did not start (a killed run's)."""
    def changes_it(argv: list[str]) -> bool:
        return (os.path.basename(argv[0]).startswith("helm") and release in argv
                and any(verb in argv for verb in ("upgrade", "install", "rollback", "uninstall"))
                and namespace in argv)
    return commands.running_commands(changes_it)


def settle(target: Target, release: str) -> tuple[str, list[dict]]:
    """Make the release safe to change; returns what was done ('' if nothing) and its history."""
    done = []
    strays = stray_helm(target.namespace, release)
    if strays:
        pids = [pid for pid, _ in strays]
        progress.say(f"release {release}: helm from an earlier run is still running (pid {pids}); waiting for it")
        gone = wait_until(f"the earlier helm on {release} to finish", lambda: stray_helm(target.namespace, release),
                          done=lambda left: not left, timeout_s=target.timeout_s, interval_s=1.0)
        if not gone:
            for pid in pids:
                try:
                    os.kill(pid, 15)
                except ProcessLookupError:
                    pass
            time.sleep(2)
        done.append(f"waited for helm pid {pids} of an earlier run" + ("" if gone else " and stopped it"))
    history = target.helm.history(release)
    action = helm_mod.recovery_action(history)
    if action:
        verb, revision = action
        stuck = f"{history[-1]['status']} at revision {history[-1]['revision']}"
        progress.say(f"release {release} was left {stuck}: {verb} {revision or ''}".rstrip())
        since = time.time()
        result = (target.helm.rollback(release, revision, target.timeout_s) if verb == "rollback"
                  else target.helm.uninstall(release, target.timeout_s))
        if not result.ok:
            raise RuntimeError(f"release {release} is {stuck} and `helm {verb}` failed: {result.tail()}. Fix by hand: "
                               f"helm -n {target.namespace} {verb} {release} {revision or ''}")
        if verb == "rollback":
            watch_rollout(target, release, since, target.timeout_s)
        done.append(f"recovered from {stuck} by {verb}{f' to revision {revision}' if revision else ''}")
    # A rollout still running (a killed run's upgrade that helm finished) is waited on, so
    # the next change never overlaps it.
    if history and not action:
        state = state_of(target, release, since_s=0)
        if not state.done and not state.fatal:
            progress.say(f"release {release}: a rollout is still in progress ({state}); waiting for it")
            waited = watch_rollout(target, release, time.time(), target.timeout_s)
            done.append(f"waited {waited.elapsed_s:.0f} s for a rollout in progress")
    if action:
        history = target.helm.history(release)
    return "; ".join(done), history


def up_to_date(target: Target, plan: ReleasePlan, history: list[dict] | None = None) -> tuple[bool, str]:
    """(True, revision) when the release holds exactly the plan's render, deployed and rolled out.
    `history`: the release's helm history when the caller has just read it."""
    if history is None:
        history = target.helm.history(plan.release)
    if not history or history[-1]["status"] != "deployed":
        return False, "no deployed revision"
    differences = helm_mod.manifest_differences(target.helm.manifest(plan.release), plan.manifests)
    if differences:
        return False, "; ".join(differences[:5])
    state = state_of(target, plan.release, since_s=0)
    if not state.done:
        return False, f"not rolled out ({state})"
    return True, str(history[-1]["revision"])


# --- deploy ---------------------------------------------------------------------------------
def deploy(target: Target, plan: ReleasePlan, on_change: Callable[[], None] | None = None) -> Outcome:
    """Install or upgrade the release to the plan; `on_change` runs when helm is about to
    change it (the zero-downtime request loop starts there)."""
    release = plan.release
    settled, history = settle(target, release)
    previous = helm_mod.last_deployed_revision(history)
    current, why = up_to_date(target, plan, history)
    if current:
        progress.say(f"release {release} revision {why} is up to date: no upgrade")
        return Outcome(release, True, skipped=True, revision=int(why), previous_revision=previous, recovery=settled)
    if on_change:
        on_change()
    start, since = time.monotonic(), time.time()
    progress.say(f"helm upgrade --install {release} "
                 f"({'upgrade from revision ' + str(previous) if previous else 'first install'}: {why})")
    process = target.helm.start_upgrade(release, plan.chart, plan.values_files, plan.values, target.timeout_s)
    failure, problems = "", []
    try:
        waited = wait_until(f"helm upgrade {release}", lambda: (process.running, state_of(target, release, since)),
                            done=lambda s: not s[0], fatal=lambda s: "; ".join(p.detail for p in s[1].fatal) or None,
                            timeout_s=target.timeout_s, interval_s=1.0, describe=lambda s: str(s[1]),
                            transient=kube.is_transient)
    finally:
        if process.running:  # a fatal signal, a timeout, or an error from the API: helm must not go on alone
            process.stop("stopped by the deploy watch")
    result = process.result()
    if not waited:
        problems = waited.state[1].fatal if isinstance(waited.state, tuple) else []
        failure = f"stopped helm after {time.monotonic() - start:.0f} s: {waited.reason}"
    elif not result.ok:
        failure = f"helm upgrade failed (exit {result.rc}) after {result.duration_s:.0f} s: {result.tail(20, both=True)}"
    else:
        rolled = watch_rollout(target, release, since, max(1.0, target.timeout_s - (time.monotonic() - start)))
        if not rolled:
            failure = f"{rolled.reason} ({rolled.state})"
            problems = getattr(rolled.state, "fatal", [])
    if not failure:
        revision = helm_mod.last_deployed_revision(target.helm.history(release))
        ready = time.monotonic() - start
        progress.say(f"release {release} revision {revision} rolled out in {ready:.1f} s")
        return Outcome(release, True, revision=revision, previous_revision=previous, ready_after_s=ready,
                       recovery=settled)
    detected = time.monotonic() - start
    progress.say(f"release {release} FAILED after {detected:.0f} s: {failure[:300]}")
    evidence = diagnostics.collect(target.apis, target.kubectl, target.helm, target.namespace, [release])
    if process.stopped:  # its hook Job would keep retrying
        kube.delete_release_jobs(target.apis, target.namespace, release)
    recovery = restore_previous(target, release, previous)
    return Outcome(release, False, previous_revision=previous, message=failure, detected_after_s=detected,
                   recovery="; ".join(filter(None, [settled, recovery])), problems=list(problems), evidence=evidence)


def restore_previous(target: Target, release: str, previous: int | None) -> str:
    """Roll back to the previous revision and show it rolled out again; remove a failed
    first install. Returns a sentence saying what happened."""
    if previous is None:
        result = target.helm.uninstall(release, target.timeout_s)
        return "failed first install uninstalled" if result.ok else f"uninstall failed: {result.tail()}"
    since = time.time()
    result = target.helm.rollback(release, previous, target.timeout_s)
    if not result.ok:
        return f"rollback to revision {previous} FAILED: {result.tail()}"
    waited = watch_rollout(target, release, since, target.timeout_s)
    state = "rolled out and serving" if waited else f"NOT rolled out: {waited.reason} ({waited.state})"
    return f"rolled back to revision {previous}: {state}"
