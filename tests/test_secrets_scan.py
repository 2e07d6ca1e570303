"""Secret scanning over image ENV, labels, build history and layer file names (secrets_scan.py).

Every secret here is fake. A finding names where and which rule, never the value.
"""

import pytest

from shipcheck import secrets_scan
from shipcheck.secrets_scan import Finding

OPENROUTER = "sk-or-v1-" + "0" * 64
PEM = "-----BEGIN " + "PRIVATE KEY-----\nbm90LWEtcmVhbC1rZXk=\n-----END " + "PRIVATE KEY-----\n"

SECRET_VALUES = [
    ("private key block", PEM),
    ("private key block", "-----BEGIN OPENSSH PRIVATE KEY-----"),
    ("private key block", "-----BEGIN EC PRIVATE KEY-----"),
    ("URL with a password", "postgres://u:p@h/db"),
    ("URL with a password", "postgresql+asyncpg://todo:s3cret@todo-postgres:5432/todo?sslmode=require"),
    ("URL with a password", "https://deploy:tok@github.com/example/todo.git"),
    ("OpenRouter/OpenAI key", OPENROUTER),
    ("OpenRouter/OpenAI key", "sk-proj-" + "a1B2" * 8),
    ("AWS access key id", "AKIA" + "ABCDEFGHIJKLMNOP"),
    ("GitHub token", "ghp_" + "a" * 36),
    ("Slack token", "xoxb-1234567890-abcdef"),
    ("JSON web token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"),
]

HARMLESS_VALUES = [
    "postgresql://todo@todo-postgres:5432/todo",  # no password
    "http://localhost:8000/health",
    "http://todo-backend:8000",
    "/usr/local/bin:/usr/bin:/bin",
    "sk-short",
    "v1.0.0",
    "-----BEGIN CERTIFICATE-----",
    "7169605F62C751356D054A26A821E680E5FA6305",  # the official python image's GPG_KEY
]


@pytest.mark.parametrize("rule, value", SECRET_VALUES, ids=[f"{r}: {v[:24]}" for r, v in SECRET_VALUES])
def test_secret_values_are_found_whatever_they_are_called(rule, value):
    assert secrets_scan.scan_value("ENV X", value) == [Finding("ENV X", rule)]


@pytest.mark.parametrize("value", HARMLESS_VALUES)
def test_ordinary_values_are_not_secrets(value):
    assert secrets_scan.scan_value("ENV X", value) == []


def test_a_url_with_a_password_and_no_user_is_found():
    assert secrets_scan.scan_value("ENV REDIS_URL", "redis://:s3cret@redis:6379/0") == [
        Finding("ENV REDIS_URL", "URL with a password")]


# --- names that say "secret" ------------------------------------------------------------------
@pytest.mark.parametrize("key", ["DB_PASSWORD", "POSTGRES_PASSWD", "JWT_SECRET", "GITHUB_TOKEN", "OPENROUTER_API_KEY",
                                 "APIKEY", "PRIVATE_KEY", "AWS_ACCESS_KEY", "GOOGLE_CREDENTIALS", "AUTH_KEY",
                                 "deploy-token"])
def test_a_secret_named_key_with_a_value_is_a_finding(key):
    assert secrets_scan.scan_pair("ENV K", key, "x7Gq-not-real") == [Finding("ENV K", f"secret-named key {key} has a value")]


@pytest.mark.parametrize("value", ["", "true", "False", "0", "1", "none", "NULL", "changeme", "/run/secrets/db",
                                   "${DB_PASSWORD}", "$TOKEN", '""', "''"])
def test_a_secret_named_key_with_a_placeholder_is_harmless(value):
    assert secrets_scan.scan_pair("ENV DB_PASSWORD", "DB_PASSWORD", value) == []


@pytest.mark.parametrize("key", ["GPG_KEY", "PYTHON_VERSION", "NODE_ENV", "KEYBOARD", "PORT"])
def test_ordinary_names_are_not_secret_names(key):
    assert secrets_scan.scan_pair("ENV K", key, "7169605F62C751356D054A26A821E680E5FA6305") == []


def test_a_secret_value_under_a_secret_name_is_reported_once_by_its_value_rule():
    assert secrets_scan.scan_pair("ENV OPENROUTER_API_KEY", "OPENROUTER_API_KEY", OPENROUTER) == [
        Finding("ENV OPENROUTER_API_KEY", "OpenRouter/OpenAI key")]


