#!/usr/bin/env python3
"""Benchmark of the registry path (issue 14), in one run, figures to bench/results/:

1. push time of the reference images (todo-frontend, todo-backend, todo-postgres as stage 1
   built them) to the registry of setup/registry.sh: cold (its storage emptied first) and
   warm (every layer already there);
2. deploy-to-Ready of a pod on the local cluster, per image, by the two paths:
   - load: the image under a new tag (a new name, so the loader does not skip it) loaded into
     the node (`setup/local-cluster.sh load`: docker save | ctr import), then a pod created;
   - pull: the node's copies from the registry removed first (our registry's refs and their
     compressed layer blobs), then a pod created with repository@digest and the image pull
     Secret: the kubelet pulls, downloading every layer.
   A pod is Ready when its container runs (`sleep`, no probes), so the figure is the image's
   way to the node plus a container start, the same for both paths. Layers the node holds
   unpacked already (the pipeline's own releases) are not unpacked again by either path.

  python bench/registry.py      (needs the stage-1 images and the local cluster)
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shipcheck import commands, config, kube, registry  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SETUP = ROOT / "setup"
KUBECONFIG = "/var/run/kubernetes/admin.kubeconfig"
NODE_CONTAINERD = ["ctr", "--address", "/run/shipcheck-containerd/containerd.sock", "-n", "k8s.io"]
PATH_PREFIX = "shipcheck-bench"
IMAGES = ("todo-frontend", "todo-backend", "todo-postgres")
DEPLOYED = ("todo-frontend", "todo-backend")  # deploy-to-Ready for these


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def registry_info() -> tuple[registry.Registry, registry.Credentials, str]:
    commands.run(["bash", str(SETUP / "registry.sh"), "start"], timeout_s=300)
    info = dict(line.split("=", 1) for line in commands.run(["bash", str(SETUP / "registry.sh"), "info"]).stdout.split())
    creds = dict(line.split("=", 1) for line in Path(info["REGISTRY_CREDENTIALS"]).read_text().split())
    commands.redact(creds["REGISTRY_PASSWORD"])
    return (registry.parse(f"{info['REGISTRY_HOST']}/{PATH_PREFIX}"),
            registry.Credentials(creds["REGISTRY_USERNAME"], creds["REGISTRY_PASSWORD"]), info["REGISTRY_CA"])


def push_all(client, refs: list[str], target: registry.Registry, creds) -> dict:
    rows, total = {}, 0.0
    for ref in refs:
        result = registry.push(client, ref, target, creds)
        problem = registry.push_problem(result, target)
        if problem:
            raise SystemExit(f"bench: {problem}")
        rows[ref] = {"seconds": round(result.seconds, 1), "layers_pushed": len(result.pushed),
                     "layers_existing": len(result.existing),
                     "mb_pushed": round(result.bytes_pushed / 1e6, 1),  # the layers' sizes as Docker's progress reports them
                     "digest": result.digest}
        total += result.seconds
    return {"images": rows, "total_s": round(total, 1)}


def pod(name: str, image: str, pull_secret: str | None) -> dict:
    spec = {"containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"],
                            "securityContext": {"runAsNonRoot": True, "runAsUser": 1001, "allowPrivilegeEscalation": False,
                                                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}}],
            "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0}
    if pull_secret:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def ready_after(apis: kube.KubeApis, ns: str, doc: dict, timeout_s: float = 300) -> float:
    start = time.monotonic()
    apis.core.create_namespaced_pod(ns, doc)
    while time.monotonic() - start < timeout_s:
        status = apis.core.read_namespaced_pod(doc["metadata"]["name"], ns).status
        if any(c.type == "Ready" and c.status == "True" for c in status.conditions or []):
            return time.monotonic() - start
        waiting = [cs.state.waiting.reason for cs in status.container_statuses or [] if cs.state.waiting]
        if any(r in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "CrashLoopBackOff") for r in waiting):
            raise SystemExit(f"bench: pod {doc['metadata']['name']}: {waiting}")
        time.sleep(0.2)
    raise SystemExit(f"bench: pod {doc['metadata']['name']} not Ready after {timeout_s} s")


def layer_digests(target: registry.Registry, name: str, digest: str, creds, ca: str) -> list[str]:
    """The compressed layer blobs of a pushed manifest, from the registry."""
    import requests

    response = requests.get(registry.manifest_url(target, name, digest), auth=(creds.username, creds.password),
                            verify=ca, timeout=10, headers={"Accept": ", ".join(registry.MANIFEST_TYPES)})
    response.raise_for_status()
    return [layer["digest"] for layer in response.json()["layers"]]


def forget_registry_images(host: str, layers: list[str]) -> None:
    """Make the next pull download the layers again: remove the node's refs to images from our
    registry, and the compressed layer blobs themselves (only the registry path holds those:
    images loaded into the node hold their layers uncompressed, under other digests). The
    unpacked layers (snapshots) stay, as they do for the load path."""
    refs = commands.run([*NODE_CONTAINERD, "images", "ls", "-q"], timeout_s=60).stdout.split()
    mine = [r for r in refs if r.startswith(f"{host}/")]
    if mine:
        commands.run([*NODE_CONTAINERD, "images", "rm", "--sync", *mine], timeout_s=120)
    for digest in layers:
        commands.run([*NODE_CONTAINERD, "content", "rm", digest], check=False, timeout_s=60)


def main() -> None:
    import docker

    cfg = config.load(ROOT / "shipcheck.yaml")
    client = docker.from_env(timeout=300)
    refs = [cfg.components[name].image_ref for name in IMAGES]
    missing = [r for r in refs if not client.images.list(name=r)]
    if missing:
        raise SystemExit(f"bench: {missing} not in the engine: run stage 1 first")
    target, creds, ca = registry_info()
    figures: dict = {"registry": str(target), "images": refs}

    say("push, cold: the registry's storage emptied first")
    commands.run(["bash", str(SETUP / "registry.sh"), "reset"], timeout_s=300)
    figures["push_cold"] = push_all(client, refs, target, creds)
    say("push, warm: every layer already in the registry")
    figures["push_warm"] = push_all(client, refs, target, creds)

    apis = kube.KubeApis.connect(KUBECONFIG, None)
    ns = f"shipcheck-bench-registry-{secrets.token_hex(3)}"
    kube.apply(apis, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                      registry.pull_secret_manifest(registry.PULL_SECRET_NAME, ns, target.auth_key, creds)])
    run = secrets.token_hex(3)
    rows = {}
    try:
        for name in DEPLOYED:
            ref = cfg.components[name].image_ref
            # load: a new tag, so the loader (which skips an image it holds under that name) loads it
            local = f"{PATH_PREFIX}/{name}:load-{run}"
            client.images.get(ref).tag(local)
            start = time.monotonic()
            commands.run(["bash", str(SETUP / "local-cluster.sh"), "load", local], timeout_s=600)
            load_s = time.monotonic() - start
            load_ready = ready_after(apis, ns, pod(f"{name}-load", local, None))
            # pull: the node forgets our registry's copies; the pod pulls by digest
            pushed = figures["push_warm"]["images"][ref]
            repository = registry.remote_repository(target, cfg.components[name].image)
            forget_registry_images(target.host, layer_digests(target, registry.repository_name(repository),
                                                              pushed["digest"], creds, ca))
            remote = f"{repository}@{pushed['digest']}"
            pull_ready = ready_after(apis, ns, pod(f"{name}-pull", remote, registry.PULL_SECRET_NAME))
            rows[name] = {"load_s": round(load_s, 1), "load_then_ready_s": round(load_s + load_ready, 1),
                          "pull_ready_s": round(pull_ready, 1),
                          "pull_over_load": round(pull_ready / (load_s + load_ready), 2)}
            say(f"{name}: load {load_s:.1f} s + pod {load_ready:.1f} s; pull and pod {pull_ready:.1f} s")
            client.images.remove(local)
            commands.run([*NODE_CONTAINERD, "images", "rm", f"docker.io/{local}"], check=False, timeout_s=60)
    finally:
        apis.core.delete_namespace(ns)
    figures["deploy_to_ready"] = rows
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"registry-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "images"}, indent=2))
    say(f"figures in {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
