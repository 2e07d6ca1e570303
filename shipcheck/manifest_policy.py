"""What a deployable release must be, as pure checks over rendered manifest dicts.

Each check returns a list of problems, empty when the manifests pass. A problem is one
sentence: where (kind/name and container), what was measured, what is required, and the
fix (the chart value to change). Stage 3 asserts on these; tests/ seeds each defect.

"Every container" means app, init, hook (migration Job) and `helm test` containers. Probes
are required only on containers that serve (Deployments and StatefulSets, not init, hook
or test containers, which run to completion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from . import quota, secrets_scan

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
SERVING = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
RESOURCE_KEYS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
ALLOWED_PULL_POLICIES = ("IfNotPresent", "Never")  # images are loaded into the cluster, never pulled
# Volume types Pod Security "restricted" admits.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
                      "secret"}
WRITABLE_VOLUMES = {"emptyDir", "ephemeral", "persistentVolumeClaim"}
MIN_LIVENESS_GRACE_S = 10  # without a startupProbe, liveness must wait at least this long


@dataclass(frozen=True)
class Container:
    """One container of a rendered workload, with its pod spec for context."""

    workload: str  # e.g. "Deployment/todo-backend"
    kind: str
    role: str  # serving | hook | test | job
    name: str
    init: bool
    spec: Mapping
    pod: Mapping
    claim_templates: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        tags = [t for t, on in (("init", self.init), ("hook", self.role == "hook"), ("helm test", self.role == "test"))
                if on]
        return f"{self.workload} container {self.name}" + (f" ({', '.join(tags)})" if tags else "")

    @property
    def values_key(self) -> str:
        """The chart value that sets this container's resources (our charts' layout)."""
        return {"hook": "migrations.resources", "test": "tests.resources"}.get(self.role, "resources")

    @property
    def serving(self) -> bool:
        return self.kind in SERVING and self.role == "serving" and not self.init

    def __repr__(self) -> str:
        return f"<Container {self.where}>"


def _name(m: Mapping) -> str:
    return f"{m.get('kind')}/{(m.get('metadata') or {}).get('name')}"


def pod_spec(m: Mapping) -> Mapping | None:
    spec = m.get("spec") or {}
    if m.get("kind") == "Pod":
        return spec
    if m.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if m.get("kind") in WORKLOADS:
        return (spec.get("template") or {}).get("spec") or {}
    return None


def containers(manifests: Iterable[Mapping]) -> list[Container]:
    found = []
    for m in manifests:
        pod = pod_spec(m)
        if pod is None:
            continue
        hook = quota.hook_of(m)
        role = hook or ("serving" if m.get("kind") in SERVING else "job")
        claims = tuple(((t.get("metadata") or {}).get("name")) for t in (m.get("spec") or {}).get("volumeClaimTemplates") or [])
        for init, key in ((True, "initContainers"), (False, "containers")):
            for c in pod.get(key) or []:
                found.append(Container(_name(m), m.get("kind"), role, c.get("name", "?"), init, c, pod, claims))
    return found


# --- resources --------------------------------------------------------------------------
def resource_problems(manifests: Iterable[Mapping]) -> list[str]:
    problems = []
    for c in containers(manifests):
        resources = c.spec.get("resources") or {}
        missing = [k for k in RESOURCE_KEYS if (resources.get(k.split(".")[0]) or {}).get(k.split(".")[1]) is None]
        if missing:
            problems.append(
                f"{c.where}: no {', '.join('resources.' + k for k in missing)} (required: requests and limits for cpu "
                f"and memory on every container; a namespace with a ResourceQuota on them rejects the pod). "
                f"Fix: set {', '.join(c.values_key + '.' + k for k in missing)} in the chart's values.")
            continue
        for name in ("cpu", "memory"):
            request = quota.parse_quantity(resources["requests"][name])
            limit = quota.parse_quantity(resources["limits"][name])
            if request > limit:
                problems.append(
                    f"{c.where}: requests.{name} {resources['requests'][name]} > limits.{name} "
                    f"{resources['limits'][name]} (a request may not exceed its limit). "
                    f"Fix: lower {c.values_key}.requests.{name} or raise {c.values_key}.limits.{name}.")
    return problems


# --- probes -----------------------------------------------------------------------------
def _describe_probe(probe: Mapping) -> str:
    if "httpGet" in probe:
        return f"GET {probe['httpGet'].get('path', '/')} on port {probe['httpGet'].get('port')}"
    for kind in ("exec", "tcpSocket", "grpc"):
        if kind in probe:
            return f"{kind} {probe[kind]}"
    return "a probe with no handler"


def _port_known(container: Mapping, port) -> bool:
    ports = container.get("ports") or []
    return any(port in (p.get("name"), p.get("containerPort")) for p in ports)


def probe_problems(manifests: Iterable[Mapping], liveness_path: str | None, readiness_path: str | None,
                   component: str = "") -> list[str]:
    """Liveness and readiness on every serving container: HTTP GET on the configured paths,
    or (liveness_path None: a database) any exec/tcpSocket/grpc/HTTP probe."""
    problems = []
    source = f"components.{component}" if component else "the component"
    expected = {"livenessProbe": (liveness_path, "healthCheck.path", "health_path"),
                "readinessProbe": (readiness_path or liveness_path, "healthCheck.readinessPath", "readiness_path")}
    for c in containers(manifests):
        if not c.serving:
            continue
        for probe_name, (path, value_key, config_key) in expected.items():
            probe = c.spec.get(probe_name)
            want = f"GET {path}" if path else "an exec or tcpSocket probe"
            if not probe:
                problems.append(f"{c.where}: no {probe_name}; expected {want}. Fix: set healthCheck.enabled: true"
                                f"{f' and {value_key}: {path}' if path else ''} in the chart's values.")
                continue
            if path is None:
                if not any(k in probe for k in ("exec", "tcpSocket", "grpc", "httpGet")):
                    problems.append(f"{c.where}: {probe_name} has no handler; expected {want}. "
                                    "Fix: give it exec (e.g. pg_isready) or tcpSocket.")
                continue
            got = probe.get("httpGet")
            if not got or got.get("path") != path:
                problems.append(
                    f"{c.where}: {probe_name} is {_describe_probe(probe)}, expected {want} ({config_key} of {source} "
                    f"in shipcheck.yaml). Fix: set {value_key}: {path} in the chart's values, or correct {config_key} "
                    "in shipcheck.yaml if the app serves another path.")
            elif not _port_known(c.spec, got.get("port")):
                problems.append(f"{c.where}: {probe_name} probes port {got.get('port')!r}, which is not a port of the "
                                f"container ({[p.get('name') or p.get('containerPort') for p in c.spec.get('ports') or []]}). "
                                "Fix: probe the named port `http`.")
        liveness = c.spec.get("livenessProbe") or {}
        if liveness and not c.spec.get("startupProbe") and liveness.get("initialDelaySeconds", 0) < MIN_LIVENESS_GRACE_S:
            problems.append(
                f"{c.where}: livenessProbe starts after {liveness.get('initialDelaySeconds', 0)} s with no startupProbe "
                f"(minimum {MIN_LIVENESS_GRACE_S} s): a slow start on a busy 2-core node gets the pod killed and "
                "restarted. Fix: add a startupProbe (healthCheck.startup) or raise healthCheck.initialDelaySeconds.")
    return problems


# --- security ---------------------------------------------------------------------------
def _effective(c: Container, key: str):
    container = c.spec.get("securityContext") or {}
    if key in container:
        return container[key]
    return (c.pod.get("securityContext") or {}).get(key)


def security_problems(manifests: Iterable[Mapping], uid: int) -> list[str]:
    """Pod Security "restricted", plus a read-only root filesystem and the image's UID/GID."""
    problems = []
    seen_pods = set()
    for c in containers(manifests):
        fix = "Fix: set it in the chart's podSecurityContext/securityContext values."
        user = _effective(c, "runAsUser")
        checks = [
            (_effective(c, "runAsNonRoot") is True, f"runAsNonRoot is {_effective(c, 'runAsNonRoot')!r}, required true"),
            (user not in (None, 0), f"runs as {'root (UID 0)' if user == 0 else 'the image default user (runAsUser unset)'}, required UID {uid}"),
            (user in (None, 0) or user == uid, f"runAsUser {user}, required {uid} (the image's user, uid in shipcheck.yaml)"),
            (_effective(c, "runAsGroup") == uid, f"runAsGroup {_effective(c, 'runAsGroup')!r}, required {uid}"),
            ((c.spec.get("securityContext") or {}).get("allowPrivilegeEscalation") is False,
             f"allowPrivilegeEscalation is {(c.spec.get('securityContext') or {}).get('allowPrivilegeEscalation')!r}, required false"),
            ("ALL" in (((c.spec.get("securityContext") or {}).get("capabilities") or {}).get("drop") or []),
             f"capabilities.drop is {(((c.spec.get('securityContext') or {}).get('capabilities') or {}).get('drop'))!r}, required [ALL]"),
            (set(((c.spec.get("securityContext") or {}).get("capabilities") or {}).get("add") or []) <= {"NET_BIND_SERVICE"},
             f"capabilities.add is {(((c.spec.get('securityContext') or {}).get('capabilities') or {}).get('add'))!r}, "
             "only NET_BIND_SERVICE is allowed"),
            ((_effective(c, "seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost"),
             f"seccompProfile is {_effective(c, 'seccompProfile')!r}, required type RuntimeDefault"),
            ((c.spec.get("securityContext") or {}).get("privileged") is not True, "privileged is true, required false"),
            ((c.spec.get("securityContext") or {}).get("readOnlyRootFilesystem") is True,
             f"readOnlyRootFilesystem is {(c.spec.get('securityContext') or {}).get('readOnlyRootFilesystem')!r}, "
             "required true (writable paths as emptyDir volumes)"),
        ]
        for ok, what in checks:
            if not ok:
                problems.append(f"{c.where}: {what} (Pod Security \"restricted\" and this pipeline's policy). {fix}")
        pod_id = (c.workload, id(c.pod))
        if pod_id in seen_pods:
            continue
        seen_pods.add(pod_id)
        pod_sc = c.pod.get("securityContext") or {}
        if pod_sc.get("fsGroup") != uid:
            problems.append(f"{c.workload}: pod fsGroup {pod_sc.get('fsGroup')!r}, required {uid} (so mounted volumes "
                            f"are writable by the app's group). {fix}")
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if c.pod.get(host):
                problems.append(f"{c.workload}: {host} is true, required false (Pod Security \"restricted\"). "
                                f"Fix: remove {host} from the pod spec.")
        for volume in c.pod.get("volumes") or []:
            kinds = set(volume) - {"name"}
            if not kinds <= RESTRICTED_VOLUMES:
                problems.append(f"{c.workload}: volume {volume.get('name')} is {', '.join(sorted(kinds))}; Pod Security "
                                f"\"restricted\" allows only {', '.join(sorted(RESTRICTED_VOLUMES))}. "
                                "Fix: use an emptyDir or a PersistentVolumeClaim.")
    return problems


def writable_path_problems(manifests: Iterable[Mapping], writable_paths: Iterable[str]) -> list[str]:
    """With a read-only root filesystem, every path the app writes to must be a writable mount."""
    problems = []
    paths = list(writable_paths)
    for c in containers(manifests):
        if not c.serving:
            continue
        volumes = {v.get("name"): set(v) - {"name"} for v in c.pod.get("volumes") or []}
        for claim in c.claim_templates:
            volumes[claim] = {"persistentVolumeClaim"}
        mounts = {m.get("mountPath"): m for m in c.spec.get("volumeMounts") or []}
        for path in paths:
            mount = mounts.get(path)
            if mount is None:
                problems.append(f"{c.where}: {path} is not mounted, but the root filesystem is read-only and the app "
                                f"writes there (writable_paths in shipcheck.yaml). Fix: add it to writablePaths in the "
                                "chart's values (an emptyDir).")
            elif not (volumes.get(mount.get("name")) or set()) & WRITABLE_VOLUMES or mount.get("readOnly"):
                problems.append(f"{c.where}: {path} is mounted from {mount.get('name')} "
                                f"({', '.join(sorted(volumes.get(mount.get('name')) or {'no such volume'}))}"
                                f"{', read-only' if mount.get('readOnly') else ''}), which the app cannot write. "
                                "Fix: mount an emptyDir (or a PersistentVolumeClaim) there.")
    return problems


# --- images -----------------------------------------------------------------------------
def split_image(ref: str) -> tuple[str, str | None]:
    """'todo-backend:v1.0.0' -> ('todo-backend', 'v1.0.0'); 'host:5000/x' -> ('host:5000/x', None)."""
    ref = ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, None


def image_problems(manifests: Iterable[Mapping], expected_ref: str, app_version: str | None) -> list[str]:
    """Every container runs the built image, pinned to the built tag (= Chart appVersion),
    never `latest`, and is never pulled (pullPolicy IfNotPresent or Never)."""
    problems = []
    repository, tag = split_image(expected_ref)
    for c in containers(manifests):
        image = str(c.spec.get("image", ""))
        got_repo, got_tag = split_image(image)
        fix = f"Fix: set image.repository: {repository} and image.tag: {tag} in the chart's values."
        if got_tag in (None, "latest"):
            problems.append(f"{c.where}: image {image} is {'untagged (= latest)' if got_tag is None else 'tagged latest'}; "
                            f"required the built tag {expected_ref} (version in shipcheck.yaml). {fix}")
        elif got_repo != repository or got_tag != tag:
            problems.append(f"{c.where}: image {image}, expected {expected_ref} (the image stage 1 built). {fix}")
        if app_version is not None and got_tag not in (None, "latest") and got_tag != app_version:
            problems.append(f"{c.where}: image tag {got_tag} differs from the chart's appVersion {app_version}. "
                            f"Fix: set appVersion: \"{tag}\" in Chart.yaml and image.tag to the same.")
        policy = c.spec.get("imagePullPolicy")
        if policy not in ALLOWED_PULL_POLICIES:
            problems.append(f"{c.where}: imagePullPolicy {policy!r}, required one of {', '.join(ALLOWED_PULL_POLICIES)} "
                            "(images are loaded into the cluster; there is no registry to pull from). "
                            "Fix: set image.pullPolicy: IfNotPresent in the chart's values.")
    if app_version is not None and app_version != tag:
        problems.append(f"Chart appVersion {app_version} differs from the built tag {tag} (version in shipcheck.yaml). "
                        f"Fix: set appVersion: \"{tag}\" in Chart.yaml.")
    return problems


# --- rollout ----------------------------------------------------------------------------
def rollout_problems(manifests: Iterable[Mapping], max_surge: int = 1, max_unavailable: int = 0) -> list[str]:
    """Deployments roll out one extra pod at a time and never go below their replicas."""
    problems = []
    for m in manifests:
        if m.get("kind") != "Deployment":
            continue
        spec = m.get("spec") or {}
        strategy = spec.get("strategy") or {}
        kind = strategy.get("type", "RollingUpdate")
        if kind != "RollingUpdate":
            problems.append(f"{_name(m)}: strategy {kind}, required RollingUpdate (maxSurge {max_surge}, "
                            f"maxUnavailable {max_unavailable}); {kind} stops every pod before starting new ones. "
                            "Fix: set strategy.type: RollingUpdate in the chart's values.")
            continue
        replicas = int(spec.get("replicas", 1))
        rolling = strategy.get("rollingUpdate") or {}
        surge, unavailable = quota.deployment_surge(m), quota.deployment_unavailable(m)
        if surge != max_surge:
            problems.append(f"{_name(m)}: RollingUpdate maxSurge {rolling.get('maxSurge', '25% (default)')} = {surge} "
                            f"pod(s) with {replicas} replicas, required {max_surge} (each surge pod needs quota room). "
                            f"Fix: set strategy.rollingUpdate.maxSurge: {max_surge} in the chart's values.")
        if unavailable != max_unavailable:
            problems.append(f"{_name(m)}: RollingUpdate maxUnavailable {rolling.get('maxUnavailable', '25% (default)')} = "
                            f"{unavailable} pod(s) of {replicas}, required {max_unavailable} (no serving pod may go "
                            "before its replacement is ready). "
                            f"Fix: set strategy.rollingUpdate.maxUnavailable: {max_unavailable} in the chart's values.")
    return problems


# --- secrets ----------------------------------------------------------------------------
def secret_value_problems(manifests: Iterable[Mapping]) -> list[str]:
    """No secret in a ConfigMap or in a literal env value; they belong in a Secret."""
    findings: dict[str, list[secrets_scan.Finding]] = {}
    for m in manifests:
        if m.get("kind") == "ConfigMap":
            for key, value in (m.get("data") or {}).items():
                findings.setdefault(_name(m), []).extend(secrets_scan.scan_pair(f"data.{key}", key, str(value)))
    for c in containers(manifests):
        for env in c.spec.get("env") or []:
            if "value" in env:
                findings.setdefault(c.where, []).extend(
                    secrets_scan.scan_pair(f"env {env.get('name')}", str(env.get("name")), str(env["value"])))
    return [f"{where}: {len(found)} secret-looking value(s), limit 0: {'; '.join(map(str, found))}. Fix: put it in "
            "the Secret (secret.existingSecret / --set at install) and read it with secretKeyRef; ConfigMaps and "
            "pod specs are readable by anyone who can read the namespace."
            for where, found in findings.items() if found]


def _flatten(doc, prefix: str = "") -> Iterable[tuple[str, str, object]]:
    """(dotted path, the name the value goes by, value) for every scalar; an EnvVar
    ({name, value}) goes by its name."""
    if isinstance(doc, Mapping) and isinstance(doc.get("name"), str) and isinstance(doc.get("value"), str):
        yield f"{prefix}.value", doc["name"], doc["value"]
    elif isinstance(doc, Mapping):
        for key, value in doc.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _flatten(value, f"{prefix}[{i}]")
    else:
        yield prefix, prefix.rsplit(".", 1)[-1], doc


def values_secret_problems(name: str, values: Mapping | None) -> list[str]:
    """No secret value in a values file (they are committed); give secrets with --set at install."""
    findings = []
    for path, key, value in _flatten(values or {}):
        if isinstance(value, str):
            findings += secrets_scan.scan_pair(path, key, value)
    if not findings:
        return []
    return [f"{name}: {len(findings)} secret-looking value(s), limit 0: {'; '.join(map(str, findings))}. Fix: remove "
            "it from the file and give it at install time (--set secret.databaseUrl=..., or an existing Secret via "
            "secret.existingSecret); values files are committed."]


# --- schema -----------------------------------------------------------------------------
def schema_problems(manifests: Iterable[Mapping], kubernetes_version: str) -> list[str]:
    """Each manifest against the Kubernetes OpenAPI schema of the target version, offline and
    strict (unknown fields are errors), with kubernetes-validate."""
    import kubernetes_validate

    problems = []
    for m in manifests:
        try:
            kubernetes_validate.validate(dict(m), kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.absolute_path).lstrip(".")
            problems.append(f"{_name(m)}: {path or '(top level)'}: {exc.message} (Kubernetes {kubernetes_version} schema, "
                            "strict). Fix: correct the field in the chart's template or values; `kubectl explain "
                            f"{m.get('kind', '').lower()}.{path.split('[')[0] if path else ''}` shows what is valid.")
        except kubernetes_validate.utils.VersionNotSupportedError:
            return [f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version} (it has "
                    f"{', '.join(kubernetes_validate.utils.all_versions())}). Fix: set kubernetes_version in "
                    "shipcheck.yaml to one of those, or upgrade kubernetes-validate."]
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{_name(m)}: apiVersion {m.get('apiVersion')} kind {m.get('kind')} does not exist in "
                            f"Kubernetes {kubernetes_version}. Fix: use the API version served by "
                            f"{kubernetes_version} (`kubectl api-resources` lists them).")
    return problems


