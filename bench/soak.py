#!/usr/bin/env python3
"""Soak: consecutive `pytest stages/` runs on the warm cluster, and what each leaves behind.

  python bench/soak.py [--runs 5] [--namespace shipcheck-faults-soak] [--image-prefix wt-faults/] [--cleanup]

Each run is the whole pipeline (stages 1-5) with nothing changed between runs, in a namespace of
its own and with images under names of its own (so the shared todo-* images are never retagged).
After each run the script counts what is left:

  pods, Jobs            in the namespace (and the pods that are not Running)
  ReplicaSets           per Deployment, and those beyond its revisionHistoryLimit (+1 current)
  helm revisions        per release (a no-change run must not add one)
  containerd images     on the node (crictl against the local cluster's containerd): all, and ours
  dangling images       in Docker: all, and ours (our titles, built from this checkout's revision)

A soak passes when every run is green (0 failed tests: no false positive on an unchanged app)
and no count grows from the second run on (the first run may install). Figures go to
bench/results/soak-<UTC time>.json (each run's log and summary.json beside it) and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shipcheck import commands, config, kube, tools  # noqa: E402

RESULTS = ROOT / "bench" / "results"
KUBECONFIG = "/var/run/kubernetes/admin.kubeconfig"
CONTAINERD = "unix:///run/shipcheck-containerd/containerd.sock"
CRICTL = Path.home() / ".cache" / "shipcheck" / "kubernetes-v1.34.4" / "bin" / "crictl"
GROWTH_KEYS = ("pods", "jobs", "replicasets_beyond_history", "helm_revisions", "containerd_images_ours",
               "dangling_images_ours")


def pipeline_argv(args, run_dir: Path, cfg: config.Config) -> list[str]:
    sets = [f"namespace={args.namespace}"]
    if args.image_prefix:
        sets += [f"components.{c.name}.image={args.image_prefix}{c.image}" for c in cfg.components.values()]
    return [sys.executable, "-m", "pytest", "stages/", "-q", "-p", "no:cacheprovider", "--cluster=local",
            f"--html={run_dir / 'report.html'}", "--self-contained-html", f"--junitxml={run_dir / 'junit.xml'}",
            *[a for s in sets for a in ("--set", s)]]


def leftovers(apis: kube.KubeApis, namespace: str, cfg: config.Config, prefix: str, revision: str) -> dict:
    """What the namespace, the node's containerd and Docker hold now."""
    pods = apis.core.list_namespaced_pod(namespace).items
    deployments = apis.apps.list_namespaced_deployment(namespace).items
    replicasets = apis.apps.list_namespaced_replica_set(namespace).items
    beyond = 0
    for dep in deployments:
        owned = [rs for rs in replicasets if any(o.uid == dep.metadata.uid for o in rs.metadata.owner_references or [])]
        limit = dep.spec.revision_history_limit if dep.spec.revision_history_limit is not None else 10
        beyond += max(0, len(owned) - (limit + 1))
    helm = commands.run([tools.binary("helm"), "list", "--all", "-q", "--namespace", namespace, "--kubeconfig",
                         KUBECONFIG], check=False, timeout_s=60).stdout.split()
    revisions = {}
    for release in helm:
        history = commands.run([tools.binary("helm"), "history", release, "-o", "json", "--max", "100", "--namespace",
                                namespace, "--kubeconfig", KUBECONFIG], check=False, timeout_s=60)
        revisions[release] = len(json.loads(history.stdout or "[]"))
    crictl = commands.run([str(CRICTL), "--runtime-endpoint", CONTAINERD, "images", "-o", "json"], check=False,
                          timeout_s=60)
    node_images = json.loads(crictl.stdout or "{}").get("images", [])
    ours = [i for i in node_images if any(prefix in t for t in i.get("repoTags") or [])] if prefix else []
    titles = {c.name for c in cfg.components.values()}
    dangling = commands.run(["docker", "images", "-q", "--no-trunc", "-f", "dangling=true"], check=False,
                            timeout_s=60).stdout.split()
    dangling_ours = 0
    if dangling:
        inspect = commands.run(["docker", "image", "inspect", *dangling], check=False, timeout_s=120)
        for image in json.loads(inspect.stdout or "[]"):
            labels = (image.get("Config") or {}).get("Labels") or {}
            if labels.get("org.opencontainers.image.title") in titles and labels.get(
                    "org.opencontainers.image.revision") == revision:
                dangling_ours += 1
    return {"pods": len(pods), "pods_not_running": sorted(p.metadata.name for p in pods
                                                          if p.status.phase not in ("Running",)),
            "jobs": len(apis.batch.list_namespaced_job(namespace).items), "replicasets": len(replicasets),
            "replicasets_beyond_history": beyond, "helm_revisions": sum(revisions.values()),
            "helm_history": revisions, "containerd_images": len(node_images), "containerd_images_ours": len(ours),
            "dangling_images": len(dangling), "dangling_images_ours": dangling_ours}


