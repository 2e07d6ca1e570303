"""Cluster providers: where the pipeline deploys, and how a locally built image gets there.

existing  the current kubeconfig context, as it is
minikube  `minikube start --cpus=4 --memory=8192 --driver=docker` (the seed's cluster)
kind      a kind cluster named "shipcheck", made by setup/kind.sh (which builds kind and,
          where kind's own node image cannot be pulled, a node image of ours), with its
          kubeconfig kept apart in <cache>/kind/kubeconfig
k3d       a k3d cluster named "shipcheck"
local     upstream Kubernetes built from source and run by setup/local-cluster.sh
auto      a reachable current context first, then a tool the user installed on PATH, then local

Images are never pulled: each provider loads the image built by stage 1 into its nodes.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import commands, progress, tools

SETUP_DIR = Path(__file__).resolve().parent.parent / "setup"
LOCAL_KUBECONFIG = "/var/run/kubernetes/admin.kubeconfig"
CLUSTER_NAME = "shipcheck"
TOOLS = ("minikube", "kind", "k3d")
# Scripts that make (and unmake) a cluster themselves, building what they need.
SCRIPTS = {"local": SETUP_DIR / "local-cluster.sh", "kind": SETUP_DIR / "kind.sh"}


# --- pure --------------------------------------------------------------------------------
def choose(requested: str, context_reachable: bool, installed: list[str]) -> str:
    """The provider to use for `requested` (auto resolves in the documented order)."""
    if requested != "auto":
        return requested
    if context_reachable:
        return "existing"
    for tool in TOOLS:
        if tool in installed:
            return tool
    return "local"


def loader_for_context(context: str) -> str | None:
    """Which tool loads images into an existing context, judged by its conventional name."""
    if context == "minikube":
        return "minikube"
    if context.startswith("kind-"):
        return "kind"
    if context.startswith("k3d-"):
        return "k3d"
    return None


def cluster_name(tool: str, context: str | None) -> str:
    """The cluster a loader must target: the one the context names (kind-X, k3d-X, a
    minikube profile), else ours."""
    for prefix in ("kind-", "k3d-"):
        if tool == prefix[:-1] and context and context.startswith(prefix):
            return context[len(prefix):]
    if tool == "minikube" and context:
        return context
    return CLUSTER_NAME


def load_argv(provider: str, ref: str, cluster: str = CLUSTER_NAME) -> list[str]:
    if provider == "minikube":
        return ["minikube", "image", "load", ref] + (["-p", cluster] if cluster not in (CLUSTER_NAME, "minikube") else [])
    if provider == "kind":
        return ["kind", "load", "docker-image", ref, "--name", cluster]
    if provider == "k3d":
        return ["k3d", "image", "import", ref, "-c", cluster]
    if provider == "local":
        return ["bash", str(SETUP_DIR / "local-cluster.sh"), "load", ref]
    raise ValueError(f"provider {provider!r} cannot load images")


def inspect_image_argv(provider: str, ref: str, cluster: str = CLUSTER_NAME) -> list[str] | None:
    """crictl's view of `ref` on the node (JSON), for providers whose node we can ask."""
    if provider == "local":
        return ["bash", str(SETUP_DIR / "local-cluster.sh"), "inspect-image", ref]
    if provider == "kind":
        return ["docker", "exec", f"{cluster}-control-plane", "crictl", "inspecti", "-o", "json", ref]
    return None


def image_identities(crictl_json: str) -> set[str]:
    """The digests a pod's imageID may show for one image: its ID (config digest) and its repo
    digests (manifest digests: kind imports with them, a registry pull records them)."""
    import json

    status = (json.loads(crictl_json or "{}") or {}).get("status") or {}
    return {d.rsplit("@", 1)[-1] for d in [status.get("id"), *(status.get("repoDigests") or [])] if d}


def start_argv(provider: str) -> list[str]:
    if provider == "minikube":
        return ["minikube", "start", "--cpus=4", "--memory=8192", "--driver=docker"]
    if provider == "kind":
        # Not `kind create cluster` alone: that pulls kindest/node. The script builds what is
        # missing, pins the node image, and uses setup/kind-node/cluster.yaml (IPv4 only).
        return ["bash", str(SCRIPTS["kind"]), "create"]
    if provider == "k3d":
        return ["k3d", "cluster", "create", CLUSTER_NAME, "--wait"]
    if provider == "local":
        return ["bash", str(SCRIPTS["local"]), "start"]
    raise ValueError(f"provider {provider!r} cannot be started")


