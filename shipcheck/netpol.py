"""What the namespace's NetworkPolicies admit, judged from the rendered manifests. Pure.

Kubernetes semantics (networking.k8s.io/v1), as implemented here:
- a policy applies to the pods of its own namespace that its podSelector matches
  (`podSelector: {}` = every pod);
- policyTypes, when absent, is [Ingress], plus Egress when the policy has egress rules;
- a pod selected by a policy with Ingress (Egress) in its policyTypes is isolated for
  ingress (egress): only what some rule of those policies admits gets through. Policies
  add up; none of them can take away what another admits. A pod that no such policy
  selects admits everything;
- a rule admits a connection when one of its peers (`from`/`to`) matches the other end
  and one of its ports matches the destination port. An absent or empty peer list matches
  every peer, an absent or empty port list every port; `ingress: []` (or none) admits
  nothing, `ingress: [{}]` everything;
- a peer: podSelector alone = pods of the policy's namespace; namespaceSelector alone =
  every pod of the namespaces it matches; both = those pods of those namespaces; ipBlock =
  the addresses of `cidr` minus `except`;
- a port: protocol (default TCP), `port` by number or by the name of a container port of
  the destination pod (absent = every port), `endPort` for a range.
A connection is admitted when the destination's ingress and the source's egress both admit it.

`evaluate` takes every release's manifests, the declared traffic (client component, server
component, port) and the entry component, and says which declared paths are refused,
which undeclared ones are admitted (from a pod of the namespace whose labels match no
component, and between components), whether the entry can still be reached from outside
the namespace, and which components no policy isolates. Each problem sentence names the
measured fact, the expectation and the fix.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
# Pods of any kind a policy may legitimately select (hook Jobs, helm test pods too).
TEMPLATE_KINDS = WORKLOAD_KINDS + ("Job", "CronJob", "Pod")
# The labels of a pod that belongs to no component: the live probe's "stranger" pod uses them.
STRANGER_LABELS = {"shipcheck.io/netpol-probe": "stranger"}
NAME_LABEL = "app.kubernetes.io/name"
# Where pods resolve Service names: CoreDNS as every distribution labels it.
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
DEFAULT_FIX_KEY = "networkPolicy.allowedClients"


# --- the things a policy talks about ------------------------------------------------------
@dataclass(frozen=True)
class ContainerPort:
    number: int
    name: str | None = None
    protocol: str = "TCP"


@dataclass(frozen=True, eq=False)
class Pod:
    """The pods of one template (a workload's, or a probe pod's)."""

    labels: Mapping[str, str]
    namespace: str
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[ContainerPort, ...] = ()
    ip: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        # Set on every namespace by the API server since 1.21; policies select by it.
        labels = {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}
        object.__setattr__(self, "namespace_labels", labels)


@dataclass(frozen=True)
class External:
    """A client outside the cluster (an address, or any address when None)."""

    ip: str | None = None
    name: str = "a client outside the cluster"


@dataclass(frozen=True, eq=False)
class Policy:
    name: str
    namespace: str
    spec: Mapping
    release: str = ""

    @property
    def types(self) -> tuple[str, ...]:
        declared = self.spec.get("policyTypes")
        if declared:
            return tuple(declared)
        # The API server's defaulting: Egress only when egress rules are present.
        return ("Ingress",) + (("Egress",) if self.spec.get("egress") else ())

    def selects(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and selector_matches(self.spec.get("podSelector") or {}, pod.labels)

    def rules(self, direction: str) -> list[dict]:
        return list(self.spec.get(direction) or [])

    def __repr__(self) -> str:
        return f"<Policy {self.namespace}/{self.name} {'+'.join(self.types)}>"


@dataclass(frozen=True, eq=False)
class Component:
    name: str
    release: str
    pods: tuple[Pod, ...]  # one per workload template of the release

    @property
    def ports(self) -> tuple[tuple[int, str], ...]:
        """(number, protocol) of every container port, in order."""
        return tuple(dict.fromkeys((p.number, p.protocol) for pod in self.pods for p in pod.ports))


# --- selectors, peers, ports, rules -------------------------------------------------------
def selector_matches(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels: matchLabels and every matchExpression must hold."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != _text(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key"), expr.get("operator")
        values = [_text(v) for v in expr.get("values") or []]
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:  # the API server refuses other operators; such a selector selects nothing
            ok = False
        if not ok:
            return False
    return True


def _text(value) -> str:
    if isinstance(value, bool):  # YAML `true` in a label value renders as a bool
        return "true" if value else "false"
    return str(value)


def ip_block_matches(block: Mapping, other: Pod | External, pod_cidrs: Sequence[str]) -> bool:
    """Whether `other`'s address is in cidr minus except. A client outside the cluster with no
    known address matches any block; a pod with no known address matches when the block
    (minus except) covers every pod CIDR given, or, none given, when the block is 0.0.0.0/0
    or ::/0 with no exception (pod addresses are not known before the deploy)."""
    try:
        net = ipaddress.ip_network(str(block.get("cidr")), strict=False)
        excepts = [ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []]
    except ValueError:
        return False  # the API server refuses a bad CIDR; it admits nothing
    if other.ip:
        address = ipaddress.ip_address(other.ip)
        return address in net and not any(address in e for e in excepts)
    if isinstance(other, External):
        return True
    if not pod_cidrs:
        return net.prefixlen == 0 and not excepts
    for cidr in pod_cidrs:
        pods = ipaddress.ip_network(cidr, strict=False)
        if pods.version != net.version or not pods.subnet_of(net):
            return False
        if any(e.version == pods.version and e.overlaps(pods) for e in excepts):
            return False
    return True


def peer_matches(peer: Mapping, policy: Policy, other: Pod | External, pod_cidrs: Sequence[str] = ()) -> bool:
    if "ipBlock" in peer:
        return ip_block_matches(peer["ipBlock"] or {}, other, pod_cidrs)
    if isinstance(other, External):
        return False
    pod_selector, ns_selector = peer.get("podSelector"), peer.get("namespaceSelector")
    if pod_selector is None and ns_selector is None:
        return False  # an empty peer is invalid; it admits nothing
    if ns_selector is None:
        in_namespace = other.namespace == policy.namespace
    else:
        in_namespace = selector_matches(ns_selector, other.namespace_labels)
    return in_namespace and (pod_selector is None or selector_matches(pod_selector, other.labels))


def port_matches(spec: Mapping, destination: Pod, number: int, protocol: str = "TCP") -> bool:
    """A NetworkPolicyPort against the destination port. A named port means the destination
    pod's container port of that name (and protocol)."""
    if spec.get("protocol", "TCP") != protocol:
        return False
    port = spec.get("port")
    if port is None:
        return True
    if isinstance(port, int) or str(port).isdigit():
        low = int(port)
        return low <= number <= int(spec.get("endPort") or low)
    return any(cp.name == port and cp.protocol == protocol and cp.number == number for cp in destination.ports)


