"""Stage 1's build failure messages: the cause read from the build log, and the fix that matches it
(images.diagnose_build, BuildResult.failure_message). The log excerpts are what BuildKit, the legacy
builder, pip, npm, apt, curl and dash print on this machine or one like it."""

import pytest

from shipcheck import base_images, images
from shipcheck.base_images import BaseFacts

# docker 20.10's BuildKit, FROM an image that is neither in the engine nor reachable
BUILDKIT_NO_REGISTRY = """\
#3 [internal] load metadata for docker.io/library/python:3.12-slim
#3 sha256:282c60c0cd524c3474d0420c244e3d5df8cc4a2d2881ca24f552a4fde5d61527
#3 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/3.12-slim": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host
------
 > [internal] load metadata for docker.io/library/python:3.12-slim:
------
failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/3.12-slim": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host"""
NEWER_BUILDKIT = ("ERROR: failed to solve: node:20-slim: failed to resolve source metadata for "
                  "docker.io/library/node:20-slim: pull access denied, repository does not exist or may require "
                  "authorization")
LEGACY = """\
Step 1/4 : FROM ghcr.io/astral-sh/uv:0.5 AS uv
Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io: no such host
pull access denied for ghcr.io/astral-sh/uv, repository does not exist or may require 'docker login'"""
APK = """\
#6 [2/4] RUN apk add --no-cache libc6-compat
#6 0.412 /bin/sh: 1: apk: not found
#6 ERROR: process "/bin/sh -c apk add --no-cache libc6-compat" did not complete successfully: exit code: 127"""
PIP_TLS = ("WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection "
           "broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
           "failed: self-signed certificate in certificate chain (_ssl.c:1028)'))': /simple/fastapi/")
NPM_TLS = "#9 12.3 npm error code SELF_SIGNED_CERT_IN_CHAIN\n#9 12.3 npm error errno SELF_SIGNED_CERT_IN_CHAIN"
NPM_ISSUER = "npm ERR! code UNABLE_TO_GET_ISSUER_CERT_LOCALLY\nnpm ERR! unable to get local issuer certificate"
CURL_TLS = "curl: (60) SSL certificate problem: self-signed certificate in certificate chain"
PIP_DNS = ("WARNING: Retrying ... after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection."
           "HTTPSConnection object>: Failed to establish a new connection: [Errno -3] Temporary failure in name "
           "resolution')': /simple/six/")
APT_DNS = ("#5 1.20 Err:1 http://deb.debian.org/debian trixie InRelease\n"
           "#5 1.20   Temporary failure resolving 'deb.debian.org'")
NPM_REFUSED = "npm error code ECONNREFUSED\nnpm error syscall connect\nnpm error errno ECONNREFUSED"
COMPILE = ("#8 3.1 src/main.py:3: SyntaxError: invalid syntax\n"
           "#8 ERROR: process did not complete successfully: exit code: 1")

STAND_IN = {"python:3.13-slim": BaseFacts("python:3.13-slim", "engine", stand_in="debian-trixie python3.13 3.13.5")}
OFFICIAL = {"python:3.13-slim": BaseFacts("python:3.13-slim", "pulled")}


def test_a_base_image_no_registry_has_names_it_and_the_stand_in_fix():
    found = images.diagnose_build(BUILDKIT_NO_REGISTRY)
    assert found.kind == "base image"
    assert found.evidence.startswith("#3 ERROR: failed to do request: Head")
    assert found.fix.startswith("a base image (python:3.12-slim) is not in the engine and no registry answered. Fix: ")
    # No stand-in for 3.12: the message names the version gap instead of the set-up script.
    assert "Debian has Python 3.11 (bookworm) and 3.13 (trixie), not 3.12" in found.fix
    assert "network" not in found.fix


def test_a_base_image_with_a_stand_in_points_at_it():
    found = images.diagnose_build(NEWER_BUILDKIT)
    assert found.kind == "base image" and "(node:20-slim)" in found.fix
    assert "`bash setup/base-images.sh node:20-slim`" in found.fix and "registry" in found.fix


def test_the_legacy_builder_names_the_from_line():
    found = images.diagnose_build(LEGACY)
    assert found.kind == "base image" and "(ghcr.io/astral-sh/uv" in found.fix
    assert "no stand-in exists for it" in found.fix


def test_apk_on_a_debian_stand_in_says_alpine_and_the_fix():
    found = images.diagnose_build(APK, {"node:20-alpine": BaseFacts("node:20-alpine", "engine",
                                                                    stand_in="debian-trixie nodejs 20.19.2")})
    assert found.kind == "apk" and found.evidence == "#6 0.412 /bin/sh: 1: apk: not found"
    assert found.fix.startswith(base_images.ALPINE_FIX)
    assert "use a registry or a Debian-based base (node:20-slim)" in found.fix and "stand-in" in found.fix


@pytest.mark.parametrize("log, evidence", [
    (PIP_TLS, "CERTIFICATE_VERIFY_FAILED"), (NPM_TLS, "SELF_SIGNED_CERT_IN_CHAIN"),
    (NPM_ISSUER, "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"), (CURL_TLS, "SSL certificate problem"),
])
def test_tls_interception_gets_the_ca_fix_not_the_network(log, evidence):
    found = images.diagnose_build(log, OFFICIAL)
    assert found.kind == "tls" and evidence in found.evidence
    assert "--ca-bundle" in found.fix and "stand-in" in found.fix
    assert "official base python:3.13-slim does not trust this network's CA" in found.fix


def test_tls_on_a_stand_in_suggests_rebuilding_it():
    found = images.diagnose_build(PIP_TLS, STAND_IN)
    assert found.kind == "tls" and "`docker rmi` the stand-in" in found.fix


@pytest.mark.parametrize("log, evidence", [
    (PIP_DNS, "Temporary failure in name resolution"), (APT_DNS, "Temporary failure resolving 'deb.debian.org'"),
    (NPM_REFUSED, "ECONNREFUSED"),
])
def test_a_broken_network_is_called_the_network_not_the_registry(log, evidence):
    found = images.diagnose_build(log, STAND_IN)
    assert found.kind == "network" and evidence in found.evidence
    assert "network inside the build failed (not a registry or base-image problem)" in found.fix
    assert "setup/base-images.sh" not in found.fix


def test_anything_else_is_the_dockerfile():
    found = images.diagnose_build(COMPILE, STAND_IN)
    assert (found.kind, found.fix) == ("dockerfile", "Fix the Dockerfile step shown above.")


def test_failure_message_carries_the_log_the_cause_and_the_fix():
    result = images.BuildResult("todo-backend", "todo-backend:v1", False, 12.3, {}, PIP_DNS, STAND_IN)
    message = result.failure_message()
    assert message.startswith("todo-backend:v1: build failed after 12 s. Last lines:\n")
    assert "Cause: WARNING: Retrying" in message and message.endswith("HTTP_PROXY/HTTPS_PROXY).")


def test_a_build_not_started_says_why():
    result = images.BuildResult("web", "web:v1", False, 0.0, {}, problem="python:3.12-slim: Debian has ...")
    assert result.failure_message() == "web:v1: not built: python:3.12-slim: Debian has ..."
