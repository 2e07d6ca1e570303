"""NetworkPolicies on a real cluster: the enforcement detection and the live probes of
shipcheck/netpol_live.py, in a namespace of this run's own (tests/test_cluster.py's
fixtures: restricted Pod Security, a python3 test image loaded, never pulled).

On a cluster that enforces policies (the local cluster with its controller): with no policy
every pod connects; a policy admitting pods labelled role=client refuses a stranger and admits
a client. On one that does not, the detection says so and the policy tests skip.

Run: pytest tests/test_netpol_cluster.py -p no:cacheprovider -o addopts="" -q
"""

from __future__ import annotations

import secrets
import time

import pytest
from kubernetes import client

from shipcheck import netpol, netpol_live, progress
from shipcheck.netpol_live import Target
from test_cluster import LABELS, PORT, SERVER_UID, clustertest_image, namespace, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.cluster
SERVICE_PORT = 80  # test_cluster.service(): port 80 -> targetPort 8080


@pytest.fixture(scope="module")
def detected(kube, namespace, clustertest_image):  # noqa: F811
    result = netpol_live.enforcement(kube, f"{namespace}-check", clustertest_image, "python3", SERVER_UID)
    progress.say(f"NetworkPolicy enforcement: {result.row()}")
    return result


def test_enforcement_is_detected_either_way(detected):
    assert detected.enforced is not None, (f"could not tell whether the cluster enforces NetworkPolicies: "
                                           f"{detected.reason}; expected yes or no. Fix: the reason names the pod "
                                           "that did not run")
    assert detected.outcomes[0].result == "open"


def client_pod(namespace, image, labels, targets):  # noqa: F811 (a name, not the fixture)
    name = f"netpol-client-{secrets.token_hex(3)}"
    return netpol_live.probe_pod(name, namespace, image, netpol_live.connect_command("python3", targets),
                                 {**LABELS, **labels}, SERVER_UID)


def test_policy_refuses_a_stranger_and_admits_a_client(kube, namespace, server, clustertest_image, detected):  # noqa: F811
    if not detected.enforced:
        pytest.skip(f"this cluster does not enforce NetworkPolicies: {detected.reason}")
    # The Service's port (80, to the pods' 8080). A port the Service lacks is no test: this
    # machine's outbound interception answers any address and port.
    service = Target(f"{server.name}.{namespace}.svc.cluster.local", SERVICE_PORT)
    # No policy in the namespace: a controller changes nothing.
    start = time.monotonic()
    (before,) = netpol_live.connect_from_stranger(kube, namespace, clustertest_image, "python3",
                                                  [Target(service.host, SERVICE_PORT, "open", 5.0)], SERVER_UID)
    assert before.result == "open", f"with no NetworkPolicy a pod got {before}; expected open"
    net = client.NetworkingV1Api(kube.api_client)
    net.create_namespaced_network_policy(namespace, {
        "metadata": {"name": "hello-clients", "labels": LABELS},
        "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": server.name}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                              "ports": [{"port": PORT, "protocol": "TCP"}]}]}})
    try:
        # A controller programs a new policy within seconds; on a loaded 2-core node it took
        # over 10 s once, so the stranger retries for up to 45 s (the time it took is shown).
        (refused,) = netpol_live.connect_from_stranger(kube, namespace, clustertest_image, "python3",
                                                       [Target(service.host, SERVICE_PORT, "closed", 45.0)], SERVER_UID)
        stranger_s = time.monotonic() - start
        phase, log, why = netpol_live.run_to_completion(kube, client_pod(
            namespace, clustertest_image, {"role": "client"}, [Target(service.host, SERVICE_PORT, "open", 5.0)]))
        (admitted,) = netpol_live.parse_outcomes(log) if phase == "Succeeded" else [None]
        progress.say(f"live probe: no policy {before}; stranger {refused}; client {admitted} "
                     f"({stranger_s:.1f} s for the two stranger pods)")
        assert refused.result in ("refused", "timeout"), f"stranger {refused}; expected refused by the policy"
        assert admitted and admitted.ok, f"client ({phase}, {why}) {admitted}; expected open (admitted)"
        # The evaluator agrees with the cluster.
        policies = netpol_live.live_policies(kube, namespace)
        assert netpol_live.isolated_for_ingress(policies, namespace, {"app.kubernetes.io/name": server.name, **LABELS})
        labels = dict(netpol.STRANGER_LABELS)
        verdict = netpol.connection(policies, netpol.Pod(labels, namespace),
                                    netpol.Pod({"app.kubernetes.io/name": server.name}, namespace), PORT)
        assert not verdict.admitted
    finally:
        net.delete_namespaced_network_policy("hello-clients", namespace)
