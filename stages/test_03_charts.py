"""Stage 3: judge what will be deployed, before deploying it.

The `deploy_plan` fixture renders every release once, with the values stage 4 will pass
(the chart's profile file, the user's files, the values the suite injects) and the target
cluster's Kubernetes version. Each test is one gate over that one render, so what is
validated here is exactly what stage 4 installs. The quota gates add up all releases, as
they share one namespace.
"""

import time

import pytest

from shipcheck import charts, manifest_policy, namespace, netpol, plan as plan_mod, quota, report

pytestmark = pytest.mark.order(3)


@pytest.fixture
def plan(deploy_plan, component) -> plan_mod.ReleasePlan:
    found = deploy_plan.for_component(component)
    if found is None:
        pytest.skip(f"{component.name} is not deployed: " + ("an external database is configured"
                                                            if component.chart else "it has no chart"))
    return found


@pytest.fixture
def rendered(plan) -> plan_mod.ReleasePlan:
    """The plan, when it rendered: a gate cannot judge manifests that do not exist."""
    if not plan.ok:
        pytest.skip(f"{plan.release} did not render; see test_helm_template_renders[{plan.component.name}]")
    return plan


@pytest.fixture(scope="module")
def lint_results(deploy_plan, helm, figures) -> dict[str, object]:
    results = {}
    for p in deploy_plan.releases:
        start = time.monotonic()
        results[p.component.name] = helm.lint(p.chart, p.values_files, p.values, p.kube_version)
        figures.add("chart timings", chart=p.release, lint_s=round(time.monotonic() - start, 2),
                    render_s=round(p.rendered.result.duration_s, 2))
    return results


# --- gates ------------------------------------------------------------------------------------
def test_helm_lint_strict(plan, lint_results):
    result = lint_results[plan.component.name]
    problems = charts.lint_problems(result)
    assert result.ok, (f"{plan.chart}: `helm lint --strict` with the plan's values failed with {len(problems)} "
                       f"problem(s), limit 0 (warnings count): " + "; ".join(problems)
                       + ". Fix each in the chart (values.schema.json, templates, Chart.yaml).")


def test_helm_template_renders(plan):
    result = plan.rendered.result
    assert plan.ok, (f"{plan.chart}: `helm template` for Kubernetes {plan.kube_version} failed (rc {result.rc}): "
                     f"{result.tail(15)}\nCommand: {result.command}\nFix the template or value named.")
    assert plan.manifests, f"{plan.chart}: `helm template` rendered nothing."


def test_injected_values_took_effect(rendered):
    problems = plan_mod.not_applied(rendered)
    assert not problems, "\n".join(problems)


def test_manifests_valid_for_kubernetes_version(rendered, target_facts):
    problems = manifest_policy.schema_problems(rendered.manifests, target_facts.minor)
    assert not problems, (f"{len(problems)} manifest(s) of {rendered.release} invalid for Kubernetes "
                          f"{target_facts.minor}, limit 0:\n" + "\n".join(problems))


def test_namespace_and_quota_manifests_valid(cfg, target_facts):
    problems = manifest_policy.schema_problems(namespace.manifests(cfg), target_facts.minor)
    assert not problems, "namespace manifests invalid:\n" + "\n".join(problems)


def test_requests_and_limits_on_every_container(rendered):
    problems = manifest_policy.resource_problems(rendered.judged)
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


def test_probes_on_configured_paths(rendered, component):
    problems = manifest_policy.probe_problems(rendered.judged, component.health_path, component.readiness_path,
                                              component.name)
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


def test_restricted_security_context(rendered, component):
    problems = (manifest_policy.security_problems(rendered.judged, component.uid)
                + manifest_policy.writable_path_problems(rendered.judged, component.writable_paths))
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


def test_image_pinned_to_built_tag(rendered, component, pushed):
    # The chart's appVersion is what `helm install` deploys by hand when its values leave the
    # image tag empty: then it must be the built tag. A chart whose values set the tag (as
    # helm create's users do) keeps appVersion as its own business.
    chart_tag = plan_mod.get_path(charts.load_values(component.chart / "values.yaml"), component.values.image_tag)
    app_version = None if chart_tag else str(charts.chart_metadata(component.chart).get("appVersion", ""))
    push = pushed.get(component.name)  # the registry path: the pushed repository, tag@digest
    expected = f"{push.repository}:{component.tag}" if push else component.image_ref
    problems = manifest_policy.image_problems(rendered.judged, expected, app_version)
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


def test_service_selects_the_release_pods(rendered):
    problems = manifest_policy.service_selector_problems(rendered.judged)
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


def test_ephemeral_storage_on_every_container(rendered, component):
    problems = manifest_policy.ephemeral_storage_problems(rendered.judged, component.values)
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


def test_disruption_budget_lets_a_drain_proceed(rendered, component):
    """A budget the chart has must let a drain proceed; one it lacks is required only where its
    values can switch one on (values.pod_disruption_budget), else it is advice in the report."""
    problems = manifest_policy.pdb_problems(rendered.judged, component.values,
                                            required=component.values.pod_disruption_budget is not None)
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


def test_rolling_update_surge_1_unavailable_0(rendered):
    problems = manifest_policy.rollout_problems(rendered.judged)
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


