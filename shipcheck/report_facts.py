"""What the top of the report says, as plain data: each test's outcome, the stage row, the
first failure with its message and fix, and the headline figures read from the figure
sections the stages record. Pure functions over report-like objects: unit-tested without
pytest sessions or a browser."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Figure sections the headline reads (names the stages already record).
SIZES, QUOTA, DEPLOYS, ZERO_DOWNTIME, FAULTS = "image sizes", "quota fit", "deploys", "zero downtime", "seeded faults"
SEED_VALUES = "seed (values-seed.yaml)"


@dataclass
class ItemRecord:
    nodeid: str
    stage: int | None
    outcome: str = "passed"  # passed | failed | error | skipped | xfailed | xpassed
    seconds: float = 0.0
    start: float | None = None  # epoch seconds of its first report
    stop: float | None = None
    failure: Failure | None = None
    skip_reason: str = ""

    def add(self, report) -> None:
        """Fold in one phase's report (setup, call, teardown): the worst outcome wins."""
        self.seconds += report.duration
        start, stop = getattr(report, "start", None), getattr(report, "stop", None)
        if start is not None:
            self.start = start if self.start is None else min(self.start, start)
            self.stop = stop if self.stop is None else max(self.stop, stop)
        wasxfail = hasattr(report, "wasxfail")
        if report.failed:
            if self.failure is None:
                self.failure = failure_of(report, self.stage)
            self.outcome = "failed" if report.when == "call" else ("error" if self.outcome != "failed" else "failed")
        elif report.skipped and self.outcome == "passed":
            self.outcome = "xfailed" if wasxfail else "skipped"
            self.skip_reason = _skip_reason(report)
        elif report.when == "call" and report.passed and wasxfail:
            self.outcome = "xpassed"


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(getattr(report, "wasxfail", "") or "")


@dataclass(frozen=True)
class Failure:
    nodeid: str
    stage: int | None
    when: str  # setup | call | teardown | collect
    message: str
    fix: str


_EXPLANATION = re.compile(r"^\s*(assert |where |\+  where|\+  and|and   )")
_PLAIN_PREFIX = re.compile(r"^(AssertionError|Failed|_pytest\.outcomes\.Failed)(: |:$)")
_FIX = re.compile(r"(?:^|(?<=[\s.;(]))Fix(?::\s*|\s+(?=[a-z]))")


def message_lines(longrepr) -> str:
    """The failure's own message: the crash line of a traceback, or the `E ...` lines of a
    plain-text report (a scrubbed report is plain text), without pytest's assert explanation."""
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    else:
        raw = str(longrepr or "")
        e_lines = [line[1:].strip() for line in raw.splitlines() if line.startswith("E ")]
        text = "\n".join(e_lines) if e_lines else raw.strip().splitlines()[-1] if raw.strip() else ""
    kept = []
    for line in text.splitlines():
        if kept and _EXPLANATION.match(line):
            break  # "assert False" and its "where" lines: pytest's rewrite, not the gate's words
        kept.append(line)
    return _PLAIN_PREFIX.sub("", "\n".join(kept).strip(), count=1).strip()


def split_fix(message: str) -> tuple[str, str]:
    """'measured X, limit Y. Fix: do Z' -> ('measured X, limit Y.', 'Do Z'); ('...', '')
    when the message names no fix."""
    found = _FIX.search(message)
    if not found:
        return message.strip(), ""
    fix = message[found.end():].strip()
    return message[:found.start()].strip(), fix[:1].upper() + fix[1:]


def failure_of(report, stage: int | None) -> Failure:
    message, fix = split_fix(message_lines(report.longrepr))
    return Failure(report.nodeid, stage, report.when, message, fix)


