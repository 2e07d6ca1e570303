"""The report a reviewer reads: a fake stage layout (figures as the real stages record them)
runs in a subprocess twice -- green, and with a seeded deploy failure -- and the reports it
writes are read back: the stage row, the first failure with its fix, the headline pictures,
the screenshot on its own test, summary.json. Headless Chromium photographs the top of each
report into reports/report-top-green.png and reports/report-top-failed.png, attached to
these tests' own entries in the suite's HTML report."""

from __future__ import annotations

import base64
import html
import json
import re
import struct
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from shipcheck import browser, commands, report

REPO = Path(__file__).resolve().parents[1]
UNIT_CONFIG = REPO / "tests" / "seeded" / "unit.shipcheck.yaml"
FAILING_TEST = "stages/test_04_deploy.py::test_release_deployed[todo-backend]"


def tiny_png(width: int = 64, height: int = 40, rgb: tuple[int, int, int] = (30, 111, 217)) -> bytes:
    """A one-colour PNG (a stand-in for the frontend's screenshot)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- the fake stages: the figures the real ones record, the real report API -----------------------
STAGES = {
    "test_01_build.py": '''
        IMAGES = {"todo-frontend": (170.1, 200), "todo-backend": (146.4, 300), "todo-postgres": (204.5, 250)}

        @pytest.mark.parametrize("component", IMAGES)
        def test_size_within_budget(figures, component):
            size, budget = IMAGES[component]
            time.sleep(0.1)
            figures.add("image sizes", image=f"{component}:v1.0.0", size_mb=size, budget_mb=budget,
                        used=f"{size / budget:.0%}", measure="uncompressed, 1 MB = 10^6 bytes")
            assert size <= budget

        def test_image_built_and_tagged(figures):
            time.sleep(0.4)
            for name in IMAGES:
                figures.add("builds", image=f"{name}:v1.0.0", ok=True, seconds=21.3)
        ''',
    "test_02_containers.py": '''
        @pytest.mark.parametrize("component", ["todo-frontend", "todo-backend", "todo-postgres"])
        def test_healthy(figures, component):
            time.sleep(0.1)
            figures.add("containers", component=component, healthy_after_s=4.2, ok=True)
        ''',
    "test_03_charts.py": '''
        from decimal import Decimal as D
        from shipcheck import quota, report

        HARD = {"requests.cpu": "3", "requests.memory": "4Gi", "limits.cpu": "3", "limits.memory": "4Gi", "pods": "10"}

        def usage(cpu, mem, lcpu, lmem, pods):
            return quota.Usage.of(**{"requests.cpu": D(cpu), "requests.memory": D(mem) * 2**20,
                                     "limits.cpu": D(lcpu), "limits.memory": D(lmem) * 2**20, "pods": pods})

        def phases(rest, surge, hook):
            return [quota.Phase("at rest", "at rest", None, (("releases", rest),)),
                    quota.Phase("todo-backend pre-upgrade hook", "hook", "todo-backend", (("at rest", rest), ("hook pod", hook))),
                    quota.Phase("todo-backend rolling update", "rolling update", "todo-backend", (("at rest", rest), ("surge pod", surge))),
                    quota.Phase("todo-frontend rolling update", "rolling update", "todo-frontend", (("at rest", rest), ("surge pod", surge)))]

        OURS = phases(usage("1.1", 1400, "2.0", 2600, 5), usage("0.25", 256, "0.5", 512, 1), usage("0.1", 128, "0.2", 256, 1))
        SEED = phases(usage("2.5", 2500, "2.75", 3000, 5), usage("0.5", 512, "0.5", 512, 1), usage("0.2", 256, "0.25", 256, 1))

        def test_helm_lint_strict():
            time.sleep(0.1)

        def test_quota_fit_during_rollout(figures):
            fits = [quota.quota_fit(p, HARD, "todo-quota") for p in OURS]
            report.record_fits(figures, "defaults (pipeline)", fits)
            report.add_seed_comparison(figures, [quota.quota_fit(p, HARD, "todo-quota") for p in SEED])
            assert all(f.ok for f in fits)
        ''',
    "test_04_deploy.py": '''
        FAIL = {fail}
        RELEASES = {"todo-postgres": 5.5, "todo-backend": 11.6, "todo-frontend": 5.5}

        @pytest.mark.parametrize("release", RELEASES)
        def test_release_deployed(figures, release):
            time.sleep(0.2)
            if FAIL and release == "todo-frontend":
                pytest.skip("todo-backend failed before it: not deployed")
            if FAIL and release == "todo-backend":
                figures.add("deploys", release=release, ok=False, skipped=False, revision=4, ready_after_s=None,
                            failure_detected_after_s=10.6, recovery="rolled back to revision 3")
                raise AssertionError(
                    'release todo-backend: container todo-backend: CrashLoopBackOff (last exit code 1 (Error): '
                    '"DATABASE_URL not set") after 10.6 s; limit: Ready within 300 s. Previous release: rolled back '
                    'to revision 3: rolled out and serving. Fix: read the container log below; fix the crash or its '
                    'configuration (the Secret key database-url).')
            figures.add("deploys", release=release, ok=True, skipped=release == "todo-postgres", revision=3,
                        ready_after_s=None if release == "todo-postgres" else RELEASES[release],
                        failure_detected_after_s=None, recovery="")
        ''',
    "test_05_health.py": '''
        import base64
        from shipcheck import report, report_charts

        def test_usage_under_limits(figures):
            rows = [{"pod": "todo-backend-6d9f8b7c5-x7k2p", "container": "todo-backend", "resource": "cpu m",
                     "usage": 3.2, "request": 100.0, "limit": 500.0},
                    {"pod": "todo-backend-6d9f8b7c5-x7k2p", "container": "todo-backend", "resource": "memory MiB",
                     "usage": 92.4, "request": 128.0, "limit": 256.0},
                    {"pod": "todo-frontend-5c4b9d8f7-q2w3e", "container": "todo-frontend", "resource": "cpu m",
                     "usage": 1.1, "request": 50.0, "limit": 250.0},
                    {"pod": "todo-frontend-5c4b9d8f7-q2w3e", "container": "todo-frontend", "resource": "memory MiB",
                     "usage": 61.0, "request": 96.0, "limit": 192.0}]
            for row in rows:
                figures.add("resource usage", **row)
            figures.add_html("resource usage against requests and limits", report_charts.usage_bars(rows))

        def test_page_renders_in_a_browser(request):
            report.attach_png(request, "the deployed frontend (headless Chromium)", "{png}")

        def test_zero_downtime_upgrade(figures):
            time.sleep(0.6)
            figures.add("zero downtime", releases="todo-backend, todo-frontend", requests=1063, failed=0,
                        seconds=79.6, rollouts=4)
        ''',
    "test_06_cleanup.py": '''
        def test_releases_uninstalled():
            pass
        ''',
}


def write_layout(root: Path, fail: bool) -> None:
    (root / "stages").mkdir(parents=True)
    (root / "reports").mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "conftest.py").write_text('pytest_plugins = ["shipcheck.plugin"]\n')
    png = base64.b64encode(tiny_png()).decode()
    for name, body in STAGES.items():
        order = int(name.split("_")[1])
        text = textwrap.dedent(body).replace("{fail}", str(fail)).replace("{png}", png)
        (root / "stages" / name).write_text(f"import time\n\nimport pytest\n\npytestmark = pytest.mark.order({order})\n"
                                            + text)


class Inner:
    """A finished fake pipeline run: its HTML, summary.json and terminal output."""

    def __init__(self, root: Path, result: commands.CommandResult):
        self.root, self.result = root, result
        self.html = (root / "reports" / "report.html").read_text()
        self.summary = json.loads((root / "reports" / "summary.json").read_text())

    def top(self) -> str:
        """Our block at the top of the report (pytest-html's summary prefix)."""
        return self.html.split("<div class='sc'>", 1)[1].split("<p class=\"run-count\">", 1)[0]


def run_fake_pipeline(root: Path, fail: bool) -> Inner:
    write_layout(root, fail)
    result = commands.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={root}",
                           "-c", str(root / "pytest.ini"), "-o", "addopts=", f"--shipcheck-config={UNIT_CONFIG}",
                           "--html=reports/report.html", "--self-contained-html", "--junitxml=reports/junit.xml",
                           "stages"], cwd=root, check=False, timeout_s=300, env={"PYTHONPATH": str(REPO)})
    assert result.rc == (1 if fail else 0), result.tail(40, both=True)
    return Inner(root, result)


