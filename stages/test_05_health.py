"""Stage 5: watch the running release and prove the app works end to end.

Pod health, events, resource usage against requests and limits, the namespace quota,
service DNS from inside the frontend, the todo flow through the frontend, `helm test`,
a real browser on the page, and a zero-downtime upgrade under a request loop.
"""

import secrets
import time

import pytest

from shipcheck import (browser, commands, containers, deploy, metrics, namespace, netpol, netpol_live, quota,
                       report_charts, traffic)

pytestmark = pytest.mark.order(5)
# The frontend answers /api/* by proxying to the backend: a failure there is the path between.
PROXY_FIX = ("Fix: the frontend proxies /api/* to its API_BASE_URL (the backend's Service); check that value and "
             "the backend's readiness; the frontend's log (attached) names where it tried to go.")
API_FIX = "Fix: the backend's task API misbehaves; see the backend's log (attached) and its database."
MEMORY_SHARE_LIMIT = 0.9  # working set above 90 % of the memory limit is one spike from OOMKilled


@pytest.fixture(scope="module")
def live(deployment):
    """The deployment, only when every release is up (stage 4 proved it)."""
    if not deployment.outcomes or not all(o.ok for o in deployment.outcomes.values()) or deployment.fit_problems:
        pytest.skip("the deploy did not succeed (stage 4)")
    return deployment


@pytest.fixture
def pods(live, kube, cfg, component):
    if component not in live.components:
        pytest.skip(f"{component.name} is not deployed")
    return deploy.serving_pods(deploy.release_objects(kube, cfg.namespace, component.release)[1])


@pytest.fixture(scope="module")
def frontend(live, cfg):
    """The app component that others reach through (the one whose run_env names another)."""
    for app in cfg.apps:
        if any(f"://{other.name}:" in v for other in cfg.apps for v in app.run_env.values()):
            return app
    pytest.skip("no frontend component (an app whose run_env names another)")


@pytest.fixture(scope="module")
def frontend_url(kubectl, cfg, frontend):
    with traffic.port_forward(kubectl, cfg.namespace, frontend.release, frontend.port) as url:
        yield url


def test_no_restarts_and_no_oomkilled(pods, component):
    bad = []
    for pod in pods:
        for cs in pod["status"].get("containerStatuses") or []:
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if cs.get("restartCount") or last:
                bad.append(f"{pod['metadata']['name']}/{cs['name']}: {cs.get('restartCount')} restart(s), last "
                           f"termination {last.get('reason')} (exit {last.get('exitCode')})")
    assert not bad, (f"{component.release}: {len(bad)} container(s) restarted, limit 0: {bad}. Fix: "
                     + ("raise resources.limits.memory" if "OOMKilled" in str(bad) else
                        "read the previous container's log (attached) and fix the crash or the liveness probe"))


def test_no_warning_events_since_deploy(live, kube, cfg):
    names = tuple(c.release for c in live.components)
    pods_now = {p.metadata.name for p in kube.core.list_namespaced_pod(cfg.namespace).items}
    warnings, tolerated = [], []
    for event in kube.core.list_namespaced_event(cfg.namespace).items:
        seen = event.last_timestamp or event.event_time or event.first_timestamp
        if event.type != "Warning" or not (event.involved_object.name or "").startswith(names):
            continue
        if seen and seen.timestamp() < live.started_at - 1:
            continue
        line = f"{event.involved_object.kind}/{event.involved_object.name}: {event.reason} x{event.count or 1}: {event.message}"
        # A startup probe failing while the app boots is what startup probes are for; a
        # probe failing on a pod a rollout has since replaced was that pod shutting down.
        expected = event.reason == "Unhealthy" and ((event.message or "").startswith("Startup probe failed")
                                                     or event.involved_object.name not in pods_now)
        (tolerated if expected else warnings).append(line)
    assert not warnings, (f"{len(warnings)} Warning event(s) since the deploy, limit 0:\n" + "\n".join(warnings)
                          + "\nFix: each names its object and reason; see the attached pod descriptions.")


def test_usage_under_limits(live, kube, cfg, figures):
    node = kube.core.list_node().items[0].metadata.name
    usage = metrics.pod_usage(metrics.read_summary(kube, node), cfg.namespace)
    rows, problems = [], []
    for component in live.components:
        for pod in deploy.serving_pods(deploy.release_objects(kube, cfg.namespace, component.release)[1]):
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
    assert rows, f"no usage figures for namespace {cfg.namespace} from the kubelet summary on node {node}"
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


