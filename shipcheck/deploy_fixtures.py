"""Stage 4 as a chain of fixtures, each doing one step and returning its facts:

    namespace_applied -> fit -> secrets_applied -> images_available -> release_outcomes

(images_available loads images into the nodes, or on the registry path applies the image
pull Secret and loads nothing: registry_fixtures.py.)

Each gate of stage 4 asserts on one of them. The fit is checked before anything heavy
(image loads) or secret is written; a step whose predecessor failed does nothing and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from . import checks, deploy, diagnostics, kube as kube_mod, namespace, preflight, progress, quota, web
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
    """What stage 4 did, for stage 5: the plans, each release's outcome, when it began, and the
    requests counted while it upgraded releases that were serving."""

    plan: DeployPlan
    outcomes: dict[str, deploy.Outcome] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)  # wall clock, for "events since the deploy"
    upgrade_loop: web.LoopResult | None = None  # None: no serving release was upgraded

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
    """The Namespace (Pod Security labels) and its ResourceQuota, applied server-side. An
    account without the right to change them (least privilege: an administrator made them,
    examples/rbac/) leaves them as they are; the stage's gate then checks what is there."""
    docs = namespace.manifests(cfg)
    for doc in docs:
        try:
            retry(f"applying {doc['kind']} {doc['metadata']['name']}", lambda d=doc: kube_mod.apply(kube, [d]))
        except Exception as exc:
            if getattr(exc, "status", None) != 403:
                raise
            progress.say(f"{doc['kind']} {doc['metadata']['name']}: not allowed to apply it (RBAC); checking the one "
                         "an administrator made instead")
            if doc["kind"] == "Namespace" and not _namespace_exists(kube, cfg.namespace):
                pytest.fail(f"namespace {cfg.namespace} does not exist and this account may not create it (403). "
                            "Fix: an administrator creates it with its Pod Security labels and quota "
                            "(README, \"A cluster on another machine\"), or run with an account that may.",
                            pytrace=False)
    return docs


def _namespace_exists(kube, name: str) -> bool:
    try:
        kube.core.read_namespace(name)
        return True
    except Exception as exc:
        return getattr(exc, "status", None) == 403  # may not read it either: the deploy will tell


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
def images_available(fit: Fit, deploy_plan: DeployPlan, cluster, built, figures,
                     registry_target, request) -> dict[str, float] | None:
    """Each release's image in the cluster's nodes (seconds per image); None when the fit
    check failed (nothing is loaded for a deploy that will not happen). On the registry path
    nothing is loaded: the nodes pull by digest with the image pull Secret, applied here."""
    if not fit.ok:
        return None
    if registry_target is not None:
        secret = request.getfixturevalue("registry_pull_secret")
        progress.say(f"registry path: the nodes pull from {registry_target.registry} by digest"
                     f"{' with the image pull Secret ' + secret if secret else ''}; nothing is loaded into them")
        return {p.component.name: 0.0 for p in deploy_plan.releases}
    loaded = {}
    for p in deploy_plan.releases:
        ref = built(p.component)
        loaded[p.component.name] = seconds = cluster.load_image(ref)
        figures.add("image loads", image=ref, provider=cluster.provider, seconds=round(seconds, 1))
    return loaded


@pytest.fixture(scope="session")
def deploy_target(cfg: Config, helm, kube, kubectl, registry_target) -> deploy.Target:
    return deploy.Target(helm, kube, kubectl, cfg.timeouts_s["deploy"],
                         readiness_grace_s=cfg.timeouts_s.get("readiness_grace", 60.0),
                         pulls_expected=registry_target is not None)  # pull errors classified by cause


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
    # The zero-downtime proof runs on the real upgrade: when the entry release already serves,
    # a request loop runs from the first change of an app release to the end of the last
    # rollout. A database's own change is before it (databases deploy first): a one-replica
    # PostgreSQL cannot roll without a gap, and is not what the proof is about.
    serving = images_available is not None and entry_serving(cfg, helm)
    loop = request_loop(cfg, kube, deploy_plan) if serving else None
    started = False

    def on_change() -> None:
        nonlocal started
        if loop is not None and not started:
            progress.say("a serving release is about to change: counting requests through the upgrade")
            loop.__enter__()
            started = True
    try:
        for p in deploy_plan.releases if images_available is not None else []:
            outcome = deploy.deploy(deploy_target, p, on_change=on_change if p.component.role == "app" else None)
            result.outcomes[p.component.name] = outcome
            figures.add("deploys", release=p.release, ok=outcome.ok, skipped=outcome.skipped, revision=outcome.revision,
                        ready_after_s=_round(outcome.ready_after_s),
                        failure_detected_after_s=_round(outcome.detected_after_s), recovery=outcome.recovery)
            if not outcome.ok:
                break
    finally:
        if started:
            time.sleep(1)
            loop.__exit__(None, None, None)
            result.upgrade_loop = loop.result
            progress.say(f"requests during the upgrade: {loop.result}")
    yield result
    unregister()


def entry_serving(cfg: Config, helm) -> bool:
    entry = cfg.entry_component
    history = helm.history(entry.release) if entry.chart else []
    return bool(history) and history[-1]["status"] == "deployed"


def loop_targets(cfg: Config, plan: DeployPlan) -> list[tuple]:
    """(component, path) pairs the request loop hits through the API server's service proxy:
    the entry's health path and its GET checks (those needing no captured value), and the
    health path of every other app, each through its own Service."""
    entry = cfg.entry_component
    targets = [(entry, entry.health_path)]
    variables = checks.new_variables()
    for check in cfg.checks:
        request = check.request  # None for a browser step
        if (request and check.component == entry.name and 5 in check.stages and request.get("method", "GET") == "GET"
                and checks.names_used(request.get("path", "")) <= set(variables)):
            targets.append((entry, checks.fill(request["path"], variables)))
    targets += [(p.component, p.component.health_path) for p in plan.releases
                if p.component.role == "app" and p.component is not entry and p.component.health_path]
    unique: dict[tuple[str, str], tuple] = {}  # by name: a Component holds dicts, it cannot be hashed
    for component, path in targets:
        unique.setdefault((component.name, path), (component, path))
    return list(unique.values())


def request_loop(cfg: Config, apis, plan: DeployPlan) -> web.RequestLoop:
    targets = {f"{c.release}{path}": (c, path) for c, path in loop_targets(cfg, plan)}

    def send(label: str) -> tuple[int | None, str]:
        component, path = targets[label]
        status, body = kube_mod.service_request(apis, cfg.namespace, component.release, component.port, path)
        return status, body[:120].decode(errors="replace")
    return web.RequestLoop(list(targets), interval_s=0.05, send=send)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
