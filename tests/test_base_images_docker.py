"""Unmodified Dockerfiles with official FROM lines build on a machine without a registry.

Each Dockerfile here is what a user writes: a hard-coded `FROM python:3.11-slim`, `node:20-slim`
or `node:20-alpine`, apt/pip/npm downloads with no CA secret mounted, alpine-style
addgroup/adduser and a wget HEALTHCHECK. They go through stage 1's own path
(images.prepare_bases, then images.build with BuildKit): a base missing from the engine is
pulled, or built as a stand-in under the official name (about a minute each, once per
machine; the stand-ins stay, as set-up's do). The test images are removed afterwards.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from shipcheck import base_images, images

pytestmark = pytest.mark.docker

TAG = f"test-{secrets.token_hex(3)}"

PYTHON_311 = """\
FROM python:3.11-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends curl \\
 && rm -rf /var/lib/apt/lists/* \\
 && curl -fsS -o /dev/null https://pypi.org/simple/six/
RUN pip install --no-cache-dir six==1.17.0
USER 1001:1001
CMD ["python", "-c", "import six, sys; print(sys.version.split()[0], six.__version__)"]
"""

NODE_SLIM = """\
FROM node:20-slim
# As the node images' docs say: WORKDIR creates directories owned by root.
RUN mkdir -p /home/node/app && chown node:node /home/node/app
WORKDIR /home/node/app
COPY --chown=node:node package.json ./
USER node
RUN npm install --no-audit --no-fund
CMD ["node", "-e", "console.log(require('is-number')(7), process.version, require('os').userInfo().uid)"]
"""

NODE_ALPINE = """\
FROM node:20-alpine
RUN addgroup -S -g 1001 nodejs && adduser -S -u 1001 -G nodejs nextjs
WORKDIR /app
COPY --chown=nextjs:nodejs server.js ./
USER nextjs
EXPOSE 3000
HEALTHCHECK --interval=1s --timeout=5s --start-period=170s --retries=3 \\
  CMD wget --no-verbose --tries=1 --spider http://127.0.0.1:3000/ || exit 1
CMD ["node", "server.js"]
"""

ALPINE_APK = """\
FROM node:20-alpine
RUN apk add --no-cache libc6-compat
USER node
"""

SERVER = "require('http').createServer((req, res) => res.end('ok')).listen(3000, '0.0.0.0');\n"


@pytest.fixture(scope="module")
def cli() -> list[str]:
    return images.docker_cli()


@pytest.fixture
def project(tmp_path_factory, docker_client):
    """project(name, dockerfile, files) -> (component, cfg) for images.build; the image is removed after."""
    made = []

    def make(name: str, dockerfile: str, files: dict[str, str] | None = None):
        context = tmp_path_factory.mktemp(name)
        (context / "Dockerfile").write_text(dockerfile)
        for file, text in (files or {}).items():
            (context / file).write_text(text)
        component = SimpleNamespace(name=name, dockerfile=context / "Dockerfile", context=context,
                                    image=f"shipcheck-test-bases/{name}", tag=TAG)
        cfg = SimpleNamespace(timeouts_s={"build": 900}, image_ref=lambda c: f"{c.image}:{c.tag}")
        made.append(f"{component.image}:{TAG}")
        return component, cfg

    yield make
    for ref in made:
        try:
            docker_client.images.remove(ref, force=True)
        except Exception:
            pass  # never built


def build(cli, docker_client, component, cfg) -> images.BuildResult:
    result = images.build(cfg, component, cli=cli, build_args={}, ca_bundle=None, docker_client=docker_client)
    assert result.ok, result.failure_message()
    return result


def run(docker_client, ref: str, **kwargs) -> str:
    return docker_client.containers.run(ref, remove=True, **kwargs).decode().strip()


def test_python_311_slim_with_apt_and_pip_and_no_ca_secret(cli, docker_client, project):
    result = build(cli, docker_client, *project("python311", PYTHON_311))
    facts = result.bases["python:3.11-slim"]
    version, six = run(docker_client, result.ref).split()
    assert version.startswith("3.11.") and six == "1.17.0"
    if facts.stand_in:  # a 3.11 Dockerfile gets Python 3.11, from Debian bookworm
        assert facts.stand_in.startswith("debian-bookworm python3.11 3.11.")


def test_node_20_slim_as_user_node_with_npm_install(cli, docker_client, project):
    result = build(cli, docker_client, *project("nodeslim", NODE_SLIM,
                                                {"package.json": '{"name": "t", "version": "1.0.0", '
                                                                 '"dependencies": {"is-number": "7.0.0"}}'}))
    is_number, version, uid = run(docker_client, result.ref).split()
    assert (is_number, version.split(".")[0], uid) == ("true", "v20", "1000")


def test_node_20_alpine_with_alpine_users_and_a_wget_healthcheck(cli, docker_client, project):
    result = build(cli, docker_client, *project("nodealpine", NODE_ALPINE, {"server.js": SERVER}))
    assert run(docker_client, result.ref, command=["id"]) == "uid=1001(nextjs) gid=1001(nodejs) groups=1001(nodejs)"
    container = docker_client.containers.run(result.ref, detach=True)
    try:
        # Generous: this proves busybox's wget works as a HEALTHCHECK, not how fast a loaded machine starts node.
        deadline, status = time.monotonic() + 180, "starting"
        while time.monotonic() < deadline and status != "healthy":
            time.sleep(1)
            container.reload()
            status = container.attrs["State"].get("Health", {}).get("Status")
        log = container.attrs["State"].get("Health", {}).get("Log") or [{}]
        assert status == "healthy", f"{result.ref}: health {status} after 180 s; last check: {log[-1]}"
    finally:
        container.remove(force=True)


def test_apk_without_a_registry_fails_with_the_alpine_message(cli, docker_client, project):
    component, cfg = project("alpineapk", ALPINE_APK)
    result = images.build(cfg, component, cli=cli, build_args={}, ca_bundle=None, docker_client=docker_client)
    if result.bases["node:20-alpine"].official:
        pytest.skip("the official node:20-alpine is in this engine: apk works there")
    assert not result.ok and result.duration_s == 0.0  # refused before building
    assert result.failure_message().startswith(f"{result.ref}: not built: {base_images.ALPINE_FIX}. apk runs at line 2")
    # Without the early check, the build itself fails on apk and the log classifier says the same.
    built = images.build(cfg, component, cli=cli, build_args={}, ca_bundle=None)
    assert not built.ok and images.diagnose_build(built.log_tail).kind == "apk"
    assert base_images.ALPINE_FIX in built.failure_message()


def test_the_stand_ins_trust_the_host_ca_and_say_what_they_are(docker_client):
    """Every stand-in the tests above used: labelled, CA variables set, the host's extra CAs installed."""
    host_extra = sorted(p.name for p in Path("/usr/local/share/ca-certificates").glob("*.crt"))
    for ref in ("python:3.11-slim", "node:20-slim", "node:20-alpine"):
        image = docker_client.images.get(ref)
        labels = image.attrs["Config"].get("Labels") or {}
        if base_images.STAND_IN_LABEL not in labels:
            continue  # an official image: nothing of ours in it
        env = dict(e.split("=", 1) for e in image.attrs["Config"]["Env"])
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS"):
            assert env[name] == "/etc/ssl/certs/ca-certificates.crt", (ref, name)
        assert labels[base_images.STAND_IN_FOR_LABEL] == ref
        installed = run(docker_client, ref, command=["ls", "/usr/local/share/ca-certificates"])
        # The host's own additions (a proxy's CA) are in the stand-in's trust store, unless Debian has them already.
        assert installed or not host_extra, f"{ref}: none of the host's CAs {host_extra} installed"
