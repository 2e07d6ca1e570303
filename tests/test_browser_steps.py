"""Browser steps: simple selectors and visible text on HTML strings (browser.py), and one
real Chromium run against a local page whose script adds the text after load."""

import dataclasses
from pathlib import Path

import pytest
from local_http import QuietHandler, serving

from shipcheck import browser, checks, commands
from shipcheck.browser import SelectorError

PAGE = """<!DOCTYPE html><html><head><title>Tasks</title>
<script>window.__DATA__ = {"title": "hidden in a script"}</script><style>.x{}</style></head>
<body><main id="app" class="page wide">
  <h1 data-role=title>My <em>tasks</em></h1>
  <ul data-testid="task-list" class="tasks">
    <li class="task done" data-id="7">buy&nbsp;milk &amp; bread</li>
    <li class="task" data-id="8">water <b>the</b> plants</li>
  </ul>
  <img src="x.png" alt=""><br><input type="checkbox" checked>
  <svg><path d="M0"/></svg>
  <p>after the void elements</p>
</main><template><li>not shown</li></template></body></html>"""


@pytest.mark.parametrize("selector, tags", [
    ("li", ["li", "li"]),
    ("LI", ["li", "li"]),
    ("#app", ["main"]),
    (".task", ["li", "li"]),
    (".task.done", ["li"]),
    ("[data-testid]", ["ul"]),
    ('[data-testid="task-list"]', ["ul"]),
    ("[data-testid='task-list']", ["ul"]),
    ("[data-role=title]", ["h1"]),
    ('ul[data-testid="task-list"]', ["ul"]),
    ('li[data-id="8"]', ["li"]),
    ("main.page#app", ["main"]),
    ("input[checked]", ["input"]),
    ('[data-testid="task-list"] li', ["li", "li"]),
    ("main li.done", ["li"]),
    ("h1, p", ["h1", "p"]),
    ("*[alt]", ["img"]),
    ("main p", ["p"]),  # the void elements before it did not swallow it
])
def test_selectors_that_match(selector, tags):
    assert [e.tag for e in browser.select(PAGE, selector)] == tags


@pytest.mark.parametrize("selector", [
    "table", "#App", ".tasks.done", '[data-testid="task"]', "[data-missing]", 'li[data-id="9"]',
    "ul main", "template li", "li.task.done[data-id='8']",
])
def test_selectors_that_do_not(selector):
    assert browser.select(PAGE, selector) == []


@pytest.mark.parametrize("selector", ["ul > li", "li + li", "li ~ li", "li:first-child", "a::before", "", "  ", "[x",
                                      "li,", "a[href^='x']", ".", "#"])
def test_unsupported_selectors_say_what_is_supported(selector):
    with pytest.raises(SelectorError, match="supported: tag, #id, .class"):
        browser.parse_selector(selector)


def test_visible_text_leaves_out_scripts_styles_and_templates_and_collapses_space():
    document = browser.Document.parse(PAGE)
    assert document.contains_text("buy milk & bread") and document.contains_text("water the   plants")
    assert document.contains_text("My tasks")
    assert not document.contains_text("hidden in a script") and not document.contains_text("not shown")
    assert not document.contains_text("Tasks")  # the <title> is not on the page


def test_dom_problems():
    assert browser.dom_problems(PAGE, "buy milk", '[data-testid="task-list"]') == []
    assert browser.dom_problems(PAGE, "buy bread", "ol") == ["no visible text 'buy bread'", "no element matching 'ol'"]
    assert browser.dom_problems(PAGE) == []


def test_an_unclosed_element_does_not_break_the_tree():
    html = "<div class=a><p>one<p>two</div><span class=b>three</span>"
    assert [e.tag for e in browser.select(html, "div span")] == []
    assert [e.tag for e in browser.select(html, ".b")] == ["span"]


# --- a real browser -----------------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (setup/setup.sh installs it)")

SCRIPTED = b"""<!DOCTYPE html><html><body><ul data-testid="task-list"></ul>
<script>
  // as a frontend does: the data arrives after load, from the app's own API
  fetch('/api/tasks').then(r => r.json()).then(tasks => {
    const list = document.querySelector('[data-testid="task-list"]');
    for (const t of tasks) { const li = document.createElement('li'); li.className = 'task'; li.textContent = t.title; list.append(li); }
  });
</script></body></html>"""


class _PageHandler(QuietHandler):
    title = "buy milk r123"

    def do_GET(self):
        if self.path == "/":
            self._send(200, SCRIPTED, "text/html")
        elif self.path == "/api/tasks":
            self._send(200, f'[{{"id": 1, "title": "{_PageHandler.title}"}}]'.encode(), "application/json")
        else:
            self._send(404, b"not found", "text/plain")


@pytest.fixture(scope="module")
def page_url():
    with serving(_PageHandler) as url:
        yield url


@dataclasses.dataclass(frozen=True)
class _Check:  # the fields of config.Check a browser step uses
    name: str
    browser: dict
    component: str = "todo-frontend"
    stages: tuple = (5,)
    request: None = None
    expect: dict = dataclasses.field(default_factory=dict)
    capture: dict = dataclasses.field(default_factory=dict)


