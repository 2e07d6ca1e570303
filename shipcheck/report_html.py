"""The HTML of the report's top and its collapsed detail tables, from plain facts (pure).

Top, in reading order: a verdict line; the stages as a row of coloured tiles (passed,
failed, skipped, time); the first failure with its message and fix; then the headline
figures as pictures (image sizes against budgets, quota peak per phase, deploy to Ready,
zero downtime, the stage timeline, charts stages added, the seeded-fault table). Below:
each figure section as a table in a closed <details>.
"""

from __future__ import annotations

import html

from . import report_charts as charts
from .report_facts import (DEPLOYS, FAULTS, QUOTA, SIZES, ZERO_DOWNTIME, Failure, StageRow,
                           deploy_times, image_sizes, quota_peaks)

# pytest-html's page: the title, our block (inside its summary), the results table, and its
# environment table last (it is long and rarely what a reviewer looks for).
CSS = """
body{display:flex;flex-direction:column;max-width:1400px}
#title{order:0}body>p{order:1}.summary{order:2}#results-table{order:3}
#environment-header{order:4}#environment{order:5}footer{order:6}
#title{margin:6px 0 0}body>p{margin:2px 0 8px;color:#666}.summary__data>h2{display:none}
.sc{color:#222;font-size:13px;line-height:1.35}
.sc h3{font-size:13px;margin:0 0 6px;color:#333;text-transform:uppercase;letter-spacing:.04em}
.sc-verdict{font-size:20px;font-weight:bold;padding:8px 12px;border-radius:4px;margin:4px 0 10px}
.sc-verdict.passed{background:#e6f4ea;color:#1b5e20}.sc-verdict.failed{background:#fdecea;color:#b71c1c}
.sc-stages{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:10px}
.sc-stage{flex:1 1 150px;border-radius:4px;padding:6px 10px;border-left:6px solid #9e9e9e;background:#f5f5f5}
.sc-stage.passed{border-color:#2e7d32;background:#e6f4ea}.sc-stage.failed{border-color:#c62828;background:#fdecea}
.sc-stage .n{font-weight:bold;font-size:14px;display:flex;justify-content:space-between}
.sc-stage .t{font-weight:normal;color:#444}.sc-stage .s{font-size:12px;color:#444}
.sc-fail{border:2px solid #c62828;border-radius:4px;padding:8px 12px;margin-bottom:10px;background:#fff}
.sc-fail .id{font-family:monospace;font-size:12px;color:#555;margin-bottom:4px}
.sc-fail pre{white-space:pre-wrap;margin:4px 0;font-size:12.5px;max-height:12.5em;overflow:auto;color:#222}
.sc-fail .fix{background:#fff8e1;border-left:4px solid #ef8f00;padding:4px 8px;margin-top:4px}
.sc-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:10px;grid-auto-flow:dense}
.sc-card.tall{grid-row:span 2}
.sc-card{border:1px solid #ddd;border-radius:4px;padding:8px 10px;background:#fff;overflow-x:auto}
.sc-big{font-size:18px;font-weight:bold}.sc-ok{color:#2e7d32}.sc-bad{color:#c62828}.sc-note{color:#555}
.sc table{border-collapse:collapse;font-size:12px}.sc td,.sc th{border:1px solid #ddd;padding:2px 6px;text-align:left}
.sc th{background:#f3f3f3}.sc details{margin:4px 0}.sc summary{cursor:pointer;font-weight:bold;color:#333}
"""
ICONS = {"passed": "✓", "failed": "✗", "skipped": "–", "not run": "·"}
VERDICTS = ("ok", "fits", "passed", "within_budget")  # boolean columns that judge; others are plain facts
MESSAGE_CHARS = 1200  # the box shows the start; the test's log has the whole text


def esc(value: object) -> str:
    return html.escape(str(value))


def cell(value: object, verdict: bool = False) -> str:
    """A table cell's content: booleans as ✓/✗ (green/red in a verdict column), None as –."""
    if isinstance(value, bool):
        mark = "✓" if value else "✗"
        return f"<span class='{'sc-ok' if value else 'sc-bad'}'>{mark}</span>" if verdict else mark
    return "–" if value is None else esc(value)


def failed_rows(rows: list[dict]) -> int:
    return sum(1 for row in rows if any(row.get(c) is False for c in VERDICTS))


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


