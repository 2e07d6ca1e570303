"""The registry path (issue 14): how images reach a cluster that is not on this machine.

A `registry:` reference (`host[:port]/path`) names where stage 1 pushes and stage 4 pulls
from. Credentials come only from the environment (REGISTRY_USERNAME/REGISTRY_PASSWORD) or
the user's Docker credential configuration (~/.docker/config.json: `auths`, or a credential
helper), never from a file of ours. The password is registered for masking the moment it is
read, and goes to the cluster only inside an image pull Secret made in memory.

- `parse` checks a reference; `remote_repository` names an image under it.
- `check` asks the registry's /v2/ with the credentials (HTTP basic or token auth, as the
  distribution spec has it) and says what is wrong before anything is built.
- `push` tags and pushes with the Docker SDK (one progress line per layer), then
  `manifest_digest` reads the pushed manifest's digest back from the registry.
- `pull_secret_manifest` is the kubernetes.io/dockerconfigjson Secret the pods pull with.

Pure helpers (parsing, challenges, URLs, push events) are unit-tested without a registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from . import commands, progress

ENV_USERNAME = "REGISTRY_USERNAME"
ENV_PASSWORD = "REGISTRY_PASSWORD"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
# Docker Hub is named docker.io in references but answers the API elsewhere, and keeps its
# credentials under its v1 index address.
DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
PULL_SECRET_NAME = "shipcheck-registry-pull"
TIMEOUT_S = 10.0

_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(rf"^(?P<host>{_HOST})(?P<path>(?:/{_PATH_PART})*)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class RegistryError(ValueError):
    """A registry reference or credential source that cannot be used, with the fix."""


# --- references (pure) ----------------------------------------------------------------------
@dataclass(frozen=True)
class Registry:
    """Where images go: `host` is host[:port], `path` the prefix under it (may be '')."""

    host: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.host}/{self.path}" if self.path else self.host

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.host in DOCKER_HUB else self.host

    @property
    def auth_key(self) -> str:
        """The key credentials are filed under (Docker config, pull Secret)."""
        return DOCKER_HUB_AUTH_KEY if self.host in DOCKER_HUB else self.host


def looks_like_host(part: str) -> bool:
    """Docker's rule: the first part of a reference is a registry host when it has a dot or a
    port, or is localhost; otherwise the reference is a Docker Hub repository."""
    return "." in part or ":" in part or part == "localhost"


def parse(reference: str) -> Registry:
    """'registry.example.com:5000/team' -> Registry('registry.example.com:5000', 'team')."""
    ref = (reference or "").strip().rstrip("/")
    if not ref:
        raise RegistryError("registry: empty; give host[:port][/path], e.g. registry.example.com:5000/team")
    if "://" in ref:
        raise RegistryError(f"registry: {reference!r} has a scheme; give host[:port][/path] without https:// "
                            "(registries are always reached over HTTPS)")
    if "@" in ref or ":" in ref.partition("/")[2]:
        raise RegistryError(f"registry: {reference!r} must be host[:port][/path], with no tag or digest")
    match = _REFERENCE.match(ref)
    if not match:
        raise RegistryError(f"registry: {reference!r} is not host[:port][/path] (path parts: lowercase letters, "
                            "digits and . _ - between them), e.g. registry.example.com:5000/team")
    host = match["host"]
    if not looks_like_host(host):
        raise RegistryError(f"registry: {reference!r} starts with {host!r}, which Docker reads as a Docker Hub "
                            f"account, not a registry host; write docker.io/{ref} for Docker Hub, or give the "
                            "registry's host name with a dot or a port (localhost:5000, registry.example.com)")
    port = host.rsplit(":", 1)[1] if ":" in host else None
    if port is not None and not 1 <= int(port) <= 65535:
        raise RegistryError(f"registry: port {port} of {reference!r} is not 1-65535")
    return Registry(host.lower() if host not in DOCKER_HUB else "docker.io", match["path"].lstrip("/"))


def remote_repository(registry: Registry, image: str) -> str:
    """The image's repository under the registry: 'todo-backend' ->
    'HOST/PATH/todo-backend'. An image that already names a registry host loses it."""
    parts = image.split("/")
    if len(parts) > 1 and looks_like_host(parts[0]):
        parts = parts[1:]
    return "/".join(filter(None, [registry.host, registry.path, *parts]))


def repository_name(remote: str) -> str:
    """The name the registry API knows: 'HOST/team/app' -> 'team/app' (Docker Hub's
    one-part names live under library/)."""
    host, _, name = remote.partition("/")
    if host in DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    return name


def split_reference(ref: str) -> tuple[str, str | None, str | None]:
    """'host:5443/a/b:v1@sha256:..' -> ('host:5443/a/b', 'v1', 'sha256:..')."""
    name, _, digest = ref.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return name, tag, digest or None


def pinned_tag(tag: str, digest: str) -> str:
    """What a chart's image.tag receives to pull by digest: 'v1.0.0@sha256:...'. Charts render
    `repository:tag`, so the reference becomes repository:v1.0.0@sha256:..., which the kubelet
    and containerd resolve by the digest alone; the tag stays for people reading it."""
    if not _DIGEST.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return f"{tag}@{digest}"


def v2_url(registry: Registry, *path: str) -> str:
    return "https://" + "/".join([registry.api_host, "v2", *[p.strip("/") for p in path if p]]) + ("/" if not path else "")


def manifest_url(registry: Registry, name: str, reference: str) -> str:
    return v2_url(registry, name, "manifests", reference)


# --- credentials ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = "environment"

    def __repr__(self) -> str:
        return f"<Credentials {self.username} from {self.source}>"

    def auth_config(self) -> dict[str, str]:
        """For the Docker SDK's push/login (sent to dockerd, never written)."""
        return {"username": self.username, "password": self.password}

    def basic(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def _config_entry(auths: Mapping[str, Any], registry: Registry) -> Mapping[str, Any] | None:
    """Docker files credentials under the host, or its URL (old logins, Docker Hub's v1 URL)."""
    wanted = {registry.host, registry.auth_key, f"https://{registry.host}", f"http://{registry.host}",
              f"https://{registry.host}/v1/", f"https://{registry.host}/v2/"}
    for key, entry in auths.items():
        if key.rstrip("/") in {w.rstrip("/") for w in wanted} and isinstance(entry, Mapping):
            return entry
    return None


def from_docker_config(doc: Mapping[str, Any], registry: Registry, source: str,
                       helper: Callable[[str, str], tuple[str, str] | None] | None = None) -> Credentials | None:
    """Credentials for the registry from a parsed Docker config.json: a credential helper named
    for the host (credHelpers) or for all (credsStore), else `auths`."""
    name = (doc.get("credHelpers") or {}).get(registry.auth_key) or doc.get("credsStore")
    if name and helper is not None:
        found = helper(name, registry.auth_key)
        if found:
            return Credentials(found[0], found[1], f"{source} (docker-credential-{name})")
    entry = _config_entry(doc.get("auths") or {}, registry)
    if not entry:
        return None
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]), source)
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(f"{source}: auths.{registry.auth_key}.auth is not base64 of user:password; "
                                f"run `docker login {registry.host}` again") from None
        if user and password:
            return Credentials(user, password, source)
    return None


