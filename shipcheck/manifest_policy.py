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
