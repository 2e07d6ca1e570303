"""The example apps in examples/ (notes-api, notes-web), checked as files.

Their charts must stay the unmodified output of `helm create` (only values.yaml and an
optional values.schema.json are the user's), and what their values render must match
what their shipcheck.yaml promises: the port, the probe paths, the UID, writable paths as
emptyDirs, the app's own Secret and ConfigMap mounted. The chart tests need helm (skipped
without it, as in tests/test_charts_seeded.py); the rest is plain file reading.
"""

from pathlib import Path

import pytest
import yaml
from helm_tool import HELM, needs_helm

from shipcheck import commands

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
APPS = ["notes-api", "notes-web"]
SEEDED = REPO / "tests" / "seeded" / "examples"
# The only chart files a user of `helm create` edits here.
USER_FILES = {Path("values.yaml"), Path("values.schema.json")}


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name / "shipcheck.yaml").read_text())


def component(name: str) -> dict:
    return example(name)["components"][name]


def chart_dir(name: str) -> Path:
    return EXAMPLES / name / component(name)["chart"]


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def dockerfile_lines(name: str) -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    text = (EXAMPLES / name / component(name).get("dockerfile", "Dockerfile")).read_text()
    joined = text.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# --- Dockerfiles: written as users write them ------------------------------------------
@pytest.mark.parametrize("name, base", [("notes-api", "python:3.11-slim"), ("notes-web", "node:20-slim")])
def test_dockerfile_names_its_official_base_and_no_ca_secret(name, base):
    lines = dockerfile_lines(name)
    froms = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert froms and set(froms) == {base}, f"{name}: FROM {froms}, expected only {base} (hard-coded, no build arg)"
    assert not any("--mount=type=secret" in line for line in lines), f"{name}: mounts a build secret"


@pytest.mark.parametrize("name", APPS)
def test_dockerfile_matches_its_configuration(name):
    comp, lines = component(name), dockerfile_lines(name)
    assert f"EXPOSE {comp['port']}" in lines
    healthcheck = next(line for line in lines if line.startswith("HEALTHCHECK"))
    assert comp["health_path"] in healthcheck
    assert any(line.startswith("LABEL") and "org.opencontainers.image.version" in line for line in lines)


# --- charts: helm create's templates, the user's values ---------------------------------
@needs_helm
@pytest.mark.parametrize("name", APPS)
def test_chart_is_unmodified_helm_create_output(name, tmp_path):
    commands.run([HELM, "create", name], cwd=tmp_path, what=f"helm create {name}")
    fresh, ours = tmp_path / name, chart_dir(name)
    fresh_files, our_files = files_under(fresh), files_under(ours)
    assert our_files - fresh_files <= USER_FILES, f"files helm create does not make: {sorted(map(str, our_files - fresh_files))}"
    assert not fresh_files - our_files, f"helm create's files missing: {sorted(map(str, fresh_files - our_files))}"
    edited = sorted(str(p) for p in fresh_files - USER_FILES if (fresh / p).read_bytes() != (ours / p).read_bytes())
    assert not edited, (f"{name}: {edited} differ from `helm create {name}` ({HELM}); only values.yaml and "
                        "values.schema.json may be edited. Fix: regenerate them with helm create.")


@needs_helm
@pytest.mark.parametrize("name", APPS)
def test_chart_lints_strict(name):
    result = commands.run([HELM, "lint", "--strict", str(chart_dir(name))], check=False)
    assert result.ok, result.tail(both=True)


def rendered(name: str) -> dict[str, list[dict]]:
    out = commands.run([HELM, "template", name, str(chart_dir(name)), "--namespace", example(name)["namespace"]]).stdout
    by_kind: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all(out):
        if doc:
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


@needs_helm
@pytest.mark.parametrize("name", APPS)
def test_values_render_what_the_configuration_says(name):
    cfg, comp = example(name), component(name)
    docs = rendered(name)
    (deployment,) = docs["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == f"{comp['image']}:{comp.get('tag', cfg['version'])}"
    assert container["ports"][0]["containerPort"] == comp["port"]
    assert container["livenessProbe"]["httpGet"]["path"] == comp["health_path"]
    assert container["readinessProbe"]["httpGet"]["path"] == comp.get("readiness_path", comp["health_path"])
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory", "ephemeral-storage"}
    # Pod Security "restricted", and the image's own UID.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    ctx = container["securityContext"]
    assert ctx["runAsUser"] == comp["uid"] and ctx["runAsNonRoot"] is True
    assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"]["drop"] == ["ALL"]
    # Every writable path is an emptyDir; the app's own Secrets and ConfigMaps are mounted.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for path in comp["writable_paths"]:
        assert "emptyDir" in volumes[mounts[path]], f"{path} is not an emptyDir"
    mounted = {v.get("secret", {}).get("secretName") for v in volumes.values()} | {
        v.get("configMap", {}).get("name") for v in volumes.values()}
    assert set(cfg.get("secrets", {})) | set(cfg.get("config_maps", {})) <= mounted
    assert docs["Service"][0]["spec"]["ports"][0]["port"] == comp["port"]


# --- seeded defects (tests/seeded/examples) ----------------------------------------------
def test_each_example_has_seeded_defects_with_their_files():
    defects = yaml.safe_load((SEEDED / "defects.yaml").read_text())
    for name in APPS:
        assert sum(d["example"] == name for d in defects) >= 2, f"{name}: fewer than two seeded defects"
    for defect in defects:
        for path in defect["files"]:
            assert (REPO / path).is_file(), f"{defect['id']}: {path} missing"
        for key, value in defect["set"].items():
            if key.endswith(("dockerfile", "values_files")):
                for rel in value if isinstance(value, list) else [value]:
                    assert (EXAMPLES / defect["example"] / rel).resolve().is_file(), f"{defect['id']}: {rel}"
