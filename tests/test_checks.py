"""Declared checks (checks.py): templates, JSON paths, expectations, captures, the runner
against a real local HTTP server, stop-at-first-failure, messages, and validation."""

import dataclasses
import datetime
import json
import re
import socket

import pytest
from local_http import QuietHandler, serving

from shipcheck import checks, commands
from shipcheck.checks import ANY, JsonPathError, TemplateError
from shipcheck.commands import MASK

try:  # the config module's class, once it lands; a compatible stand-in until then
    from shipcheck.config import Check
except ImportError:
    @dataclasses.dataclass(frozen=True)
    class Check:
        name: str
        component: str
        stages: tuple
        request: dict | None
        expect: dict
        capture: dict
        browser: dict | None


def step(name, *, component="web", stages=(2, 5), request=None, expect=None, capture=None, browser=None):
    return Check(name=name, component=component, stages=tuple(stages), request=request, expect=expect or {},
                 capture=capture or {}, browser=browser)


@pytest.fixture(autouse=True)
def fresh_secrets(monkeypatch):
    monkeypatch.setattr(commands, "_SECRETS", set())


# --- templates ---------------------------------------------------------------------------------
def test_fill_builtins_captures_and_escapes():
    variables = {"user": "u1", "run": "r1", "task_id": 42, "done": True}
    assert checks.fill("/api/{user}/tasks/{task_id}?r={run}&d={done}", variables) == "/api/u1/tasks/42?r=r1&d=true"
    assert checks.fill("literal {{user}} and { not a name } and {0}", variables) == "literal {user} and { not a name } and {0}"


def test_fill_names_an_unknown_variable_and_what_is_defined():
    with pytest.raises(TemplateError, match=r"\{task_idd\} is not defined \(defined: run, task_id, user\)"):
        checks.fill("/tasks/{task_idd}", {"user": "u", "run": "r", "task_id": 1})


def test_fill_value_goes_through_dicts_and_lists_and_keeps_a_whole_variable_typed():
    variables = {"user": "u1", "run": "r1", "task_id": 42, "tags": ["a", "b"]}
    body = {"title": "buy milk {run}", "id": "{task_id}", "ids": ["{task_id}", "x{task_id}"],
            "{user}_key": {"nested": "{tags}"}, "n": 3, "flag": False, "none": None}
    assert checks.fill_value(body, variables) == {
        "title": "buy milk r1", "id": 42, "ids": [42, "x42"], "u1_key": {"nested": ["a", "b"]}, "n": 3, "flag": False,
        "none": None}
    with pytest.raises(TemplateError):
        checks.fill_value({"a": ["{missing}"]}, variables)
    # YAML reads unquoted dates as dates; JSON (and the app) has them as ISO text
    assert checks.fill_value({"due": datetime.date(2025, 1, 31), "at": datetime.datetime(2025, 1, 31, 9, 30)}, {}) == {
        "due": "2025-01-31", "at": "2025-01-31T09:30:00"}


def test_new_variables_are_random_per_run():
    first, second = checks.new_variables(), checks.new_variables()
    assert set(first) == {"user", "run"} and first != second
    assert re.fullmatch(r"shipcheck-[0-9a-f]{6}", first["user"]) and re.fullmatch(r"[0-9a-f]{8}", first["run"])


def test_names_used():
    assert checks.names_used([{"path": "/a/{user}/{task_id}"}, {"json": {"$.x": "{run}"}}, None, 3]) == {
        "user", "task_id", "run"}
    assert checks.names_used("{{escaped}}") == set()


# --- JSON paths ----------------------------------------------------------------------------------
DOC = {"a": {"b": [{"c": 1}, {"c": 2}]}, "items": [{"title": "x"}, {"title": "y"}, {"other": 1}],
       "odd key": True, "n": None}


@pytest.mark.parametrize("path, found", [
    ("$", [DOC]),
    ("$.a.b[0].c", [1]),
    ("$.a.b[-1].c", [2]),
    ("$.items[*].title", ["x", "y"]),
    ('$["odd key"]', [True]),
    ("$['odd key']", [True]),
    ("$.n", [None]),  # present with null: it exists
    ("$.a.b[5].c", []),
    ("$.missing.deeper", []),
    ("$.a[0]", []),  # an index into an object reaches nothing
    ("$.items.title", []),  # a key of a list reaches nothing
])
def test_find(path, found):
    assert checks.find(DOC, path) == found


