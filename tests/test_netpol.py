"""The NetworkPolicy evaluator (shipcheck/netpol.py) on our charts' policies and seeded defects.

Manifests are built here the way our charts render them (labels, named ports, policies);
`test_real_charts_*` renders the real charts with helm when it is installed.
"""

import copy
from pathlib import Path

import pytest

from shipcheck import commands, netpol, tools
from shipcheck import helm as helm_mod
from shipcheck.netpol import ContainerPort, External, Path as NetPath, Pod, Policy

REPO = Path(__file__).resolve().parents[1]
NS = "todo"
PATHS = [NetPath("todo-frontend", "todo-backend", 8000), NetPath("todo-backend", "todo-postgres", 5432)]
ENTRY = "todo-frontend"


# --- manifests as our charts render them ------------------------------------------------
def labels(name: str, component: str | None = None) -> dict:
    base = {"helm.sh/chart": f"{name}-1.0.0", "app.kubernetes.io/name": name, "app.kubernetes.io/instance": name,
            "app.kubernetes.io/version": "v1.0.0", "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/part-of": "todo-chatbot"}
    return {**base, "app.kubernetes.io/component": component} if component else base


def workload(kind: str, name: str, component: str, port_name: str, port: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "labels": labels(name, component)},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name,
                                                  "app.kubernetes.io/component": component}},
                     "template": {"metadata": {"labels": labels(name, component)},
                                  "spec": {"containers": [{"name": "app", "image": f"{name}:v1.0.0",
                                                           "ports": [{"name": port_name, "containerPort": port,
                                                                      "protocol": "TCP"}]}]}}}}


def policy(name: str, component: str, clients: list[str], port) -> dict:
    peers = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": c}}} for c in clients]
    peers.append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}}})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "labels": labels(name)},
            "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name,
                                                     "app.kubernetes.io/component": component}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": peers, "ports": [{"port": port, "protocol": "TCP"}]}]}}