def docker_config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("DOCKER_CONFIG") or str(Path(environ.get("HOME", "~")).expanduser() / ".docker")
    return Path(base) / "config.json"


def run_credential_helper(name: str, server: str) -> tuple[str, str] | None:
    """`docker-credential-NAME get` (the protocol Docker uses): the server on stdin, JSON out."""
    result = commands.run([f"docker-credential-{name}", "get"], input_text=server, check=False, timeout_s=30,
                          what=f"docker-credential-{name}")
    if not result.ok:
        return None
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    commands.redact(doc.get("Secret"))
    return (doc.get("Username") or "", doc.get("Secret") or "") if doc.get("Secret") else None


def credentials(registry: Registry, environ: Mapping[str, str] | None = None,
                helper: Callable[[str, str], tuple[str, str] | None] | None = run_credential_helper) -> Credentials | None:
    """REGISTRY_USERNAME/REGISTRY_PASSWORD when set (both), else the user's Docker credential
    configuration for the registry's host, else None (anonymous). The password is masked in
    every later log line and report from here on."""
    environ = os.environ if environ is None else environ
    user, password = environ.get(ENV_USERNAME, ""), environ.get(ENV_PASSWORD, "")
    if user or password:
        if not (user and password):
            missing = ENV_PASSWORD if user else ENV_USERNAME
            raise RegistryError(f"{missing} is not set but {ENV_USERNAME if user else ENV_PASSWORD} is: set both "
                                "(or neither, to use your Docker login)")
        commands.redact(password)
        return Credentials(user, password, f"environment ({ENV_USERNAME}/{ENV_PASSWORD})")
    path = docker_config_path(environ)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: not readable as JSON ({exc}); fix it, or set {ENV_USERNAME}/{ENV_PASSWORD}") \
            from None
    found = from_docker_config(doc if isinstance(doc, dict) else {}, registry, str(path), helper)
    if found:
        commands.redact(found.password)
    return found


