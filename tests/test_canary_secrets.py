"""A canary secret never reaches an artifact of a run (issue 11, item 3), on the real cluster.

Canary values are registered the way users give secrets, then the REAL stages 1-5 run in an
inner pytest run in a namespace of our own, building the images under names of their own
(shipcheck-canary/...), and every artifact of that run is searched for each form a value
takes on its way into output (commands.derived_forms: the value, URL-encoded and -decoded,
base64 in every alignment and both alphabets, each line, a URL's password, repr/JSON escapes):

  canary                    given as
  an API key                OPENROUTER_API_KEY (the app's optional key: it reaches its pod)
  a DATABASE_URL-style URL  SHIPCHECK_CANARY_URL, an extra key of the app's Secret (--set secrets...)
  a database password       the in-cluster PostgreSQL's password Secret, made before the run (the
                            suite keeps a generated password it finds), so the app's database URL
                            the suite writes carries it, URL-encoded ('/', '+', '@' and ':' in it)

  artifacts searched: the HTML report, JUnit XML, summary.json and every file in reports/, the
  inner run's captured output, the layers and config of each image it built (docker save),
  the helm release records (`helm get all` of every release), the namespace's ConfigMaps,
  events, workloads and pods as the API shows them, and the command line of every process
  seen on this machine while the run went on (sampled every 0.5 s).

The Secrets themselves hold the values (that is their job) and are not searched.

Run: .venv/bin/python -m pytest tests/test_canary_secrets.py -o addopts= -p no:cacheprovider
"""

from __future__ import annotations

import io
import secrets
import tarfile
import threading
import urllib.parse
from pathlib import Path

import pipeline_lab
import pytest

from shipcheck import app_secrets, commands, kube

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

NAMESPACE = f"shipcheck-faults-{secrets.token_hex(3)}"
IMAGE_PREFIX = "shipcheck-canary/"
STAGES = [f"stages/{name}" for name in ("test_01_build.py", "test_02_containers.py", "test_03_charts.py",
                                         "test_04_deploy.py", "test_05_health.py")]
ONE_REPLICA = pipeline_lab.REPO / "tests" / "seeded" / "deploy" / "one-replica.yaml"
TOKEN = secrets.token_hex(8)
API_KEY = f"sk-or-v1-canary{TOKEN}apikey"
URL_PASSWORD = f"canaryUrlPw{TOKEN}"
CANARY_URL = f"postgresql://canary:{URL_PASSWORD}@db.canary.invalid:5432/canary"
DB_PASSWORD = f"Canary/{TOKEN}+db@pw:x"  # characters a URL must encode


def forms() -> dict[str, str]:
    """Every derived form of every canary -> which canary it came from."""
    cfg = pipeline_lab.app_config()
    db = cfg.components["todo-postgres"]
    database_url = app_secrets.database_url(db, DB_PASSWORD, f"{db.release}.{NAMESPACE}.svc.cluster.local",
                                            "postgresql+psycopg")
    found: dict[str, str] = {}
    for name, value in (("API key", API_KEY), ("DATABASE_URL-style value", CANARY_URL),
                        ("database password", DB_PASSWORD), ("the app's database URL", database_url)):
        for form in commands.derived_forms(value):
            if len(form) >= commands.MIN_SECRET_LEN:
                found.setdefault(form, name)
    return found


class CommandLines:
    """Every process command line seen on this machine while it runs (a background sampler)."""

    def __init__(self, every_s: float = 0.5):
        self.seen: set[str] = set()
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            for _, argv in commands.running_commands(lambda argv: True):
                self.seen.add("\0".join(argv))

    def __enter__(self) -> "CommandLines":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def image_texts(ref: str) -> dict[str, bytes]:
    """Each file of `docker save REF` (layer tars, the image config, manifests), by name."""
    import docker

    engine = docker.from_env(timeout=300)
    data = b"".join(engine.images.get(ref).save(named=True))
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        for member in outer.getmembers():
            if member.isfile():
                found[f"{ref}: {member.name}"] = outer.extractfile(member).read()
    return found


def cluster_texts(lab_apis: kube.KubeApis, helm) -> dict[str, bytes]:
    """helm's release records, and the namespace's ConfigMaps, events, workloads and pods."""
    found: dict[str, bytes] = {}
    for release in helm.releases():
        found[f"helm get all {release}"] = helm.run("get", "all", release).stdout.encode()
    as_text = lambda objects: str([kube.plain(lab_apis, o) for o in objects]).encode()  # noqa: E731
    found["ConfigMaps"] = as_text(lab_apis.core.list_namespaced_config_map(NAMESPACE).items)
    found["events"] = as_text(lab_apis.core.list_namespaced_event(NAMESPACE).items)
    found["pods"] = as_text(lab_apis.core.list_namespaced_pod(NAMESPACE).items)
    found["Deployments"] = as_text(lab_apis.apps.list_namespaced_deployment(NAMESPACE).items)
    found["StatefulSets"] = as_text(lab_apis.apps.list_namespaced_stateful_set(NAMESPACE).items)
    found["Jobs"] = as_text(lab_apis.batch.list_namespaced_job(NAMESPACE).items)
    return found


