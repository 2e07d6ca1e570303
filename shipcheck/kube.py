"""The cluster, through the official Kubernetes client: connect, read a release's state,
apply objects (server-side), exec in a pod, reach a Service through the API server.

Judgement lives in rollout.py (pure); this module only reads and changes the cluster.
kubectl is left for what people read (`describe`) and for port-forward.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

from .rollout import Event, ReleaseState, timestamp

INSTANCE_LABEL = "app.kubernetes.io/instance"
FIELD_MANAGER = "shipcheck"


@dataclass
class KubeApis:
    api_client: Any
    core: Any
    apps: Any
    batch: Any

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None) -> "KubeApis":
        from kubernetes import client, config as kconfig

        api = kconfig.new_client_from_config(config_file=kubeconfig, context=context)
        return cls(api, client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api))

    def __repr__(self) -> str:
        return f"<KubeApis {self.api_client.configuration.host}>"


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the API server answering 5xx or 429, or not answering yet (it is
    starting, or restarting). A 4xx is an answer: retrying cannot change it."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status > 0:
        return status >= 500 or status == 429
    return isinstance(exc, (ConnectionError, TimeoutError, OSError)) or type(exc).__name__ in (
        "MaxRetryError", "ProtocolError", "NewConnectionError")


def is_not_found(exc: BaseException) -> bool:
    return getattr(exc, "status", None) == 404


def plain(apis: KubeApis, obj) -> Any:
    """A client model as plain dicts/lists with camelCase keys, as kubectl shows it."""
    return apis.api_client.sanitize_for_serialization(obj)


def selector(release: str) -> str:
    return f"{INSTANCE_LABEL}={release}"


# --- reading --------------------------------------------------------------------------------
def event_of(model) -> Event:
    """One form for every event: core/v1 events carry count and first/last timestamps, newer
    ones an eventTime and a series."""
    series = getattr(model, "series", None)
    last = model.last_timestamp or (series.last_observed_time if series else None) or model.event_time
    first = model.first_timestamp or model.event_time or last
    obj = model.involved_object
    return Event(type=model.type or "", reason=model.reason or "", message=(model.message or "").strip(),
                 kind=obj.kind or "", name=obj.name or "",
                 count=model.count or (series.count if series else 1) or 1,
                 first_s=first.timestamp() if first else None, last_s=last.timestamp() if last else None)


def namespace_events(apis: KubeApis, namespace: str) -> list[Event]:
    return [event_of(e) for e in apis.core.list_namespaced_event(namespace).items]


def read_release(apis: KubeApis, namespace: str, release: str) -> ReleaseState:
    """The release's Deployments, StatefulSets, Jobs and pods (by the instance label every
    Helm chart sets), and the events about them or their ReplicaSets only."""
    sel = selector(release)
    workloads = []
    for kind, items in (("Deployment", apis.apps.list_namespaced_deployment(namespace, label_selector=sel).items),
                        ("StatefulSet", apis.apps.list_namespaced_stateful_set(namespace, label_selector=sel).items),
                        ("Job", apis.batch.list_namespaced_job(namespace, label_selector=sel).items)):
        workloads += [{**plain(apis, item), "kind": kind} for item in items]
    pods = [plain(apis, p) for p in apis.core.list_namespaced_pod(namespace, label_selector=sel).items]
    replicasets = [rs.metadata.name for rs in apis.apps.list_namespaced_replica_set(namespace, label_selector=sel).items]
    names = {w["metadata"]["name"] for w in workloads} | {p["metadata"]["name"] for p in pods} | set(replicasets)
    events = [e for e in namespace_events(apis, namespace) if e.name in names]
    return ReleaseState(release, workloads, pods, events)


def pod_log(apis: KubeApis, namespace: str, pod: str, container: str, *, previous: bool = False,
            tail_lines: int = 80) -> str:
    return apis.core.read_namespaced_pod_log(pod, namespace, container=container, previous=previous,
                                             tail_lines=tail_lines)


def server_version(apis: KubeApis) -> str:
    from kubernetes import client

    return client.VersionApi(apis.api_client).get_code().git_version


# --- changing -------------------------------------------------------------------------------
def apply(apis: KubeApis, docs: Iterable[dict]) -> None:
    """Server-side apply: idempotent, and our field manager owns only what it sets."""
    from kubernetes import dynamic

    client = dynamic.DynamicClient(apis.api_client)
    for doc in docs:
        resource = client.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        meta = doc["metadata"]
        resource.server_side_apply(body=doc, name=meta["name"], namespace=meta.get("namespace"),
                                   field_manager=FIELD_MANAGER, force_conflicts=True)


def delete_release_jobs(apis: KubeApis, namespace: str, release: str) -> None:
    """A stopped helm leaves its hook Job retrying; delete it with its pods."""
    apis.batch.delete_collection_namespaced_job(namespace, label_selector=selector(release),
                                                propagation_policy="Background")


# --- reaching into pods and Services --------------------------------------------------------
def exec_in_pod(apis: KubeApis, namespace: str, pod: str, argv: list[str], container: str | None = None,
                timeout_s: float = 30) -> tuple[int | None, str]:
    """Run argv in a pod's container; (exit code, stdout+stderr). None: it did not finish in
    `timeout_s`. An exec that never started (no such executable) is 127 with the runtime's
    message. Channels are read only when they hold data: a bare read blocks until data comes."""
    from kubernetes import client
    from kubernetes.stream import stream
    from kubernetes.stream.ws_client import ERROR_CHANNEL

    # stream() swaps the client's request method for a websocket one while it runs: on the
    # shared client, a request from another thread meanwhile would go out as a websocket.
    own = client.CoreV1Api(client.ApiClient(apis.api_client.configuration))
    resp = stream(own.connect_get_namespaced_pod_exec, pod, namespace, command=argv, container=container,
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    output: list[str] = []
    deadline = time.monotonic() + timeout_s
    while resp.is_open() and time.monotonic() < deadline:
        resp.update(timeout=1)
        if resp.peek_stdout():
            output.append(resp.read_stdout())
        if resp.peek_stderr():
            output.append(resp.read_stderr())
    if resp.is_open():
        resp.close()
        return None, "".join(output)
    status = json.loads(resp.read_channel(ERROR_CHANNEL, timeout=0) or "{}")
    resp.close()
    if status.get("status") == "Success":
        return 0, "".join(output)
    causes = (status.get("details") or {}).get("causes") or []
    code = next((int(c["message"]) for c in causes if c.get("reason") == "ExitCode"), None)
    if code is None:  # not an exit code: the exec itself failed (e.g. executable file not found)
        return 127, "".join(output) + status.get("message", "")
    return code, "".join(output)


def service_request(apis: KubeApis, namespace: str, service: str, port: int, path: str, *, method: str = "GET",
                    body: Any = None, timeout_s: float = 5) -> tuple[int, bytes]:
    """One HTTP request to a Service through the API server's service proxy, which picks a
    ready endpoint for every request as the Service does (unlike a port-forward, which pins
    one pod): the path for a request loop across a rolling update. (status, body)."""
    from kubernetes.client.exceptions import ApiException

    resource = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}"
    headers = {"Accept": "*/*"}
    payload = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        payload = json.dumps(body)
    method, url, headers, payload, post = apis.api_client.param_serialize(
        method, resource, header_params=headers, body=payload, auth_settings=["BearerToken"])
    try:
        response = apis.api_client.call_api(method, url, headers, payload, post, _request_timeout=timeout_s)
        response.read()
        return response.status, response.data or b""
    except ApiException as exc:
        return exc.status, (exc.body or b"") if isinstance(exc.body, bytes) else str(exc.body or "").encode()


def creation_s(obj: dict) -> float | None:
    return timestamp((obj.get("metadata") or {}).get("creationTimestamp"))


def ready_endpoints(apis: KubeApis, namespace: str, service: str) -> list[str]:
    """Addresses of the Service's ready endpoints (its EndpointSlices)."""
    from kubernetes import client

    slices = client.DiscoveryV1Api(apis.api_client).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}").items
    return [address for s in slices for e in s.endpoints or [] if e.conditions is None or e.conditions.ready
            for address in e.addresses]