# --- verdict, stage row, first failure ---------------------------------------------------------
def verdict(stages: list[StageRow], counts: dict[str, int], seconds: float, failure: Failure | None,
            names: dict[int, str]) -> str:
    bad = counts.get("failed", 0) + counts.get("error", 0)
    tally = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    if failure is None and not bad:
        passed = sum(1 for s in stages if s.status == "passed")
        skipped = sum(1 for s in stages if s.status == "skipped")
        what = (f"{passed} stages passed" + (f", {skipped} skipped" if skipped else "")) if stages else "Passed"
        return (f"<div class='sc-verdict passed'>✓ {esc(what)} <span style='font-weight:normal;font-size:14px'>"
                f"({esc(tally)} tests in {duration(seconds)})</span></div>")
    where = (f"stage {failure.stage} ({names.get(failure.stage, '?')}) failed" if failure and failure.stage
             else f"{bad} failed")
    later = " — later stages skipped" if any(s.number > (failure.stage or 99) and s.status == "skipped"
                                              for s in stages) and failure else ""
    return (f"<div class='sc-verdict failed'>✗ {esc(where.capitalize())}{later} <span style='font-weight:normal;"
            f"font-size:14px'>({esc(tally)} in {duration(seconds)})</span></div>")


def stage_row(stages: list[StageRow]) -> str:
    tiles = []
    for s in stages:
        detail = " · ".join(f"{n} {what}" for n, what in ((s.passed, "passed"), (s.failed, "failed"),
                                                          (s.skipped, "skipped")) if n) or "no tests"
        reason = "; ".join(s.skip_reasons[:3]) if s.status == "skipped" else ""
        tiles.append(f"<div class='sc-stage {s.status.replace(' ', '-')}' title='{esc(reason)}'>"
                     f"<div class='n'><span>{ICONS[s.status]} {s.number} · {esc(s.name)}</span>"
                     f"<span class='t'>{duration(s.seconds)}</span></div><div class='s'>{detail}</div></div>")
    return f"<div class='sc-stages'>{''.join(tiles)}</div>" if tiles else ""


def failure_box(failure: Failure | None, more: int, names: dict[int, str]) -> str:
    if failure is None:
        return ""
    stage = f"stage {failure.stage} ({names.get(failure.stage, '?')}) · " if failure.stage else ""
    when = "" if failure.when == "call" else f" (error in {failure.when})"
    message = failure.message if len(failure.message) <= MESSAGE_CHARS else failure.message[:MESSAGE_CHARS] + " …"
    fix = (f"<div class='fix'><b>Fix:</b> {esc(failure.fix)}</div>" if failure.fix
           else "<div class='fix'>No fix named: see the test's log and the evidence attached to it below.</div>")
    tail = f"<div class='sc-note'>{more} more failure(s) in the results below.</div>" if more else ""
    return (f"<div class='sc-fail'><h3>First failure</h3><div class='id'>{esc(stage)}{esc(failure.nodeid)}{when}</div>"
            f"<pre>{esc(message)}</pre>{fix}{tail}</div>")


# --- headline figures -----------------------------------------------------------------------------
def card(title: str, body: str, tall: bool = False) -> str:
    """A headline figure; `tall` ones take two rows of the grid (the shorter cards fill beside them)."""
    return f"<div class='sc-card{' tall' if tall else ''}'><h3>{esc(title)}</h3>{body}</div>" if body else ""


def sizes_card(rows: list[dict]) -> str:
    bars = [charts.Bar(image, size, f"{size:.1f} of {budget:g} MB ({size / budget:.0%})",
                       charts.status_colour(size <= budget), (charts.Marker(budget, "#333", f"budget {budget:g} MB"),))
            for image, size, budget in image_sizes(rows)]
    return card("Image sizes against budgets (uncompressed, black tick = budget)", charts.hbars(bars))


def quota_card(rows: list[dict]) -> str:
    peaks = quota_peaks(rows)
    if not peaks:
        return ""
    profiles = list(dict.fromkeys(p.values for p in peaks))
    colour = {v: charts.SERIES[i % len(charts.SERIES)] for i, v in enumerate(profiles)}
    phases = list(dict.fromkeys((p.phase, p.against) for p in peaks))
    bars = []
    for phase, against in phases:
        label = phase if against.startswith("quota") else f"{phase} ({against})"
        for i, p in enumerate(p for p in peaks if (p.phase, p.against) == (phase, against)):
            bars.append(charts.Bar(label if i == 0 else "", p.share, f"{p.share:.0f}% {p.resource}",
                                   colour[p.values] if p.fits else charts.RED))
    seed_over = [p for p in peaks if p.values.startswith("seed") and not p.fits]
    note = (f"<div class='sc-note'>The seed's own numbers overflow in {len(seed_over)} phase(s): "
            + esc("; ".join(f"{p.phase}: {p.resource} {p.share:.0f}%" for p in seed_over[:3])) + "</div>"
            if seed_over else "")
    legend = tuple((colour[v], v) for v in profiles)
    return card("Quota peak per phase (the resource nearest its limit; red = over)",
                charts.hbars(bars, reference=(100.0, "100% of the quota"), legend=legend) + note, tall=len(bars) > 4)