# --- asking the registry ------------------------------------------------------------------
def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """'Bearer realm="https://a/token",service="reg",scope="x"' -> ('bearer', {...})."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def token_url(params: Mapping[str, str], scope: str | None = None) -> str:
    """The token endpoint's URL for a Bearer challenge (distribution's token auth spec)."""
    from urllib.parse import urlencode

    query = {k: v for k, v in (("service", params.get("service")), ("scope", scope or params.get("scope"))) if v}
    realm = params["realm"]
    return realm + (("&" if "?" in realm else "?") + urlencode(query) if query else "")


def _verify(ca: str | Path | None) -> str | bool:
    """Which certificates to trust: the given CA, else the host's bundle (as Docker on Linux
    does: the system's roots), else requests' own."""
    if ca:
        return str(ca)
    return str(HOST_CA_BUNDLE) if HOST_CA_BUNDLE.is_file() else True


class _Refused(Exception):
    pass


def _session():
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = "shipcheck"
    return session


def _authorized(session, method: str, url: str, registry: Registry, creds: Credentials | None, ca, scope: str | None,
                headers: dict[str, str] | None = None):
    """Send a request; answer a 401 challenge once (Basic, or a Bearer token fetched with the
    credentials) and send again. Raises _Refused when the credentials are refused."""
    verify = _verify(ca)
    response = session.request(method, url, headers=headers, verify=verify, timeout=TIMEOUT_S, allow_redirects=True)
    if response.status_code != 401:
        return response
    scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
    if creds is None and scheme == "basic":
        raise _Refused("the registry asks for credentials and none were given")
    if scheme == "basic":
        answer = session.request(method, url, verify=verify, timeout=TIMEOUT_S,
                                 headers={**(headers or {}), "Authorization": f"Basic {creds.basic()}"})
        if answer.status_code == 401:
            raise _Refused(f"HTTP 401 with basic auth as {creds.username}")
        return answer
    if scheme == "bearer" and params.get("realm"):
        auth = {"Authorization": f"Basic {creds.basic()}"} if creds else {}
        token_answer = session.get(token_url(params, scope), headers=auth, verify=verify, timeout=TIMEOUT_S)
        if token_answer.status_code in (401, 403):
            raise _Refused(f"the token service {params['realm']} answered {token_answer.status_code}"
                           + (f" for {creds.username}" if creds else " (no credentials given)"))
        token_answer.raise_for_status()
        doc = token_answer.json()
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise _Refused(f"the token service {params['realm']} gave no token")
        answer = session.request(method, url, verify=verify, timeout=TIMEOUT_S,
                                 headers={**(headers or {}), "Authorization": f"Bearer {token}"})
        if answer.status_code == 401:
            raise _Refused(f"HTTP 401 with a token for {creds.username if creds else 'anonymous'}")
        return answer
    raise _Refused(f"HTTP 401 with an authentication scheme the suite does not speak ({scheme or 'none'})")


def check(registry: Registry, creds: Credentials | None, ca: str | Path | None = None) -> str | None:
    """None when the registry answers /v2/ over trusted TLS and accepts the credentials;
    else one sentence: what was asked, what came back, and the fix."""
    import requests

    url = v2_url(registry)
    who = f"as {creds.username} (credentials from {creds.source})" if creds else "without credentials"
    try:
        response = _authorized(_session(), "GET", url, registry, creds, ca, scope=None)
    except requests.exceptions.SSLError as exc:
        where = f"the CA {ca}" if ca else f"the host's CA bundle ({_verify(None)})"
        return (f"registry {registry}: TLS not trusted at {url} ({_short(exc)}); verified against {where}. Fix: give "
                f"the registry's CA with --registry-ca PATH (registry_ca in shipcheck.yaml), and make Docker trust "
                f"it too: /etc/docker/certs.d/{registry.host}/ca.crt")
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        return (f"registry {registry}: does not answer at {url} within {TIMEOUT_S:g} s ({_short(exc)}). Fix: check "
                "the host and port in `registry:` (or --registry), and that the registry is running and reachable "
                "from this machine")
    except _Refused as exc:
        fix = ("set REGISTRY_USERNAME and REGISTRY_PASSWORD, or `docker login " + registry.host + "`") if creds is None \
            else (f"check the user and password ({creds.source}); the registry refused them")
        return f"registry {registry}: credentials refused {who} at {url}: {exc}. Fix: {fix}"
    except requests.exceptions.RequestException as exc:
        return f"registry {registry}: {url} failed ({_short(exc)}). Fix: check the registry's address"
    if response.status_code != 200:
        return (f"registry {registry}: {url} answered HTTP {response.status_code} {who}, expected 200. Fix: "
                "`registry:` must name a registry speaking the distribution API (/v2/)")
    return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("certificate verify failed", "Connection refused", "Name or service not known", "timed out",
                   "No route to host"):
        if marker in text:
            return marker
    return text[:200]


def manifest_digest(registry: Registry, name: str, reference: str, creds: Credentials | None,
                    ca: str | Path | None = None) -> str | None:
    """The digest the registry holds for name:reference (HEAD, Docker-Content-Digest; the
    sha256 of the manifest itself when a registry does not send that header); None when
    the registry has no such manifest."""
    url = manifest_url(registry, name, reference)
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    session = _session()
    scope = f"repository:{name}:pull"
    response = _authorized(session, "HEAD", url, registry, creds, ca, scope, headers)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    digest = response.headers.get("Docker-Content-Digest")
    if digest:
        return digest
    body = _authorized(session, "GET", url, registry, creds, ca, scope, headers)
    body.raise_for_status()
    return "sha256:" + hashlib.sha256(body.content).hexdigest()


# --- push ---------------------------------------------------------------------------------
@dataclass
class PushResult:
    local_ref: str
    remote_ref: str  # repository:tag
    digest: str | None  # as the push reported it
    seconds: float
    pushed: list[str] = field(default_factory=list)  # layer ids uploaded
    existing: list[str] = field(default_factory=list)  # already there (or mounted from another repository)
    bytes_pushed: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.digest)

    @property
    def repository(self) -> str:
        return split_reference(self.remote_ref)[0]

    @property
    def tag(self) -> str:
        return split_reference(self.remote_ref)[1] or ""

    @property
    def pinned_ref(self) -> str:
        return f"{self.repository}@{self.digest}"

    def __repr__(self) -> str:
        return (f"<PushResult {self.remote_ref} {self.digest and self.digest[:19]}: {len(self.pushed)} pushed, "
                f"{len(self.existing)} existing, {self.seconds:.1f} s{', ' + self.error if self.error else ''}>")


DIGEST_LINE = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def read_push_events(events: Iterable[dict], result: PushResult, say: Callable[[str], None] = progress.say) -> None:
    """Fold the Docker engine's push stream into `result`, saying one line per layer when it
    is done (pushed, already there, mounted), never per byte."""
    totals: dict[str, int] = {}
    for event in events:
        if event.get("error") or event.get("errorDetail"):
            result.error = (event.get("errorDetail") or {}).get("message") or event.get("error") or "push failed"
            continue
        aux = event.get("aux") or {}
        if aux.get("Digest"):
            result.digest = aux["Digest"]
        status, layer = str(event.get("status") or ""), event.get("id")
        found = DIGEST_LINE.search(status)
        if found and not result.digest:
            result.digest = found.group(1)
        if not layer:
            continue
        total = (event.get("progressDetail") or {}).get("total")
        if total:
            totals[layer] = max(totals.get(layer, 0), int(total))
        if status == "Pushed":
            result.pushed.append(layer)
            result.bytes_pushed += totals.get(layer, 0)
            size = f" ({_size(totals[layer])})" if layer in totals else ""
            say(f"{result.remote_ref}: layer {layer} pushed{size}")
        elif status == "Layer already exists" or status.startswith("Mounted from"):
            result.existing.append(layer)
            say(f"{result.remote_ref}: layer {layer}: {status.lower() if status.startswith('Layer') else status}")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def push(docker_client, local_ref: str, registry: Registry, creds: Credentials | None) -> PushResult:
    """Tag the local image under the registry and push it with the Docker SDK; returns what
    was pushed and the digest the push reported. The credentials go to dockerd only."""
    repository_local, tag, _ = split_reference(local_ref)
    remote = remote_repository(registry, repository_local)
    tag = tag or "latest"
    result = PushResult(local_ref, f"{remote}:{tag}", None, 0.0)
    start = time.monotonic()
    docker_client.images.get(local_ref).tag(remote, tag)
    progress.say(f"pushing {local_ref} as {result.remote_ref}")
    stream = docker_client.api.push(remote, tag, stream=True, decode=True,
                                    auth_config=creds.auth_config() if creds else None)
    read_push_events(stream, result)
    result.seconds = time.monotonic() - start
    result.error = commands.scrub(result.error)
    if result.ok:
        progress.say(f"pushed {result.remote_ref} ({result.digest[:19]}...) in {result.seconds:.1f} s: "
                     f"{len(result.pushed)} layer(s) uploaded ({result.bytes_pushed / 1e6:.1f} MB), "
                     f"{len(result.existing)} already there")
    return result


def push_problem(result: PushResult, registry: Registry) -> str | None:
    """The push failed: what the engine said, and the fix for its cause."""
    if result.ok:
        return None
    error = result.error or "the engine reported no digest"
    lower = error.lower()
    if "x509" in lower or "certificate" in lower:
        fix = (f"Docker does not trust the registry's certificate: put its CA at "
               f"/etc/docker/certs.d/{registry.host}/ca.crt (read at each push; no restart)")
    elif any(s in lower for s in ("unauthorized", "authentication required", "denied", "no basic auth")):
        fix = f"the registry refused the push: check {ENV_USERNAME}/{ENV_PASSWORD} and that the user may push there"
    elif any(s in lower for s in ("connection refused", "no such host", "i/o timeout", "dial tcp")):
        fix = "the engine cannot reach the registry: check its address and that it runs"
    else:
        fix = "read the engine's message above"
    return f"{result.local_ref} -> {result.remote_ref}: push failed after {result.seconds:.0f} s: {error}. Fix: {fix}"


def digest_problem(result: PushResult, read_back: str | None, local_repo_digests: list[str]) -> str | None:
    """The pushed manifest must be readable back under its tag with the digest the push
    reported, and the local image must record that digest for the repository."""
    if read_back is None:
        return (f"{result.remote_ref}: the registry has no manifest for this tag after the push (HEAD manifests "
                f"returned 404); the push reported {result.digest}. Fix: check the registry's storage and that "
                "nothing deletes tags (retention policy)")
    if read_back != result.digest:
        return (f"{result.remote_ref}: the registry holds {read_back}, the push reported {result.digest}. Fix: "
                "another push to the same tag raced this one; use a tag only this pipeline writes")
    wanted = f"{result.repository}@{result.digest}"
    if local_repo_digests and wanted not in local_repo_digests:
        return (f"{result.local_ref}: the engine records {local_repo_digests} for the image, not {wanted}. Fix: "
                "push again; the local image changed during the push")
    return None


# --- deploying what was pushed ----------------------------------------------------------------
def image_values(image: str, tag: str, push: PushResult | None) -> tuple[str, str]:
    """(image repository, image tag) a chart receives: the pushed repository and
    `tag@digest` on the registry path, else the local image and tag (loaded into nodes)."""
    if push is None:
        return image, tag
    return push.repository, pinned_tag(push.tag, push.digest)


def running_digest_problems(pods: list[dict], digest: str) -> list[str]:
    """Containers whose imageID is not the pushed digest (the kubelet reports an image
    pulled from a registry as repository@sha256:<manifest digest>)."""
    return [f"{p['metadata']['name']}/{c['name']}: {c.get('imageID') or 'no imageID yet'}"
            for p in pods for c in (p.get("status") or {}).get("containerStatuses") or []
            if not (c.get("imageID") or "").endswith(f"@{digest}")]


# --- the pull Secret ------------------------------------------------------------------------
def dockerconfigjson(registry_host: str, creds: Credentials) -> str:
    auth_key = DOCKER_HUB_AUTH_KEY if registry_host in DOCKER_HUB else registry_host
    return json.dumps({"auths": {auth_key: {"username": creds.username, "password": creds.password,
                                            "auth": creds.basic()}}}, sort_keys=True)


def pull_secret_manifest(name: str, namespace: str, registry_host: str, creds: Credentials) -> dict:
    """A kubernetes.io/dockerconfigjson Secret for the registry; kept in memory and applied
    through the API, never written to a file or a report."""
    commands.redact(creds.password)
    data = base64.b64encode(dockerconfigjson(registry_host, creds).encode()).decode()
    commands.redact(data)
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "shipcheck"}},
            "data": {".dockerconfigjson": data}}