def rule_admits(rule: Mapping, direction: str, policy: Policy, peer: Pod | External, destination: Pod,
                number: int, protocol: str, pod_cidrs: Sequence[str] = ()) -> bool:
    peers = rule.get("from" if direction == "ingress" else "to")
    ports = rule.get("ports")
    return ((not peers or any(peer_matches(p, policy, peer, pod_cidrs) for p in peers))
            and (not ports or any(port_matches(p, destination, number, protocol) for p in ports)))


# --- decisions -------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Decision:
    """One direction's verdict: whether the pod is isolated, by which policies, and which
    policy rule (1-based) admits, if any."""

    direction: str  # "ingress" (the destination's) or "egress" (the source's)
    admitted: bool
    isolating: tuple[Policy, ...] = ()
    policy: Policy | None = None
    rule: int | None = None

    @property
    def isolated(self) -> bool:
        return bool(self.isolating)

    def __str__(self) -> str:
        if not self.isolated:
            return f"{self.direction}: not isolated (no NetworkPolicy with {self.direction.capitalize()} selects the pod)"
        if self.admitted:
            assert self.policy is not None and self.rule is not None
            rule = self.policy.rules(self.direction)[self.rule - 1]
            return (f"{self.direction}: admitted by NetworkPolicy {self.policy.name}, {self.direction} rule "
                    f"{self.rule} ({describe_rule(rule, self.direction)})")
        return f"{self.direction}: refused: " + "; ".join(describe_policy(p, self.direction) for p in self.isolating)


