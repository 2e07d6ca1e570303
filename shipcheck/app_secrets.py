"""The app's Secrets and ConfigMaps, resolved once from the configuration and the
environment, before anything is written: never to disk, a command line, a log or a report.

Each key of `secrets:` comes from an environment variable, a generated random value (kept
stable across runs: the value already in the cluster is reused), or a database URL (the
environment's, for an external database, else the in-cluster database's, in the scheme the
app's driver wants). A database component's password is generated the same way.
"""

from __future__ import annotations

import base64
import hashlib
import secrets as random
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

from . import commands
from .config import Component, Config

LABELS = {"app.kubernetes.io/managed-by": "shipcheck"}
ReadExisting = Callable[[str, str], "str | None"]  # (secret name, key) -> the value in the cluster


@dataclass
class SecretsPlan:
    external_database: bool
    secrets: dict[str, dict[str, str]] = field(repr=False)
    config_maps: dict[str, dict[str, str]]

    def __repr__(self) -> str:
        keys = {name: sorted(data) for name, data in self.secrets.items()}
        return f"<SecretsPlan external_database={self.external_database} secrets={keys} config_maps={sorted(self.config_maps)}>"

    def value(self, name: str, key: str) -> str | None:
        return self.secrets.get(name, {}).get(key)

    def digest(self, names: set[str]) -> str | None:
        """A short digest of the named Secrets' and ConfigMaps' contents, for a pod
        annotation: a change rolls the pods that use them, no change rolls nothing. It
        reveals nothing of the values."""
        parts = [f"{kind}/{name}/{k}={v}" for kind, objects in (("secret", self.secrets), ("configmap", self.config_maps))
                 for name, data in sorted(objects.items()) if name in names for k, v in sorted(data.items())]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16] if parts else None

    def manifests(self, namespace: str) -> list[dict]:
        docs = [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
                 "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())}}
                for name, data in sorted(self.secrets.items())]
        docs += [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace,
                                                                       "labels": LABELS}, "data": dict(data)}
                 for name, data in sorted(self.config_maps.items())]
        return docs

    def names(self) -> set[str]:
        return set(self.secrets) | set(self.config_maps)


def with_scheme(url: str, scheme: str | None) -> str:
    """The URL in the scheme the app's driver wants (postgres:// -> postgresql+psycopg://)."""
    if not scheme:
        return url
    parts = urlsplit(url)
    return urlunsplit((scheme, *parts[1:]))


def database_url(db: Component, password: str, host: str, scheme: str) -> str:
    assert db.database is not None
    return f"{scheme}://{quote(db.database.user, safe='')}:{quote(password, safe='')}@{host}:{db.port}/{db.database.name}"


def external_database(cfg: Config, environ: Mapping[str, str]) -> bool:
    """An external database is given: some database_url source finds its variable set."""
    return any(src.kind == "database_url" and environ.get(src.env or "DATABASE_URL", "").strip()
               for keys in cfg.secrets.values() for src in keys.values())


def resolve(cfg: Config, environ: Mapping[str, str], read_existing: ReadExisting,
            database_host: Callable[[Component], str]) -> SecretsPlan:
    """Every Secret's values. `read_existing` gives what the cluster (or nothing) holds, so a
    generated value stays the same run after run; `database_host` where a database
    component answers (its Service in the cluster, its container name in stage 2)."""
    external = external_database(cfg, environ)
    data: dict[str, dict[str, str]] = {}
    passwords: dict[str, str] = {}
    if not external:
        for db in cfg.databases:
            if db.database is None:
                continue
            spec = db.database
            password = read_existing(spec.password_secret, spec.password_key) or random.token_urlsafe(24)
            passwords[db.name] = password
            data.setdefault(spec.password_secret, {})[spec.password_key] = password
    for name, keys in cfg.secrets.items():
        for key, src in keys.items():
            value = _value(cfg, src, name, key, environ, read_existing, database_host, passwords)
            if value is not None:
                data.setdefault(name, {})[key] = value
    for values in data.values():
        commands.redact(*values.values())
    return SecretsPlan(external, data, {name: dict(v) for name, v in cfg.config_maps.items()})


def _value(cfg, src, name, key, environ, read_existing, database_host, passwords) -> str | None:
    if src.kind == "env":
        value = environ.get(src.env or "", "").strip()
        return value or None  # a required one missing was refused when the run started
    if src.kind == "generate":
        return read_existing(name, key) or random.token_urlsafe(src.length)[: src.length]
    if src.kind == "database_url":
        given = environ.get(src.env or "DATABASE_URL", "").strip()
        if given:
            return with_scheme(given, src.scheme)
        db = cfg.components[src.database] if src.database else cfg.databases[0]
        return database_url(db, passwords[db.name], database_host(db), src.scheme or "postgresql")
    raise ValueError(f"secrets.{name}.{key}: unknown source {src.kind!r}")


def cluster_host(cfg: Config) -> Callable[[Component], str]:
    """A database's address inside the cluster: its Service's DNS name."""
    return lambda db: f"{db.release or db.name}.{cfg.namespace}.svc.cluster.local"


def read_from_cluster(core, namespace: str) -> ReadExisting:
    """(name, key) -> the value in the cluster's Secret, or None (no Secret, no key, no namespace)."""
    from kubernetes.client.exceptions import ApiException

    cache: dict[str, dict] = {}

    def read(name: str, key: str) -> str | None:
        if name not in cache:
            try:
                cache[name] = core.read_namespaced_secret(name, namespace).data or {}
            except ApiException as exc:
                if exc.status != 404:
                    raise
                cache[name] = {}
        value = cache[name].get(key)
        return base64.b64decode(value).decode() if value else None
    return read


def nothing_existing(name: str, key: str) -> None:
    return None
