"""Quota arithmetic: what the releases ask of the namespace, at rest and while they change.

Pure functions over rendered manifest dicts. Quantities are parsed exactly (Decimal: CPU
in cores, memory in bytes) by the Kubernetes client. A release's pods fall into groups:

- serving: Deployments, StatefulSets and plain Pods/Jobs that are not Helm hooks;
- surge: the extra pods a Deployment's RollingUpdate starts (maxSurge, rounded up from a
  percentage as Kubernetes does); a StatefulSet never surges;
- terminating: the old pods a RollingUpdate has scaled down and that still run their
  preStop sleep and shutdown (up to terminationGracePeriodSeconds) while the next surge
  pod starts. The controller scales the old ReplicaSet down and the new one up in the same
  step, so they always overlap, and until the old pod is gone it still counts for the
  scheduler and the quota. One step's worth: min(maxSurge + maxUnavailable, replicas -
  maxSurge) pods (none when a single step replaces every replica);
- hook: pre/post-install/upgrade hook Jobs and Pods (the migration Job), which Helm runs
  while the previous release's pods are still serving;
- test: `helm test` pods, run against the serving pods.

The namespace then passes through these phases, each checked against the quota:
"at rest" (every release's serving pods), and per release "<r> pre-upgrade hook" (at rest
+ its hook pods), "<r> rolling update" (at rest + its surge pods + its old pods still
terminating) and "<r> helm test" (at rest + its test pods). Helm finishes the hooks before
it applies the new manifests, so a hook pod and a surge pod of the same upgrade never run
together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Mapping

from kubernetes import utils as kubernetes_utils

RESOURCES = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods")
# ResourceQuota also accepts the bare names for requests.
ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}

ZERO = Decimal(0)
# Units for display (format_memory); parsing is the Kubernetes client's.
_UNITS = {"k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
          "P": Decimal(10) ** 15, "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20,
          "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60}


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """'500m' -> 0.5, '1.5' -> 1.5, '1Gi' -> 1073741824, '1G' -> 1e9 (exact), by
    kubernetes.utils.parse_quantity. Stricter where it is lenient: a bool, inner spaces
    ('1 Gi') and non-finite numbers are refused, and a float is taken as written (0.1, not
    its binary expansion)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, float):
        value = str(value)
    if isinstance(value, str) and (value != value.strip() or " " in value):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (no spaces: e.g. 500m, 256Mi)")
    try:
        parsed = kubernetes_utils.parse_quantity(value)
    except (ValueError, ArithmeticError) as exc:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 1, 1.5, 256Mi, 1Gi, 1G)") from exc
    if not parsed.is_finite():
        raise QuantityError(f"{value!r} is not a finite quantity")
    return parsed


def format_cpu(cores: Decimal) -> str:
    """Cores as the seed writes them: 3.25, 0.75, 4."""
    return f"{cores.normalize():f}"


def format_memory(size: Decimal) -> str:
    """Bytes in the largest unit that keeps it short: 9Gi, 1.5Gi, 384Mi, 1.875Gi, 1G."""
    for unit in ("Ei", "E", "Pi", "P", "Ti", "T", "Gi", "G", "Mi", "M", "Ki", "k"):
        scaled = size / _UNITS[unit]
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


def deployment_terminating(deployment: Mapping) -> int:
    """Old pods still terminating while the next surge pod starts (see the module docstring):
    each step scales the old ReplicaSet down by up to maxSurge + maxUnavailable; the last
    step has no next surge pod beside it."""
    if not deployment_surge(deployment):
        return 0
    replicas = int((deployment.get("spec") or {}).get("replicas", 1))
    step = deployment_surge(deployment) + deployment_unavailable(deployment)
    return max(0, min(step, replicas - deployment_surge(deployment)))


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
    group: str  # serving | surge | terminating | hook | test
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
            if surge and not hook:
                groups.append(PodGroup(where, "surge", surge, per_pod))
                terminating = deployment_terminating(m)
                if terminating:
                    groups.append(PodGroup(where, "terminating", terminating, per_pod))
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
    def terminating(self) -> Usage:
        return self.usage("terminating")

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


_PART_NAMES = {"surge": ("surge pod", "surge pods"), "terminating": ("old pod terminating", "old pods terminating"),
               "hook": ("hook pod", "hook pods"), "test": ("test pod", "test pods")}


def _part(group: str, usage: Usage) -> tuple[str, Usage]:
    pods = int(usage["pods"])
    one, many = _PART_NAMES[group]
    return (one if pods == 1 else f"{pods} {many}", usage)


