"""The registry path's fixtures (issue 14): how stage 1's images reach the cluster.

    registry_target -> registry_problem -> image_route (before any build)
    pushed (stage 1) -> deploy_plan's image values -> registry_pull_secret (stage 4)

With `registry:` set (or --registry), the registry is asked before anything is built;
stage 1 pushes every image and reads its digest back; stage 4 deploys
`repository:tag@digest` with an image pull Secret and loads nothing into the nodes. With
no registry, a cluster that nothing here can load images into is refused before the
build, with the fix (configure a registry).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from . import commands, kube as kube_mod, progress, providers, registry as reg
from .config import Config
from .fixtures import retry


@dataclass(frozen=True)
class RegistryTarget:
    registry: reg.Registry
    credentials: reg.Credentials | None
    ca: Path | None

    def __repr__(self) -> str:
        return f"<RegistryTarget {self.registry} {self.credentials!r} ca={self.ca}>"


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def registry_target(cfg: Config) -> RegistryTarget | None:
    """The configured registry with its credentials and CA; None: images are loaded into nodes."""
    if not cfg.registry:
        return None
    try:
        registry = reg.parse(cfg.registry)
        return RegistryTarget(registry, reg.credentials(registry), cfg.registry_ca)
    except reg.RegistryError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def registry_problem(registry_target: RegistryTarget | None) -> str | None:
    """What is wrong with the registry (does not answer, TLS not trusted, credentials
    refused), asked once, before any build; None when it is fine or not configured."""
    if registry_target is None:
        return None
    t = registry_target
    progress.say(f"registry {t.registry}: asking https://{t.registry.api_host}/v2/ "
                 f"{'as ' + t.credentials.username if t.credentials else 'without credentials'}")
    return reg.check(t.registry, t.credentials, t.ca)


@pytest.fixture(scope="session")
def image_route(request: pytest.FixtureRequest, pytestconfig, cfg: Config, registry_problem) -> str:
    """'registry' or 'load': how the images will reach the cluster, settled before any build
    (the `builds` fixture takes it). A registry that fails its check, or a cluster that
    nothing here can load into when no registry is configured, stops the run here."""
    if registry_problem:
        pytest.fail(registry_problem, pytrace=False)
    if cfg.registry:
        return "registry"
    # Only an existing context needs a look now (reading it starts nothing); the providers
    # that set-up starts (local, kind, minikube, k3d) all have a loader.
    requested = pytestconfig.getoption("cluster") or cfg.cluster_provider
    kubeconfig = os.environ.get("KUBECONFIG")
    if requested == "existing" or (requested == "auto" and providers.context_reachable(kubeconfig)):
        problem = providers.delivery_problem(request.getfixturevalue("cluster"), cfg.registry)
        if problem:
            pytest.fail(problem, pytrace=False)
    return "load"


@pytest.fixture(scope="session")
def pushed(request, registry_target: RegistryTarget | None, figures) -> dict[str, reg.PushResult]:
    """Every built image pushed to the registry (component name -> PushResult), once; {}
    with no registry. An image that did not build is not pushed (its build gate says why).
    Without a registry nothing is built for it: stage 3 alone must not build."""
    if registry_target is None:
        return {}
    builds, docker_client = request.getfixturevalue("builds"), request.getfixturevalue("docker_client")
    results = {}
    for name, build in builds.items():
        if not build.ok:
            continue
        result = reg.push(docker_client, build.ref, registry_target.registry, registry_target.credentials)
        results[name] = result
        figures.add("pushes", image=result.remote_ref, ok=result.ok, seconds=round(result.seconds, 1),
                    layers_pushed=len(result.pushed), layers_existing=len(result.existing),
                    mb_pushed=round(result.bytes_pushed / 1e6, 1), digest=result.digest or "-")
    return results


@pytest.fixture(scope="session")
def registry_pull_secret(registry_target: RegistryTarget | None, cfg: Config, kube) -> str | None:
    """The image pull Secret (kubernetes.io/dockerconfigjson), applied through the API from
    memory; its name, or None with no registry (or a registry that needs no credentials)."""
    if registry_target is None or registry_target.credentials is None:
        return None
    doc = reg.pull_secret_manifest(reg.PULL_SECRET_NAME, cfg.namespace, registry_target.registry.auth_key,
                                   registry_target.credentials)
    retry("writing the image pull Secret", lambda: kube_mod.apply(kube, [doc]))
    return reg.PULL_SECRET_NAME


@pytest.fixture(scope="session")
def deliver(registry_target: RegistryTarget | None, docker_client, request) -> Callable[[str], str]:
    """deliver(local_ref) -> the image tag value a chart gets for it: pushed and pinned by
    digest on the registry path (`tag@sha256:...`), else loaded into the nodes (`tag`). For
    images made after stage 1 (the zero-downtime proof's second tag)."""
    def run(local_ref: str) -> str:
        if registry_target is None:
            request.getfixturevalue("cluster").load_image(local_ref)
            return reg.split_reference(local_ref)[1] or "latest"
        result = reg.push(docker_client, local_ref, registry_target.registry, registry_target.credentials)
        problem = reg.push_problem(result, registry_target.registry)
        if problem:
            raise RuntimeError(commands.scrub(problem))
        return reg.pinned_tag(result.tag, result.digest)
    return run