def test_backend_dns_resolves_from_frontend_pod(live, kubectl, cfg, frontend):
    """From inside a frontend pod: each service it names resolves through cluster DNS and answers."""
    for other in cfg.apps:
        if other is frontend:
            continue
        host = f"{other.release}.{cfg.namespace}.svc.cluster.local"
        script = (f"require('dns').lookup('{host}',(e,a)=>{{if(e){{console.log('DNS '+e.code);process.exit(2)}}"
                  f"require('http').get('http://{host}:{other.port}{other.health_path}',r=>{{console.log(a+' '+r.statusCode);"
                  f"process.exit(r.statusCode===200?0:3)}}).on('error',x=>{{console.log('HTTP '+x.code);process.exit(4)}})}})")
        result = commands.run([*kubectl, "exec", "-n", cfg.namespace, f"deploy/{frontend.release}", "--", "node", "-e",
                               script], check=False, timeout_s=60)
        assert result.ok, (f"from {frontend.release}: {host} -> {result.stdout.strip() or result.stderr.strip()[-300:]}; "
                           f"expected it to resolve and GET {other.health_path} to answer 200. Fix: check CoreDNS "
                           "(kube-system), the Service name, and the NetworkPolicy allowing the frontend.")


def test_todo_flow_end_to_end(frontend_url, figures):
    """Health, then create, list, complete and delete a task, and one chat command, all
    through the frontend (its proxy to the backend, the backend to PostgreSQL)."""
    status, body = containers.http_get(frontend_url + "/api/health")
    assert status == 200, (f"GET /api/health through the frontend answered {status}: {body[:200]}; expected 200. "
                           "Fix: see the frontend's log and pod description (attached).")
    user = f"e2e-{secrets.token_hex(3)}"
    base = f"{frontend_url}/api/{user}"
    status, task = containers.http_json("POST", f"{base}/tasks", {"title": "buy milk (end to end)"})
    assert status == 201, f"POST /api/{user}/tasks answered {status}: {task}; expected 201. {PROXY_FIX}"
    status, listed = containers.http_json("GET", f"{base}/tasks")
    assert status == 200 and [t["id"] for t in listed] == [task["id"]], (
        f"GET tasks answered {status}: {listed}; expected 200 and the one task. {API_FIX}")
    status, done = containers.http_json("PATCH", f"{base}/tasks/{task['id']}/complete")
    assert status == 200 and done["completed"] is True, (
        f"PATCH complete answered {status}: {done}; expected 200, completed. {API_FIX}")
    status, _ = containers.http_json("DELETE", f"{base}/tasks/{task['id']}")
    assert status == 204, f"DELETE answered {status}, expected 204. {API_FIX}"
    status, chat = containers.http_json("POST", f"{base}/chat", {"message": "add water the plants"})
    assert status == 200 and any(c["name"] == "add_task" for c in chat.get("tool_calls", [])), (
        f"chat 'add water the plants' answered {status}: {chat}; expected an add_task tool call. {API_FIX}")
    status, listed = containers.http_json("GET", f"{base}/tasks")
    assert any("water the plants" in t["title"] for t in listed), f"the chat's task is not listed: {listed}. {API_FIX}"
    for t in listed:
        containers.http_json("DELETE", f"{base}/tasks/{t['id']}")


def test_helm_test_passes(live, helm, component):
    if component not in live.components:
        pytest.skip(f"{component.name} is not deployed")
    result = helm.run("test", component.release, "--logs", "--timeout", "180s", check=False, timeout_s=240)
    # helm writes the verdict to stderr and the test pod's log (--logs) to stdout: both belong here.
    assert result.ok, (f"`helm test {component.release}` failed:\n{result.tail(40, both=True)}\n"
                       "Fix: the test pod checks the Service's health paths; its log is above.")


