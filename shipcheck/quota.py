"""Quota arithmetic: what the releases ask of the namespace, at rest and while they change.

Pure functions over rendered manifest dicts. Quantities are parsed exactly (Decimal: CPU
in cores, memory in bytes). A release's pods fall into four groups:

- serving: Deployments, StatefulSets and plain Pods/Jobs that are not Helm hooks;
- surge: the extra pods a Deployment's RollingUpdate starts (maxSurge, rounded up from a
  percentage as Kubernetes does); a StatefulSet never surges;
- hook: pre/post-install/upgrade hook Jobs and Pods (the migration Job), which Helm runs
  while the previous release's pods are still serving;
- test: `helm test` pods, run against the serving pods.

The namespace then passes through these phases, each checked against the quota:
"at rest" (every release's serving pods), and per release "<r> pre-upgrade hook" (at rest
+ its hook pods), "<r> rolling update" (at rest + its surge pods) and "<r> helm test"
(at rest + its test pods). Helm finishes the hooks before it applies the new manifests,
so a hook pod and a surge pod of the same upgrade never run together.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Mapping

RESOURCES = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods")
# ResourceQuota also accepts the bare names for requests.
ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}

_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
ZERO = Decimal(0)


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """'500m' -> 0.5, '1.5' -> 1.5, '1Gi' -> 1073741824, '1G' -> 1e9 (exact)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 1, 1.5, 256Mi, 1Gi, 1G)")
    number, suffix = match.groups()
    return Decimal(number) * _SUFFIX[suffix or ""]


def format_cpu(cores: Decimal) -> str:
    """Cores as the seed writes them: 3.25, 0.75, 4."""
    return f"{cores.normalize():f}"


def format_memory(size: Decimal) -> str:
    """Bytes in the largest unit that keeps it short: 9Gi, 1.5Gi, 384Mi, 1.875Gi, 1G."""
    for unit in ("Ei", "E", "Pi", "P", "Ti", "T", "Gi", "G", "Mi", "M", "Ki", "k"):
        scaled = size / _SUFFIX[unit]
        if abs(scaled) >= 1 and scaled == scaled.quantize(Decimal("0.001")):
            return f"{scaled.normalize():f}{unit}"
    return f"{size.normalize():f}"


def format_value(resource: str, value: Decimal) -> str:
    resource = ALIASES.get(resource, resource)
    if resource.endswith("cpu"):
        return format_cpu(value)
    if resource.endswith("memory"):
        return format_memory(value)
    return f"{value.normalize():f}"


@dataclass(frozen=True)
class Usage:
    """A vector over RESOURCES (cores, bytes, pods)."""

    values: tuple[Decimal, ...] = (ZERO,) * len(RESOURCES)

    @classmethod
    def of(cls, **kwargs: Decimal | int | str) -> "Usage":
        named = {k.replace("_", "."): parse_quantity(v) for k, v in kwargs.items()}
        return cls(tuple(named.get(r, ZERO) for r in RESOURCES))

    def __getitem__(self, resource: str) -> Decimal:
        return self.values[RESOURCES.index(ALIASES.get(resource, resource))]

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(tuple(a + b for a, b in zip(self.values, other.values)))

    def __mul__(self, n: int) -> "Usage":
        return Usage(tuple(a * n for a in self.values))

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return any(self.values)

    def describe(self) -> str:
        return ", ".join(f"{r} {format_value(r, v)}" for r, v in zip(RESOURCES, self.values))

    def __repr__(self) -> str:
        return f"Usage({self.describe()})"


def total(usages: Iterable[Usage]) -> Usage:
    result = Usage()
    for usage in usages:
        result = result + usage
    return result


# --- pods -------------------------------------------------------------------------------
def _container_amounts(container: Mapping) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    amounts = {}
    for name in ("cpu", "memory"):
        limit = limits.get(name)
        # The API server defaults a missing request to the limit.
        request = requests.get(name, limit)
        amounts[f"requests.{name}"] = parse_quantity(request) if request is not None else ZERO
        amounts[f"limits.{name}"] = parse_quantity(limit) if limit is not None else ZERO
    return amounts


def pod_usage(pod_spec: Mapping) -> Usage:
    """One pod's charge against a quota: the larger of its containers' sum and its biggest
    init container, per resource (as the scheduler and the quota admission compute it),
    plus the pod itself. A missing figure counts as 0 (manifest_policy reports it)."""
    app = [_container_amounts(c) for c in pod_spec.get("containers") or []]
    init = [_container_amounts(c) for c in pod_spec.get("initContainers") or []]
    effective = {}
    for resource in RESOURCES[:-1]:
        effective[resource] = max(sum((a[resource] for a in app), ZERO), max((i[resource] for i in init), default=ZERO))
    overhead = pod_spec.get("overhead") or {}
    for name, value in overhead.items():
        for prefix in ("requests.", "limits."):
            if prefix + name in effective:
                effective[prefix + name] += parse_quantity(value)
    effective["pods"] = Decimal(1)
    return Usage(tuple(effective[r] for r in RESOURCES))


