"""Cluster providers: the choice, the argv, the kube flags and `connect`, without a cluster (providers.py)."""

import pytest
import yaml

from shipcheck import commands, providers
from shipcheck.providers import Cluster


# --- choose ----------------------------------------------------------------------------------
@pytest.mark.parametrize("requested", ["existing", "minikube", "kind", "k3d", "local"])
def test_an_explicit_provider_is_used_as_asked(requested):
    assert providers.choose(requested, context_reachable=True, installed=["kind"]) == requested


@pytest.mark.parametrize("reachable, installed, chosen", [
    (True, ["minikube", "kind"], "existing"),
    (False, ["k3d", "kind", "minikube"], "minikube"),
    (False, ["k3d", "kind"], "kind"),
    (False, ["k3d"], "k3d"),
    (False, [], "local"),
])
def test_auto_resolves_in_the_documented_order(reachable, installed, chosen):
    assert providers.choose("auto", reachable, installed) == chosen


@pytest.mark.parametrize("context, loader", [("minikube", "minikube"), ("kind-shipcheck", "kind"), ("kind-kind", "kind"),
                                             ("k3d-dev", "k3d"), ("gke_proj_zone_c", None), ("", None),
                                             ("minikube-dev", None)])
def test_the_loader_for_an_existing_context_follows_its_name(context, loader):
    assert providers.loader_for_context(context) == loader


# --- argv ---------------------------------------------------------------------------------------
def test_load_argv_per_provider():
    ref = "todo-backend:v1.0.0"
    assert providers.load_argv("minikube", ref) == ["minikube", "image", "load", ref]
    assert providers.load_argv("kind", ref) == ["kind", "load", "docker-image", ref, "--name", "shipcheck"]
    assert providers.load_argv("kind", ref, cluster="dev") == ["kind", "load", "docker-image", ref, "--name", "dev"]
    assert providers.load_argv("k3d", ref) == ["k3d", "image", "import", ref, "-c", "shipcheck"]
    bash, script, verb, image = providers.load_argv("local", ref)
    assert (bash, verb, image) == ("bash", "load", ref) and script.endswith("/setup/local-cluster.sh")


def test_start_argv_reproduces_the_seed_cluster():
    assert providers.start_argv("minikube") == ["minikube", "start", "--cpus=4", "--memory=8192", "--driver=docker"]
    assert providers.start_argv("k3d")[:4] == ["k3d", "cluster", "create", "shipcheck"]
    assert providers.start_argv("local")[-1] == "start"


def test_kind_is_made_and_unmade_by_its_set_up_script():
    """Plain `kind create cluster` would pull kindest/node: the script pins the node image."""
    bash, script, verb = providers.start_argv("kind")
    assert (bash, verb) == ("bash", "create") and script.endswith("/setup/kind.sh")
    assert providers.stop_argv("kind") == ["bash", script, "delete"]
    assert providers.stop_argv("local")[-1] == "stop" and providers.stop_argv("local")[1].endswith("/local-cluster.sh")
    with pytest.raises(ValueError, match="provider 'minikube' cannot be stopped by shipcheck"):
        providers.stop_argv("minikube")


def test_the_kind_cluster_config_is_one_ipv4_node():
    config = yaml.safe_load((providers.SETUP_DIR / "kind-node" / "cluster.yaml").read_text())
    assert config["kind"] == "Cluster" and config["networking"] == {"ipFamily": "ipv4"}
    assert [node["role"] for node in config["nodes"]] == ["control-plane"]


def test_the_kind_kubeconfig_is_kept_apart_in_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIPCHECK_CACHE", str(tmp_path))
    assert providers.kind_kubeconfig() == str(tmp_path / "kind" / "kubeconfig")


def _tool(directory, name):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("#!/bin/sh\n")
    (directory / name).chmod(0o755)


