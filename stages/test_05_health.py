"""Stage 5: watch the running release and prove the app works end to end.

Pod health, events, resource usage against requests and limits, the namespace quota,
service DNS from inside the entry component, the checks declared in shipcheck.yaml
through the cluster, `helm test`, and zero downtime across a rolling update.
"""

import concurrent.futures
import contextlib
import secrets
import time

import pytest

from shipcheck import checks, deploy, kube as kube_mod, metrics, namespace, plan as plan_mod, quota, reach
from shipcheck import deploy_fixtures, helm as helm_mod, plugin, progress, proofs, report, report_charts
from shipcheck import netpol, netpol_live, rollout, traffic

pytestmark = pytest.mark.order(5)
MEMORY_SHARE_LIMIT = 0.9  # working set above 90 % of the memory limit is one spike from OOMKilled


@pytest.fixture(scope="module")
def live(deployment):
    """The deployment, only when every release is up (stage 4 proved it)."""
    if not deployment.ok:
        pytest.skip("the deploy did not succeed (stage 4)")
    return deployment


@pytest.fixture(scope="module", autouse=True)
def roll_back_when_unhealthy(request, deployment, deploy_target, figures):
    """A deploy is done only when its health is proven: when a gate of this stage fails, every
    release this run changed goes back to its previous revision (a first install is removed)
    and is shown serving, unless --keep-failed asks to leave it for debugging."""
    yield
    if not plugin.stage_failed(5) or not deployment.changed():
        return
    keep = request.config.getoption("keep_failed")
    for outcome in reversed(deployment.changed()):
        if keep:
            what = f"left at revision {outcome.revision} for debugging (--keep-failed)"
        else:
            what = deploy.restore_previous(deploy_target, outcome.release, outcome.previous_revision)
        progress.say(f"stage 5 failed: release {outcome.release} {what}")
        figures.add("after the failed health stage", release=outcome.release, action=what)


@pytest.fixture
def pods(live, kube, cfg, component) -> list[dict]:
    if component not in live.components:
        pytest.skip(f"{component.name} is not deployed")
    return rollout.serving_pods(kube_mod.read_release(kube, cfg.namespace, component.release).pods)


@pytest.fixture(scope="module")
def usage(live, kube, cfg):
    """Working set and CPU of the namespace's containers, from the kubelet of every node."""
    found = {}
    for node in kube.core.list_node().items:
        found.update(metrics.pod_usage(metrics.read_summary(kube, node.metadata.name), cfg.namespace))
    return found


@pytest.fixture(scope="module")
def service_urls(live, kubectl, cfg):
    """component name -> a loopback URL of its Service (a port-forward, opened when first asked)."""
    with contextlib.ExitStack() as stack:
        opened: dict[str, str] = {}

        def url_for(name: str) -> str:
            component = cfg.components.get(name)
            if component is None or component not in live.components:
                raise checks.Unreachable(f"{name} is not deployed")
            if name not in opened:
                opened[name] = stack.enter_context(traffic.port_forward(kubectl, cfg.namespace, component.release,
                                                                        component.port))
            return opened[name]
        yield url_for


def test_no_restarts_and_no_oomkilled(pods, component, usage):
    bad = []
    for pod in pods:
        for cs in pod["status"].get("containerStatuses") or []:
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if not (cs.get("restartCount") or last):
                continue
            line = (f"{pod['metadata']['name']}/{cs['name']}: {cs.get('restartCount')} restart(s), last termination "
                    f"{last.get('reason')} (exit {last.get('exitCode')})")
            if last.get("reason") == "OOMKilled":
                used = (usage.get(pod["metadata"]["name"]) or {}).get(cs["name"])
                line += (f", memory limit {rollout.container_limit(pod, cs['name'], 'memory')}, working set now "
                         f"{used['memory_bytes'] / 2**20:.0f} MiB" if used else ", no usage sample yet")
            bad.append(line)
    assert not bad, (f"{component.release}: {len(bad)} container(s) restarted, limit 0: {bad}. Fix: "
                     + (rollout.FIX["OOMKilled"] if "OOMKilled" in str(bad) else
                        "read the previous container's log (attached) and fix the crash or the liveness probe"))


