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


# --- files in layers: names ------------------------------------------------------------------------
def _no_read():
    raise AssertionError("a file with a secret name is reported without reading it")


@pytest.mark.parametrize("path", ["/app/.env", "/app/config/.env.production", "/root/.ssh/id_rsa",
                                  "/home/app/.ssh/id_ed25519", "/certs/client.p12", "/certs/client.pfx",
                                  "/root/.netrc", "/root/.pgpass", "/root/.git-credentials"])
def test_secret_file_names_are_secrets_without_reading_them(path):
    name = path.rsplit("/", 1)[1]
    assert secrets_scan.file_rule(path, _no_read) == f"secret file name {name}"


@pytest.mark.parametrize("path", ["/app/.env.example", "/app/.env.sample", "/app/.env.template", "/app/env.py",
                                  "/root/.ssh/id_rsa.pub", "/app/environment", "/usr/lib/python3/keyword.py"])
def test_ordinary_and_example_files_are_not_secrets(path):
    assert secrets_scan.file_rule(path, lambda: b"") is None


@pytest.mark.parametrize("path", ["/app/deploy-key.pem", "/etc/ssl/private/server.key"])
def test_a_key_file_is_a_secret_only_when_it_holds_a_private_key(path):
    assert secrets_scan.file_rule(path, lambda: PEM.encode()) == "private key"
    public = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    assert secrets_scan.file_rule(path, lambda: public) is None


# --- file contents, whatever the file is called ----------------------------------------------------
# Fake key material, assembled at run time so that no file of this repository holds a key
# shape that a scanner of the repository (or of an image built from it) would trip on.
def _wrap(data: bytes, width: int = 64) -> str:
    import base64

    text = base64.b64encode(data).decode()
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))


BODY = _wrap(bytes(range(256)) * 2)
OPENSSH_KEY = ("-----BEGIN OPENSSH " + "PRIVATE KEY-----\n" + _wrap(b"openssh-key-v1\0" + bytes(range(200)), 70)
               + "\n-----END OPENSSH " + "PRIVATE KEY-----\n")
RSA_KEY = "-----BEGIN RSA " + "PRIVATE KEY-----\n" + BODY + "\n-----END RSA " + "PRIVATE KEY-----\n"
ENCRYPTED_KEY = ("-----BEGIN RSA " + "PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\n"
                 + BODY + "\n-----END RSA " + "PRIVATE KEY-----\n")
PGP_KEY = ("-----BEGIN PGP " + "PRIVATE KEY BLOCK-----\nComment: fake\n\n" + BODY + "\n-----END PGP "
           + "PRIVATE KEY BLOCK-----\n")
SERVICE_ACCOUNT = ('{"type": "service_account", "private_key": "-----BEGIN ' + 'PRIVATE KEY-----\\n'
                   + BODY.replace("\n", "\\n") + '\\n-----END ' + 'PRIVATE KEY-----\\n"}')
SIGNED_JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
UNSIGNED_JWT = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"

