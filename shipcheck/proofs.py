"""Proofs kept with the releases, so an unchanged deployment is not rolled or tested again
only to prove the same thing again.

A zero-downtime proof is keyed by the exact render of every release (chart, values, image
IDs: the plans' digests) and records how it was proven (the real upgrade of stage 4, or the
synthetic roll to a new tag and back), the revisions, and the request counts. A passed
`helm test` is keyed by its release's render: the synthetic proof rolls back to the same
render under a new revision, which Helm's own record of the test (per revision) would not
recognise. Both live in one ConfigMap the suite owns in the namespace; a change of any
render changes the key.
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
        return (f"proven by a {self.how} at {revisions} ({self.requests} requests, {self.failed} failed, "
                f"{when(self.at)}), unchanged since")


def when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def helm_test_field(release: str) -> str:
    """The ConfigMap key of a release's passed helm test."""
    return f"helm-test.{release}"


def key(digests: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()[:16]


def _data(apis: kube.KubeApis, namespace: str) -> dict[str, str]:
    try:
        return apis.core.read_namespaced_config_map(CONFIGMAP, namespace).data or {}
    except Exception as exc:
        if kube.is_not_found(exc):
            return {}
        raise


def _store(apis: kube.KubeApis, namespace: str, field: str, value: dict) -> None:
    # The whole data is applied: server-side apply drops the fields our manager stops setting.
    data = _data(apis, namespace) | {field: json.dumps(value, sort_keys=True)}
    kube.apply(apis, [{"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": CONFIGMAP, "namespace": namespace,
                                    "labels": {"app.kubernetes.io/managed-by": "shipcheck"}},
                       "data": data}])


def read(apis: kube.KubeApis, namespace: str) -> Proof | None:
    try:
        return Proof(**json.loads(_data(apis, namespace).get("proof", "")))
    except (ValueError, TypeError):
        return None  # none yet, or a record from another version of the suite: prove again


def record(apis: kube.KubeApis, namespace: str, proof: Proof) -> None:
    _store(apis, namespace, "proof", asdict(proof))


def helm_test_passed(apis: kube.KubeApis, namespace: str, release: str, digest: str) -> str | None:
    """How the release's `helm test` passed for exactly this render, else None."""
    try:
        found = json.loads(_data(apis, namespace).get(helm_test_field(release), ""))
        if found["digest"] != digest:
            return None
        return f"passed at revision {found['revision']} ({when(found['at'])}) for the same chart, values and images"
    except (ValueError, TypeError, KeyError):
        return None


def record_helm_test(apis: kube.KubeApis, namespace: str, release: str, digest: str, revision: int) -> None:
    _store(apis, namespace, helm_test_field(release), {"digest": digest, "revision": revision, "at": time.time()})
