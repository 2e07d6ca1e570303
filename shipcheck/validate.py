"""Check the configuration and the environment, touching nothing: no Docker, no cluster, no
process, no file written. `./pipeline` runs it before set-up; the pytest plugin calls
`problems()` in pytest_configure.

    python -m shipcheck.validate [--shipcheck-config PATH] [--set K=V ...] [--cluster X]
    python -m shipcheck.validate --ignore-unknown "$@"   # ./pipeline: its pytest arguments as given
    python -m shipcheck.validate --field-table      # the README's configuration table

Prints each problem on its own line (to stderr) and exits 2 when there is any, else prints
one line (to stdout) and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

from . import config, config_schema, environment

USAGE_ERROR = 2  # pytest's and argparse's exit code for bad input
INTERNAL_ERROR = 3


def default_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("SHIPCHECK_CONFIG") or "shipcheck.yaml")


def cluster_problem(cluster: str | None) -> str | None:
    if cluster is None or cluster in config.PROVIDERS:
        return None
    return f"--cluster {cluster!r}: must be one of {', '.join(config.PROVIDERS)} (or unset: cluster_provider decides)"


def problems(path: Path, overrides: Sequence[str] = (), cluster: str | None = None,
             environ: Mapping[str, str] = os.environ) -> tuple[config.Config | None, list[str]]:
    """(the configuration when it loads, every problem with it, the environment and --cluster)."""
    found = [p for p in [cluster_problem(cluster)] if p]
    try:
        cfg = config.load(Path(path), list(overrides))
    except config.ConfigError as exc:
        return None, found + exc.problems
    return cfg, found + environment.check(cfg, environ)


def registry_overrides(registry: str | None, registry_ca: str | None) -> list[str]:
    """--registry/--registry-ca (issue 14) as `--set` overrides of `registry`/`registry_ca`,
    JSON-quoted (a YAML value), so they are validated with the file."""
    return [f"{key}={json.dumps(value)}" for key, value in (("registry", registry), ("registry_ca", registry_ca))
            if value is not None]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipcheck.validate", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)  # a pytest option must never pass for an abbreviation of ours
    parser.add_argument("--shipcheck-config", type=Path, default=None,
                        help="configuration file (env SHIPCHECK_CONFIG; default shipcheck.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set components.todo-frontend.size_budget_mb=180")
    parser.add_argument("--cluster", default=environ.get("SHIPCHECK_CLUSTER") or None,
                        help=f"cluster provider to check: {', '.join(config.PROVIDERS)} (env SHIPCHECK_CLUSTER)")
    parser.add_argument("--registry", default=environ.get("SHIPCHECK_REGISTRY"),
                        help="registry to push to and pull from (env SHIPCHECK_REGISTRY; overrides `registry`)")
    parser.add_argument("--registry-ca", default=environ.get("SHIPCHECK_REGISTRY_CA"),
                        help="the registry's CA file (env SHIPCHECK_REGISTRY_CA; overrides `registry_ca`)")
    parser.add_argument("--field-table", action="store_true", help="print the README's configuration table and exit")
    parser.add_argument("--ignore-unknown", action="store_true",
                        help="ignore arguments that are not ours: ./pipeline passes its pytest arguments through")
    args, unknown = parser.parse_known_args(argv)
    if unknown and not args.ignore_unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.field_table:
        sys.stdout.write(config_schema.field_table())
        return 0
    path = args.shipcheck_config or default_config_path(environ)
    try:
        cfg, found = problems(path, args.overrides + registry_overrides(args.registry, args.registry_ca), args.cluster,
                              environ)
    except Exception as exc:  # a bug of ours: still one line, and not the usage error's exit code
        print(f"shipcheck: internal error while validating {path} ({type(exc).__name__}: {exc}); please report it "
              "with the configuration", file=sys.stderr)
        return INTERNAL_ERROR
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"shipcheck: {len(found)} problem(s) with {path} or the environment; nothing was built or deployed",
              file=sys.stderr)
        return USAGE_ERROR
    assert cfg is not None
    print(f"shipcheck: {path} is valid: {cfg.app} {cfg.version}, {len(cfg.components)} components, "
          f"{len(cfg.checks)} checks, namespace {cfg.namespace}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
