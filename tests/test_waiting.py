"""wait_until and retry: wall-clock time, terminal states, transient errors (waiting.py)."""

import time

import pytest

from shipcheck import progress, waiting
from shipcheck.waiting import WaitResult


@pytest.fixture
def said(monkeypatch):
    """Progress lines, captured instead of printed."""
    lines = []
    monkeypatch.setattr(progress, "sink", lines.append)
    return lines


def probes(*values):
    """A probe returning each value in turn (raising it when it is an exception), then the last forever."""
    seq = list(values)
    calls = []

    def probe():
        calls.append(time.monotonic())
        value = seq.pop(0) if len(seq) > 1 else seq[0]
        if isinstance(value, BaseException):
            raise value
        return value
    probe.calls = calls
    return probe


# --- wait_until -------------------------------------------------------------------------------
def test_done_at_the_first_probe_returns_at_once():
    result = waiting.wait_until("x", probes("ready"), done=lambda s: s == "ready", timeout_s=10)
    assert result == WaitResult("x", True, "ready", result.elapsed_s, "") and result and result.elapsed_s < 2


def test_polls_until_done_and_keeps_the_last_state():
    probe = probes("starting", "starting", "ready")
    result = waiting.wait_until("x", probe, done=lambda s: s == "ready", timeout_s=10, interval_s=0.01)
    assert result.ok and result.state == "ready" and len(probe.calls) == 3


def test_a_fatal_state_ends_the_wait_at_once_with_its_reason():
    probe = probes("starting", "CrashLoopBackOff")
    result = waiting.wait_until("pod", probe, done=lambda s: s == "ready", timeout_s=30, interval_s=0.01,
                                fatal=lambda s: f"container keeps crashing ({s})" if s == "CrashLoopBackOff" else None)
    assert not result and result.reason == "container keeps crashing (CrashLoopBackOff)"
    assert result.state == "CrashLoopBackOff" and result.elapsed_s < 5 and len(probe.calls) == 2


def test_done_wins_over_fatal():
    result = waiting.wait_until("x", probes("ready"), done=lambda s: True, fatal=lambda s: "fatal", timeout_s=1)
    assert result.ok and result.reason == ""


def test_times_out_in_wall_clock_seconds_and_probes_at_the_deadline():
    probe = probes("starting")
    start = time.monotonic()
    result = waiting.wait_until("x", probe, done=lambda s: False, timeout_s=0.3, interval_s=0.05)
    assert not result and result.reason == "timed out after 0.3 s" and result.state == "starting"
    assert 0.3 <= result.elapsed_s < 3 and time.monotonic() - start < 3
    assert 2 <= len(probe.calls) <= 9  # about 0.3 / 0.05 + 1; fewer on a loaded machine
    assert probe.calls[-1] - start >= 0.3  # a last look at the deadline, not a sleep past it


def test_a_zero_timeout_probes_once():
    probe = probes("starting")
    result = waiting.wait_until("x", probe, done=lambda s: False, timeout_s=0, interval_s=5)
    assert result.reason == "timed out after 0 s" and len(probe.calls) == 1 and result.elapsed_s < 3


def test_the_sleep_never_overshoots_the_deadline():
    start = time.monotonic()
    result = waiting.wait_until("x", probes("starting"), done=lambda s: False, timeout_s=0.2, interval_s=30)
    assert not result and time.monotonic() - start < 5  # not 30


def test_transient_errors_are_retried_until_done():
    probe = probes(ConnectionRefusedError("refused"), ConnectionResetError("reset"), "ready")
    result = waiting.wait_until("api", probe, done=lambda s: s == "ready", timeout_s=5, interval_s=0.01)
    assert result.ok and len(probe.calls) == 3


def test_a_transient_error_is_the_last_state_on_timeout():
    error = ConnectionRefusedError("refused")
    result = waiting.wait_until("api", probes(error), done=lambda s: True, timeout_s=0.1, interval_s=0.02,
                                fatal=lambda s: "never consulted for errors")
    assert not result and result.state is error and result.reason == "timed out after 0.1 s"


