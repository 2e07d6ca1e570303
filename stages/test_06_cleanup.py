"""Stage 6 (opt-in, --cleanup): uninstall the releases and delete the namespace, and show
that nothing is left behind."""

import pytest

from shipcheck.waiting import wait_until

pytestmark = pytest.mark.order(6)


def test_releases_uninstalled_and_namespace_deleted(cfg, helm, kube):
    from kubernetes.client.exceptions import ApiException

    charted = [c for c in cfg.components.values() if c.chart]
    for component in reversed(charted):  # frontend first, database last
        if helm.history(component.release):
            result = helm.uninstall(component.release, cfg.timeouts_s["deploy"])
            assert result.ok, f"helm uninstall {component.release} failed: {result.tail()}"
    left = helm.releases()
    assert not left, f"releases left in {cfg.namespace} after uninstall: {left}"
    try:
        kube.core.delete_namespace(cfg.namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise

    def namespace_exists() -> bool:
        try:
            kube.core.read_namespace(cfg.namespace)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    gone = wait_until(f"namespace {cfg.namespace} to be deleted", namespace_exists, done=lambda exists: not exists,
                      timeout_s=cfg.timeouts_s["deploy"], interval_s=1)
    assert gone, (f"namespace {cfg.namespace} still exists after {gone.elapsed_s:.0f} s ({gone.reason}). Fix: look "
                  f"for finalizers: kubectl get namespace {cfg.namespace} -o yaml")