def test_a_kind_set_up_built_does_not_count_as_installed_for_auto(tmp_path):
    ours, users = tmp_path / "cache" / "bin", tmp_path / "usr-bin"
    _tool(ours, "kind")
    assert providers.installed_tools(path=f"{ours}", tools_dir=ours) == []
    _tool(users, "kind")
    _tool(users, "k3d")
    assert providers.installed_tools(path=f"{ours}:{users}", tools_dir=ours) == ["kind", "k3d"]


def test_tool_argv_finds_kind_in_the_tools_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    argv = ["kind", "load", "docker-image", "x:v1"]
    assert providers.tool_argv(argv, tools_dir=tmp_path) == argv  # not built: left as it is
    _tool(tmp_path, "kind")
    assert providers.tool_argv(argv, tools_dir=tmp_path) == [str(tmp_path / "kind"), *argv[1:]]


@pytest.mark.parametrize("fn", [providers.load_argv, providers.start_argv])
@pytest.mark.parametrize("provider", ["existing", "auto", "gke"])
def test_a_provider_without_the_ability_is_named(fn, provider):
    args = (provider, "x:v1") if fn is providers.load_argv else (provider,)
    with pytest.raises(ValueError, match=f"provider '{provider}' cannot"):
        fn(*args)


# --- Cluster ------------------------------------------------------------------------------------
def test_kube_and_helm_flags_are_added_in_one_place():
    full = Cluster("local", "/var/run/kubernetes/admin.kubeconfig", "ctx", "local")
    assert full.kube_args() == ["--kubeconfig", "/var/run/kubernetes/admin.kubeconfig", "--context", "ctx"]
    assert full.helm_args() == ["--kubeconfig", "/var/run/kubernetes/admin.kubeconfig", "--kube-context", "ctx"]
    bare = Cluster("existing", None, None, None)
    assert bare.kube_args() == [] and bare.helm_args() == []
    assert repr(full) == "<Cluster local context=ctx kubeconfig=/var/run/kubernetes/admin.kubeconfig>"


class Recorder:
    """Stands in for commands.run: records argv, returns a successful result."""

    def __init__(self):
        self.argvs = []

    def __call__(self, argv, **kwargs):
        self.argvs.append(list(argv))
        return commands.CommandResult(list(argv), 0, "", "", 1.5)


