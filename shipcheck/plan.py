"""One release plan per component, made once: what stage 3 validates is exactly what
stage 4 deploys, because both use the one render made here.

A plan holds the chart, the values files in helm's order (the chart's profile file, then
the user's own files, which win over the profile), the values the suite injects through the
component's values mapping (image, probe paths, Service port, names, pod annotations, the
existing Secret's name, the migration command), and the render of all of them with the
target cluster's Kubernetes version, hooks and test pods included. Helm receives the same
files and the same injected values.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import helm as helm_mod
from . import quota
from .app_secrets import SecretsPlan
from .config import Component

IMAGE_ID = "shipcheck.io/image-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"
CONFIG_DIGEST = "shipcheck.io/config-digest"
SERVING = ("Deployment", "StatefulSet", "DaemonSet")


# --- values, pure ---------------------------------------------------------------------------
def get_path(tree: Any, dotted: str | None) -> Any:
    """The value at a dotted key of a values tree, or None."""
    for part in (dotted or "").split(".") if dotted else []:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree if dotted else None


def set_path(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


@dataclass(frozen=True)
class Injection:
    """One value the suite injects: the mapping key that says where, the chart key, the value."""

    mapping_key: str
    chart_key: str
    value: Any

    def __str__(self) -> str:
        return f"values.{self.mapping_key} ({self.chart_key}={json.dumps(self.value)})"


def injections(component: Component, *, image_repository: str, image_tag: str, annotations: dict[str, str],
               existing_secret: str | None, pull_policy: str = "IfNotPresent",
               clients: tuple[str, ...] = (), pull_secrets: list[str] | tuple[str, ...] = ()) -> list[Injection]:
    """What the suite passes to the chart, each through the component's values mapping; a
    mapping key set to null means the chart has no such value and nothing is injected."""
    m = component.values
    wanted: list[tuple[str, str | None, Any]] = [
        ("image_repository", m.image_repository, image_repository),
        ("image_tag", m.image_tag, image_tag),
        ("image_pull_policy", m.image_pull_policy, pull_policy),
        ("service_port", m.service_port, component.port),
        ("fullname_override", m.fullname_override, component.release),
    ]
    if component.health_path:
        wanted.append(("liveness_probe", m.liveness_probe and f"{m.liveness_probe}.httpGet.path", component.health_path))
        wanted.append(("readiness_probe", m.readiness_probe and f"{m.readiness_probe}.httpGet.path",
                       component.readiness_path or component.health_path))
        wanted.append(("startup_probe", m.startup_probe and f"{m.startup_probe}.httpGet.path", component.health_path))
    if existing_secret:
        wanted.append(("existing_secret", m.existing_secret, existing_secret))
    if component.migrate_command:
        wanted.append(("migrate_command", m.migrate_command, list(component.migrate_command)))
    if clients:  # the releases that declare connects_to this component, by the label every chart sets
        wanted.append(("network_policy_clients", m.network_policy_clients,
                       [{INSTANCE_LABEL: release} for release in clients]))
    if component.database:
        wanted.append(("database_user", m.database_user, component.database.user))
        wanted.append(("database_name", m.database_name, component.database.name))
    if pull_secrets:  # the registry path: pods pull with the suite's image pull Secret
        wanted.append(("image_pull_secrets", m.image_pull_secrets, [{"name": n} for n in pull_secrets]))
    found = [Injection(key, chart_key, value) for key, chart_key, value in wanted if chart_key]
    if m.pod_annotations and annotations:
        found.append(Injection("pod_annotations", m.pod_annotations, dict(sorted(annotations.items()))))
    return found


def nested(found: list[Injection]) -> dict:
    """The injections as one values tree; helm deep-merges it over the values files, so an
    injected map (pod annotations) keeps the user's own entries beside ours."""
    tree: dict = {}
    for item in found:
        set_path(tree, item.chart_key, item.value)
    return tree


def profile_file(component: Component, profile: str) -> Path | None:
    """The chart's own values-PROFILE.yaml, when the chart has one ('defaults': none)."""
    if profile == "defaults" or component.chart is None:
        return None
    path = component.chart / f"values-{profile}.yaml"
    return path if path.is_file() else None


def values_files(component: Component, profile: str) -> tuple[Path, ...]:
    """The profile's file first, the user's own files after it: the user's always win."""
    first = profile_file(component, profile)
    return ((first,) if first else ()) + tuple(component.values_files)


def referenced_names(values: Any, names: set[str]) -> set[str]:
    """Which of `names` (the suite's Secrets and ConfigMaps) a values tree mentions: charts
    reference them by name through their values (existingSecret, volumes, envFrom)."""
    found: set[str] = set()
    if isinstance(values, dict):
        for v in values.values():
            found |= referenced_names(v, names)
    elif isinstance(values, list):
        for v in values:
            found |= referenced_names(v, names)
    elif isinstance(values, str) and values in names:
        found.add(values)
    return found


