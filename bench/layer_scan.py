#!/usr/bin/env python3
"""Benchmark of stage 1's layer scan (shipcheck/layers.py): cold and warm, per image.

  python bench/layer_scan.py [REF ...]     default: the reference images todo-*:v1.0.0

Cold: an empty cache, every layer read from the engine (`docker save`) and judged file by
file. Warm: the same cache again, nothing read. Also counts the findings and the library
test data (they must be 0 and are listed, never the values). Figures go to
bench/results/layer-scan.json and layer-scan.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from shipcheck import layers, secrets_scan  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REFERENCE = ("todo-frontend:v1.0.0", "todo-backend:v1.0.0", "todo-postgres:v1.0.0")


def measure(client, ref: str, cache: Path) -> dict:
    cold = layers.scan_image(client, ref, cache)
    warm = layers.scan_image(client, ref, cache)
    image = client.images.get(ref)
    return {"image": ref, "image_id": image.id[:19], "size_mb": round(int(image.attrs["Size"]) / 1e6, 1),
            "layers": len(cold.layers), "files": cold.files, "read_mb": round(cold.bytes_read / 1e6, 1),
            "cold_s": round(cold.seconds, 2), "judging_s": round(sum(layer.seconds for layer in cold.layers), 2),
            "warm_s": round(warm.seconds, 3),
            "warm_cached_layers": warm.cached_layers, "findings": [str(f) for f in cold.findings],
            "library_test_data": [str(f) for f in cold.library_test_data]}


def markdown(doc: dict) -> str:
    lines = [f"# Layer scan: cold and warm ({doc['measured_at']})", "",
             f"Rules version {doc['rules_version']}; each file's first {doc['read_cap_bytes'] // 2**20} MiB is read; "
             "binary files (a NUL in the first 8 KiB) are judged by name only. Cold = empty cache (`docker save`, then "
             "every layer judged; 'judging s' is the latter); warm = the same cache again. Load average at start: "
             f"{doc['load_average']} (2 cores).", "",
             "| image | size MB | layers | files | read MB | cold s | judging s | warm s | findings | library test data |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["images"]:
        lines.append(f"| {r['image']} | {r['size_mb']} | {r['layers']} | {r['files']} | {r['read_mb']} | {r['cold_s']} "
                     f"| {r['judging_s']} | {r['warm_s']} | {len(r['findings'])} | {len(r['library_test_data'])} |")
    lines.append(f"| **total** | | | {sum(r['files'] for r in doc['images'])} | "
                 f"{round(sum(r['read_mb'] for r in doc['images']), 1)} | {round(sum(r['cold_s'] for r in doc['images']), 1)} "
                 f"| {round(sum(r['judging_s'] for r in doc['images']), 1)} | {round(sum(r['warm_s'] for r in doc['images']), 3)} | | |")
    for r in doc["images"]:
        for item in r["findings"] + r["library_test_data"]:
            lines.append(f"- {r['image']}: {item}")
    return "\n".join(lines) + "\n"


def main() -> None:
    refs = sys.argv[1:] or list(REFERENCE)
    client = docker.from_env(timeout=600)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    doc = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rules_version": layers.rules_version(),
           "read_cap_bytes": secrets_scan.READ_CAP_BYTES, "load_average": load, "images": []}
    with tempfile.TemporaryDirectory(prefix="bench-layer-scan-") as tmp:
        for ref in refs:
            # A cache per image: cold means cold, even where images share base layers.
            doc["images"].append(measure(client, ref, Path(tmp) / ref.replace("/", "_").replace(":", "_")))
            print(json.dumps(doc["images"][-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "layer-scan.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "layer-scan.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