@needs_chromium
def test_a_browser_step_against_a_scripted_page_in_real_chromium(page_url):
    session = checks.Session(lambda component: page_url, {"user": "u", "run": "r123"}, backoff_s=0, renders=1)
    ok = session.run_step(_Check("the page lists it", {"path": "/", "expect_text": "buy milk {run}",
                                                       "expect_selector": '[data-testid="task-list"] li.task'}), 5)
    assert ok.ok, ok.problem
    assert ok.request == "browser GET /" and ok.status == 200 and "buy milk r123" in ok.body
    assert ok.screenshot_png and ok.screenshot_png.startswith("iVBORw0KGgo")  # base64 of the PNG signature

    failed = session.run_step(_Check("the page lists another", {"path": "/", "expect_text": "buy bread {run}"}), 5)
    assert not failed.ok and failed.screenshot_png  # the evidence is kept for the report on failure too
    assert failed.problem.startswith("page / rendered by Chromium (1 render(s)) has no visible text 'buy bread r123'; "
                                     "expected the text 'buy bread r123'. Visible text: 'buy milk r123'. Fix:")

    missing = session.run_step(_Check("a page that is not there", {"path": "/nope", "expect_text": "x"}), 5)
    assert not missing.ok and missing.status == 404 and missing.screenshot_png is None
    assert missing.problem.startswith("page /nope answered 404 ('not found'); expected 2xx before rendering it.")


def test_a_browser_step_without_chromium_fails_naming_the_fix(page_url, monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    session = checks.Session(lambda component: page_url, {"user": "u", "run": "r"}, backoff_s=0)
    result = session.run_step(_Check("page", {"path": "/", "expect_text": "x"}), 5)
    assert not result.ok and result.ran
    assert "Chromium could not render /: no Chromium: install Debian's `chromium` package" in result.problem


@pytest.mark.parametrize("writes_both", [True, False], ids=["one-run", "older-chromium"])
def test_browser_commands_go_through_the_one_runner(monkeypatch, writes_both):
    seen = []

    def fake_run(argv, **kwargs):
        seen.append(argv)
        shot = next((a.split("=", 1)[1] for a in argv if a.startswith("--screenshot=")), None)
        if shot and (writes_both or "--dump-dom" not in argv):
            Path(shot).write_bytes(b"\x89PNG fake")
        return commands.CommandResult(argv, 0, "<html><body>hi</body></html>", "", 0.1)

    monkeypatch.setattr(browser, "chromium", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(browser.commands, "run", fake_run)
    dom, png = browser.render("http://127.0.0.1:1/")
    assert dom == "<html><body>hi</body></html>" and png == "iVBORyBmYWtl"
    assert seen[0][-3] == "--dump-dom" and seen[0][-2].startswith("--screenshot=")
    assert len(seen) == (1 if writes_both else 2)  # an older Chromium writes the DOM only: once more for the shot
    assert all(a[-1] == "http://127.0.0.1:1/" and "--headless" in a for a in seen)


# --- the step's logic around the renders, with a stand-in for Chromium ------------------------------
def _fake_renders(monkeypatch, doms):
    calls = []

    def render(url, timeout_s):
        calls.append(url)
        dom = doms[min(len(calls), len(doms)) - 1]
        if isinstance(dom, Exception):
            raise dom
        return dom, f"png{len(calls)}"
    monkeypatch.setattr(browser, "render", render)
    return calls


def test_a_page_whose_data_arrives_late_gets_one_more_render(page_url, monkeypatch):
    calls = _fake_renders(monkeypatch, ["<ul data-testid=task-list></ul>", "<ul data-testid=task-list><li>t r</li></ul>"])
    session = checks.Session(lambda component: page_url, {"user": "u", "run": "r"}, backoff_s=0)
    result = session.run_step(_Check("page", {"path": "/", "expect_text": "t {run}", "expect_selector": "ul li"}), 5)
    assert result.ok and calls == [page_url + "/"] * 2 and result.screenshot_png == "png2" and result.body == "t r"


def test_a_page_that_never_shows_it_fails_after_the_renders(page_url, monkeypatch):
    calls = _fake_renders(monkeypatch, ["<p>Could not load tasks: backend unreachable</p>"])
    session = checks.Session(lambda component: page_url, {"user": "u", "run": "r"}, backoff_s=0)
    result = session.run_step(_Check("page", {"path": "/", "expect_selector": '[data-testid="task-item"]'}), 5)
    assert not result.ok and len(calls) == 2 and result.screenshot_png == "png2"
    assert result.problem == (
        "page / rendered by Chromium (2 render(s)) has no element matching '[data-testid=\"task-item\"]'; expected an "
        "element '[data-testid=\"task-item\"]'. Visible text: 'Could not load tasks: backend unreachable'. Fix: the "
        "page must show it after its scripts ran (does it fetch its data through todo-frontend?); see the screenshot "
        "in the report")


def test_a_chromium_failure_fails_the_step_naming_it(page_url, monkeypatch):
    failure = commands.CommandError(commands.CommandResult(["chromium"], -9, "", "timed out after 180 s", 180), "rendering")
    _fake_renders(monkeypatch, [failure])
    session = checks.Session(lambda component: page_url, {"user": "u", "run": "r"}, backoff_s=0)
    result = session.run_step(_Check("page", {"path": "/", "expect_text": "x"}), 5)
    assert not result.ok and result.problem.startswith("Chromium could not render /: rendering: CommandResult(")
    assert "timed out after 180 s" in result.problem and "a timeout means the page never finished loading" in result.problem
