"""The plugin's cluster fixtures against a real Kubernetes: no fakes, no mocks.

`cluster` resolves the provider (--cluster, else cluster_provider in the configuration;
auto finds the local cluster here) and fails with the reason when no cluster answers and
none can be started. Each run works in a namespace of its own,
shipcheck-clustertest-<random>, which enforces the restricted Pod Security level; the
`namespace` fixture creates it and deletes it (only it), waiting until it is gone. Pods
are tiny (10m CPU / 16Mi requested) and run an image built here, loaded by the provider,
never pulled (imagePullPolicy Never).

Run: pytest tests/test_cluster.py -p no:cacheprovider -o addopts="" -q
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from shipcheck import commands, diagnostics, kube as facts, metrics, progress, proofs, quota, rollout, traffic
from shipcheck.waiting import WaitResult, wait_until

pytestmark = pytest.mark.cluster

IMAGE_CONTEXT = Path(__file__).parent / "cluster_image"
IMAGE_REF = "shipcheck-clustertest:v1"
DOCKER = "/usr/bin/docker"
PORT = 8080
PART_OF = "shipcheck-clustertest"
LABELS = {"app.kubernetes.io/part-of": PART_OF}
RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
SERVER_UID = 1001
EXPECTED_VERSION = "v1.34."
POD_TIMEOUT_S = 60.0
USAGE_TIMEOUT_S = 45.0
NAMESPACE_DELETE_TIMEOUT_S = 90.0

# Run in the probe pod: resolve each name given, print one JSON line.
DNS_SCRIPT = """
import json, socket, sys, time
found = {}
for name in sys.argv[1:]:
    start = time.monotonic()
    try:
        ips = sorted({a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)})
        found[name] = {"ips": ips, "ms": round(1000 * (time.monotonic() - start), 1)}
    except OSError as exc:
        found[name] = {"error": str(exc), "ms": round(1000 * (time.monotonic() - start), 1)}