# --- what kube-score knows (issue 12) -----------------------------------------------------
# Messages name the chart value to change through the component's values mapping
# (config.ValuesMapping: dotted keys, None when the chart has no such value); without one,
# helm create's names.
HELM_CREATE_VALUES = {"resources": "resources", "liveness_probe": "livenessProbe",
                      "readiness_probe": "readinessProbe", "hook_resources": None, "test_resources": None,
                      "pod_disruption_budget": None, "replica_count": "replicaCount"}


def values_key(values, name: str) -> str | None:
    """The chart value `name` (a ValuesMapping field) maps to, or None: the chart has none."""
    if values is None:
        return HELM_CREATE_VALUES.get(name)
    return getattr(values, name, HELM_CREATE_VALUES.get(name))


def _resources_key(c: Container, values) -> str | None:
    return values_key(values, {"hook": "hook_resources", "test": "test_resources"}.get(c.role, "resources"))


def selects(selector: Mapping | None, labels: Mapping | None) -> bool:
    """Does a label selector (a Service's plain map, or matchLabels/matchExpressions) select
    these labels? An empty selector selects nothing here (a Service without one has no
    automatic endpoints; a PodDisruptionBudget with {} would cover every pod)."""
    labels = labels or {}
    if not selector:
        return False
    if "matchLabels" in selector or "matchExpressions" in selector:
        plain = selector.get("matchLabels") or {}
        expressions = selector.get("matchExpressions") or []
    else:
        plain, expressions = selector, []
    if not plain and not expressions:
        return False
    if any(labels.get(k) != str(v) for k, v in plain.items()):
        return False
    for e in expressions:
        key, op, vals = e.get("key"), e.get("operator"), [str(v) for v in e.get("values") or []]
        if (op == "In" and labels.get(key) not in vals) or (op == "NotIn" and labels.get(key) in vals) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _serving_workloads(manifests: Iterable[Mapping]) -> list[Mapping]:
    return [m for m in manifests if m.get("kind") in SERVING and not quota.hook_of(m)]


