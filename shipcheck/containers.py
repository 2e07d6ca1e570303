"""Run the built images on a private Docker network, the way the cluster will run them:
read-only root filesystem with tmpfs where the app writes, all capabilities dropped, no
privilege escalation, ports published on 127.0.0.1 only.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from . import commands, progress
from .config import Component, Config
from .web import http_get, http_json  # noqa: F401  moved to web.py; kept for old callers (stages 2 and 5)
from .waiting import WaitResult, wait_until

LABEL = "io.shipcheck.run"  # every container and network we create carries it


@dataclass
class Running:
    component: Component
    container: Any  # docker.models.containers.Container
    host_port: int | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.host_port}"

    def __repr__(self) -> str:
        return f"<Running {self.component.name} {self.container.short_id} port {self.host_port}>"


# --- pure ---------------------------------------------------------------------------------
def listening_ports(proc_net_tcp: str) -> set[int]:
    """Ports in LISTEN state (st 0A) from /proc/net/tcp or tcp6 text."""
    ports = set()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def status_uids(proc_status: str) -> tuple[int, ...]:
    """Real, effective, saved and filesystem UIDs from /proc/PID/status."""
    for line in proc_status.splitlines():
        if line.startswith("Uid:"):
            return tuple(int(v) for v in line.split()[1:])
    return ()


def health_summary(state: dict) -> str:
    health = state.get("Health") or {}
    last = (health.get("Log") or [{}])[-1]
    output = (last.get("Output") or "").strip().replace("\n", " ")[:300]
    return f"status {state.get('Status')}, health {health.get('Status')}, last probe exit {last.get('ExitCode')}: {output!r}"


# --- docker ------------------------------------------------------------------------------
def new_run_id() -> str:
    return time.strftime("%H%M%S") + "-" + secrets.token_hex(2)


def create_network(client, run_id: str):
    return client.networks.create(f"shipcheck-{run_id}", driver="bridge", labels={LABEL: run_id})


def tmpfs_mounts(component: Component) -> dict[str, str]:
    """A tmpfs per writable path, owned by the component's user as an emptyDir with fsGroup
    would be (Docker ignores `mode` for a path the image does not have)."""
    return {path: f"mode=1777,uid={component.uid},gid={component.uid}" for path in component.writable_paths}


def fast_healthcheck(client, ref: str) -> dict | None:
    """The image's own HEALTHCHECK command, probed every second instead of every 30 s, so the
    stage proves the command works without waiting out the production interval."""
    test = ((client.images.get(ref).attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test")
    if not test or test[0] == "NONE":
        return None
    return {"test": test, "interval": 1_000_000_000, "timeout": 5_000_000_000, "retries": 3,
            "start_period": 0}


def start(client, cfg: Config, component: Component, network, run_id: str, env: dict[str, str],
          command: list[str] | None = None) -> Running:
    ref = component.image_ref
    progress.say(f"starting {ref} on network {network.name} (read-only root, tmpfs {', '.join(component.writable_paths)})")
    container = client.containers.run(
        ref,
        command=command,
        name=f"shipcheck-{run_id}-{component.name}",
        detach=True,
        network=network.name,
        # Reachable by the component's name, as its Service name is in the cluster.
        networking_config={network.name: client.api.create_endpoint_config(aliases=[component.name])},
        environment=env,
        ports={f"{component.port}/tcp": ("127.0.0.1", None)},
        read_only=True,
        tmpfs=tmpfs_mounts(component),
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        healthcheck=fast_healthcheck(client, ref),
        labels={LABEL: run_id},
    )
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{component.port}/tcp") or []
    host_port = int(bindings[0]["HostPort"]) if bindings else None
    return Running(component, container, host_port)


def wait_healthy(running: Running, timeout_s: float) -> WaitResult:
    container = running.container

    def probe() -> dict:
        container.reload()
        return container.attrs["State"]

    def fatal(state: dict) -> str | None:
        if state.get("Status") in ("exited", "dead"):
            return f"the container exited with code {state.get('ExitCode')} at start"
        if not state.get("Health"):
            return "the image has no HEALTHCHECK, so Docker reports no health (see stage 1)"
        health = state.get("Health") or {}
        last = (health.get("Log") or [{}])[-1]
        # A probe that answered "no" is a verdict; one that timed out on a busy machine is not
        # (Docker keeps probing, and a slow start turns healthy later).
        if health.get("Status") == "unhealthy" and last.get("ExitCode") != -1:
            return "Docker marked it unhealthy"
        return None

    return wait_until(f"{running.component.name} to become healthy", probe,
                      done=lambda s: (s.get("Health") or {}).get("Status") == "healthy",
                      fatal=fatal, timeout_s=timeout_s, interval_s=0.5, describe=health_summary)


def run_once(client, cfg: Config, component: Component, network, command: list[str], env: dict[str, str],
             timeout_s: float = 120) -> tuple[int, str]:
    """Run a one-off command in the component's image (migrations); returns (exit code, logs)."""
    container = client.containers.run(component.image_ref, command=command, detach=True, network=network.name,
                                      environment=env, read_only=True,
                                      tmpfs=tmpfs_mounts(component),
                                      cap_drop=["ALL"], security_opt=["no-new-privileges"],
                                      labels={LABEL: "once"})
    try:
        code = container.wait(timeout=timeout_s)["StatusCode"]
        return code, commands.scrub(container.logs().decode(errors="replace"))
    finally:
        container.remove(force=True)


def logs(running: Running, tail: int = 200) -> str:
    try:
        return commands.scrub(running.container.logs(tail=tail).decode(errors="replace"))
    except Exception as exc:  # diagnostics never raise
        return f"(could not read logs: {exc})"


def stop(running: Running, timeout_s: float = 10) -> tuple[float, int]:
    """docker stop: SIGTERM, then SIGKILL after timeout_s. Returns (seconds taken, exit code)."""
    start = time.monotonic()
    running.container.stop(timeout=int(timeout_s))
    elapsed = time.monotonic() - start
    running.container.reload()
    return elapsed, running.container.attrs["State"]["ExitCode"]


def new_password() -> str:
    password = secrets.token_urlsafe(18)
    commands.redact(password)
    return password


def remove_all(client, run_id: str) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}={run_id}"}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": f"{LABEL}={run_id}"}):
        network.remove()
