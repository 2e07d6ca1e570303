"""Fixtures shared by the stages: the Docker engine and the builds, the cluster, and the one
release plan that stage 3 validates and stage 4 deploys.

Tests that take `component` run once per configured component; `app_component` only for
app components (those with an HTTP health path).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from . import app_secrets, commands, helm as helm_mod, images, kube as kube_mod, plan as plan_mod, preflight
from . import progress, providers, quota, registry, tools, waiting
from .config import Component, Config
from .plugin import CONFIG_KEY

# How images reach the cluster (registry or loading) is settled by these, which `builds`,
# `deploy_plan` and stage 4 take (issue 14).
pytest_plugins = ["shipcheck.registry_fixtures"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cfg: Config = metafunc.config.stash[CONFIG_KEY]
    for name, chosen in (("component", list(cfg.components.values())), ("app_component", cfg.apps)):
        if name in metafunc.fixturenames:
            # Function scope keeps the file's order (gate by gate); a wider scope would make
            # pytest regroup tests per component and stop containers others still need.
            metafunc.parametrize(name, chosen, ids=[c.name for c in chosen])


# --- images ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def docker_client():
    """A connected Docker SDK client; without an engine the whole run stops here."""
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        pytest.exit(f"Docker engine unreachable ({type(exc).__name__}: {exc}). Start it (set-up: "
                    "`bash setup/docker.sh`), or point DOCKER_HOST at a running engine.", returncode=3)
    return client


@pytest.fixture(scope="session")
def source_revision(cfg: Config):
    """source_revision(component) -> the last commit that changed its build inputs (context and
    Dockerfile), for the OCI revision label. Not HEAD: a commit elsewhere must not change an
    image whose sources did not change (its ID, and so its pods, would roll for nothing)."""
    def revision(component: Component) -> str:
        result = commands.run(["git", "-C", str(cfg.root), "log", "-1", "--format=%h", "--abbrev=12", "--",
                               str(component.context), str(component.dockerfile)], check=False, timeout_s=20)
        return result.stdout.strip() or "unknown"
    return revision


@pytest.fixture(scope="session")
def ca_bundle(pytestconfig) -> Path | None:
    option = pytestconfig.getoption("ca_bundle")
    if option == "auto":
        return images.HOST_CA_BUNDLE if images.HOST_CA_BUNDLE.is_file() else None
    if option == "none":
        return None
    return Path(option)  # checked when the run starts (plugin)


@pytest.fixture(scope="session")
def builds(pytestconfig, cfg: Config, docker_client, source_revision, ca_bundle, figures,
           image_route) -> dict[str, images.BuildResult]:
    """Build every component's image with BuildKit (in parallel unless --sequential-builds),
    once `image_route` (registry_fixtures.py) has settled how the images will reach the cluster."""
    cli = images.docker_cli()
    mode = pytestconfig.getoption("base_images")
    jobs = []
    for component in cfg.components.values():
        args = {**component.base_images, **component.build_args,
                "VERSION": component.tag, "REVISION": source_revision(component),
                "SOURCE": cfg.source_url or "local"}
        # With docker_client, each build first makes its base images present (official, else a stand-in).
        jobs.append(functools.partial(images.build, cfg, component, cli=cli, build_args=args, ca_bundle=ca_bundle,
                                      no_cache=pytestconfig.getoption("shipcheck_no_cache"),
                                      docker_client=docker_client, base_mode=mode))
    parallel = not pytestconfig.getoption("sequential_builds")
    progress.say(f"building {len(jobs)} images {'in parallel' if parallel else 'one by one'} with BuildKit")
    results, wall_s = images.build_all(jobs, parallel=parallel)
    images.record_figures(figures, results, wall_s)
    return {r.component: r for r in results}


@pytest.fixture(scope="session")
def built(builds, cfg: Config):
    """The refs of images that built; a test needing an image that failed to build skips."""
    def ref(component: Component) -> str:
        result = builds[component.name]
        if not result.ok:
            pytest.skip(f"{result.ref} did not build (see test_image_built_and_tagged[{component.name}])")
        return result.ref
    return ref


@pytest.fixture(scope="session")
def image_facts(docker_client, built):
    """image_facts(component) -> ImageFacts of its built image, read once."""
    cache: dict[str, images.ImageFacts] = {}

    def read(component: Component) -> images.ImageFacts:
        ref = built(component)
        if ref not in cache:
            cache[ref] = images.ImageFacts.read(docker_client, ref)
        return cache[ref]
    return read


# --- the cluster ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cluster(pytestconfig, cfg: Config) -> providers.Cluster:
    """The cluster to deploy to (--cluster, else cluster_provider in the configuration),
    started when the provider can start it."""
    requested = pytestconfig.getoption("cluster") or cfg.cluster_provider
    try:
        return providers.connect(requested)
    except (RuntimeError, commands.CommandError) as exc:
        pytest.fail(f"no Kubernetes cluster ({requested}): {exc}", pytrace=False)


@pytest.fixture(scope="session")
def kube(cluster) -> kube_mod.KubeApis:
    return kube_mod.KubeApis.connect(cluster.kubeconfig, cluster.context)


@pytest.fixture(scope="session")
def kubectl(cluster) -> list[str]:
    """kubectl argv prefix with the cluster's kubeconfig/context (for describe, port-forward)."""
    return [tools.binary("kubectl"), *cluster.kube_args()]


