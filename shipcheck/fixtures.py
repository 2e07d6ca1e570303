"""Fixtures shared by the stages: the Docker engine, the builds, and component parameters.

Tests that take `component` run once per configured component; `app_component` only for
app components (those with an HTTP health path).
"""

from __future__ import annotations

import functools
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client as kube_client

from . import (
    app_secrets,
    charts,
    commands,
    deploy,
    diagnostics,
    images,
    namespace,
    preflight,
    progress,
    providers,
    quota,
    releases,
    waiting,
)
from . import kube as kube_mod
from .config import Config
from .plugin import CONFIG_KEY


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cfg: Config = metafunc.config.stash[CONFIG_KEY]
    for name, chosen in (("component", list(cfg.components.values())), ("app_component", cfg.apps)):
        if name in metafunc.fixturenames:
            # Function scope keeps the file's order (gate by gate); a wider scope would make
            # pytest regroup tests per component and stop containers others still need.
            metafunc.parametrize(name, chosen, ids=[c.name for c in chosen])


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
def git_revision(cfg: Config) -> str:
    out = subprocess.run(["git", "-C", str(cfg.root), "rev-parse", "--short=12", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


@pytest.fixture(scope="session")
def builds(pytestconfig, cfg: Config, docker_client, git_revision, figures) -> dict[str, images.BuildResult]:
    """Build every component's image with BuildKit (in parallel unless --sequential-builds)."""
    cli = images.docker_cli()
    ca_option = pytestconfig.getoption("ca_bundle")
    if ca_option == "auto":
        ca_bundle = images.HOST_CA_BUNDLE if images.HOST_CA_BUNDLE.is_file() else None
    elif ca_option == "none":
        ca_bundle = None
    else:
        ca_bundle = Path(ca_option)
        if not ca_bundle.is_file():
            pytest.exit(f"--ca-bundle {ca_option}: no such file", returncode=4)

    mode = pytestconfig.getoption("base_images")
    jobs = []
    for component in cfg.components.values():
        args = dict(component.base_images)
        args.update(VERSION=cfg.version, REVISION=git_revision, SOURCE=cfg.source_url or "local")
        # With docker_client, each build first makes its base images present (official, else a stand-in).
        jobs.append(functools.partial(images.build, cfg, component, cli=cli, build_args=args, ca_bundle=ca_bundle,
                            no_cache=pytestconfig.getoption("shipcheck_no_cache"), docker_client=docker_client,
                            base_mode=mode))
    parallel = not pytestconfig.getoption("sequential_builds")
    progress.say(f"building {len(jobs)} images {'in parallel' if parallel else 'one by one'} with BuildKit")
    results, wall_s = images.build_all(jobs, parallel=parallel)
    images.record_figures(figures, results, wall_s)
    return {r.component: r for r in results}


@pytest.fixture(scope="session")
def built(builds, cfg: Config):
    """The refs of images that built; a test needing an image that failed to build skips."""
    def ref(component) -> str:
        result = builds[component.name]
        if not result.ok:
            pytest.skip(f"{result.ref} did not build (see test_image_built_and_tagged[{component.name}])")
        return result.ref
    return ref


@pytest.fixture(scope="session")
def image_facts(docker_client, built):
    """image_facts(component) -> ImageFacts of its built image, read once."""
    cache: dict[str, images.ImageFacts] = {}

    def read(component) -> images.ImageFacts:
        ref = built(component)
        if ref not in cache:
            cache[ref] = images.ImageFacts.read(docker_client, ref)
        return cache[ref]
    return read


# --- the cluster -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cluster(pytestconfig, cfg: Config):
    """The cluster to deploy to (--cluster, else cluster_provider in the configuration),
    started when the provider can start it."""
    requested = pytestconfig.getoption("cluster") or cfg.cluster_provider
    try:
        return providers.connect(requested)
    except (RuntimeError, commands.CommandError) as exc:
        pytest.fail(f"no Kubernetes cluster ({requested}): {exc}", pytrace=False)


@pytest.fixture(scope="session")
def kube(cluster) -> deploy.KubeApis:
    return deploy.KubeApis.connect(cluster.kubeconfig, cluster.context)


@pytest.fixture(scope="session")
def kubectl(cluster) -> list[str]:
    """kubectl argv prefix with the cluster's kubeconfig/context."""
    return [charts.tool_binary("kubectl"), *cluster.kube_args()]


@pytest.fixture(scope="session")
def helm(cluster, cfg: Config) -> releases.Helm:
    return releases.Helm(charts.helm_binary(), cluster.helm_args(), cfg.namespace)


@pytest.fixture(scope="session")
def deployment(pytestconfig, cfg: Config, cluster, kube, kubectl, helm, built, image_facts, register_diagnoser,
               figures) -> deploy.Deployment:
    """Namespace and quota, images loaded, Secrets from the environment, a fit check, then
    each release installed or upgraded in order (database, backend, frontend), stopping at
    the first failure. Skipped releases (nothing changed) are not touched."""
    started_at = time.time()
    retry = functools.partial(waiting.retry, is_transient=lambda e: kube_mod.is_transient(e)
                              or (isinstance(e, commands.CommandError) and "connection refused" in str(e)))
    retry("applying the namespace and quota", lambda: deploy.apply_manifests(kubectl, namespace.manifests(cfg)))
    app = retry("creating the Secrets", lambda: app_secrets.prepare(kube.core, cfg.namespace))
    # Databases first, then the apps in the order the configuration lists them.
    components = [c for c in cfg.databases + cfg.apps if c.chart and not (c.role == "database" and app.external_database)]
    for component in components:
        seconds = cluster.load_image(built(component))
        figures.add("image loads", image=cfg.image_ref(component), provider=cluster.provider, seconds=round(seconds, 1))

    def values(component, profile: str) -> tuple[tuple, dict]:
        secret = {"app": app_secrets.BACKEND_SECRET if component.uses_database else None,
                  "database": app_secrets.POSTGRES_SECRET}[component.role]
        extra = (charts.profile_file(component, "small"),) if profile == "small" else ()
        rv = charts.release_values(cfg, component, existing_secret=secret, extra_files=extra)
        tree = rv.nested()
        tree["podAnnotations"] = deploy.pod_annotations(image_facts(component).id,
                                                        app.digest if component.uses_database else None)
        return rv.files, tree

    def footprints_of(chosen: dict) -> list:
        return [quota.footprint(c.release, charts.parse_manifests(helm.template(c.release, c.chart, tree, files)))
                for c in components for files, tree in [chosen[c.name]]]

    # The profile follows the cluster's size (allocatable minus its system pods), not what
    # other workloads happen to use now: the same cluster always gets the same values.
    allocatable, system = retry("reading node capacity",
                                lambda: preflight.node_capacity(kube.core, cfg.namespace, only_namespace="kube-system"))
    version = kube_client.VersionApi(kube.api_client).get_code().git_version
    memory = quota.format_memory(quota.parse_quantity(allocatable["memory"]))
    figures.add("cluster", provider=cluster.provider, context=cluster.context or "-", server_version=version,
                allocatable_cpu=allocatable["cpu"], allocatable_memory=memory, allocatable_pods=allocatable["pods"])
    progress.say(f"cluster {cluster.provider}: Kubernetes {version}, allocatable cpu {allocatable['cpu']}, memory {memory}")
    requested = pytestconfig.getoption("values_profile")
    for profile in (["defaults", "small"] if requested == "auto" else [requested]):
        chosen = {c.name: values(c, profile) for c in components}
        footprints = footprints_of(chosen)
        if not preflight.fits(footprints, cfg.resource_quota, namespace.quota_name(cfg), allocatable, system)[1]:
            break
    # The gate: the chosen profile against the quota and what is free on the nodes now.
    _, reserved = preflight.node_capacity(kube.core, cfg.namespace)
    fits, problems = preflight.fits(footprints, cfg.resource_quota, namespace.quota_name(cfg), allocatable, reserved)
    progress.say(f"values profile: {profile} (requested {requested}); "
                 f"{'fits' if not problems else 'does NOT fit'} the quota and the nodes")
    for fit in fits:
        for row in fit.rows():
            figures.add("deploy fit", profile=profile, **row)

    outcomes: dict[str, deploy.Outcome] = {}
    dep = deploy.Deployment(profile, components, chosen, problems, outcomes, started_at, app.external_database)

    def evidence():
        found = [(f"{o.release} at failure: {title}", text) for o in outcomes.values() if not o.ok
                 for title, text in o.evidence]
        return found + diagnostics.collect(kubectl, helm, cfg.namespace, [c.release for c in components], kube.core)
    register_diagnoser("deployment", evidence)

    if not problems:
        for component in components:
            files, tree = chosen[component.name]
            outcome = deploy.deploy_release(helm, kube, kubectl, component.release, component.chart, tree, files,
                                            cfg.timeouts_s["deploy"])
            outcomes[component.name] = outcome
            figures.add("deploys", release=component.release, ok=outcome.ok, skipped=outcome.skipped,
                        revision=outcome.revision, ready_after_s=_round(outcome.ready_after_s),
                        failure_detected_after_s=_round(outcome.detected_after_s), recovery=outcome.recovery)
            if not outcome.ok:
                break
    return dep


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
