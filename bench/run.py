#!/usr/bin/env python3
"""Benchmarks: wall-clock figures of whole runs, written to bench/results/.

Compare ratios taken in one run (this machine is noisy), never single numbers across runs.

  python bench/run.py                 everything below
  python bench/run.py build           stage 1 cold (no layer cache) in parallel and one by one; stages 1+2 warm
  python bench/run.py pipeline        the whole pipeline warm; stages 1+4 against the bare commands
  python bench/run.py cluster         local cluster: warm stop/start to node Ready, image load of the frontend
  python bench/run.py devloop         the developer's loop, in one run: (a) warm with nothing changed, (b) a
                                      one-line change in the backend's source (rebuild, upgrade, proofs),
                                      (c) the bare commands for the same work as (b) (rebuild, load, one
                                      real rollout) and for (a) (cached builds, no-op upgrades); ratios

Figures go to bench/results/bench-<UTC time>.json and are printed as a table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ENV = {**os.environ, "DOCKER_BUILDKIT": "1", "PATH": f"{ROOT / '.venv' / 'bin'}:{Path.home() / '.cache' / 'shipcheck' / 'bin'}:{os.environ['PATH']}"}
KUBECONFIG = "/var/run/kubernetes/admin.kubeconfig"


def timed(argv: list[str], what: str, check: bool = True) -> float:
    print(f"bench: {what}: {' '.join(argv)}", file=sys.stderr, flush=True)
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - start
    if check and proc.returncode:
        raise SystemExit(f"bench: {what} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}")
    print(f"bench: {what}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds


def stage_timings() -> dict[str, float]:
    return {f"{r['stage']} {r['name']}": r["seconds"] for r in summary()["stages"]}


def pytest(*args: str) -> list[str]:
    return ["pytest", "-q", "-p", "no:cacheprovider", "--html=reports/bench.html", "--junitxml=reports/bench.xml", *args]


def summary() -> dict:
    return json.loads((ROOT / "reports" / "summary.json").read_text())


def build() -> dict:
    figures = {}
    figures["stage1_cold_parallel_s"] = timed(pytest("stages/test_01_build.py", "--no-cache"), "stage 1 cold, parallel")
    sizes = {r["image"]: r["size_mb"] for r in summary()["sections"].get("image sizes", [])}
    figures["stage1_cold_sequential_s"] = timed(pytest("stages/test_01_build.py", "--no-cache", "--sequential-builds"),
                                                "stage 1 cold, one by one")
    figures["parallel_over_sequential"] = round(figures["stage1_cold_parallel_s"] / figures["stage1_cold_sequential_s"], 2)
    figures["stages_1_2_warm_s"] = timed(pytest("stages/test_01_build.py", "stages/test_02_containers.py"),
                                         "stages 1+2 warm")
    figures["image_sizes_mb"] = sizes
    return figures


def pipeline() -> dict:
    # The first run installs or upgrades whatever differs (a fresh local cluster: everything);
    # its deploy-to-Ready figures are the ones of a real rollout. A warm re-run is a no-op.
    figures = {"whole_pipeline_first_s": timed(pytest("stages/"), "whole pipeline, to reach a deployed state",
                                               check=False)}
    figures["deploy_to_ready_s"] = {d["release"]: d["ready_after_s"] for d in summary()["sections"].get("deploys", [])}
    figures["whole_pipeline_warm_s"] = timed(pytest("stages/"), "whole pipeline warm")
    figures["zero_downtime"] = summary()["sections"].get("zero downtime")
    figures["stage_timings_s"] = stage_timings()
    figures["whole_pipeline_warm_without_zero_downtime_s"] = timed(
        pytest("stages/", "-k", "not zero_downtime"), "whole pipeline warm, without the zero-downtime upgrades")
    figures["suite_build_and_deploy_warm_s"] = timed(pytest("stages/test_01_build.py", "stages/test_04_deploy.py"),
                                                     "stages 1+4 warm (build and deploy)")
    bare = bare_commands(backend_sets=("secret.existingSecret=todo-backend-secret",))
    figures["bare_commands_s"] = round(bare, 1)
    figures["overhead_build_and_deploy"] = round(figures["suite_build_and_deploy_warm_s"] / bare, 2)
    # The bare upgrades made new revisions; put the pipeline's own state back.
    timed(pytest("stages/test_04_deploy.py"), "restore the pipeline's releases", check=False)
    return figures


DEPLOYED_TAG = "v1.0.0"
APPS = (("todo-frontend", "dockerfiles/web.Dockerfile", "app/web"),
        ("todo-backend", "dockerfiles/api.Dockerfile", "app/api"))


def bare_commands(tag: str = DEPLOYED_TAG, backend_sets: tuple[str, ...] = ()) -> float:
    """docker build x2, helm upgrade --install --wait x2, a curl: the suite's work done by hand.
    A tag other than the deployed one is a new backend image, as a developer without the suite
    would ship it: loaded into the node and set on its release, so the backend rolls (the
    frontend's build is cached and its upgrade a no-op)."""
    seconds = 0.0
    # The Dockerfiles' default bases (official names; stand-ins under those names without a registry).
    for name, dockerfile, context in APPS:
        seconds += timed(["/usr/bin/docker", "build", "-q", "-f", dockerfile, "--secret",
                          "id=ca,src=/etc/ssl/certs/ca-certificates.crt", "-t", f"{name}:{tag}", context],
                         f"bare docker build {name}")
    sets = list(backend_sets)
    if tag != DEPLOYED_TAG:
        seconds += timed(["bash", "setup/local-cluster.sh", "load", f"todo-backend:{tag}"], "bare image load into the node")
        sets.append(f"image.tag={tag}")
    for name in ("todo-backend", "todo-frontend"):
        extra = [arg for item in sets for arg in ("--set", item)] if name == "todo-backend" else []
        seconds += timed(["helm", "upgrade", "--install", name, f"charts/{name}", "-n", "todo", "--kubeconfig",
                          KUBECONFIG, "--reuse-values", *extra, "--wait", "--timeout", "300s"],
                         f"bare helm upgrade --install --wait {name}")
    # "a curl": the backend's health through the frontend's pod (no curl in the images).
    seconds += timed(["kubectl", "--kubeconfig", KUBECONFIG, "-n", "todo", "exec", "deploy/todo-frontend", "--", "node",
                      "-e", "require('http').get('http://todo-backend:8000/health',r=>process.exit(r.statusCode===200?0:1))"],
                     "bare curl from the frontend pod")
    return seconds


def bare_change(source: Path, original: str) -> float:
    """(b)'s work done by hand: the same kind of edit, then bare_commands under a tag of its
    own. The same rebuild and the same one rollout as (b), so b/c is the suite's cost."""
    tag = f"bench-{time.time():.0f}"
    source.write_text(original + f"# bench edit by hand {tag}\n")
    try:
        return bare_commands(tag)
    finally:
        source.write_text(original)
        subprocess.run(["/usr/bin/docker", "rmi", f"todo-backend:{tag}", f"todo-frontend:{tag}"], capture_output=True)


def devloop() -> dict:
    """Issue 15's loop. The edit is one comment line appended to the backend's main module:
    a new image (its source changed), the same behaviour."""
    source = ROOT / "app" / "api" / "src" / "main.py"
    original = source.read_text()
    timed(pytest("stages/"), "settle: the pipeline once, so (a) starts from a deployed, proven state", check=False)
    figures = {"a_warm_no_change_s": timed(pytest("stages/"), "(a) warm, nothing changed")}
    figures["a_stage_timings_s"] = stage_timings()
    figures["a_zero_downtime"] = summary()["sections"].get("zero downtime")
    try:
        source.write_text(original + f"# bench edit {time.time():.0f}\n")
        figures["b_one_line_change_s"] = timed(pytest("stages/"), "(b) one-line change in the backend", check=False)
        figures["b_outcome"] = summary().get("stages")
        figures["b_stage_timings_s"] = stage_timings()
        figures["b_zero_downtime"] = summary()["sections"].get("zero downtime")
        figures["b_deploys"] = summary()["sections"].get("deploys")
    finally:
        source.write_text(original)
    # Back to the deployed, proven state of (a), then the same change by hand.
    timed(pytest("stages/"), "settle again: the edit undone", check=False)
    figures["c_bare_commands_same_change_s"] = round(bare_change(source, original), 1)
    figures["c_bare_commands_no_change_s"] = round(bare_commands(), 1)
    figures["ratio_a_over_c_no_change"] = round(figures["a_warm_no_change_s"] / figures["c_bare_commands_no_change_s"], 2)
    figures["ratio_b_over_c_same_change"] = round(figures["b_one_line_change_s"] / figures["c_bare_commands_same_change_s"], 2)
    timed(pytest("stages/"), "restore the pipeline's releases (the bare upgrades replaced)", check=False)
    return figures


def cluster() -> dict:
    script = str(ROOT / "setup" / "local-cluster.sh")
    figures = {"stop_s": timed(["bash", script, "stop"], "local cluster stop")}
    figures["warm_start_to_ready_s"] = timed(["bash", script, "start"], "local cluster warm start to node Ready")
    crictl = Path(os.environ.get("SHIPCHECK_CACHE", Path.home() / ".cache" / "shipcheck")) / "kubernetes-v1.34.4" / "bin" / "crictl"
    subprocess.run([str(crictl), "--runtime-endpoint", "unix:///run/shipcheck-containerd/containerd.sock", "rmi",
                    "docker.io/library/todo-frontend:v1.0.0"], env=ENV, capture_output=True)
    figures["image_load_s"] = timed(["bash", script, "load", "todo-frontend:v1.0.0"], "image load todo-frontend")
    size = subprocess.run(["/usr/bin/docker", "image", "inspect", "-f", "{{.Size}}", "todo-frontend:v1.0.0"],
                          capture_output=True, text=True).stdout.strip()
    figures["image_load_size_mb"] = round(int(size) / 1e6, 1) if size else None
    build_log = Path(os.environ.get("SHIPCHECK_CACHE", Path.home() / ".cache" / "shipcheck")) / "kubernetes-v1.34.4" / "build-seconds"
    figures["cold_kubernetes_build_s"] = float(build_log.read_text()) if build_log.exists() else None
    return figures


def main() -> None:
    chosen = sys.argv[1:] or ["build", "cluster", "pipeline"]
    results = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    for name in chosen:
        results[name] = {"build": build, "pipeline": pipeline, "cluster": cluster, "devloop": devloop}[name]()
        out.write_text(json.dumps(results, indent=2) + "\n")  # after each part: a later failure keeps these
    print(json.dumps(results, indent=2))
    print(f"bench: figures written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