def stop_argv(provider: str) -> list[str]:
    """Delete the kind cluster, or stop the local one (the clusters set-up makes)."""
    if provider == "kind":
        return ["bash", str(SCRIPTS["kind"]), "delete"]
    if provider == "local":
        return ["bash", str(SCRIPTS["local"]), "stop"]
    raise ValueError(f"provider {provider!r} cannot be stopped by shipcheck")


def kind_kubeconfig(cache: Path | None = None) -> str:
    """Where setup/kind.sh keeps the kind cluster's kubeconfig: not ~/.kube/config, so the
    cluster never becomes other tools' current context (nor `auto`'s "existing")."""
    return str((cache or tools.cache_dir()) / "kind" / "kubeconfig")


def tool_argv(argv: list[str], tools_dir: Path | None = None) -> list[str]:
    """argv with its program found on PATH, else in set-up's tools dir (where setup/kind.sh
    puts kind), else left as it is."""
    program = argv[0]
    if shutil.which(program):
        return argv
    cached = (tools_dir or tools.cache_bin_dir()) / program
    return [str(cached), *argv[1:]] if cached.is_file() else argv


# --- the cluster in use ----------------------------------------------------------------------
@dataclass
class Cluster:
    provider: str
    kubeconfig: str | None  # None: the default kubeconfig
    context: str | None
    loader: str | None  # provider whose tool loads images, or None (images must be reachable)
    loader_target: str | None = None  # the cluster the loader targets, when known (else from the context)
    identity: "Identity | None" = None  # what the cluster behind an existing context is (identify)

    def __repr__(self) -> str:
        return f"<Cluster {self.provider} context={self.context} kubeconfig={self.kubeconfig}>"

    def kube_args(self, context_flag: str = "--context") -> list[str]:
        """--kubeconfig/--context flags for kubectl, added in one place."""
        args = []
        if self.kubeconfig:
            args += ["--kubeconfig", self.kubeconfig]
        if self.context:
            args += [context_flag, self.context]
        return args

    def helm_args(self) -> list[str]:
        """The same for helm, which names the context flag differently."""
        return self.kube_args("--kube-context")

    def node_image_identities(self, ref: str) -> set[str]:
        """The digests the node knows `ref` by (empty when its node cannot be asked)."""
        argv = inspect_image_argv(self.loader or "", ref, self.loader_target or cluster_name(self.loader or "", self.context))
        if argv is None:
            return set()
        result = commands.run(tool_argv(argv), check=False, timeout_s=60)
        return image_identities(result.stdout) if result.ok else set()

    def load_image(self, ref: str) -> float:
        """Make a locally built image visible to the cluster's nodes; returns seconds taken."""
        if self.loader is None:
            progress.say(f"{ref}: context {self.context} has no known image loader; the cluster must reach the image")
            return 0.0
        progress.say(f"loading {ref} into the {self.provider} cluster")
        result = commands.run(tool_argv(load_argv(self.loader, ref, self.loader_target or cluster_name(self.loader, self.context))),
                              timeout_s=600, what=f"loading {ref}")
        return result.duration_s


def current_context(kubeconfig: str | None = None) -> str | None:
    from kubernetes import config as kconfig

    try:
        _, active = kconfig.list_kube_config_contexts(config_file=kubeconfig)
        return active["name"]
    except Exception:
        return None


def context_reachable(kubeconfig: str | None = None, context: str | None = None) -> bool:
    from kubernetes import client, config as kconfig

    try:
        api = kconfig.new_client_from_config(config_file=kubeconfig, context=context)
        client.VersionApi(api).get_code(_request_timeout=5)
        return True
    except Exception:
        return False


def installed_tools(path: str | None = None, tools_dir: Path | None = None) -> list[str]:
    """Cluster tools the user installed: on PATH, outside set-up's tools dir. The kind that
    setup/kind.sh builds there serves `--cluster kind` only; having built it must not turn
    `auto` away from the local cluster on this machine."""
    ours = os.path.realpath(tools_dir or tools.cache_bin_dir())
    dirs = [d for d in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep)
            if d and os.path.realpath(d) != ours]
    return [tool for tool in TOOLS if shutil.which(tool, path=os.pathsep.join(dirs))]


