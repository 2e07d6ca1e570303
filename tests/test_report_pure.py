"""The report's pure parts, without pytest sessions or a browser: each test's outcome, the
stage row, the first failure and its fix, the headline numbers read from figure rows, the
SVG pictures and the HTML pieces."""

import re
from decimal import Decimal
from types import SimpleNamespace

import pytest

from shipcheck import quota, report, report_charts, report_html
from shipcheck.report_facts import (Failure, ItemRecord, first_failure, image_sizes, message_lines, quota_peaks,
                                    split_fix, stage_rows)

NAMES = {1: "build", 2: "containers", 3: "charts", 4: "deploy", 5: "health"}


def rep(when="call", outcome="passed", nodeid="stages/test_01_build.py::test_x", duration=1.0, start=100.0,
        longrepr=None, **extra):
    report_ = SimpleNamespace(nodeid=nodeid, when=when, outcome=outcome, duration=duration, start=start,
                              stop=start + duration, longrepr=longrepr, passed=outcome == "passed",
                              failed=outcome == "failed", skipped=outcome == "skipped", **extra)
    return report_


def crash(message):
    return SimpleNamespace(reprcrash=SimpleNamespace(message=message))


def record(*reports, stage=1):
    rec = ItemRecord(reports[0].nodeid, stage)
    for r in reports:
        rec.add(r)
    return rec


# --- outcomes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reports, outcome", [
    ([rep("setup"), rep("call"), rep("teardown")], "passed"),
    ([rep("setup"), rep("call", "failed", longrepr=crash("AssertionError: x")), rep("teardown")], "failed"),
    ([rep("setup", "failed", longrepr=crash("RuntimeError: no cluster")), rep("teardown")], "error"),
    ([rep("setup"), rep("call"), rep("teardown", "failed", longrepr=crash("E"))], "error"),
    ([rep("setup", "skipped", longrepr=("f.py", 1, "Skipped: stage 1 failed")), rep("teardown")], "skipped"),
    ([rep("setup"), rep("call", "skipped", longrepr=("f.py", 1, "x"), wasxfail="seed overflows"),
      rep("teardown")], "xfailed"),
])
def test_a_tests_outcome_folds_its_three_reports(reports, outcome):
    assert record(*reports).outcome == outcome


def test_a_tests_time_is_its_three_phases_and_its_span_their_clock():
    rec = record(rep("setup", duration=5.0, start=10.0), rep("call", duration=2.0, start=15.0),
                 rep("teardown", duration=0.5, start=17.0))
    assert (rec.seconds, rec.start, rec.stop) == (7.5, 10.0, 17.5)


def test_the_skip_reason_is_kept_for_the_stage_tile():
    rec = record(rep("setup", "skipped", longrepr=("f.py", 1, "Skipped: stage 4 (deploy) failed at x")))
    assert rec.skip_reason == "stage 4 (deploy) failed at x"


# --- the stage row --------------------------------------------------------------------------------
def test_stage_row_counts_and_colours_each_stage():
    records = [record(rep(nodeid="a"), stage=1), record(rep(nodeid="b"), stage=1),
               record(rep(nodeid="c", outcome="failed", longrepr=crash("x")), stage=4),
               record(rep(nodeid="d"), stage=4),
               record(rep("setup", "skipped", nodeid="e", longrepr=("f", 1, "Skipped: stage 4 failed")), stage=5),
               record(rep(nodeid="f"), stage=None)]  # not a stage test: not in the row
    rows = {r.number: r for r in stage_rows(records, NAMES, expected={1, 2, 4, 5})}
    assert [(n, r.status, r.passed, r.failed, r.skipped) for n, r in rows.items()] == [
        (1, "passed", 2, 0, 0), (2, "not run", 0, 0, 0), (4, "failed", 1, 1, 0), (5, "skipped", 0, 0, 1)]
    assert rows[5].skip_reasons == ["stage 4 failed"]
    assert rows[1].as_dict() == {"stage": 1, "name": "build", "status": "passed", "passed": 2, "failed": 0,
                                 "skipped": 0, "seconds": 2.0}