def ready_since(pod: dict) -> float | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return rollout.timestamp(condition.get("lastTransitionTime"))
    return None


def test_no_warning_events_since_deploy(live, kube, cfg):
    states = {p.release: kube_mod.read_release(kube, cfg.namespace, p.release) for p in live.plan.releases}
    ready = {p["metadata"]["name"]: ready_since(p) for s in states.values() for p in s.pods}
    warnings = []
    for state in states.values():
        for event in state.events:
            if event.type != "Warning" or (event.last_s or time.time()) < live.started_at - 1:
                continue
            # Probes failing while a pod starts are its start (a chart without a startup probe
            # fails readiness until the app listens); a probe failing on a pod a rollout has
            # since replaced was that pod shutting down. Neither is a health problem.
            probe = event.reason == "Unhealthy"
            starting = probe and (event.message.startswith("Startup probe failed") or (
                event.message.startswith("Readiness probe failed") and ready.get(event.name)
                and (event.last_s or 0) <= ready[event.name] + 2))
            if not (starting or (probe and event.name not in ready)):
                warnings.append(str(event))
    assert not warnings, (f"{len(warnings)} Warning event(s) since the deploy, limit 0:\n" + "\n".join(warnings)
                          + "\nFix: each names its object and reason; see the attached pod descriptions.")


def test_usage_under_limits(live, kube, cfg, usage, figures):
    rows, problems = [], []
    for plan in live.plan.releases:
        for pod in rollout.serving_pods(kube_mod.read_release(kube, cfg.namespace, plan.release).pods):
            name = pod["metadata"]["name"]
            for container in pod["spec"]["containers"]:
                used = usage.get(name, {}).get(container["name"])
                if used is None:
                    continue
                res = container.get("resources") or {}
                req, lim = res.get("requests") or {}, res.get("limits") or {}
                cpu_lim = float(quota.parse_quantity(lim["cpu"]) * 1000) if "cpu" in lim else None
                mem_lim = float(quota.parse_quantity(lim["memory"])) / 2**20 if "memory" in lim else None
                cpu, mem = used["cpu_millicores"], used["memory_bytes"] / 2**20
                rows.append({"pod": name, "container": container["name"], "resource": "cpu m", "usage": cpu,
                             "request": float(quota.parse_quantity(req.get("cpu", "0")) * 1000), "limit": cpu_lim})
                rows.append({"pod": name, "container": container["name"], "resource": "memory MiB", "usage": mem,
                             "request": float(quota.parse_quantity(req.get("memory", "0"))) / 2**20, "limit": mem_lim})
                if mem_lim and mem > MEMORY_SHARE_LIMIT * mem_lim:
                    problems.append(f"{name}/{container['name']}: memory {mem:.0f} MiB > {MEMORY_SHARE_LIMIT:.0%} of "
                                    f"its limit {mem_lim:.0f} MiB")
                if cpu_lim and cpu > cpu_lim:
                    problems.append(f"{name}/{container['name']}: cpu {cpu:.0f}m > limit {cpu_lim:.0f}m")
    for row in rows:
        figures.add("resource usage", **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()})
    figures.add_html("resource usage against requests and limits", report_charts.usage_bars(rows))
    assert rows, f"no usage figures for namespace {cfg.namespace} from the kubelets (Summary API)"
    assert not problems, ("usage over limits: " + "; ".join(problems)
                          + ". Fix: raise resources.limits in the chart values, or find the leak.")


def test_quota_used_under_hard(live, kube, cfg, figures):
    if not cfg.resource_quota:
        pytest.skip("no ResourceQuota configured")
    status = kube.core.read_namespaced_resource_quota(namespace.quota_name(cfg), cfg.namespace).status
    over = []
    for resource, hard in (status.hard or {}).items():
        used = quota.parse_quantity((status.used or {}).get(resource, "0"))
        limit = quota.parse_quantity(hard)
        figures.add("quota used", resource=resource, used=str((status.used or {}).get(resource, "0")), hard=hard,
                    share=f"{used / limit:.0%}" if limit else "-")
        if used >= limit:
            over.append(f"{resource} used {status.used.get(resource)} of hard {hard}")
    assert not over, (f"ResourceQuota {namespace.quota_name(cfg)}: {over}; at the limit no rolling update can add "
                      "its surge pod. Fix: lower the releases' resources or raise the quota.")


