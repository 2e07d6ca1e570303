"""Stage 2: run each image on a private Docker network, as the cluster will run it.

The `stack` fixture starts the databases (with throwaway passwords), applies the
migrations, then starts the apps, read-only and without capabilities, published on
127.0.0.1, each reachable by its component name. The apps' environment is their run_env,
with `${secret:NAME:KEY}` filled from Secrets resolved for this stage (a database URL points
at the stage's own database container). Containers and the network are removed afterwards,
after a failure too.
"""

import os
import re

import pytest
import testinfra

from shipcheck import app_secrets, checks, containers, progress, web

pytestmark = pytest.mark.order(2)
PLACEHOLDER = re.compile(r"\$\{(secret|config_map):([^:}]+):([^}]+)\}")


def fill(env: dict[str, str], plan: app_secrets.SecretsPlan, component: str) -> dict[str, str]:
    """run_env with ${secret:NAME:KEY} and ${config_map:NAME:KEY} filled (configuration
    validation made sure each names a declared key)."""
    def value(match: re.Match) -> str:
        kind, name, key = match.groups()
        found = plan.value(name, key) if kind == "secret" else plan.config_maps.get(name, {}).get(key)
        if found is None:
            pytest.fail(f"components.{component}.run_env: {match.group(0)} names no key resolved for stage 2. Fix: "
                        "correct the name or the key.", pytrace=False)
        return found
    return {k: PLACEHOLDER.sub(value, v) for k, v in env.items()}


@pytest.fixture(scope="module")
def stack(cfg, docker_client, built, register_diagnoser):
    run_id = containers.new_run_id()
    network = containers.create_network(docker_client, run_id)
    running: dict[str, containers.Running] = {}
    unregister = register_diagnoser("containers", lambda: [
        (f"container {r.component.name}: {containers.health_summary(r.container.attrs['State'])}", containers.logs(r))
        for r in running.values()])
    try:
        # Secrets for this stage: no external database, every database is a container here.
        external = {src.env or "DATABASE_URL" for keys in cfg.secrets.values() for src in keys.values()
                    if src.kind == "database_url"}
        environ = {k: v for k, v in os.environ.items() if k not in external}
        plan = app_secrets.resolve(cfg, environ, app_secrets.nothing_existing, lambda db: db.name)
        for db in cfg.databases:
            built(db)
            password = plan.value(db.database.password_secret, db.database.password_key) if db.database else ""
            env = {"POSTGRES_USER": db.database.user, "POSTGRES_PASSWORD": password,
                   "POSTGRES_DB": db.database.name} if db.database else {}
            running[db.name] = containers.start(docker_client, cfg, db, network, run_id, env)
            waited = containers.wait_healthy(running[db.name], cfg.timeouts_s["container_healthy"])
            if not waited:
                pytest.fail(f"database {db.name} did not become healthy: {waited.reason}; "
                            f"{containers.health_summary(waited.state)}")
        for app in cfg.apps:
            built(app)
            env = fill(app.run_env, plan, app.name)
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


@pytest.fixture
def started(stack, component) -> containers.Running:
    return stack[component.name]


@pytest.fixture
def alive(started, component) -> containers.Running:
    """The component's container, only while it runs: a test that looks inside cannot judge
    a container that exited, and says where the cause is reported."""
    started.container.reload()
    state = started.container.attrs["State"]
    if state.get("Status") != "running":
        pytest.skip(f"{component.name} is not running (exited with code {state.get('ExitCode')}): see "
                    f"test_becomes_healthy[{component.name}]")
    return started


def test_becomes_healthy(started, component, cfg, figures):
    waited = containers.wait_healthy(started, cfg.timeouts_s["container_healthy"])
    figures.add("containers", component=component.name, healthy_after_s=round(waited.elapsed_s, 1), ok=waited.ok)
    if waited:
        return
    log = containers.logs(started, 40)
    if "exited" in waited.reason:
        fix = ("read the log above: the app failed at start. If it writes to its image's files, list those paths in "
               "writable_paths (the root filesystem is read-only, as in the cluster).")
    elif "no HEALTHCHECK" in waited.reason:
        fix = "add a HEALTHCHECK to the Dockerfile (see test_healthcheck_on_health_path in stage 1)."
    else:
        fix = (f"make the HEALTHCHECK command succeed (is the app serving {component.health_path or 'its port'}?), "
               "or raise timeouts_s.container_healthy.")
    pytest.fail(f"{component.name}: Docker health not 'healthy': {waited.reason} "
                f"({containers.health_summary(waited.state)}), limit {cfg.timeouts_s['container_healthy']:g} s. "
                f"Log:\n{log}\nFix: {fix}", pytrace=False)