servers = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")]
print(json.dumps({"resolved": found, "nameservers": servers}))
"""


# --- argv and manifests (pure) ---------------------------------------------------------------
def build_argv(ref: str, context: Path) -> list[str]:
    return [DOCKER, "build", "--tag", ref, "--label", f"org.opencontainers.image.title={PART_OF}", str(context)]


def pod_spec(image: str, command: list[str] | None = None, restart_policy: str = "Always") -> dict:
    """A tiny pod that passes the restricted Pod Security level: the test image's server,
    or `command` in it."""
    container: dict = {
        "name": "main", "image": image, "imagePullPolicy": "Never", "resources": RESOURCES,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    if command:
        container["command"] = command
    else:
        container["ports"] = [{"name": "http", "containerPort": PORT}]
        # Polled every second; python takes a moment to listen on a busy node.
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1,
                                       "failureThreshold": 15}
    return {
        "restartPolicy": restart_policy,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 2,
        "securityContext": {"runAsNonRoot": True, "runAsUser": SERVER_UID, "runAsGroup": SERVER_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
    }


def service(name: str, selector: dict | None) -> dict:
    spec: dict = {"type": "ClusterIP", "ports": [{"name": "http", "port": 80, "targetPort": PORT}]}
    if selector:
        spec["selector"] = selector
    return {"metadata": {"name": name, "labels": LABELS}, "spec": spec}


def configmap_chart(path: Path) -> Path:
    """A chart of one ConfigMap that also says which Kubernetes version helm saw."""
    (path / "templates").mkdir(parents=True)
    (path / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "clustertest", "version": "0.1.0", "kubeVersion": ">=1.34.0-0 <1.35.0-0"}))
    (path / "values.yaml").write_text("greeting: hello\n")
    (path / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
        f"  labels:\n    app.kubernetes.io/part-of: {PART_OF}\n"
        "    app.kubernetes.io/instance: {{ .Release.Name }}\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
        "  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n")
    return path


# --- reading the cluster -------------------------------------------------------------------
def plain(kube, obj):
    return facts.plain(kube, obj)


def gone(call) -> bool:
    """True when `call()` answers 404."""
    from kubernetes.client import ApiException

    try:
        call()
        return False
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise


def describe_pod(state) -> str:
    if not isinstance(state, dict):
        return repr(state)  # the last transient error
    status = state.get("status") or {}
    states = [f"{cs['name']} {next(iter(cs.get('state') or {}), '?')}" for cs in status.get("containerStatuses") or []]
    return f"phase {status.get('phase')}" + (f", containers: {', '.join(states)}" if states else "")


def wait_for_pod_to_finish(kube, namespace: str, name: str, timeout_s: float) -> WaitResult:
    def probe() -> dict:
        return plain(kube, kube.core.read_namespaced_pod(name, namespace))
    return wait_until(f"pod {name} to finish", probe,
                      done=lambda pod: (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
                      fatal=lambda pod: "; ".join(p.detail for p in rollout.container_problems(pod)) or None,
                      timeout_s=timeout_s, interval_s=0.5,
                      describe=describe_pod)


def wait_for_rollout(kube, namespace: str, name: str, timeout_s: float) -> WaitResult:
    """A Deployment's rollout, judged by the pipeline's own predicate (pods' fatal states and
    FailedCreate events, e.g. a Pod Security refusal, end the wait at once)."""
    since = time.time()

    def probe() -> rollout.RolloutState:
        deployment = {**plain(kube, kube.apps.read_namespaced_deployment(name, namespace)), "kind": "Deployment"}
        pods = [plain(kube, p) for p in kube.core.list_namespaced_pod(
            namespace, label_selector=f"app.kubernetes.io/name={name}").items]
        state = rollout.ReleaseState(name, [deployment], pods, facts.namespace_events(kube, namespace))
        return rollout.rollout_state(state, since, time.time())
    return wait_until(f"deployment {name} to roll out", probe, done=lambda s: s.done,
                      fatal=lambda s: "; ".join(p.detail for p in s.fatal) or None,
                      timeout_s=timeout_s, interval_s=0.5, describe=str)


# --- fixtures --------------------------------------------------------------------------------
@dataclasses.dataclass
class Server:
    namespace: str
    name: str  # Deployment and Service
    pod: str
    node: str
    started_at: float  # monotonic, when the Deployment was created

    def __repr__(self) -> str:
        return f"<Server {self.namespace}/{self.name} pod={self.pod} node={self.node}>"


@pytest.fixture(scope="module")
def namespace(kube, kubectl, register_diagnoser) -> Iterator[str]:
    """A namespace of this run's own (restricted Pod Security), deleted with all it holds
    at the end; failing tests get its events, pods and logs attached."""
    name = f"{PART_OF}-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": name, "labels": {
        **LABELS, "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}})
    progress.say(f"namespace {name} created (Pod Security: restricted)")
    unregister = register_diagnoser(f"namespace {name}", lambda: (
        diagnostics.collect(kube, kubectl, None, name, [])))
    try:
        # Pods are refused until the ServiceAccount controller has made `default`.
        account = wait_until(f"ServiceAccount default in {name}",
                             lambda: not gone(lambda: kube.core.read_namespaced_service_account("default", name)),
                             done=bool, timeout_s=30, interval_s=0.2)
        assert account, (f"namespace {name}: ServiceAccount default missing after {account.elapsed_s:.0f} s; "
                         "expected the controller manager to create it within seconds. Fix: check "
                         "kube-controller-manager (its log, or `kubectl get pods -A`)")
        yield name
    finally:
        unregister()
        started = time.monotonic()
        kube.core.delete_namespace(name)
        deleted = wait_until(f"namespace {name} to be deleted", lambda: gone(lambda: kube.core.read_namespace(name)),
                             done=bool, timeout_s=NAMESPACE_DELETE_TIMEOUT_S, interval_s=1.0)
        took_s = time.monotonic() - started
        progress.say(f"namespace {name} {'deleted' if deleted else 'NOT deleted'} in {took_s:.1f} s")
        assert deleted, (f"namespace {name} still present {deleted.elapsed_s:.0f} s after its deletion; expected it "
                         f"gone. Fix: `kubectl get all,events -n {name}` shows what holds it (finalizers?)")


@pytest.fixture(scope="module")
def clustertest_image(cluster) -> Iterator[str]:
    """The test image, built with BuildKit and loaded by the cluster's provider; its tag is
    removed from Docker at the end (the cluster's copy stays, like every loaded image)."""
    build = commands.run(build_argv(IMAGE_REF, IMAGE_CONTEXT), env={"DOCKER_BUILDKIT": "1"}, timeout_s=300,
                         check=False)
    if not build.ok:
        pytest.fail(f"building {IMAGE_REF} from {IMAGE_CONTEXT} failed (exit {build.rc}) after "
                    f"{build.duration_s:.0f} s:\n{build.tail(15)}\nFix: the base image python:3.13-slim (a stand-in "
                    "where no registry answers) comes from `bash setup/base-images.sh`; Docker must answer "
                    "(`bash setup/docker.sh`).", pytrace=False)
    size_mb = int(commands.run([DOCKER, "image", "inspect", "-f", "{{.Size}}", IMAGE_REF]).stdout) / 1e6
    load_s = cluster.load_image(IMAGE_REF)
    progress.say(f"image {IMAGE_REF}: {size_mb:.0f} MB, built in {build.duration_s:.1f} s, loaded into the "
                 f"{cluster.provider} cluster in {load_s:.1f} s")
    try:
        yield IMAGE_REF
    finally:
        commands.run([DOCKER, "image", "rm", IMAGE_REF], check=False, timeout_s=60)


@pytest.fixture(scope="module")
def server(kube, namespace, clustertest_image) -> Server:
    """The test image as a one-replica Deployment behind a ClusterIP Service, rolled out."""
    name = "hello"
    selector = {"app.kubernetes.io/name": name}
    started = time.monotonic()
    kube.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": name, "labels": {**LABELS, **selector}},
        "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": {**LABELS, **selector}}, "spec": pod_spec(clustertest_image)}}})
    kube.core.create_namespaced_service(namespace, service(name, selector))
    rolled = wait_for_rollout(kube, namespace, name, POD_TIMEOUT_S)
    if not rolled:
        reasons = getattr(rolled.state, "fatal", [])
        pytest.fail(f"deployment {name} in {namespace}: {rolled.reason}; last state: {rolled.state}; expected 1/1 "
                    f"available. Fix: {rollout.fix_for(reasons)}", pytrace=False)
    pods = kube.core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/name={name}").items
    pod = next(p for p in pods if not p.metadata.deletion_timestamp)
    progress.say(f"deployment {name} rolled out in {time.monotonic() - started:.1f} s (pod {pod.metadata.name})")
    return Server(namespace, name, pod.metadata.name, pod.spec.node_name, started)


