"""pytest plugin: the figures stages record, and the reports a reviewer reads.

- `figures` (fixture): `add(section, **row)` a row of measured figures; `add_html(title,
  fragment)` a picture; `headline(title, value, ok, note)` a figure for the top;
  `add_png(title, b64)` a picture shown in the figures below (prefer `attach_png`).
- `attach_png(request_or_item, title, b64)`: a screenshot on its own test's entry
  (pytest-html extras), also written to reports/<title>.png for CI artifacts.
- `record_fits(figures, values, fits)`, `add_seed_comparison(figures, fits)`: quota fits as
  figure rows; the seed's numbers as a report section, not a test.
- reports/report.html: at the top the verdict, the stages as a row, the first failure with
  its fix and the headline figures as pictures; every figure table below, collapsed.
- reports/summary.json: the same figures for machines, with the stage row and the first failure.

Registered by shipcheck.plugin (its `pytest_plugins`).
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest

from . import commands, report_facts, report_html
from .plugin import CONFIG_KEY, STAGE_NAMES, stage_of
from .report_facts import QUOTA, SEED_VALUES, Failure, ItemRecord

SEED_SECTION = "seed numbers (values-seed.yaml) against the quota"


class Figures:
    """Measured figures by section, for summary.json and the HTML report."""

    def __init__(self) -> None:
        self.sections: dict[str, list[dict]] = {}
        self.images: dict[str, str] = {}  # title -> base64 PNG, shown in the figures below
        self.html: dict[str, str] = {}  # title -> HTML fragment (charts), shown at the top
        self.tiles: list[dict] = []  # headline figures a stage names itself
        self.attached: dict[str, tuple[str, str]] = {}  # title -> (test id, base64 PNG), via attach_png

    def add(self, section: str, **row) -> None:
        self.sections.setdefault(section, []).append(row)

    def add_png(self, title: str, png_base64: str) -> None:
        self.images[title] = png_base64

    def add_html(self, title: str, fragment: str) -> None:
        self.html[title] = fragment

    def headline(self, title: str, value: str, ok: bool | None = None, note: str = "") -> None:
        """A figure for the top of the report: `value` in large type, green when ok, red when
        not, neutral when None."""
        self.tiles.append({"title": title, "value": value, "ok": ok, "note": note})

    def as_dict(self) -> dict:
        return {"sections": self.sections, "headline": self.tiles, "images": sorted([*self.images, *self.attached])}


class Run:
    """The session's tests as the report sees them: one record per test, in run order."""

    def __init__(self) -> None:
        self.started = time.time()
        self.stages: dict[str, int | None] = {}  # test id -> stage number
        self.records: dict[str, ItemRecord] = {}
        self.collect_failures: list[Failure] = []

    def add(self, report: pytest.TestReport) -> None:
        record = self.records.get(report.nodeid)
        if record is None:
            record = self.records[report.nodeid] = ItemRecord(report.nodeid, self.stages.get(report.nodeid))
        record.add(report)

    def stage_rows(self) -> list[report_facts.StageRow]:
        expected = {s for s in self.stages.values() if s is not None}
        return report_facts.stage_rows(list(self.records.values()), STAGE_NAMES, expected)

    def first_failure(self) -> Failure | None:
        return report_facts.first_failure(list(self.records.values()), self.collect_failures)

    def failures(self) -> int:
        return sum(1 for r in self.records.values() if r.failure) + len(self.collect_failures)

    def failed_stages(self) -> dict[str, str]:
        """Stage number -> its first failed test (as summary.json has always said)."""
        found: dict[str, str] = {}
        for failure in self.collect_failures:
            if failure.stage is not None:
                found.setdefault(str(failure.stage), failure.nodeid)
        for record in sorted(self.records.values(), key=lambda r: r.start or 0):
            if record.failure is not None and record.stage is not None:
                found.setdefault(str(record.stage), record.nodeid)
        return found


FIGURES_KEY = pytest.StashKey[Figures]()
RUN_KEY = pytest.StashKey[Run]()
_PENDING_EXTRAS = pytest.StashKey[list]()  # on an item: pytest-html extras for its next report


# --- what stages call ----------------------------------------------------------------------------
def attach_png(node, title: str, png_base64: str) -> None:
    """Show a PNG on the entry of the test that took it (`node`: its `request` or item), as a
    pytest-html extra; written to reports/<title>.png at the end as well. From a fixture
    wider than one test (no item), the picture joins the figures below instead."""
    item = getattr(node, "node", node)
    figures = item.config.stash[FIGURES_KEY]
    if not isinstance(item, pytest.Item):
        figures.add_png(title, png_base64)
        return
    figures.attached[title] = (item.nodeid, png_base64)
    item.stash.setdefault(_PENDING_EXTRAS, []).append((title, png_base64))