def _pod_labels(m: Mapping) -> dict:
    return dict((((m.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})


def _labels(labels: Mapping) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels.items())) + "}"


def service_selector_problems(manifests: Iterable[Mapping]) -> list[str]:
    """Each Service with a selector selects the pods of a serving workload of the same release
    (kube-score's service-targets-pod), and a named targetPort is a port of those pods. A
    Service without a selector (ExternalName, hand-made Endpoints) is left alone."""
    manifests = list(manifests)
    workloads = _serving_workloads(manifests)
    problems = []
    for m in manifests:
        spec = m.get("spec") or {}
        if m.get("kind") != "Service" or not spec.get("selector") or spec.get("type") == "ExternalName":
            continue
        selector = spec["selector"]
        matched = [w for w in workloads if selects(selector, _pod_labels(w))]
        if not matched:
            seen = "; ".join(f"{_name(w)} pods carry {_labels(_pod_labels(w))}" for w in workloads) or "no workloads"
            problems.append(
                f"{_name(m)}: selector {_labels(selector)} matches no pod template of this release ({seen}); the "
                "Service would have no endpoints and every request to it would fail. Fix: make the Service's selector "
                "the labels the pod template carries (the chart's selectorLabels helper, used by both).")
            continue
        names = {p.get("name") for w in matched for c in (pod_spec(w) or {}).get("containers") or []
                 for p in c.get("ports") or []}
        for port in spec.get("ports") or []:
            target = port.get("targetPort")
            if isinstance(target, str) and not target.isdigit() and target not in names:
                problems.append(
                    f"{_name(m)}: port {port.get('name') or port.get('port')} targets the named port {target!r}, "
                    f"which no container of {', '.join(_name(w) for w in matched)} declares (named ports: "
                    f"{sorted(n for n in names if n) or 'none'}); its endpoints would have no such port. Fix: name "
                    "the container port the same, or target it by number.")
    return problems