def test_the_first_failure_is_the_one_that_started_first():
    late = record(rep(nodeid="late", outcome="failed", start=50.0, longrepr=crash("AssertionError: late")), stage=5)
    early = record(rep(nodeid="early", outcome="failed", start=20.0, longrepr=crash("AssertionError: early")), stage=4)
    assert first_failure([late, early]).nodeid == "early"
    assert first_failure([record(rep())]) is None


def test_a_module_that_does_not_import_comes_before_any_test_failure():
    broken = Failure("stages/test_02_containers.py", 2, "collect", "SyntaxError", "")
    failed = record(rep(outcome="failed", longrepr=crash("AssertionError: x")))
    assert first_failure([failed], [broken]) is broken


# --- the failure's message and fix ---------------------------------------------------------------------
def test_the_message_drops_the_exception_name_and_pytests_assert_explanation():
    text = ("AssertionError: todo-frontend:v1: 230.0 MB, budget 200 MB (115%). Fix: trim the image\n"
            "assert None is None\n  +  where None = problem")
    assert message_lines(crash(text)) == "todo-frontend:v1: 230.0 MB, budget 200 MB (115%). Fix: trim the image"


def test_a_multi_line_message_keeps_its_lines():
    text = "AssertionError: todo-backend (pipeline values):\nno limits on api\nno requests on api\nassert not [...]"
    assert message_lines(crash(text)) == "todo-backend (pipeline values):\nno limits on api\nno requests on api"


def test_an_error_keeps_its_exception_name():
    assert message_lines(crash("kubernetes.config.ConfigException: no kubeconfig")) == \
        "kubernetes.config.ConfigException: no kubeconfig"
    assert message_lines(crash("Failed: helm not found on PATH")) == "helm not found on PATH"


def test_a_plain_text_report_gives_its_E_lines():
    """A report whose secrets were scrubbed is plain text: the E lines are the message."""
    text = ("    def test_x():\n>       assert False, 'DATABASE_URL=***'\nE       AssertionError: DATABASE_URL=***. "
            "Fix: set it\nE       assert False\n\nstages/test_04.py:3: AssertionError")
    assert message_lines(text) == "DATABASE_URL=***. Fix: set it"


@pytest.mark.parametrize("message, expected", [
    ("measured 230 MB, limit 200 MB. Fix: trim the image", ("measured 230 MB, limit 200 MB.", "Trim the image")),
    ("build failed. Fix the Dockerfile step shown above.", ("build failed.", "The Dockerfile step shown above.")),
    ("usage over limits; Fix: raise resources.limits", ("usage over limits;", "Raise resources.limits")),
    ("the fixture prefix: nothing to fix here", ("the fixture prefix: nothing to fix here", "")),
    ("Fixtures broke", ("Fixtures broke", "")),
])
def test_split_fix(message, expected):
    assert split_fix(message) == expected


# --- headline numbers from the stages' rows ---------------------------------------------------------------
def test_quota_peaks_take_the_resource_nearest_its_limit():
    rows = [{"values": "defaults (pipeline)", "phase": "at rest", "against": "quota todo-quota",
             "requests.cpu": "1.1 / 3 (37%)", "limits.cpu": "2.5 / 3 (83%)", "pods": "5 / 10 (50%)", "fits": True},
            {"values": "seed", "phase": "rolling update", "against": "quota q", "limits.cpu": "3.25 / 3 (108%)",
             "fits": False},
            {"values": "x", "phase": "no shares", "against": "quota q", "fits": True},
            {"values": "seed", "phase": "rolling update", "against": "quota q", "limits.cpu": "3.25 / 3 (108%)",
             "fits": False}]  # the same phase recorded again
    peaks = quota_peaks(rows)
    assert [(p.phase, p.share, p.resource, p.fits) for p in peaks] == [
        ("at rest", 83.0, "limits.cpu", True), ("rolling update", 108.0, "limits.cpu", False)]


def test_image_sizes_keep_the_last_measurement_of_each_image():
    rows = [{"image": "a:1", "size_mb": 100.0, "budget_mb": 200}, {"image": "a:1", "size_mb": 120.0, "budget_mb": 200},
            {"image": "b:1", "size_mb": 50.0, "budget_mb": 100}]
    assert image_sizes(rows) == [("a:1", 120.0, 200.0), ("b:1", 50.0, 100.0)]


