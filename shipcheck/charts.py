"""Facts about a chart on disk (metadata, values files) and about a `helm lint` run.

Running helm is helm.py's; what a release is rendered with is plan.py's.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from . import commands


def chart_metadata(chart: Path) -> dict:
    return yaml.safe_load((Path(chart) / "Chart.yaml").read_text()) or {}


def values_files(chart: Path) -> list[Path]:
    """The chart's values.yaml and every values-*.yaml profile beside it."""
    return sorted(p for p in Path(chart).glob("values*.yaml") if p.is_file())


def load_values(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text()) or {}


def lint_problems(result: commands.CommandResult) -> list[str]:
    """The [ERROR]/[WARNING] lines of a helm lint run (with --strict, warnings fail too)."""
    text = result.stdout + "\n" + result.stderr
    lines = [line.strip() for line in text.splitlines() if "[ERROR]" in line or "[WARNING]" in line]
    if not lines and not result.ok:
        lines = [result.tail(10)]
    return lines