def test_services_resolve_and_answer_from_the_entry_pod(live, kube, cfg):
    """From inside a pod of the entry component: each component it connects to resolves
    through cluster DNS and answers (its health path, or its port)."""
    entry = cfg.entry_component
    targets = [cfg.components[name] for name in entry.connects_to if cfg.components[name] in live.components]
    if not targets:
        pytest.skip(f"{entry.name} declares no connects_to among the deployed components")
    pods = [p for p in rollout.serving_pods(kube_mod.read_release(kube, cfg.namespace, entry.release).pods)
            if rollout.is_running_and_ready(p)]
    assert pods, f"{entry.release}: no ready pod to ask from (see stage 4)"
    for target in targets:
        host = f"{target.release}.{cfg.namespace}.svc.cluster.local"
        reached = reach.from_pod(kube, cfg.namespace, pods[0]["metadata"]["name"], host, target.port,
                                 target.health_path)
        if not reached.client:
            pytest.skip(f"{entry.name}'s image has no client to ask with (node, python3, wget, curl)")
        assert reached.ok, (f"from {pods[0]['metadata']['name']}: {host}:{target.port} -> {reached}; expected it to "
                            f"resolve and answer{f' GET {target.health_path} with 200' if target.health_path else ''}. "
                            "Fix: 'DNS' means CoreDNS or the Service name; a refused or timed-out connection means the "
                            "Service has no ready endpoints or a NetworkPolicy refuses the entry component.")


def test_declared_checks_pass_through_the_cluster(request, live, cfg, service_urls, figures):
    results = checks.run(cfg.checks, 5, service_urls)
    for result in results:
        figures.add("checks (stage 5)", check=result.check, component=result.component, ok=result.ok,
                    request=result.request, status=result.status, seconds=round(result.duration_s, 2))
        if result.screenshot_png:
            report.attach_png(request, f"{result.check} (headless Chromium)", result.screenshot_png)
    if not results:
        pytest.skip("no checks declared for stage 5 in shipcheck.yaml")
    assert not checks.first_failure(results), checks.failure_message(results)


def test_helm_test_passes(live, helm, kube, cfg, component, figures):
    if component not in live.components:
        pytest.skip(f"{component.name} is not deployed")
    if not component.helm_test:
        pytest.skip(f"helm_test: false for {component.name} in shipcheck.yaml")
    outcome = live.outcomes[component.name]
    digest = next(p.digest() for p in live.plan.releases if p.release == component.release)
    passed = proofs.helm_test_passed(kube, cfg.namespace, component.release, digest)
    if outcome.skipped and passed:  # nothing deployed this run, and this very render passed before
        figures.add("reused", what=f"helm test {component.release}", detail=f"{passed}, unchanged since")
        return
    result = helm.test(component.release)
    if "no tests found" in result.stdout.lower() or (result.ok and "TEST SUITE:" not in result.stdout):
        pytest.skip(f"{component.release} has no helm test")
    # helm writes the verdict to stderr and the test pod's log (--logs) to stdout: both belong here.
    assert result.ok, (f"`helm test {component.release}` failed:\n{result.tail(40, both=True)}\n"
                       "Fix: the test pod's log and events are above; a refused pod (Pod Security, quota) names why.")
    proofs.record_helm_test(kube, cfg.namespace, component.release, digest, outcome.revision)