def _handler(probe: Mapping) -> dict:
    return {k: probe[k] for k in ("httpGet", "exec", "tcpSocket", "grpc") if k in probe}


def identical_probe_problems(manifests: Iterable[Mapping], values=None, has_dependencies: bool = True) -> list[str]:
    """A serving container whose livenessProbe and readinessProbe ask the same thing
    (kube-score's container-probes-identical): when a dependency fails, either the pods are
    restarted for nothing (liveness checks it) or they keep getting traffic they cannot
    serve (readiness does not). A component with no dependencies (nothing in connects_to)
    has nothing more for readiness to check: not flagged."""
    if not has_dependencies:
        return []
    liveness, readiness = values_key(values, "liveness_probe"), values_key(values, "readiness_probe")
    where_set = (f"readiness_path in shipcheck.yaml (the suite sets {readiness}.httpGet.path)" if readiness
                 else "readiness_path in shipcheck.yaml and the chart's readinessProbe")
    problems = []
    for c in containers(manifests):
        live, ready = c.spec.get("livenessProbe"), c.spec.get("readinessProbe")
        if not c.serving or not live or not ready or _handler(live) != _handler(ready):
            continue
        problems.append(
            f"{c.where}: livenessProbe and readinessProbe are the same {_describe_probe(live)}, so a failing "
            "dependency either restarts the pod for nothing or leaves it in the Service while it cannot serve. "
            f"Fix: give readiness its own path that also checks what the pod needs to serve (the backend or "
            f"database it calls): {where_set}; keep liveness on the process's own health"
            + (f" ({liveness})." if liveness else "."))
    return problems


