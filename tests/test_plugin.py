"""The plugin's stage ordering: a failed stage makes every later stage skip with the reason;
cleanup is opt-in."""

import textwrap

import pytest


@pytest.fixture
def stages(pytester, repo):
    pytester.makeconftest('pytest_plugins = ["shipcheck.plugin"]')
    pytester.mkdir("stages")

    def write(name: str, order: int, body: str) -> None:
        (pytester.path / "stages" / name).write_text(
            f"import pytest\npytestmark = pytest.mark.order({order})\n" + textwrap.dedent(body))
    return write


def run(pytester, repo, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "addopts=", "-rs", "--shipcheck-config",
                                         str(repo / "tests" / "seeded" / "unit.shipcheck.yaml"), "stages", *args)


def test_a_failed_stage_skips_the_later_ones_and_says_why(pytester, repo, stages):
    stages("test_02_containers.py", 2, "def test_runs():\n    pass\n")
    stages("test_01_build.py", 1, "def test_builds():\n    assert False, 'seeded'\n")
    result = run(pytester, repo)
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*stage 1 (build) failed at *test_01_build.py::test_builds; fix it first*"])


def test_stages_run_in_order_whatever_the_file_order(pytester, repo, stages):
    stages("test_a.py", 2, "def test_second():\n    pass\n")
    stages("test_b.py", 1, "def test_first():\n    pass\n")
    result = run(pytester, repo, "-v")
    result.assert_outcomes(passed=2)
    lines = [line for line in result.outlines if "PASSED" in line]
    assert "test_first" in lines[0] and "test_second" in lines[1], lines


def test_cleanup_is_opt_in(pytester, repo, stages):
    stages("test_06_cleanup.py", 6, "def test_cleanup():\n    pass\n")
    run(pytester, repo).stdout.fnmatch_lines(["*cleanup is opt-in: pass --cleanup*"])
    run(pytester, repo, "--cleanup").assert_outcomes(passed=1)


def test_a_registered_secret_never_reaches_the_failure_report(pytester, repo, stages):
    stages("test_01_build.py", 1, """
        from shipcheck import commands, progress

        def test_leaks():
            commands.redact("s3cr3t-value-123")
            progress.say("connecting with s3cr3t-value-123")
            print("captured s3cr3t-value-123")
            assert False, "DATABASE_URL=postgres://u:s3cr3t-value-123@db/x"
        """)
    result = run(pytester, repo, "--junitxml", "junit.xml")
    result.assert_outcomes(failed=1)
    assert "s3cr3t-value-123" not in result.stdout.str()
    assert "s3cr3t-value-123" not in (pytester.path / "junit.xml").read_text()