def decide(policies: Iterable[Policy], direction: str, subject: Pod, peer: Pod | External, destination: Pod,
           number: int, protocol: str = "TCP", pod_cidrs: Sequence[str] = ()) -> Decision:
    """`subject` is the pod whose isolation counts: the destination for ingress, the source
    for egress; `peer` is the other end."""
    kind = direction.capitalize()
    isolating = tuple(p for p in policies if kind in p.types and p.selects(subject))
    for policy in isolating:
        for index, rule in enumerate(policy.rules(direction), 1):
            if rule_admits(rule, direction, policy, peer, destination, number, protocol, pod_cidrs):
                return Decision(direction, True, isolating, policy, index)
    return Decision(direction, not isolating, isolating)


@dataclass(frozen=True, eq=False)
class Verdict:
    ingress: Decision
    egress: Decision

    @property
    def admitted(self) -> bool:
        return self.ingress.admitted and self.egress.admitted

    @property
    def deciding(self) -> Decision:
        """The direction that refuses (ingress first), else the ingress decision."""
        return self.ingress if not self.ingress.admitted or self.egress.admitted else self.egress

    def __str__(self) -> str:
        if self.egress.isolated or not self.egress.admitted:
            return f"{self.ingress}; {self.egress}"
        return str(self.ingress)


def connection(policies: Sequence[Policy], source: Pod | External, destination: Pod, number: int,
               protocol: str = "TCP", pod_cidrs: Sequence[str] = ()) -> Verdict:
    ingress = decide(policies, "ingress", destination, source, destination, number, protocol, pod_cidrs)
    if isinstance(source, External):
        egress = Decision("egress", True)
    else:
        egress = decide(policies, "egress", source, destination, destination, number, protocol, pod_cidrs)
    return Verdict(ingress, egress)


