"""The layer scan (layers.py): every file of every layer judged by content, results kept per
layer digest, and a real image whose OpenSSH key was deleted in a later layer.

Fake secrets only, assembled at run time (see test_secrets_scan.py).
"""

import hashlib
import io
import json
import tarfile

import pytest

from shipcheck import layers, secrets_scan
from shipcheck.secrets_scan import Finding
from test_secrets_scan import OPENSSH_KEY, SIGNED_JWT


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer: path -> content (None: a directory)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def diff_id(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeImage:
    """What layers.py uses of a docker SDK image: attrs RootFS and save()."""

    def __init__(self, layer_tars: list[bytes], oci: bool = False):
        self.layer_tars = layer_tars
        self.oci = oci
        self.saves = 0
        self.attrs = {"RootFS": {"Type": "layers", "Layers": [diff_id(t) for t in layer_tars]}}

    def save(self, named=False):
        self.saves += 1
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            def add(name, data):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            names = []
            for index, data in enumerate(self.layer_tars):
                # Docker 20.10: <v1 id>/layer.tar; Docker 25+ (OCI layout): blobs/sha256/<digest>.
                name = f"blobs/sha256/{diff_id(data)[7:]}" if self.oci else f"{index:064x}/layer.tar"
                add(name, data)
                names.append(name)
            config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff_id(t) for t in self.layer_tars]}})
            add("config.json", config.encode())
            add("manifest.json", json.dumps([{"Config": "config.json", "Layers": names}]).encode())
        yield out.getvalue()


class FakeClient:
    def __init__(self, images: dict[str, FakeImage]):
        self.images = self
        self._images = images

    def get(self, ref):
        return self._images[ref]


BASE = layer_tar({"usr/": None, "usr/bin/tool": b"\x7fELF\0binary", "etc/os-release": b"ID=debian\n",
                  "usr/lib/python3/site-packages/jwt/tests/data.txt": SIGNED_JWT.encode()})
APP = layer_tar({"app/": None, "app/deploy_key": OPENSSH_KEY.encode(), "app/main.py": b"print('hi')\n"})
CLEANUP = layer_tar({"app/.wh.deploy_key": b""})  # a later layer deletes the key: it still ships in APP


def test_a_layer_is_judged_file_by_file_by_content():
    scan = layers.scan_layer_tar(diff_id(APP), io.BytesIO(APP))
    assert scan.files == 2 and scan.findings == (("/app/deploy_key", "OpenSSH private key"),)
    assert scan.bytes_read == len(OPENSSH_KEY) + len(b"print('hi')\n")


def test_library_test_data_is_reported_apart():
    scan = layers.scan_layer_tar(diff_id(BASE), io.BytesIO(BASE))
    assert scan.findings == ()
    assert scan.library_test_data == (("/usr/lib/python3/site-packages/jwt/tests/data.txt", "JSON web token"),)


@pytest.mark.parametrize("oci", [False, True], ids=["docker-20.10-save", "oci-layout-save"])
def test_a_key_deleted_in_a_later_layer_is_found_in_its_layer(oci, tmp_path):
    client = FakeClient({"app:1": FakeImage([BASE, APP, CLEANUP], oci=oci)})
    scan = layers.scan_image(client, "app:1", cache=tmp_path)
    assert scan.findings == [Finding("layer 2: /app/deploy_key", "OpenSSH private key")]
    assert scan.library_test_data == [Finding("layer 1: /usr/lib/python3/site-packages/jwt/tests/data.txt",
                                              "JSON web token")]
    assert [str(f) for f in layers.scan_layers(client, "app:1", cache=tmp_path)] == [
        "layer 2: /app/deploy_key (OpenSSH private key)"]  # the secret itself never


