"""Quota arithmetic on seeded manifests: exact quantities, pods per phase, fit messages."""

from decimal import Decimal

import pytest

from shipcheck import quota

SEED_QUOTA = {"requests.cpu": "3", "requests.memory": "6Gi", "limits.cpu": "4", "limits.memory": "8Gi", "pods": "10"}
GI = 2 ** 30


def container(req_cpu="250m", req_mem="256Mi", lim_cpu="500m", lim_mem="512Mi", name="app"):
    resources = {}
    if req_cpu or req_mem:
        resources["requests"] = {k: v for k, v in (("cpu", req_cpu), ("memory", req_mem)) if v}
    if lim_cpu or lim_mem:
        resources["limits"] = {k: v for k, v in (("cpu", lim_cpu), ("memory", lim_mem)) if v}
    return {"name": name, "image": "x:v1", "resources": resources}


def deployment(name, replicas=2, surge=1, unavailable=0, strategy="RollingUpdate", **resources):
    spec = {"replicas": replicas, "template": {"spec": {"containers": [container(**resources)]}}}
    if strategy == "RollingUpdate":
        spec["strategy"] = {"type": strategy, "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    elif strategy:
        spec["strategy"] = {"type": strategy}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def hook_job(name, hook="pre-install,pre-upgrade", **resources):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "annotations": {"helm.sh/hook": hook}},
            "spec": {"template": {"spec": {"containers": [container(**resources)]}}}}


def helm_test_pod(name, *args, **resources):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": {"helm.sh/hook": "test"}},
            "spec": {"containers": [container(*args, **resources)]}}


def seed_footprints():
    """The seed: frontend 500m/750m, 1Gi/1.5Gi; backend 750m/1000m, 1.5Gi/2Gi; 2 replicas each."""
    return [quota.footprint("todo-frontend", [deployment("todo-frontend", req_cpu="500m", req_mem="1Gi",
                                                          lim_cpu="750m", lim_mem="1.5Gi")]),
            quota.footprint("todo-backend", [deployment("todo-backend", req_cpu="750m", req_mem="1.5Gi",
                                                         lim_cpu="1000m", lim_mem="2Gi")])]


# --- quantities -------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("500m", Decimal("0.5")), ("1", Decimal(1)), ("1.5", Decimal("1.5")), ("0.75", Decimal("0.75")),
    ("1Gi", Decimal(GI)), ("1536Mi", Decimal(GI * 3 // 2)), ("1.5Gi", Decimal(GI * 3 // 2)), ("1G", Decimal(10 ** 9)),
    ("128974848", Decimal(128974848)), ("129e6", Decimal(129 * 10 ** 6)), ("123Mi", Decimal(123 * 2 ** 20)),
    ("100k", Decimal(100_000)), ("64Ki", Decimal(65536)), (2, Decimal(2)), (0.5, Decimal("0.5")),
])
def test_parse_quantity_exact(text, expected):
    assert quota.parse_quantity(text) == expected


def test_millicores_add_up_exactly():
    assert sum((quota.parse_quantity("100m") for _ in range(3)), Decimal(0)) == quota.parse_quantity("0.3")
    assert quota.parse_quantity("1500m") == quota.parse_quantity("1.5")


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1gi", "Mi", "1 Gi", True])
def test_parse_quantity_rejects_garbage(bad):
    with pytest.raises(quota.QuantityError):
        quota.parse_quantity(bad)


@pytest.mark.parametrize("resource, text, shown", [
    ("requests.cpu", "3250m", "3.25"), ("limits.cpu", "4", "4"), ("limits.memory", "9Gi", "9Gi"),
    ("requests.memory", "1536Mi", "1.5Gi"), ("requests.memory", "384Mi", "384Mi"), ("limits.memory", "1G", "1G"),
    ("pods", "10", "10"),
])
def test_format_value(resource, text, shown):
    assert quota.format_value(resource, quota.parse_quantity(text)) == shown


