"""Evidence for a failed deploy or health check, gathered before anything is rolled back or
deleted: the namespace's events, `kubectl describe` of the release's pods (what people
read), container logs (previous containers too), helm status and history, quota usage.
Collection never raises; a part that cannot be read says why instead.
"""

from __future__ import annotations

from typing import Callable

from . import commands, kube

Evidence = list[tuple[str, str]]  # (title, text)


def _safe(title: str, fn: Callable[[], str]) -> tuple[str, str]:
    try:
        return title, commands.scrub(fn() or "(empty)")
    except Exception as exc:
        return title, f"(could not collect: {type(exc).__name__}: {exc})"


def collect(apis: kube.KubeApis, kubectl: list[str], helm, namespace: str, releases: list[str],
            max_log_lines: int = 80) -> Evidence:
    """kubectl: argv prefix with kubeconfig/context flags; helm: a helm.Helm or None."""
    def kc(*args: str) -> str:
        result = commands.run([*kubectl, *args, "--namespace", namespace], check=False, timeout_s=60)
        return result.stdout if result.ok else result.stdout + result.stderr

    def events() -> str:
        found = sorted(kube.namespace_events(apis, namespace), key=lambda e: e.last_s or 0)
        return "\n".join(f"{e.type:7} {str(e)}" for e in found)

    evidence: Evidence = [
        _safe(f"events in {namespace} (oldest first)", events),
        _safe(f"quota usage in {namespace}", lambda: kc("describe", "resourcequota")),
    ]
    for release in releases:
        evidence.append(_safe(f"describe pods of {release}", lambda r=release: kc("describe", "pods", "-l",
                                                                                  kube.selector(r))))
        if helm is not None:
            evidence.append(_safe(f"helm status {release}", lambda r=release: helm.run("status", r).tail(60, both=True)))
            evidence.append(_safe(f"helm history {release}", lambda r=release: helm.run("history", r).stdout))
        evidence += container_logs(apis, namespace, release, max_log_lines)
    return evidence


def container_logs(apis: kube.KubeApis, namespace: str, release: str, max_lines: int) -> Evidence:
    evidence: Evidence = []
    try:
        pods = apis.core.list_namespaced_pod(namespace, label_selector=kube.selector(release)).items
    except Exception as exc:
        return [(f"logs of {release}", f"(could not list pods: {exc})")]
    for pod in pods:
        statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
        for cs in statuses:
            name = f"{pod.metadata.name}/{cs.name}"
            evidence.append(_safe(f"log {name}", lambda p=pod.metadata.name, c=cs.name: kube.pod_log(
                apis, namespace, p, c, tail_lines=max_lines)))
            if cs.restart_count:
                evidence.append(_safe(f"log {name} (previous container)", lambda p=pod.metadata.name, c=cs.name:
                                      kube.pod_log(apis, namespace, p, c, previous=True, tail_lines=max_lines)))
    return evidence