def test_results_are_kept_per_layer_digest(tmp_path):
    first = FakeImage([BASE, APP])
    client = FakeClient({"app:1": first})
    cold = layers.scan_image(client, "app:1", cache=tmp_path)
    assert first.saves == 1 and cold.cached_layers == 0

    warm = layers.scan_image(client, "app:1", cache=tmp_path)
    assert first.saves == 1, "a warm run reads no layer"
    assert warm.cached_layers == 2 and warm.findings == cold.findings and warm.files == cold.files

    # Another image on the same base: only its own new layer is read.
    other_layer = layer_tar({"srv/notes.txt": b"nothing here\n"})
    other = FakeImage([BASE, other_layer])
    calls = []
    real = layers.scan_layer_tar
    client = FakeClient({"other:1": other})
    try:
        layers.scan_layer_tar = lambda d, f: calls.append(d) or real(d, f)
        scan = layers.scan_image(client, "other:1", cache=tmp_path)
    finally:
        layers.scan_layer_tar = real
    assert calls == [diff_id(other_layer)] and scan.cached_layers == 1 and scan.findings == []


def test_results_of_other_rules_versions_are_not_reused(tmp_path, monkeypatch):
    client = FakeClient({"app:1": FakeImage([APP])})
    layers.scan_image(client, "app:1", cache=tmp_path)
    monkeypatch.setattr(layers, "rules_version", lambda: "different")
    assert layers.scan_image(client, "app:1", cache=tmp_path).cached_layers == 0


def test_a_torn_cache_file_is_scanned_again(tmp_path):
    client = FakeClient({"app:1": FakeImage([APP])})
    layers.scan_image(client, "app:1", cache=tmp_path)
    for saved in tmp_path.rglob("*.json"):
        saved.write_text("{not json")
    scan = layers.scan_image(client, "app:1", cache=tmp_path)
    assert scan.cached_layers == 0 and scan.findings == [Finding("layer 1: /app/deploy_key", "OpenSSH private key")]


def test_the_cap_and_binary_skip_are_the_rules_modules():
    assert secrets_scan.READ_CAP_BYTES == 1 << 20  # stated in the gate's message and the docstrings


# --- a real image -----------------------------------------------------------------------------------
SEEDED_BASE = "stand-in/debian:trixie-slim"


@pytest.mark.docker
def test_an_openssh_key_copied_as_deploy_key_then_deleted_is_caught(tmp_path):
    """The issue's case: `COPY deploy_key`, used, `RUN rm` in a later layer. Named neither
    *.pem nor id_*, only its content gives it away; the image is this test's own
    (wt-scan/seeded-deploy-key) and is removed afterwards."""
    docker = pytest.importorskip("docker")
    from shipcheck import commands, images

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine here ({exc})")
    if not client.images.list(name=SEEDED_BASE.split(":")[0]):
        pytest.skip(f"{SEEDED_BASE} is not in the engine: run `bash setup/base-images.sh`")
    (tmp_path / "deploy_key").write_text(OPENSSH_KEY)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {SEEDED_BASE}\nCOPY deploy_key /app/deploy_key\nRUN test -s /app/deploy_key\nRUN rm /app/deploy_key\n")
    ref = f"wt-scan/seeded-deploy-key:{tmp_path.name[-12:].lower()}"
    result = commands.run([*images.docker_cli(), "build", "-q", "-t", ref, str(tmp_path)], check=False,
                          env={"DOCKER_BUILDKIT": "1"}, timeout_s=300)
    assert result.ok, result.tail()
    try:
        scan = layers.scan_image(client, ref, cache=tmp_path / "cache")
        base_layers = len(client.images.get(SEEDED_BASE).attrs["RootFS"]["Layers"])
        assert scan.findings == [Finding(f"layer {base_layers + 1}: /app/deploy_key", "OpenSSH private key")]
        assert "BEGIN OPENSSH" not in repr(scan) and "b3BlbnNzaC1rZXktdjE" not in str(scan.findings)
        # The key is gone from the final filesystem and still ships in its layer.
        out = client.containers.run(ref, ["ls", "-a", "/app"], remove=True, network_disabled=True).decode()
        assert "deploy_key" not in out
        warm = layers.scan_image(client, ref, cache=tmp_path / "cache")
        assert warm.cached_layers == len(scan.layers) and warm.findings == scan.findings
    finally:
        client.images.remove(ref, force=True)