@pytest.fixture
def ran(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIPCHECK_CACHE", str(tmp_path / "cache"))  # no kind built there
    recorder = Recorder()
    monkeypatch.setattr(commands, "run", recorder)
    return recorder.argvs


def test_load_image_runs_the_loader(ran):
    assert Cluster("kind", None, "kind-shipcheck", "kind").load_image("todo-web:v1") == 1.5
    assert ran == [["kind", "load", "docker-image", "todo-web:v1", "--name", "shipcheck"]]


def test_load_image_without_a_loader_does_nothing(ran):
    assert Cluster("existing", None, "gke_x", None).load_image("todo-web:v1") == 0.0 and ran == []


@pytest.mark.parametrize("context, expected", [
    ("kind-kind", ["kind", "load", "docker-image", "todo-web:v1", "--name", "kind"]),
    ("k3d-dev", ["k3d", "image", "import", "todo-web:v1", "-c", "dev"]),
])
def test_an_existing_context_loads_into_its_own_cluster(ran, context, expected):
    Cluster("existing", None, context, providers.loader_for_context(context)).load_image("todo-web:v1")
    assert ran == [expected]


# --- connect ---------------------------------------------------------------------------------------
@pytest.fixture
def world(monkeypatch, ran):
    """A fake machine: which contexts answer, which tools are installed, the current context."""
    state = {"reachable": set(), "tools": [], "current": None}
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr(providers, "context_reachable",
                        lambda kubeconfig=None, context=None: (kubeconfig, context) in state["reachable"])
    monkeypatch.setattr(providers, "current_context", lambda kubeconfig=None: state["current"])
    monkeypatch.setattr(providers, "installed_tools", lambda: list(state["tools"]))
    # What the cluster behind a context is (registry helper, issue 14): here as its name says.
    monkeypatch.setattr(providers, "identify_context", lambda kubeconfig, context: providers.Identity(
        providers.loader_for_context(context or "") or "remote", None, "https://fake", "faked by the test"))
    monkeypatch.setattr(providers.shutil, "which", lambda tool: f"/usr/bin/{tool}" if tool in state["tools"] else None)
    state["ran"] = ran
    return state


def test_auto_uses_a_reachable_current_context(world):
    world.update(reachable={(None, None)}, current="kind-shipcheck", tools=["kind"])
    cluster = providers.connect("auto")
    assert (cluster.provider, cluster.context, cluster.kubeconfig, cluster.loader) == (
        "existing", "kind-shipcheck", None, "kind")
    assert world["ran"] == []


def test_kubeconfig_from_the_environment_is_used(world, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/tmp/kc")
    world.update(reachable={("/tmp/kc", None)}, current="gke_x")
    cluster = providers.connect("existing")
    assert (cluster.kubeconfig, cluster.context, cluster.loader) == ("/tmp/kc", "gke_x", None)


def test_an_unreachable_existing_context_says_what_to_do(world):
    world.update(current="minikube")
    with pytest.raises(RuntimeError, match=r"the current kubeconfig context 'minikube' does not answer; start the "
                                           r"cluster, or choose a provider with --cluster"):
        providers.connect("existing")


def test_auto_starts_the_first_installed_tool_when_nothing_answers(world):
    world.update(tools=["kind"])
    cluster = providers.connect("auto")
    assert (cluster.provider, cluster.context, cluster.loader) == ("kind", "kind-shipcheck", "kind")
    assert cluster.kubeconfig == providers.kind_kubeconfig()
    assert world["ran"] == [providers.start_argv("kind")]


def test_kind_is_made_by_set_up_even_when_not_installed(world):
    cluster = providers.connect("kind")
    assert (cluster.provider, cluster.kubeconfig, cluster.context) == ("kind", providers.kind_kubeconfig(), "kind-shipcheck")
    assert world["ran"] == [providers.start_argv("kind")]


def test_a_kind_cluster_that_answers_is_reused(world):
    world.update(reachable={(providers.kind_kubeconfig(), "kind-shipcheck")})
    assert providers.connect("kind").provider == "kind" and world["ran"] == []


def test_stop_runs_the_set_up_script(ran):
    providers.stop("kind")
    assert ran == [providers.stop_argv("kind")]


def test_a_running_tool_cluster_is_not_started_again(world):
    world.update(tools=["minikube"], reachable={(None, "minikube")})
    cluster = providers.connect("minikube")
    assert (cluster.provider, cluster.context) == ("minikube", "minikube") and world["ran"] == []


def test_a_requested_tool_that_is_not_installed_is_named(world):
    with pytest.raises(RuntimeError, match="--cluster k3d: `k3d` is not installed"):
        providers.connect("k3d")
    assert world["ran"] == []


def test_local_starts_the_upstream_cluster_when_it_does_not_answer(world):
    cluster = providers.connect("auto")
    assert (cluster.provider, cluster.kubeconfig, cluster.context, cluster.loader) == (
        "local", providers.LOCAL_KUBECONFIG, None, "local")
    assert world["ran"] == [providers.start_argv("local")]


def test_local_that_answers_is_used_as_it_is(world):
    world.update(reachable={(providers.LOCAL_KUBECONFIG, None)})
    assert providers.connect("local").provider == "local" and world["ran"] == []


def test_an_unknown_provider_is_named(world):
    with pytest.raises(RuntimeError, match="unknown cluster provider 'gke'"):
        providers.connect("gke")


# --- kubeconfig facts, through the real client --------------------------------------------------------------
def test_current_context_and_reachability_of_a_kubeconfig(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-dev",
        "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "dev", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "kind-dev", "context": {"cluster": "dev", "user": "dev"}}],
    }))
    assert providers.current_context(str(kubeconfig)) == "kind-dev"
    assert providers.context_reachable(str(kubeconfig)) is False  # nothing listens on port 1
    assert providers.current_context(str(tmp_path / "missing")) is None
    assert providers.context_reachable(str(tmp_path / "missing")) is False