# --- the plan ---------------------------------------------------------------------------------
@dataclass
class ReleasePlan:
    component: Component
    namespace: str
    profile: str
    kube_version: str
    values_files: tuple[Path, ...]
    injected: tuple[Injection, ...]
    rendered: helm_mod.Rendered

    @property
    def release(self) -> str:
        return self.component.release or self.component.name

    @property
    def chart(self) -> Path:
        assert self.component.chart is not None
        return self.component.chart

    @property
    def values(self) -> dict:
        return nested(list(self.injected))

    @property
    def manifests(self) -> list[dict]:
        return self.rendered.manifests

    @property
    def judged(self) -> list[dict]:
        """What runs in the cluster and so is judged: the chart's test pods only when
        helm_test is on (with it off, they are never created)."""
        if self.component.helm_test:
            return self.manifests
        return [m for m in self.manifests if quota.hook_of(m) != "test"]

    @property
    def ok(self) -> bool:
        return self.rendered.ok

    def footprint(self) -> quota.Footprint:
        return quota.footprint(self.release, self.judged)

    def digest(self) -> str:
        """What the release would be: the render itself (chart, values, injections)."""
        docs = sorted(json.dumps(d, sort_keys=True) for d in self.manifests)
        return hashlib.sha256("\n".join(docs).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return (f"<ReleasePlan {self.release} ({self.profile}, Kubernetes {self.kube_version}): "
                f"{len(self.manifests)} manifests, rc={self.rendered.result.rc}>")


def make(helm: helm_mod.Helm, component: Component, *, namespace: str, profile: str, kube_version: str,
         image_repository: str, image_tag: str, annotations: dict[str, str], existing_secret: str | None,
         clients: tuple[str, ...] = (), pull_secrets: list[str] | tuple[str, ...] = ()) -> ReleasePlan:
    found = injections(component, image_repository=image_repository, image_tag=image_tag, annotations=annotations,
                       existing_secret=existing_secret, clients=clients, pull_secrets=pull_secrets)
    files = values_files(component, profile)
    rendered = helm.template(component.release or component.name, component.chart, files, nested(found), kube_version)
    return ReleasePlan(component, namespace, profile, kube_version, files, tuple(found), rendered)


SECRET_PLACEHOLDER = re.compile(r"\$\{secret:([^:}]+):[^}]+\}")


def existing_secret(component: Component) -> str | None:
    """The Secret the component's chart reads (injected at values.existing_secret): a
    database's password Secret, or the one Secret the app's run_env takes values from."""
    if component.role == "database" and component.database:
        return component.database.password_secret
    named = {m.group(1) for v in component.run_env.values() for m in SECRET_PLACEHOLDER.finditer(v)}
    return named.pop() if len(named) == 1 else None


def config_names_used(component: Component, secrets: SecretsPlan, files: tuple[Path, ...]) -> set[str]:
    """The suite's Secrets and ConfigMaps the component's values name (chart values and files)."""
    names = secrets.names()
    used = set(filter(None, [existing_secret(component)])) & names
    for path in (component.chart / "values.yaml", *files):
        if path.is_file():
            used |= referenced_names(yaml.safe_load(path.read_text()) or {}, names)
    return used


def for_component(helm: helm_mod.Helm, component: Component, *, namespace: str, profile: str, kube_version: str,
                  image_id: str, secrets: SecretsPlan, clients: tuple[str, ...] = (),
                  image: tuple[str, str] | None = None, pull_secrets: list[str] | tuple[str, ...] = ()) -> ReleasePlan:
    """The component's plan as stage 4 deploys it: its image (by ID in a pod annotation, so a
    rebuild under the same tag rolls the pods), and a digest of the Secrets and ConfigMaps its
    values name (a change rolls the pods that use them, and only those). `image`: (repository,
    tag) to deploy instead of the local ones, and `pull_secrets`: the registry path's."""
    files = values_files(component, profile)
    notes = {IMAGE_ID: image_id}
    digest = secrets.digest(config_names_used(component, secrets, files))
    if digest:
        notes[CONFIG_DIGEST] = digest
    repository, tag = image or (component.image, component.tag)
    return make(helm, component, namespace=namespace, profile=profile, kube_version=kube_version,
                image_repository=repository, image_tag=tag, annotations=notes,
                existing_secret=existing_secret(component), clients=clients, pull_secrets=pull_secrets)


def with_image_tag(helm: helm_mod.Helm, plan: ReleasePlan, tag: str) -> ReleasePlan:
    """The same plan with another image tag, rendered (the zero-downtime proof rolls to it)."""
    moved = tuple(Injection(i.mapping_key, i.chart_key, tag) if i.mapping_key == "image_tag" else i
                  for i in plan.injected)
    rendered = helm.template(plan.release, plan.chart, plan.values_files, nested(list(moved)), plan.kube_version)
    return ReleasePlan(plan.component, plan.namespace, plan.profile, plan.kube_version, plan.values_files, moved,
                       rendered)


# --- did every injected value take effect? (pure) ------------------------------------------
def _serving_containers(manifests: list[dict]) -> list[tuple[str, dict, dict]]:
    found = []
    for m in manifests:
        if m.get("kind") not in SERVING:
            continue
        template = (m.get("spec") or {}).get("template") or {}
        for c in (template.get("spec") or {}).get("containers") or []:
            found.append((f"{m['kind']}/{m['metadata']['name']}", template, c))
    return found


def _mentions(tree: Any, value: str) -> bool:
    if isinstance(tree, dict):
        return any(_mentions(v, value) for v in tree.values())
    if isinstance(tree, list):
        return any(_mentions(v, value) for v in tree)
    return tree == value


def not_applied(plan: ReleasePlan) -> list[str]:
    """Injected values that the render does not show: the mapping names a key the chart
    does not read. Each sentence names the mapping key and its fix."""
    problems = []
    containers = _serving_containers(plan.manifests)
    name = plan.component.name
    for item in plan.injected:
        seen: list[str] = []
        if item.mapping_key in ("image_repository", "image_tag"):
            seen = [str(c.get("image")) for _, _, c in containers]
            ok = any(s.startswith(f"{item.value}:") or s.endswith(f":{item.value}") or s.startswith(f"{item.value}@")
                     or s.endswith(f"@{item.value}") for s in seen)
        elif item.mapping_key == "image_pull_policy":
            seen = [str(c.get("imagePullPolicy")) for _, _, c in containers]
            ok = bool(seen) and all(s == item.value for s in seen)
        elif item.mapping_key in ("liveness_probe", "readiness_probe", "startup_probe"):
            probe = {"liveness_probe": "livenessProbe", "readiness_probe": "readinessProbe",
                     "startup_probe": "startupProbe"}[item.mapping_key]
            seen = [str(((c.get(probe) or {}).get("httpGet") or {}).get("path")) for _, _, c in containers]
            ok = item.value in seen
        elif item.mapping_key == "service_port":
            ports = [p for m in plan.manifests if m.get("kind") == "Service"
                     for p in (m.get("spec") or {}).get("ports") or []]
            seen = [str(p.get("port")) for p in ports]
            ok = str(item.value) in seen
        elif item.mapping_key == "fullname_override":
            seen = [m["metadata"]["name"] for m in plan.manifests if m.get("kind") == "Service"]
            ok = item.value in seen
        elif item.mapping_key == "pod_annotations":
            seen = [json.dumps({k: (t.get("metadata") or {}).get("annotations", {}).get(k) for k in item.value})
                    for _, t, _ in containers]
            ok = bool(seen) and all(s == json.dumps(item.value) for s in seen)
        elif item.mapping_key == "existing_secret":
            ok = any(_mentions(t.get("spec"), item.value) for _, t, _ in containers)
            seen = ["not referenced by any serving pod"]
        elif item.mapping_key == "network_policy_clients":
            policies = [m for m in plan.manifests if m.get("kind") == "NetworkPolicy"]
            ok = all(any(_mentions(p.get("spec"), c[INSTANCE_LABEL]) for p in policies) for c in item.value)
            seen = [f"{len(policies)} NetworkPolicy object(s) not naming them"]
        elif item.mapping_key in ("database_user", "database_name"):
            ok = any(_mentions(t.get("spec"), item.value) for _, t, _ in containers) or any(
                _mentions(m.get("data") or m.get("stringData"), item.value) for m in plan.manifests
                if m.get("kind") in ("ConfigMap", "Secret"))
            seen = ["not in the database's pods, ConfigMaps or Secrets"]
        elif item.mapping_key == "image_pull_secrets":
            wanted = {s["name"] for s in item.value}
            seen = [json.dumps(sorted(s.get("name") for s in (t.get("spec") or {}).get("imagePullSecrets") or []))
                    for _, t, _ in containers]
            ok = bool(containers) and all(wanted <= {s.get("name") for s in (t.get("spec") or {}).get(
                "imagePullSecrets") or []} for _, t, _ in containers)
        elif item.mapping_key == "migrate_command":
            jobs = [c.get("command") or c.get("args") for m in plan.manifests if m.get("kind") == "Job"
                    for c in ((m.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []]
            seen = [json.dumps(j) for j in jobs]
            ok = item.value in jobs
        else:
            continue
        if not ok:
            problems.append(
                f"{name}: the suite injected {item}, but the render shows {sorted(set(seen)) or 'nothing'}: the chart "
                f"does not read {item.chart_key}. Fix: set components.{name}.values.{item.mapping_key} in "
                f"shipcheck.yaml to the key the chart uses for it, or null if it has none.")
    return problems
