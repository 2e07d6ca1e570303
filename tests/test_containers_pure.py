"""Container facts and the run posture, without Docker (containers.py).

/proc parsing and health summaries are pure; `start`, `wait_healthy`, `stop`, `run_once`
and `remove_all` are driven through small fakes of the Docker SDK objects they touch.
"""

import json
import re
from pathlib import Path

import pytest
from local_http import QuietHandler, serving

from shipcheck import web, commands, containers
from shipcheck.config import Component, Config

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1 1 0000 100 0 0 10 0
   1: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 2 1 0000 100 0 0 10 0
   2: 0100007F:1F40 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000  1001        0 3 1 0000 20 4 30 10 -1
   3: 0100007F:D431 0100007F:1538 06 00000000:00000000 03:00000DC2 00000000     0        0 0 3 0000
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when
   0: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000
"""
PROC_STATUS = "Name:\tpython3\nState:\tS (sleeping)\nTgid:\t1\nPid:\t1\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\n"


def test_listening_ports_are_the_listen_state_only():
    assert containers.listening_ports(PROC_NET_TCP) == {8000, 3000}  # not the ESTABLISHED or TIME_WAIT lines
    assert containers.listening_ports(PROC_NET_TCP6) == {3000}
    assert containers.listening_ports(PROC_NET_TCP.splitlines()[0]) == set()
    assert containers.listening_ports("") == set()


def test_status_uids_are_real_effective_saved_fs():
    assert containers.status_uids(PROC_STATUS) == (1001, 1001, 1001, 1001)
    assert containers.status_uids("Uid:\t0\t1001\t0\t1001\n") == (0, 1001, 0, 1001)
    assert containers.status_uids("Name:\tsh\n") == ()


def test_health_summary_shows_the_last_probe():
    state = {"Status": "running", "Health": {"Status": "unhealthy", "Log": [
        {"ExitCode": 0, "Output": "ok"},
        {"ExitCode": 1, "Output": "curl: (7) Failed to connect\nto localhost port 8000\n"}]}}
    assert containers.health_summary(state) == ("status running, health unhealthy, last probe exit 1: "
                                                "'curl: (7) Failed to connect to localhost port 8000'")


def test_health_summary_without_health_or_probes():
    assert containers.health_summary({"Status": "exited"}) == "status exited, health None, last probe exit None: ''"
    assert containers.health_summary({"Status": "running", "Health": {"Status": "starting", "Log": []}}) == (
        "status running, health starting, last probe exit None: ''")


def test_health_summary_truncates_long_output():
    state = {"Status": "running", "Health": {"Status": "unhealthy", "Log": [{"ExitCode": 1, "Output": "x" * 1000}]}}
    assert len(containers.health_summary(state)) < 400


def test_run_ids_are_readable_and_unique():
    ids = {containers.new_run_id() for _ in range(20)}
    assert all(re.fullmatch(r"\d{6}-[0-9a-f]{4}", i) for i in ids) and len(ids) > 1


def test_new_password_is_redacted_everywhere(monkeypatch):
    monkeypatch.setattr(commands, "_SECRETS", set())
    password = containers.new_password()
    assert len(password) >= 20 and commands.scrub(f"pw={password}") == f"pw={commands.MASK}"


# --- fakes of the Docker SDK ---------------------------------------------------------------------
class FakeImage:
    def __init__(self, healthcheck):
        self.attrs = {"Config": {"Healthcheck": healthcheck} if healthcheck is not None else {}}


class FakeContainer:
    def __init__(self, states=(), ports=None, logs=b"", exit_code=0, wait_code=0):
        self.states = list(states) or [{"Status": "running"}]
        self.attrs = {"State": self.states[0], "HostConfig": {"ReadonlyRootfs": True},
                      "NetworkSettings": {"Ports": ports or {}}}
        self.short_id, self.id = "abc123", "abc123def456"
        self._logs, self._exit_code, self._wait_code = logs, exit_code, wait_code
        self.calls = []

    def reload(self):
        if len(self.states) > 1:
            self.states.pop(0)
        self.attrs["State"] = {**self.states[0]}
        self.attrs["State"].setdefault("ExitCode", self._exit_code)

    def logs(self, tail=None):
        if isinstance(self._logs, Exception):
            raise self._logs
        return self._logs

    def stop(self, timeout):
        self.calls.append(("stop", timeout))
        self.states = [{"Status": "exited", "ExitCode": self._exit_code}]

    def wait(self, timeout):
        self.calls.append(("wait", timeout))
        return {"StatusCode": self._wait_code}

    def remove(self, force=False):
        self.calls.append(("remove", force))


class FakeCollection:
    def __init__(self, items=(), image=None, container=None):
        self.items, self.image, self.container = list(items), image, container
        self.calls = []

    def get(self, ref):
        self.calls.append(("get", ref))
        return self.image

    def run(self, *args, **kwargs):
        self.calls.append(("run", args, kwargs))
        return self.container

    def list(self, **kwargs):
        self.calls.append(("list", kwargs))
        return self.items

    def create(self, *args, **kwargs):
        self.calls.append(("create", args, kwargs))
        return "network"


class FakeApi:
    def create_endpoint_config(self, aliases):
        return {"Aliases": aliases}


class FakeClient:
    def __init__(self, image=None, container=None, containers=(), networks=()):
        self.images = FakeCollection(image=image)
        self.containers = FakeCollection(items=containers, container=container)
        self.networks = FakeCollection(items=networks)
        self.api = FakeApi()


class FakeNetwork:
    name = "shipcheck-120000-abcd"


def web_component(**kw) -> Component:
    fields = dict(name="todo-backend", context=Path("/ctx"), dockerfile=Path("/ctx/Dockerfile"), image="todo-backend",
                  port=8000, size_budget_mb=300, health_path="/health", writable_paths=("/tmp", "/app/cache"), tag="v1.0.0")
    fields.update(kw)
    return Component(**fields)


def cfg_for(*components) -> Config:
    return Config(root=Path("/"), app="todo", version="v1.0.0", components={c.name: c for c in components},
                  hadolint_threshold="warning", namespace="todo", resource_quota={},
                  kubernetes_version="1.34", timeouts_s={"container_healthy": 5.0})


# --- healthcheck and start ---------------------------------------------------------------------
def test_fast_healthcheck_keeps_the_command_and_probes_every_second():
    test = ["CMD", "python3", "-c", "probe /health"]
    client = FakeClient(image=FakeImage({"Test": test, "Interval": 30_000_000_000}))
    assert containers.fast_healthcheck(client, "todo-backend:v1.0.0") == {
        "test": test, "interval": 1_000_000_000, "timeout": 5_000_000_000, "retries": 3, "start_period": 0}
    assert client.images.calls == [("get", "todo-backend:v1.0.0")]


@pytest.mark.parametrize("healthcheck", [None, {}, {"Test": ["NONE"]}, {"Test": []}])
def test_fast_healthcheck_is_none_without_a_healthcheck(healthcheck):
    assert containers.fast_healthcheck(FakeClient(image=FakeImage(healthcheck)), "x:v1") is None


def test_start_runs_the_image_as_the_cluster_will():
    component = web_component()
    container = FakeContainer(ports={"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]})
    client = FakeClient(image=FakeImage({"Test": ["CMD", "true"]}), container=container)
    running = containers.start(client, cfg_for(component), component, FakeNetwork(), "120000-abcd",
                               {"DATABASE_URL": "postgresql://x"})
    (_, args, kw), = [c for c in client.containers.calls if c[0] == "run"]
    assert args == ("todo-backend:v1.0.0",)
    assert kw["read_only"] is True and kw["cap_drop"] == ["ALL"] and kw["security_opt"] == ["no-new-privileges"]
    assert kw["ports"] == {"8000/tcp": ("127.0.0.1", None)}  # published on loopback only, any free port
    # owned by the component's user: Docker ignores mode for a path the image does not have
    assert kw["tmpfs"] == {"/tmp": "mode=1777,uid=1001,gid=1001", "/app/cache": "mode=1777,uid=1001,gid=1001"}
    assert kw["network"] == FakeNetwork.name and kw["networking_config"] == {FakeNetwork.name: {"Aliases": ["todo-backend"]}}
    assert kw["labels"] == {containers.LABEL: "120000-abcd"} and kw["name"] == "shipcheck-120000-abcd-todo-backend"
    assert kw["environment"] == {"DATABASE_URL": "postgresql://x"} and kw["detach"] is True
    assert kw["healthcheck"]["interval"] == 1_000_000_000
    assert running.host_port == 49153 and running.url == "http://127.0.0.1:49153"
    assert repr(running) == "<Running todo-backend abc123 port 49153>"


def test_start_of_a_container_that_exited_has_no_port():
    component = web_component()
    client = FakeClient(image=FakeImage(None), container=FakeContainer(ports={}))
    running = containers.start(client, cfg_for(component), component, FakeNetwork(), "r", {})
    assert running.host_port is None


# --- waits ----------------------------------------------------------------------------------------
def running_with(states) -> containers.Running:
    return containers.Running(web_component(), FakeContainer(states=states), 49153)


def test_wait_healthy_passes_once_docker_says_healthy():
    waited = containers.wait_healthy(running_with([
        {"Status": "running", "Health": {"Status": "starting"}},
        {"Status": "running", "Health": {"Status": "healthy"}}]), timeout_s=5)
    assert waited.ok and waited.what == "todo-backend to become healthy"


def test_wait_healthy_stops_at_once_when_the_container_exits():
    waited = containers.wait_healthy(running_with([{"Status": "exited", "ExitCode": 3}]), timeout_s=30)
    assert not waited and waited.reason == "the container exited with code 3 at start" and waited.elapsed_s < 5


def test_wait_healthy_stops_at_once_when_docker_says_unhealthy():
    waited = containers.wait_healthy(running_with([{"Status": "running", "Health": {"Status": "unhealthy"}}]),
                                     timeout_s=30)
    assert not waited and waited.reason == "Docker marked it unhealthy" and waited.elapsed_s < 5


def test_wait_healthy_times_out_without_a_verdict():
    waited = containers.wait_healthy(running_with([{"Status": "running", "Health": {"Status": "starting"}}]),
                                     timeout_s=0.6)
    assert not waited and waited.reason == "timed out after 0.6 s" and waited.state["Status"] == "running"


# --- stop, logs, one-off runs, cleanup -----------------------------------------------------------------
def test_stop_measures_seconds_and_exit_code():
    running = containers.Running(web_component(), FakeContainer(exit_code=137), 1)
    seconds, code = containers.stop(running, timeout_s=10)
    assert code == 137 and 0 <= seconds < 5 and running.container.calls == [("stop", 10)]


def test_logs_are_scrubbed_and_never_raise(monkeypatch):
    monkeypatch.setattr(commands, "_SECRETS", {"hunter2hunter2"})
    assert containers.logs(containers.Running(web_component(), FakeContainer(logs=b"pw hunter2hunter2\n"), 1)) == (
        f"pw {commands.MASK}\n")
    broken = containers.Running(web_component(), FakeContainer(logs=RuntimeError("gone")), 1)
    assert containers.logs(broken) == "(could not read logs: gone)"


def test_run_once_returns_code_and_scrubbed_logs_and_removes_the_container(monkeypatch):
    monkeypatch.setattr(commands, "_SECRETS", {"hunter2hunter2"})
    component = web_component()
    container = FakeContainer(logs=b"migrating with hunter2hunter2", wait_code=1)
    client = FakeClient(container=container)
    code, output = containers.run_once(client, cfg_for(component), component, FakeNetwork(), ["alembic", "upgrade"],
                                       {}, timeout_s=7)
    assert (code, output) == (1, f"migrating with {commands.MASK}")
    assert container.calls == [("wait", 7), ("remove", True)]
    (_, _, kw), = client.containers.calls
    assert kw["read_only"] is True and kw["cap_drop"] == ["ALL"] and kw["command"] == ["alembic", "upgrade"]


def test_remove_all_asks_only_for_this_runs_label():
    mine = FakeContainer()
    network = FakeContainer()
    client = FakeClient(containers=[mine], networks=[network])
    containers.remove_all(client, "120000-abcd")
    assert client.containers.calls == [("list", {"all": True, "filters": {"label": f"{containers.LABEL}=120000-abcd"}})]
    assert client.networks.calls == [("list", {"filters": {"label": f"{containers.LABEL}=120000-abcd"}})]
    assert mine.calls == [("remove", True)] and network.calls == [("remove", False)]


# --- HTTP helpers, against a real local server ------------------------------------------------------------
class _Handler(QuietHandler):
    def do_GET(self):
        if self.path == "/health":
            self._send(200, b'{"status": "ok"}')
        elif self.path == "/text-error":
            self._send(500, b"internal error")
        else:
            self._send(404, b'{"detail": "not found"}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self._send(201, json.dumps({"id": 1, **body}).encode())

    def do_DELETE(self):
        self.send_response(204)
        self.end_headers()


@pytest.fixture(scope="module")
def local_server():
    with serving(_Handler) as url:
        yield url


def test_http_get_returns_status_and_body_for_errors_too(local_server):
    assert web.http_get(local_server + "/health") == (200, '{"status": "ok"}')
    assert web.http_get(local_server + "/missing") == (404, '{"detail": "not found"}')


def test_http_json_round_trip(local_server):
    assert web.http_json("POST", local_server + "/tasks", {"title": "t"}) == (201, {"id": 1, "title": "t"})
    assert web.http_json("DELETE", local_server + "/tasks/1") == (204, None)
    assert web.http_json("GET", local_server + "/missing") == (404, {"detail": "not found"})
    assert web.http_json("GET", local_server + "/text-error") == (500, "internal error")
