"""Read an image's layers from the Docker engine and scan every file in them for secrets.

Every regular file of every layer is judged, files a later layer deletes included (they
still ship in the earlier layer, for anyone who pulls the image). Each file is judged by
name and by the content of its first 1 MiB (secrets_scan.READ_CAP_BYTES; a key or a
token in a config file lies well within it, and the cap bounds the work on big files);
binary files (a NUL byte in their first 8 KiB) by name only.

A layer is named by its diff ID: the digest of its uncompressed content, the same in every
image that shares the layer. Results are kept per diff ID and rules version under the
cache directory, so a warm run reads no layer at all, and a rebuilt image reads only the
layers that changed (its base layers come from the cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable

from . import progress, secrets_scan
from .secrets_scan import Finding


def rules_version() -> str:
    """Changes whenever the rules or the way files are read change: old results are not reused."""
    digest = hashlib.sha256()
    for module in (secrets_scan.__file__, __file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class LayerScan:
    """What one layer holds: counts, and (path, rule) pairs, never a value."""

    diff_id: str
    files: int
    bytes_read: int
    findings: tuple[tuple[str, str], ...]
    library_test_data: tuple[tuple[str, str], ...]  # see secrets_scan.library_test_data
    seconds: float
    cached: bool = False

    def to_json(self) -> dict:
        return {"diff_id": self.diff_id, "files": self.files, "bytes_read": self.bytes_read,
                "findings": [list(f) for f in self.findings],
                "library_test_data": [list(f) for f in self.library_test_data], "seconds": round(self.seconds, 3)}

    @classmethod
    def from_json(cls, doc: dict) -> "LayerScan":
        return cls(doc["diff_id"], doc["files"], doc["bytes_read"], tuple(map(tuple, doc["findings"])),
                   tuple(map(tuple, doc["library_test_data"])), doc["seconds"], cached=True)


@dataclass
class ImageScan:
    """Every layer of one image, in order (layer 1 is the base)."""

    ref: str
    layers: list[LayerScan] = field(default_factory=list)
    seconds: float = 0.0

    def _listed(self, attribute: str) -> list[Finding]:
        return [Finding(f"layer {index}: {path}", rule)
                for index, layer in enumerate(self.layers, 1) for path, rule in getattr(layer, attribute)]

    @property
    def findings(self) -> list[Finding]:
        return self._listed("findings")

    @property
    def library_test_data(self) -> list[Finding]:
        return self._listed("library_test_data")

    @property
    def files(self) -> int:
        return sum(layer.files for layer in self.layers)

    @property
    def bytes_read(self) -> int:
        return sum(layer.bytes_read for layer in self.layers)

    @property
    def cached_layers(self) -> int:
        return sum(layer.cached for layer in self.layers)

    def __repr__(self) -> str:
        return (f"<ImageScan {self.ref}: {len(self.layers)} layers ({self.cached_layers} cached), {self.files} files, "
                f"{len(self.findings)} finding(s), {len(self.library_test_data)} library test data>")


def scan_layer_tar(diff_id: str, fileobj: IO[bytes]) -> LayerScan:
    """Judge every regular file of one layer tar (pure: any readable tar stream)."""
    start = time.monotonic()
    findings, library, files, read = [], [], 0, 0
    with tarfile.open(fileobj=fileobj, mode="r|*") as layer:
        for member in layer:
            if not member.isfile():
                continue
            files += 1
            path = "/" + member.name.removeprefix("./").lstrip("/")
            head = b""
            if member.size:
                head = layer.extractfile(member).read(secrets_scan.READ_CAP_BYTES)
                read += len(head)
            rule = secrets_scan.file_rule(path, lambda h=head: h, member.size)
            if rule:
                (library if secrets_scan.library_test_data(path) else findings).append((path, rule))
    return LayerScan(diff_id, files, read, tuple(findings), tuple(library), time.monotonic() - start)


class _LayerCache:
    """One JSON file per layer diff ID, under a directory per rules version."""

    def __init__(self, root: Path | None):
        self.dir = root / f"rules-{rules_version()}" if root else None

    def _path(self, diff_id: str) -> Path | None:
        return self.dir / f"{diff_id.split(':')[-1]}.json" if self.dir else None

    def get(self, diff_id: str) -> LayerScan | None:
        path = self._path(diff_id)
        if path is None or not path.is_file():
            return None
        try:
            return LayerScan.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError):
            return None  # a torn or old file: scan again

    def put(self, scan: LayerScan) -> None:
        path = self._path(scan.diff_id)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(scan.to_json()))
        partial.replace(path)  # atomic: concurrent runs never read half a file


def _save(image, directory: Path) -> Path:
    archive = directory / "image.tar"
    with archive.open("wb") as out:
        for chunk in image.save(named=False):
            out.write(chunk)
    return archive


def _layer_members(image_tar: tarfile.TarFile) -> list[tuple[str, str]]:
    """(diff ID, member name) per layer, in order, from `docker save` output: manifest.json
    names the config and the layer files (`<id>/layer.tar`, or `blobs/sha256/<digest>` in
    the OCI layout of Docker 25+); the config's rootfs.diff_ids say which layer is which."""
    manifest = json.load(image_tar.extractfile("manifest.json"))[0]
    config = json.load(image_tar.extractfile(manifest["Config"]))
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(manifest["Layers"]):
        raise RuntimeError(f"docker save: {len(manifest['Layers'])} layer files for {len(diff_ids)} diff IDs")
    return list(zip(diff_ids, manifest["Layers"]))


def scan_image(client, ref: str, cache: Path | None = None) -> ImageScan:
    """Every layer of `ref`, from the cache where it has the layer, else read from the engine."""
    start = time.monotonic()
    store = _LayerCache(cache)
    image = client.images.get(ref)
    diff_ids = ((image.attrs.get("RootFS") or {}).get("Layers")) or []
    known = {d: store.get(d) for d in diff_ids}
    result = ImageScan(ref)
    if diff_ids and all(known.values()):
        result.layers = [known[d] for d in diff_ids]
    else:
        missing = sum(1 for d in diff_ids if not known[d]) or "all"
        progress.say(f"{ref}: reading {missing} of {len(diff_ids) or '?'} layers for the secret scan")
        with tempfile.TemporaryDirectory(prefix="shipcheck-layers-") as tmp:
            with tarfile.open(_save(image, Path(tmp))) as image_tar:
                for index, (diff_id, member) in enumerate(_layer_members(image_tar), 1):
                    scan = known.get(diff_id) or store.get(diff_id)
                    if scan is None:
                        scan = scan_layer_tar(diff_id, image_tar.extractfile(member))
                        store.put(scan)
                        progress.say(f"{ref}: layer {index} ({diff_id[:19]}): {scan.files} files, "
                                     f"{scan.bytes_read / 1e6:.1f} MB read in {scan.seconds:.1f} s")
                    result.layers.append(scan)
    result.seconds = time.monotonic() - start
    return result


def scan_layers(client, ref: str, cache: Path | None = None) -> list[Finding]:
    """The findings alone (the call stage 1 made before layers.py existed)."""
    return scan_image(client, ref, cache).findings


def describe(findings: Iterable[Finding]) -> str:
    return "; ".join(map(str, findings))
