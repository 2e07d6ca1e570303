"""The declared checks (`checks:` in shipcheck.yaml): ordered steps that prove the app works,
each an HTTP request or a browser page, with expectations, and values captured from one
answer for later steps (a created id).

A stage runs the steps meant for it against a base URL per component (`base_url_for`):
stage 2 the container's published port, stage 5 a way through the cluster. Steps run in
order and stop at the first failure (later steps depend on earlier ones); the rest are
reported as not run. Nothing declared is ever skipped: a component that cannot be reached
fails its step, naming what is missing.

Templates: `{user}` and `{run}` (random per run) and the names captured so far fill
paths, headers, JSON bodies (recursively), expectations, page paths, texts and selectors.
A string that is exactly one `{name}` takes the value with its JSON type (a captured
number stays a number); `{{` and `}}` are literal braces.

JSON paths are a small subset: `$`, `.key`, `["key"]`, `[0]`, `[-1]`, `[*]` (any element):
`$.a.b[0].c`, `$[0].id`, `$.items[*].title`.

Pure helpers (templates, paths, expectations, messages) are unit-tested without a server.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from . import browser, commands, progress, web

BUILTINS = ("user", "run")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
GATEWAY_STATUSES = {502, 503, 504}  # a proxy in front answered: what it forwards to did not
REQUEST_KEYS = {"method", "path", "headers", "json", "follow_redirects"}
EXPECT_KEYS = {"status", "json", "json_exists", "body_contains"}
BROWSER_KEYS = {"path", "expect_text", "expect_selector"}
STAGES = (2, 5)
EXCERPT_CHARS = 300
# Captured values under such names are registered as secrets (a login's token must not
# appear in a later failure message or the report).
SECRET_NAME = re.compile(r"token|secret|password|passwd|key|auth|cookie|session|credential", re.IGNORECASE)


class CheckLike(Protocol):
    """What config.Check provides (the config module owns the class)."""
    name: str
    component: str
    stages: tuple[int, ...]
    request: dict | None
    expect: dict
    capture: dict[str, str]
    browser: dict | None


# --- templates -----------------------------------------------------------------------------
class TemplateError(ValueError):
    pass


_TEMPLATE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def new_variables() -> dict[str, Any]:
    """The built-in variables, random per run: names no earlier run used, so a rerun never
    meets its predecessor's data."""
    return {"user": f"shipcheck-{secrets.token_hex(3)}", "run": secrets.token_hex(4)}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def fill(text: str, variables: dict[str, Any]) -> str:
    """`text` with each `{name}` replaced by the variable's value (as JSON text when not a string)."""
    def replace(match: re.Match) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        name = match.group(1)
        if name not in variables:
            raise TemplateError(f"{{{name}}} is not defined (defined: {', '.join(sorted(variables)) or 'nothing'}); "
                                "a name must be built in (user, run) or captured by an earlier step")
        return _as_text(variables[name])
    return _TEMPLATE.sub(replace, text)