def deploy_card(rows: list[dict]) -> str:
    bars = []
    for row in deploy_times(rows):
        ready = row.get("ready_after_s")
        if row.get("skipped"):
            bars.append(charts.Bar(row["release"], None, "unchanged: no upgrade"))
        elif row.get("ok") and ready is not None:
            bars.append(charts.Bar(row["release"], ready, f"Ready after {ready:.1f} s", charts.GREEN))
        else:
            detected = row.get("failure_detected_after_s")
            text = f"FAILED, seen after {detected:.1f} s" if detected is not None else "FAILED"
            bars.append(charts.Bar(row["release"], detected or 0, text, charts.RED))
    return card("Deploy to Ready, per release", charts.hbars(bars))


def zero_downtime_card(rows: list[dict]) -> str:
    """The last proof: requests and failures in large type; how it was proven below (a real
    upgrade, a synthetic roll, or a proof recorded earlier for the same render)."""
    if not rows:
        return ""
    row = rows[-1]
    if "requests" not in row:
        return card("Zero downtime", f"<div class='sc-big'>{esc(row.get('proof', 'no proof this run'))}</div>"
                                     f"<div class='sc-note'>{esc(row.get('detail', ''))}</div>")
    failed = row.get("failed", 0)
    how = [f"{row['proof']}" if row.get("proof") else "", f"{row['rollouts']} rollouts" if row.get("rollouts") else "",
           f"{row['seconds']} s" if row.get("seconds") is not None else "",
           f"releases: {row['releases']}" if row.get("releases") else ""]
    return card("Zero downtime during the upgrades",
                f"<div class='sc-big {'sc-ok' if failed == 0 else 'sc-bad'}'>{'✓' if failed == 0 else '✗'} "
                f"{row['requests']} requests, {failed} failed</div>"
                f"<div class='sc-note'>{esc(' · '.join(h for h in how if h))}</div>")


def timeline_card(stages: list[StageRow]) -> str:
    timed = [s for s in stages if s.start is not None]
    if not timed:
        return ""
    origin = min(s.start for s in timed)
    colour = {"passed": charts.GREEN, "failed": charts.RED}
    rows = [(f"{s.number} {s.name}", s.start - origin, s.stop - origin, colour.get(s.status, charts.GREY))
            for s in timed]
    return card("Stage timeline", charts.timeline(rows))


def table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(row.get(c), c in VERDICTS)}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def headline(sections: dict[str, list[dict]], stages: list[StageRow], tiles: list[dict],
             fragments: dict[str, str]) -> str:
    cards = [sizes_card(sections.get(SIZES, [])), quota_card(sections.get(QUOTA, [])),
             deploy_card(sections.get(DEPLOYS, [])), zero_downtime_card(sections.get(ZERO_DOWNTIME, [])),
             timeline_card(stages)]
    cards += [card(t["title"], f"<div class='sc-big {'' if t['ok'] is None else 'sc-ok' if t['ok'] else 'sc-bad'}'>"
                               f"{esc(t['value'])}</div><div class='sc-note'>{esc(t['note'])}</div>") for t in tiles]
    cards += [card(title, fragment) for title, fragment in fragments.items()]
    if sections.get(FAULTS):
        cards.append(card("Seeded faults", table(sections[FAULTS])))
    found = "".join(c for c in cards if c)
    return f"<div class='sc-grid'>{found}</div>" if found else ""


def details(sections: dict[str, list[dict]], images: dict[str, str]) -> str:
    """Every figure section as a table in a closed <details>; the summary line counts the ✗."""
    out = ["<h3 style='margin-top:12px'>Figures (click to open)</h3>"]
    for title, rows in sections.items():
        if not rows:
            continue
        bad = failed_rows(rows)
        flag = f" — <span class='sc-bad'>{bad} ✗</span>" if bad else ""
        out.append(f"<details><summary>{esc(title)} ({len(rows)} row{'s' if len(rows) != 1 else ''}{flag})</summary>"
                   f"{table(rows)}</details>")
    for title, png in images.items():
        out.append(f"<details><summary>{esc(title)}</summary><img style='max-width:100%;border:1px solid #ccc' "
                   f"src='data:image/png;base64,{png}' alt='{esc(title)}'></details>")
    return "".join(out) if len(out) > 1 else ""