def helm_test_pod(name: str) -> dict:
    """A helm test pod: the release's base labels, no component label."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{name}-test", "labels": labels(name)},
            "spec": {"containers": [{"name": "test", "image": f"{name}:v1.0.0"}]}}


def releases() -> dict[str, list[dict]]:
    return {
        "todo-postgres": [workload("StatefulSet", "todo-postgres", "database", "postgres", 5432),
                          policy("todo-postgres", "database", ["todo-backend"], "postgres")],
        "todo-backend": [workload("Deployment", "todo-backend", "api", "http", 8000),
                         policy("todo-backend", "api", ["todo-frontend"], "http"), helm_test_pod("todo-backend")],
        "todo-frontend": [workload("Deployment", "todo-frontend", "web", "http", 3000), helm_test_pod("todo-frontend")],
    }


def evaluate(rel, paths=PATHS, entry=ENTRY, **kw) -> netpol.Report:
    return netpol.evaluate(rel, paths, entry, NS, **kw)


def first(docs, kind):
    return next(d for d in docs if d["kind"] == kind)


def deny_all(types=("Ingress",)) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny-all"},
            "spec": {"podSelector": {}, "policyTypes": list(types)}}


# --- our charts as they are ---------------------------------------------------------------
def test_our_charts_admit_the_declared_paths_and_nothing_else():
    report = evaluate(releases())
    assert report.ok, report.problems
    declared = {(r.client, r.server): r for r in report.results if r.declared}
    assert all(r.admitted for r in declared.values())
    by = declared["todo-frontend", "todo-backend"].verdict.ingress
    assert by.policy.name == "todo-backend" and by.rule == 1
    strangers = [r for r in report.results if r.client == netpol.STRANGER]
    assert {(r.server, r.port) for r in strangers} == {("todo-backend", 8000), ("todo-postgres", 5432)}
    assert not any(r.admitted for r in strangers)
    # The entry has no policy: information, never a failure.
    assert report.not_isolated == ["todo-frontend"]
    assert any("todo-frontend: not isolated" in n for n in report.notes)


def test_rows_say_what_decided():
    rows = evaluate(releases()).rows()
    row = next(r for r in rows if r["client"] == "todo-frontend")
    assert row == {"client": "todo-frontend", "server": "todo-backend", "port": "8000/TCP", "declared": True,
                   "admitted": True, "decided by": row["decided by"]}
    assert "NetworkPolicy todo-backend, ingress rule 1" in row["decided by"]
    assert "pods {app.kubernetes.io/name=todo-frontend} of this namespace" in row["decided by"]


def test_helm_create_chart_without_policies_does_not_fail():
    rel = {"web": [workload("Deployment", "web", "web", "http", 80)],
           "api": [workload("Deployment", "api", "api", "http", 8080)]}
    report = evaluate(rel, [NetPath("web", "api", 8080)], "web")
    assert report.ok, report.problems
    assert sorted(report.not_isolated) == ["api", "web"]
    assert any("no NetworkPolicy" in n for n in report.notes)
    assert any(r.client == netpol.STRANGER and r.admitted for r in report.results)


# --- seeded defects ---------------------------------------------------------------------------
def test_a_deny_all_is_caught_because_the_entry_becomes_unreachable():
    rel = releases()
    rel["todo-frontend"].append(deny_all())
    report = evaluate(rel)
    (problem,) = report.problems
    assert problem.startswith("todo-frontend (the entry) cannot be reached from outside namespace todo on port 3000/TCP")
    assert "NetworkPolicy deny-all isolates the pod for ingress and has no ingress rule" in problem
    assert "Fix: add an ingress rule admitting them" in problem
    assert "to NetworkPolicy deny-all (release todo-frontend), or remove it" in problem
    # Policies add up: the backend's own policy still admits the frontend.
    assert all(r.admitted for r in report.results if r.declared)


def test_a_deny_all_for_egress_refuses_every_declared_path_and_dns():
    rel = releases()
    rel["todo-backend"].append(deny_all(("Ingress", "Egress")))
    report = evaluate(rel)
    refused = [p for p in report.problems if ": refused in namespace todo" in p]
    assert len(refused) == 2
    assert any(p.startswith("todo-frontend -> todo-backend:8000/TCP: refused") and "egress: refused" in p for p in refused)
    assert any("egress to DNS (UDP 53" in p for p in report.problems)


def test_emptied_ingress_refuses_the_frontend_with_the_values_key_in_the_fix():
    rel = releases()
    first(rel["todo-backend"], "NetworkPolicy")["spec"]["ingress"] = None  # `ingress:` left empty
    report = evaluate(rel)
    (problem,) = report.problems
    assert problem.startswith("todo-frontend -> todo-backend:8000/TCP: refused in namespace todo")
    assert "NetworkPolicy todo-backend isolates the pod for ingress and has no ingress rule" in problem
    assert "Expected admitted: todo-frontend is declared to connect to todo-backend" in problem
    assert "the chart value networkPolicy.allowedClients of todo-backend (add `- app.kubernetes.io/name: todo-frontend`)" in problem


def test_empty_list_is_deny_and_empty_rule_is_allow_all():
    rel = releases()
    first(rel["todo-backend"], "NetworkPolicy")["spec"]["ingress"] = []
    assert not evaluate(rel).ok
    first(rel["todo-backend"], "NetworkPolicy")["spec"]["ingress"] = [{}]
    report = evaluate(rel)
    # Declared path admitted, but now any pod of the namespace reaches the API (and so does
    # the database, which is not declared to): caught.
    assert all(r.admitted for r in report.results if r.declared)
    problem, database = report.problems
    assert database.startswith("todo-postgres's pods {app.kubernetes.io/name=todo-postgres} can connect to "
                               "todo-backend:8000/TCP")
    assert problem.startswith("a pod of namespace todo with labels {shipcheck.io/netpol-probe=stranger} (matching no "
                              "component) can connect to todo-backend:8000/TCP")
    assert "ingress rule 1 (from anywhere on every port)" in problem
    assert "Expected refused: only todo-frontend is declared to connect" in problem
    assert "Fix: narrow the chart value networkPolicy.allowedClients of todo-backend" in problem


def test_a_policy_selecting_the_wrong_labels_selects_nothing_and_isolates_nothing():
    rel = releases()
    first(rel["todo-backend"], "NetworkPolicy")["spec"]["podSelector"] = {"matchLabels": {"app": "todo-backend"}}
    report = evaluate(rel)
    (problem,) = report.problems
    assert problem.startswith("NetworkPolicy todo-backend (release todo-backend) selects no pod: its podSelector "
                              "pods {app=todo-backend} matches none of the")
    assert "app.kubernetes.io/name=todo-backend" in problem and "Fix: make spec.podSelector.matchLabels" in problem
    assert "todo-backend" in report.not_isolated


def test_a_client_label_typo_refuses_the_declared_path():
    rel = releases()
    spec = first(rel["todo-backend"], "NetworkPolicy")["spec"]
    spec["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "todo-fronted"
    (problem,) = evaluate(rel).problems
    assert "rule 1: from pods {app.kubernetes.io/name=todo-fronted} of this namespace" in problem
    assert "on http/TCP" in problem


def test_named_port_resolves_on_the_server_pod():
    rel = releases()
    first(rel["todo-backend"], "NetworkPolicy")["spec"]["ingress"][0]["ports"] = [{"port": "metrics"}]
    (problem,) = evaluate(rel).problems
    assert "refused" in problem and "on metrics/TCP" in problem
    # The same name on the server's container port: admitted.
    port = first(rel["todo-backend"], "Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    port["name"] = "metrics"
    assert evaluate(rel).ok


def test_port_by_number_range_and_protocol():
    dest = Pod({"a": "b"}, NS, ports=(ContainerPort(8000, "http"),))
    assert netpol.port_matches({"port": 8000}, dest, 8000)
    assert netpol.port_matches({"port": "8000"}, dest, 8000)
    assert netpol.port_matches({"port": 7000, "endPort": 9000}, dest, 8000)
    assert not netpol.port_matches({"port": 8000, "protocol": "UDP"}, dest, 8000)
    assert netpol.port_matches({"protocol": "TCP"}, dest, 1234)
    assert not netpol.port_matches({"port": "http"}, dest, 8001)


def test_egress_only_policy_does_not_isolate_ingress():
    rel = releases()
    egress_only = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "egress-only"},
                   "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "todo-frontend"}},
                            "policyTypes": ["Egress"],
                            "egress": [{"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "todo-backend"}}}],
                                        "ports": [{"port": 8000}]},
                                       {"to": [{"namespaceSelector": {"matchLabels": {
                                           "kubernetes.io/metadata.name": "kube-system"}}}],
                                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}}
    rel["todo-frontend"].append(egress_only)
    report = evaluate(rel)
    assert report.ok, report.problems
    assert "todo-frontend" in report.not_isolated  # for ingress: egress rules do not isolate it
    result = next(r for r in report.results if r.client == "todo-frontend" and r.declared)
    assert result.verdict.egress.policy.name == "egress-only" and result.verdict.egress.rule == 1
    # Its egress to port 5432 of the database is refused by the egress policy.
    v = netpol.connection([Policy("egress-only", NS, egress_only["spec"])],
                          netpol.template_pod(first(rel["todo-frontend"], "Deployment"), NS),
                          netpol.template_pod(first(rel["todo-postgres"], "StatefulSet"), NS), 5432)
    assert not v.admitted and v.deciding.direction == "egress"


def test_egress_rules_without_dns_are_caught():
    rel = releases()
    rel["todo-frontend"].append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "e"},
                                 "spec": {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}})
    report = evaluate(rel)
    assert any(p.startswith("todo-frontend: egress to DNS (UDP 53, CoreDNS in kube-system) refused") for p in report.problems)
    assert all(r.admitted for r in report.results if r.declared)


def test_policy_types_default():
    assert Policy("p", NS, {"podSelector": {}}).types == ("Ingress",)
    assert Policy("p", NS, {"podSelector": {}, "egress": [{}]}).types == ("Ingress", "Egress")
    assert Policy("p", NS, {"podSelector": {}, "egress": []}).types == ("Ingress",)
    assert Policy("p", NS, {"podSelector": {}, "policyTypes": ["Egress"]}).types == ("Egress",)


def test_namespace_selector_admits_pods_of_other_namespaces_only_as_told():
    server = Pod({"app": "api"}, NS, ports=(ContainerPort(8000, "http"),))
    peer = {"namespaceSelector": {"matchLabels": {"team": "web"}}, "podSelector": {"matchLabels": {"app": "web"}}}
    p = Policy("api", NS, {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{"from": [peer]}]})
    web_other_ns = Pod({"app": "web"}, "shop", {"team": "web"})
    assert netpol.connection([p], web_other_ns, server, 8000).admitted
    assert not netpol.connection([p], Pod({"app": "web"}, "shop", {"team": "ops"}), server, 8000).admitted
    assert not netpol.connection([p], Pod({"app": "other"}, "shop", {"team": "web"}), server, 8000).admitted
    # The same namespace matches only when its labels do (namespaceSelector present).
    assert not netpol.connection([p], Pod({"app": "web"}, NS), server, 8000).admitted
    # podSelector alone: this namespace only.
    p2 = Policy("api", NS, {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]})
    assert netpol.connection([p2], Pod({}, NS), server, 8000).admitted
    assert not netpol.connection([p2], Pod({}, "shop"), server, 8000).admitted
    # namespaceSelector {} = every namespace; the name label is always there.
    p3 = Policy("api", NS, {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]}]})
    assert netpol.connection([p3], Pod({}, "ingress-nginx"), server, 8000).admitted
    assert not netpol.connection([p3], Pod({}, "default"), server, 8000).admitted


def test_entry_admitting_an_ingress_controller_namespace_is_reachable():
    rel = releases()
    rel["todo-frontend"].append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                 "metadata": {"name": "todo-frontend"},
                                 "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "todo-frontend"}},
                                          "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                                              "kubernetes.io/metadata.name": "ingress-nginx"}}}],
                                              "ports": [{"port": "http"}]}]}})
    report = evaluate(rel)
    # Reachable from the ingress controller's namespace; but the helm test pod of the frontend
    # is not a component, and the policy selects the serving pods: no problem.
    assert report.ok, report.problems
    assert "todo-frontend" not in report.not_isolated


def test_match_expressions():
    sel = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api", "web"]},
                                {"key": "canary", "operator": "DoesNotExist"},
                                {"key": "env", "operator": "NotIn", "values": ["dev"]}]}
    assert netpol.selector_matches(sel, {"tier": "api"})
    assert netpol.selector_matches(sel, {"tier": "web", "env": "prod"})
    assert not netpol.selector_matches(sel, {"tier": "db"})
    assert not netpol.selector_matches(sel, {"tier": "api", "canary": "1"})
    assert not netpol.selector_matches(sel, {"tier": "api", "env": "dev"})
    assert netpol.selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, {"x": ""})
    assert not netpol.selector_matches({"matchExpressions": [{"key": "x", "operator": "Bogus"}]}, {"x": ""})
    assert netpol.selector_matches({}, {"anything": "at all"})
    assert netpol.selector_matches({"matchLabels": {"on": True}}, {"on": "true"})


def test_ip_blocks():
    block = {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}
    assert netpol.ip_block_matches(block, Pod({}, NS, ip="10.2.0.5"), ())
    assert not netpol.ip_block_matches(block, Pod({}, NS, ip="10.1.0.5"), ())
    assert netpol.ip_block_matches(block, External(), ())
    # Pod addresses unknown: only a block that surely covers them matches.
    assert not netpol.ip_block_matches(block, Pod({}, NS), ())
    assert netpol.ip_block_matches({"cidr": "0.0.0.0/0"}, Pod({}, NS), ())
    assert netpol.ip_block_matches(block, Pod({}, NS), ("10.2.0.0/16",))
    assert not netpol.ip_block_matches(block, Pod({}, NS), ("10.1.0.0/16",))
    assert not netpol.ip_block_matches({"cidr": "not-a-cidr"}, External(), ())


def test_ip_block_open_to_the_world_admits_every_pod():
    rel = releases()
    first(rel["todo-postgres"], "NetworkPolicy")["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}})
    problems = evaluate(rel).problems
    assert any("can connect to todo-postgres:5432/TCP" in p and "addresses 0.0.0.0/0" in p for p in problems)
    assert any(p.startswith("todo-frontend's pods") for p in problems)  # an undeclared component path too


def test_undeclared_component_path_admitted_is_caught():
    rel = releases()
    first(rel["todo-postgres"], "NetworkPolicy")["spec"]["ingress"][0]["from"].append(
        {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "todo-chatbot"}}})
    problems = evaluate(rel).problems
    (problem,) = problems
    assert problem.startswith("todo-frontend's pods {") and "can connect to todo-postgres:5432/TCP" in problem
    assert "only todo-backend is declared to connect" in problem


def test_fix_key_follows_the_configuration():
    rel = releases()
    first(rel["todo-backend"], "NetworkPolicy")["spec"]["ingress"] = []
    (problem,) = evaluate(rel, fix_keys={"todo-backend": "policy.clients"}).problems
    assert "the chart value policy.clients of todo-backend" in problem
    (problem,) = evaluate(rel, fix_keys={"todo-backend": None}).problems
    assert "the NetworkPolicy template of todo-backend's chart" in problem


def test_external_database_path_is_noted_not_failed():
    rel = releases()
    del rel["todo-postgres"]
    report = evaluate(rel)
    assert report.ok
    assert any(n.startswith("todo-backend -> todo-postgres:5432/TCP: not checked") for n in report.notes)


def test_every_problem_names_fact_expectation_and_fix():
    rel = copy.deepcopy(releases())
    first(rel["todo-backend"], "NetworkPolicy")["spec"]["ingress"] = []
    rel["todo-frontend"].append(deny_all())
    first(rel["todo-postgres"], "NetworkPolicy")["spec"]["podSelector"] = {"matchLabels": {"x": "y"}}
    problems = evaluate(rel).problems
    # Both declared paths refused (the deny-all isolates the database, whose own policy now
    # selects nothing), the entry unreachable, and the policy selecting nothing.
    assert len(problems) == 4
    for p in problems:
        assert "Expected" in p and "Fix:" in p


# --- the real charts, rendered by helm ------------------------------------------------------
def _helm_or_none():
    try:
        return tools.binary("helm")
    except tools.ToolNotFound:
        return None


HELM = _helm_or_none()


def rendered_charts(*extra: str) -> dict[str, list[dict]]:
    result = {}
    for name in ("todo-postgres", "todo-backend", "todo-frontend"):
        argv = [HELM, *helm_mod.template_argv(name, REPO / "charts" / name, kube_version="1.34"), "--namespace", NS]
        result[name] = helm_mod.manifest_docs(commands.run(argv + list(extra if name == "todo-backend" else ())).stdout)
    return result


@pytest.mark.skipif(HELM is None, reason="helm not installed (bash setup/tools.sh)")
def test_real_charts_pass_and_an_emptied_allowed_clients_list_is_caught():
    assert evaluate(rendered_charts()).ok
    report = evaluate(rendered_charts("--set", "networkPolicy.allowedClients=null"))
    (problem,) = report.problems
    assert problem.startswith("todo-frontend -> todo-backend:8000/TCP: refused")


# --- declared traffic from the configuration ------------------------------------------------
class C:
    def __init__(self, name, port, role="app", run_env=None, uses_database=False, connects_to=()):
        self.name, self.port, self.role, self.run_env = name, port, role, run_env or {}
        self.uses_database, self.connects_to = uses_database, connects_to


def test_declared_paths_from_connects_to_or_from_run_env_and_uses_database():
    v1 = {"todo-postgres": C("todo-postgres", 5432, "database"),
          "todo-backend": C("todo-backend", 8000, uses_database=True),
          "todo-frontend": C("todo-frontend", 3000, run_env={"API_BASE_URL": "http://todo-backend:8000"})}
    assert netpol.declared_paths(v1) == [NetPath("todo-backend", "todo-postgres", 5432),
                                         NetPath("todo-frontend", "todo-backend", 8000)]
    v2 = {"db": C("db", 5432, "database"), "api": C("api", 8000, connects_to=("db",)),
          "web": C("web", 3000, connects_to=("api",))}
    assert netpol.declared_paths(v2) == [NetPath("api", "db", 5432), NetPath("web", "api", 8000)]

    class Cfg:
        components = v1
    assert netpol.entry_component(Cfg) == "todo-frontend"
    Cfg.entry = "web"
    assert netpol.entry_component(Cfg) == "web"


# --- stage 3 itself on seeded charts (pytester, real helm) ----------------------------------
@pytest.mark.skipif(HELM is None, reason="helm not installed (bash setup/tools.sh)")
def test_stage3_gate_fails_on_an_emptied_allow_list_and_an_added_deny_all(pytester, monkeypatch, tmp_path):
    from test_charts_seeded import failed, run_stage3, seed_chart

    backend = seed_chart(pytester.path, "todo-backend", values={"networkPolicy": {"allowedClients": []}})
    frontend = seed_chart(pytester.path, "todo-frontend")
    (frontend / "templates" / "deny-all.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-all\n"
        "spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n")
    outcomes = run_stage3(pytester, monkeypatch, f"components.todo-backend.chart={backend}",
                          f"components.todo-frontend.chart={frontend}")
    assert failed(outcomes) == ["test_network_policies_admit_declared_traffic_only"], outcomes
    message = outcomes["test_network_policies_admit_declared_traffic_only"][1]
    assert "NetworkPolicy problem(s) in the rendered charts, limit 0" in message
    assert "todo-frontend -> todo-backend:8000/TCP: refused in namespace todo" in message
    assert "Fix: admit todo-frontend's pods in the chart value networkPolicy.allowedClients of todo-backend" in message
    assert "todo-frontend (the entry) cannot be reached from outside namespace todo on port 3000/TCP" in message


def test_no_entry_without_a_frontend_naming_another_component():
    class Cfg:
        components = {"db": C("db", 5432, "database"), "api": C("api", 8000, uses_database=True)}
    assert netpol.entry_component(Cfg) is None