# --- descriptions ---------------------------------------------------------------------------
def describe_selector(selector: Mapping | None, what: str = "pods") -> str:
    selector = selector or {}
    parts = [f"{k}={_text(v)}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(_text(v) for v in expr.get("values") or [])
        parts.append(f"{expr.get('key')} {expr.get('operator')} ({values})" if values else
                     f"{expr.get('key')} {expr.get('operator')}")
    return f"{what} {{{', '.join(parts)}}}" if parts else f"every {what[:-1]}"


def describe_peer(peer: Mapping) -> str:
    if "ipBlock" in peer:
        block = peer["ipBlock"] or {}
        excepts = block.get("except") or []
        return f"addresses {block.get('cidr')}" + (f" except {', '.join(excepts)}" if excepts else "")
    pods = describe_selector(peer.get("podSelector"), "pods") if "podSelector" in peer else "every pod"
    if "namespaceSelector" not in peer:
        return f"{pods} of this namespace" if "podSelector" in peer else "nothing (empty peer)"
    return f"{pods} of {describe_selector(peer.get('namespaceSelector'), 'namespaces')}"


def describe_port(spec: Mapping) -> str:
    port, protocol = spec.get("port"), spec.get("protocol", "TCP")
    if port is None:
        return f"every {protocol} port"
    return f"{port}-{spec['endPort']}/{protocol}" if spec.get("endPort") else f"{port}/{protocol}"


def describe_rule(rule: Mapping, direction: str) -> str:
    peers = rule.get("from" if direction == "ingress" else "to")
    ports = rule.get("ports")
    who = " or ".join(describe_peer(p) for p in peers) if peers else "anywhere"
    where = ", ".join(describe_port(p) for p in ports) if ports else "every port"
    return f"{'from' if direction == 'ingress' else 'to'} {who} on {where}"


def describe_policy(policy: Policy, direction: str) -> str:
    rules = policy.rules(direction)
    head = f"NetworkPolicy {policy.name} isolates the pod for {direction}"
    if not rules:
        return (f"{head} and has no {direction} rule (`{direction}:` empty or absent), so it admits nothing"
                + (" to every pod of the namespace" if not (policy.spec.get("podSelector") or {}) else ""))
    listed = "; ".join(f"rule {i}: {describe_rule(r, direction)}" for i, r in enumerate(rules, 1))
    return f"{head}, and none of its {len(rules)} {direction} rule(s) matches ({listed})"


def describe_labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


# --- from manifests ---------------------------------------------------------------------
def pod_template(doc: Mapping) -> Mapping | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc
    if kind == "CronJob":
        return (((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template")
    if kind in TEMPLATE_KINDS:
        return (doc.get("spec") or {}).get("template")
    return None


def template_pod(doc: Mapping, namespace: str, namespace_labels: Mapping[str, str] | None = None) -> Pod:
    template = pod_template(doc) or {}
    spec = template.get("spec") or {}
    ports = tuple(ContainerPort(int(p["containerPort"]), p.get("name"), p.get("protocol", "TCP"))
                  for c in spec.get("containers") or [] for p in c.get("ports") or [] if "containerPort" in p)
    labels = {k: _text(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()}
    name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
    return Pod(labels, (doc.get("metadata") or {}).get("namespace") or namespace, dict(namespace_labels or {}),
               ports, name=name)


def read_manifests(releases: Mapping[str, Sequence[Mapping]], namespace: str,
                   namespace_labels: Mapping[str, str] | None = None,
                   ) -> tuple[dict[str, Component], list[Policy], list[Pod]]:
    """(components by name, every NetworkPolicy, every pod template) from each component's
    rendered manifests (`releases`: component name -> manifests of its release)."""
    components, policies, templates = {}, [], []
    for name, docs in releases.items():
        pods = []
        for doc in docs:
            meta = doc.get("metadata") or {}
            if doc.get("kind") == "NetworkPolicy":
                policies.append(Policy(meta.get("name", "?"), meta.get("namespace") or namespace,
                                       doc.get("spec") or {}, name))
            elif doc.get("kind") in TEMPLATE_KINDS and pod_template(doc) is not None:
                pod = template_pod(doc, namespace, namespace_labels)
                templates.append(pod)
                if doc.get("kind") in WORKLOAD_KINDS:
                    pods.append(pod)
        components[name] = Component(name, name, tuple(pods))
    return components, policies, templates


# --- the judgement ------------------------------------------------------------------------
@dataclass(frozen=True)
class Path:
    """Declared traffic: pods of `client` open connections to `server` on `port`."""

    client: str
    server: str
    port: int
    protocol: str = "TCP"

    def __str__(self) -> str:
        return f"{self.client} -> {self.server}:{self.port}/{self.protocol}"


@dataclass(frozen=True, eq=False)
class PathResult:
    client: str  # a component name, or STRANGER
    server: str
    port: int
    protocol: str
    declared: bool
    verdict: Verdict

    @property
    def admitted(self) -> bool:
        return self.verdict.admitted

    def row(self) -> dict:
        return {"client": self.client, "server": self.server, "port": f"{self.port}/{self.protocol}",
                "declared": self.declared, "admitted": self.admitted, "decided by": str(self.verdict.deciding)}


STRANGER = "a pod matching no component"


@dataclass
class Report:
    results: list[PathResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    not_isolated: list[str] = field(default_factory=list)  # components no ingress policy selects
    notes: list[str] = field(default_factory=list)  # information, never a failure on its own
    policies: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def rows(self) -> list[dict]:
        return [r.row() for r in self.results]


def evaluate(releases: Mapping[str, Sequence[Mapping]], paths: Sequence[Path], entry: str | None, namespace: str, *,
             namespace_labels: Mapping[str, str] | None = None, fix_keys: Mapping[str, str | None] | None = None,
             pod_cidrs: Sequence[str] = ()) -> Report:
    """Judge the policies of every release against the declared traffic.

    `releases`: component name -> its release's rendered manifests; `paths`: the declared
    traffic; `entry`: the component users reach from outside the namespace; `fix_keys`:
    component -> the chart value that lists the clients its NetworkPolicy admits (None: the
    chart has no such value; absent: DEFAULT_FIX_KEY); `pod_cidrs`: the cluster's pod
    address ranges when known (ipBlock peers)."""
    components, policies, templates = read_manifests(releases, namespace, namespace_labels)
    fix_keys = dict(fix_keys or {})
    report = Report(policies=len(policies))
    if not policies:
        report.notes.append(f"no NetworkPolicy in the {len(releases)} release(s): every pod accepts every connection")
    declared = {(p.client, p.server) for p in paths}

    def key_for(server: str) -> str:
        key = fix_keys.get(server, DEFAULT_FIX_KEY)
        return f"the chart value {key} of {server}" if key else f"the NetworkPolicy template of {server}'s chart"

    # Declared paths: every pod template of the client to every one of the server.
    for path in paths:
        client, server = components.get(path.client), components.get(path.server)
        missing = [c for c, comp in ((path.client, client), (path.server, server)) if comp is None or not comp.pods]
        if missing:
            report.notes.append(f"{path}: not checked, {' and '.join(missing)} render(s) no Deployment or "
                                "StatefulSet (an external database, or no chart)")
            continue
        assert client is not None and server is not None
        verdicts = [connection(policies, c, s, path.port, path.protocol, pod_cidrs) for c in client.pods for s in server.pods]
        worst = next((v for v in verdicts if not v.admitted), verdicts[0])
        report.results.append(PathResult(path.client, path.server, path.port, path.protocol, True, worst))
        if not worst.admitted:
            report.problems.append(_refused_sentence(path, client, worst, key_for(path.server), namespace))
        dns = _dns_problem(policies, client, path, namespace)
        if dns:
            report.problems.append(dns)

    # Undeclared: a pod of the namespace that belongs to no component, and components that
    # are not declared clients, to every port of every non-entry component.
    stranger = Pod(dict(STRANGER_LABELS), namespace, dict(namespace_labels or {}), name=STRANGER)
    for server in components.values():
        if server.name == entry or not server.pods:
            continue
        clients: list[tuple[str, Pod]] = [(STRANGER, stranger)]
        clients += [(c.name, pod) for c in components.values() if c.name != server.name
                    and (c.name, server.name) not in declared for pod in c.pods]
        ports = server.ports or tuple((p.port, p.protocol) for p in paths if p.server == server.name)
        for client_name, client_pod in clients:
            for number, protocol in ports:
                verdicts = [connection(policies, client_pod, s, number, protocol, pod_cidrs) for s in server.pods]
                admitted = next((v for v in verdicts if v.admitted), None)
                if admitted is None:
                    if client_name == STRANGER:
                        report.results.append(PathResult(client_name, server.name, number, protocol, False, verdicts[0]))
                    continue
                report.results.append(PathResult(client_name, server.name, number, protocol, False, admitted))
                if admitted.ingress.isolated:  # a rule admits it; otherwise "not isolated" says it
                    report.problems.append(_undeclared_sentence(client_name, client_pod, server, number, protocol,
                                                                admitted, key_for(server.name), paths, namespace))

    # The entry must stay reachable from outside the namespace (ingress controller, NodePort).
    if entry in components and components[entry].pods:
        problem = _entry_problem(policies, components[entry], paths, namespace)
        if problem:
            report.problems.append(problem)

    # Components no policy isolates: information; the stage decides.
    for comp in components.values():
        if comp.pods and not any("Ingress" in p.types and p.selects(pod) for p in policies for pod in comp.pods):
            report.not_isolated.append(comp.name)
            report.notes.append(f"{comp.name}: not isolated: no NetworkPolicy selects its pods "
                                f"({describe_labels(comp.pods[0].labels)}), so every pod of the cluster can connect")

    # A policy that selects no pod protects nothing: its podSelector misses the labels.
    for policy in policies:
        if not any(policy.selects(pod) for pod in templates):
            own = components.get(policy.release)
            labels = describe_labels(own.pods[0].labels) if own and own.pods else "(no workload)"
            report.problems.append(
                f"NetworkPolicy {policy.name} (release {policy.release}) selects no pod: its podSelector "
                f"{describe_selector(policy.spec.get('podSelector'))} matches none of the {len(templates)} pod "
                f"template(s) rendered; {policy.release}'s pods carry {labels}. Expected it to select the pods it "
                f"protects. Fix: make spec.podSelector.matchLabels a subset of the pod template's labels "
                f"(the chart's selector labels), in the NetworkPolicy template of {policy.release}'s chart.")
    return report


def _suggested_labels(pod: Pod) -> dict[str, str]:
    """What a client entry in allowedClients should hold: the name label, else every label."""
    return {NAME_LABEL: pod.labels[NAME_LABEL]} if NAME_LABEL in pod.labels else dict(pod.labels)


def _refused_sentence(path: Path, client: Component, verdict: Verdict, key: str, namespace: str) -> str:
    pod = client.pods[0]
    decision = verdict.deciding
    wanted = _suggested_labels(pod)
    entry = "- " + ", ".join(f"{k}: {v}" for k, v in wanted.items())
    if decision.direction == "ingress":
        fix = (f"Fix: admit {path.client}'s pods in {key} (add `{entry}`)"
               + _deny_all_fix(decision, path.server) + ".")
    else:
        fix = (f"Fix: add an egress rule to {path.server}'s pods on port {path.port} in the NetworkPolicy that "
               f"isolates {path.client} ({', '.join(p.name for p in decision.isolating)})"
               + _deny_all_fix(decision, path.client) + ".")
    shown = relevant_labels(pod, decision.isolating, decision.direction)
    return (f"{path}: refused in namespace {namespace}: pods {describe_labels(shown)} -> port {path.port}/"
            f"{path.protocol}: {decision}. Expected admitted: {path.client} is declared to connect to "
            f"{path.server}. {fix}")


def relevant_labels(pod: Pod, policies: Sequence[Policy], direction: str) -> dict[str, str]:
    """The pod's labels that the policies' peer selectors look at (and its name label): the
    ones that explain a match or a miss, without Helm's bookkeeping labels."""
    keys = {NAME_LABEL}
    for policy in policies:
        for rule in policy.rules(direction):
            for peer in rule.get("from" if direction == "ingress" else "to") or []:
                selector = peer.get("podSelector") or {}
                keys |= set(selector.get("matchLabels") or {})
                keys |= {e.get("key") for e in selector.get("matchExpressions") or []}
    return {k: v for k, v in pod.labels.items() if k in keys} or dict(pod.labels)


def _deny_all_fix(decision: Decision, target: str) -> str:
    empty = [p.name for p in decision.isolating if not p.rules(decision.direction)]
    if not empty:
        return ""
    return (f", or give NetworkPolicy {', '.join(empty)} the {decision.direction} rule it lacks (an emptied "
            f"`{decision.direction}:` or an added deny-all refuses {target})")


def _undeclared_sentence(client_name: str, client_pod: Pod, server: Component, number: int, protocol: str,
                         verdict: Verdict, key: str, paths: Sequence[Path], namespace: str) -> str:
    allowed = sorted({p.client for p in paths if p.server == server.name})
    shown = relevant_labels(client_pod, verdict.ingress.isolating, "ingress")
    who = (f"a pod of namespace {namespace} with labels {describe_labels(client_pod.labels)} (matching no component)"
           if client_name == STRANGER else f"{client_name}'s pods {describe_labels(shown)}")
    expected = (f"only {', '.join(allowed)} {'is' if len(allowed) == 1 else 'are'} declared to connect" if allowed
                else "no component is declared to connect")
    return (f"{who} can connect to {server.name}:{number}/{protocol}: {verdict.ingress}. Expected refused: "
            f"{expected}. Fix: narrow {key} to the declared clients' labels (no empty podSelector `{{}}`, "
            "no rule without `from`), or declare the path (connects_to) if it is real.")


def _dns_problem(policies: Sequence[Policy], client: Component, path: Path, namespace: str) -> str | None:
    """An egress-isolated client that cannot reach DNS cannot resolve the server's Service name."""
    dns = Pod(dict(DNS_LABELS), DNS_NAMESPACE, {}, (ContainerPort(53, "dns", "UDP"), ContainerPort(53, "dns-tcp", "TCP")),
              name="CoreDNS")
    for pod in client.pods:
        verdict = decide(policies, "egress", pod, dns, dns, 53, "UDP")
        if verdict.isolated and not verdict.admitted:
            return (f"{path.client}: egress to DNS (UDP 53, CoreDNS in {DNS_NAMESPACE}) refused: "
                    f"{'; '.join(describe_policy(p, 'egress') for p in verdict.isolating)}. Expected admitted: "
                    f"{path.client} resolves {path.server}'s Service name. Fix: add an egress rule to namespace "
                    f"{DNS_NAMESPACE} (namespaceSelector kubernetes.io/metadata.name: {DNS_NAMESPACE}) on port 53 UDP "
                    "and TCP.")
    return None


def _entry_problem(policies: Sequence[Policy], entry: Component, paths: Sequence[Path], namespace: str) -> str | None:
    """Refused when the entry is isolated and no rule admits any peer outside the namespace
    (a rule without `from`, a namespaceSelector, or an ipBlock) on its ports."""
    ports = entry.ports or tuple((p.port, p.protocol) for p in paths if p.server == entry.name)
    for number, protocol in ports:
        for pod in entry.pods:
            isolating = [p for p in policies if "Ingress" in p.types and p.selects(pod)]
            if not isolating:
                continue
            if any(_admits_outside(rule, pod, number, protocol)
                   for policy in isolating for rule in policy.rules("ingress")):
                continue
            reasons = "; ".join(describe_policy(p, "ingress") for p in isolating)
            names = ", ".join(f"{p.name} (release {p.release})" for p in isolating)
            return (f"{entry.name} (the entry) cannot be reached from outside namespace {namespace} on port "
                    f"{number}/{protocol}: {reasons}. Expected admitted: users reach {entry.name} through an "
                    f"ingress controller, a NodePort or a load balancer. Fix: add an ingress rule admitting them "
                    f"(a namespaceSelector for the ingress controller's namespace, or an ipBlock) to NetworkPolicy "
                    f"{names}, or remove it if it was not meant to isolate the entry (a deny-all with "
                    "podSelector {} isolates every pod).")
    return None


def _admits_outside(rule: Mapping, pod: Pod, number: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if ports and not any(port_matches(p, pod, number, protocol) for p in ports):
        return False
    # No `from` admits everyone; any namespaceSelector admits some other namespace (an
    # ingress controller's, say); an ipBlock admits addresses outside the cluster.
    peers = rule.get("from")
    return not peers or any("ipBlock" in p or "namespaceSelector" in p for p in peers)


# --- from the configuration -----------------------------------------------------------------
def declared_paths(components: Mapping[str, object]) -> list[Path]:
    """The traffic the configuration declares: each component's `connects_to` (config v2).
    Configurations without it (v1) declare it implicitly: an app whose run_env names another
    component's Service (`://name:`) connects to it, and `uses_database` to every database."""
    paths = []
    for comp in components.values():
        targets = list(getattr(comp, "connects_to", None) or ())
        if not targets:
            env = " ".join(str(v) for v in (getattr(comp, "run_env", None) or {}).values())
            targets = [o.name for o in components.values() if o is not comp and f"://{o.name}:" in env]
            if getattr(comp, "uses_database", False):
                targets += [o.name for o in components.values() if getattr(o, "role", "app") == "database"]
        for target in dict.fromkeys(targets):
            if target in components and target != comp.name:
                paths.append(Path(comp.name, target, int(getattr(components[target], "port"))))
    return paths


def entry_component(cfg) -> str | None:
    """`entry` (config v2), else (v1) the first app whose run_env names another component's
    Service, as stage 5 finds the frontend; None when nothing says which it is."""
    entry = getattr(cfg, "entry", None)
    if entry:
        return entry
    for comp in cfg.components.values():
        env = " ".join(str(v) for v in (getattr(comp, "run_env", None) or {}).values())
        if getattr(comp, "role", "app") == "app" and any(
                f"://{o.name}:" in env for o in cfg.components.values() if o is not comp):
            return comp.name
    return None