def _scaled(value: int | str | None, replicas: int, default: str, round_up: bool) -> int:
    """maxSurge/maxUnavailable: an int, or a percentage of replicas rounded as Kubernetes
    does (maxSurge up, maxUnavailable down)."""
    value = default if value is None else value
    if isinstance(value, str) and value.endswith("%"):
        exact = Decimal(value[:-1]) * replicas / 100
        return int(math.ceil(exact) if round_up else math.floor(exact))
    return int(value)


def deployment_surge(deployment: Mapping) -> int:
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    return _scaled(rolling.get("maxSurge"), int(spec.get("replicas", 1)), "25%", round_up=True)


def deployment_unavailable(deployment: Mapping) -> int:
    spec = deployment.get("spec") or {}
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    return _scaled(rolling.get("maxUnavailable"), int(spec.get("replicas", 1)), "25%", round_up=False)


def hook_of(manifest: Mapping) -> str | None:
    """'test', 'hook' (install/upgrade/rollback hooks), or None for a regular resource."""
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    hooks = {h.strip() for h in str(annotations.get("helm.sh/hook", "")).split(",") if h.strip()}
    if not hooks:
        return None
    return "test" if hooks & {"test", "test-success"} else "hook"


@dataclass(frozen=True)
class PodGroup:
    """Pods of one workload: `pods` at once, each charging `per_pod`."""

    workload: str  # e.g. "Deployment/todo-backend"
    group: str  # serving | surge | hook | test
    pods: int
    per_pod: Usage

    @property
    def usage(self) -> Usage:
        return self.per_pod * self.pods


def pod_groups(manifests: Iterable[Mapping]) -> list[PodGroup]:
    groups = []
    for m in manifests:
        kind, name = m.get("kind"), (m.get("metadata") or {}).get("name")
        spec = m.get("spec") or {}
        where = f"{kind}/{name}"
        hook = hook_of(m)
        if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            per_pod = pod_usage((spec.get("template") or {}).get("spec") or {})
            replicas = int(spec.get("replicas", 1))
            groups.append(PodGroup(where, hook or "serving", replicas, per_pod))
            surge = deployment_surge(m) if kind == "Deployment" else 0
            if surge:
                groups.append(PodGroup(where, "surge", surge, per_pod))
        elif kind == "Job":
            per_pod = pod_usage((spec.get("template") or {}).get("spec") or {})
            parallel = min(int(spec.get("parallelism", 1)), int(spec.get("completions", spec.get("parallelism", 1))))
            groups.append(PodGroup(where, hook or "serving", parallel, per_pod))
        elif kind == "Pod":
            groups.append(PodGroup(where, hook or "serving", 1, pod_usage(spec)))
    return groups


@dataclass(frozen=True)
class Footprint:
    """What one release charges the namespace, by group."""

    release: str
    groups: tuple[PodGroup, ...]

    def usage(self, group: str) -> Usage:
        return total(g.usage for g in self.groups if g.group == group)

    @property
    def at_rest(self) -> Usage:
        return self.usage("serving")

    @property
    def surge(self) -> Usage:
        return self.usage("surge")

    @property
    def hooks(self) -> Usage:
        return self.usage("hook")

    @property
    def tests(self) -> Usage:
        return self.usage("test")

    def __repr__(self) -> str:
        return f"<Footprint {self.release}: at rest {self.at_rest.describe()}>"


def footprint(release: str, manifests: Iterable[Mapping]) -> Footprint:
    return Footprint(release, tuple(pod_groups(manifests)))


# --- phases and fit ---------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """A moment in the namespace's life: named parts that run together."""

    name: str
    kind: str  # at rest | hook | rolling update | test | all at once
    release: str | None
    parts: tuple[tuple[str, Usage], ...]

    @property
    def total(self) -> Usage:
        return total(u for _, u in self.parts)


_PART_NAMES = {"surge": "surge pod", "hook": "hook pod", "test": "test pod"}


def _part(name: str, usage: Usage) -> tuple[str, Usage]:
    pods = int(usage["pods"])
    return (f"{pods} {name}{'s' if pods != 1 else ''}" if pods != 1 else name, usage)


def phases(footprints: Iterable[Footprint]) -> list[Phase]:
    """'at rest', then per release its hook, rolling-update and helm-test phases (those it has)."""
    footprints = list(footprints)
    rest = total(f.at_rest for f in footprints)
    result = [Phase("at rest", "at rest", None, tuple((f.release, f.at_rest) for f in footprints))]
    for f in footprints:
        for group, kind, label in (("hook", "hook", "pre-upgrade hook"), ("surge", "rolling update", "rolling update"),
                                   ("test", "test", "helm test")):
            extra = f.usage(group)
            if extra:
                result.append(Phase(f"{f.release} {label}", kind, f.release,
                                    (("at rest", rest), _part(_PART_NAMES[group], extra))))
    return result


