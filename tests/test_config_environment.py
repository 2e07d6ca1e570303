"""The environment the configuration names (environment.py): required variables present, no
control characters, a PostgreSQL URL with a host, registry credentials as a pair, and never a
value in a message."""

from pathlib import Path

import pytest

from shipcheck import config, environment

CANARY = "hunter2-canary"  # in every secret value below: no message may contain it


def cfg_with(secrets: dict, registry: str = "") -> config.Config:
    web = config.Component("web", Path("/c"), Path("/c/Dockerfile"), "web", 3000, 100, health_path="/health")
    db = config.Component("db", Path("/c"), Path("/c/Dockerfile"), "db", 5432, 100, role="database",
                          database=config.Database("u", "n", "db-auth", "pw"))
    return config.Config(root=Path("/"), app="a", version="v1", components={"web": web, "db": db}, entry="web",
                         registry=registry, secrets={"app-secret": secrets})


URL_IN_CLUSTER = config.KeySource("database_url", env="DATABASE_URL", scheme="postgresql+psycopg", database="db")
URL_EXTERNAL_ONLY = config.KeySource("database_url", env="DATABASE_URL", scheme="postgresql")
API_KEY = config.KeySource("env", env="API_KEY")
OPTIONAL_KEY = config.KeySource("env", env="OPT_KEY", optional=True)
GENERATED = config.KeySource("generate", length=32)
CFG = cfg_with({"database-url": URL_IN_CLUSTER, "api-key": API_KEY, "opt": OPTIONAL_KEY, "auth": GENERATED})
GOOD = {"API_KEY": f"sk-{CANARY}"}


def test_a_good_environment_has_no_problems():
    assert environment.check(CFG, GOOD) == []
    assert environment.check(CFG, {**GOOD, "OPT_KEY": "x", "DATABASE_URL": f"postgres://u:{CANARY}@db.example:5432/d"}) == []


@pytest.mark.parametrize("url", ["postgres://u:p@h/d", "postgresql://h", "postgresql+psycopg://u:p@h:6543/d?sslmode=require",
                                 "postgresql+asyncpg://u@[::1]:5432/d", "POSTGRESQL://u:p@h/d"])
def test_postgresql_urls_with_a_host_are_accepted(url):
    assert environment.check(CFG, {**GOOD, "DATABASE_URL": url}) == []


def test_database_url_unset_means_the_in_cluster_database():
    assert environment.check(CFG, {**GOOD, "DATABASE_URL": "  "}) == []  # blank: unset, as the suite always read it


def test_database_url_is_required_without_an_in_cluster_database():
    cfg = cfg_with({"database-url": URL_EXTERNAL_ONLY})
    assert environment.check(cfg, {}) == [
        "DATABASE_URL: not set; secrets.app-secret.database-url needs an external database's URL and no in-cluster "
        "database is declared. Fix: export DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DATABASE, or add "
        "database: <component>"]


@pytest.mark.parametrize("environ, problem", [
    ({}, "API_KEY: not set; secrets.app-secret.api-key takes its value from it. Fix: export API_KEY, or mark the key "
         "optional: true in the configuration"),
    ({"API_KEY": ""}, "API_KEY: set but empty; secrets.app-secret.api-key takes its value from it."),
    ({"API_KEY": " \t"}, "API_KEY: set but empty;"),
])
def test_a_required_variable_must_be_set(environ, problem):
    (found,) = environment.check(CFG, environ)
    assert found.startswith(problem)


URL_FORMAT = "expected postgresql://USER:PASSWORD@HOST:5432/DATABASE"