def test_no_secrets_in_configmaps_or_values_files(rendered, component):
    problems = manifest_policy.secret_value_problems(rendered.judged)
    for path in dict.fromkeys(charts.values_files(component.chart) + list(component.values_files)):
        problems += manifest_policy.values_secret_problems(str(path), charts.load_values(path))
    assert not problems, f"{rendered.release}:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def footprints(deploy_plan) -> list[quota.Footprint]:
    broken = [p.release for p in deploy_plan.releases if not p.ok]
    if broken:
        pytest.skip(f"{', '.join(broken)} did not render; see test_helm_template_renders")
    return deploy_plan.footprints()


def test_declared_secrets_and_config_maps_are_used(deploy_plan, cfg):
    """Each Secret and ConfigMap of shipcheck.yaml is referenced by some pod of some release: a
    name with a typo would otherwise surface only as a missing key at deploy time, or never."""
    names = set(cfg.secrets) | set(cfg.config_maps)
    used = set()
    for p in deploy_plan.releases:
        used |= plan_mod.referenced_names([m.get("spec") for m in p.judged], names)
    unused = sorted(names - used)
    assert not unused, (f"{len(unused)} Secret(s)/ConfigMap(s) declared in shipcheck.yaml but referenced by no pod, limit "
                        f"0: {unused}. Fix: name them in the chart's values (existingSecret, volumes, envFrom), or "
                        "correct the name in secrets:/config_maps: of shipcheck.yaml.")


def test_quota_fit_has_something_to_sum(footprints, cfg):
    """A fit check over releases that request nothing proves nothing: it fails instead."""
    problems = manifest_policy.quota_measured_problems(footprints, cfg.resource_quota, namespace.quota_name(cfg))
    assert not problems, "\n".join(problems)


def test_quota_fit_at_rest(footprints, deploy_plan, cfg, figures):
    name = namespace.quota_name(cfg)
    fit = quota.quota_fit(quota.phases(footprints)[0], cfg.resource_quota, name)
    report.record_fits(figures, deploy_plan.profile, [fit])
    assert fit.ok, "\n".join(map(str, fit.overflows))


def test_quota_fit_during_rollout(footprints, deploy_plan, plan, cfg, figures):
    """The release's pre-upgrade hook, rolling update and helm test, each on top of every
    release at rest."""
    phases = [p for p in quota.phases(footprints) if p.release == plan.release]
    fits = [quota.quota_fit(p, cfg.resource_quota, namespace.quota_name(cfg)) for p in phases]
    report.record_fits(figures, deploy_plan.profile, fits)
    overflows = [str(o) for fit in fits for o in fit.overflows]
    assert not overflows, "\n".join(overflows)


def test_network_policies_admit_declared_traffic_only(deploy_plan, cfg, figures):
    """Every release's NetworkPolicies, as the plan renders them, against the declared
    traffic: each declared path admitted, nothing undeclared admitted into an isolated
    component, the entry reachable from outside the namespace. Components no policy
    isolates are reported, never failed (helm create's charts have no policy)."""
    broken = [p.release for p in deploy_plan.releases if not p.ok]
    if broken:
        pytest.skip(f"{', '.join(broken)} did not render; see test_helm_template_renders")
    fix_keys = {c.name: c.values.network_policy_clients or netpol.DEFAULT_FIX_KEY for c in cfg.components.values()}
    found = netpol.evaluate({p.component.name: p.manifests for p in deploy_plan.releases},
                            netpol.declared_paths(cfg.components), netpol.entry_component(cfg), cfg.namespace,
                            namespace_labels=namespace.namespace_manifest(cfg)["metadata"]["labels"], fix_keys=fix_keys)
    for row in found.rows():
        figures.add("network policy paths (static)", **row)
    for note in found.notes:
        figures.add("network policy notes", note=note)
    assert found.ok, (f"{len(found.problems)} NetworkPolicy problem(s) in the rendered charts, limit 0:\n"
                      + "\n".join(found.problems))


@pytest.fixture(scope="module", autouse=True)
def seed_numbers_in_the_report(deploy_plan, helm, cfg, figures):
    """A report section, not a gate: the seed's own per-pod numbers (values-seed.yaml) against
    its quota, to show why our defaults differ (the seed's quota cannot hold its own rolling
    update)."""
    footprints = []
    for p in deploy_plan.releases:
        seed = p.chart / "values-seed.yaml"
        if seed.is_file():
            rendered = helm.template(p.release, p.chart, (seed,), p.values, p.kube_version)
            footprints.append(quota.footprint(p.release, rendered.manifests))
    if footprints:
        report.add_seed_comparison(figures, [quota.quota_fit(ph, cfg.resource_quota, namespace.quota_name(cfg))
                                             for ph in quota.phases(footprints)])


@pytest.fixture(scope="module", autouse=True)
def advice_in_the_report(deploy_plan, figures):
    """Advice, not gates: identical liveness and readiness probes on a component that calls
    others (whether readiness should follow a dependency is the app's choice: it can also
    cascade an outage), and a multi-replica workload without a PodDisruptionBudget in a chart
    that has no values to add one. Flagged in the report with the fix, never failed."""
    for p in deploy_plan.releases:
        if p.ok and p.component.connects_to:
            for advice in manifest_policy.identical_probe_problems(p.manifests, p.component.values):
                figures.add("advice", component=p.component.name, advice=advice)
        if p.ok and p.component.values.pod_disruption_budget is None:
            for advice in manifest_policy.pdb_problems(p.judged, p.component.values):
                figures.add("advice", component=p.component.name, advice=advice)