@pytest.fixture(scope="module")
def green(tmp_path_factory) -> Inner:
    return run_fake_pipeline(tmp_path_factory.mktemp("green"), fail=False)


@pytest.fixture(scope="module")
def failed(tmp_path_factory) -> Inner:
    return run_fake_pipeline(tmp_path_factory.mktemp("failed"), fail=True)


def screenshot(html: Path, out: Path, width: int = 1280, height: int = 800) -> bytes:
    """The top `width`x`height` of the page as Chromium shows it (a laptop screen), offline."""
    try:
        exe = browser.chromium()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    flags = [f for f in browser.FLAGS if not f.startswith("--window-size")]
    commands.run([exe, *flags, f"--window-size={width},{height}", f"--user-data-dir={out.parent / 'chromium-profile'}",
                  f"--screenshot={out}", html.as_uri()], timeout_s=180, what="screenshot of the report")
    return out.read_bytes()


def photograph(request, inner: Inner, name: str) -> bytes:
    """Screenshot of the report's top, to reports/<name>.png and onto this test's entry."""
    png = screenshot(inner.root / "reports" / "report.html", inner.root / f"{name}.png")
    (REPO / "reports").mkdir(exist_ok=True)
    (REPO / "reports" / f"{name}.png").write_bytes(png)
    report.attach_png(request, f"{name} (headless Chromium, 1280x800)", base64.b64encode(png).decode())
    return png


