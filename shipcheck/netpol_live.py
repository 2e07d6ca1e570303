"""NetworkPolicies proven on the running cluster, from inside it (the live part of netpol).

- `enforcement`: does this cluster enforce NetworkPolicies at all? In a scratch namespace a
  server pod listens on two ports and a policy admits one; a client pod must reach the
  admitted port and be refused on the other. Clusters whose network plugin ignores
  policies (a bridge CNI alone) answer "not enforced", and the live gate skips.
- `connect_from_pod`: exec into a running pod of a client component and connect to the
  server's Service (the allowed path must work).
- `connect_from_stranger`: a short-lived pod with labels matching no component connects to
  the server's Service (it must be refused).

Probe pods reuse an image already on the nodes (no registry): one of the app images that has
python3 or node (`find_interpreter` says which). They run as non-root with every capability
dropped, a read-only root, small requests and limits, so Pod Security "restricted" and the
namespace quota admit them. The Kubernetes Python client does everything (kubernetes.stream
for exec); no process is started.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from . import kube, netpol, progress

INTERPRETERS = ("python3", "node")
CONNECT_TIMEOUT_S = 1.5
SERVER_PORTS = (8080, 8081)  # the scratch server: the first admitted by the policy, the second not
PROBE_LABEL = "shipcheck.io/netpol-probe"
# Pods of the network plugins that implement NetworkPolicy (information only: the deny test decides).
KNOWN_CONTROLLERS = ("calico-node", "cilium", "kube-router", "antrea-agent", "weave-net", "kube-network-policies",
                     "canal", "kube-ovn", "romana", "netpol")

# Connect to each (host, port), retrying for up to `window` seconds until the result is the
# wanted one ("open", or anything else); print a JSON list of the outcomes.
PYTHON_CONNECT = """
import json, socket, sys, time
def once(host, port):
    start = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=%(timeout)s).close(); result = "open"
    except TimeoutError: result = "timeout"
    except ConnectionRefusedError: result = "refused"
    except socket.gaierror: result = "dns"
    except OSError as exc: result = "error: " + (exc.strerror or str(exc))
    return result, round((time.monotonic() - start) * 1000)
out = []
for host, port, want, window in json.loads(sys.argv[1]):
    end, n = time.monotonic() + window, 0
    while True:
        n += 1; result, ms = once(host, port)
        if (result == "open") == (want == "open") or time.monotonic() >= end: break
        time.sleep(0.3)
    out.append({"host": host, "port": port, "want": want, "result": result, "attempts": n, "ms": ms})
print(json.dumps(out))
"""
NODE_CONNECT = """
const net = require('net');
function once(host, port) { return new Promise(done => { const start = Date.now();
  const c = net.connect({host, port}); const end = r => { c.destroy(); done([r, Date.now() - start]); };
  c.setTimeout(%(timeout)s * 1000, () => end('timeout')); c.on('connect', () => end('open'));
  c.on('error', e => end(e.code === 'ECONNREFUSED' ? 'refused' : ['ENOTFOUND', 'EAI_AGAIN'].includes(e.code)
    ? 'dns' : e.code === 'ETIMEDOUT' ? 'timeout' : 'error: ' + e.code)); }); }
(async () => { const out = [];
  for (const [host, port, want, window] of JSON.parse(process.argv[1])) {
    const end = Date.now() + window * 1000; let n = 0, r, ms;
    while (true) { n++; [r, ms] = await once(host, port);
      if ((r === 'open') === (want === 'open') || Date.now() >= end) break;
      await new Promise(z => setTimeout(z, 300)); }
    out.push({host, port, want, result: r, attempts: n, ms}); }
  console.log(JSON.stringify(out)); })();