def test_record_fits_writes_the_rows_stage_3_always_wrote():
    rest = quota.Usage.of(**{"requests.cpu": Decimal("1.5"), "limits.cpu": Decimal("3.25"), "pods": 5})
    phase = quota.Phase("rolling update", "rolling update", "todo-backend", (("at rest", rest),))
    fits = [quota.quota_fit(phase, {"limits.cpu": "3", "pods": "10"}, "todo-quota")]
    figures = report.Figures()
    report.record_fits(figures, "seed", fits)
    assert figures.sections["quota fit"] == [{"values": "seed", "phase": "rolling update", "against": "quota todo-quota",
                                              "limits.cpu": "3.25 / 3 (108%)", "pods": "5 / 10 (50%)", "fits": False}]
    overflows = report.add_seed_comparison(figures, fits)
    assert overflows == [str(fits[0].overflows[0])]
    assert figures.sections[report.SEED_SECTION] == [{
        "phase": "rolling update", "against": "quota todo-quota", "fits": False,
        "overflow": "rolling update: limits.cpu 3.25 > quota 3 (at rest 3.25)"}]


def test_figures_keep_their_api():
    figures = report.Figures()
    figures.add("image sizes", image="a:1", size_mb=1.0)
    figures.add_png("shot", "iVBOR")
    figures.add_html("chart", "<svg></svg>")
    figures.headline("cold build", "61 s", ok=True, note="target 6 min")
    assert figures.as_dict() == {"sections": {"image sizes": [{"image": "a:1", "size_mb": 1.0}]},
                                 "headline": [{"title": "cold build", "value": "61 s", "ok": True,
                                               "note": "target 6 min"}],
                                 "images": ["shot"]}


# --- pictures ----------------------------------------------------------------------------------------------
def bar_widths(svg: str) -> list[float]:
    """Widths of the filled bars (the 12 px high rects that are not the grey track)."""
    return [float(w) for w, fill in re.findall(r"<rect x='[\d.]+' y='\d+' width='([\d.]+)' height='12' "
                                               r"fill='(#[0-9a-f]+)'", svg) if fill != "#f1f1f1"]


def track_width(svg: str) -> float:
    return float(re.findall(r"width='([\d.]+)' height='12' fill='#f1f1f1'", svg)[0])


def test_bars_are_proportional_and_markers_sit_at_their_value():
    svg = report_charts.hbars([report_charts.Bar("a", 50, "50 of 100", markers=(report_charts.Marker(100, "#333", "b"),)),
                               report_charts.Bar("b", 25, "25")])
    full = track_width(svg)
    assert bar_widths(svg) == [pytest.approx(full / 2, abs=0.1), pytest.approx(full / 4, abs=0.1)]
    assert svg.startswith("<svg xmlns='http://www.w3.org/2000/svg'") and "<title>b</title>" in svg
    assert report_charts.hbars([]) == ""


def test_a_bar_past_the_scale_stops_at_the_end_and_its_text_says_how_far():
    svg = report_charts.hbars([report_charts.Bar("over", 130, "130% limits.cpu")], scale=100.0,
                              reference=(100.0, "100%"))
    assert bar_widths(svg) == [pytest.approx(track_width(svg), abs=0.1)] and "130% limits.cpu" in svg and "stroke-dasharray" in svg


def test_labels_and_texts_are_escaped_and_never_clipped_by_the_chart():
    long_label = "todo-backend pre-upgrade hook"
    svg = report_charts.hbars([report_charts.Bar(long_label, 1, "<1 of 2 & more>")])
    assert f">{long_label}</text>" in svg and "&lt;1 of 2 &amp; more&gt;" in svg
    label_x = float(re.search(r"<text x='([\d.]+)' y='\d+' text-anchor='end'", svg).group(1))
    assert label_x >= len(long_label) * 6.5  # the label column fits the label


