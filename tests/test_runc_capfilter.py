"""The runc wrapper (setup/runc-capfilter): what it removes from OCI specs, and what it leaves.

Run with a stand-in runc that prints its arguments, and a bounding set given in
SHIPCHECK_CAPBND (this VM's: every capability up to 40 but CAP_SYS_RESOURCE, bit 24).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

WRAPPER = Path(__file__).resolve().parent.parent / "setup" / "runc-capfilter"
SHORT = "000001fffeffffff"  # this VM: CAP_SYS_RESOURCE withheld
FULL = "000001ffffffffff"
PRIVILEGED = ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_BPF"]

pytestmark = pytest.mark.skipif(not shutil.which("jq"), reason="the wrapper needs jq (setup/docker.sh installs it)")


@pytest.fixture
def wrapper(tmp_path):
    """The wrapper with a stand-in runc that prints the arguments passed on, one a line."""
    runc = tmp_path / "runc"
    runc.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    runc.chmod(0o755)
    script = tmp_path / "runc-capfilter"
    text = WRAPPER.read_text().replace("REAL_RUNC=/usr/sbin/runc", f"REAL_RUNC={runc}")
    script.write_text(text.replace("JQ=/usr/bin/jq", f"JQ={shutil.which('jq')}"))
    script.chmod(0o755)

    def run(*args, capbnd=SHORT, cwd=tmp_path):
        env = {**os.environ, "SHIPCHECK_CAPBND": capbnd}
        return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, cwd=cwd, check=True)
    return run


def spec(caps, nested=True):
    sets = {name: list(caps) for name in ("bounding", "effective", "permitted")}
    return {"ociVersion": "1.0.2", "process": {"args": ["sh"], "capabilities": sets}} if nested else \
        {"args": ["sh"], "capabilities": sets}


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("args", [
    ["--root", "/run/runc", "--log", "/x/log.json", "create", "--bundle", "{b}", "--pid-file", "p", "id1"],
    ["create", "-b", "{b}", "id1"],
    ["--root", "/r", "run", "--bundle={b}", "id1"],
])
def test_a_privileged_container_loses_only_what_the_bounding_set_lacks(wrapper, tmp_path, args):
    config = write(tmp_path / "bundle" / "config.json", spec(PRIVILEGED))
    result = wrapper(*[a.format(b=tmp_path / "bundle") for a in args])
    caps = json.loads(config.read_text())["process"]["capabilities"]
    assert caps == {name: ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_BPF"] for name in ("bounding", "effective", "permitted")}
    assert result.stdout.split() == [a.format(b=tmp_path / "bundle") for a in args]  # runc gets the same arguments


def test_the_bundle_defaults_to_the_working_directory(wrapper, tmp_path):
    config = write(tmp_path / "config.json", spec(PRIVILEGED))
    wrapper("create", "id1")
    assert "CAP_SYS_RESOURCE" not in config.read_text()


def test_a_privileged_exec_process_file_is_filtered(wrapper, tmp_path):
    process = write(tmp_path / "process.json", spec(PRIVILEGED, nested=False))
    wrapper("--root", "/r", "exec", "--process", str(process), "--detach", "id1")
    assert "CAP_SYS_RESOURCE" not in process.read_text() and "CAP_SYS_ADMIN" in process.read_text()


def test_an_ordinary_spec_is_left_untouched(wrapper, tmp_path):
    config = write(tmp_path / "bundle" / "config.json", spec(["CAP_CHOWN", "CAP_KILL"]))
    before = config.read_text()
    os.utime(config, (0, 0))
    wrapper("create", "--bundle", str(tmp_path / "bundle"), "id1")
    assert config.read_text() == before and config.stat().st_mtime == 0


def test_nothing_changes_where_the_bounding_set_is_full(wrapper, tmp_path):
    config = write(tmp_path / "bundle" / "config.json", spec(PRIVILEGED))
    wrapper("create", "--bundle", str(tmp_path / "bundle"), "id1", capbnd=FULL)
    assert "CAP_SYS_RESOURCE" in config.read_text()


def test_other_commands_pass_straight_through(wrapper, tmp_path):
    assert wrapper("--root", "/r", "state", "id1").stdout.split() == ["--root", "/r", "state", "id1"]
    assert wrapper("--version").stdout.strip() == "--version"


def test_a_spec_it_cannot_read_is_left_for_runc_to_report(wrapper, tmp_path):
    broken = tmp_path / "bundle" / "config.json"
    broken.parent.mkdir()
    broken.write_text("{not json CAP_SYS_RESOURCE")
    wrapper("create", "--bundle", str(broken.parent), "id1")
    assert broken.read_text() == "{not json CAP_SYS_RESOURCE"
    assert not (broken.parent / "config.json.capfilter").exists()