def test_find_in_a_top_level_list():
    assert checks.find([{"id": 7}, {"id": 8}], "$[0].id") == [7]
    assert checks.find([{"id": 7}, {"id": 8}], "$[*].id") == [7, 8]


def test_parse_path():
    assert checks.parse_path("$.a.b[0].c") == ["a", "b", 0, "c"]
    assert checks.parse_path("$.items[*].title") == ["items", ANY, "title"]


@pytest.mark.parametrize("bad", ["a.b", "", "$.", "$..a", "$[x]", "$.a b", "$[0", "$.a[?(@.x)]", None])
def test_bad_paths_are_refused_saying_what_is_supported(bad):
    with pytest.raises(JsonPathError, match=r"must start with \$|supported"):
        checks.parse_path(bad)


def test_same_is_json_equality():
    assert checks.same(1, 1.0) and checks.same({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not checks.same(True, 1) and not checks.same(0, False) and not checks.same([True], [1])
    assert not checks.same({"a": 1}, {"a": 1, "b": 2}) and not checks.same("1", 1)


# --- expectations and captures ---------------------------------------------------------------------
def test_status_defaults_to_any_2xx_and_takes_a_list():
    assert checks.expectation_problems({}, 204, "") == []
    assert checks.expectation_problems({}, 302, "") == ["status 302, expected 2xx"]
    assert checks.expectation_problems({"status": [200, 404]}, 404, "") == []
    assert checks.expectation_problems({"status": 201}, None, "") == ["status None, expected 201"]
    # a wrong status alone: what its body lacks is noise
    assert checks.expectation_problems({"status": 200, "json_exists": ["$.id"], "body_contains": "x"}, 502,
                                       '{"detail": "backend unreachable"}') == ["status 502, expected 200"]


def test_json_expectations_name_the_path_the_value_and_the_expected():
    body = json.dumps({"id": 3, "title": "buy milk", "completed": False, "tags": ["a", "b"]})
    expect = {"status": 201, "json": {"$.title": "buy milk", "$.completed": False, "$.tags[*]": "b"},
              "json_exists": ["$.id"], "body_contains": "milk"}
    assert checks.expectation_problems(expect, 201, body) == []
    wrong = {"json": {"$.title": "buy bread", "$.completed": 0, "$.tags[*]": "c", "$.owner": "me"},
             "json_exists": ["$.id", "$.created_at"], "body_contains": ["milk", "bread"]}
    assert checks.expectation_problems(wrong, 200, body) == [
        "the body does not contain 'bread'",
        '$.title is "buy milk", expected "buy bread"',
        "$.completed is false, expected 0",
        '$.tags[*] is ["a", "b"], expected "c"',
        '$.owner is missing, expected "me"',
        "$.created_at is missing",
    ]


def test_json_expectations_on_a_body_that_is_not_json():
    assert checks.expectation_problems({"json_exists": ["$.id"]}, 200, "<html>") == [
        "the body is not JSON, so $.id cannot be read"]


def test_capture_takes_the_first_match_and_names_what_is_missing():
    body = json.dumps([{"id": 7}, {"id": 8}])
    assert checks.capture({"first": "$[*].id", "last": "$[-1].id"}, body) == ({"first": 7, "last": 8}, [])
    assert checks.capture({"task_id": "$.id"}, body) == ({}, ["cannot capture task_id: $.id is missing"])
    assert checks.capture({"task_id": "$.id"}, "not json") == ({}, ["the body is not JSON, so task_id cannot be captured"])
    assert checks.capture({}, "anything") == ({}, [])


def test_url_path_encodes_what_a_url_cannot_hold_and_keeps_the_rest():
    assert checks.url_path("/api/u 1/tasks?q=buy milk&x=é") == "/api/u%201/tasks?q=buy%20milk&x=%C3%A9"
    assert checks.url_path("/a%20b/c:d@e?f=g+h#i") == "/a%20b/c:d@e?f=g+h#i"
    assert checks.url_path("/line\nbreak") == "/line%0Abreak"


def test_excerpt_is_scrubbed_before_it_is_cut():
    commands.redact("s3cr3t-canary-value")
    text = "x" * 290 + "s3cr3t-canary-value" + "y" * 50
    short = checks.excerpt(text, 300)
    assert "s3cr3t" not in short and MASK in short and short.endswith("...")
    assert checks.excerpt("a\n  b\tc") == "a b c"


# --- a local app to run against ----------------------------------------------------------------------
class TodoHandler(QuietHandler):
    """A tiny task API, with the failure modes the messages must explain."""
    tasks: dict = {}
    next_id = [1]
    flaky = {"left": 0}
    seen_headers: dict = {}

    def _send(self, code, body=b"", content_type="application/json", extra=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("content-length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _route(self, method):
        TodoHandler.seen_headers = dict(self.headers.items())
        path = self.path
        if path == "/health":
            return self._send(200, {"status": "ok"})
        if path == "/gateway":
            return self._send(502, b"Bad Gateway: upstream todo-backnd:8000 refused", "text/plain")
        if path == "/flaky":
            if TodoHandler.flaky["left"] > 0:
                TodoHandler.flaky["left"] -= 1
                return self._send(503, b"starting", "text/plain")
            return self._send(200, {"status": "ok"})
        if path == "/leaky":
            return self._send(500, {"error": "cannot connect with password s3cr3t-canary-value"})
        if path == "/login":
            return self._send(200, {"access_token": "tok-abcdef123456", "user": "me"})
        if path == "/redirect-out":
            return self._send(302, b"", extra=[("location", "http://192.0.2.1/steal")])
        if path == "/redirect-in":
            return self._send(302, b"", extra=[("location", "/health")])
        if path == "/echo-headers":
            return self._send(200, dict(self.headers.items()))
        match = re.fullmatch(r"/api/([^/]+)/tasks(?:/(\d+))?(/complete)?", path)
        if not match:
            return self._send(404, {"detail": "Not Found"})
        user, task_id, complete = match.groups()
        mine = TodoHandler.tasks.setdefault(user, {})
        if method == "POST" and not task_id:
            body = self._body() or {}
            if not body.get("title"):
                return self._send(422, {"detail": "title is required"})
            task = {"id": TodoHandler.next_id[0], "title": body["title"], "completed": False}
            TodoHandler.next_id[0] += 1
            mine[task["id"]] = task
            return self._send(201, task)
        if method == "GET" and not task_id:
            return self._send(200, list(mine.values()))
        task = mine.get(int(task_id)) if task_id else None
        if task is None:
            return self._send(404, {"detail": "task not found"})
        if method == "PATCH" and complete:
            task["completed"] = True
            return self._send(200, task)
        if method == "DELETE":
            del mine[task["id"]]
            return self._send(204)
        return self._send(405, {"detail": "method not allowed"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PATCH(self):
        self._route("PATCH")

    def do_DELETE(self):
        self._route("DELETE")


@pytest.fixture(scope="module")
def app_url():
    with serving(TodoHandler) as url:
        yield url


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now


def session(base, **options):
    options.setdefault("backoff_s", 0)
    return checks.Session(lambda component: base, {"user": "u-test", "run": "r123"}, **options)


TODO_FLOW = [
    step("health", request={"method": "GET", "path": "/health"}, expect={"status": 200, "json": {"$.status": "ok"}}),
    step("create a task", request={"method": "POST", "path": "/api/{user}/tasks", "json": {"title": "buy milk {run}"}},
         expect={"status": 201, "json": {"$.title": "buy milk {run}", "$.completed": False}, "json_exists": ["$.id"],
                 "body_contains": "milk"},
         capture={"task_id": "$.id"}),
    step("list it", request={"method": "GET", "path": "/api/{user}/tasks"},
         expect={"status": 200, "json": {"$[*].title": "buy milk {run}", "$[0].id": "{task_id}"}}),
    step("complete it", request={"method": "PATCH", "path": "/api/{user}/tasks/{task_id}/complete"},
         expect={"status": 200, "json": {"$.completed": True, "$.id": "{task_id}"}}),
    step("delete it", request={"method": "DELETE", "path": "/api/{user}/tasks/{task_id}"}, expect={"status": 204}),
    step("it is gone", request={"method": "GET", "path": "/api/{user}/tasks/{task_id}/complete"},
         expect={"status": 404}),
]


# --- the runner ----------------------------------------------------------------------------------------
def test_the_todo_flow_passes_with_captures_feeding_later_steps(app_url):
    results = checks.run(TODO_FLOW, 2, lambda component: app_url, backoff_s=0)
    assert [r.ok for r in results] == [True] * 6, checks.failure_message(results)
    create = results[1]
    assert re.fullmatch(r"POST /api/shipcheck-[0-9a-f]{6}/tasks", create.request) and create.status == 201
    assert set(create.captured) == {"task_id"} and create.captured["task_id"].isdigit()
    assert results[3].request == f"PATCH {results[2].request.split()[1]}/{create.captured['task_id']}/complete"
    assert str(results[0]).startswith("ok health: GET /health -> 200 (")
    assert checks.failure_message(results).startswith("every check passed\nsteps:\n  ok health")


def test_stops_at_the_first_failure_and_names_it_for_the_rest(app_url):
    flow = [TODO_FLOW[0], step("create without a title", request={"method": "POST", "path": "/api/{user}/tasks",
                                                                  "json": {"name": "x"}}, expect={"status": 201},
                               capture={"task_id": "$.id"}), *TODO_FLOW[2:4]]
    results = checks.run(flow, 5, lambda component: app_url, variables={"user": "u-stop", "run": "r9"}, backoff_s=0)
    assert [(r.ok, r.ran) for r in results] == [(True, True), (False, True), (False, False), (False, False)]
    failed = checks.first_failure(results)
    assert failed.check == "create without a title" and failed.status == 422
    assert failed.problem.startswith(
        "POST /api/u-stop/tasks answered 422 ('{\"detail\": \"title is required\"}'): status 422, expected 201. "
        "Fix: see web's log (attached) for why; or, if this answer is right, correct the check's expect")
    assert results[2].problem == "check 'create without a title' failed before it"
    message = checks.failure_message(results)
    assert message.startswith("check 'create without a title' failed: POST /api/u-stop/tasks answered 422")
    assert "  - list it: not run (check 'create without a title' failed before it)" in message


def test_only_the_stage_s_steps_run():
    only5 = step("browser-ish", stages=(5,), request={"path": "/health"})
    both = step("both", request={"path": "/health"})
    assert checks.selected([only5, both], 2) == [both] and checks.selected([only5, both], 5) == [only5, both]
    assert checks.run([only5], 2, lambda c: pytest.fail("nothing runs")) == []


def test_a_json_mismatch_says_what_was_requested_answered_and_expected(app_url):
    s = session(app_url)
    result = s.run_step(step("check health", request={"path": "/health"},
                             expect={"json": {"$.status": "ready {run}"}}), 2)
    assert not result.ok and result.status == 200
    assert result.problem.startswith('GET /health answered 200 (\'{"status": "ok"}\'): $.status is "ok", '
                                     'expected "ready r123". Fix:')


def test_a_gateway_error_through_the_entry_component_names_its_backend_url(app_url):
    result = session(app_url).run_step(step("through", component="todo-frontend", request={"path": "/gateway"},
                                            expect={"status": 200}), 2)
    assert not result.ok and result.status == 502 and result.attempts == 3  # a GET's gateway error is retried
    assert "GET /gateway answered 502 after 3 attempts ('Bad Gateway: upstream todo-backnd:8000 refused')" in result.problem
    assert ("todo-frontend answered with a gateway error: it could not reach the component it forwards to. Fix: check "
            "todo-frontend's configured backend URL (its run_env in shipcheck.yaml)") in result.problem
    stage5 = session(app_url).run_step(step("through", component="todo-frontend", request={"path": "/gateway"}), 5)
    assert "configured backend URL (its chart's values)" in stage5.problem


def test_an_expected_gateway_status_is_not_retried_and_passes(app_url):
    result = session(app_url).run_step(step("expects 502", request={"path": "/gateway"}, expect={"status": 502}), 2)
    assert result.ok and result.attempts == 1


def test_a_transient_503_of_a_get_is_retried_but_a_post_is_sent_once(app_url):
    TodoHandler.flaky["left"] = 2
    result = session(app_url).run_step(step("flaky", request={"path": "/flaky"}), 2)
    assert result.ok and result.attempts == 3
    TodoHandler.flaky["left"] = 1
    result = session(app_url).run_step(step("flaky post", request={"method": "POST", "path": "/flaky", "json": {}}), 2)
    assert not result.ok and result.attempts == 1 and result.status == 503  # a POST may have been acted on
    assert TodoHandler.flaky["left"] == 0


def test_nothing_answering_names_the_url_the_error_and_the_fix(closed_port_url):
    result = session(closed_port_url).run_step(step("health", component="todo-backend",
                                                    request={"method": "POST", "path": "/api/{user}/x", "json": {}},
                                                    expect={"status": 201}), 5)
    assert not result.ok and result.status is None and result.attempts == 3  # refused: never received, retried
    assert result.problem.startswith(f"POST /api/u-test/x: nothing answered at {closed_port_url}/api/u-test/x "
                                     "(ConnectionRefusedError: [Errno 111] Connection refused) after 3 attempts; "
                                     "expected status 201. Fix: todo-backend must be serving on its port behind its "
                                     "Service; see its log (attached)")


def test_an_unreachable_component_fails_naming_what_is_missing_never_skips():
    def base_url_for(component):
        raise checks.Unreachable(f"{component} is not running in stage 2: its container exited (code 1)")
    results = checks.run([step("health", component="todo-frontend", request={"path": "/health"}),
                          step("next", request={"path": "/health"})], 2, base_url_for)
    assert [(r.ok, r.ran) for r in results] == [(False, True), (False, False)]
    assert results[0].problem.startswith("todo-frontend cannot be reached in stage 2: todo-frontend is not running "
                                         "in stage 2: its container exited (code 1). Fix:")
    # a base_url_for that fails in any other way fails the step the same way
    broken = checks.Session(lambda c: {}[c]).run_step(step("health", request={"path": "/health"}), 5)
    assert not broken.ok and "web cannot be reached in stage 5: KeyError: 'web'" in broken.problem


def test_an_undefined_variable_fails_the_step_with_the_fix(app_url):
    result = session(app_url).run_step(step("delete", request={"method": "DELETE", "path": "/api/{user}/tasks/{task}"}), 2)
    assert not result.ok and result.problem.startswith(
        "{task} is not defined (defined: run, user); a name must be built in (user, run) or captured by an earlier "
        "step. Fix: capture it in an earlier step")


def test_a_missing_capture_fails_the_step(app_url):
    result = session(app_url).run_step(step("health", request={"path": "/health"}, capture={"task_id": "$.id"}), 2)
    assert not result.ok
    assert result.problem.endswith("cannot capture task_id: $.id is missing. Fix: the answer lacks what the check "
                                   "captures; correct the app, or the capture path in the check")


def test_a_filled_path_with_spaces_is_encoded_not_a_crash(app_url):
    result = session(app_url).run_step(step("spaces", request={"path": "/api/{user}/tasks/no such"},
                                             expect={"status": 404}), 2)
    assert result.ok and result.request == "GET /api/u-test/tasks/no%20such"


def test_headers_are_filled_and_sent(app_url):
    s = session(app_url)
    assert s.run_step(step("login", request={"path": "/login"}, capture={"token": "$.access_token"}), 2).ok
    result = s.run_step(step("me", request={"path": "/echo-headers", "headers": {"Authorization": "Bearer {token}",
                                                                              "X-User": "{user}"}},
                             expect={"json": {"$.X-User": "u-test"}}), 2)
    assert result.ok, result.problem
    assert TodoHandler.seen_headers["Authorization"] == "Bearer tok-abcdef123456"


def test_a_captured_token_is_registered_as_a_secret(app_url):
    s = session(app_url)
    result = s.run_step(step("login", request={"path": "/login"}, capture={"token": "$.access_token", "who": "$.user"}), 2)
    assert result.ok and result.captured == {"token": MASK, "who": "me"}
    assert commands.scrub("Bearer tok-abcdef123456") == f"Bearer {MASK}"


def test_a_secret_in_the_answer_never_reaches_the_message(app_url):
    commands.redact("s3cr3t-canary-value")
    result = session(app_url).run_step(step("leaky", request={"path": "/leaky"}), 2)
    assert not result.ok and "s3cr3t" not in result.problem + result.body + str(result) and MASK in result.problem


def test_redirects_are_followed_on_loopback_only(app_url):
    s = session(app_url)
    assert s.run_step(step("in", request={"path": "/redirect-in"}, expect={"json": {"$.status": "ok"}}), 2).ok
    out = s.run_step(step("out", request={"path": "/redirect-out"}), 2)
    assert not out.ok and out.status == 302 and "status 302, expected 2xx" in out.problem
    kept = s.run_step(step("no follow", request={"path": "/redirect-in", "follow_redirects": False},
                           expect={"status": 302}), 2)
    assert kept.ok


# --- validation of the declared checks ----------------------------------------------------------------
def test_problems_of_a_good_flow_are_none():
    page = step("page", stages=(5,), browser={"path": "/", "expect_text": "buy milk {run}",
                                              "expect_selector": '[data-testid="task-list"]'})
    assert checks.problems([*TODO_FLOW, page], ["web"]) == []


def test_a_check_of_a_database_is_refused_when_roles_are_known():
    components = {"web": type("C", (), {"role": "app"})(), "db": type("C", (), {"role": "database"})()}
    assert checks.problems([step("sql", component="db", request={"path": "/"})], components) == [
        "checks[0].component: db is a database; checks speak HTTP to an app component"]
    assert checks.problems([step("ok", component="web", request={"path": "/"})], components) == []


def test_problems_name_the_dotted_field():
    bad = [
        step("a", component="frontend", stages=(3,), request={"method": "FETCH", "path": "api", "json": {}, "body": "x"},
             expect={"status": 999, "json": {"id": 1}, "json_exists": "$..x", "code": 1},
             capture={"user": "$.id", "9x": "$.x", "ok": "id"}),
        step("b", request={"method": "GET", "path": "/x", "json": {"a": 1}}),
        step("c", request={"path": "/x"}, browser={"path": "/"}),
        step("d", browser={"path": "no-slash", "expect_selector": "ul > li", "extra": 1}, expect={"status": 200},
             capture={"x": "$.x"}),
        step("e", browser={"path": "/"}),
        step("f", stages=(2, 5), request={"path": "/t/{later}/{only5}"}),
        step("g", stages=(5,), request={"path": "/x"}, capture={"only5": "$.id"}),
        step("h", stages=(2, 5), request={"path": "/t/{only5}"}, capture={"later": "$.id"}),
    ]
    found = checks.problems(bad, ["web", "db"])
    expected = [
        "checks[0].component: 'frontend' is not a component (db, web)",
        "checks[0].stages: [3]; checks run in stages 2 and 5",
        "checks[0].request.body: unknown key",
        "checks[0].request.method: 'FETCH' is not one of",
        "checks[0].request.path: 'api' must be a path starting with /",
        "checks[0].expect.code: unknown key",
        "checks[0].expect.status: 999 is not an HTTP status (100-599)",
        "checks[0].expect.json.id: JSON path 'id' must start with $",
        "checks[0].expect.json_exists: JSON path '$..x': cannot read",
        "checks[0].capture.user: a capture name is a letter then letters, digits or _, and not user or run (built in)",
        "checks[0].capture.9x: a capture name",
        "checks[0].capture.ok: JSON path 'id' must start with $",
        "checks[1].request.json: a GET request carries no body",
        "checks[2]: give exactly one of request and browser",
        "checks[3].browser.extra: unknown key",
        "checks[3].browser.path: 'no-slash' must be a path starting with /",
        "checks[3].browser.expect_selector: selector 'ul > li': cannot read '>'",
        "checks[3].expect: a browser step's expectations are browser.expect_text and expect_selector",
        "checks[3].capture: a browser step captures nothing",
        "checks[4].browser: give expect_text or expect_selector",
        "checks[5]: {later} is used in stage 2 before any step of that stage captures it",
        "checks[5]: {only5} is used in stage 2 before",
        "checks[7]: {only5} is used in stage 2 before",
        "checks[5]: {later} is used in stage 5 before",
        "checks[5]: {only5} is used in stage 5 before",
    ]
    assert len(found) == len(expected), "\n".join(found)
    for line, start in zip(found, expected):
        assert line.startswith(start), (line, start)