EPHEMERAL = "ephemeral-storage"


def ephemeral_storage_problems(manifests: Iterable[Mapping], values=None) -> list[str]:
    """requests and limits of ephemeral-storage on every container (kube-score's
    container-ephemeral-storage-request-and-limit): without a request the scheduler places
    pods on a node whose disk is full; without a limit one pod's logs, emptyDirs and writable
    layer can fill the node's disk and get other pods evicted."""
    problems = []
    for c in containers(manifests):
        resources = c.spec.get("resources") or {}
        missing = [f"{kind}.{EPHEMERAL}" for kind in ("requests", "limits")
                   if (resources.get(kind) or {}).get(EPHEMERAL) is None]
        if not missing:
            continue
        key = _resources_key(c, values)
        fix = (f"set {', '.join(f'{key}.{m}' for m in missing)} in the chart's values" if key
               else "add them to the template's resources (the chart has no value for this container's resources)")
        problems.append(
            f"{c.where}: no {', '.join('resources.' + m for m in missing)} (required on every container: the "
            "scheduler needs the request to place the pod on a node with disk to spare, and the limit keeps its "
            "logs, emptyDirs and writable layer from filling the node's disk). Fix: " + fix
            + " (at least what its emptyDir sizeLimits add up to, plus some 50Mi for logs).")
    return problems


