"""Stage 2: run each image on a private Docker network, as the cluster will run it.

The `stack` fixture starts the database (with a throwaway password), applies the
migrations, then starts the apps, read-only and without capabilities, published on
127.0.0.1. Containers and the network are removed afterwards, after a failure too.
"""

import secrets

import pytest
import testinfra

from shipcheck import commands, containers, progress

pytestmark = pytest.mark.order(2)


@pytest.fixture(scope="module")
def stack(cfg, docker_client, built, register_diagnoser):
    run_id = containers.new_run_id()
    network = containers.create_network(docker_client, run_id)
    running: dict[str, containers.Running] = {}
    unregister = register_diagnoser("containers", lambda: [
        (f"container {r.component.name}: {containers.health_summary(r.container.attrs['State'])}", containers.logs(r))
        for r in running.values()])
    try:
        database_url = None
        for db in cfg.databases:
            built(db)
            password = containers.new_password()
            env = {"POSTGRES_USER": "todo", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "todo"}
            running[db.name] = containers.start(docker_client, cfg, db, network, run_id, env)
            waited = containers.wait_healthy(running[db.name], cfg.timeouts_s["container_healthy"])
            if not waited:
                pytest.fail(f"database {db.name} did not become healthy: {waited.reason}; "
                            f"{containers.health_summary(waited.state)}")
            database_url = f"postgresql://todo:{password}@{db.name}:{db.port}/todo"
            commands.redact(database_url)
        for app in cfg.apps:
            built(app)
            env = dict(app.run_env)
            if app.uses_database and database_url:
                env["DATABASE_URL"] = database_url
                if app.migrate_command:
                    progress.say(f"{app.name}: running migrations: {' '.join(app.migrate_command)}")
                    code, output = containers.run_once(docker_client, cfg, app, network, list(app.migrate_command), env)
                    if code:
                        pytest.fail(f"{app.name}: migrations `{' '.join(app.migrate_command)}` exited {code}:\n{output[-2000:]}")
            running[app.name] = containers.start(docker_client, cfg, app, network, run_id, env)
        yield running
    finally:
        unregister()
        containers.remove_all(docker_client, run_id)


def test_becomes_healthy(stack, component, cfg, figures):
    running = stack[component.name]
    waited = containers.wait_healthy(running, cfg.timeouts_s["container_healthy"])
    figures.add("containers", component=component.name, healthy_after_s=round(waited.elapsed_s, 1), ok=waited.ok)
    assert waited, (
        f"{component.name}: Docker health not 'healthy': {waited.reason} ({containers.health_summary(waited.state)}), "
        f"limit {cfg.timeouts_s['container_healthy']:g} s. Logs:\n{containers.logs(running, 40)}\n"
        f"Fix: make the HEALTHCHECK command succeed (is the app serving {component.health_path or 'its port'}?), "
        "or raise timeouts_s.container_healthy.")


def test_health_endpoints_answer_200(stack, app_component):
    running = stack[app_component.name]
    for path in filter(None, (app_component.health_path, app_component.readiness_path)):
        status, body = containers.http_get(running.url + path)
        assert status == 200, (f"{app_component.name}: GET {path} answered {status or body}, expected 200: {body[:300]!r}. "
                               f"Fix: the app must serve {path}, or set the path in shipcheck.yaml.")


def test_frontend_reaches_backend_task_round_trip(stack, cfg):
    """Through each app that talks to another (run_env names it), a task is created, listed and deleted."""
    pairs = [(a, b) for a in cfg.apps for b in cfg.apps
             if a is not b and any(f"://{b.name}:" in v for v in a.run_env.values())]
    if not pairs:
        pytest.skip("no app names another in run_env")
    for front, back in pairs:
        base = f"{stack[front.name].url}/api/shipcheck-{secrets.token_hex(3)}/tasks"
        title = f"stage-2 round trip {secrets.token_hex(2)}"
        status, created = containers.http_json("POST", base, {"title": title})
        assert status == 201, (f"POST {base} through {front.name} to {back.name} answered {status}: {created!r}; "
                               f"expected 201. Fix: {front.name}'s proxy must reach {back.name} ({front.run_env}).")
        status, listed = containers.http_json("GET", base)
        assert status == 200 and any(t.get("title") == title for t in listed), (
            f"GET {base} answered {status} without the new task: {listed!r}")
        status, _ = containers.http_json("DELETE", f"{base}/{created['id']}")
        assert status == 204, f"DELETE {base}/{created['id']} answered {status}, expected 204"


@pytest.fixture
def host(stack, component):
    return testinfra.get_host(f"docker://{stack[component.name].container.id}")


def test_runs_as_configured_uid(host, component):
    uids = containers.status_uids(host.file("/proc/1/status").content_string)
    assert uids and set(uids) == {component.uid}, (
        f"{component.name}: PID 1 runs with UIDs {uids} (real, effective, saved, fs), expected all {component.uid}. "
        f"Fix: `USER {component.uid}:{component.uid}` in the Dockerfile's final stage, and no setuid entrypoint.")


def test_listens_on_its_port(host, component):
    ports = containers.listening_ports(host.file("/proc/net/tcp").content_string)
    if host.file("/proc/net/tcp6").exists:
        ports |= containers.listening_ports(host.file("/proc/net/tcp6").content_string)
    assert component.port in ports, (
        f"{component.name}: listening on {sorted(ports)}, expected {component.port}. "
        f"Fix: bind the server to 0.0.0.0:{component.port}, or set port in shipcheck.yaml.")


def test_root_filesystem_read_only(stack, host, component):
    assert stack[component.name].container.attrs["HostConfig"]["ReadonlyRootfs"], "container was not started read-only"
    wrote_root = host.run("touch /.shipcheck-probe")
    assert wrote_root.rc != 0, f"{component.name}: writing / succeeded on a read-only root filesystem"
    for path in component.writable_paths:
        probe = host.run(f"touch {path}/.shipcheck-probe")
        assert probe.rc == 0, (f"{component.name}: cannot write {path} (tmpfs): {probe.stderr.strip()}. "
                               "Fix: list only paths the app writes in writable_paths.")


def test_stops_on_sigterm_within_10s(stack, component, figures):
    seconds, code = containers.stop(stack[component.name], timeout_s=10)
    figures.add("containers", component=component.name, stop_s=round(seconds, 1), exit_code=code)
    assert seconds < 10 and code != 137, (
        f"{component.name}: `docker stop` took {seconds:.1f} s (exit code {code}); limit 10 s before SIGKILL. "
        "Fix: the process at PID 1 must handle SIGTERM (exec form CMD, no shell wrapper; handle the signal in the app).")
