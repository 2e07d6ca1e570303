"""Pictures for the report as inline SVG: no scripts, no fonts or files fetched, so the
self-contained HTML shows them offline and they scale on any screen.

Three shapes cover what the report draws:
- `hbars`: labelled horizontal bars, each with an optional limit tick (image size against
  its budget, usage against request and limit) and an optional chart-wide reference line
  (100 % of the quota);
- `timeline`: one bar per stage from its first test's start to its last test's end;
- `usage_bars`: the resource-usage rows of stage 5 drawn with `hbars`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

GREEN, RED, BLUE, GREY = "#2e7d32", "#c62828", "#1e6fd9", "#9e9e9e"
SERIES = ("#1e6fd9", "#8e24aa", "#00897b", "#6d4c41")  # one colour per group (values profile)
FONT = "font-family='Helvetica,Arial,sans-serif' font-size='12'"
CHAR_W = 7.0  # px per character at 12 px, a little over what DejaVu Sans and Helvetica need
WIDTH, ROW_H, MIN_BAR_W = 580, 20, 160


@dataclass(frozen=True)
class Marker:
    value: float
    colour: str
    title: str  # tooltip: "budget 200 MB"


@dataclass(frozen=True)
class Bar:
    label: str  # "" continues the group above (grouped bars)
    value: float | None  # None: nothing measured, only the text
    text: str  # right of the bar: "170.1 of 200 MB"
    colour: str = BLUE
    markers: tuple[Marker, ...] = ()


def status_colour(ok: bool | None) -> str:
    return BLUE if ok is None else GREEN if ok else RED


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _text_w(texts, most: int) -> float:
    return min(max((len(t) for t in texts), default=0), most) * CHAR_W


def hbars(bars: list[Bar], *, reference: tuple[float, str] | None = None,
          legend: tuple[tuple[str, str], ...] = (), scale: float | None = None) -> str:
    """Horizontal bars on one scale (the largest value, marker or reference unless `scale`).
    The label and text columns are as wide as their longest entries; the bars get the rest.
    `reference` (value, label) draws a dashed line across every row, labelled below;
    `legend` ((colour, name), ...) a key above the bars."""
    if not bars:
        return ""
    label_w = _text_w([b.label for b in bars], 34) + 8
    text_w = _text_w([b.text for b in bars], 30) + 8
    width = max(WIDTH, label_w + MIN_BAR_W + text_w + 8)
    bar_w = width - label_w - text_w - 8
    top = 20 if legend else 4
    bottom = 16 if reference else 4
    height = top + ROW_H * len(bars) + bottom
    biggest = max([b.value or 0 for b in bars] + [m.value for b in bars for m in b.markers]
                  + [reference[0] if reference else 0])
    scale = scale or biggest or 1.0
    x0 = label_w

    def x(value: float) -> float:
        return x0 + bar_w * min(value, scale) / scale  # past the scale the bar stops; its text says by how much

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' class='sc-chart' width='{width:.0f}' height='{height}' "
           f"viewBox='0 0 {width:.0f} {height}' role='img' {FONT}>"]
    lx = x0
    for colour, name in legend:
        out.append(f"<rect x='{lx:.0f}' y='4' width='10' height='10' fill='{colour}'/>"
                   f"<text x='{lx + 14:.0f}' y='13' fill='#333'>{_esc(name)}</text>")
        lx += 30 + CHAR_W * len(name)
    for i, bar in enumerate(bars):
        y = top + i * ROW_H
        if bar.label:
            if i:
                out.append(f"<line x1='0' x2='{width:.0f}' y1='{y}' y2='{y}' stroke='#e8e8e8'/>")
            out.append(f"<text x='{x0 - 8:.0f}' y='{y + 14}' text-anchor='end' fill='#222'>"
                       f"<title>{_esc(bar.label)}</title>{_esc(_clip(bar.label, 34))}</text>")
        out.append(f"<rect x='{x0:.0f}' y='{y + 4}' width='{bar_w:.0f}' height='12' fill='#f1f1f1'/>")
        if bar.value:
            out.append(f"<rect x='{x0:.0f}' y='{y + 4}' width='{x(bar.value) - x0:.1f}' height='12' "
                       f"fill='{bar.colour}'><title>{_esc(bar.text)}</title></rect>")
        for m in bar.markers:
            out.append(f"<rect x='{x(m.value) - 1:.1f}' y='{y + 1}' width='2.5' height='18' fill='{m.colour}'>"
                       f"<title>{_esc(m.title)}</title></rect>")
        out.append(f"<text x='{x0 + bar_w + 8:.0f}' y='{y + 14}' fill='#222'>{_esc(_clip(bar.text, 30))}</text>")
    if reference:
        rx = x(reference[0])
        out.append(f"<line x1='{rx:.1f}' x2='{rx:.1f}' y1='{top}' y2='{height - bottom + 2}' stroke='#444' "
                   f"stroke-dasharray='3,3'/><text x='{rx:.1f}' y='{height - 3}' text-anchor='middle' fill='#444' "
                   f"font-size='11'>{_esc(reference[1])}</text>")
    out.append("</svg>")
    return "".join(out)


def _tick_step(span_s: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span_s / step <= 6:
            return step
    return 7200


def _clock(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def timeline(rows: list[tuple[str, float, float, str]]) -> str:
    """rows: (label, start_s, stop_s, colour), seconds since the run started. A Gantt row per
    stage, on one time axis, with each bar's length written beside it."""
    if not rows:
        return ""
    span = max(stop for _, _, stop, _ in rows) or 1.0
    x0, width = 110, WIDTH - 110 - 60
    height = 22 * len(rows) + 26

    def x(s: float) -> float:
        return x0 + width * s / span

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' class='sc-chart' width='{WIDTH}' height='{height}' "
           f"viewBox='0 0 {WIDTH} {height}' role='img' {FONT}>"]
    step = _tick_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        out.append(f"<line x1='{x(tick):.1f}' x2='{x(tick):.1f}' y1='2' y2='{height - 18}' stroke='#e6e6e6'/>"
                   f"<text x='{x(tick):.1f}' y='{height - 5}' text-anchor='middle' fill='#777' font-size='11'>"
                   f"{_clock(tick)}</text>")
        tick += step
    for i, (label, start, stop, colour) in enumerate(rows):
        y = 4 + 22 * i
        out.append(f"<text x='{x0 - 6}' y='{y + 13}' text-anchor='end' fill='#222'>{_esc(label)}</text>"
                   f"<rect x='{x(start):.1f}' y='{y + 3}' width='{max(x(stop) - x(start), 2):.1f}' height='13' "
                   f"fill='{colour}'><title>{_esc(label)}: {stop - start:.1f} s</title></rect>"
                   f"<text x='{x(stop) + 5:.1f}' y='{y + 13}' fill='#222'>{stop - start:.1f} s</text>")
    out.append("</svg>")
    return "".join(out)


