"""Zero-downtime proofs, kept with the releases so an unchanged deployment is not rolled
again only to prove it again.

A proof is keyed by the exact render of every release (chart, values, image IDs: the plans'
digests) and records how it was proven (the real upgrade of stage 4, or the synthetic
roll to a new tag and back), the revisions, and the request counts. It lives in a
ConfigMap the suite owns in the namespace; a change of any render changes the key.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

from . import kube

CONFIGMAP = "shipcheck-proofs"


@dataclass(frozen=True)
class Proof:
    key: str
    how: str  # "real upgrade" | "synthetic"
    revisions: dict[str, int]
    requests: int
    failed: int
    at: float

    def describe(self) -> str:
        revisions = ", ".join(f"{r} revision {n}" for r, n in sorted(self.revisions.items()))
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.at))
        return (f"proven by a {self.how} at {revisions} ({self.requests} requests, {self.failed} failed, {when}), "
                "unchanged since")


def key(digests: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()[:16]


def read(apis: kube.KubeApis, namespace: str) -> Proof | None:
    try:
        data = apis.core.read_namespaced_config_map(CONFIGMAP, namespace).data or {}
    except Exception as exc:
        if kube.is_not_found(exc):
            return None
        raise
    try:
        return Proof(**json.loads(data.get("proof", "")))
    except (ValueError, TypeError):
        return None  # a record from another version of the suite: prove again


def record(apis: kube.KubeApis, namespace: str, proof: Proof) -> None:
    kube.apply(apis, [{"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": CONFIGMAP, "namespace": namespace,
                                    "labels": {"app.kubernetes.io/managed-by": "shipcheck"}},
                       "data": {"proof": json.dumps(asdict(proof), sort_keys=True)}}])