# --- ENV, labels, history ----------------------------------------------------------------------
def test_scan_env_names_each_variable_and_never_the_value():
    env = ["PATH=/usr/local/bin:/usr/bin", "PYTHONDONTWRITEBYTECODE=1", f"OPENROUTER_API_KEY={OPENROUTER}",
           "DATABASE_URL=postgres://u:p@h/db", "DB_PASSWORD=hunter2", "DB_PASSWORD_FILE=/run/secrets/db", "NOVALUE"]
    findings = secrets_scan.scan_env(env)
    assert [str(f) for f in findings] == [
        "ENV OPENROUTER_API_KEY (OpenRouter/OpenAI key)",
        "ENV DATABASE_URL (URL with a password)",
        "ENV DB_PASSWORD (secret-named key DB_PASSWORD has a value)",
    ]
    for secret in (OPENROUTER, "u:p@h", "hunter2"):
        assert not any(secret in str(f) for f in findings)


def test_scan_labels_judges_the_last_part_of_a_dotted_key():
    labels = {"org.opencontainers.image.version": "v1.0.0", "org.opencontainers.image.source": "https://example.com/x",
              "io.example.deploy-token": "tok-not-a-real-token-1234",
              "org.opencontainers.image.url": "https://bot:s3cret@example.com/x"}
    assert [str(f) for f in secrets_scan.scan_labels(labels)] == [
        "LABEL io.example.deploy-token (secret-named key deploy-token has a value)",
        "LABEL org.opencontainers.image.url (URL with a password)",
    ]
    assert secrets_scan.scan_labels(None) == [] and secrets_scan.scan_labels({}) == []


HISTORY = [
    "/bin/sh -c #(nop) ADD file:0123 in / ",
    "ENV PYTHONDONTWRITEBYTECODE=1",
    "ARG DB_PASSWORD=not-a-real-password",
    "RUN |1 DB_PASSWORD=not-a-real-password /bin/sh -c cd /app && echo \"seeding with $DB_PASSWORD\" > /dev/null # buildkit",
    "RUN |1 NPM_TOKEN= /bin/sh -c npm ci # buildkit",
    "RUN /bin/sh -c pip install --index-url https://u:pw@pypi.example.com/simple todo # buildkit",
    "RUN /bin/sh -c --mount=type=secret,id=ca,target=/etc/ssl/ca.crt pip install -r requirements.txt # buildkit",
    "ENV API_TOKEN=abc123456 API_TOKEN=abc123456",
]


def test_scan_history_finds_build_args_and_urls_by_step():
    assert [str(f) for f in secrets_scan.scan_history(HISTORY)] == [
        "history step 3 (secret-named key DB_PASSWORD has a value)",
        "history step 4 (secret-named key DB_PASSWORD has a value)",
        "history step 6 (URL with a password)",
        "history step 8 (secret-named key API_TOKEN has a value)",  # once per step
    ]


def test_scan_history_of_a_clean_image_is_empty():
    assert secrets_scan.scan_history(["/bin/sh -c #(nop)  CMD [\"python3\"]", "USER 1001:1001",
                                      "HEALTHCHECK &{[\"CMD\" \"python3\"] \"30s\" \"5s\" \"0s\" '\\x03'}"]) == []


# --- files in layers -------------------------------------------------------------------------------
def _no_read():
    raise AssertionError("read_head must be called only for key files")


@pytest.mark.parametrize("path", ["/app/.env", "/app/config/.env.production", "/root/.ssh/id_rsa",
                                  "/home/app/.ssh/id_ed25519", "/certs/client.p12", "/certs/client.pfx",
                                  "/root/.netrc", "/root/.pgpass", "/root/.git-credentials"])
def test_secret_file_names_are_secrets_without_reading_them(path):
    name = path.rsplit("/", 1)[1]
    assert secrets_scan.secret_file_rule(path, _no_read) == f"secret file name {name}"


@pytest.mark.parametrize("path", ["/app/.env.example", "/app/.env.sample", "/app/.env.template", "/app/env.py",
                                  "/root/.ssh/id_rsa.pub", "/app/environment", "/usr/lib/python3/keyword.py"])
def test_ordinary_and_example_files_are_not_secrets(path):
    assert secrets_scan.secret_file_rule(path, _no_read) is None


@pytest.mark.parametrize("path", ["/app/deploy-key.pem", "/etc/ssl/private/server.key"])
def test_a_key_file_is_a_secret_only_when_it_holds_a_private_key(path):
    assert secrets_scan.secret_file_rule(path, lambda: PEM.encode()) == "private key"
    public = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    assert secrets_scan.secret_file_rule(path, lambda: public) is None
