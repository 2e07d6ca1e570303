"""The registry path's pure parts: references, credentials, challenges, URLs, push events,
digest comparison and the pull Secret. No registry, no Docker."""

import base64
import json

import pytest

from shipcheck import commands, registry as reg

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


# --- references -------------------------------------------------------------------------
@pytest.mark.parametrize("text, host, path", [
    ("registry.example.com:5000/team", "registry.example.com:5000", "team"),
    ("192.0.2.2:5443/shipcheck", "192.0.2.2:5443", "shipcheck"),
    ("localhost:5000", "localhost:5000", ""),
    ("localhost/a/b", "localhost", "a/b"),
    ("ghcr.io/me/apps/", "ghcr.io", "me/apps"),
    ("docker.io/me", "docker.io", "me"),
    ("index.docker.io/me", "docker.io", "me"),
    ("Registry.Example.com/team", "registry.example.com", "team"),
])
def test_parse_accepts_host_port_path(text, host, path):
    parsed = reg.parse(text)
    assert (parsed.host, parsed.path) == (host, path)


@pytest.mark.parametrize("text, says", [
    ("", "empty"),
    ("https://registry.example.com", "without https://"),
    ("registry.example.com/team:v1", "no tag or digest"),
    ("registry.example.com/app@sha256:" + "a" * 64, "no tag or digest"),
    ("team/app", "Docker Hub account"),
    ("registry.example.com/Team", "lowercase"),
    ("registry.example.com:99999/x", "1-65535"),
    ("reg istry.example.com", "host[:port][/path]"),
])
def test_parse_refuses_with_the_fix(text, says):
    with pytest.raises(reg.RegistryError, match="registry:") as err:
        reg.parse(text)
    assert says in str(err.value)


def test_docker_hub_answers_the_api_elsewhere_and_files_credentials_under_v1():
    hub = reg.parse("docker.io/me")
    assert hub.api_host == "registry-1.docker.io" and hub.auth_key == "https://index.docker.io/v1/"
    assert reg.repository_name("docker.io/app") == "library/app"
    own = reg.parse("192.0.2.2:5443/x")
    assert own.api_host == own.auth_key == "192.0.2.2:5443"


@pytest.mark.parametrize("image, expected", [
    ("todo-backend", "192.0.2.2:5443/shipcheck/todo-backend"),
    ("wt-scan/todo-frontend", "192.0.2.2:5443/shipcheck/wt-scan/todo-frontend"),
    ("ghcr.io/someone/app", "192.0.2.2:5443/shipcheck/someone/app"),
    ("localhost:5000/app", "192.0.2.2:5443/shipcheck/app"),
])
def test_remote_repository_puts_the_image_under_the_registry(image, expected):
    assert reg.remote_repository(reg.parse("192.0.2.2:5443/shipcheck"), image) == expected


def test_remote_repository_without_a_path():
    assert reg.remote_repository(reg.parse("localhost:5000"), "app") == "localhost:5000/app"


@pytest.mark.parametrize("ref, parts", [
    ("host:5443/a/b:v1@" + DIGEST, ("host:5443/a/b", "v1", DIGEST)),
    ("host:5443/a/b:v1", ("host:5443/a/b", "v1", None)),
    ("host:5443/a/b", ("host:5443/a/b", None, None)),
    ("app@" + DIGEST, ("app", None, DIGEST)),
])
def test_split_reference(ref, parts):
    assert reg.split_reference(ref) == parts


def test_pinned_tag_keeps_the_tag_and_adds_the_digest():
    # Charts render "repository:tag": the tag slot carries tag@digest, which the kubelet
    # resolves by the digest.
    assert reg.pinned_tag("v1.0.0", DIGEST) == f"v1.0.0@{DIGEST}"
    with pytest.raises(ValueError):
        reg.pinned_tag("v1.0.0", "sha256:short")


def test_urls():
    r = reg.parse("192.0.2.2:5443/shipcheck")
    assert reg.v2_url(r) == "https://192.0.2.2:5443/v2/"
    assert reg.manifest_url(r, "shipcheck/app", "v1") == "https://192.0.2.2:5443/v2/shipcheck/app/manifests/v1"
    assert reg.manifest_url(reg.parse("docker.io/me"), "me/app", DIGEST).startswith("https://registry-1.docker.io/v2/")


