"""Small self-contained HTML charts for the report (no scripts, no external assets)."""

from __future__ import annotations

import html

_COLORS = {"usage": "#2f7ed8", "request": "#8bbc21", "limit": "#c42525"}


def usage_bars(rows: list[dict]) -> str:
    """rows: {pod, container, resource ('cpu m' | 'memory MiB'), usage, request, limit}.
    One bar per row, scaled to the limit: usage filled, request and limit as markers."""
    out = ["<table class='shipcheck-usage' style='border-collapse:collapse'>",
           "<tr><th>pod/container</th><th>resource</th><th>usage</th><th>request</th><th>limit</th>"
           "<th style='width:320px'>usage (bar) vs request (green) and limit (red)</th></tr>"]
    for row in rows:
        scale = max(row["limit"] or 0, row["request"] or 0, row["usage"] or 0) or 1
        used = 100 * (row["usage"] or 0) / scale
        req = 100 * (row["request"] or 0) / scale
        bar = (f"<div style='position:relative;height:14px;background:#eee;width:300px'>"
               f"<div style='position:absolute;left:0;top:0;height:14px;width:{used:.1f}%;background:{_COLORS['usage']}'></div>"
               f"<div style='position:absolute;left:{req:.1f}%;top:-2px;height:18px;width:2px;background:{_COLORS['request']}'></div>"
               f"<div style='position:absolute;right:0;top:-2px;height:18px;width:2px;background:{_COLORS['limit']}'></div>"
               "</div>")
        out.append(f"<tr><td>{html.escape(row['pod'])}/{html.escape(row['container'])}</td>"
                   f"<td>{html.escape(row['resource'])}</td><td>{row['usage']:.1f}</td>"
                   f"<td>{row['request'] or '-'}</td><td>{row['limit'] or '-'}</td><td>{bar}</td></tr>")
    out.append("</table>")
    return "".join(out)