def junit_counts(path: Path) -> dict:
    import xml.etree.ElementTree as ET

    if not path.exists():
        return {}
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "failed_tests": []}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        kind = {"failure": "failed", "error": "error", "skipped": "skipped"}[kinds[0]] if kinds else "passed"
        counts[kind] += 1
        if kind in ("failed", "error"):
            counts["failed_tests"].append(f"{case.get('classname')}::{case.get('name')}")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--namespace", default="shipcheck-faults-soak")
    parser.add_argument("--image-prefix", default="wt-faults/", help="'' builds under the app's own image names")
    parser.add_argument("--cleanup", action="store_true", help="delete the namespace at the end")
    args = parser.parse_args()

    cfg = config.load(ROOT / "shipcheck.yaml")
    apis = kube.KubeApis.connect(KUBECONFIG, None)
    revision = commands.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], check=False).stdout.strip()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = RESULTS / f"soak-{stamp}"
    out.mkdir(parents=True)
    env = {"PATH": os.pathsep.join([str(tools.cache_bin_dir()), str(Path(sys.executable).parent), os.environ["PATH"]])}
    figures = {"started": stamp, "namespace": args.namespace, "image_prefix": args.image_prefix,
               "revision": revision, "load_average_start": os.getloadavg(), "runs": []}
    for number in range(1, args.runs + 1):
        run_dir = out / f"run-{number}"
        run_dir.mkdir()
        print(f"soak: run {number} of {args.runs}", file=sys.stderr, flush=True)
        result = commands.run(pipeline_argv(args, run_dir, cfg), check=False, cwd=ROOT, env=env, timeout_s=3600)
        (run_dir / "output.log").write_text(result.stdout + result.stderr)
        summary = ROOT / "reports" / "summary.json"
        if summary.exists():
            (run_dir / "summary.json").write_text(summary.read_text())
        counts = junit_counts(run_dir / "junit.xml")
        left = leftovers(apis, args.namespace, cfg, args.image_prefix, revision)
        row = {"run": number, "rc": result.rc, "seconds": round(result.duration_s, 1), "tests": counts,
               "leftovers": left, "load_average": os.getloadavg()}
        figures["runs"].append(row)
        print(f"soak: run {number}: rc {result.rc} in {result.duration_s:.0f} s, {counts.get('passed')} passed, "
              f"{counts.get('failed', 0) + counts.get('error', 0)} failed; left "
              + ", ".join(f"{k} {left[k]}" for k in GROWTH_KEYS), file=sys.stderr, flush=True)
        (out / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")

    runs = figures["runs"]
    growth = {key: [r["leftovers"][key] for r in runs] for key in GROWTH_KEYS}
    grew = {key: values for key, values in growth.items() if len(values) > 1 and max(values[1:]) > values[1]}
    figures["verdict"] = {
        "green_runs": sum(1 for r in runs if r["rc"] == 0),
        "false_positives": sum(r["tests"].get("failed", 0) + r["tests"].get("error", 0) for r in runs),
        "growth_from_run_2": grew, "counts": growth,
        "seconds": [r["seconds"] for r in runs],
    }
    figures["ok"] = figures["verdict"]["green_runs"] == len(runs) and not figures["verdict"]["false_positives"] and not grew
    if args.cleanup:
        apis.core.delete_namespace(args.namespace)
    path = RESULTS / f"soak-{stamp}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nsoak {'PASSED' if figures['ok'] else 'FAILED'}: {path.relative_to(ROOT)}")
    print(f"{'run':>3} {'rc':>3} {'seconds':>8} {'passed':>7} {'failed':>7}  " + " ".join(f"{k:>14.14}" for k in GROWTH_KEYS))
    for r in runs:
        print(f"{r['run']:>3} {r['rc']:>3} {r['seconds']:>8.1f} {r['tests'].get('passed', 0):>7} "
              f"{r['tests'].get('failed', 0) + r['tests'].get('error', 0):>7}  "
              + " ".join(f"{r['leftovers'][k]:>14}" for k in GROWTH_KEYS))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
