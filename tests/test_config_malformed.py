"""Malformed input is refused before any side effect (issue 11): configuration documents,
--set values, --cluster and environment variables, each through `python -m shipcheck.validate`.

For every row: exit code 2, a line of stderr that starts with the field or variable, no
traceback, no secret value in the output, and no side effect. "No side effect" is proven with
an audit hook (PEP 578) that fails the row if validation starts a process, opens a socket or
writes, creates, renames or removes a file: no image, container, namespace or Secret can be
touched without one of those. The rows run in-process through `validate.main` (what
`python -m` runs); a few run as real subprocesses with DOCKER_HOST and KUBECONFIG pointing at
nothing and no docker, kubectl or helm on PATH. How long validation takes is measured by
bench/validate_speed.py, not asserted here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

from shipcheck import validate

CANARY = "hunter2-canary"  # in every secret value: no output may contain it
GOOD_ENV = {"API_KEY": f"sk-{CANARY}"}


# --- the guard ----------------------------------------------------------------------------
class SideEffect(AssertionError):
    pass


_guard = {"on": False, "seen": []}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_FORBIDDEN = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
              "pty.spawn", "socket.connect", "socket.bind", "socket.sendto", "os.mkdir", "os.remove", "os.rename",
              "os.rmdir", "os.symlink", "os.link", "os.truncate", "os.chmod", "os.chown", "shutil.rmtree",
              "shutil.copyfile", "shutil.move", "os.kill", "os.killpg", "signal.pthread_kill", "urllib.Request"}


def _audit(event: str, args: tuple) -> None:
    if not _guard["on"]:
        return
    if event in _FORBIDDEN:
        _guard["seen"].append((event, args))
    elif event == "open":
        path, mode, flags = (list(args) + [None, None])[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes:
            _guard["seen"].append((event, args))


sys.addaudithook(_audit)  # cannot be removed; it does nothing while the guard is off


def run_guarded(argv: list[str], environ: dict[str, str], capsys) -> tuple[int, str, str]:
    """validate.main(argv) with the side-effect guard on; (exit code, stdout, stderr)."""
    capsys.readouterr()
    _guard["seen"].clear()
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a first import writing its .pyc is not the validation's doing
    _guard["on"] = True
    try:
        code = validate.main(argv, environ=environ)
    finally:
        _guard["on"] = False
        sys.dont_write_bytecode = dont_write
    out, err = capsys.readouterr()
    if _guard["seen"]:
        raise SideEffect(f"validation had side effects: {_guard['seen'][:5]}")
    return code, out, err


# --- a valid two-tier project to break --------------------------------------------------------
def base_doc() -> dict:
    return {
        "app": "todo", "version": "v1.0.0", "entry": "web", "namespace": "todo",
        "resource_quota": {"requests.cpu": "3", "limits.memory": "8Gi", "pods": "10"},
        "timeouts_s": {"build": 600},
        "components": {
            "db": {"role": "database", "context": "app", "image": "todo-db", "port": 5432, "uid": 999,
                   "size_budget_mb": 250, "chart": "charts/db",
                   "database": {"user": "todo", "name": "todo", "password_secret": "db-auth",
                                "password_key": "password"}},
            "api": {"context": "app", "image": "todo-api", "port": 8000, "health_path": "/health",
                    "size_budget_mb": 300, "chart": "charts/api", "connects_to": ["db"],
                    "run_env": {"DATABASE_URL": "${secret:api-secret:database-url}"},
                    "values": {"existing_secret": "secret.existingSecret"}},
            "web": {"context": "app", "image": "todo-web", "port": 3000, "health_path": "/api/health",
                    "size_budget_mb": 200, "chart": "charts/web", "connects_to": ["api"],
                    "writable_paths": ["/tmp"], "run_env": {"API_BASE_URL": "http://api:8000"}},
        },
        "secrets": {"api-secret": {
            "database-url": {"database_url": {"scheme": "postgresql+psycopg", "env": "DATABASE_URL", "database": "db"}},
            "api-key": {"env": "API_KEY"}}},
        "config_maps": {"web-settings": {"LOG_LEVEL": "info"}},
        "checks": [
            {"name": "health", "request": {"path": "/api/health"}, "expect": {"status": 200}},
            {"name": "create", "request": {"method": "POST", "path": "/api/{user}/items", "json": {"t": "x {run}"}},
             "expect": {"status": 201}, "capture": {"item_id": "$.id"}},
            {"name": "delete", "request": {"method": "DELETE", "path": "/api/{user}/items/{item_id}"}},
        ],
    }


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    for chart in ("db", "api", "web"):
        (tmp_path / "charts" / chart).mkdir(parents=True)
        (tmp_path / "charts" / chart / "Chart.yaml").write_text(f"name: {chart}\n")
    (tmp_path / "shipcheck.yaml").write_text(yaml.safe_dump(base_doc(), sort_keys=False))
    return tmp_path


def edit(fn: Callable[[dict], None]) -> Callable[[dict], dict]:
    def mutate(doc: dict) -> dict:
        fn(doc)
        return doc
    return mutate


def comp(name: str, **fields) -> Callable[[dict], dict]:
    return edit(lambda d: d["components"][name].update(fields))


def top(**fields) -> Callable[[dict], dict]:
    return edit(lambda d: d.update(fields))


@dataclass
class Case:
    expect: str  # the start of one stderr line: the dotted field, the variable, or the option
    mutate: Callable[[dict], dict] | None = None  # applied to base_doc()
    text: str | bytes | None = None  # the file's content instead
    path: str | None = None  # "directory" or "missing": the config path itself is wrong
    sets: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # over GOOD_ENV
    cluster: str | None = None


LONG = "n" * 64
CASES: dict[str, Case] = {
    # -- the file itself
    "config path is a directory": Case("configuration file ", path="directory"),
    "config file missing": Case("configuration file ", path="missing"),
    "file not UTF-8": Case("configuration file ", text=b"app: caf\xe9\nversion: v1\n"),
    "invalid YAML": Case("{path}: not valid YAML at line", text="app: [unclosed\n"),
    "key written twice": Case("components.web.port: key 'port' appears twice at line",
                              text="app: a\nversion: v1\ncomponents:\n  web:\n    port: 1\n    port: 2\n"),
    "python tag in the file": Case("{path}: YAML tags such as !!python/object/apply:os.system",
                                   text="app: !!python/object/apply:os.system ['touch /tmp/pwned']\n"),
    "alias cycle": Case("a[0]: a YAML alias", text="a: &a [*a]\n"),
    "alias expansion bomb": Case("{path}: expands to more than", text="a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdef", "bcdefg"))),
    "control character in the file": Case("{path}: not valid YAML: character U+0007", text="app: \"a\x07\"\n"),
    "top level is a list": Case("configuration: expected a mapping", text="- app\n"),
    "empty file": Case("app: required field is missing", text=""),
    # -- schema rules
    "namespace of 64 characters": Case("namespace: must be a DNS-1123 label", top(namespace=LONG)),
    "namespace in capitals": Case("namespace: must be a DNS-1123 label", top(namespace="Todo")),
    "release of 54 characters": Case("components.api.release: must be a Helm release name",
                                     comp("api", release="r" * 54)),
    "UID 2^32": Case("components.api.uid: must be a non-root UID, 1-4294967294", comp("api", uid=2**32)),
    "UID 0": Case("components.web.uid: must be a non-root UID", comp("web", uid=0)),
    "port 70000": Case("components.api.port: must be 1-65535, got 70000", comp("api", port=70000)),
    "size budget NaN": Case("components.web.size_budget_mb: must be a finite number, got nan",
                            comp("web", size_budget_mb=float("nan"))),
    "timeout infinite": Case("timeouts_s.build: must be a finite number, got inf", top(timeouts_s={"build": float("inf")})),
    "version latest": Case("version: must be an image tag other than 'latest'", top(version="latest")),
    "component tag latest": Case("components.web.tag: must be an image tag other than 'latest'", comp("web", tag="latest")),
    "version with a space": Case("version: must be an image tag", top(version="v1 .0")),
    "image with a tag": Case("components.web.image: must be an image repository without a tag",
                             comp("web", image="todo-web:v2")),
    "kubernetes_version as a number": Case("kubernetes_version: expected a string, got number 1.3 (quote it)",
                                           top(kubernetes_version=1.30)),
    "unknown key (typo)": Case("components.web.helth_path: unknown key; did you mean health_path?",
                               comp("web", helth_path="/x")),
    "removed field uses_database": Case("components.api.uses_database: removed in configuration version 2",
                                        comp("api", uses_database=True)),
    "two sources for one key": Case("secrets.api-secret.api-key: give exactly one source",
                                    edit(lambda d: d["secrets"]["api-secret"]["api-key"].update(generate=32))),
    "a boolean key (yes:)": Case("config_maps.web-settings.True: the key is boolean true, not a string",
                                 edit(lambda d: d["config_maps"]["web-settings"].update({True: "1"}))),
    "a pasted key where the variable name goes": Case(
        "secrets.api-secret.api-key.env: must be the name of an environment variable",
        edit(lambda d: d["secrets"]["api-secret"]["api-key"].update(env=f"sk-or-v1-{CANARY}"))),
    "database_url scheme mysql": Case("secrets.api-secret.database-url.database_url.scheme: must be postgres",
                                      edit(lambda d: d["secrets"]["api-secret"]["database-url"]["database_url"].update(
                                          scheme="mysql"))),
    # -- what the schema cannot say
    "quota of lots": Case("resource_quota.pods: must be a non-negative Kubernetes quantity",
                          top(resource_quota={"pods": "lots"})),
    "quota of null": Case("resource_quota.pods: expected a string or a number, got null", top(resource_quota={"pods": None})),
    "quota key unknown": Case("resource_quota.request.cpu: not a ResourceQuota key", top(resource_quota={"request.cpu": "3"})),
    "quota negative": Case("resource_quota.requests.cpu: must be a non-negative", top(resource_quota={"requests.cpu": "-3"})),
    "duplicate releases": Case("components.web.release: 'api' is also the release of components.api",
                               comp("web", release="api")),
    "context outside the repository": Case("components.web.context: '/' is outside the repository", comp("web", context="/")),
    "context escaping with ..": Case("components.api.context: '..' is outside the repository", comp("api", context="..")),
    "dockerfile outside the repository": Case("components.web.dockerfile: '/etc/hostname' is outside the repository",
                                              comp("web", dockerfile="/etc/hostname")),
    "context missing": Case("components.web.context: directory 'nope' does not exist", comp("web", context="nope")),
    "chart without Chart.yaml": Case("components.web.chart: 'app' has no Chart.yaml", comp("web", chart="app")),
    "entry is the database": Case("entry: 'db' is not an app component", top(entry="db")),
    "connects_to a typo": Case("components.web.connects_to: 'apii' is not another component",
                               comp("web", connects_to=["apii"])),
    "database_url names an app": Case("secrets.api-secret.database-url.database_url.database: 'api' is not a database",
                                      edit(lambda d: d["secrets"]["api-secret"]["database-url"]["database_url"].update(
                                          database="api"))),
    "run_env names an undeclared Secret": Case("components.api.run_env.DATABASE_URL: ${secret:api-secrt:database-url} "
                                               "names no declared Secret key",
                                               comp("api", run_env={"DATABASE_URL": "${secret:api-secrt:database-url}"})),
    "check on an unknown component": Case("checks[0].component: 'backend' is not an app component",
                                          edit(lambda d: d["checks"][0].update(component="backend"))),
    "check uses a variable never captured": Case("checks[2].request: {item} is not captured",
                                                 edit(lambda d: d["checks"][2]["request"].update(
                                                     path="/api/{user}/items/{item}"))),
    # -- --set
    "--set value with an unclosed bracket": Case("--set 'version=[unclosed': not valid YAML", sets=("version=[unclosed",)),
    "--set value with a python tag": Case("--set 'version=!!python/name:os.system': YAML tags such as "
                                          "!!python/name:os.system are not allowed", sets=("version=!!python/name:os.system",)),
    "--set into a list": Case("--set 'components.web.writable_paths.0=/x': components.web.writable_paths is a list",
                              sets=("components.web.writable_paths.0=/x",)),
    "--set under a missing parent": Case("--set 'components.frontend.port=1': components.frontend is not in the "
                                         "configuration", sets=("components.frontend.port=1",)),
    "--set under a scalar": Case("--set 'app.name=x': app is string", sets=("app.name=x",)),
    "--set without =": Case("--set 'namespace': expected KEY=VALUE", sets=("namespace",)),
    "--set a 64-character namespace": Case("namespace: must be a DNS-1123 label", sets=(f"namespace={LONG}",)),
    "--set a quota of lots": Case("resource_quota.pods: must be a non-negative Kubernetes quantity",
                                  sets=("resource_quota.pods=lots",)),
    "--set a duplicate key": Case("A: key 'A' appears twice", sets=("components.web.run_env={A: '1', A: '2'}",)),
    # -- --cluster
    "--cluster unknown": Case("--cluster 'gke': must be one of auto, existing, minikube, kind, k3d, local", cluster="gke"),
    # -- environment
    "DATABASE_URL without a host": Case("DATABASE_URL: no host after postgres://", env={"DATABASE_URL": "postgres://"}),
    "DATABASE_URL of MySQL": Case("DATABASE_URL: scheme 'mysql' is not PostgreSQL",
                                  env={"DATABASE_URL": f"mysql://todo:{CANARY}@db:3306/todo"}),
    "DATABASE_URL not a URL": Case("DATABASE_URL: not a URL", env={"DATABASE_URL": CANARY}),
    "DATABASE_URL with a bad port": Case("DATABASE_URL: the host or port part is not valid",
                                         env={"DATABASE_URL": f"postgresql://u:{CANARY}@h:99999/d"}),
    "DATABASE_URL with a newline": Case("DATABASE_URL: contains a newline at the end",
                                        env={"DATABASE_URL": f"postgresql://u:{CANARY}@h/d\n"}),
    "API key with a newline inside": Case("API_KEY: contains a newline inside the value",
                                          env={"API_KEY": f"sk-{CANARY}\nsk-2"}),
    "API key with an escape sequence": Case("API_KEY: contains a control character (U+001B)",
                                            env={"API_KEY": f"\x1b[2J{CANARY}"}),
    "required API key unset": Case("API_KEY: not set; secrets.api-secret.api-key takes its value from it",
                                   env={"API_KEY": None}),
    "registry user without password": Case("REGISTRY_PASSWORD: not set while REGISTRY_USERNAME is",
                                           sets=("registry=registry.example.com/team",),
                                           env={"REGISTRY_USERNAME": "me"}),
}


def argv_and_env(case: Case, project: Path) -> tuple[list[str], dict[str, str], Path]:
    path = project / "shipcheck.yaml"
    if case.path == "directory":
        path = project
    elif case.path == "missing":
        path = project / "nope.yaml"
    elif isinstance(case.text, bytes):
        path.write_bytes(case.text)
    elif case.text is not None:
        path.write_text(case.text)
    elif case.mutate is not None:
        path.write_text(yaml.safe_dump(case.mutate(base_doc()), sort_keys=False))
    argv = ["--shipcheck-config", str(path), *[a for s in case.sets for a in ("--set", s)]]
    if case.cluster:
        argv += ["--cluster", case.cluster]
    environ = {k: v for k, v in {**GOOD_ENV, **case.env}.items() if v is not None}
    return argv, environ, path


def test_there_are_at_least_40_malformed_inputs():
    assert len(CASES) >= 40


def test_the_base_project_is_valid(project, capsys):
    code, out, err = run_guarded(["--shipcheck-config", str(project / "shipcheck.yaml")], GOOD_ENV, capsys)
    assert (code, err) == (0, "") and out.startswith(f"shipcheck: {project / 'shipcheck.yaml'} is valid: todo v1.0.0")


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_input_is_refused_before_any_side_effect(project, capsys, name):
    case = CASES[name]
    argv, environ, path = argv_and_env(case, project)
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    code, out, err = run_guarded(argv, environ, capsys)
    lines = err.splitlines()
    expect = case.expect.replace("{path}", str(path))
    assert code == 2, (code, out, err)
    assert any(line.startswith(expect) for line in lines), f"no line starts with {expect!r}:\n{err}"
    assert lines[-1].startswith("shipcheck: ") and "nothing was built or deployed" in lines[-1]
    assert "Traceback" not in out + err and CANARY not in out + err
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before  # nothing written beside it


# --- the real command line, with nothing to reach -------------------------------------------------
def _unreachable_env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir(exist_ok=True)
    env = {"PATH": str(empty_bin), "HOME": str(tmp_path / "home"), "PYTHONPATH": str(Path(validate.__file__).parents[1]),
           "PYTHONDONTWRITEBYTECODE": "1", "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
           "KUBECONFIG": str(tmp_path / "no-kubeconfig"), **GOOD_ENV}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


@pytest.mark.parametrize("name", ["key written twice", "--set value with a python tag", "quota of lots",
                                  "context outside the repository", "DATABASE_URL of MySQL", "--cluster unknown"])
def test_python_m_shipcheck_validate_refuses_it_with_nothing_to_reach(project, tmp_path, name):
    case = CASES[name]
    argv, _, path = argv_and_env(case, project)
    result = subprocess.run([sys.executable, "-m", "shipcheck.validate", *argv], capture_output=True, text=True,
                            env=_unreachable_env(tmp_path, case.env), cwd=tmp_path, timeout=60)
    expect = case.expect.replace("{path}", str(path))
    assert result.returncode == 2, result
    assert any(line.startswith(expect) for line in result.stderr.splitlines()), result.stderr
    assert "Traceback" not in result.stdout + result.stderr and CANARY not in result.stdout + result.stderr


def test_python_m_shipcheck_validate_passes_a_good_project(project, tmp_path):
    result = subprocess.run([sys.executable, "-m", "shipcheck.validate", "--shipcheck-config",
                             str(project / "shipcheck.yaml")], capture_output=True, text=True,
                            env=_unreachable_env(tmp_path, {}), cwd=tmp_path, timeout=60)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert "is valid: todo v1.0.0, 3 components, 3 checks, namespace todo" in result.stdout


def test_the_guard_sees_a_side_effect(capsys, tmp_path, monkeypatch):
    """The guard itself: a validation that wrote a file would fail its row."""
    def writes(*args, **kwargs):
        (tmp_path / "x").write_text("x")
        return None, ["x: a problem"]
    monkeypatch.setattr(validate, "problems", writes)
    with pytest.raises(SideEffect, match="open"):
        run_guarded(["--shipcheck-config", "x"], {}, capsys)


def test_pytest_arguments_pass_through_with_ignore_unknown(project, capsys):
    """./pipeline hands its pytest arguments over as they are: ours are read, pytest's ignored."""
    path = project / "shipcheck.yaml"
    argv = ["--ignore-unknown", "-k", "not slow", f"--shipcheck-config={path}", "-x", "--set=namespace=Bad",
            "stages/", "--cluster", "kind", "--values-profile", "small"]
    code, _, err = run_guarded(argv, GOOD_ENV, capsys)
    assert code == 2 and err.startswith("namespace: must be a DNS-1123 label")


def test_unknown_arguments_are_refused_without_ignore_unknown(project, capsys):
    with pytest.raises(SystemExit) as info:
        validate.main(["--shipcheck-config", str(project / "shipcheck.yaml"), "-k", "x"], environ=GOOD_ENV)
    assert info.value.code == 2 and "unrecognized arguments: -k x" in capsys.readouterr().err