# --- the green run ----------------------------------------------------------------------------------
def test_green_summary_has_the_stage_row_and_no_failure(green):
    stages = {s["stage"]: s for s in green.summary["stages"]}
    assert [stages[n]["status"] for n in range(1, 7)] == ["passed"] * 5 + ["skipped"], stages
    assert stages[1]["passed"] == 4 and stages[1]["failed"] == 0
    assert green.summary["first_failure"] is None and green.summary["failed_stages"] == {}
    assert {"image sizes", "quota fit", "deploys", "zero downtime"} <= set(green.summary["sections"])


def test_green_top_shows_verdict_stages_and_headline_pictures(green):
    top = green.top()
    assert '<title id="head-title">shipcheck: shipcheck-unit v0.0.1-test</title>' in green.html
    assert "sc-verdict passed" in top and "5 stages passed" in top
    assert top.count("class='sc-stage passed'") == 5
    for title in ("Image sizes against budgets", "Quota peak per phase", "Deploy to Ready", "Zero downtime",
                  "Stage timeline", "resource usage against requests and limits"):
        assert title in top, title
    assert top.count("<svg") >= 5
    assert "1063 requests, 0 failed" in top
    assert "sc-fail" not in top  # no failure box


def test_detail_tables_are_collapsed_and_show_booleans_as_marks(green):
    below = green.html.split("Figures (click to open)", 1)[1].split("results-table", 1)[0]
    assert "<details open" not in below and below.count("<details>") >= 6
    tables = "".join(re.findall(r"<table>.*?</table>", below))
    assert ">True<" not in tables and ">False<" not in tables
    assert "✓" in tables


def test_the_report_fetches_nothing_from_the_network(green):
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", green.html.split('id="data-container"')[0]
                         .replace("https://pypi.python.org/pypi/pytest-html", ""))


def test_the_screenshot_is_on_its_own_test_not_at_the_bottom(green):
    blob = html.unescape(re.search(r'data-jsonblob="([^"]*)"', green.html).group(1))
    tests = json.loads(blob)["tests"]
    entry = tests["stages/test_05_health.py::test_page_renders_in_a_browser"][0]
    assert [e["name"] for e in entry["extras"]] == ["the deployed frontend (headless Chromium)"]
    assert "the deployed frontend" not in green.html.split('id="data-container"')[0]
    assert (green.root / "reports" / "the-deployed-frontend-headless-chromium.png").read_bytes() == tiny_png()


def test_the_seed_comparison_is_a_section_not_a_test(green):
    seed = green.summary["sections"][report.SEED_SECTION]
    assert [row["phase"] for row in seed] == ["at rest", "todo-backend pre-upgrade hook", "todo-backend rolling update",
                                             "todo-frontend rolling update"], seed
    assert [row["fits"] for row in seed] == [True, True, False, False]
    assert seed[2]["overflow"].startswith("todo-backend rolling update: limits.cpu 3.25 > quota 3")
    assert "The seed's own numbers overflow in 2 phase(s)" in green.top()
    assert not any("seed" in s["name"] for s in green.summary["stages"])


def test_green_report_top_in_chromium(request, green):
    png = photograph(request, green, "report-top-green")
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a rendered page, not a blank one


# --- the seeded failing run ---------------------------------------------------------------------------
def test_failed_summary_names_the_first_failure_and_its_fix(failed):
    first = failed.summary["first_failure"]
    assert first["test"] == FAILING_TEST and first["stage"] == 4 and first["when"] == "call"
    assert first["message"].startswith("release todo-backend: container todo-backend: CrashLoopBackOff")
    assert first["fix"] == ("Read the container log below; fix the crash or its configuration "
                            "(the Secret key database-url).")
    assert failed.summary["failed_stages"] == {"4": FAILING_TEST}
    statuses = [s["status"] for s in failed.summary["stages"]]
    assert statuses == ["passed", "passed", "passed", "failed", "skipped", "skipped"], statuses


def test_failed_top_shows_the_failure_before_the_figures(failed):
    top = failed.top()
    assert "sc-verdict failed" in top and "Stage 4 (deploy) failed — later stages skipped" in top
    box = top.index("class='sc-fail'")
    assert box < top.index("Image sizes against budgets")
    assert FAILING_TEST in top and "<b>Fix:</b> Read the container log below" in top
    assert "FAILED, seen after 10.6 s" in top


def test_failed_report_top_in_chromium(request, failed):
    png = photograph(request, failed, "report-top-failed")
    assert png.startswith(b"\x89PNG") and len(png) > 20_000