@pytest.fixture
def measured(request):
    """measured(name, value): what a check saw, printed, so the JUnit system-out and the HTML
    report carry it (pytest's record_property does not reach xunit2 JUnit files)."""
    def measured(name: str, value) -> None:
        print(f"{request.node.name}: {name}: {value}")
    return measured


# --- the checks ------------------------------------------------------------------------------
def test_node_is_ready(kube, measured):
    nodes = [plain(kube, n) for n in kube.core.list_node().items]
    assert nodes, "the cluster lists no nodes; expected at least one. Fix: check the kubelet (its log, its kubeconfig)"
    not_ready = []
    for node in nodes:
        name, status = node["metadata"]["name"], node["status"]
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        ready = conditions.get("Ready") or {}
        pressure = [t for t, c in conditions.items() if t != "Ready" and c.get("status") == "True"]
        alloc = status.get("allocatable") or {}
        cpu = float(quota.parse_quantity(alloc.get("cpu", "0")))
        memory_gib = float(quota.parse_quantity(alloc.get("memory", "0"))) / 2**30
        info = status.get("nodeInfo") or {}
        progress.say(f"node {name}: Ready={ready.get('status')}, allocatable cpu {cpu:g}, memory {memory_gib:.1f} GiB, "
                     f"pods {alloc.get('pods')}; kubelet {info.get('kubeletVersion')}, runtime "
                     f"{info.get('containerRuntimeVersion')}" + (f"; pressure: {pressure}" if pressure else ""))
        measured(f"node {name} allocatable", f"cpu {cpu:g}, memory {memory_gib:.1f} GiB")
        if ready.get("status") != "True":
            not_ready.append(f"node {name}: Ready={ready.get('status')} "
                             f"({ready.get('reason')}: {ready.get('message')})")
    assert not not_ready, ("; ".join(not_ready) + "; expected Ready=True. Fix: `kubectl describe node` and the "
                           "kubelet log (local cluster: /var/lib/shipcheck-cluster/logs/kubelet.log)")