def stop(provider: str) -> None:
    """Delete the kind cluster or stop the local one, on request."""
    commands.run(stop_argv(provider), timeout_s=600, what=f"stopping the {provider} cluster",
                 on_line=lambda line: progress.say(f"[{provider}] {line}"))


def connect(requested: str) -> Cluster:
    """Resolve the provider, start its cluster when needed, and describe it."""
    env_kubeconfig = os.environ.get("KUBECONFIG")
    reachable = requested in ("auto", "existing") and context_reachable(env_kubeconfig)
    provider = choose(requested, reachable, installed_tools())
    progress.say(f"cluster provider: {provider} (requested {requested})")
    if provider == "existing":
        context = current_context(env_kubeconfig)
        if not reachable and not context_reachable(env_kubeconfig):
            raise RuntimeError(f"the current kubeconfig context {context!r} does not answer; start the cluster, "
                               "or choose a provider with --cluster (minikube, kind, k3d, local)")
        identity = identify_context(env_kubeconfig, context)
        progress.say(f"context {context}: {identity}")
        return Cluster("existing", env_kubeconfig, context, identity.loader, loader_target=identity.name,
                       identity=identity)
    if provider == "local":
        if not context_reachable(LOCAL_KUBECONFIG):
            commands.run(start_argv("local"), timeout_s=5400, what="starting the local cluster",
                         on_line=lambda line: progress.say(f"[local cluster] {line}"))
        return Cluster("local", LOCAL_KUBECONFIG, None, "local")
    if provider == "kind":
        kubeconfig, context = kind_kubeconfig(), f"kind-{CLUSTER_NAME}"
        if not context_reachable(kubeconfig, context):
            commands.run(start_argv("kind"), timeout_s=5400, what="creating the kind cluster",
                         on_line=lambda line: progress.say(f"[kind] {line}"))
        return Cluster("kind", kubeconfig, context, "kind")
    if provider not in TOOLS:
        raise RuntimeError(f"unknown cluster provider {provider!r}; use auto, existing, minikube, kind, k3d or local")
    if not shutil.which(provider):
        raise RuntimeError(f"--cluster {provider}: `{provider}` is not installed")
    context = {"minikube": "minikube", "k3d": f"k3d-{CLUSTER_NAME}"}[provider]
    if not context_reachable(env_kubeconfig, context):
        commands.run(start_argv(provider), timeout_s=900, what=f"starting {provider}",
                     on_line=lambda line: progress.say(f"[{provider}] {line}"))
    return Cluster(provider, env_kubeconfig, context, provider)


# --- what is behind an existing context (issue 14) --------------------------------------------
# A context's name says little (a context named kind-dev may point at a cloud cluster), so
# the cluster is recognised by what it is: where its API server is, and its nodes' names,
# provider IDs and labels. A cluster on this machine made by a known tool gets that tool's
# loader; any other cluster (on another machine, or one nothing here can load into) gets
# images only through a registry.
@dataclass(frozen=True)
class Identity:
    kind: str  # local | kind | minikube | k3d | remote | this-machine (unknown) | unknown
    name: str | None  # the kind/k3d cluster or minikube profile, for the loader
    server: str
    evidence: str

    @property
    def loader(self) -> str | None:
        return self.kind if self.kind in ("local", "kind", "minikube", "k3d") else None

    @property
    def on_this_machine(self) -> bool:
        return self.kind not in ("remote", "unknown")

    def __str__(self) -> str:
        what = {"remote": "a cluster on another machine", "this-machine": "a cluster on this machine of no known kind",
                "unknown": "a cluster of unknown kind and place", "local": "the local cluster of setup/local-cluster.sh"}
        return f"{what.get(self.kind, f'{self.kind} cluster {self.name}')} ({self.evidence})"


def server_host(server: str) -> str:
    """'https://192.0.2.2:6443/x' -> '192.0.2.2'; '[::1]:6443' -> '::1'."""
    from urllib.parse import urlsplit

    parts = urlsplit(server if "//" in server else f"https://{server}")
    return parts.hostname or ""