def test_other_errors_propagate_at_once():
    with pytest.raises(ValueError, match="bad manifest"):
        waiting.wait_until("x", probes(ValueError("bad manifest")), done=lambda s: True, timeout_s=5)


def test_the_transient_errors_are_chosen_by_the_caller():
    probe = probes(TimeoutError("slow"), "ok")
    assert waiting.wait_until("x", probe, done=lambda s: s == "ok", timeout_s=5, interval_s=0.01,
                              transient=(TimeoutError,)).ok
    with pytest.raises(ConnectionRefusedError):
        waiting.wait_until("x", probes(ConnectionRefusedError()), done=lambda s: True, timeout_s=5,
                           transient=(TimeoutError,))


def test_progress_names_what_is_waited_for_and_the_described_state(said):
    waiting.wait_until("todo-backend to become healthy", probes({"health": "starting"}), done=lambda s: False,
                       timeout_s=0.25, interval_s=0.02, say_every_s=0.1, describe=lambda s: f"health {s['health']}")
    assert 1 <= len(said) <= 3
    assert all("waiting for todo-backend to become healthy: health starting (" in line and "/0.25 s)" in line
               for line in said)


def test_progress_shows_a_transient_error_as_its_message(said):
    waiting.wait_until("api", probes(ConnectionRefusedError("refused")), done=lambda s: True, timeout_s=0.2,
                       interval_s=0.02, say_every_s=0.05)
    assert said and "waiting for api: refused (" in said[0]


# --- retry ---------------------------------------------------------------------------------------
@pytest.fixture
def sleeps(monkeypatch):
    slept = []
    monkeypatch.setattr(waiting.time, "sleep", slept.append)
    return slept


def calls(*outcomes):
    seq = list(outcomes)
    made = []

    def call():
        made.append(1)
        value = seq.pop(0)
        if isinstance(value, BaseException):
            raise value
        return value
    call.made = made
    return call


def is_5xx(exc):
    return "503" in str(exc)


def test_retry_returns_the_first_success(sleeps):
    assert waiting.retry("x", calls("ok"), is_transient=is_5xx) == "ok" and sleeps == []


def test_retry_backs_off_exponentially_on_transient_errors(sleeps, said):
    call = calls(RuntimeError("503 busy"), RuntimeError("503 busy"), "ok")
    assert waiting.retry("creating namespace", call, is_transient=is_5xx, first_delay_s=1.0) == "ok"
    assert sleeps == [1.0, 2.0] and len(call.made) == 3
    assert "creating namespace: RuntimeError: 503 busy; retrying in 1 s (attempt 2 of 3)" in said[0]
    assert "retrying in 2 s (attempt 3 of 3)" in said[1]


def test_retry_gives_up_after_the_attempts_with_the_last_error(sleeps):
    call = calls(RuntimeError("503 a"), RuntimeError("503 b"), RuntimeError("503 c"))
    with pytest.raises(RuntimeError, match="503 c"):
        waiting.retry("x", call, is_transient=is_5xx)
    assert len(call.made) == 3 and sleeps == [1.0, 2.0]


def test_retry_fails_at_once_on_a_permanent_error(sleeps):
    call = calls(RuntimeError("403 forbidden"), "ok")
    with pytest.raises(RuntimeError, match="403 forbidden"):
        waiting.retry("x", call, is_transient=is_5xx)
    assert len(call.made) == 1 and sleeps == []


def test_retry_attempts_are_configurable(sleeps):
    call = calls(RuntimeError("503"), RuntimeError("503"), RuntimeError("503"), RuntimeError("503"), "ok")
    assert waiting.retry("x", call, is_transient=is_5xx, attempts=5, first_delay_s=0.5) == "ok"
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
