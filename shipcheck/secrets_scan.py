"""Find secrets where they must never be: image ENV, labels, build history and layer files.

Pure functions over plain data, so every pattern is unit-tested on seeded secrets.
A finding names where the secret is and which rule matched, never the value itself.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Iterable

# Names that say "this holds a secret" when they carry a value.
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH_KEY)", re.I)
# Values that are secrets whatever they are called.
SECRET_VALUES = {
    "private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "URL with a password": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I),
    "OpenRouter/OpenAI key": re.compile(r"\bsk-(or-v1-)?[A-Za-z0-9_-]{20,}"),
    "AWS access key id": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}
# Values of secret-named keys that are clearly not secrets.
_HARMLESS = re.compile(r"^(|true|false|0|1|none|null|changeme|/.*|\$\{?[A-Za-z_]+\}?)$", re.I)
_KEY_VALUE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S+)")

SECRET_FILE_NAMES = (".env", ".env.*", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "*.p12", "*.pfx",
                     ".netrc", ".pgpass", ".git-credentials")
HARMLESS_FILE_NAMES = (".env.example", ".env.sample", ".env.template")
KEY_FILE_NAMES = ("*.pem", "*.key")  # secret only when they hold a private key (CA bundles are public)


@dataclass(frozen=True)
class Finding:
    where: str  # e.g. "ENV DATABASE_URL", "history step 7", "layer 3: /app/.env"
    rule: str

    def __str__(self) -> str:
        return f"{self.where} ({self.rule})"


def scan_value(where: str, value: str) -> list[Finding]:
    return [Finding(where, rule) for rule, pattern in SECRET_VALUES.items() if pattern.search(value)]


def scan_pair(where: str, key: str, value: str) -> list[Finding]:
    findings = scan_value(where, value)
    if not findings and SECRET_NAME.search(key) and not _HARMLESS.match(value.strip("\"'")):
        findings.append(Finding(where, f"secret-named key {key} has a value"))
    return findings


def scan_env(env: Iterable[str]) -> list[Finding]:
    findings = []
    for entry in env:
        key, _, value = entry.partition("=")
        findings += scan_pair(f"ENV {key}", key, value)
    return findings


def scan_labels(labels: dict[str, str] | None) -> list[Finding]:
    findings = []
    for key, value in (labels or {}).items():
        findings += scan_pair(f"LABEL {key}", key.rsplit(".", 1)[-1], value)
    return findings


def scan_history(created_by: Iterable[str]) -> list[Finding]:
    """Build history keeps every ARG/ENV value used by a RUN step (`|2 KEY=value ...`)."""
    findings = []
    for step, line in enumerate(created_by, 1):
        where = f"history step {step}"
        found = scan_value(where, line)
        for key, value in _KEY_VALUE.findall(line):
            if SECRET_NAME.search(key) and not _HARMLESS.match(value.strip("\"'")):
                found.append(Finding(where, f"secret-named key {key} has a value"))
        findings += list(dict.fromkeys(found))
    return findings


def secret_file_rule(path: str, read_head: Callable[[], bytes]) -> str | None:
    """Why the file at `path` is a secret, or None. `read_head` is called only for key files."""
    name = PurePosixPath(path).name
    if any(fnmatch.fnmatch(name, p) for p in HARMLESS_FILE_NAMES):
        return None
    if any(fnmatch.fnmatch(name, p) for p in SECRET_FILE_NAMES):
        return f"secret file name {name}"
    if any(fnmatch.fnmatch(name, p) for p in KEY_FILE_NAMES) and b"PRIVATE KEY-----" in read_head():
        return "private key"
    return None