"""
PYTHON_SERVE = ("import select, socket, sys\n"
                "servers = [socket.create_server(('', int(p))) for p in sys.argv[1:]]\n"
                "while True:\n"
                "    for s in select.select(servers, [], [])[0]: s.accept()[0].close()\n")
NODE_SERVE = "const net = require('net'); for (const p of process.argv.slice(1)) net.createServer(c => c.destroy()).listen(+p);"


# --- pure: commands, manifests, results ----------------------------------------------------
@dataclass(frozen=True)
class Target:
    host: str
    port: int
    want: str = "open"  # "open", or "closed" (refused, timeout: anything but open)
    window_s: float = 0.0  # retry until the wanted result for this long


@dataclass(frozen=True)
class Outcome:
    host: str
    port: int
    want: str
    result: str  # open | refused | timeout | dns | error: ...
    attempts: int
    ms: int

    @property
    def ok(self) -> bool:
        return (self.result == "open") == (self.want == "open")

    def __str__(self) -> str:
        return f"{self.host}:{self.port} {self.result} after {self.attempts} attempt(s) (last {self.ms} ms)"


def connect_command(interpreter: str, targets: list[Target]) -> list[str]:
    spec = json.dumps([[t.host, t.port, t.want, t.window_s] for t in targets])
    if interpreter == "python3":
        return ["python3", "-c", PYTHON_CONNECT % {"timeout": CONNECT_TIMEOUT_S}, spec]
    if interpreter == "node":
        return ["node", "-e", NODE_CONNECT % {"timeout": CONNECT_TIMEOUT_S}, spec]
    raise ValueError(f"no TCP client for interpreter {interpreter!r}; expected one of {INTERPRETERS}")


def serve_command(interpreter: str, ports: tuple[int, ...] = SERVER_PORTS) -> list[str]:
    if interpreter == "python3":
        return ["python3", "-c", PYTHON_SERVE, *map(str, ports)]
    if interpreter == "node":
        return ["node", "-e", NODE_SERVE, *map(str, ports)]
    raise ValueError(f"no TCP server for interpreter {interpreter!r}")


def parse_outcomes(stdout: str) -> list[Outcome]:
    """The probe's JSON line (the last line that parses), as outcomes."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            return [Outcome(**item) for item in json.loads(line)]
        except (ValueError, TypeError):
            continue
    raise ValueError(f"no probe result in the output: {stdout[-300:]!r}")


def probe_pod(name: str, namespace: str, image: str, command: list[str], labels: dict[str, str], uid: int = 1001,
              memory: str = "64Mi") -> dict:
    """A pod Pod Security "restricted" admits, with requests and limits for the quota; it runs
    `command` once and stops (or is stopped after 120 s)."""
    security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                "runAsUser": uid, "runAsGroup": uid, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}}
    resources = {"requests": {"cpu": "10m", "memory": memory, "ephemeral-storage": "8Mi"},
                 "limits": {"cpu": "200m", "memory": memory, "ephemeral-storage": "16Mi"}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "activeDeadlineSeconds": 120, "terminationGracePeriodSeconds": 0,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "probe", "image": image, "imagePullPolicy": "IfNotPresent",
                                     "command": command, "securityContext": security, "resources": resources}]}}


def scratch_policy(namespace: str, admitted_port: int) -> dict:
    """Isolates the scratch server for ingress and admits one port from anywhere."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "shipcheck-enforcement-check", "namespace": namespace},
            "spec": {"podSelector": {"matchLabels": {PROBE_LABEL: "server"}}, "policyTypes": ["Ingress"],
                     "ingress": [{"ports": [{"port": admitted_port, "protocol": "TCP"}]}]}}


def pod_memory(interpreter: str) -> str:
    return "128Mi" if interpreter == "node" else "64Mi"  # node's heap needs more than python3


# --- cluster: exec, short-lived pods ---------------------------------------------------------
def find_interpreter(apis, namespace: str, pod: str, container: str | None = None) -> str | None:
    """python3 or node, whichever the pod's image has (python3 first), else None."""
    for interpreter in INTERPRETERS:
        flag = "-c" if interpreter == "python3" else "-e"
        code, output = kube.exec_in_pod(apis, namespace, pod,
                                        [interpreter, flag, "print(1)" if flag == "-c" else "console.log(1)"],
                                        container, timeout_s=20)
        if code == 0 and output.strip() == "1":
            return interpreter
    return None


