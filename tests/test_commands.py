"""The one subprocess runner: results, failures, timeouts, streaming, redaction (commands.py)."""

import logging
import sys
import time

import pytest

from shipcheck import commands
from shipcheck.commands import MASK, CommandError, CommandResult

PY = sys.executable


@pytest.fixture(autouse=True)
def fresh_secrets(monkeypatch):
    """Registered secrets are process-wide; each test starts with none and leaves none."""
    monkeypatch.setattr(commands, "_SECRETS", set())


# --- redaction ----------------------------------------------------------------------------
def test_registered_secrets_are_masked():
    commands.redact("hunter2hunter2", None, "")
    assert commands.scrub("password=hunter2hunter2; again hunter2hunter2") == f"password={MASK}; again {MASK}"


def test_short_values_are_not_registered():
    commands.redact("abc", "todo")
    assert commands.scrub("abc todo") == f"abc {MASK}"


def test_the_longest_secret_is_masked_first():
    commands.redact("s3cret", "postgresql://todo:s3cret@db:5432/todo")
    assert commands.scrub("url postgresql://todo:s3cret@db:5432/todo") == f"url {MASK}"


def test_scrub_without_secrets_is_the_identity():
    assert commands.scrub("nothing to hide") == "nothing to hide"


# --- CommandResult ----------------------------------------------------------------------------
def test_result_facts_and_repr():
    commands.redact("tok-123456")
    result = CommandResult(["helm", "install", "--set", "key=tok-123456"], 1, "out\n", "err1\nerr2\n", 2.345)
    assert not result.ok and CommandResult(["true"], 0, "", "", 0).ok
    assert result.command == f"helm install --set key={MASK}"
    assert repr(result) == f"CommandResult('helm install --set key={MASK}', rc=1, 2.3 s)"


def test_tail_prefers_stderr_keeps_the_last_lines_and_is_scrubbed():
    commands.redact("tok-123456")
    lines = "\n".join(f"line {i}" for i in range(50)) + "\ntok-123456\n"
    assert CommandResult(["x"], 1, "stdout only", lines, 0).tail(3) == f"line 48\nline 49\n{MASK}"
    assert CommandResult(["x"], 1, "a\nb\n", "  \n", 0).tail() == "a\nb"


def test_tail_of_both_streams_is_stdout_then_stderr():
    commands.redact("tok-654321")
    result = CommandResult(["helm", "test"], 1, "pod log\ntok-654321\n", "Error: pod failed\n", 0)
    assert result.tail() == "Error: pod failed"
    assert result.tail(both=True) == f"pod log\n{MASK}\nError: pod failed"
    assert result.tail(2, both=True) == f"{MASK}\nError: pod failed"
    assert CommandResult(["x"], 1, "", "only err\n", 0).tail(both=True) == "only err"


# --- run ---------------------------------------------------------------------------------------
def test_run_captures_output_rc_and_duration():
    result = commands.run([PY, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                          check=False)
    assert (result.rc, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert result.argv[0] == PY and result.duration_s >= 0


def test_run_stringifies_arguments(tmp_path):
    result = commands.run([PY, "-c", "import sys; print(sys.argv[1:])", tmp_path, 7])
    assert result.stdout.strip() == repr([str(tmp_path), "7"])


def test_a_failed_check_raises_with_the_command_and_its_output():
    commands.redact("hunter2hunter2")
    with pytest.raises(CommandError) as info:
        commands.run([PY, "-c", "import sys; sys.exit('cannot connect with hunter2hunter2')", "hunter2hunter2"],
                     what="probing the database")
    message = str(info.value)
    assert message.startswith("probing the database: CommandResult(")
    assert "rc=1" in message and f"cannot connect with {MASK}" in message and "hunter2hunter2" not in message
    assert info.value.result.rc == 1


def test_a_missing_executable_is_rc_127():
    result = commands.run(["shipcheck-no-such-tool", "--version"], check=False)
    assert (result.rc, result.stderr) == (127, "shipcheck-no-such-tool: command not found")
    with pytest.raises(CommandError, match="command not found"):
        commands.run(["shipcheck-no-such-tool"])


def test_a_timeout_kills_and_says_so():
    start = time.monotonic()
    result = commands.run([PY, "-c", "import time; print('started', flush=True); time.sleep(30)"],
                          check=False, timeout_s=0.5)
    assert time.monotonic() - start < 10
    assert result.rc == -9 and result.stderr.endswith("timed out after 0.5 s")


def test_env_is_added_to_the_inherited_environment(monkeypatch):
    monkeypatch.setenv("SHIPCHECK_INHERITED", "kept")
    result = commands.run([PY, "-c", "import os; print(os.environ['SHIPCHECK_INHERITED'], os.environ['EXTRA'])"],
                          env={"EXTRA": "added"})
    assert result.stdout.split() == ["kept", "added"]


def test_input_and_cwd(tmp_path):
    result = commands.run([PY, "-c", "import os, sys; print(os.getcwd()); print(sys.stdin.read().upper())"],
                          input_text="manifest", cwd=tmp_path)
    assert result.stdout.split() == [str(tmp_path), "MANIFEST"]


def test_debug_log_names_the_command_but_never_a_secret(caplog):
    commands.redact("hunter2hunter2")
    with caplog.at_level(logging.DEBUG, logger="shipcheck"):
        commands.run([PY, "-c", "pass", "--password", "hunter2hunter2"])
    assert any("--password ******" in r.getMessage() for r in caplog.records)
    assert not any("hunter2hunter2" in r.getMessage() for r in caplog.records)


# --- streaming ------------------------------------------------------------------------------
def test_streaming_passes_each_scrubbed_line_with_stderr_merged():
    commands.redact("hunter2hunter2")
    seen = []
    result = commands.run([PY, "-c", "import sys\nprint('step 1', flush=True)\n"
                           "print('err hunter2hunter2', file=sys.stderr, flush=True)\nprint('step 2')"],
                          on_line=seen.append)
    assert seen == ["step 1", f"err {MASK}", "step 2"]
    assert result.ok and result.stdout == f"step 1\nerr {MASK}\nstep 2" and result.stderr == ""


def test_streaming_failure_is_raised_with_its_lines():
    with pytest.raises(CommandError, match="ERROR: step 3 failed"):
        commands.run([PY, "-c", "import sys; print('ERROR: step 3 failed'); sys.exit(2)"], on_line=lambda _: None)


def test_streaming_a_missing_executable_is_rc_127():
    assert commands.run(["shipcheck-no-such-tool"], check=False, on_line=lambda _: None).rc == 127


def test_streaming_timeout_fires_while_lines_keep_coming():
    result = commands.run([PY, "-c", "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.1)"],
                          check=False, timeout_s=0.5, on_line=lambda _: None)
    assert result.rc == -9 and "timed out after 0.5 s" in result.stderr


def test_streaming_timeout_fires_on_a_silent_process():
    start = time.monotonic()
    result = commands.run([PY, "-c", "import time; time.sleep(3)"], check=False, timeout_s=0.5,
                          on_line=lambda _: None)
    assert result.rc == -9 and time.monotonic() - start < 2.5
