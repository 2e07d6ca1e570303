"""The app's Secrets, made in the cluster from the environment: never written to disk,
passed on a command line, logged or put in a report.

DATABASE_URL and OPENROUTER_API_KEY come from the environment. Without DATABASE_URL the
in-cluster PostgreSQL is used; its password is generated once and kept in its Secret, so
re-runs change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass

from . import commands

BACKEND_SECRET = "todo-backend-secret"      # the seed's name; the backend chart's secret.name
POSTGRES_SECRET = "todo-postgres-auth"      # the postgres chart's auth.existingSecret key holder
POSTGRES_USER = POSTGRES_DB = "todo"        # the postgres chart's auth.username / auth.database
LABELS = {"app.kubernetes.io/managed-by": "shipcheck"}


@dataclass
class AppSecrets:
    external_database: bool
    backend_data: dict[str, str]

    @property
    def digest(self) -> str:
        """A short digest of the backend's secret values, for a pod annotation: a changed
        secret rolls the pods, an unchanged one does not. Reveals nothing of the values."""
        joined = "\0".join(f"{k}={v}" for k, v in sorted(self.backend_data.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<AppSecrets external_database={self.external_database} keys={sorted(self.backend_data)}>"


def read_key(core, namespace: str, name: str, key: str) -> str | None:
    from kubernetes.client.exceptions import ApiException

    try:
        data = core.read_namespaced_secret(name, namespace).data or {}
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return base64.b64decode(data[key]).decode() if key in data else None


def ensure(core, namespace: str, name: str, values: dict[str, str]) -> bool:
    """Create or update the Secret to hold exactly `values`; returns whether it changed."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    commands.redact(*values.values())
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=LABELS), type="Opaque", data=encoded)
    try:
        current = core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_secret(namespace, body)
        return True
    if (current.data or {}) == encoded:
        return False
    core.replace_namespaced_secret(name, namespace, body)
    return True


def prepare(core, namespace: str, environ=os.environ) -> AppSecrets:
    database_url = environ.get("DATABASE_URL", "").strip()
    external = bool(database_url)
    if not external:
        password = read_key(core, namespace, POSTGRES_SECRET, "postgres-password") or secrets.token_urlsafe(24)
        ensure(core, namespace, POSTGRES_SECRET, {"postgres-password": password})
        database_url = (f"postgresql://{POSTGRES_USER}:{password}@todo-postgres.{namespace}.svc.cluster.local:5432/"
                        f"{POSTGRES_DB}")
    data = {"database-url": database_url}
    api_key = environ.get("OPENROUTER_API_KEY", "").strip()
    if api_key:
        data["openrouter-api-key"] = api_key
    ensure(core, namespace, BACKEND_SECRET, data)
    return AppSecrets(external, data)