def record_fits(figures: Figures, values: str, fits) -> None:
    """quota.Fit results as rows of the 'quota fit' section: each resource 'used / limit
    (share%)', which the headline's quota chart reads."""
    for fit in fits:
        row = {"values": values, "phase": fit.phase.name, "against": fit.against}
        row.update({r["resource"]: f"{r['used']} / {r['limit']} ({r['share']})" for r in fit.rows()})
        figures.add(QUOTA, **row, fits=fit.ok)


def add_seed_comparison(figures: Figures, fits) -> list[str]:
    """The seed's own numbers (values-seed.yaml) against its quota: a report section, never
    a gate. Its phases join the quota chart beside ours; the overflows are listed. Returns
    them (text), for the caller to say."""
    record_fits(figures, SEED_VALUES, fits)
    for fit in fits:
        figures.add(SEED_SECTION, phase=fit.phase.name, against=fit.against, fits=fit.ok,
                    overflow="; ".join(str(o).split(". Fix:")[0] for o in fit.overflows) or None)
    return [str(o) for fit in fits for o in fit.overflows]


# --- hooks -----------------------------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES_KEY] = Figures()
    config.stash[RUN_KEY] = Run()
    config.pluginmanager.register(Reports(config), "shipcheck-reports")


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Figures:
    """Record measured figures for summary.json and the HTML report."""
    return pytestconfig.stash[FIGURES_KEY]


class Reports:
    """The session's report hooks, bound to its config (reports carry none)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.figures, self.run = config.stash[FIGURES_KEY], config.stash[RUN_KEY]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.run.stages.update({item.nodeid: stage_of(item) for item in session.items})

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a module that does not import: the first thing to fix
            stage = next((n for n in STAGE_NAMES if f"test_{n:02d}_" in report.nodeid), None)
            message, fix = report_facts.split_fix(report_facts.message_lines(report.longrepr))
            self.run.collect_failures.append(Failure(report.nodeid, stage, "collect", message, fix))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.run.add(report)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        pending = item.stash.get(_PENDING_EXTRAS, [])
        if pending:
            from pytest_html import extras  # only a test that attached a picture needs pytest-html
            report.extras = [*getattr(report, "extras", []), *(extras.png(png, name=title) for title, png in pending)]
            pending.clear()
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        out = Path(self.config.rootpath) / "reports"
        stages = self.run.stage_rows()
        if not out.is_dir() or not (self.figures.sections or stages):
            return  # not a pipeline run (the suite's own tests): leave the pipeline's summary.json alone
        first = self.run.first_failure()
        summary = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "stages": [s.as_dict() for s in stages],
                   "first_failure": None if first is None else {"test": first.nodeid, "stage": first.stage,
                                                                "when": first.when, "message": first.message,
                                                                "fix": first.fix},
                   "failed_stages": self.run.failed_stages(), **self.figures.as_dict()}
        (out / "summary.json").write_text(commands.scrub(json.dumps(summary, indent=2)) + "\n")
        pictures = {**self.figures.images, **{title: png for title, (_, png) in self.figures.attached.items()}}
        for title, png in pictures.items():  # also as files, for CI artifacts
            slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            (out / f"{slug}.png").write_bytes(base64.b64decode(png))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report) -> None:
        """The app and version for a pipeline run (called before collection: judged by its arguments)."""
        cfg = self.config.stash.get(CONFIG_KEY, None)
        if cfg is not None and any("stages" in Path(arg.split("::")[0]).parts for arg in self.config.args):
            report.title = f"shipcheck: {cfg.app} {cfg.version}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list, summary: list, postfix: list, session) -> None:
        stages, first = self.run.stage_rows(), self.run.first_failure()
        records = list(self.run.records.values())
        top = (report_html.verdict(stages, report_facts.counts(records), time.time() - self.run.started, first,
                                   STAGE_NAMES)
               + report_html.stage_row(stages)
               + report_html.failure_box(first, max(self.run.failures() - 1, 0), STAGE_NAMES)
               + report_html.headline(self.figures.sections, stages, self.figures.tiles, self.figures.html))
        prefix.append(commands.scrub(f"<style>{report_html.CSS}</style><div class='sc'>{top}</div>"))
        below = report_html.details(self.figures.sections, self.figures.images)
        if below:
            postfix.append(commands.scrub(f"<div class='sc'>{below}</div>"))