# --- challenges -------------------------------------------------------------------------
def test_parse_challenge_basic_and_bearer():
    assert reg.parse_challenge('Basic realm="shipcheck-registry"') == ("basic", {"realm": "shipcheck-registry"})
    scheme, params = reg.parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"')
    assert scheme == "bearer" and params["service"] == "registry.example.com" and params["scope"] == "repository:a/b:pull"
    assert reg.parse_challenge("") == ("", {})


def test_token_url_carries_service_and_scope():
    params = {"realm": "https://auth.example.com/token", "service": "reg.example.com"}
    assert reg.token_url(params, "repository:a/b:pull") == \
        "https://auth.example.com/token?service=reg.example.com&scope=repository%3Aa%2Fb%3Apull"
    assert reg.token_url({"realm": "https://a/token?x=1"}) == "https://a/token?x=1"


# --- credentials ------------------------------------------------------------------------
R = reg.parse("192.0.2.2:5443/shipcheck")


def test_credentials_from_the_environment_are_masked_from_then_on():
    creds = reg.credentials(R, {"REGISTRY_USERNAME": "ci", "REGISTRY_PASSWORD": "pw-from-env-123"}, helper=None)
    assert (creds.username, creds.password) == ("ci", "pw-from-env-123")
    assert "pw-from-env-123" not in repr(creds)
    assert commands.scrub("login with pw-from-env-123") == f"login with {commands.MASK}"


@pytest.mark.parametrize("env, missing", [({"REGISTRY_USERNAME": "ci"}, "REGISTRY_PASSWORD"),
                                          ({"REGISTRY_PASSWORD": "pw-only-1234"}, "REGISTRY_USERNAME")])
def test_half_set_environment_is_refused(env, missing):
    with pytest.raises(reg.RegistryError, match=f"{missing} is not set"):
        reg.credentials(R, env, helper=None)


def test_credentials_from_docker_config_auths(tmp_path):
    auth = base64.b64encode(b"alice:pw-in-config-5678").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://192.0.2.2:5443": {"auth": auth}}}))
    creds = reg.credentials(R, {"DOCKER_CONFIG": str(tmp_path)}, helper=None)
    assert (creds.username, creds.password) == ("alice", "pw-in-config-5678")
    assert str(tmp_path) in creds.source
    assert commands.MASK in commands.scrub("pw-in-config-5678")


def test_docker_config_for_another_host_gives_none(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"other.example.com": {"auth": "eDp5"}}}))
    assert reg.credentials(R, {"DOCKER_CONFIG": str(tmp_path)}, helper=None) is None
    assert reg.credentials(R, {"DOCKER_CONFIG": str(tmp_path / "absent")}, helper=None) is None


def test_docker_config_credential_helper_is_asked_for_the_host():
    asked = []

    def helper(name, server):
        asked.append((name, server))
        return ("bob", "pw-from-helper-9")
    creds = reg.from_docker_config({"credHelpers": {"192.0.2.2:5443": "pass"}}, R, "config.json", helper)
    assert asked == [("pass", "192.0.2.2:5443")] and creds.username == "bob" and "docker-credential-pass" in creds.source


def test_broken_docker_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(reg.RegistryError, match="config.json: not readable as JSON"):
        reg.credentials(R, {"DOCKER_CONFIG": str(tmp_path)}, helper=None)