@pytest.fixture
def host(alive):
    return testinfra.get_host(f"docker://{alive.container.id}")


def test_listens_on_its_port(host, component):
    ports = containers.listening_ports(host.file("/proc/net/tcp").content_string)
    if host.file("/proc/net/tcp6").exists:
        ports |= containers.listening_ports(host.file("/proc/net/tcp6").content_string)
    assert component.port in ports, (
        f"{component.name}: listening on {sorted(ports)}, expected {component.port}. "
        f"Fix: bind the server to 0.0.0.0:{component.port}, or set port in shipcheck.yaml.")


def test_health_endpoints_answer_200(stack, app_component):
    running = stack[app_component.name]
    running.container.reload()
    if running.container.attrs["State"].get("Status") != "running":
        pytest.skip(f"{app_component.name} is not running: see test_becomes_healthy[{app_component.name}]")
    for path in filter(None, (app_component.health_path, app_component.readiness_path)):
        status, body = web.http_get(running.url + path)
        assert status == 200, (f"{app_component.name}: GET {path} answered {status or body}, expected 200: "
                               f"{body[:300]!r}. Fix: the app must serve {path}, or set the path in shipcheck.yaml.")


def test_declared_checks_pass_in_containers(stack, cfg, figures):
    """The checks declared for stage 2, each against its component's container."""
    def url_for(name: str) -> str:
        found = stack.get(name)
        if found is None:
            raise checks.Unreachable(f"{name} has no container in stage 2")
        found.container.reload()
        if found.container.attrs["State"].get("Status") != "running":
            raise checks.Unreachable(f"{name}'s container exited (code {found.container.attrs['State'].get('ExitCode')})")
        return found.url

    results = checks.run(cfg.checks, 2, url_for)
    for result in results:
        figures.add("checks (stage 2)", check=result.check, component=result.component, ok=result.ok,
                    request=result.request, status=result.status, seconds=round(result.duration_s, 2))
    if not results:
        pytest.skip("no checks declared for stage 2 in shipcheck.yaml")
    assert not checks.first_failure(results), checks.failure_message(results)


def test_runs_as_configured_uid(host, component):
    uids = containers.status_uids(host.file("/proc/1/status").content_string)
    assert uids and set(uids) == {component.uid}, (
        f"{component.name}: PID 1 runs with UIDs {uids} (real, effective, saved, fs), expected all {component.uid}. "
        f"Fix: `USER {component.uid}:{component.uid}` in the Dockerfile's final stage, and no setuid entrypoint.")


def test_root_filesystem_read_only(alive, host, component):
    assert alive.container.attrs["HostConfig"]["ReadonlyRootfs"], "container was not started read-only"
    wrote_root = host.run("touch /.shipcheck-probe")
    assert wrote_root.rc != 0, f"{component.name}: writing / succeeded on a read-only root filesystem"
    for path in component.writable_paths:
        probe = host.run(f"touch {path}/.shipcheck-probe")
        assert probe.rc == 0, (f"{component.name}: cannot write {path} (tmpfs): {probe.stderr.strip()}. "
                               "Fix: list only paths the app writes in writable_paths.")


def test_stops_on_sigterm_within_10s(alive, component, figures):
    seconds, code = containers.stop(alive, timeout_s=10)
    figures.add("containers", component=component.name, stop_s=round(seconds, 1), exit_code=code)
    assert seconds < 10 and code != 137, (
        f"{component.name}: `docker stop` took {seconds:.1f} s (exit code {code}); limit 10 s before SIGKILL. "
        "Fix: the process at PID 1 must handle SIGTERM (exec form CMD, no shell wrapper; handle the signal in the app).")