# --- PodDisruptionBudgets -----------------------------------------------------------------
def _scaled_pdb(value, replicas: int) -> int:
    """minAvailable/maxUnavailable: an int, or a percentage of replicas rounded up (as the
    disruption controller does for both)."""
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * replicas // 100)
    return int(value)


def disruptions_allowed(pdb: Mapping, replicas: int) -> int:
    """Evictions the budget allows with every replica healthy (status.disruptionsAllowed)."""
    spec = pdb.get("spec") or {}
    if spec.get("minAvailable") is not None:
        return max(0, replicas - _scaled_pdb(spec["minAvailable"], replicas))
    if spec.get("maxUnavailable") is not None:
        return max(0, min(replicas, _scaled_pdb(spec["maxUnavailable"], replicas)))
    return 0  # neither: the API server rejects it; treat as blocking


def pdb_problems(manifests: Iterable[Mapping], values=None, required: bool = True) -> list[str]:
    """Every serving workload with more than one replica has exactly one PodDisruptionBudget
    in its release (kube-score's deployment-has-poddisruptionbudget), and that budget lets a
    node drain proceed while still protecting the workload. A budget on a one-replica
    workload is judged too: minAvailable 1 there blocks every drain. With `required` off (a
    chart that has no budget to switch on, such as helm create's), only the budgets that
    exist are judged.

    How "lets a drain proceed" is decided: with every replica healthy the budget must allow
    at least 1 eviction (minAvailable < replicas, or maxUnavailable >= 1), so draining a node
    evicts the pods one at a time, each replacement becoming ready on another node before
    the next goes; a budget that allows 0 (minAvailable = replicas or 100%, maxUnavailable 0)
    blocks `kubectl drain` forever. And it must keep at least 1 pod (disruptions allowed <
    replicas), else it protects nothing: a drain could take every replica at once. On a
    one-node cluster the drain still stops after the first eviction (the replacement has
    nowhere to run): that is the budget keeping the app up; drain it with --disable-eviction
    or add a node.
    """
    manifests = list(manifests)
    budgets = [m for m in manifests if m.get("kind") == "PodDisruptionBudget"]
    key = values_key(values, "pod_disruption_budget")
    problems = []
    for w in _serving_workloads(manifests):
        replicas = int((w.get("spec") or {}).get("replicas", 1))
        labels = _pod_labels(w)
        covering = [b for b in budgets if selects((b.get("spec") or {}).get("selector"), labels)]
        if not covering and (replicas <= 1 or not required):
            continue  # one replica: a drain takes it anyway; no budget required
        if not covering:
            problems.append(
                f"{_name(w)}: {replicas} replicas and no PodDisruptionBudget selects its pods: a node drain (a "
                "cluster upgrade, an autoscaler scale-down) may evict every replica at once. Fix: "
                + (f"set {key}.enabled: true in the chart's values" if key else
                   "add a PodDisruptionBudget to the chart (templates/pdb.yaml) with maxUnavailable: 1 and the pod "
                   "template's selector labels") + ".")
            continue
        if len(covering) > 1:
            problems.append(f"{_name(w)}: its pods are selected by {len(covering)} PodDisruptionBudgets "
                            f"({', '.join(_name(b) for b in covering)}); the eviction API refuses pods with more than "
                            "one, so a drain cannot evict them. Fix: keep one budget per workload.")
            continue
        budget = covering[0]
        allowed = disruptions_allowed(budget, replicas)
        spec = budget.get("spec") or {}
        setting = (f"minAvailable {spec['minAvailable']}" if spec.get("minAvailable") is not None
                   else f"maxUnavailable {spec.get('maxUnavailable')}")
        where = f"{_name(budget)} ({setting}, {replicas} replicas)"
        fix_key = f"{key}." if key else ""
        if allowed < 1:
            problems.append(
                f"{where}: allows {allowed} evictions with every replica healthy, required at least 1: `kubectl "
                f"drain` waits forever on these pods. Fix: set {fix_key}maxUnavailable: 1 (or {fix_key}minAvailable "
                f"at most {replicas - 1}).")
        elif allowed >= replicas and replicas > 1:
            problems.append(
                f"{where}: allows {allowed} evictions of {replicas} replicas, so a drain may take every pod at once "
                f"and the budget protects nothing. Fix: set {fix_key}maxUnavailable: 1 (or {fix_key}minAvailable: 1).")
    return problems


def quota_measured_problems(footprints: Iterable[quota.Footprint], hard: Mapping[str, str | int], quota_name: str,
                            values=None) -> list[str]:
    """A quota fit that summed nothing is no proof: the workloads whose pods leave out an
    amount the quota limits (an unmodified `helm create` chart requests nothing), each a
    problem. (Those pods would also be refused at deploy: "must specify requests.cpu".)"""
    key = values_key(values, "resources")
    found = quota.unmeasured(footprints, hard)
    return [f"{u}: the quota {quota_name} limits {', '.join(u.missing)}, so the fit check counted these pods as 0 "
            f"and the namespace would refuse them (\"must specify {u.missing[0]}\"). Fix: set "
            + (f"{key}.requests and {key}.limits" if key and u.group == "serving" else "requests and limits for them")
            + " in the chart's values." for u in found]