def test_usage_bars_scale_each_row_to_its_limit_and_redden_an_overrun():
    rows = [{"pod": "api-6d9f-x7k2p", "container": "api", "resource": "memory MiB", "usage": 128.0, "request": 64.0,
             "limit": 256.0},
            {"pod": "api-6d9f-x7k2p", "container": "api", "resource": "cpu m", "usage": 300.0, "request": 100.0,
             "limit": 200.0}]
    svg = report_charts.usage_bars(rows)
    assert "api x7k2p memory" in svg and "128.0 MiB of 256 (50%)" in svg and "300.0 m of 200 (150%)" in svg
    fills = re.findall(r"height='12' fill='(#[0-9a-f]+)'><title>", svg)
    assert fills == [report_charts.BLUE, report_charts.RED]


def test_the_timeline_places_each_stage_on_one_clock():
    svg = report_charts.timeline([("1 build", 0.0, 30.0, report_charts.GREEN), ("2 containers", 30.0, 60.0,
                                                                                report_charts.RED)])
    bars = re.findall(r"<rect x='([\d.]+)' y='\d+' width='([\d.]+)' height='13' fill='(#[0-9a-f]+)'", svg)
    (x1, w1, c1), (x2, w2, c2) = [(float(x), float(w), c) for x, w, c in bars]
    assert w1 == pytest.approx(w2) and x2 == pytest.approx(x1 + w1) and (c1, c2) == (report_charts.GREEN,
                                                                                  report_charts.RED)
    assert "30.0 s" in svg and ">0 s<" in svg


# --- HTML pieces ---------------------------------------------------------------------------------------------
def test_booleans_are_marks_and_only_verdict_columns_are_coloured():
    html = report_html.table([{"image": "a", "ok": False, "skipped": False, "fits": True, "note": None}])
    assert "True" not in html and "False" not in html
    assert "<span class='sc-bad'>✗</span>" in html and "<td>✗</td>" in html and "<td>–</td>" in html
    assert report_html.failed_rows([{"ok": False, "skipped": False}, {"ok": True, "skipped": False}]) == 1


def test_the_failure_box_escapes_the_message_and_names_the_stage():
    failure = Failure("stages/test_04_deploy.py::t[x]", 4, "setup", "<script>alert(1)</script> broke", "")
    html = report_html.failure_box(failure, more=2, names=NAMES)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "stage 4 (deploy) · stages/test_04_deploy.py::t[x] (error in setup)" in html
    assert "No fix named" in html and "2 more failure(s)" in html
    assert report_html.failure_box(None, 0, NAMES) == ""


def test_the_verdict_names_the_failed_stage_or_counts_the_passed_ones():
    row = stage_rows([record(rep(nodeid="a"), stage=1)], NAMES)
    assert "✓ 1 stages passed" in report_html.verdict(row, {"passed": 1}, 3.0, None, NAMES)
    failed = Failure("x", 4, "call", "m", "f")
    rows = stage_rows([record(rep(nodeid="a", outcome="failed", longrepr=crash("m")), stage=4),
                       record(rep("setup", "skipped", nodeid="b", longrepr=("f", 1, "s")), stage=5)], NAMES)
    text = report_html.verdict(rows, {"failed": 1, "skipped": 1}, 75.0, failed, NAMES)
    assert "Stage 4 (deploy) failed — later stages skipped" in text and "1 min 15 s" in text


@pytest.mark.parametrize("row, big, note", [
    ({"releases": "a, b", "requests": 1063, "failed": 0, "seconds": 79.6, "rollouts": 4},
     "✓ 1063 requests, 0 failed", "4 rollouts · 79.6 s · releases: a, b"),
    ({"proof": "real upgrade", "requests": 310, "failed": 2, "seconds": 20.1, "releases": "todo-backend"},
     "✗ 310 requests, 2 failed", "real upgrade · 20.1 s · releases: todo-backend"),
    ({"proof": "reused", "detail": "1063 requests, 0 failed at revisions 3, 4"}, "reused",
     "1063 requests, 0 failed at revisions 3, 4"),
])
def test_the_zero_downtime_card_reads_every_kind_of_proof(row, big, note):
    html = report_html.zero_downtime_card([row])
    assert f">{big}</div>" in html.replace("sc-big sc-ok'>", "sc-big'>").replace("sc-big sc-bad'>", "sc-big'>")
    assert f"<div class='sc-note'>{note}</div>" in html