def synthetic_proof(live, cfg, deliver, kube, helm, deploy_target, built, docker_client) -> tuple:
    """Every app release is rolled to a new image tag and back, one after another, while the
    request loop of stage 4 runs through the API server's service proxy (which, unlike a
    port-forward, follows the Service's ready endpoints). The new tag reaches the cluster as
    stage 1's did: loaded into the nodes, or pushed and pinned by digest (`deliver`)."""
    apps = [p for p in live.plan.releases if p.component.role == "app"]
    tag = f"{cfg.version}-zd"
    tags = {}
    for p in apps:
        docker_client.images.get(built(p.component)).tag(p.component.image, tag)
        tags[p.release] = deliver(f"{p.component.image}:{tag}")
    with deploy_fixtures.request_loop(cfg, kube, live.plan) as loop:
        time.sleep(1)
        # One release at a time, as stage 4 deploys and as the quota fit was computed.
        up = [deploy.deploy(deploy_target, plan_mod.with_image_tag(helm, p, tags[p.release])) for p in apps]
        down = [deploy.deploy(deploy_target, p) for p in apps]  # back to the plan: the next run has nothing to change
        time.sleep(1)
    failed = [o.message for o in up + down if not o.ok]
    return loop.result, failed


def test_zero_downtime(request, live, cfg, deliver, kube, helm, deploy_target, built, docker_client, figures):
    """Every request succeeds while releases roll. The proof is the real upgrade of stage 4
    when it changed a serving release; else the one recorded for exactly this render (chart,
    values, images); else (a first install, or --prove-zero-downtime) a synthetic roll of
    every app to a new tag and back."""
    key = proofs.key([p.digest() for p in live.plan.releases])
    forced = request.config.getoption("prove_zero_downtime")
    if live.upgrade_loop is not None and not forced:
        how, result, failed = "real upgrade", live.upgrade_loop, []
    else:
        recorded = proofs.read(kube, cfg.namespace)
        if not forced and not live.changed() and recorded is not None and recorded.key == key:
            figures.add("zero downtime", proof="reused", detail=recorded.describe())
            progress.say(f"zero downtime: {recorded.describe()}")
            return
        how = "synthetic"
        result, failed = synthetic_proof(live, cfg, deliver, kube, helm, deploy_target, built, docker_client)
    figures.add("zero downtime", proof=how, requests=result.total, failed=result.failed,
                seconds=round(result.duration_s, 1), releases=", ".join(o.release for o in live.changed()) or "-")
    assert not failed, "a rollout of the proof failed: " + "; ".join(failed)
    assert result.total > 0 and result.failed == 0, (
        f"during the rolling updates ({how}): {result}; limit 0 failed. Fix: readiness probes must gate traffic, "
        "maxUnavailable 0, and a preStop sleep must cover the endpoint removal.")
    revisions = {p.release: helm_mod.last_deployed_revision(helm.history(p.release)) for p in live.plan.releases}
    proofs.record(kube, cfg.namespace, proofs.Proof(key, how, revisions, result.total, result.failed, time.time()))


# --- NetworkPolicies, live ------------------------------------------------------------------
def running_pod(kube, cfg, component) -> dict | None:
    pods = rollout.serving_pods(kube_mod.read_release(kube, cfg.namespace, component.release).pods)
    return next((p for p in pods if (p.get("status") or {}).get("phase") == "Running"), None)


def find_probe_image(live, kube, cfg) -> tuple[str, str, int] | None:
    """(image, interpreter, uid): an app image already on the nodes with a TCP client (python3
    or node), found by asking a running pod of each app; the probe pods reuse it (no registry)."""
    for app in live.components:
        pod = running_pod(kube, cfg, app)
        if pod is None:
            continue
        container = pod["spec"]["containers"][0]
        interpreter = netpol_live.find_interpreter(kube, cfg.namespace, pod["metadata"]["name"], container["name"])
        if interpreter:
            return container["image"], interpreter, app.uid
    return None


@pytest.fixture(scope="module", autouse=True)
def enforcement(request, live, kube, cfg):
    """Whether this cluster enforces NetworkPolicies: the deny test in a scratch namespace. It
    spends seconds waiting for two pods to start, so it starts with the stage and runs beside
    the other gates (only when the live NetworkPolicy gate is to run); the gate waits for it."""
    if not any(item.originalname == "test_network_policies_enforced_live" for item in request.session.items):
        yield None
        return

    def deny_test() -> tuple[tuple[str, str, int] | None, netpol_live.Enforcement | None]:
        found = find_probe_image(live, kube, cfg)
        scratch = f"{cfg.namespace}-netpol-check-{secrets.token_hex(2)}"
        return found, found and netpol_live.enforcement(kube, scratch, *found)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(deny_test)