def fill_value(value: Any, variables: dict[str, Any]) -> Any:
    """`fill` through dicts (keys and values) and lists; a string that is exactly `{name}`
    becomes the variable's value itself, keeping its JSON type."""
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value)
        if whole and whole.group(1):
            fill(value, variables)  # raises for an unknown name
            return variables[whole.group(1)]
        return fill(value, variables)
    if isinstance(value, dict):
        return {fill(str(k), variables): fill_value(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_value(v, variables) for v in value]
    if isinstance(value, (datetime.date, datetime.time)):  # YAML reads `due: 2025-01-31` as a date: JSON has text
        return value.isoformat()
    return value


def names_used(value: Any) -> set[str]:
    """The variable names a value's templates use (for validating the order of captures)."""
    if isinstance(value, str):
        return {m.group(1) for m in _TEMPLATE.finditer(value) if m.group(1)}
    if isinstance(value, dict):
        return set().union(*(names_used(str(k)) | names_used(v) for k, v in value.items())) if value else set()
    if isinstance(value, list):
        return set().union(*(names_used(v) for v in value)) if value else set()
    return set()


# --- JSON paths ----------------------------------------------------------------------------
class JsonPathError(ValueError):
    pass


_STEP = re.compile(r"""\.(?P<key>[A-Za-z_][-A-Za-z0-9_]*)|\[(?:(?P<index>-?\d+)|(?P<any>\*)|"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')\]""")
ANY = object()  # the `[*]` step


def parse_path(path: str) -> list[str | int | object]:
    """`$.a.b[0].c` -> ["a", "b", 0, "c"]; `[*]` is ANY. Raises JsonPathError for anything else."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise JsonPathError(f"JSON path {path!r} must start with $ (e.g. $.id, $[0].id, $.items[*].title)")
    steps: list[str | int | object] = []
    pos = 1
    while pos < len(path):
        match = _STEP.match(path, pos)
        if not match:
            raise JsonPathError(f"JSON path {path!r}: cannot read {path[pos:]!r}; supported: .key, [\"key\"], [0], [-1], [*]")
        if match.group("key") is not None:
            steps.append(match.group("key"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        elif match.group("any"):
            steps.append(ANY)
        else:
            steps.append(match.group("dq") if match.group("dq") is not None else match.group("sq"))
        pos = match.end()
    return steps


def find(document: Any, path: str) -> list[Any]:
    """Every value `path` reaches in `document` (several through `[*]`; none when missing)."""
    current = [document]
    for step in parse_path(path):
        following = []
        for node in current:
            if step is ANY:
                following.extend(node if isinstance(node, list) else node.values() if isinstance(node, dict) else [])
            elif isinstance(step, int):
                if isinstance(node, list) and -len(node) <= step < len(node):
                    following.append(node[step])
            elif isinstance(node, dict) and step in node:
                following.append(node[step])
        current = following
    return current


def same(actual: Any, expected: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(same(actual[k], expected[k]) for k in actual)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(same(a, e) for a, e in zip(actual, expected))
    return actual == expected


# --- expectations --------------------------------------------------------------------------
def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def status_ok(status: int | None, expected: Any) -> bool:
    """The expected status (a number or a list of them); any 2xx when none is given."""
    if status is None:
        return False
    if expected is None:
        return 200 <= status < 300
    return status in _as_list(expected)


def expected_status_text(expected: Any) -> str:
    return "2xx" if expected is None else " or ".join(str(s) for s in _as_list(expected))


def _shown(values: list[Any]) -> str:
    text = ", ".join(json.dumps(v)[:80] for v in values[:5]) + (f", ... ({len(values)} in all)" if len(values) > 5 else "")
    return text if len(values) == 1 else f"[{text}]"


def expectation_problems(expect: dict, status: int | None, body: str) -> list[str]:
    """What the answer (status, body text) lacks of `expect` (already filled); empty: as expected."""
    if not status_ok(status, expect.get("status")):  # the body of a wrong status is not the answer the rest expects
        return [f"status {status}, expected {expected_status_text(expect.get('status'))}"]
    problems = []
    for needle in _as_list(expect.get("body_contains", [])):
        if str(needle) not in body:
            problems.append(f"the body does not contain {str(needle)!r}")
    paths = dict(expect.get("json") or {})
    exists = _as_list(expect.get("json_exists", []))
    if paths or exists:
        try:
            document = json.loads(body)
        except ValueError:
            return problems + [f"the body is not JSON, so {', '.join([*paths, *exists])} cannot be read"]
        for path, expected in paths.items():
            found = find(document, path)
            if not found:
                problems.append(f"{path} is missing, expected {json.dumps(expected, default=str)}")
            elif not any(same(v, expected) for v in found):
                problems.append(f"{path} is {_shown(found)}, expected {json.dumps(expected, default=str)}")
        problems.extend(f"{path} is missing" for path in exists if not find(document, path))
    return problems


def capture(spec: dict[str, str], body: str) -> tuple[dict[str, Any], list[str]]:
    """(the values `spec` (name -> JSON path) takes from the body, the problems); a path
    reaching several values (through `[*]`) captures the first."""
    if not spec:
        return {}, []
    try:
        document = json.loads(body)
    except ValueError:
        return {}, [f"the body is not JSON, so {', '.join(spec)} cannot be captured"]
    values, problems = {}, []
    for name, path in spec.items():
        found = find(document, path)
        if found:
            values[name] = found[0]
        else:
            problems.append(f"cannot capture {name}: {path} is missing")
    return values, problems


def url_path(path: str) -> str:
    """`path` with what a URL cannot hold (spaces, non-ASCII, control characters) percent-
    encoded; reserved characters and existing %XX escapes are kept as written."""
    return urllib.parse.quote(path, safe="/:?#[]@!$&'()*+,;=%~")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line, scrubbed excerpt (scrubbed whole first: a cut must not split a secret)."""
    flat = " ".join(commands.scrub(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


# --- results -------------------------------------------------------------------------------
@dataclass
class StepResult:
    check: str  # the check's name
    component: str
    stage: int
    kind: str  # "request" | "browser"
    ok: bool
    ran: bool = True
    request: str = ""  # "POST /api/shipcheck-1a2b3c/tasks", variables filled, scrubbed
    status: int | None = None
    body: str = ""  # a short scrubbed excerpt of the answer (for a page: its visible text)
    problem: str = ""  # what was requested, what answered, what was expected, the fix
    duration_s: float = 0.0
    attempts: int = 0
    captured: dict[str, str] = field(default_factory=dict)  # name -> value as text (scrubbed)
    screenshot_png: str | None = None  # browser steps: base64 PNG for the report

    def __str__(self) -> str:
        if not self.ran:
            return f"- {self.check}: not run ({self.problem})"
        answered = f" -> {self.status}" if self.status is not None else ""
        head = f"{'ok' if self.ok else 'FAILED'} {self.check}: {self.request}{answered} ({self.duration_s:.2f} s)"
        return head if self.ok else f"{head}: {self.problem}"


def first_failure(results: Iterable[StepResult]) -> StepResult | None:
    return next((r for r in results if r.ran and not r.ok), None)


def failure_message(results: list[StepResult]) -> str:
    """For a stage's assertion: the failed step's sentence, then every step's line."""
    failed = first_failure(results)
    head = f"check {failed.check!r} failed: {failed.problem}" if failed else "every check passed"
    return head + "\nsteps:\n" + "\n".join(f"  {r}" for r in results)


# --- running -------------------------------------------------------------------------------
class Unreachable(Exception):
    """Raised by a `base_url_for` that cannot give a URL for a component; its message names
    what is missing ("todo-frontend is not running in stage 2: its container exited (code 1)")."""


def _where(stage: int) -> str:
    """Where a component's backend URL is configured in this stage."""
    return "its run_env in shipcheck.yaml" if stage == 2 else "its chart's values"


@dataclass
class Session:
    """Runs steps against `base_url_for(component) -> "http://127.0.0.1:PORT[/prefix]"`,
    keeping the variables (built-ins and captures) between steps."""
    base_url_for: Callable[[str], str]
    variables: dict[str, Any] = field(default_factory=new_variables)
    # A check proves function, not speed: a loaded 2-core machine answered in 1-3 s (and
    # Chromium rendered in 26-90 s) while other builds ran, so the limits are generous.
    timeout_s: float = 30.0
    attempts: int = 3  # transient failures only: nothing answered yet, or a gateway error of a GET
    backoff_s: float = 0.5
    browser_timeout_s: float = 180.0  # one Chromium run
    renders: int = 2  # a page whose data arrives late is rendered once more

    def run_step(self, check: CheckLike, stage: int) -> StepResult:
        kind = "browser" if check.browser else "request"
        result = StepResult(check.name, check.component, stage, kind, ok=False)
        start = time.monotonic()
        try:
            try:
                base = self.base_url_for(check.component).rstrip("/")
            except Exception as exc:  # Unreachable, or any other reason: a failure, never a skip
                reason = str(exc) if isinstance(exc, Unreachable) else f"{type(exc).__name__}: {exc}"
                result.problem = commands.scrub(
                    f"{check.component} cannot be reached in stage {stage}: {reason}. Fix: the check names component "
                    f"{check.component}; make it run (its log and state are attached), or name another component")
                return result
            if check.browser:
                self._browser(check, stage, base, result)
            else:
                self._request(check, stage, base, result)
        except TemplateError as exc:
            result.problem = commands.scrub(f"{exc}. Fix: capture it in an earlier step (capture: {{name: $.path}}) or "
                                            "correct the name in the check")
        finally:
            result.duration_s = time.monotonic() - start
        return result

    # --- an HTTP request
    def _send(self, method: str, url: str, headers: dict, body: Any, follow: bool, expected_status: Any) -> tuple[web.Response, int]:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            response = web.request(method, url, headers=headers, json_body=body, timeout_s=self.timeout_s,
                                   follow_redirects=follow)
            refused = not response.answered and "refused" in response.error.lower()  # never received: safe to resend
            gateway = response.status in GATEWAY_STATUSES and not status_ok(response.status, expected_status)
            transient = refused or (method in IDEMPOTENT and (not response.answered or gateway))
            if not transient or attempt == self.attempts:
                return response, attempt
            progress.say(f"{method} {urllib.parse.urlsplit(url).path}: {response.status or response.error}; "
                         f"retrying in {delay:g} s (attempt {attempt + 1} of {self.attempts})")
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _request(self, check: CheckLike, stage: int, base: str, result: StepResult) -> None:
        spec = check.request or {}
        method = str(spec.get("method", "GET")).upper()
        path = url_path(fill(spec.get("path", "/"), self.variables))
        headers = {str(k): str(v) for k, v in fill_value(spec.get("headers") or {}, self.variables).items()}
        body = fill_value(spec["json"], self.variables) if "json" in spec else None
        expect = fill_value(dict(check.expect or {}), self.variables)
        result.request = commands.scrub(f"{method} {path}")
        response, result.attempts = self._send(method, base + path, headers, body,
                                               bool(spec.get("follow_redirects", True)), expect.get("status"))
        result.status = response.status
        result.body = excerpt(response.body)
        tried = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        if not response.answered:
            result.problem = commands.scrub(
                f"{result.request}: nothing answered at {base}{path} ({response.error}){tried}; expected status "
                f"{expected_status_text(expect.get('status'))}. Fix: {check.component} must be serving on its "
                f"port{' behind its Service' if stage == 5 else ''}; see its log (attached)")
            return
        problems = expectation_problems(expect, response.status, response.body)
        captured, capture_problems = ({}, []) if problems else capture(check.capture or {}, response.body)
        problems += capture_problems
        if not problems:
            for name, value in captured.items():
                if SECRET_NAME.search(name):
                    commands.redact(_as_text(value))
            self.variables.update(captured)
            result.captured = {name: excerpt(_as_text(v), 80) for name, v in captured.items()}
            result.ok = True
            return
        answered = f"{result.request} answered {response.status}{tried} ({result.body!r})"
        if response.status in GATEWAY_STATUSES and not status_ok(response.status, expect.get("status")):
            fix = (f"{check.component} answered with a gateway error: it could not reach the component it forwards to. "
                   f"Fix: check {check.component}'s configured backend URL ({_where(stage)}) and the health of the "
                   f"component it names; {check.component}'s log (attached) says where it tried to go")
        elif capture_problems and not expectation_problems(expect, response.status, response.body):
            fix = "Fix: the answer lacks what the check captures; correct the app, or the capture path in the check"
        else:
            fix = (f"Fix: see {check.component}'s log (attached) for why; or, if this answer is right, correct the "
                   "check's expect in shipcheck.yaml")
        result.problem = commands.scrub(f"{answered}: {'; '.join(problems)}. {fix}")

    # --- a page in a real browser
    def _browser(self, check: CheckLike, stage: int, base: str, result: StepResult) -> None:
        spec = check.browser or {}
        path = url_path(fill(spec.get("path", "/"), self.variables))
        text = fill(spec["expect_text"], self.variables) if spec.get("expect_text") is not None else None
        selector = fill(spec["expect_selector"], self.variables) if spec.get("expect_selector") is not None else None
        url = base + path
        result.request = commands.scrub(f"browser GET {path}")
        # The page itself first, by HTTP: a page that does not answer is named as such, not
        # as a missing text in Chromium's error page.
        response, result.attempts = self._send("GET", url, {}, None, True, None)
        result.status = response.status
        if not response.answered or not status_ok(response.status, None):
            result.body = excerpt(response.body)
            result.problem = commands.scrub(
                f"page {path} answered {response.status or response.error} ({result.body!r}); expected 2xx before "
                f"rendering it. Fix: {check.component} must serve {path}; see its log (attached)")
            return
        expected = " and ".join(filter(None, [text and f"the text {text!r}", selector and f"an element {selector!r}"]))
        problems: list[str] = []
        for render in range(1, self.renders + 1):
            try:
                dom, result.screenshot_png = browser.render(url, timeout_s=self.browser_timeout_s)
            except FileNotFoundError as exc:
                result.problem = commands.scrub(f"Chromium could not render {path}: {exc}")
                return
            except commands.CommandError as exc:
                result.problem = commands.scrub(
                    f"Chromium could not render {path}: {exc}. Fix: a timeout means the page never finished loading "
                    f"(a request that hangs? see {check.component}'s log, attached); otherwise Chromium's output above "
                    "names the error")
                return
            problems = browser.dom_problems(dom, text, selector)
            result.body = excerpt(browser.Document.parse(dom).text)
            if not problems:
                break
            if render < self.renders:  # a page whose data arrives late gets one more chance
                progress.say(f"browser {path}: {'; '.join(problems)}; rendering again ({render + 1} of {self.renders})")
        if problems:
            result.problem = commands.scrub(
                f"page {path} rendered by Chromium ({self.renders} render(s)) has {'; '.join(problems)}; expected "
                f"{expected or 'the page'}. Visible text: {result.body!r}. Fix: the page must show it after its "
                f"scripts ran (does it fetch its data through {check.component}?); see the screenshot in the report")
            return
        result.ok = True


def selected(checks: Iterable[CheckLike], stage: int) -> list[CheckLike]:
    return [c for c in checks if stage in c.stages]


def run(checks: Iterable[CheckLike], stage: int, base_url_for: Callable[[str], str],
        variables: dict[str, Any] | None = None, **session_options: Any) -> list[StepResult]:
    """Run the checks meant for `stage` in order; stop at the first failure, and report the
    remaining steps as not run, naming it."""
    session = Session(base_url_for, variables if variables is not None else new_variables(), **session_options)
    results: list[StepResult] = []
    steps = selected(checks, stage)
    for i, check in enumerate(steps):
        result = session.run_step(check, stage)
        results.append(result)
        progress.say(f"stage {stage} check {i + 1}/{len(steps)}: {result}")
        if not result.ok:
            results.extend(StepResult(c.name, c.component, stage, "browser" if c.browser else "request", ok=False,
                                      ran=False, problem=f"check {check.name!r} failed before it")
                           for c in steps[i + 1:])
            break
    return results


# --- validation of the configuration (before any side effect) ------------------------------------
def problems(checks: Iterable[CheckLike], components: Iterable[str] | dict[str, Any]) -> list[str]:
    """What is wrong with the declared checks, each message starting with its dotted field
    (`checks[1].request.path: ...`): for config.load to refuse before anything runs. Covers
    what a schema cannot: JSON paths, selectors, and names used before any step captures them.
    `components`: their names, or config's name -> Component (then a database is refused:
    checks speak HTTP)."""
    known = set(components)
    roles = {name: getattr(c, "role", "app") for name, c in components.items()} if isinstance(components, dict) else {}
    found = []
    checks = list(checks)
    for i, check in enumerate(checks):
        where = f"checks[{i}]"
        if check.component not in known:
            found.append(f"{where}.component: {check.component!r} is not a component ({', '.join(sorted(known))})")
        elif roles.get(check.component, "app") == "database":
            found.append(f"{where}.component: {check.component} is a database; checks speak HTTP to an app component")
        if not check.stages or any(s not in STAGES for s in check.stages):
            found.append(f"{where}.stages: {list(check.stages)}; checks run in stages {' and '.join(map(str, STAGES))}")
        if bool(check.request) == bool(check.browser):
            found.append(f"{where}: give exactly one of request and browser")
            continue
        if check.request:
            found += _request_problems(f"{where}.request", check.request)
            found += _expect_problems(f"{where}.expect", check.expect or {})
        else:
            found += _browser_problems(f"{where}.browser", check.browser)
            if check.expect:
                found.append(f"{where}.expect: a browser step's expectations are browser.expect_text and expect_selector")
            if check.capture:
                found.append(f"{where}.capture: a browser step captures nothing")
        for name, path in (check.capture or {}).items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in BUILTINS:
                found.append(f"{where}.capture.{name}: a capture name is a letter then letters, digits or _, and not "
                             f"{' or '.join(BUILTINS)} (built in)")
            found += _path_problem(f"{where}.capture.{name}", path)
    return found + _order_problems(checks)


def _path_problem(where: str, path: Any) -> list[str]:
    try:
        parse_path(path)
    except JsonPathError as exc:
        return [f"{where}: {exc}"]
    return []


def _request_problems(where: str, spec: dict) -> list[str]:
    found = [f"{where}.{k}: unknown key (known: {', '.join(sorted(REQUEST_KEYS))})" for k in spec if k not in REQUEST_KEYS]
    if str(spec.get("method", "GET")).upper() not in METHODS:
        found.append(f"{where}.method: {spec.get('method')!r} is not one of {', '.join(METHODS)}")
    if not isinstance(spec.get("path"), str) or not spec["path"].startswith("/"):
        found.append(f"{where}.path: {spec.get('path')!r} must be a path starting with / (the component's base URL "
                     "is the suite's)")
    if "json" in spec and str(spec.get("method", "GET")).upper() in ("GET", "HEAD"):
        found.append(f"{where}.json: a {str(spec.get('method', 'GET')).upper()} request carries no body")
    return found


def _expect_problems(where: str, expect: dict) -> list[str]:
    found = [f"{where}.{k}: unknown key (known: {', '.join(sorted(EXPECT_KEYS))})" for k in expect if k not in EXPECT_KEYS]
    for status in _as_list(expect.get("status", [])):
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            found.append(f"{where}.status: {status!r} is not an HTTP status (100-599)")
    for path in (expect.get("json") or {}):
        found += _path_problem(f"{where}.json.{path}", path)
    for path in _as_list(expect.get("json_exists", [])):
        found += _path_problem(f"{where}.json_exists", path)
    return found


def _browser_problems(where: str, spec: dict) -> list[str]:
    found = [f"{where}.{k}: unknown key (known: {', '.join(sorted(BROWSER_KEYS))})" for k in spec if k not in BROWSER_KEYS]
    if not isinstance(spec.get("path"), str) or not spec["path"].startswith("/"):
        found.append(f"{where}.path: {spec.get('path')!r} must be a path starting with /")
    if spec.get("expect_text") is None and spec.get("expect_selector") is None:
        found.append(f"{where}: give expect_text or expect_selector (what proves the page works)")
    if spec.get("expect_selector") is not None:
        try:
            browser.parse_selector(spec["expect_selector"])
        except browser.SelectorError as exc:
            found.append(f"{where}.expect_selector: {exc}")
    return found


def _order_problems(checks: list[CheckLike]) -> list[str]:
    """A name used by a step must be captured by an earlier step that runs in each of its stages."""
    found = []
    for stage in STAGES:
        defined = set(BUILTINS)
        for i, check in enumerate(checks):
            if stage not in check.stages:
                continue
            used = names_used([check.request, check.expect, check.browser])
            for name in sorted(used - defined):
                found.append(f"checks[{i}]: {{{name}}} is used in stage {stage} before any step of that stage captures it "
                             f"(defined there: {', '.join(sorted(defined))})")
            defined |= set(check.capture or {})
    return list(dict.fromkeys(found))
