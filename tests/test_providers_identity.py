"""The cluster behind an existing context, recognised by what it is (its API server's address
and its nodes), not by the context's name; and the refusal, before any build, of a cluster
nothing here can load images into when no registry is configured. No cluster needed."""

import pytest

from shipcheck import providers
from shipcheck.providers import Cluster, Identity

HERE = {"127.0.0.1", "localhost", "192.0.2.2", "::1"}


def is_local(address: str) -> bool:
    return address in HERE


def node(name, labels=None, provider_id="", addresses=()):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"providerID": provider_id} if provider_id else {},
            "status": {"addresses": [{"type": "InternalIP", "address": a} for a in addresses]}}


def ident(server, nodes, local_runtime=True, hostname="vm"):
    return providers.identify(server, nodes, is_local=is_local, hostname=hostname, local_runtime=local_runtime)


@pytest.mark.parametrize("server", ["https://203.0.113.7:6443", "https://k8s.example.com", "https://10.9.8.7"])
def test_a_server_elsewhere_is_remote_whatever_its_nodes_are_called(server):
    found = ident(server, [node("kind-control-plane"), node("minikube")])
    assert found.kind == "remote" and found.loader is None and not found.on_this_machine
    assert "not on this machine" in found.evidence


def test_the_local_cluster_by_its_node_at_this_hosts_address():
    found = ident("https://localhost:6443", [node("192.0.2.2", addresses=["192.0.2.2"])])
    assert (found.kind, found.loader) == ("local", "local")


def test_a_node_named_after_this_host_is_the_local_cluster_only_with_its_runtime():
    assert ident("https://127.0.0.1:6443", [node("vm")]).loader == "local"
    other = ident("https://127.0.0.1:6443", [node("vm")], local_runtime=False)
    assert other.kind == "this-machine" and other.loader is None and "not the local cluster's runtime" in other.evidence


def test_kind_by_provider_id_names_its_cluster():
    found = ident("https://127.0.0.1:41234", [node("dev-control-plane", provider_id="kind://docker/dev/dev-control-plane",
                                                   addresses=["172.18.0.2"])])
    assert (found.kind, found.name, found.loader) == ("kind", "dev", "kind")


def test_kind_by_node_name_when_no_provider_id():
    assert (ident("https://127.0.0.1:41234", [node("shipcheck-control-plane")]).name) == "shipcheck"


def test_minikube_by_label_or_name():
    assert ident("https://192.0.2.2:8443", [node("m01", labels={"minikube.k8s.io/name": "dev"})]).name == "dev"
    found = ident("https://127.0.0.1:8443", [node("minikube")])
    assert (found.kind, found.name) == ("minikube", "minikube")


def test_k3d_by_node_name():
    found = ident("https://0.0.0.0:6550".replace("0.0.0.0", "127.0.0.1"), [node("k3d-team-server-0")])
    assert (found.kind, found.name) == ("k3d", "team")


def test_a_cluster_here_of_no_known_kind_has_no_loader():
    found = ident("https://127.0.0.1:6443", [node("worker-a", addresses=["10.0.0.5"])])
    assert found.kind == "this-machine" and found.loader is None and "worker-a" in found.evidence


def test_nodes_unreadable_judged_by_the_server_alone():
    found = ident("https://127.0.0.1:6443", None)
    assert found.kind == "this-machine" and found.loader is None and "list nodes" in found.evidence


def test_server_host():
    assert providers.server_host("https://192.0.2.2:6443/base") == "192.0.2.2"
    assert providers.server_host("https://[::1]:6443") == "::1"
    assert providers.server_host("k8s.example.com:443") == "k8s.example.com"


def test_is_local_address_on_this_machine():
    assert providers.is_local_address("127.0.0.1")
    assert not providers.is_local_address("203.0.113.254")  # TEST-NET-3: never this machine's
    assert not providers.is_local_address("no-such-host.invalid")


# --- refusing before the build ------------------------------------------------------------------
def remote_cluster():
    found = Identity("remote", None, "https://203.0.113.7:6443", "API server 203.0.113.7 is not on this machine")
    return Cluster("existing", "/tmp/kubeconfig", "prod", found.loader, identity=found)


def test_a_remote_cluster_without_a_registry_is_refused_with_the_fix():
    problem = providers.delivery_problem(remote_cluster(), registry="")
    assert "cluster prod: a cluster on another machine (API server 203.0.113.7 is not on this machine)" in problem
    assert "Fix: configure a registry" in problem and "--registry" in problem and "REGISTRY_USERNAME" in problem


def test_a_remote_cluster_with_a_registry_is_fine():
    assert providers.delivery_problem(remote_cluster(), registry="registry.example.com/team") is None


def test_a_cluster_with_a_loader_needs_no_registry():
    assert providers.delivery_problem(Cluster("local", "/k", None, "local"), registry="") is None


def test_the_loader_targets_the_identified_cluster_not_the_context_name(monkeypatch):
    ran = []
    monkeypatch.setattr(providers.commands, "run", lambda argv, **kw: ran.append(argv) or
                        type("R", (), {"duration_s": 1.0})())
    Cluster("existing", None, "my-own-name", "kind", loader_target="dev").load_image("app:v1")
    assert ran[0][-2:] == ["--name", "dev"]