def test_page_renders_in_a_browser(frontend_url, figures):
    title = f"browser check {secrets.token_hex(2)}"
    status, task = containers.http_json("POST", f"{frontend_url}/api/demo/tasks", {"title": title})
    assert status == 201, (f"could not create the demo task before rendering the page: POST /api/demo/tasks "
                           f"answered {status}: {task}; expected 201. {PROXY_FIX}")
    try:
        dom, png = browser.render(frontend_url + "/")
    finally:
        containers.http_json("DELETE", f"{frontend_url}/api/demo/tasks/{task['id']}")
    figures.add_png("the deployed frontend (headless Chromium)", png)
    assert 'data-testid="task-list"' in dom and title in dom, (
        f"the page rendered by Chromium does not list the task {title!r} (DOM of {len(dom)} characters). "
        "Fix: the page must fetch /api/demo/tasks through the frontend's proxy; see the screenshot in the report.")


def test_zero_downtime_upgrade(live, cfg, cluster, kube, kubectl, helm, built, docker_client, figures):
    """Every app release is upgraded to a new image tag and back, one after another, while
    a request loop hits the frontend through the API server's service proxy (which, unlike a
    port-forward, follows the Service's ready endpoints). Every request must succeed."""
    front = next(a for a in cfg.apps if a.run_env)
    apps = [c for c in live.components if c.role == "app"]
    tag = f"{cfg.version}-zd"
    for app in apps:
        docker_client.images.get(built(app)).tag(app.image, tag)
        cluster.load_image(f"{app.image}:{tag}")

    def upgrade(app, image_tag: str | None) -> deploy.Outcome:
        files, tree = live.values[app.name]
        values = {**tree, "image": {**tree["image"], "tag": image_tag}} if image_tag else tree
        return deploy.deploy_release(helm, kube, kubectl, app.release, app.chart, values, files, cfg.timeouts_s["deploy"])

    user = f"zd-{secrets.token_hex(3)}"
    with traffic.service_proxy(kubectl, cfg.namespace, front.release, front.port) as base:
        urls = [base + front.health_path, f"{base}/api/{user}/tasks"]
        with traffic.RequestLoop(urls, interval_s=0.05) as loop:
            time.sleep(1)
            # One release at a time, as stage 4 deploys and as the quota fit was computed: two
            # rolling updates at once (plus pods still terminating) overflow limits.cpu.
            up = [upgrade(app, tag) for app in apps]
            down = [upgrade(app, None) for app in apps]  # back to the configured tag: the next run has nothing to change
            time.sleep(1)
    figures.add("zero downtime", releases=", ".join(a.release for a in apps), requests=loop.result.total,
                failed=loop.result.failed, seconds=round(loop.result.duration_s, 1),
                rollouts=sum(1 for o in up + down if o.ok and not o.skipped))
    assert all(o.ok for o in up + down), "upgrade failed: " + "; ".join(o.message for o in up + down if not o.ok)
    assert loop.result.total > 0 and loop.result.failed == 0, (
        f"during the rolling updates: {loop.result}; limit 0 failed. Fix: readiness probes must gate traffic, "
        "maxUnavailable 0, and a preStop sleep must cover the endpoint removal (preStopSleepSeconds).")


# --- NetworkPolicies, live ------------------------------------------------------------------
def running_pod(kube, cfg, component) -> dict | None:
    pods = deploy.serving_pods(deploy.release_objects(kube, cfg.namespace, component.release)[1])
    return next((p for p in pods if (p.get("status") or {}).get("phase") == "Running"), None)


@pytest.fixture(scope="module")
def probe_image(live, kube, cfg):
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
    pytest.skip("no deployed app image has python3 or node, which the NetworkPolicy probe pods need for a TCP client")


@pytest.fixture(scope="module")
def enforcement(live, kube, cfg, probe_image, figures):
    """Whether this cluster enforces NetworkPolicies: the deny test in a scratch namespace."""
    image, interpreter, uid = probe_image
    result = netpol_live.enforcement(kube, f"{cfg.namespace}-netpol-check-{secrets.token_hex(2)}", image, interpreter, uid)
    figures.add("network policy enforcement", image=image, **result.row())
    return result


def test_network_policies_enforced_live(live, kube, cfg, probe_image, enforcement, figures):
    """From inside the cluster: each declared path works (from a pod of the client to the
    server's Service), and a pod whose labels match no component is refused by every
    non-entry component that a NetworkPolicy isolates."""
    if not enforcement.enforced:
        pytest.skip(f"this cluster does not enforce NetworkPolicies ({enforcement.reason}, "
                    f"{enforcement.seconds:.1f} s); the static gate of stage 3 still judged them")
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