@pytest.mark.parametrize("url, problem", [
    ("postgres://", f"DATABASE_URL: no host after postgres://; {URL_FORMAT}"),
    (f"postgresql://u:{CANARY}@/db", f"DATABASE_URL: no host after postgresql://; {URL_FORMAT}"),
    (f"mysql://u:{CANARY}@h/db", f"DATABASE_URL: scheme 'mysql' is not PostgreSQL; {URL_FORMAT} (postgres:// and "
                                 "postgresql+DRIVER:// are accepted too; the suite writes the configured scheme)"),
    (f"sqlite:///{CANARY}.db", "DATABASE_URL: scheme 'sqlite' is not PostgreSQL;"),
    (f"{CANARY}@h/db", f"DATABASE_URL: not a URL (no scheme://); {URL_FORMAT}"),
    (f"p@{CANARY}://h/db", "DATABASE_URL: scheme another is not PostgreSQL;"),  # not a scheme: never shown
    (f"postgresql://u:{CANARY}@h:99999/db", "DATABASE_URL: the host or port part is not valid (the port must be a "
                                            f"number 0-65535); {URL_FORMAT}"),
    (f"postgresql://u:{CANARY}@h:port/db", "DATABASE_URL: the host or port part is not valid"),
    ("postgresql+://u@h/db", "DATABASE_URL: scheme 'postgresql+' is not PostgreSQL;"),
])
def test_a_database_url_must_be_postgresql_with_a_host(url, problem):
    (found,) = environment.check(CFG, {**GOOD, "DATABASE_URL": url})
    assert found.startswith(problem) and CANARY not in found


@pytest.mark.parametrize("value, problem", [
    (f"sk-{CANARY}\n", "API_KEY: contains a newline at the end; a Secret value must be one line of printable text. "
                       "Fix: set it again without the line break (a trailing newline usually comes from `$(cat file)` "
                       "or echo)"),
    (f"sk-{CANARY}\r\n", "API_KEY: contains a carriage return at the end;"),
    (f"\nsk-{CANARY}", "API_KEY: contains a newline at the start; a Secret value must be one line of printable text. "
                       "Fix: set it again without control characters"),
    (f"sk-{CANARY}\nsecond line", "API_KEY: contains a newline inside the value;"),
    (f"sk-\t{CANARY}", "API_KEY: contains a tab inside the value;"),
    (f"sk-{CANARY}\x00", "API_KEY: contains a NUL character at the end;"),
    (f"sk-\x1b[31m{CANARY}", "API_KEY: contains a control character (U+001B) inside the value;"),
    (f"sk-{CANARY}\x7f", "API_KEY: contains a control character (U+007F) at the end;"),
    (f"sk-\x85{CANARY}", "API_KEY: contains a control character (U+0085) inside the value;"),
])
def test_control_characters_are_refused_without_quoting_the_value(value, problem):
    (found,) = environment.check(CFG, {"API_KEY": value})
    assert found.startswith(problem) and CANARY not in found


def test_control_characters_in_an_optional_variable_and_the_database_url_are_refused():
    found = environment.check(CFG, {**GOOD, "OPT_KEY": "a\nb", "DATABASE_URL": f"postgresql://u:{CANARY}@h/d\n"})
    assert [p.split(":")[0] for p in found] == ["DATABASE_URL", "OPT_KEY"]
    assert all(CANARY not in p for p in found)


def test_non_ascii_printable_text_is_fine():
    assert environment.check(CFG, {"API_KEY": "clé-ünïcode-✓"}) == []


@pytest.mark.parametrize("environ, problems", [
    ({}, []),
    ({"REGISTRY_USERNAME": "me", "REGISTRY_PASSWORD": CANARY}, []),
    ({"REGISTRY_USERNAME": "me"}, ["REGISTRY_PASSWORD: not set while REGISTRY_USERNAME is; registry credentials come "
                                   "as a pair. Fix: export both, or neither for a registry that needs no login "
                                   "(registry.example.com/team)"]),
    ({"REGISTRY_PASSWORD": CANARY, "REGISTRY_USERNAME": ""}, ["REGISTRY_USERNAME: not set while REGISTRY_PASSWORD is; "
                                                              "registry credentials come as a pair. Fix: export both, "
                                                              "or neither for a registry that needs no login "
                                                              "(registry.example.com/team)"]),
    ({"REGISTRY_USERNAME": "me", "REGISTRY_PASSWORD": f"{CANARY}\n"}, [
        "REGISTRY_PASSWORD: contains a newline at the end; a Secret value must be one line of printable text. Fix: set "
        "it again without the line break (a trailing newline usually comes from `$(cat file)` or echo)"]),
])
def test_registry_credentials_come_as_a_pair(environ, problems):
    cfg = cfg_with({"k": GENERATED}, registry="registry.example.com/team")
    assert environment.check(cfg, environ) == problems


def test_registry_credentials_are_ignored_without_a_registry():
    assert environment.check(cfg_with({"k": GENERATED}), {"REGISTRY_USERNAME": "me"}) == []