def test_server_version_is_1_34(kube, measured):
    from kubernetes import client

    info = client.VersionApi(kube.api_client).get_code()
    measured("server version", info.git_version)
    progress.say(f"API server {info.git_version} ({info.platform}, {info.go_version})")
    assert info.git_version.startswith(EXPECTED_VERSION), (
        f"the API server reports {info.git_version}; expected {EXPECTED_VERSION}x. v0.0.0 means binaries built "
        "without the version stamp (setup/build-kubernetes.sh sets it through -ldflags)")


def test_built_image_serves_http_through_a_clusterip_service(kubectl, server, measured):
    with traffic.port_forward(kubectl, server.namespace, server.name, 80) as base:
        url = base + "/"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                status, body = response.status, json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            pytest.fail(f"GET {url} (port-forward to svc/{server.name}:80 in {server.namespace}) failed: "
                        f"{type(exc).__name__}: {exc}; expected 200 with JSON. Fix: see the pod log attached",
                        pytrace=False)
    measured("http response", body)
    expected = {"app": PART_OF, "pod": server.pod, "uid": SERVER_UID}
    assert (status, body) == (200, expected), f"GET {url} answered {status} {body}; expected 200 {expected}"


def test_pod_resolves_service_names_through_coredns(kube, namespace, clustertest_image, measured):
    kube.core.create_namespaced_service(namespace, service("dns-probe", None))  # no selector: a ClusterIP alone
    def cluster_ip(name: str, ns: str) -> str:
        return kube.core.read_namespaced_service(name, ns).spec.cluster_ip
    expected = {
        "kubernetes.default.svc.cluster.local": cluster_ip("kubernetes", "default"),
        f"dns-probe.{namespace}.svc.cluster.local": cluster_ip("dns-probe", namespace),
        "dns-probe": cluster_ip("dns-probe", namespace),  # through the pod's search path
    }
    dns_ip = cluster_ip("kube-dns", "kube-system")
    pod = "dns-check"  # not the Service's name: a pod's own hostname resolves through /etc/hosts
    started = time.monotonic()
    kube.core.create_namespaced_pod(namespace, {
        "metadata": {"name": pod, "labels": LABELS},
        "spec": pod_spec(clustertest_image, ["python3", "-c", DNS_SCRIPT, *expected], restart_policy="Never")})
    finished = wait_for_pod_to_finish(kube, namespace, pod, POD_TIMEOUT_S)
    took_s = time.monotonic() - started
    assert finished, (f"pod {pod} in {namespace}: {finished.reason} after {finished.elapsed_s:.0f} s "
                      f"({describe_pod(finished.state)}); expected it to run to completion. Fix: see the events "
                      "and log attached")
    log = kube.core.read_namespaced_pod_log(pod, namespace)
    phase = finished.state["status"]["phase"]
    assert phase == "Succeeded", f"pod {pod} {phase} after {took_s:.1f} s; log:\n{log}"
    report = json.loads(log.strip().splitlines()[-1])
    resolved = report["resolved"]
    measured("dns check seconds", round(took_s, 1))
    measured("dns lookups", resolved)
    progress.say(f"DNS check: pod created, names resolved and pod finished in {took_s:.1f} s; lookups "
                 + ", ".join(f"{n} -> {r.get('ips') or r.get('error')} ({r['ms']} ms)" for n, r in resolved.items()))
    assert report["nameservers"] == [dns_ip], (
        f"pod {pod} resolves through {report['nameservers']}; expected the cluster DNS Service kube-system/kube-dns "
        f"at {dns_ip} (the kubelet's clusterDNS)")
    wrong = {name: resolved.get(name) for name, ip in expected.items() if (resolved.get(name) or {}).get("ips") != [ip]}
    if wrong:
        coredns = [f"{p.metadata.name}: {p.status.phase}" for p in
                   kube.core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items]
        pytest.fail(f"names resolved wrongly in pod {pod}: {wrong}; expected {expected}. CoreDNS pods: "
                    f"{coredns or 'none'}. Fix: `kubectl -n kube-system logs -l k8s-app=kube-dns`", pytrace=False)