def node_facts(node: dict) -> tuple[str, dict, str, list[str]]:
    """(name, labels, providerID, addresses) of a node in the API's JSON form."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    addresses = [a.get("address", "") for a in status.get("addresses") or []]
    return meta.get("name", ""), meta.get("labels") or {}, spec.get("providerID") or "", addresses


def identify(server: str, nodes: list[dict] | None, *, is_local: Callable[[str], bool], hostname: str,
             local_runtime: bool) -> Identity:
    """What cluster this is, from its API server's address and its nodes (None: the nodes
    could not be read). `is_local(address)`: the address is this machine's;
    `local_runtime`: the local cluster's containerd runs here (setup/local-cluster.sh)."""
    host = server_host(server)
    if not host or not is_local(host):
        return Identity("remote", None, server, f"API server {host or server} is not on this machine")
    where = f"API server {host} is on this machine"
    if not nodes:
        return Identity("this-machine", None, server, where + ("; its nodes could not be read (RBAC: list nodes)"
                                                               if nodes is None else "; it has no nodes"))
    for node in nodes:
        name, labels, provider_id, addresses = node_facts(node)
        if provider_id.startswith("kind://"):  # kind://docker/<cluster>/<node>
            cluster = provider_id.split("/")[-2]
            return Identity("kind", cluster, server, f"{where}; node {name} has providerID {provider_id}")
        if name.endswith("-control-plane") and len(name) > len("-control-plane"):
            return Identity("kind", name[: -len("-control-plane")], server, f"{where}; node {name} is a kind node")
        if labels.get("minikube.k8s.io/name") or name == "minikube":
            profile = labels.get("minikube.k8s.io/name") or name
            return Identity("minikube", profile, server, f"{where}; node {name} is minikube profile {profile}")
        match = re.match(r"^k3d-(.+)-(server|agent)-\d+$", name)
        if match:
            return Identity("k3d", match.group(1), server, f"{where}; node {name} is a k3d node")
        if name == hostname or any(is_local(a) for a in [*addresses, name] if a):
            if local_runtime:
                return Identity("local", None, server, f"{where}; node {name} is this host and the local cluster's "
                                                       "containerd runs here")
            return Identity("this-machine", None, server, f"{where}; node {name} is this host, but not the local "
                                                          "cluster's runtime (no known way to load images)")
    names = ", ".join(node_facts(n)[0] for n in nodes)
    return Identity("this-machine", None, server, f"{where}; nodes {names} are of no known kind")


def is_local_address(address: str) -> bool:
    """An address this machine owns (loopback included): one it can bind a socket to."""
    import socket

    try:
        infos = socket.getaddrinfo(address, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    for family, _, _, _, sockaddr in infos:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.bind((sockaddr[0], 0))
                return True
        except OSError:
            continue
    return False


LOCAL_RUNTIME_SOCKET = Path("/run/shipcheck-containerd/containerd.sock")


def identify_context(kubeconfig: str | None, context: str | None) -> Identity:
    """Read the context's server and nodes, and identify the cluster."""
    import socket

    from kubernetes import client, config as kconfig

    api = kconfig.new_client_from_config(config_file=kubeconfig, context=context)
    server = api.configuration.host
    try:
        nodes = api.sanitize_for_serialization(client.CoreV1Api(api).list_node(_request_timeout=10).items)
    except Exception:  # forbidden (least privilege) or unreadable: judge by the server alone
        nodes = None
    found = identify(server, nodes, is_local=is_local_address, hostname=socket.gethostname(),
                     local_runtime=LOCAL_RUNTIME_SOCKET.is_socket())
    by_name = loader_for_context(context or "")
    if found.kind == "this-machine" and nodes is None and by_name:  # the last resort: the tool's naming
        return Identity(by_name, cluster_name(by_name, context), server, found.evidence + "; judged by the context's "
                        "name")
    return found


def delivery_problem(cluster: Cluster, registry: str) -> str | None:
    """A cluster that cannot receive locally built images when no registry is configured:
    said before anything is built, with the fix."""
    if registry or cluster.loader:
        return None
    what = str(cluster.identity) if cluster.identity else f"context {cluster.context}"
    return (f"cluster {cluster.context or cluster.provider}: {what}. Nothing here can load the built images into its "
            "nodes, and no registry is configured, so its pods could never pull them. Fix: configure a registry its "
            "nodes can reach: `registry: host[:port]/path` in shipcheck.yaml (or --registry / SHIPCHECK_REGISTRY), "
            "with REGISTRY_USERNAME/REGISTRY_PASSWORD (or `docker login`); stage 1 then pushes and stage 4 deploys by "
            "digest. Or pick a cluster this machine can load into with --cluster (local, kind, minikube, k3d).")