# --- push events --------------------------------------------------------------------------
def test_push_events_give_one_line_per_layer_and_the_digest():
    events = [
        {"status": "The push refers to repository [192.0.2.2:5443/shipcheck/app]"},
        {"status": "Preparing", "progressDetail": {}, "id": "l1"},
        {"status": "Preparing", "progressDetail": {}, "id": "l2"},
        {"status": "Pushing", "progressDetail": {"current": 512, "total": 2_000_000}, "id": "l1"},
        {"status": "Pushing", "progressDetail": {"current": 1_000_000, "total": 2_000_000}, "id": "l1"},
        {"status": "Layer already exists", "progressDetail": {}, "id": "l2"},
        {"status": "Pushed", "progressDetail": {}, "id": "l1"},
        {"status": f"v1: digest: {DIGEST} size: 741"},
        {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": DIGEST, "Size": 741}},
    ]
    said = []
    result = reg.PushResult("app:v1", "192.0.2.2:5443/shipcheck/app:v1", None, 0.0)
    reg.read_push_events(events, result, said.append)
    assert result.digest == DIGEST and result.pushed == ["l1"] and result.existing == ["l2"]
    assert result.bytes_pushed == 2_000_000 and result.ok
    assert len(said) == 2 and "l1 pushed (2.0 MB)" in said[1] and "l2: layer already exists" in said[0]
    assert result.pinned_ref == f"192.0.2.2:5443/shipcheck/app@{DIGEST}"


def test_push_error_is_kept_and_explained():
    result = reg.PushResult("app:v1", "h:5443/x/app:v1", None, 3.0)
    reg.read_push_events([{"errorDetail": {"message": "unauthorized: authentication required"},
                           "error": "unauthorized: authentication required"}], result, lambda _: None)
    assert not result.ok
    problem = reg.push_problem(result, reg.parse("h:5443/x"))
    assert "unauthorized" in problem and "REGISTRY_USERNAME" in problem
    tls = reg.PushResult("app:v1", "h:5443/x/app:v1", None, 1.0, error="x509: certificate signed by unknown authority")
    assert "/etc/docker/certs.d/h:5443/ca.crt" in reg.push_problem(tls, reg.parse("h:5443/x"))


def test_digest_problem():
    result = reg.PushResult("app:v1", "h:5443/x/app:v1", DIGEST, 1.0)
    assert reg.digest_problem(result, DIGEST, [f"h:5443/x/app@{DIGEST}"]) is None
    assert "404" in reg.digest_problem(result, None, [])
    assert f"holds {OTHER}" in reg.digest_problem(result, OTHER, [])
    assert "records" in reg.digest_problem(result, DIGEST, [f"h:5443/x/app@{OTHER}"])


# --- the pull Secret ------------------------------------------------------------------------
def test_pull_secret_is_a_dockerconfigjson_secret_and_its_contents_are_masked():
    creds = reg.Credentials("ci", "pull-secret-pw-42")
    doc = reg.pull_secret_manifest("pull", "todo", "192.0.2.2:5443", creds)
    assert doc["type"] == "kubernetes.io/dockerconfigjson" and doc["metadata"] == {
        "name": "pull", "namespace": "todo", "labels": {"app.kubernetes.io/managed-by": "shipcheck"}}
    config = json.loads(base64.b64decode(doc["data"][".dockerconfigjson"]))
    entry = config["auths"]["192.0.2.2:5443"]
    assert entry["username"] == "ci" and base64.b64decode(entry["auth"]) == b"ci:pull-secret-pw-42"
    assert commands.MASK in commands.scrub(json.dumps(doc)) and "pull-secret-pw-42" not in commands.scrub(str(config))
    assert doc["data"][".dockerconfigjson"] not in commands.scrub(json.dumps(doc))


def test_pull_secret_for_docker_hub_uses_the_v1_key():
    doc = reg.pull_secret_manifest("pull", "ns", "docker.io", reg.Credentials("me", "hub-password-1"))
    assert list(json.loads(base64.b64decode(doc["data"][".dockerconfigjson"]))["auths"]) == ["https://index.docker.io/v1/"]


def test_the_stage1_builds_fixture_settles_the_route_first():
    """What makes 'before any build' hold outside the lab (whose prebuilt `builds` skips the
    build): the real fixture depends on image_route, which checks the registry."""
    import inspect

    from shipcheck import fixtures

    source = inspect.getsource(fixtures)
    signature = source[source.index("def builds("):source.index(") -> dict[str, images.BuildResult]:")]
    assert "image_route" in signature


# --- configuration and options ------------------------------------------------------------------
def test_registry_options_become_validated_overrides():
    from shipcheck import validate

    assert validate.registry_overrides(None, None) == []
    assert validate.registry_overrides("192.0.2.2:5443/x", "/tmp/ca.crt") == [
        'registry="192.0.2.2:5443/x"', 'registry_ca="/tmp/ca.crt"']
    assert validate.registry_overrides("", None) == ['registry=""']  # --registry '' turns the file's registry off


def test_registry_and_its_ca_are_checked_with_the_configuration(tmp_path, repo):
    from shipcheck import config

    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path = repo / "shipcheck.yaml"
    cfg = config.load(path, ["registry=192.0.2.2:5443/x", f"registry_ca={ca}"])
    assert (cfg.registry, cfg.registry_ca) == ("192.0.2.2:5443/x", ca)
    assert all(c.values.image_pull_secrets == "imagePullSecrets" for c in cfg.components.values())
    for sets, says in (([f"registry_ca={ca}"], "registry_ca: set, but registry is empty"),
                       (["registry=192.0.2.2:5443/x", f"registry_ca={tmp_path / 'absent'}"],
                        "registry_ca: file"),
                       (["registry=team/x"], "Docker reads as a Docker Hub account")):
        with pytest.raises(config.ConfigError, match=says):
            config.load(path, sets)
