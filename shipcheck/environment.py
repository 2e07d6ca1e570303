"""The environment variables the configuration names, checked before anything is built.

Each Secret key whose source is an environment variable, each `database_url` source, and the
registry credentials: a required one is present, none carries a newline or another control
character (it would reach the cluster Secret as is), and a database URL is PostgreSQL with a
host. Messages name the variable and the kind of problem, never the value: at most a URL's
scheme, which is not secret.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Mapping

from .config import Config

REGISTRY_VARIABLES = ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")
URL_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"
_CONTROL_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\0": "a NUL character"}


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F


def control_problem(name: str, value: str) -> str | None:
    """Which control character `value` holds and where (at the start, at the end, inside), or None."""
    at = next((i for i, char in enumerate(value) if _is_control(char)), None)
    if at is None:
        return None
    what = _CONTROL_NAMES.get(value[at], f"a control character (U+{ord(value[at]):04X})")
    blank = lambda text: all(_is_control(c) or c.isspace() for c in text)  # noqa: E731
    place = "at the end" if blank(value[at:]) else "at the start" if blank(value[:at + 1]) else "inside the value"
    fix = ("set it again without the line break (a trailing newline usually comes from `$(cat file)` or echo)"
           if place == "at the end" else "set it again without control characters")
    return f"{name}: contains {what} {place}; a Secret value must be one line of printable text. Fix: {fix}"


def url_problem(name: str, value: str) -> str | None:
    """Why `value` is not a PostgreSQL URL with a host, or None. Never quotes the value."""
    if "://" not in value:
        return f"{name}: not a URL (no scheme://); expected {URL_EXAMPLE}"
    scheme = value.split("://", 1)[0].lower()
    if scheme not in ("postgres", "postgresql") and not (scheme.startswith("postgresql+") and scheme[11:].isidentifier()):
        shown = repr(scheme) if scheme.replace("+", "").replace("-", "").replace(".", "").isalnum() else "another"
        return (f"{name}: scheme {shown} is not PostgreSQL; expected {URL_EXAMPLE} "
                "(postgres:// and postgresql+DRIVER:// are accepted too; the suite writes the configured scheme)")
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
        parts.port  # raises ValueError for a port that is not a number 0-65535
    except ValueError:
        return f"{name}: the host or port part is not valid (the port must be a number 0-65535); expected {URL_EXAMPLE}"
    if not host:
        return f"{name}: no host after {scheme}://; expected {URL_EXAMPLE}"
    return None


def _present(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value is not None and value.strip() else None


def check(cfg: Config, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Problems with the environment variables `cfg` needs, one line each."""
    problems: list[str] = []

    def once(problem: str | None) -> None:
        if problem and problem not in problems:
            problems.append(problem)

    for secret, keys in cfg.secrets.items():
        for key, source in keys.items():
            if source.env is None:
                continue
            where = f"secrets.{secret}.{key}"
            value = _present(environ, source.env)
            if value is None:
                if source.kind == "env" and not source.optional:
                    state = "set but empty" if source.env in environ else "not set"
                    once(f"{source.env}: {state}; {where} takes its value from it. Fix: export {source.env}, or mark the "
                         "key optional: true in the configuration")
                elif source.kind == "database_url" and source.database is None:
                    once(f"{source.env}: not set; {where} needs an external database's URL and no in-cluster database "
                         f"is declared. Fix: export {source.env}={URL_EXAMPLE}, or add database: <component>")
                continue
            once(control_problem(source.env, value))
            if source.kind == "database_url" and not control_problem(source.env, value):
                once(url_problem(source.env, value.strip()))
    if cfg.registry:
        given = [v for v in REGISTRY_VARIABLES if _present(environ, v) is not None]
        if len(given) == 1:
            missing = next(v for v in REGISTRY_VARIABLES if v not in given)
            once(f"{missing}: not set while {given[0]} is; registry credentials come as a pair. Fix: export both, "
                 f"or neither for a registry that needs no login ({cfg.registry})")
        for variable in given:
            once(control_problem(variable, environ[variable]))
    return problems