# --- the stage row ------------------------------------------------------------------------
@dataclass
class StageRow:
    number: int
    name: str
    passed: int = 0
    failed: int = 0  # failures and errors
    skipped: int = 0  # skips and expected failures
    seconds: float = 0.0
    start: float | None = None
    stop: float | None = None
    skip_reasons: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failed:
            return "failed"
        if self.passed:
            return "passed"
        return "skipped" if self.skipped else "not run"

    def as_dict(self) -> dict:
        return {"stage": self.number, "name": self.name, "status": self.status, "passed": self.passed,
                "failed": self.failed, "skipped": self.skipped, "seconds": round(self.seconds, 1)}


def stage_rows(records: list[ItemRecord], names: dict[int, str], expected: set[int] = frozenset()) -> list[StageRow]:
    """One row per stage that has tests (and per `expected` stage, shown 'not run' when it has none)."""
    rows: dict[int, StageRow] = {n: StageRow(n, names.get(n, "?")) for n in expected}
    for rec in records:
        if rec.stage is None:
            continue
        row = rows.setdefault(rec.stage, StageRow(rec.stage, names.get(rec.stage, "?")))
        if rec.outcome in ("failed", "error"):
            row.failed += 1
        elif rec.outcome in ("skipped", "xfailed"):
            row.skipped += 1
            if rec.skip_reason and rec.skip_reason not in row.skip_reasons:
                row.skip_reasons.append(rec.skip_reason)
        else:
            row.passed += 1
        row.seconds += rec.seconds
        if rec.start is not None:
            row.start = rec.start if row.start is None else min(row.start, rec.start)
            row.stop = rec.stop if row.stop is None else max(row.stop, rec.stop)
    return [rows[n] for n in sorted(rows)]


def first_failure(records: list[ItemRecord], collect_failures: list[Failure] = ()) -> Failure | None:
    """A module that failed to import comes first; then the failed test that started first."""
    if collect_failures:
        return collect_failures[0]
    failed = [r for r in records if r.failure is not None]
    failed.sort(key=lambda r: r.start if r.start is not None else float("inf"))
    return failed[0].failure if failed else None


def counts(records: list[ItemRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rec in records:
        out[rec.outcome] = out.get(rec.outcome, 0) + 1
    return out


# --- headline figures from the stages' sections ----------------------------------------------
_SHARE = re.compile(r"\((\d+(?:\.\d+)?)%\)")


@dataclass(frozen=True)
class PhasePeak:
    values: str  # "defaults (pipeline)", "seed (values-seed.yaml)", ...
    phase: str
    against: str
    share: float  # the largest used/limit of its resources, in percent
    resource: str
    fits: bool


def quota_peaks(rows: list[dict]) -> list[PhasePeak]:
    """Per recorded phase (and values profile), the resource closest to its limit: stage 3's
    rows hold each resource as 'used / limit (share%)'. A phase recorded twice counts once."""
    peaks: dict[tuple[str, str, str], PhasePeak] = {}
    for row in rows:
        shares = [(float(m.group(1)), key) for key, cell in row.items() if isinstance(cell, str)
                  for m in [_SHARE.search(cell)] if m and " / " in cell]
        if shares:
            share, resource = max(shares)
            peak = PhasePeak(str(row.get("values", "")), str(row.get("phase", "")), str(row.get("against", "")),
                             share, resource, bool(row.get("fits", share <= 100)))
            peaks[peak.values, peak.phase, peak.against] = peak
    return list(peaks.values())


def image_sizes(rows: list[dict]) -> list[tuple[str, float, float]]:
    """(image, size MB, budget MB) per image, the last measurement of each."""
    latest = {row["image"]: (float(row["size_mb"]), float(row["budget_mb"])) for row in rows
              if row.get("size_mb") is not None and row.get("budget_mb")}
    return [(image, size, budget) for image, (size, budget) in latest.items()]


def deploy_times(rows: list[dict]) -> list[dict]:
    """Per release, its last deploy: ready_after_s, or why there is none (unchanged, failed)."""
    latest = {row["release"]: row for row in rows if "release" in row}
    return list(latest.values())
