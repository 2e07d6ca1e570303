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
    assert messages["requests.cpu"] == ("todo-backend rolling update: requests.cpu 4 > quota 3 (at rest 2.5 + "
                                        "surge pod 0.75 + old pod terminating 0.75). Fix: lower resources.requests.cpu "
                                        "or maxSurge, or raise todo-quota")
    assert "limits.cpu 5.5 > quota 4 (at rest 3.5 + surge pod 1 + old pod terminating 1)" in messages["limits.cpu"]
    assert "limits.memory 11Gi > quota 8Gi (at rest 7Gi + surge pod 2Gi + old pod terminating 2Gi)" in messages[
        "limits.memory"]
    assert "pods" not in messages  # 4 + 1 + 1 of 10


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
    assert worst == Decimal("3.5")  # at rest 2.5 + a surge pod 0.5 + the old pod terminating beside it 0.5


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
    assert str(overflow).startswith("web rolling update: pods 12 > quota 10 (at rest 10 + surge pod 1 + old pod "
                                    "terminating 1). Fix: lower replicaCount or maxSurge")


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


# --- old pods terminating during a rolling update ---------------------------------------
@pytest.mark.parametrize("replicas, surge, unavailable, terminating", [
    (2, 1, 0, 1),  # the old pod in its preStop sleep while the second surge pod starts
    (1, 1, 0, 0),  # one step replaces the only replica: no next surge pod beside it
    (3, 1, 0, 1), (4, 2, 0, 2), (2, 2, 0, 0), (4, 1, 1, 2), (2, 0, 1, 0),
])
def test_old_pods_terminating_beside_the_next_surge_pod(replicas, surge, unavailable, terminating):
    d = deployment("d", replicas=replicas, surge=surge, unavailable=unavailable)
    assert quota.deployment_terminating(d) == terminating
    assert quota.deployment_terminating(deployment("d", replicas=replicas, strategy="Recreate")) == 0


def test_a_statefulset_has_no_terminating_group():
    sts = {"kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"replicas": 2, "template": {"spec": {"containers": [container()]}}}}
    assert not quota.footprint("db", [sts]).terminating


# --- the case of issue 12: the frontend's surge pod unschedulable, "Insufficient cpu" -----
def issue12_releases():
    """Our defaults: frontend and backend 2 x 250m, postgres 250m; the frontend's old pod
    still in its preStop sleep (5 s) while its second surge pod starts."""
    frontend = deployment("todo-frontend", req_cpu="250m", req_mem="256Mi", lim_cpu="500m", lim_mem="512Mi")
    backend = deployment("todo-backend", req_cpu="250m", req_mem="384Mi", lim_cpu="500m", lim_mem="768Mi")
    postgres = {"kind": "StatefulSet", "metadata": {"name": "todo-postgres"},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [container("250m", "256Mi", "500m", "512Mi")]}}}}
    return [quota.footprint("todo-postgres", [postgres]), quota.footprint("todo-backend", [backend]),
            quota.footprint("todo-frontend", [frontend])]


# The 2-core node: CoreDNS in kube-system, and another namespace's app pods on the same node.
NODE = {"cpu": "2", "memory": "23Gi", "pods": "110"}
ALREADY_SCHEDULED = {"kube-system": {"cpu": "100m", "memory": "70Mi", "pods": "1"},
                     "wt-other-app": {"cpu": "200m", "memory": "256Mi", "pods": "2"}}


def test_issue12_the_fit_check_refuses_what_the_scheduler_refused():
    from shipcheck import preflight

    fits, problems = preflight.fits(issue12_releases(), SEED_QUOTA, "todo-quota", NODE, ALREADY_SCHEDULED)
    by = {(f.phase.name, f.against): f for f in fits}
    rolling = by["todo-frontend rolling update", "node budget"]
    assert rolling.phase.total["requests.cpu"] == Decimal("1.75")  # 1.25 at rest + surge 0.25 + terminating 0.25
    assert len(problems) == 2 and problems[0].startswith("todo-backend rolling update: requests.cpu 1.75 > node budget")
    assert problems[1] == (
        "todo-frontend rolling update: requests.cpu 1.75 > node budget 1.7 (at rest 1.25 + surge pod 0.25 + old pod "
        "terminating 0.25). Fix: lower the requests in the releases' values (a chart's values-small.yaml is used when "
        "its defaults do not fit the cluster), use a bigger node, or make room on it (budget: allocatable 2 - pods "
        "already scheduled 0.3 (kube-system 0.1, wt-other-app 0.2))")
    assert by["at rest", "node budget"].ok and by["todo-frontend rolling update", "quota todo-quota"].ok

    # Counting one surge pod only (the check before this change): 1.5 <= 1.7, a false green.
    one_surge = quota.Phase("old model", "rolling update", "todo-frontend",
                            (("at rest", quota.phases(issue12_releases())[0].total),
                             ("surge pod", issue12_releases()[2].surge)))
    assert quota.node_fit(one_surge, NODE, ALREADY_SCHEDULED).ok
    # Counting kube-system only (the profile choice): 1.75 <= 1.9, also green.
    assert quota.node_fit(rolling.phase, NODE, {"kube-system": ALREADY_SCHEDULED["kube-system"]}).ok


