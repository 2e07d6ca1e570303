"""The live NetworkPolicy probe's pure parts: the TCP client scripts (run here against real
local sockets, with python3 and node), the probe pod manifest, the result parsing."""

import json
import shutil
import socket
import subprocess

import pytest

from shipcheck import netpol, netpol_live
from shipcheck.netpol_live import Target

INTERPRETERS = [i for i in netpol_live.INTERPRETERS if shutil.which(i)]


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_connect_script_reports_open_refused_and_dns(interpreter, listener):
    closed = free_port()
    targets = [Target("127.0.0.1", listener), Target("127.0.0.1", closed, "closed"),
               Target("no-such-host.invalid", 80, "closed")]
    out = subprocess.run(netpol_live.connect_command(interpreter, targets), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    opened, refused, dns = netpol_live.parse_outcomes(out.stdout)
    assert (opened.result, opened.ok, opened.attempts) == ("open", True, 1)
    assert (refused.result, refused.ok) == ("refused", True)
    assert dns.result == "dns" and dns.ok


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_connect_script_retries_for_the_window_then_reports_the_last_result(interpreter):
    closed = free_port()
    out = subprocess.run(netpol_live.connect_command(interpreter, [Target("127.0.0.1", closed, "open", 1.0)]),
                         capture_output=True, text=True, timeout=30)
    (outcome,) = netpol_live.parse_outcomes(out.stdout)
    assert outcome.result == "refused" and not outcome.ok and outcome.attempts >= 2
    assert str(outcome).startswith(f"127.0.0.1:{closed} refused after")


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_serve_script_listens_on_every_port(interpreter):
    ports = (free_port(), free_port())
    proc = subprocess.Popen(netpol_live.serve_command(interpreter, ports))
    try:
        targets = [Target("127.0.0.1", p, "open", 5.0) for p in ports]
        out = subprocess.run(netpol_live.connect_command("python3", targets), capture_output=True, text=True, timeout=30)
        assert all(o.ok for o in netpol_live.parse_outcomes(out.stdout)), out.stdout
    finally:
        proc.kill()
        proc.wait()


def test_unknown_interpreter_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="no TCP client for interpreter 'sh'"):
        netpol_live.connect_command("sh", [Target("a", 1)])


def test_parse_outcomes_takes_the_last_json_line_and_says_when_there_is_none():
    line = json.dumps([{"host": "h", "port": 1, "want": "closed", "result": "timeout", "attempts": 1, "ms": 1500}])
    (o,) = netpol_live.parse_outcomes("noise\n" + line + "\n")
    assert o.ok and o.result == "timeout"
    with pytest.raises(ValueError, match="no probe result"):
        netpol_live.parse_outcomes("Traceback ...")


def test_probe_pod_is_restricted_and_fits_a_quota():
    pod = netpol_live.probe_pod("p", "todo", "todo-backend:v1.0.0", ["python3", "-c", "0"],
                                dict(netpol.STRANGER_LABELS), uid=1001)
    spec = pod["spec"]
    (c,) = spec["containers"]
    assert pod["metadata"]["labels"] == {"shipcheck.io/netpol-probe": "stranger"}
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"] and sc["readOnlyRootFilesystem"]
    assert set(c["resources"]["requests"]) >= {"cpu", "memory"} and set(c["resources"]["limits"]) >= {"cpu", "memory"}
    assert c["imagePullPolicy"] == "IfNotPresent"


def test_stranger_labels_match_no_component_of_our_charts():
    from tests.test_netpol import releases

    components, _, _ = netpol.read_manifests(releases(), "todo")
    stranger = netpol.STRANGER_LABELS
    for comp in components.values():
        for pod in comp.pods:
            assert not netpol.selector_matches({"matchLabels": stranger}, pod.labels)
            assert not any(pod.labels.get(k) == v for k, v in stranger.items())


def test_scratch_policy_admits_only_the_first_port():
    spec = netpol_live.scratch_policy("x", 8080)["spec"]
    policy = netpol.Policy("check", "x", spec)
    server = netpol.Pod({"shipcheck.io/netpol-probe": "server"}, "x")
    client = netpol.Pod({"shipcheck.io/netpol-probe": "client"}, "x")
    assert netpol.connection([policy], client, server, 8080).admitted
    assert not netpol.connection([policy], client, server, 8081).admitted


def test_isolated_for_ingress_from_live_policies():
    policies = [netpol.Policy("api", "todo", {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": []}),
                netpol.Policy("eg", "todo", {"podSelector": {}, "policyTypes": ["Egress"]})]
    assert netpol_live.isolated_for_ingress(policies, "todo", {"app": "api"})
    assert not netpol_live.isolated_for_ingress(policies, "todo", {"app": "web"})
