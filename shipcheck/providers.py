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
import shutil
from dataclasses import dataclass
from pathlib import Path

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
        argv = inspect_image_argv(self.loader or "", ref, cluster_name(self.loader or "", self.context))
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
        result = commands.run(tool_argv(load_argv(self.loader, ref, cluster_name(self.loader, self.context))),
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
        return Cluster("existing", env_kubeconfig, context, loader_for_context(context or ""))
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