def test_network_policies_enforced_live(live, kube, cfg, enforcement, figures):
    """From inside the cluster: each declared path works (from a pod of the client to the
    server's Service), and a pod whose labels match no component is refused by every
    non-entry component that a NetworkPolicy isolates."""
    deployed = {c.name: c for c in live.components}
    problems, started = [], time.monotonic()

    def service(c):
        return f"{c.release}.{cfg.namespace}.svc.cluster.local"

    for path in netpol.declared_paths(cfg.components):
        client, server = deployed.get(path.client), deployed.get(path.server)
        if client is None or server is None:
            continue
        pod = running_pod(kube, cfg, client)
        container = pod["spec"]["containers"][0]["name"] if pod else None
        interpreter = pod and netpol_live.find_interpreter(kube, cfg.namespace, pod["metadata"]["name"], container)
        if not interpreter:
            figures.add("network policy paths (live)", path=str(path), result="not probed: no python3/node in the client")
            continue
        (outcome,) = netpol_live.connect_from_pod(kube, cfg.namespace, pod["metadata"]["name"], interpreter,
                                                  [netpol_live.Target(service(server), server.port, "open", 5.0)], container)
        figures.add("network policy paths (live)", path=str(path), result=str(outcome))
        if not outcome.ok:
            problems.append(f"{path}: from pod {pod['metadata']['name']}, {outcome}; expected open (declared). Fix: admit "
                            f"{path.client}'s pod labels in {path.server}'s NetworkPolicy (networkPolicy.allowedClients)")
    # The declared paths were probed while the deny test ran; their verdict counts only where
    # policies are enforced.
    probe_image, verdict = enforcement.result()
    if probe_image is None:
        pytest.skip("no deployed app image has python3 or node, which the NetworkPolicy probe pods need for a TCP client")
    figures.add("network policy enforcement", image=probe_image[0], **verdict.row())
    if not verdict.enforced:
        pytest.skip(f"{'could not tell whether this cluster enforces' if verdict.enforced is None else 'this cluster does not enforce'} NetworkPolicies ({verdict.reason}, "
                    f"{verdict.seconds:.1f} s); the static gate of stage 3 still judged them")
    # The stranger is refused only where a policy isolates the component (none: not a failure).
    entry, policies = netpol.entry_component(cfg), netpol_live.live_policies(kube, cfg.namespace)
    isolated = []
    for c in deployed.values():
        pod = running_pod(kube, cfg, c)
        if c.name != entry and pod and netpol_live.isolated_for_ingress(policies, cfg.namespace,
                                                                         pod["metadata"].get("labels") or {}):
            isolated.append(c)
    image, interpreter, uid = probe_image
    # Retried until refused, for up to 15 s: a loaded node can take seconds to program a policy.
    targets = [netpol_live.Target(service(c), c.port, "closed", 15.0) for c in isolated]
    for outcome in netpol_live.connect_from_stranger(kube, cfg.namespace, image, interpreter, targets, uid) if targets else []:
        figures.add("network policy paths (live)", path=f"stranger -> {outcome.host}:{outcome.port}", result=str(outcome))
        if outcome.result not in ("refused", "timeout"):
            problems.append(f"a pod labelled {netpol.STRANGER_LABELS} (matching no component) -> {outcome}; expected "
                            "refused (only declared clients may connect). Fix: narrow the server's NetworkPolicy "
                            "(networkPolicy.allowedClients) to its declared clients; stage 3 names the rule")
    figures.add("network policy enforcement", image=image, enforced="live probe",
                seconds=round(time.monotonic() - started, 1), reason=f"{len(problems)} problem(s)")
    assert not problems, "NetworkPolicies on the running release:\n" + "\n".join(problems)
