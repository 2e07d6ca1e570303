"""The one Helm wrapper's pure parts (helm.py): argv, history decisions, manifest comparison."""

from pathlib import Path

import pytest

from shipcheck import helm


def test_values_reach_helm_in_one_order_files_then_the_suite_on_stdin():
    files = (Path("charts/x/values-small.yaml"), Path("mine.yaml"))
    assert helm.template_argv("x", Path("charts/x"), files, injected=True, kube_version="v1.34.4") == [
        "template", "x", "charts/x", "--kube-version", "v1.34.4",
        "-f", "charts/x/values-small.yaml", "-f", "mine.yaml", "-f", "-"]
    assert helm.lint_argv(Path("charts/x"), files, injected=True, kube_version="1.34")[-8:] == [
        "--kube-version", "v1.34.0", "-f", "charts/x/values-small.yaml", "-f", "mine.yaml", "-f", "-"]
    assert helm.upgrade_argv("x", Path("c"), (), 300) == ["upgrade", "--install", "x", "c", "--timeout", "300s", "-f", "-"]


@pytest.mark.parametrize("given, flag", [("1.34", "v1.34.0"), ("v1.34.4", "v1.34.4"), ("v1.34.4+k3s1", "v1.34.4"),
                                         ("1.35.0-rc.1", "v1.35.0")])
def test_kube_version_flag(given, flag):
    assert helm.kube_version_flag(given) == flag


def entry(revision, status, description=""):
    return {"revision": revision, "status": status, "description": description}


def test_the_last_good_revision_is_never_a_failed_one_marked_superseded_by_a_rollback():
    """A failed upgrade (2) rolled back (3, itself failed): helm marks 2 superseded; 1 is the good one."""
    history = [entry(1, "superseded", "Install complete"), entry(2, "superseded", 'Upgrade "todo-backend" failed: x'),
               entry(3, "failed", "Rollback to 1 failed")]
    assert helm.last_deployed_revision(history) == 1
    assert helm.recovery_action(history) == ("rollback", 1)


def test_recovery_of_pending_and_failed_releases():
    assert helm.recovery_action([]) is None
    assert helm.recovery_action([entry(1, "deployed", "Install complete")]) is None
    assert helm.recovery_action([entry(1, "pending-install")]) == ("uninstall", None)
    assert helm.recovery_action([entry(1, "failed", "Install failed")]) == ("uninstall", None)
    assert helm.recovery_action([entry(1, "superseded", "Install complete"), entry(2, "pending-upgrade")]) == (
        "rollback", 1)


def test_manifest_differences_object_by_object():
    a = {"kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    b = {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}
    assert helm.manifest_differences([a, b], [b, a]) == []
    changed = {**b, "spec": {"replicas": 3}}
    hook = {"kind": "Job", "metadata": {"name": "migrate"}}
    assert helm.manifest_differences([a, b], [a, changed, hook]) == ["Job/migrate: not in the release",
                                                                    "Deployment/web: differs"]
    assert helm.manifest_differences([a, b], [a]) == ["Deployment/web: in the release but not in the plan"]
