"""Progress lines reach the output whatever it is (a file here, as in CI), as they are said,
past pytest's capture; a failing test also carries its own lines in its report.

pytester's subprocess runs write the inner pytest's stdout to the file `stdout` in the
test directory: exactly the case of `pytest stages/ > log` or a CI log. The inner layout is
the repository's: an ini file beside the conftest.py that registers shipcheck.plugin. That
conftest is then loaded before pytest configures its plugins, so the plugin's
pytest_configure ran before the terminal reporter existed and the lines kept the fallback
sink, stderr, which fd-level capture sends into the running test's captured output: shown
only inside a failing test's report, never while the work ran. (A separate
`--shipcheck-config PATH` argument would make pytest take the repository as rootdir and
hide this: the option is given as `--shipcheck-config=PATH`.)
"""

import textwrap

import pytest

from shipcheck import progress


@pytest.fixture
def stage(pytester):
    pytester.makeconftest('pytest_plugins = ["shipcheck.plugin"]')
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")
    pytester.mkdir("stages")

    def write(body: str) -> None:
        (pytester.path / "stages" / "test_01_build.py").write_text(
            "import pytest\npytestmark = pytest.mark.order(1)\n" + textwrap.dedent(body))
    return write


def run(pytester, repo, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "addopts=",
                                         f"--shipcheck-config={repo / 'tests' / 'seeded' / 'unit.shipcheck.yaml'}",
                                         "stages", *args)


@pytest.mark.parametrize("verbosity", ["-q", "", "-v"])
def test_progress_lines_reach_a_file_while_the_test_runs(pytester, repo, stage, verbosity):
    stage("""
        from pathlib import Path
        from shipcheck import progress

        def test_long_work(capsys):
            progress.say("building todo-backend:v1")
            # Already in the output file while the test still runs: written at once, not buffered.
            assert "building todo-backend:v1" in Path("stdout").read_text()
            # Not in what pytest captured: the test's own output is still captured as usual.
            print("the test's own print")
            assert "building" not in capsys.readouterr().out

        def test_next():
            progress.say("deploying todo-backend")
        """)
    result = run(pytester, repo, *[v for v in [verbosity] if v])
    result.assert_outcomes(passed=2)
    said = [line for line in result.outlines if line.startswith("[shipcheck ")]
    assert [line.split("] ", 1)[1] for line in said] == ["building todo-backend:v1", "deploying todo-backend"], \
        result.outlines
    assert "the test's own print" not in result.stdout.str()  # capture untouched
    assert "[shipcheck" not in result.stderr.str()


def test_a_progress_line_never_shares_a_line_with_the_results(pytester, repo, stage):
    stage("""
        from shipcheck import progress

        def test_a():
            pass

        def test_b():
            progress.say("between results")
        """)
    result = run(pytester, repo)
    line = next(line for line in result.outlines if "between results" in line)
    assert line.startswith("[shipcheck "), result.outlines


def test_a_failing_test_carries_its_own_progress_lines(pytester, repo, stage):
    stage("""
        from shipcheck import progress

        def test_passes():
            progress.say("not mine")

        def test_fails():
            progress.say("waiting for rollout of todo-backend (30/300 s)")
            assert False, "rollout failed"
        """)
    result = run(pytester, repo, "--junitxml", "junit.xml", "-o", "junit_logging=system-out",
                 "-o", "junit_family=xunit2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*- Captured stdout progress -*",
                                 "[[]shipcheck *] waiting for rollout of todo-backend (30/300 s)"])
    junit = (pytester.path / "junit.xml").read_text()
    assert "waiting for rollout of todo-backend" in junit and "not mine" not in junit


def test_outside_pytest_lines_go_to_stderr(capfd, monkeypatch):
    monkeypatch.setattr(progress, "sink", progress._to_stderr)
    progress.say("a line")
    assert capfd.readouterr().err.endswith("] a line\n")