def usage_bars(rows: list[dict]) -> str:
    """rows: {pod, container, resource ('cpu m' | 'memory MiB'), usage, request, limit}.
    Each row in percent of its own limit (else of its largest figure), so small and large
    containers read alike: usage as the bar, the request as a green tick, the limit as a
    red tick; a bar past its limit is red."""
    bars = []
    for row in rows:
        usage, request, limit = row["usage"] or 0, row.get("request") or 0, row.get("limit") or 0
        scale = (limit or max(usage, request) or 1) / 100
        kind, unit = row["resource"].split()[0], row["resource"].split()[-1]
        markers = [Marker(request / scale, GREEN, f"request {request:g} {unit}")] if request else []
        markers += [Marker(limit / scale, RED, f"limit {limit:g} {unit}")] if limit else []
        text = f"{usage:.1f} {unit}" + (f" of {limit:g} ({usage / limit:.0%})" if limit else "")
        pod_id = row["pod"].rsplit("-", 1)[-1]  # the pod's own suffix tells replicas apart
        bars.append(Bar(f"{row['container']} {pod_id} {kind}", usage / scale, text,
                        RED if limit and usage > limit else BLUE, tuple(markers)))
    return hbars(bars, scale=100.0, legend=((BLUE, "usage"), (GREEN, "request"), (RED, "limit")))
