"""The namespace the releases live in, as the seed defines it: Namespace `todo` with Pod
Security "restricted" enforced (and audited and warned), and ResourceQuota `todo-quota`.

Pure: manifests as dicts from the configuration. The deploy stage applies them; stage 3
validates them against the target Kubernetes version.
"""

from __future__ import annotations

from .config import Config

POD_SECURITY_LEVEL = "restricted"
POD_SECURITY_MODES = ("enforce", "audit", "warn")


def quota_name(cfg: Config) -> str:
    """`todo-quota` for namespace `todo`, as in the seed."""
    return f"{cfg.namespace}-quota"


def _labels(cfg: Config) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": cfg.app, "app.kubernetes.io/managed-by": "shipcheck"}


def pod_security_labels(kubernetes_version: str, level: str = POD_SECURITY_LEVEL) -> dict[str, str]:
    """enforce/audit/warn at `level`, pinned to the target version's policy definition."""
    labels = {}
    for mode in POD_SECURITY_MODES:
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = f"v{kubernetes_version}"
    return labels


def namespace_manifest(cfg: Config) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": cfg.namespace,
                     "labels": {**_labels(cfg), **pod_security_labels(cfg.kubernetes_version)}},
    }


def quota_manifest(cfg: Config) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": quota_name(cfg), "namespace": cfg.namespace, "labels": _labels(cfg)},
        "spec": {"hard": {key: str(value) for key, value in cfg.resource_quota.items()}},
    }


def manifests(cfg: Config) -> list[dict]:
    """Namespace first, then its quota (the order to apply them in); no quota if none is configured."""
    docs = [namespace_manifest(cfg)]
    if cfg.resource_quota:
        docs.append(quota_manifest(cfg))
    return docs