def connect_from_pod(apis, namespace: str, pod: str, interpreter: str, targets: list[Target],
                     container: str | None = None) -> list[Outcome]:
    code, output = kube.exec_in_pod(apis, namespace, pod, connect_command(interpreter, targets), container,
                                    timeout_s=30 + sum(t.window_s for t in targets))
    if code != 0:
        raise RuntimeError(f"the probe in pod {namespace}/{pod} failed "
                           f"({'still running' if code is None else f'exit {code}'}): {output[-300:]}")
    return parse_outcomes(output)


def run_to_completion(apis, manifest: dict, timeout_s: float = 90.0) -> tuple[str, str, str]:
    """Create the pod, wait until it ends, return (phase, log, why it did not run); delete it."""
    core, meta = apis.core, manifest["metadata"]
    core.create_namespaced_pod(meta["namespace"], manifest)
    phase, why = "Pending", ""
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pod = core.read_namespaced_pod(meta["name"], meta["namespace"])
            phase = pod.status.phase
            if phase in ("Succeeded", "Failed"):
                break
            why = _waiting_reason(pod)
            if why:
                break
            time.sleep(0.5)
        else:
            why = f"not finished after {timeout_s:g} s (phase {phase})"
        log = core.read_namespaced_pod_log(meta["name"], meta["namespace"]) if phase in ("Succeeded", "Failed") else ""
        return phase, log, why
    finally:
        core.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=0)


def _waiting_reason(pod) -> str:
    """A container stuck for good: the image is not on the node, or the command cannot start."""
    for cs in pod.status.container_statuses or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting and waiting.reason in ("ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff",
                                          "CreateContainerError", "RunContainerError", "CreateContainerConfigError"):
            return f"{waiting.reason}: {waiting.message or ''}".strip()
    return ""


def connect_from_stranger(apis, namespace: str, image: str, interpreter: str, targets: list[Target],
                          uid: int = 1001) -> list[Outcome]:
    """A pod with labels matching no component (netpol.STRANGER_LABELS) runs the probe once."""
    name = f"shipcheck-netpol-stranger-{secrets.token_hex(3)}"
    manifest = probe_pod(name, namespace, image, connect_command(interpreter, targets), dict(netpol.STRANGER_LABELS),
                         uid, pod_memory(interpreter))
    phase, log, why = run_to_completion(apis, manifest, timeout_s=60 + sum(t.window_s for t in targets))
    if phase != "Succeeded":
        raise RuntimeError(f"the stranger probe pod {namespace}/{name} did not run ({phase}; {why}): {log[-300:]}")
    return parse_outcomes(log)


def live_policies(apis, namespace: str) -> list[netpol.Policy]:
    """The namespace's NetworkPolicies as the cluster has them."""
    from kubernetes import client

    items = client.NetworkingV1Api(apis.api_client).list_namespaced_network_policy(namespace).items
    return [netpol.Policy(p.metadata.name, namespace, apis.api_client.sanitize_for_serialization(p.spec) or {})
            for p in items]


def isolated_for_ingress(policies: list[netpol.Policy], namespace: str, labels: dict[str, str]) -> bool:
    pod = netpol.Pod(labels, namespace)
    return any("Ingress" in p.types and p.selects(pod) for p in policies)


# --- does the cluster enforce NetworkPolicies? --------------------------------------------
@dataclass
class Enforcement:
    enforced: bool | None  # None: could not tell (see reason)
    reason: str
    seconds: float
    controllers: list[str] = field(default_factory=list)  # known controller pods seen
    outcomes: list[Outcome] = field(default_factory=list)

    def row(self) -> dict:
        return {"enforced": {True: "yes", False: "no", None: "unknown"}[self.enforced], "reason": self.reason,
                "seconds": round(self.seconds, 1), "controller pods": ", ".join(self.controllers) or "-"}


def known_controllers(apis) -> list[str]:
    names = []
    for pod in apis.core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items:
        if any(pod.metadata.name.startswith(k) for k in KNOWN_CONTROLLERS):
            names.append(f"{pod.metadata.namespace}/{pod.metadata.name}")
    return names