def test_a_flat_reserved_map_is_system_pods():
    fit = quota.node_fit(quota.phases(issue12_releases())[0], {"cpu": "1"}, {"cpu": "100m"})
    assert "(budget: allocatable 1 - system pods 0.1)" in str(fit.overflows[0])


# --- what is already scheduled, from the API ---------------------------------------------
class _Api:
    def sanitize_for_serialization(self, spec):
        return spec.raw


class FakeCore:
    """list_node and list_pod_for_all_namespaces as the kubernetes client answers them."""

    def __init__(self, nodes, pods):
        from types import SimpleNamespace as NS

        self.api_client = _Api()
        self._nodes = [NS(metadata=NS(name=n), spec=NS(unschedulable=u), status=NS(allocatable=a)) for n, u, a in nodes]
        self._pods = [NS(metadata=NS(namespace=ns), spec=NS(node_name=node, raw={"containers": [container(cpu, mem)]}))
                      for ns, node, cpu, mem in pods]
        self.selector = None

    def list_node(self):
        from types import SimpleNamespace as NS
        return NS(items=self._nodes)

    def list_pod_for_all_namespaces(self, field_selector=None):
        from types import SimpleNamespace as NS
        self.selector = field_selector
        return NS(items=self._pods)


def test_node_capacity_counts_every_other_namespace_by_name():
    from shipcheck import preflight

    core = FakeCore(nodes=[("n1", False, {"cpu": "2", "memory": "8Gi", "pods": "110"}),
                           ("cordoned", True, {"cpu": "4", "memory": "8Gi", "pods": "110"})],
                    pods=[("kube-system", "n1", "100m", "70Mi"), ("wt-other-app", "n1", "150m", "128Mi"),
                          ("wt-other-app", "n1", "50m", "128Mi"), ("todo", "n1", "250m", "256Mi"),  # ours: replaced
                          ("elsewhere", "cordoned", "1", "1Gi"), ("pending", None, "1", "1Gi")])
    allocatable, reserved = preflight.node_capacity(core, "todo")
    assert allocatable == {"cpu": "2", "memory": str(8 * GI), "pods": "110"}
    assert reserved == {"kube-system": {"cpu": Decimal("0.1"), "memory": 70 * 2 ** 20, "pods": 1},
                        "wt-other-app": {"cpu": Decimal("0.2"), "memory": 256 * 2 ** 20, "pods": 2}}
    assert core.selector == "status.phase!=Succeeded,status.phase!=Failed"
    _, system = preflight.node_capacity(core, "todo", only_namespace="kube-system")
    assert list(system) == ["kube-system"]


# --- nothing to sum ------------------------------------------------------------------------
def helm_create_deployment(name="mychart"):
    """An unmodified `helm create` chart: resources: {} (no requests, no limits)."""
    return {"kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": name, "image": "nginx:1.16.0",
                                                                          "resources": {}}]}}}}


def test_a_fit_with_nothing_to_sum_is_reported():
    releases = [quota.footprint("mychart", [helm_create_deployment(), helm_test_pod("t", None, None, None, None)])]
    fits = [quota.quota_fit(p, SEED_QUOTA, "todo-quota") for p in quota.phases(releases)]
    assert all(f.ok for f in fits)  # every fit passes: it summed zeros
    found = quota.unmeasured(releases, SEED_QUOTA)
    assert [str(u) for u in found] == [
        "Deployment/mychart (serving pods): no requests.cpu, requests.memory, limits.cpu, limits.memory",
        "Pod/t (test pods): no requests.cpu, requests.memory, limits.cpu, limits.memory"]
    assert quota.unmeasured(seed_footprints(), SEED_QUOTA) == []
    assert quota.unmeasured(releases, {"pods": "10"}) == []  # a quota on pods alone: nothing unmeasured


def test_parse_quantity_is_the_kubernetes_clients_with_our_errors():
    from kubernetes.utils import parse_quantity as upstream

    for text in ("500m", "1.5Gi", "129e6", "64Ki", "1E"):
        assert quota.parse_quantity(text) == upstream(text)
    for bad in ("1 Gi", " 1", "NaN", "Infinity", None):
        with pytest.raises(quota.QuantityError):
            quota.parse_quantity(bad)
    assert quota.parse_quantity(0.1) == Decimal("0.1")  # as written, not 0.1000000000000000055...