@pytest.fixture(scope="session")
def helm(cluster, cfg: Config) -> helm_mod.Helm:
    try:
        return helm_mod.Helm(tools.binary("helm"), cluster.helm_args(), cfg.namespace)
    except tools.ToolNotFound as exc:
        pytest.fail(str(exc), pytrace=False)


def retry(what: str, call):
    return waiting.retry(what, call, is_transient=kube_mod.is_transient)


@dataclass(frozen=True)
class TargetFacts:
    """The cluster as the plan sees it."""

    provider: str
    server_version: str  # v1.34.4
    allocatable: dict[str, str]  # summed over schedulable nodes
    system: dict[str, Decimal]  # what kube-system's pods request

    @property
    def minor(self) -> str:
        """'v1.34.4' -> '1.34', for the offline schemas."""
        return ".".join(self.server_version.lstrip("v").split(".")[:2])


@pytest.fixture(scope="session")
def target_facts(cluster, kube, cfg: Config, figures) -> TargetFacts:
    version = retry("reading the server version", lambda: kube_mod.server_version(kube))
    allocatable, system = retry("reading node capacity", lambda: preflight.node_capacity(
        kube.core, cfg.namespace, only_namespace="kube-system"))
    memory = quota.format_memory(quota.parse_quantity(allocatable["memory"]))
    figures.add("cluster", provider=cluster.provider, context=cluster.context or "-", server_version=version,
                allocatable_cpu=allocatable["cpu"], allocatable_memory=memory, allocatable_pods=allocatable["pods"])
    progress.say(f"cluster {cluster.provider}: Kubernetes {version}, allocatable cpu {allocatable['cpu']}, "
                 f"memory {memory}")
    return TargetFacts(cluster.provider, version, allocatable, system)


@pytest.fixture(scope="session")
def secrets_plan(cfg: Config, kube) -> app_secrets.SecretsPlan:
    """Every Secret's value, resolved before anything is written (generated ones read back
    from the cluster so they stay the same)."""
    read = app_secrets.read_from_cluster(kube.core, cfg.namespace)
    return retry("reading the Secrets", lambda: app_secrets.resolve(cfg, os.environ, read, app_secrets.cluster_host(cfg)))


# --- the plan -------------------------------------------------------------------------------
@dataclass
class DeployPlan:
    """What will be deployed, in order (databases first, then the apps as configured)."""

    profile: str
    releases: list[plan_mod.ReleasePlan]
    requested_profile: str

    def for_component(self, component: Component) -> plan_mod.ReleasePlan | None:
        return next((p for p in self.releases if p.component.name == component.name), None)

    def footprints(self) -> list[quota.Footprint]:
        return [p.footprint() for p in self.releases if p.ok]


def deployed_components(cfg: Config, plan_secrets: app_secrets.SecretsPlan) -> list[Component]:
    return [c for c in cfg.databases + cfg.apps
            if c.chart and not (c.role == "database" and plan_secrets.external_database)]


@pytest.fixture(scope="session")
def deploy_plan(pytestconfig, cfg: Config, helm, target_facts: TargetFacts, secrets_plan, image_facts,
                figures, pushed, registry_target) -> DeployPlan:
    """One plan per release, rendered once with the target's Kubernetes version. The values
    profile follows the cluster's size (allocatable minus kube-system), not what other
    workloads use now: the same cluster always gets the same values. On the registry path
    the charts get the pushed repository and `tag@digest`, and the image pull Secret."""
    components = deployed_components(cfg, secrets_plan)
    # The registry path (issue 14; registry_fixtures.py): deploy what stage 1 pushed, by digest.
    for c in components if registry_target else []:
        if not (c.name in pushed and pushed[c.name].ok):
            pytest.fail(f"{c.name}: not pushed to {registry_target.registry} (see stage 1's "
                        f"test_image_pushed_and_digest_read_back[{c.name}]); nothing to deploy by digest", pytrace=False)
    pull_secrets = [registry.PULL_SECRET_NAME] if registry_target and registry_target.credentials else []

    def clients(c: Component) -> tuple[str, ...]:
        return tuple(other.release for other in components if c.name in other.connects_to)

    def plans_for(profile: str) -> list[plan_mod.ReleasePlan]:
        return [plan_mod.for_component(helm, c, namespace=cfg.namespace, profile=profile,
                                       kube_version=target_facts.server_version, image_id=image_facts(c).id,
                                       secrets=secrets_plan, clients=clients(c),
                                       image=registry.image_values(c.image, c.tag, pushed.get(c.name)),
                                       pull_secrets=pull_secrets) for c in components]

    requested = pytestconfig.getoption("values_profile")
    for profile in (["defaults", "small"] if requested == "auto" else [requested]):
        releases = plans_for(profile)
        footprints = [p.footprint() for p in releases if p.ok]
        _, problems = preflight.fits(footprints, {}, "", target_facts.allocatable, target_facts.system)
        if not problems or not any(plan_mod.profile_file(c, "small") for c in components):
            break
    progress.say(f"values profile: {profile} (requested {requested}); rendered {len(releases)} release(s) for "
                 f"Kubernetes {target_facts.server_version}")
    return DeployPlan(profile, releases, requested)