def enforcement(apis, scratch_namespace: str, image: str, interpreter: str, uid: int = 1001,
                window_s: float = 10.0, timeout_s: float = 90.0) -> Enforcement:
    """The deny test, in a namespace of its own that it deletes: a server on two ports, a
    policy admitting the first, a client that must reach the first and be refused on the
    second (retried for `window_s`, the time a controller may take to program a new pod)."""
    from kubernetes import client

    start = time.monotonic()
    # A least-privilege account (examples/rbac/) may neither list other namespaces' pods nor
    # make a namespace: then the live proof cannot run, and says why (stage 3 still judges).
    try:
        controllers = known_controllers(apis)
    except Exception as exc:
        if getattr(exc, "status", None) != 403:
            raise
        controllers = []
    net = client.NetworkingV1Api(apis.api_client)
    memory = pod_memory(interpreter)
    try:
        apis.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": scratch_namespace, "labels": {"app.kubernetes.io/managed-by": "shipcheck", PROBE_LABEL: "scratch"}}})
    except Exception as exc:
        if getattr(exc, "status", None) != 403:
            raise
        return Enforcement(None, f"this account may not create the scratch namespace {scratch_namespace} for the deny "
                                 "test (RBAC: create namespaces)", time.monotonic() - start, controllers)
    try:
        net.create_namespaced_network_policy(scratch_namespace, scratch_policy(scratch_namespace, SERVER_PORTS[0]))
        server = probe_pod("server", scratch_namespace, image, serve_command(interpreter), {PROBE_LABEL: "server"},
                           uid, memory)
        server["spec"]["activeDeadlineSeconds"] = int(timeout_s)
        apis.core.create_namespaced_pod(scratch_namespace, server)
        ip, why = "", ""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not ip and not why:
            pod = apis.core.read_namespaced_pod("server", scratch_namespace)
            ready = pod.status.phase == "Running" and all(cs.ready for cs in pod.status.container_statuses or [])
            ip = pod.status.pod_ip if ready else ""
            why = _waiting_reason(pod) or (f"server pod {pod.status.phase}" if pod.status.phase in ("Failed", "Succeeded") else "")
            time.sleep(0.3 if not ip else 0)
        if not ip:
            return Enforcement(None, f"the scratch server pod did not run ({why or 'timed out'}); image {image}",
                               time.monotonic() - start, controllers)
        targets = [Target(ip, SERVER_PORTS[0], "open", window_s), Target(ip, SERVER_PORTS[1], "closed", window_s)]
        client_pod = probe_pod("client", scratch_namespace, image, connect_command(interpreter, targets),
                               {PROBE_LABEL: "client"}, uid, memory)
        phase, log, why = run_to_completion(apis, client_pod, timeout_s=timeout_s)
        if phase != "Succeeded":
            return Enforcement(None, f"the scratch client pod did not run ({phase}; {why}): {log[-200:]}",
                               time.monotonic() - start, controllers)
        admitted, denied = parse_outcomes(log)
        seconds = time.monotonic() - start
        if not admitted.ok:
            return Enforcement(None, f"the admitted port did not answer ({admitted}): the pod network itself fails",
                               seconds, controllers, [admitted, denied])
        if denied.ok:
            return Enforcement(True, f"a NetworkPolicy admitting port {SERVER_PORTS[0]} only: port {SERVER_PORTS[1]} "
                                     f"{denied.result}, port {SERVER_PORTS[0]} open", seconds, controllers,
                               [admitted, denied])
        return Enforcement(False, f"port {SERVER_PORTS[1]} stayed open for {window_s:g} s although a NetworkPolicy "
                                  f"admits only port {SERVER_PORTS[0]}: the network plugin ignores NetworkPolicies",
                           seconds, controllers, [admitted, denied])
    finally:
        try:
            apis.core.delete_namespace(scratch_namespace)
        except Exception as exc:  # cleanup never hides the result; say it
            progress.say(f"could not delete scratch namespace {scratch_namespace}: {exc}")