@pytest.fixture(scope="module")
def canary_run(request, lab_namespace, kube_apis, lab_cluster, kubectl_argv, tmp_path_factory):
    """Stages 1-5 with the canaries, and every artifact of the run by name."""
    cfg = pipeline_lab.app_config()
    db = cfg.components["todo-postgres"].database
    kube.apply(kube_apis, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                           {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                            "metadata": {"name": db.password_secret, "namespace": NAMESPACE},
                            "stringData": {db.password_key: DB_PASSWORD}}])
    sets = (f"namespace={NAMESPACE}", "timeouts_s.readiness_grace=15",
            "secrets.todo-backend-secret.canary-url={env: SHIPCHECK_CANARY_URL}",
            *(f"components.{c.name}.image={IMAGE_PREFIX}{c.image}" for c in cfg.components.values()),
            *(f"components.{name}.values_files=[{ONE_REPLICA}]" for name in ("todo-backend", "todo-frontend")))
    directory = tmp_path_factory.mktemp("canary")
    inner = pipeline_lab.Inner(_Dir(directory), STAGES, sets, name="canary", prebuilt=False,
                               env={"OPENROUTER_API_KEY": API_KEY, "SHIPCHECK_CANARY_URL": CANARY_URL})
    with CommandLines() as seen:
        run = inner.finish(inner.start(), timeout_s=1800)
    texts = {"captured output": run.output.encode(), "HTML report": run.html.encode(),
             "JUnit XML": run.junit_xml.encode(), "summary.json": run.summary_json.encode()}
    for path in (directory / "reports").rglob("*"):
        if path.is_file():
            texts[f"reports/{path.relative_to(directory / 'reports')}"] = path.read_bytes()
    texts.update({f"process {argv.split(chr(0))[0]}": argv.encode() for argv in seen.seen})
    for c in cfg.components.values():
        ref = f"{IMAGE_PREFIX}{c.image}:{c.tag}"
        texts.update(image_texts(ref))
    helm = pipeline_lab.deploy_target(lab_cluster, kube_apis, kubectl_argv, NAMESPACE, timeout_s=120,
                                      readiness_grace_s=15).helm
    texts.update(cluster_texts(kube_apis, helm))
    yield run, texts
    remove_images([f"{IMAGE_PREFIX}{c.image}:{c.tag}" for c in cfg.components.values()])


class _Dir:
    """What pipeline_lab.Inner needs of a pytester: a directory to work in."""

    def __init__(self, path: Path):
        self.path = path


def remove_images(refs: list[str]) -> None:
    """Our own tags, from the engine and from the local cluster's containerd."""
    import docker

    engine = docker.from_env(timeout=120)
    for ref in refs:
        try:
            engine.images.remove(ref, force=False)
        except docker.errors.APIError:
            pass
        if Path("/run/shipcheck-containerd/containerd.sock").exists():
            commands.run(["ctr", "--address", "/run/shipcheck-containerd/containerd.sock", "-n", "k8s.io", "images",
                          "rm", f"docker.io/{ref}"], check=False, timeout_s=60)


def test_the_canary_run_is_green(canary_run):
    """The canaries went where secrets go (the run needed them and passed)."""
    run, _ = canary_run
    bad = {test: outcome for test, outcome in run.outcomes().items() if outcome not in ("passed", "skipped")}
    assert run.cases and not bad, f"{bad}\n{run.tail()}"


def test_no_form_of_a_canary_is_in_any_artifact(canary_run):
    _, texts = canary_run
    leaks = []
    for form, canary in forms().items():
        needle = form.encode()
        for artifact, data in texts.items():
            if needle in data:
                at = data.index(needle)
                leaks.append(f"{artifact}: a form of the {canary} ({len(form)} characters) at byte {at}: "
                             f"...{data[max(0, at - 60):at].decode(errors='replace')}[FORM]...")
    assert not leaks, f"{len(leaks)} leak(s):\n" + "\n".join(leaks[:30])
    # The search itself reached everything it names.
    names = " ".join(texts)
    for expected in ("HTML report", "JUnit XML", "summary.json", "captured output", "helm get all todo-backend",
                     "ConfigMaps", "process "):
        assert expected in names, f"no {expected} searched"
    assert sum(1 for n in texts if n.startswith(IMAGE_PREFIX)) >= 3


def test_the_canaries_reached_the_cluster_where_they_belong(canary_run, kube_apis):
    """Control: the values are in the Secrets (where they belong), so their absence elsewhere
    is meaningful."""
    read = app_secrets.read_from_cluster(kube_apis.core, NAMESPACE)
    assert read("todo-backend-secret", "openrouter-api-key") == API_KEY
    assert read("todo-backend-secret", "canary-url") == CANARY_URL
    assert read("todo-postgres-auth", "postgres-password") == DB_PASSWORD
    assert urllib.parse.quote(DB_PASSWORD, safe="") in read("todo-backend-secret", "database-url")