# --- pods -------------------------------------------------------------------------------
def test_pod_usage_sums_containers_and_takes_the_larger_init_container():
    pod = {"containers": [container("100m", "100Mi", "200m", "200Mi"), container("100m", "100Mi", "200m", "200Mi")],
           "initContainers": [container("500m", "50Mi", "1", "100Mi")]}
    usage = quota.pod_usage(pod)
    assert usage["requests.cpu"] == Decimal("0.5")  # init 500m > sum 200m
    assert usage["requests.memory"] == 200 * 2 ** 20  # sum 200Mi > init 50Mi
    assert usage["limits.cpu"] == 1
    assert usage["pods"] == 1


def test_missing_request_defaults_to_limit_as_the_api_server_does():
    usage = quota.pod_usage({"containers": [container(req_cpu=None, req_mem=None)]})
    assert usage["requests.cpu"] == Decimal("0.5") and usage["requests.memory"] == 512 * 2 ** 20


@pytest.mark.parametrize("replicas, surge, expected", [(2, 1, 1), (2, "25%", 1), (3, "50%", 2), (4, "25%", 1), (2, 0, 0)])
def test_surge_rounds_percentages_up(replicas, surge, expected):
    assert quota.deployment_surge(deployment("d", replicas=replicas, surge=surge)) == expected


def test_unavailable_rounds_percentages_down_and_recreate_never_surges():
    assert quota.deployment_unavailable(deployment("d", replicas=2, unavailable="25%")) == 0
    assert quota.deployment_surge(deployment("d", strategy="Recreate")) == 0
    assert quota.deployment_surge(deployment("d", replicas=4, strategy=None)) == 1  # default 25%


def test_footprint_groups_serving_surge_hook_and_test_pods():
    statefulset = {"kind": "StatefulSet", "metadata": {"name": "db"},
                   "spec": {"replicas": 1, "template": {"spec": {"containers": [container()]}}}}
    fp = quota.footprint("r", [deployment("web", replicas=2), statefulset, hook_job("migrate", req_cpu="100m"),
                               helm_test_pod("t", req_cpu="50m"), {"kind": "ConfigMap", "metadata": {"name": "c"}}])
    assert fp.at_rest["pods"] == 3 and fp.at_rest["requests.cpu"] == Decimal("0.75")
    assert fp.surge["pods"] == 1  # the Deployment's only; a StatefulSet never surges
    assert fp.hooks["requests.cpu"] == Decimal("0.1") and fp.tests["requests.cpu"] == Decimal("0.05")


# --- phases and fit ---------------------------------------------------------------------
def test_seed_numbers_fit_at_rest_but_not_during_a_rolling_update():
    fits = [quota.quota_fit(p, SEED_QUOTA, "todo-quota") for p in quota.phases(seed_footprints())]
    by_phase = {f.phase.name: f for f in fits}
    assert by_phase["at rest"].ok
    backend = by_phase["todo-backend rolling update"]
    assert not backend.ok
    messages = {o.resource: str(o) for o in backend.overflows}
    assert messages["requests.cpu"] == ("todo-backend rolling update: requests.cpu 3.25 > quota 3 (at rest 2.5 + "
                                        "surge pod 0.75). Fix: lower resources.requests.cpu or maxSurge, or raise "
                                        "todo-quota")
    assert "limits.cpu 4.5 > quota 4 (at rest 3.5 + surge pod 1)" in messages["limits.cpu"]
    assert "limits.memory 9Gi > quota 8Gi (at rest 7Gi + surge pod 2Gi)" in messages["limits.memory"]
    assert "pods" not in messages


