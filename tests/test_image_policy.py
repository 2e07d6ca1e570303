"""Image gates as pure checks: size budget, non-root USER, HEALTHCHECK, OCI labels (image_policy.py).

Each problem message says what was measured, the limit, and the fix.
"""

import pytest

from shipcheck import image_policy

REF = "todo-backend:v1.0.0"
OCI = "org.opencontainers.image."
GOOD_HC = ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/health')"]


# --- size -----------------------------------------------------------------------------------
@pytest.mark.parametrize("size_bytes", [0, 85_000_000, 100_000_000])
def test_size_within_or_at_the_budget_passes(size_bytes):
    assert image_policy.size_problem(REF, size_bytes, 100) is None


def test_size_is_measured_in_decimal_megabytes():
    # 100_000_000 bytes is 95.4 MiB: under a 100 MB budget only in MiB; the gate uses MB like `docker images`.
    assert image_policy.size_problem(REF, 104_857_600, 100) is not None  # 100 MiB = 104.9 MB


def test_over_budget_names_size_budget_excess_and_fix():
    problem = image_policy.size_problem(REF, 285_432_100, 250)
    assert problem.startswith(f"{REF}: 285.4 MB uncompressed (MB = 10^6 bytes")
    assert "over its budget of 250 MB by 35.4 MB" in problem
    assert "Fix: use a multi-stage build" in problem and "size_budget_mb in shipcheck.yaml" in problem


def test_a_fractional_budget_is_shown_as_written():
    assert "budget of 99.5 MB" in image_policy.size_problem(REF, 100_000_000, 99.5)


# --- user -----------------------------------------------------------------------------------
@pytest.mark.parametrize("user, expected", [("", ("", "")), ("1001", ("1001", "")), ("1001:1001", ("1001", "1001")),
                                            ("app:staff", ("app", "staff"))])
def test_parse_user(user, expected):
    assert image_policy.parse_user(user) == expected


@pytest.mark.parametrize("user, uid", [("1001:1001", 1001), ("1001", 1001), ("999:999", 999)])
def test_a_numeric_non_root_user_passes(user, uid):
    assert image_policy.user_problem(REF, user, uid) is None


@pytest.mark.parametrize("user, says", [
    ("", "no USER set, so it runs as root (UID 0); expected UID 1001."),
    ("0", "USER '0' is root (UID 0); expected UID 1001."),
    ("0:0", "USER '0:0' is root (UID 0); expected UID 1001."),
    ("root", "USER 'root' is a name that is not in the image's /etc/passwd; expected UID 1001."),
    ("app:app", "USER 'app:app' is a name that is not in the image's /etc/passwd"),
    ("1000:1000", "USER '1000:1000' runs as UID 1000; the configuration expects UID 1001."),
    ("1001:0", "USER '1001:0' has group '0'; expected a numeric non-root GID."),
    ("1001:root", "USER '1001:root' has group 'root'; expected a numeric non-root GID."),
])
def test_a_user_problem_says_what_and_how_to_fix(user, says):
    problem = image_policy.user_problem(REF, user, 1001)
    assert problem.startswith(f"{REF}: {says}")
    assert "Fix: end the Dockerfile's final stage with `USER 1001:1001` (numeric" in problem


def test_another_uid_suggests_the_config_too():
    assert image_policy.user_problem(REF, "1000", 1001).endswith("Or set uid in shipcheck.yaml.")


# --- healthcheck ------------------------------------------------------------------------------------
@pytest.mark.parametrize("test, path", [
    (GOOD_HC, "/health"),
    (["CMD-SHELL", "curl -fsS http://localhost:3000/api/health || exit 1"], "/api/health"),
    (["CMD", "pg_isready", "-U", "todo"], None),
])
def test_a_healthcheck_on_the_health_path_passes(test, path):
    assert image_policy.healthcheck_problem(REF, test, path) is None


@pytest.mark.parametrize("test", [None, [], ["NONE"]])
def test_no_healthcheck_is_a_problem(test):
    problem = image_policy.healthcheck_problem(REF, test, "/health")
    assert problem.startswith(f"{REF}: no HEALTHCHECK (found {test!r}); expected one on /health. Fix: add `HEALTHCHECK")
    assert "probing on /health" in problem


def test_no_healthcheck_without_a_health_path_asks_for_a_probe_of_the_service():
    problem = image_policy.healthcheck_problem(REF, None, None)
    assert "expected one. Fix:" in problem and "probing the service" in problem


def test_a_healthcheck_on_another_path_names_both():
    test = ["CMD", "curl", "-f", "http://localhost:8000/status"]
    problem = image_policy.healthcheck_problem(REF, test, "/health")
    assert problem == (f"{REF}: HEALTHCHECK `curl -f http://localhost:8000/status` does not probe the configured "
                       "health path /health. Fix: point the HEALTHCHECK at /health, or set health_path in "
                       "shipcheck.yaml to the path the app serves.")


def test_a_healthcheck_on_a_longer_path_is_not_the_health_path():
    test = ["CMD", "curl", "-f", "http://localhost:8000/healthz"]
    assert image_policy.healthcheck_problem(REF, test, "/health") is not None


# --- OCI labels ----------------------------------------------------------------------------------------
def labels(**kw):
    base = {OCI + "version": "v1.0.0", OCI + "revision": "0123456789ab", OCI + "source": "https://example.com/todo"}
    base.update({OCI + k: v for k, v in kw.items()})
    return {k: v for k, v in base.items() if v is not None}


def test_complete_labels_pass():
    assert image_policy.label_problems(REF, {**labels(), "maintainer": "x"}, "v1.0.0") is None


def test_missing_labels_are_each_named():
    problem = image_policy.label_problems(REF, {}, "v1.0.0")
    assert problem.startswith(f"{REF}: OCI labels: missing {OCI}version, {OCI}revision, {OCI}source. Fix: set them "
                              "from build args (`ARG VERSION`")


def test_an_empty_label_counts_as_missing():
    assert f"missing {OCI}revision." in image_policy.label_problems(REF, labels(revision=""), "v1.0.0")


def test_a_version_label_that_is_not_the_tag_is_a_problem():
    problem = image_policy.label_problems(REF, labels(version="dev", source=None), "v1.0.0")
    assert f"OCI labels: missing {OCI}source; {OCI}version is 'dev', expected 'v1.0.0'. Fix:" in problem


PASSWD = "root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/bash\n"


def test_a_named_user_passes_when_the_image_maps_it_to_the_configured_uid():
    """node:20-slim's `USER node`: Kubernetes runs it as the UID the chart's runAsUser sets."""
    assert image_policy.user_problem("web:1", "node", 1000, PASSWD) is None
    assert "is UID 1000 in the image's /etc/passwd; expected UID 1001" in image_policy.user_problem(
        "web:1", "node", 1001, PASSWD)
    assert "is UID 0 in the image's /etc/passwd" in image_policy.user_problem("web:1", "root", 1001, PASSWD)