def everything_at_once(footprints: Iterable[Footprint]) -> Phase:
    """The conservative peak: every serving, surge, hook and test pod of every release."""
    parts = []
    for f in footprints:
        for group in ("serving", "surge", "hook", "test"):
            usage = f.usage(group)
            if usage:
                parts.append((f"{f.release} {group}", usage))
    return Phase("everything at once", "all at once", None, tuple(parts))


def parse_hard(hard: Mapping[str, str | int]) -> dict[str, Decimal]:
    """A quota's or node's map, keyed by RESOURCES (aliases resolved; other keys dropped)."""
    parsed = {}
    for key, value in hard.items():
        resource = ALIASES.get(key, key)
        if resource in RESOURCES:
            parsed[resource] = parse_quantity(value)
    return {r: parsed[r] for r in RESOURCES if r in parsed}


@dataclass(frozen=True)
class Overflow:
    phase: Phase
    resource: str
    used: Decimal
    limit: Decimal
    against: str  # e.g. "quota todo-quota", "node allocatable"
    fix: str

    def __str__(self) -> str:
        r = self.resource
        parts = " + ".join(f"{name} {format_value(r, usage[r])}" for name, usage in self.phase.parts if usage[r])
        return (f"{self.phase.name}: {r} {format_value(r, self.used)} > {self.against} {format_value(r, self.limit)} "
                f"({parts}). Fix: {self.fix}")


@dataclass(frozen=True)
class Fit:
    phase: Phase
    limits: dict[str, Decimal]
    against: str
    overflows: tuple[Overflow, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.overflows

    def rows(self) -> list[dict]:
        """One figure row per resource: used, limit, share."""
        used = self.phase.total
        rows = []
        for resource, limit in self.limits.items():
            value = used[resource]
            rows.append({"phase": self.phase.name, "resource": resource, "used": format_value(resource, value),
                         "limit": format_value(resource, limit), "against": self.against,
                         "share": f"{value / limit:.0%}" if limit else "-", "fits": value <= limit})
        return rows

    def __repr__(self) -> str:
        return f"<Fit {self.phase.name} vs {self.against}: {'ok' if self.ok else f'{len(self.overflows)} overflow(s)'}>"


def _fix(phase: Phase, resource: str, quota_name: str) -> str:
    field_name = "replicaCount" if resource == "pods" else f"resources.{resource}"
    raise_it = f"raise {quota_name}" if resource != "pods" else f"raise {quota_name}'s pods"
    if phase.kind == "rolling update":
        return f"lower {field_name} or maxSurge, or {raise_it}"
    if phase.kind == "hook":
        what = "the hook's pod count" if resource == "pods" else f"migrations.resources.{resource}"
        return f"lower {what}, or {raise_it}"
    if phase.kind == "test":
        what = "the number of test pods" if resource == "pods" else f"tests.resources.{resource}"
        return f"lower {what}, or {raise_it}"
    return f"lower {field_name} in the releases' values, or {raise_it}"


def quota_fit(phase: Phase, hard: Mapping[str, str | int], quota_name: str) -> Fit:
    limits = parse_hard(hard)
    used = phase.total
    overflows = tuple(Overflow(phase, r, used[r], limit, "quota", _fix(phase, r, quota_name))
                      for r, limit in limits.items() if used[r] > limit)
    return Fit(phase, limits, f"quota {quota_name}", overflows)


def node_fit(phase: Phase, allocatable: Mapping[str, str | int], reserved: Mapping[str, str | int] | None = None,
             headroom: Decimal | float | str = 0) -> Fit:
    """Do the phase's requests (and pod count) fit one node's allocatable, after what system
    pods already request (`reserved`, e.g. CoreDNS) and keeping a `headroom` fraction free?

    `allocatable` uses the node's own keys (cpu, memory, pods); limits are not scheduled,
    so only requests and pods are compared.
    """
    reserved = reserved or {}
    share = Decimal(str(headroom))
    limits, budget = {}, {}
    for key, resource in (("cpu", "requests.cpu"), ("memory", "requests.memory"), ("pods", "pods")):
        if key in allocatable:
            have, system = parse_quantity(allocatable[key]), parse_quantity(reserved.get(key, 0))
            limits[resource] = (have - system) * (1 - share) if resource != "pods" else have - system
            budget[resource] = (f"allocatable {format_value(resource, have)}"
                                + (f" - system pods {format_value(resource, system)}" if system else "")
                                + (f", {share * 100:.0f}% kept free" if share and resource != "pods" else ""))
    used = phase.total
    overflows = tuple(
        Overflow(phase, r, used[r], limit, "node budget",
                 f"lower resources.requests in the small profile (values-small.yaml), or use a bigger node "
                 f"(budget: {budget[r]})")
        for r, limit in limits.items() if used[r] > limit)
    return Fit(phase, limits, "node budget", overflows)