def test_our_defaults_fit_every_phase_with_a_database_hook_and_tests():
    releases = [
        quota.footprint("todo-frontend", [deployment("todo-frontend", req_cpu="250m", req_mem="256Mi",
                                                     lim_cpu="500m", lim_mem="512Mi"), helm_test_pod("t", "50m", "64Mi", "200m", "128Mi")]),
        quota.footprint("todo-backend", [deployment("todo-backend", req_cpu="250m", req_mem="384Mi", lim_cpu="500m",
                                                    lim_mem="768Mi"), hook_job("m", req_cpu="100m", req_mem="128Mi",
                                                                               lim_cpu="500m", lim_mem="256Mi")]),
        quota.footprint("todo-postgres", [{"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {
            "replicas": 1, "template": {"spec": {"containers": [container()]}}}}]),
    ]
    phases = quota.phases(releases)
    assert [p.name for p in phases] == ["at rest", "todo-frontend rolling update", "todo-frontend helm test",
                                        "todo-backend pre-upgrade hook", "todo-backend rolling update"]
    fits = [quota.quota_fit(p, SEED_QUOTA, "todo-quota") for p in phases]
    assert all(f.ok for f in fits), [str(o) for f in fits for o in f.overflows]
    worst = max(f.phase.total["limits.cpu"] for f in fits)
    assert worst == 3  # 75 % of the quota: room for a terminating pod during the rollout


def test_hook_overflow_names_the_hook_resources():
    releases = [quota.footprint("todo-backend", [deployment("b", replicas=2, req_cpu="1", lim_cpu="1"),
                                                 hook_job("m", req_cpu="1.5", lim_cpu="2")])]
    hook = [p for p in quota.phases(releases) if p.kind == "hook"][0]
    fit = quota.quota_fit(hook, SEED_QUOTA, "todo-quota")
    message = {o.resource: str(o) for o in fit.overflows}["requests.cpu"]
    assert message == ("todo-backend pre-upgrade hook: requests.cpu 3.5 > quota 3 (at rest 2 + hook pod 1.5). "
                       "Fix: lower migrations.resources.requests.cpu, or raise todo-quota")


def test_pod_count_overflow_during_surge():
    releases = [quota.footprint("web", [deployment("web", replicas=10, surge=1, lim_cpu="100m", req_cpu="100m")])]
    fits = {p.name: quota.quota_fit(p, SEED_QUOTA, "todo-quota") for p in quota.phases(releases)}
    assert fits["at rest"].ok
    (overflow,) = [o for o in fits["web rolling update"].overflows if o.resource == "pods"]
    assert str(overflow).startswith("web rolling update: pods 11 > quota 10 (at rest 10 + surge pod 1). Fix: lower "
                                    "replicaCount or maxSurge")


def test_quota_aliases_and_unknown_keys():
    hard = quota.parse_hard({"cpu": "2", "memory": "1Gi", "count/configmaps": "5"})
    assert hard == {"requests.cpu": Decimal(2), "requests.memory": Decimal(GI)}


def test_node_fit_counts_requests_after_system_pods_and_headroom():
    everything = quota.everything_at_once(seed_footprints())
    fit = quota.node_fit(everything, {"cpu": "2", "memory": "2Gi", "pods": "110"}, {"cpu": "100m"}, 0.25)
    assert fit.limits["requests.cpu"] == Decimal("1.425")  # (2 - 0.1) * 0.75
    assert not fit.ok
    message = {o.resource: str(o) for o in fit.overflows}["requests.cpu"]
    assert message.startswith("everything at once: requests.cpu 3.75 > node budget 1.425 (")
    assert "budget: allocatable 2 - system pods 0.1, 25% kept free" in message

    small = [quota.footprint("a", [deployment("a", req_cpu="100m", req_mem="128Mi")])]
    assert quota.node_fit(quota.everything_at_once(small), {"cpu": "2", "memory": "2Gi"}, {"cpu": "100m"}, 0.25).ok


def test_fit_rows_carry_the_figures():
    fit = quota.quota_fit(quota.phases(seed_footprints())[0], SEED_QUOTA, "todo-quota")
    rows = {r["resource"]: r for r in fit.rows()}
    assert rows["requests.cpu"] == {"phase": "at rest", "resource": "requests.cpu", "used": "2.5", "limit": "3",
                                    "against": "quota todo-quota", "share": "83%", "fits": True}
    assert list(rows) == list(quota.RESOURCES)