def phases(footprints: Iterable[Footprint]) -> list[Phase]:
    """'at rest', then per release its hook, rolling-update and helm-test phases (those it has)."""
    footprints = list(footprints)
    rest = total(f.at_rest for f in footprints)
    result = [Phase("at rest", "at rest", None, tuple((f.release, f.at_rest) for f in footprints))]
    for f in footprints:
        for groups, kind, label in ((("hook",), "hook", "pre-upgrade hook"),
                                    (("surge", "terminating"), "rolling update", "rolling update"),
                                    (("test",), "test", "helm test")):
            extras = [_part(g, f.usage(g)) for g in groups if f.usage(g)]
            if extras:
                result.append(Phase(f"{f.release} {label}", kind, f.release, (("at rest", rest), *extras)))
    return result


def everything_at_once(footprints: Iterable[Footprint]) -> Phase:
    """A conservative peak: every serving, surge, hook and test pod of every release. Old
    pods still terminating are in each release's rolling-update phase (phases()), not here:
    they overlap one release's surge, not every hook and test pod of every release."""
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


Reserved = Mapping[str, "str | int | Decimal"]


def holders(reserved: Mapping[str, Reserved] | Reserved | None) -> dict[str, dict[str, Decimal]]:
    """Requests already on the nodes, by who holds them: {holder: {cpu, memory, pods}}.
    A holder is a namespace (preflight.node_capacity); a flat {cpu, memory, pods} map is one
    holder, "system pods" (the reference node of the small profile)."""
    if not reserved:
        return {}
    if all(isinstance(v, Mapping) for v in reserved.values()):
        return {who: {k: parse_quantity(v) for k, v in amounts.items()} for who, amounts in reserved.items()}
    return {"system pods": {k: parse_quantity(v) for k, v in reserved.items()}}


def _held(resource_key: str, by: dict[str, dict[str, Decimal]]) -> tuple[Decimal, str]:
    """(total, description) of what others hold of one node resource (cpu, memory, pods)."""
    amounts = {who: held.get(resource_key, ZERO) for who, held in by.items() if held.get(resource_key, ZERO)}
    resource = {"cpu": "requests.cpu", "memory": "requests.memory"}.get(resource_key, "pods")
    held_total = sum(amounts.values(), ZERO)
    if not held_total:
        return ZERO, ""
    if list(amounts) == ["system pods"]:
        return held_total, f" - system pods {format_value(resource, held_total)}"
    each = ", ".join(f"{who} {format_value(resource, amount)}" for who, amount in sorted(amounts.items()))
    return held_total, f" - pods already scheduled {format_value(resource, held_total)} ({each})"


def node_fit(phase: Phase, allocatable: Mapping[str, str | int], reserved: Mapping[str, Reserved] | Reserved | None = None,
             headroom: Decimal | float | str = 0) -> Fit:
    """Do the phase's requests (and pod count) fit the nodes' allocatable, after what pods
    already scheduled there request (`reserved`: per namespace, or a flat map of system
    pods) and keeping a `headroom` fraction free?

    `allocatable` uses the node's own keys (cpu, memory, pods); limits are not scheduled,
    so only requests and pods are compared.
    """
    by = holders(reserved)
    share = Decimal(str(headroom))
    limits, budget = {}, {}
    for key, resource in (("cpu", "requests.cpu"), ("memory", "requests.memory"), ("pods", "pods")):
        if key in allocatable:
            have = parse_quantity(allocatable[key])
            held, described = _held(key, by)
            limits[resource] = (have - held) * (1 - share) if resource != "pods" else have - held
            budget[resource] = (f"allocatable {format_value(resource, have)}{described}"
                                + (f", {share * 100:.0f}% kept free" if share and resource != "pods" else ""))
    used = phase.total
    overflows = tuple(
        Overflow(phase, r, used[r], limit, "node budget",
                 f"lower the requests in the releases' values (a chart's values-small.yaml is used when its "
                 f"defaults do not fit the cluster), use a bigger node, or make room on it (budget: {budget[r]})")
        for r, limit in limits.items() if used[r] > limit)
    return Fit(phase, limits, "node budget", overflows)


# --- nothing to sum -----------------------------------------------------------------------
@dataclass(frozen=True)
class Unmeasured:
    """Pods of a workload that declare none of some amount the quota limits: a fit check
    counts them as 0 (and the quota admission rejects them: "must specify requests.cpu")."""

    workload: str
    group: str
    missing: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.workload} ({self.group} pods): no {', '.join(self.missing)}"


def unmeasured(footprints: Iterable[Footprint], hard: Mapping[str, str | int]) -> list[Unmeasured]:
    """Workloads whose pods leave out an amount the quota limits (requests/limits of cpu and
    memory). An unmodified `helm create` chart requests nothing at all: every fit then
    passes while checking nothing, so the gate must fail on this, not pass."""
    limited = [r for r in parse_hard(hard) if r != "pods"]
    found = []
    for f in footprints:
        for g in f.groups:
            if g.group in ("surge", "terminating"):
                continue  # the same pods as the serving group
            missing = tuple(r for r in limited if not g.per_pod[r])
            if missing:
                found.append(Unmeasured(g.workload, g.group, missing))
    return found
