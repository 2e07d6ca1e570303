"""The example CI job for users (examples/github-actions-kind.yml) passes actionlint and
runs the pipeline the way the README says."""

import yaml

from shipcheck import commands, tools


def test_example_github_actions_job_passes_actionlint(repo):
    result = commands.run([tools.binary("actionlint"), str(repo / "examples" / "github-actions-kind.yml")],
                          check=False, timeout_s=60)
    assert result.ok, f"actionlint: {result.stdout}{result.stderr}"


def test_example_job_runs_the_stages_on_the_kind_cluster(repo):
    job = yaml.safe_load((repo / "examples" / "github-actions-kind.yml").read_text())["jobs"]["pipeline"]
    runs = " ".join(step.get("run", "") for step in job["steps"])
    kind = next(step for step in job["steps"] if step.get("uses", "").startswith("helm/kind-action"))
    assert "pytest stages/ --cluster existing" in runs
    assert kind["with"]["cluster_name"] == "shipcheck" and kind["with"]["node_image"].startswith("kindest/node:v1.34")