def test_helm_installs_and_uninstalls_a_chart(helm, kube, namespace, tmp_path, measured):
    chart = configmap_chart(tmp_path / "clustertest")
    helm = dataclasses.replace(helm, namespace=namespace)
    release, configmap = "clustertest", "clustertest-settings"
    installed = helm.run("install", release, str(chart), "--set", "greeting=from-helm", "--wait", "--timeout", "60s",
                         check=False, timeout_s=90)
    assert installed.ok, (f"helm install {release} ({chart}) in {namespace} failed (exit {installed.rc}) after "
                          f"{installed.duration_s:.1f} s: {installed.tail(10)}")
    measured("helm install seconds", round(installed.duration_s, 1))
    history = helm.history(release)
    assert history and history[-1]["status"] == "deployed", f"helm history of {release}: {history}"
    data = kube.core.read_namespaced_config_map(configmap, namespace).data
    assert data["greeting"] == "from-helm" and data["kubeVersion"].startswith(EXPECTED_VERSION), (
        f"ConfigMap {configmap} holds {data}; expected greeting from-helm and the server's version {EXPECTED_VERSION}x")

    removed = helm.uninstall(release, timeout_s=60)
    assert removed.ok, f"helm uninstall {release} failed (exit {removed.rc}): {removed.tail(10)}"
    measured("helm uninstall seconds", round(removed.duration_s, 1))
    records = kube.core.list_namespaced_secret(namespace, label_selector=f"name={release},owner=helm").items
    left = [s.metadata.name for s in records]
    assert gone(lambda: kube.core.read_namespaced_config_map(configmap, namespace)) and not left, (
        f"after helm uninstall {release}: ConfigMap {configmap} and release records {left} remain; expected none")
    progress.say(f"helm install {installed.duration_s:.1f} s, uninstall {removed.duration_s:.1f} s")


def test_proofs_are_kept_per_render_in_the_namespace(kube, namespace):
    """The records stage 5 reuses: each keyed by its render, one record not erasing another
    (server-side apply drops the fields its manager stops setting)."""
    assert proofs.read(kube, namespace) is None and proofs.helm_test_passed(kube, namespace, "api", "d1") is None
    proofs.record_helm_test(kube, namespace, "api", "d1", 3)
    proof = proofs.Proof("k1", "synthetic", {"api": 5}, 120, 0, time.time())
    proofs.record(kube, namespace, proof)
    proofs.record_helm_test(kube, namespace, "web", "d2", 1)
    assert proofs.read(kube, namespace) == proof
    assert "revision 3" in (proofs.helm_test_passed(kube, namespace, "api", "d1") or "")
    assert proofs.helm_test_passed(kube, namespace, "api", "d-other") is None  # another render: test again
    assert "revision 1" in (proofs.helm_test_passed(kube, namespace, "web", "d2") or "")


def test_pod_usage_is_readable_from_the_kubelet_summary(kube, server, measured):
    containers = ["main"]
    sampled = wait_until(
        f"cpu and memory of pod {server.pod} in the kubelet summary of node {server.node}",
        lambda: metrics.pod_usage(metrics.read_summary(kube, server.node), server.namespace),
        done=lambda usage: metrics.is_sampled(usage, server.pod, containers),
        timeout_s=USAGE_TIMEOUT_S, interval_s=2.0, transient=(ConnectionError, OSError),
        describe=lambda usage: f"{server.pod}: {usage.get(server.pod)}")
    assert sampled, (f"no usage of containers {containers} of pod {server.pod} in the kubelet summary of node "
                     f"{server.node}: {sampled.reason}; last seen {sampled.state!r}. Expected CPU and memory within "
                     f"{USAGE_TIMEOUT_S:g} s of the container starting. Fix: the kubelet's stats come from the "
                     "runtime (containerd's CRI stats); check the kubelet log")
    used = sampled.state[server.pod]["main"]
    since_s = time.monotonic() - server.started_at
    measured("usage", used)
    progress.say(f"pod {server.pod}: cpu {used['cpu_millicores']:.2f}m (request 10m, limit 100m), memory "
                 f"{used['memory_bytes'] / 2**20:.1f} MiB (request 16Mi, limit 64Mi); sampled {since_s:.0f} s after "
                 "the Deployment was created")
    limit_bytes = int(quota.parse_quantity(RESOURCES["limits"]["memory"]))
    assert 0 < used["memory_bytes"] < limit_bytes and used["cpu_millicores"] >= 0, (
        f"pod {server.pod} usage {used}; expected memory between 0 and its limit {limit_bytes} bytes, cpu >= 0")
