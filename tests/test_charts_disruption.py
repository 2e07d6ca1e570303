"""Our charts' PodDisruptionBudgets (charts/*/templates/pdb.yaml) and Services, rendered by
helm and judged by the stage-3 gates of issue 12 (no cluster)."""

from pathlib import Path

import pytest

from helm_tool import HELM, needs_helm
from shipcheck import commands, manifest_policy as mp
from shipcheck import helm as helm_mod

REPO = Path(__file__).resolve().parents[1]
APPS = ("todo-frontend", "todo-backend")

pytestmark = needs_helm


def render(chart: str, *sets: str) -> list[dict]:
    argv = [HELM, *helm_mod.template_argv(chart, REPO / "charts" / chart, kube_version="1.34"), "--namespace", "todo"]
    result = commands.run(argv + [a for s in sets for a in ("--set", s)], check=False)
    assert result.ok, result.tail()
    return helm_mod.manifest_docs(result.stdout)


def kinds(manifests, kind):
    return [m for m in manifests if m["kind"] == kind]


@pytest.mark.parametrize("chart", APPS)
def test_two_replicas_get_a_budget_that_lets_a_drain_proceed(chart):
    manifests = render(chart)
    (pdb,) = kinds(manifests, "PodDisruptionBudget")
    (deployment,) = kinds(manifests, "Deployment")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert mp.pdb_problems(manifests) == [] and mp.service_selector_problems(manifests) == []
    assert mp.schema_problems(kinds(manifests, "PodDisruptionBudget"), "1.34") == []


@pytest.mark.parametrize("chart", APPS)
def test_the_budget_selects_serving_pods_only(chart):
    """Hook and test pods share name/instance labels, not the component: a drain never waits on them."""
    manifests = render(chart)
    (pdb,) = kinds(manifests, "PodDisruptionBudget")
    pod_labels = [m["metadata"].get("labels") for m in manifests if m["kind"] == "Pod"]
    pod_labels += [m["spec"]["template"]["metadata"].get("labels") for m in manifests if m["kind"] == "Job"]
    assert pod_labels and not [labels for labels in pod_labels if mp.selects(pdb["spec"]["selector"], labels)]


@pytest.mark.parametrize("chart", APPS)
def test_one_replica_or_disabled_renders_no_budget(chart):
    assert not kinds(render(chart, "replicaCount=1"), "PodDisruptionBudget")
    manifests = render(chart, "podDisruptionBudget.enabled=false")
    assert not kinds(manifests, "PodDisruptionBudget")
    assert "no PodDisruptionBudget selects its pods" in mp.pdb_problems(manifests)[0]


def test_min_available_instead_and_a_blocking_budget_is_caught():
    manifests = render("todo-frontend", "podDisruptionBudget.minAvailable=2")
    (pdb,) = kinds(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2 and "maxUnavailable" not in pdb["spec"]
    (problem,) = mp.pdb_problems(manifests)
    assert "(minAvailable 2, 2 replicas): allows 0 evictions with every replica healthy, required at least 1" in problem
    (pdb,) = kinds(render("todo-backend", "podDisruptionBudget.maxUnavailable=50%"), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "50%"
    (pdb,) = kinds(render("todo-backend", "podDisruptionBudget.maxUnavailable=0"), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 0  # kept as set (the gate reports it), never silently 1


@pytest.mark.parametrize("chart", APPS)
def test_values_schema_rejects_a_typo_in_the_budget(chart):
    argv = [HELM, *helm_mod.template_argv(chart, REPO / "charts" / chart), "--namespace", "todo"] + ["--set", "podDisruptionBudget.maxUnavialable=1"]
    result = commands.run(argv, check=False)
    assert not result.ok and "maxUnavialable" in result.stderr


@pytest.mark.parametrize("chart", APPS)
def test_lint_strict_passes_with_the_budget(chart):
    result = commands.run([HELM, *helm_mod.lint_argv(REPO / "charts" / chart, kube_version="1.34")], check=False)
    assert result.ok, result.tail()