CONTENT_SECRETS = [
    ("OpenSSH private key", "/app/deploy_key", OPENSSH_KEY),
    ("private key", "/srv/keys/server", RSA_KEY),
    ("private key", "/srv/keys/encrypted", ENCRYPTED_KEY),
    ("PGP private key block", "/root/signing.asc", PGP_KEY),
    ("private key", "/app/gcp.json", SERVICE_ACCOUNT),
    ("AWS access key id", "/app/config.py", "AWS = 'AKIA" + "Z7Q3MJX5R2T6W4HN'\n"),
    ("Google API key", "/app/maps.js", 'const key = "AIza' + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q" + '";\n'),
    ("Azure storage account key", "/app/appsettings.json",
     '{"Storage": "DefaultEndpointsProtocol=https;AccountName=todo;AccountKey=' + "Ab1+" * 21 + "Ab==" + '"}'),
    ("Azure client secret", "/app/auth.yaml", "clientSecret: " + "ab1" + "8Q~" + "xY2zW3vU4tS5rQ6pO7nM8lK9jI0hG1fE2" + "\n"),
    ("OpenRouter/OpenAI key", "/app/lib/llm.py", 'KEY = "sk-proj-' + "a1B2c3D4" * 5 + '"\n'),
    ("OpenRouter/OpenAI key", "/app/notes.txt", "use sk-or-v1-" + "0123456789abcdef" * 4 + " here\n"),
    ("Stripe secret key", "/app/pay.rb", "Stripe.api_key = 'sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc'\n"),
    ("GitHub token", "/home/app/.config/gh/hosts.yml", "oauth_token: ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8" + "\n"),
    ("npm token", "/app/ci.sh", "echo //registry.npmjs.org/:_authToken=npm_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8" + "\n"),
    ("PyPI token", "/app/publish.sh", "twine upload -p pypi-AgE" + "IcHlwaS5vcmcCJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAw" + "\n"),
    ("registry credentials", "/root/.docker/config.json", '{"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNzd29yZA=="}}}'),
    ("Slack token", "/app/bot.py", "TOKEN = 'xoxb-" + "1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx'\n"),
    ("Slack webhook URL", "/app/alerts.py", "URL = 'https://hooks.slack.com/services/T0000AAAA/B0000BBBB/" + "AbCd" * 6 + "'\n"),
    ("JSON web token", "/app/fixtures.txt", "Authorization: Bearer " + SIGNED_JWT + "\n"),
]


@pytest.mark.parametrize("rule, path, text", CONTENT_SECRETS, ids=[f"{r} in {p}" for r, p, _ in CONTENT_SECRETS])
def test_content_rules_find_secrets_whatever_the_file_is_called(rule, path, text):
    assert secrets_scan.file_rule(path, lambda: text.encode()) == rule


CONTENT_HARMLESS = [
    # Code that names a key header without holding a key (cryptography, paramiko, node-forge).
    ("/usr/lib/python3/site-packages/ssh/keys.py", 'if line.startswith("-----BEGIN OPENSSH ' + 'PRIVATE KEY-----"):\n'),
    ("/app/pem.js", 'const HEADER = "-----BEGIN ' + 'PRIVATE KEY-----";\nconst FOOTER = "-----END ' + 'PRIVATE KEY-----";\n'),
    ("/etc/ssl/certs/ca.pem", "-----BEGIN CERTIFICATE-----\n" + BODY + "\n-----END CERTIFICATE-----\n"),
    ("/root/.ssh/id_ed25519.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake a@b\n"),
    ("/app/docs.md", "export AWS_ACCESS_KEY_ID=AKIA" + "IOSFODNN7EXAMPLE\n"),  # AWS's documented example
    ("/app/auth.py", "token = '" + UNSIGNED_JWT + "'\n"),  # alg none: no signature to keep secret
    ("/app/styles.css", ".sk-chat-panel-container-wide { display: flex }\n"),  # a class, not an sk- key
    ("/app/xo.txt", "xoxo-gossip-girl-is-a-show-name\n"),
    ("/app/package.json", '{"auth": "basic", "integrity": "sha512-' + "A1b2" * 20 + '"}\n'),
]


@pytest.mark.parametrize("path, text", CONTENT_HARMLESS, ids=[p for p, _ in CONTENT_HARMLESS])
def test_content_that_only_looks_like_a_secret_is_harmless(path, text):
    assert secrets_scan.file_rule(path, lambda: text.encode()) is None


def test_binary_files_are_judged_by_name_only():
    blob = b"\x7fELF\0\0\0" + OPENSSH_KEY.encode()
    assert secrets_scan.file_rule("/usr/bin/tool", lambda: blob) is None
    assert secrets_scan.file_rule("/app/client.p12", lambda: blob) == "secret file name client.p12"


def test_only_the_first_mebibyte_is_read():
    """The documented cap: a key after the first READ_CAP_BYTES of a file is not seen (the
    layer reader passes only the head; a real key file is a few KiB)."""
    padding = b"x = 1\n" * (secrets_scan.READ_CAP_BYTES // 6 + 1)
    whole = padding + OPENSSH_KEY.encode()
    assert secrets_scan.file_rule("/app/big.py", lambda: whole[:secrets_scan.READ_CAP_BYTES]) is None
    assert secrets_scan.file_rule("/app/small.py", lambda: OPENSSH_KEY.encode()) == "OpenSSH private key"


def test_one_rule_per_file_name_first():
    """A file is reported once, under the first rule it breaks: its name, then its content."""
    assert secrets_scan.file_rule("/app/.env", lambda: b"DB_PASSWORD=hunter2hunter2\n") == "secret file name .env"
    assert secrets_scan.file_rule("/app/deploy-key.pem", lambda: RSA_KEY.encode()) == "private key"


# --- env-like files: dotfiles, *.env, or any small file of KEY=VALUE lines --------------------------
SESSION = "q8Zt3LkP9vXw2RmN7bYc4HjD"  # a 24-character random-looking value (fake)


@pytest.mark.parametrize("path, text, rule", [
    ("/app/settings", f"# app settings\nLOG_LEVEL=info\nSESSION_SIGNING={SESSION}\n",
     "high-entropy value for SESSION_SIGNING"),  # no dot, no .env: env-like by its content
    ("/app/.flaskenv", f"FLASK_APP=todo\nexport COOKIE_SEED='{SESSION}'\n", "high-entropy value for COOKIE_SEED"),
    ("/app/prod.env", "DB_PASSWORD = hunter2hunter2\n", "secret-named key DB_PASSWORD has a value"),
    ("/app/config/runtime.conf", "DATABASE_URL=postgresql://todo:s3cret@db:5432/todo\n", "URL with a password"),
    ("/home/app/.npmrc", "//registry.npmjs.org/:_authToken=abcdef0123456789\n",
     "secret-named key //registry.npmjs.org/:_authToken has a value"),
    ("/app/.secrets", "SIGNING=" + "0123456789abcdef" * 2 + "fedcba9876543210" * 2 + "\n",
     "high-entropy value for SIGNING"),
])
def test_env_like_files_are_judged_line_by_line(path, text, rule):
    assert secrets_scan.file_rule(path, lambda: text.encode()) == rule


@pytest.mark.parametrize("path, text", [
    ("/app/settings", "LOG_LEVEL=info\nNODE_ENV=production\nTZ=America/New_York\nLANG=en_US.UTF-8\n"),
    ("/app/.env.example", "DB_PASSWORD=changeme-please\n"),  # example files say what to set
    ("/app/.versions", "PYTHON_VERSION=3.13.5\nPYTHON_SHA256=" + "0123456789abcdef" * 4 + "\n"),  # a public checksum
    ("/app/.bashrc", "HISTSIZE=1000\nexport PATH=/usr/local/bin:$PATH\nalias ll='ls -l'\n"),
    ("/app/.gitignore", "node_modules\n.env\n"),
    ("/app/main.py", f"import os\nSEED = '{SESSION}'\n"),  # code, not an env file: only token shapes apply
    ("/app/.config", "PASSWORD_FILE=/run/secrets/db\nTOKEN=${TOKEN}\n"),
])
def test_env_like_files_without_secrets_pass(path, text):
    assert secrets_scan.file_rule(path, lambda: text.encode()) is None


@pytest.mark.parametrize("value, high", [
    (SESSION, True), ("0123456789abcdef" * 2 + "fedcba9876543210" * 2, True),
    ("production", False), ("3.13.5", False), ("changeme-changeme-changeme", False), ("aaaaaaaaaaaaaaaaaaaa1", False),
    ("en_US.UTF-8", False), ("0123456789abcdef", False), ("/usr/local/bin:/usr/bin:/bin", False),
])
def test_high_entropy(value, high):
    assert secrets_scan.is_high_entropy(value) is high


# --- library test data ------------------------------------------------------------------------------
@pytest.mark.parametrize("path, library", [
    ("/usr/local/lib/python3.13/site-packages/tornado/test/test.key", True),
    ("/app/node_modules/jose/README.md", True),
    ("/app/.venv/lib/python3.13/site-packages/PyJWT-2.9.0.dist-info/METADATA", True),
    ("/app/node_modules/node-forge/tests/fixtures/key.pem", True),
    ("/app/tests/fixtures/key.pem", False),  # the app's own tests ship in the image: held to every rule
    ("/app/node_modules/aws-sdk/lib/config.js", False),  # a package's module
    ("/app/deploy_key", False),
])
def test_library_test_data_is_only_inside_installed_packages(path, library):
    assert secrets_scan.library_test_data(path) is library


@pytest.mark.parametrize("key", ["existingSecret", "secretName", "secret.existingSecret", "passwordKey", "tokenSecretRef"])
def test_the_name_of_a_secret_is_not_a_secret(key):
    """A Secret's name (secret.existingSecret, a volume's secretName) is what the fix hints ask
    for: flagging it as a secret value sent users in circles (issue 10, bug 3)."""
    assert secrets_scan.scan_pair(f"values.{key}", key.rsplit(".", 1)[-1], "notes-api-credentials") == []
    assert secrets_scan.scan_pair("values.password", "password", "notes-api-credentials") != []
