"""The files of shipcheck's kind node (setup/kind-node/), checked without Docker: the
manifests kind applies parse and say what the node needs, and the configs pin what
setup/kind.sh and the README promise."""

import json
import re
from pathlib import Path

import yaml

NODE = Path(__file__).resolve().parent.parent / "setup" / "kind-node"
VERSIONS = dict(line.split("=", 1) for line in (NODE.parent / "versions.env").read_text().splitlines()
                if "=" in line and not line.startswith("#"))


def documents(name, **values):
    text = (NODE / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    assert "@" not in re.sub(r"#.*", "", text), f"{name}: a placeholder is left"
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_the_storage_manifest_makes_standard_the_default_class_with_local_images():
    docs = documents("storage.yaml", PROVISIONER_IMAGE="docker.io/shipcheck-kind/lpp:v1",
                     HELPER_IMAGE="docker.io/shipcheck-kind/helper:t")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("StorageClass", "standard") in kinds and ("Deployment", "local-path-provisioner") in kinds
    storage_class = next(d for d in docs if d["kind"] == "StorageClass")
    assert storage_class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert storage_class["provisioner"] == "rancher.io/local-path"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "docker.io/shipcheck-kind/lpp:v1" and container["imagePullPolicy"] == "Never"
    assert container["command"][container["command"].index("--helper-image") + 1] == "docker.io/shipcheck-kind/helper:t"
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert container["command"][container["command"].index("--service-account-name") + 1] == account  # helper pods
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert json.loads(config["data"]["config.json"])["nodePathMap"][0]["paths"] == ["/var/local-path-provisioner"]
    helper = yaml.safe_load(config["data"]["helperPod.yaml"])
    assert helper["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_the_default_cni_manifest_creates_something_harmless():
    """kind runs `kubectl create -f` on it: it must hold an object, and run nothing."""
    (doc,) = documents("default-cni.yaml")
    assert doc["kind"] == "ConfigMap" and doc["metadata"]["namespace"] == "kube-system"


def test_the_node_bridge_network_is_ipv4_inside_kinds_pod_subnet():
    conflist = json.loads((NODE / "99-shipcheck-bridge.conflist").read_text())
    bridge = conflist["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] and bridge["hairpinMode"]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.0.0/24"}]]


def test_containerd_names_the_pause_image_kubeadm_asks_for_and_clamps_oom_scores():
    text = (NODE / "containerd.toml").read_text()
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.1"' in text
    assert "restrict_oom_score_adj = true" in text and "SystemdCgroup = true" in text
    assert 'snapshotter = "overlayfs"' in text  # kind load docker-image reads it


def test_no_unit_lowers_an_oom_score():
    """OOMScoreAdjust needs CAP_SYS_RESOURCE, which the VMs this image is for withhold."""
    for unit in NODE.glob("*.service"):
        assert "OOMScoreAdjust" not in unit.read_text(), unit.name


def test_versions_are_pinned_for_cgroup_v1():
    assert VERSIONS["KIND_VERSION"] == "v0.33.0" and VERSIONS["KUBERNETES_VERSION"].startswith("v1.34.")
    assert VERSIONS["LOCAL_PATH_PROVISIONER_VERSION"] == "v0.0.30"
    assert "FROM ${BASE_IMAGE}" in (NODE / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=debian:trixie-slim" in (NODE / "Dockerfile").read_text()
