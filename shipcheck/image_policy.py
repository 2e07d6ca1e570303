"""What a shippable image must be, as pure checks over image facts.

Each check returns None when the image passes, or one message saying what was measured,
what the limit is, and how to fix it. Stage modules assert on these.
"""

from __future__ import annotations

import re

OCI = "org.opencontainers.image."
REQUIRED_LABELS = ("version", "revision", "source")


def size_problem(ref: str, size_bytes: int, budget_mb: float) -> str | None:
    size_mb = size_bytes / 1e6
    if size_mb <= budget_mb:
        return None
    return (f"{ref}: {size_mb:.1f} MB uncompressed (MB = 10^6 bytes, as `docker images` shows) is over its "
            f"budget of {budget_mb:g} MB by {size_mb - budget_mb:.1f} MB. Fix: use a multi-stage build that copies "
            "only runtime files into a slim base, keep caches and build tools out of the final stage, or raise "
            "size_budget_mb in shipcheck.yaml if the growth is intended.")


def parse_user(user: str) -> tuple[str, str]:
    name, _, group = user.partition(":")
    return name, group


def passwd_uid(passwd: str, name: str) -> int | None:
    """The UID of `name` in an /etc/passwd text."""
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    return None


def user_problem(ref: str, user: str, expected_uid: int, passwd: str | None = None) -> str | None:
    """A numeric non-root USER equal to the configured UID; a name passes when the image's
    /etc/passwd (`passwd`) maps it to that UID (Kubernetes then needs runAsUser, which stage 3
    checks: a name alone cannot prove non-root to runAsNonRoot)."""
    name, group = parse_user(user)
    fix = f"Fix: end the Dockerfile's final stage with `USER {expected_uid}:{expected_uid}` (numeric, so Kubernetes runAsNonRoot can verify it)."
    if not name:
        return f"{ref}: no USER set, so it runs as root (UID 0); expected UID {expected_uid}. {fix}"
    if not name.isdigit():
        uid = passwd_uid(passwd or "", name)
        if uid == expected_uid:
            return None
        found = "is not in the image's /etc/passwd" if uid is None else f"is UID {uid} in the image's /etc/passwd"
        return (f"{ref}: USER {user!r} is a name that {found}; expected UID {expected_uid}. {fix} Or set uid in "
                "shipcheck.yaml to the user's UID.")
    if int(name) == 0:
        return f"{ref}: USER {user!r} is root (UID 0); expected UID {expected_uid}. {fix}"
    if int(name) != expected_uid:
        return f"{ref}: USER {user!r} runs as UID {name}; the configuration expects UID {expected_uid}. {fix} Or set uid in shipcheck.yaml."
    if group and (not group.isdigit() or int(group) == 0):
        return f"{ref}: USER {user!r} has group {group!r}; expected a numeric non-root GID. {fix}"
    return None


def healthcheck_problem(ref: str, test: list[str] | None, path: str | None) -> str | None:
    if not test or test[0] == "NONE":
        where = f" on {path}" if path else ""
        return (f"{ref}: no HEALTHCHECK (found {test!r}); expected one{where}. Fix: add "
                f"`HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD [...]` probing{where or ' the service'}.")
    command = " ".join(test[1:])
    # The path itself, not a longer one (/health must not pass for /healthz or /health-old).
    if path and not re.search(re.escape(path) + r"(?![\w./-])", command):
        return (f"{ref}: HEALTHCHECK `{command}` does not probe the configured health path {path}. Fix: point the "
                f"HEALTHCHECK at {path}, or set health_path in shipcheck.yaml to the path the app serves.")
    return None


def label_problems(ref: str, labels: dict[str, str], version: str) -> str | None:
    missing = [OCI + key for key in REQUIRED_LABELS if not labels.get(OCI + key)]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    found = labels.get(OCI + "version")
    if found and found != version:
        problems.append(f"{OCI}version is {found!r}, expected {version!r}")
    if not problems:
        return None
    return (f"{ref}: OCI labels: {'; '.join(problems)}. Fix: set them from build args "
            "(`ARG VERSION` ... `LABEL org.opencontainers.image.version=$VERSION`); the build passes VERSION, REVISION and SOURCE.")
