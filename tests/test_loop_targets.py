"""What the request loop of stage 4 hits across a real upgrade: the entry's health path and
its GET checks that need no captured value (never a browser step), and every other app's
health path. Pure: the app's shipcheck.yaml, no cluster."""

from types import SimpleNamespace

from shipcheck import config, deploy_fixtures


def test_loop_targets_take_get_checks_of_the_entry_and_skip_browser_steps(repo):
    cfg = config.load(repo / "shipcheck.yaml")
    plan = SimpleNamespace(releases=[SimpleNamespace(component=c) for c in cfg.components.values() if c.chart])
    targets = [(component.name, path) for component, path in deploy_fixtures.loop_targets(cfg, plan)]
    assert targets[0] == ("todo-frontend", "/api/health")
    assert ("todo-backend", "/health") in targets
    assert all(path and not path.startswith("/api/demo") for _, path in targets)  # no step needing a capture
    assert len(targets) == len(set(targets))
