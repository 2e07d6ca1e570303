#!/usr/bin/env python3
"""kind benchmark: what the kind provider costs on this machine, written to bench/results/.

  python bench/kind.py            warm: set-up no-op, create to Ready, image load, idle cost, then the
                                  pipeline (pytest stages/) on the local cluster and on kind, each
                                  once to deploy and once warm, with both clusters up; delete
  python bench/kind.py --cold     first empties the kind caches (ours only: kind, kubeadm,
                                  local-path-provisioner, the shipcheck-kind/* images) and
                                  builds with an empty Go build cache, so each piece is timed
                                  as on a fresh machine that already has the Kubernetes build
  python bench/kind.py --keep     leave the cluster running at the end
  python bench/kind.py --image REF   the image to load (default: the largest app image present)
  python bench/kind.py --no-pipeline skip the pipeline comparison

Figures go to bench/results/kind-<UTC time>.json and are printed. The local cluster is
started for the comparison when it is not running, and stopped again at the end; the kind
cluster is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import stage_timings  # bench/run.py: the stages' seconds from reports/summary.json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CACHE = Path(os.environ.get("SHIPCHECK_CACHE") or Path.home() / ".cache" / "shipcheck")
KIND_SH = ROOT / "setup" / "kind.sh"
ENV = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{CACHE / 'bin'}:{os.environ['PATH']}"}
# What kind.sh logs for each piece (with_heartbeat's "<what> took N s", the assembly line).
PIECES = {
    "kind": r"building kind took (\d+) s",
    "kubeadm": r"building kubeadm took (\d+) s",
    "local_path_provisioner": r"building local-path-provisioner took (\d+) s",
    "node_base_image": r"building the node base image took (\d+) s",
    "node_image_assembly": r"node image \S+ assembled in (\d+) s",
}


def versions() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / "setup" / "versions.env").read_text().splitlines()
             if "=" in line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def run(argv: list[str], what: str, env: dict | None = None, check: bool = True) -> tuple[float, str]:
    print(f"bench: {what}: {' '.join(argv)}", file=sys.stderr, flush=True)
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - start
    if check and proc.returncode:
        raise SystemExit(f"bench: {what} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    print(f"bench: {what}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds, proc.stdout


def kubectl(*args: str) -> list[str]:
    v = versions()
    built = CACHE / f"kubernetes-{v['KUBERNETES_VERSION']}" / "src" / "_output" / "local" / "bin" / "linux" / "amd64" / "kubectl"
    kubectl_bin = shutil.which("kubectl", path=ENV["PATH"]) or str(built)
    return [kubectl_bin, "--kubeconfig", str(CACHE / "kind" / "kubeconfig"), "--context", "kind-shipcheck", *args]


def empty_kind_caches(v: dict[str, str]) -> None:
    """Ours only: the kind, local-path-provisioner and kubeadm builds and shipcheck-kind/* images."""
    for path in (CACHE / f"kind-{v['KIND_VERSION']}", CACHE / f"local-path-provisioner-{v['LOCAL_PATH_PROVISIONER_VERSION']}",
                 CACHE / "kind" / "node-image"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    (CACHE / f"kubernetes-{v['KUBERNETES_VERSION']}" / "bin" / "kubeadm").unlink(missing_ok=True)
    images = subprocess.run(["/usr/bin/docker", "images", "-q", "--filter", "reference=shipcheck-kind/*"],
                            capture_output=True, text=True).stdout.split()
    if images:
        subprocess.run(["/usr/bin/docker", "rmi", "-f", *sorted(set(images))], capture_output=True)


def cold_build(v: dict[str, str]) -> dict:
    empty_kind_caches(v)
    with tempfile.TemporaryDirectory(prefix="bench-gocache-") as gocache:
        # An empty Go build cache of its own: the shared one stays as it is.
        seconds, out = run(["bash", str(KIND_SH), "build"], "kind set-up, cold",
                           env={**ENV, "GOCACHE": gocache, "DOCKER_BUILDKIT": "1"})
    figures = {"total_s": round(seconds, 1)}
    for piece, pattern in PIECES.items():
        found = re.search(pattern, out)
        figures[f"{piece}_s"] = int(found.group(1)) if found else None
    return figures


def default_image() -> str:
    """The largest local app image: what the pipeline loads."""
    out = subprocess.run(["/usr/bin/docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}",
                          "--filter", "dangling=false"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        ref = line.split()[0]
        if ref.startswith(("todo-frontend:", "todo-backend:")):
            return ref
    return "stand-in/python:3.13"


def idle_cost(samples: int = 6) -> dict:
    """docker stats of the node container once the cluster has settled."""
    time.sleep(60)
    cpu, mem = [], []
    for _ in range(samples):
        out = subprocess.run(["/usr/bin/docker", "stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}}",
                              "shipcheck-control-plane"], capture_output=True, text=True).stdout.split()
        cpu.append(float(out[0].rstrip("%")))
        mem.append(out[1])
        time.sleep(5)
    return {"cpu_percent_of_one_core_mean": round(sum(cpu) / len(cpu), 1), "cpu_samples": cpu, "memory": mem[-1]}


def pipeline_on(provider: str) -> dict:
    """pytest stages/ against one provider: once to reach a deployed state, once warm."""
    def once(what: str) -> tuple[float, dict]:
        seconds, out = run([str(ROOT / ".venv" / "bin" / "pytest"), "stages/", "-q", "-p", "no:cacheprovider",
                            "--cluster", provider, f"--html=reports/bench-kind-{provider}.html",
                            f"--junitxml=reports/bench-kind-{provider}.xml"], f"pipeline on {provider}, {what}",
                           check=False)
        if re.search(r"\d+ (failed|errors?)\b", out.strip().splitlines()[-1]):
            raise SystemExit(f"bench: the pipeline on {provider} is not green ({out.splitlines()[-1]}); "
                             f"see reports/bench-kind-{provider}.html")
        return seconds, stage_timings()
    first_s, first_stages = once("to a deployed state")
    warm_s, warm_stages = once("warm, nothing changed")
    return {"first_s": round(first_s, 1), "first_stage_timings_s": first_stages,
            "warm_s": round(warm_s, 1), "warm_stage_timings_s": warm_stages}


def compare_pipelines() -> dict:
    """The same pipeline on both clusters in one run, both up throughout (so each pays the
    other's idle cost): the ratio is what kind costs against the local cluster."""
    local = ["bash", str(ROOT / "setup" / "local-cluster.sh")]
    started = subprocess.run([*local, "status"], capture_output=True).returncode != 0
    if started:
        run([*local, "start"], "local cluster start (for the comparison)")
    try:
        figures = {provider: pipeline_on(provider) for provider in ("local", "kind")}
    finally:
        if started:
            run([*local, "stop"], "local cluster stop (as found)", check=False)
    figures["warm_ratio_kind_over_local"] = round(figures["kind"]["warm_s"] / figures["local"]["warm_s"], 2)
    figures["first_ratio_kind_over_local"] = round(figures["kind"]["first_s"] / figures["local"]["first_s"], 2)
    figures["local_started_by_bench"] = started
    return figures


OUT = RESULTS / f"kind-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"


def save(figures: dict) -> None:
    """After each part too: a later failure keeps what was measured."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--image")
    parser.add_argument("--no-pipeline", action="store_true")
    args = parser.parse_args()
    v = versions()
    figures: dict = {"versions": {k: v[k] for k in ("KIND_VERSION", "KUBERNETES_VERSION", "LOCAL_PATH_PROVISIONER_VERSION")},
                     "cpus": os.cpu_count()}
    if args.cold:
        run(["bash", str(KIND_SH), "delete"], "delete any kind cluster first", check=False)
        figures["cold_build"] = cold_build(v)
        save(figures)
    figures["warm_build_s"] = round(run(["bash", str(KIND_SH), "build"], "kind set-up, warm (no-op)")[0], 1)
    figures["node_image"] = (CACHE / "kind" / "node-image").read_text().strip()

    run(["bash", str(KIND_SH), "delete"], "no cluster before create", check=False)
    figures["create_to_ready_s"] = round(run(["bash", str(KIND_SH), "create"], "create to node Ready")[0], 1)
    figures["system_pods_ready_after_create_s"] = round(run(kubectl(
        "wait", "--for=condition=Available", "--timeout=300s", "-n", "kube-system", "deployment/coredns"),
        "CoreDNS available")[0] + run(kubectl(
            "wait", "--for=condition=Available", "--timeout=300s", "-n", "local-path-storage",
            "deployment/local-path-provisioner"), "local-path-provisioner available")[0], 1)

    image = args.image or default_image()
    size = subprocess.run(["/usr/bin/docker", "image", "inspect", "-f", "{{.Size}}", image],
                          capture_output=True, text=True).stdout.strip()
    figures["image_load"] = {"image": image, "size_mb": round(int(size or 0) / 1e6),
                             "first_s": round(run(["bash", str(KIND_SH), "load", image], "kind load, first")[0], 1),
                             "again_s": round(run(["bash", str(KIND_SH), "load", image], "kind load, again")[0], 1)}
    figures["idle"] = idle_cost()
    save(figures)
    if not args.no_pipeline:
        figures["pipeline"] = compare_pipelines()
    if not args.keep:
        figures["delete_s"] = round(run(["bash", str(KIND_SH), "delete"], "delete")[0], 1)

    save(figures)
    print(json.dumps(figures, indent=2))
    print(f"bench: figures written to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
