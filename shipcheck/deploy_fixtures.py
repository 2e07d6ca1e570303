"""Stage 4 as a chain of fixtures, each doing one step and returning its facts:

    namespace_applied -> fit -> secrets_applied -> images_available -> release_outcomes

Each gate of stage 4 asserts on one of them. The fit is checked before anything heavy
(image loads) or secret is written; a step whose predecessor failed does nothing and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from . import deploy, diagnostics, kube as kube_mod, namespace, preflight, progress, quota
from .config import Config
from .fixtures import DeployPlan, retry


@dataclass
class Fit:
    profile: str
    fits: list[quota.Fit]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Deployment:
    """What stage 4 did, for stage 5: the plans, each release's outcome, and when it began."""

    plan: DeployPlan
    outcomes: dict[str, deploy.Outcome] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)  # wall clock, for "events since the deploy"

    @property
    def components(self) -> list:
        return [p.component for p in self.plan.releases]

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and len(self.outcomes) == len(self.plan.releases) and all(
            o.ok for o in self.outcomes.values())

    def changed(self) -> list[deploy.Outcome]:
        """Releases this run installed or upgraded (not the ones left as they were)."""
        return [o for o in self.outcomes.values() if o.ok and not o.skipped]


@pytest.fixture(scope="session")
def namespace_applied(cfg: Config, kube) -> list[dict]:
    """The Namespace (Pod Security labels) and its ResourceQuota, applied server-side."""
    docs = namespace.manifests(cfg)
    retry("applying the namespace and quota", lambda: kube_mod.apply(kube, docs))
    return docs


@pytest.fixture(scope="session")
def fit(namespace_applied, deploy_plan: DeployPlan, cfg: Config, kube, target_facts, figures) -> Fit:
    """Every phase of the deployment against the namespace quota and what is free on the
    nodes now (requests of pods already there, other namespaces included)."""
    allocatable, reserved = retry("reading node capacity", lambda: preflight.node_capacity(kube.core, cfg.namespace))
    fits, problems = preflight.fits(deploy_plan.footprints(), cfg.resource_quota, namespace.quota_name(cfg),
                                    allocatable, reserved)
    progress.say(f"values profile {deploy_plan.profile}: {'fits' if not problems else 'does NOT fit'} the quota and "
                 "the nodes")
    for one in fits:
        for row in one.rows():
            figures.add("deploy fit", profile=deploy_plan.profile, **row)
    return Fit(deploy_plan.profile, fits, problems)


@pytest.fixture(scope="session")
def secrets_applied(fit: Fit, secrets_plan, cfg: Config, kube) -> list[str]:
    """The app's Secrets and ConfigMaps, written once the deploy is known to fit."""
    if not fit.ok:
        return []
    docs = secrets_plan.manifests(cfg.namespace)
    retry("writing the Secrets and ConfigMaps", lambda: kube_mod.apply(kube, docs))
    return [f"{d['kind']}/{d['metadata']['name']}" for d in docs]


@pytest.fixture(scope="session")
def images_available(fit: Fit, deploy_plan: DeployPlan, cluster, built, figures) -> dict[str, float] | None:
    """Each release's image in the cluster's nodes (seconds per image); None when the fit
    check failed (nothing is loaded for a deploy that will not happen)."""
    if not fit.ok:
        return None
    loaded = {}
    for p in deploy_plan.releases:
        ref = built(p.component)
        loaded[p.component.name] = seconds = cluster.load_image(ref)
        figures.add("image loads", image=ref, provider=cluster.provider, seconds=round(seconds, 1))
    return loaded


@pytest.fixture(scope="session")
def deploy_target(cfg: Config, helm, kube, kubectl) -> deploy.Target:
    return deploy.Target(helm, kube, kubectl, cfg.timeouts_s["deploy"],
                         readiness_grace_s=cfg.timeouts_s.get("readiness_grace", 60.0))


@pytest.fixture(scope="session")
def deployment(images_available, secrets_applied, deploy_plan: DeployPlan, deploy_target: deploy.Target, kube,
               kubectl, helm, cfg: Config, register_diagnoser, figures):
    """Each release installed or upgraded in order, stopping at the first failure; releases
    whose render did not change are not touched."""
    result = Deployment(deploy_plan)

    def evidence():
        found = [(f"{o.release} at failure: {title}", text) for o in result.outcomes.values() if not o.ok
                 for title, text in o.evidence]
        return found + diagnostics.collect(kube, kubectl, helm, cfg.namespace, [p.release for p in deploy_plan.releases])
    unregister = register_diagnoser("deployment", evidence)
    if images_available is not None:
        for p in deploy_plan.releases:
            outcome = deploy.deploy(deploy_target, p)
            result.outcomes[p.component.name] = outcome
            figures.add("deploys", release=p.release, ok=outcome.ok, skipped=outcome.skipped, revision=outcome.revision,
                        ready_after_s=_round(outcome.ready_after_s),
                        failure_detected_after_s=_round(outcome.detected_after_s), recovery=outcome.recovery)
            if not outcome.ok:
                break
    yield result
    unregister()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
