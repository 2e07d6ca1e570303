"""Base images of a Dockerfile and their stand-ins, as pure functions (base_images.py)."""

from pathlib import Path

import pytest

from shipcheck import base_images
from shipcheck.base_images import DockerfileError, NoStandIn, parse, recipe

REPO = Path(__file__).resolve().parents[1]


# --- FROM lines, ARGs and stages -------------------------------------------------------------------
def test_a_hard_coded_from_is_the_one_image():
    assert parse("FROM python:3.13-slim\nRUN pip install x\n").images() == ["python:3.13-slim"]


def test_arg_default_and_build_arg_override():
    text = "ARG BASE=python:3.13-slim\nFROM ${BASE}\n"
    assert parse(text).images() == ["python:3.13-slim"]
    assert parse(text, {"BASE": "python:3.11-slim"}).images() == ["python:3.11-slim"]
    assert parse(text, {"OTHER": "x"}).images() == ["python:3.13-slim"]


def test_an_arg_default_may_name_an_earlier_arg():
    text = ("ARG NODE_IMAGE=node:20-alpine\nARG RUNTIME_IMAGE=${NODE_IMAGE}\n"
            "FROM $NODE_IMAGE AS b\nFROM ${RUNTIME_IMAGE}\nCOPY --from=b /x /x\n")
    assert parse(text).images() == ["node:20-alpine"]
    assert parse(text, {"NODE_IMAGE": "node:20-slim"}).images() == ["node:20-slim"]
    assert parse(text, {"RUNTIME_IMAGE": "node:20-slim"}).images() == ["node:20-alpine", "node:20-slim"]


def test_substitution_forms():
    values = {"SET": "a", "EMPTY": ""}
    assert base_images.expand("${SET:-b} ${EMPTY:-b} ${UNSET:-b} ${EMPTY-b} ${UNSET-b}", values) == "a b b  b"
    assert base_images.expand("${SET:+b}|${EMPTY:+b}|${EMPTY+b}|${UNSET+b}", values) == "b||b|"
    assert base_images.expand(r"\$SET $SET", values) == r"\$SET a"


def test_platform_flag_stage_names_and_scratch():
    text = ("FROM --platform=$BUILDPLATFORM node:20-slim AS Build\nRUN npm ci\n"
            "FROM build AS test\nRUN npm test\n"
            "FROM scratch\nCOPY --from=build /app /app\n")
    df = parse(text)
    assert df.images() == ["node:20-slim"]
    assert [s.name for s in df.stages] == ["build", "test", None]
    assert df.stages[1].parent == 0 and df.stages[2].image is None
    assert [s.index for s in df.needed()] == [0, 2]  # BuildKit skips the unused test stage


def test_target_picks_the_stages_a_build_runs():
    text = "FROM python:3.11-slim AS dev\nFROM python:3.13-slim AS prod\n"
    assert parse(text).images() == ["python:3.13-slim"]
    assert parse(text, target="dev").images() == ["python:3.11-slim"]
    with pytest.raises(DockerfileError, match="target 'nope' is not a stage.*dev, prod"):
        parse(text, target="nope")


def test_copy_from_an_image_and_mount_from_count():
    text = ("FROM debian:trixie-slim AS base\n"
            "COPY --from=ghcr.io/astral-sh/uv:0.5 /uv /bin/uv\n"
            "RUN --mount=type=bind,from=node:20-slim,source=/usr,target=/n true\n"
            "FROM base\nCOPY --from=0 /a /a\n")
    assert parse(text).images() == ["debian:trixie-slim", "ghcr.io/astral-sh/uv:0.5", "node:20-slim"]


def test_continuations_comments_and_escape_directive():
    text = ("# escape=`\nARG A=python:3.11-slim\nFROM `\n  # a comment in between\n  ${A} `\n  AS x\n"
            "RUN echo `\n  apk add\n")
    df = parse(text)
    assert df.images() == ["python:3.11-slim"] and df.stages[0].name == "x"
    assert "apk add" in df.stages[0].runs[0][1]


def test_heredoc_bodies_belong_to_their_run_not_to_from():
    text = "FROM node:20-alpine\nRUN <<EOF\nset -e\napk add --no-cache curl\nFROM not-an-image\nEOF\nUSER node\n"
    df = parse(text)
    assert df.images() == ["node:20-alpine"] and len(df.stages) == 1
    assert [u.line for u in df.apk_uses()] == [2]


def test_our_own_dockerfiles_default_to_the_official_images():
    found = {name: parse((REPO / "dockerfiles" / name).read_text()).images()
             for name in ("api.Dockerfile", "web.Dockerfile", "postgres.Dockerfile")}
    assert found == {"api.Dockerfile": ["python:3.13-slim"], "web.Dockerfile": ["node:20-alpine"],
                     "postgres.Dockerfile": ["debian:trixie-slim"]}


@pytest.mark.parametrize("text, message", [
    ("RUN true\n", "line 1: RUN before the first FROM"),
    ("ARG BASE\nFROM ${BASE}\n", "line 2: FROM names no image after expanding its build args"),
    ("# nothing\n", "no FROM line"),
    ("FROM a AS x\nCOPY --from=3 /a /a\n", "line 2: --from=3 names a stage that does not exist yet"),
])
def test_unreadable_dockerfiles_name_the_line(text, message):
    with pytest.raises(DockerfileError, match=message):
        parse(text)


# --- apk in Alpine stages --------------------------------------------------------------------------
def test_apk_is_found_only_in_stages_built_on_alpine():
    text = ("FROM node:20-alpine AS deps\nRUN apk add --no-cache libc6-compat\n"
            "FROM deps AS build\nRUN apk --no-cache update && npm ci\n"
            "FROM node:20-slim\nRUN echo apk add is alpine only\nCOPY --from=build /app /app\n")
    uses = parse(text).apk_uses()
    assert [(u.line, u.stage.name, u.image) for u in uses] == [(2, "deps", "node:20-alpine"),
                                                                (4, "build", "node:20-alpine")]


@pytest.mark.parametrize("command", ["cp app.apk /srv", "echo apk", "npm i apk-parser", "ls /etc/apk"])
def test_apk_lookalikes_are_not_apk(command):
    assert parse(f"FROM node:20-alpine\nRUN {command}\n").apk_uses() == []


def test_is_alpine():
    assert base_images.is_alpine("node:20-alpine") and base_images.is_alpine("alpine:3.20")
    assert base_images.is_alpine("python:3.13-alpine3.20")
    assert not base_images.is_alpine("node:20-slim") and not base_images.is_alpine("debian:trixie-slim")


# --- references ------------------------------------------------------------------------------------
@pytest.mark.parametrize("ref, expected", [
    ("python:3.13-slim", ("docker.io", "library/python", "3.13-slim", None)),
    ("docker.io/library/node:20", ("docker.io", "library/node", "20", None)),
    ("debian", ("docker.io", "library/debian", "latest", None)),
    ("bitnami/postgresql:17", ("docker.io", "bitnami/postgresql", "17", None)),
    ("localhost:5000/app", ("localhost:5000", "app", "latest", None)),
    ("ghcr.io/astral-sh/uv:0.5@sha256:abc", ("ghcr.io", "astral-sh/uv", "0.5", "sha256:abc")),
])
def test_parse_ref(ref, expected):
    parsed = base_images.parse_ref(ref)
    assert (parsed.registry, parsed.path, parsed.tag, parsed.digest) == expected


# --- recipes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ref, kind, suite, version, alpine", [
    ("python:3.13-slim", "python", "trixie", "3.13", False),
    ("python:3.13.5-slim-trixie", "python", "trixie", "3.13", False),
    ("python:3.11-slim", "python", "bookworm", "3.11", False),
    ("python:3.11-alpine3.20", "python", "bookworm", "3.11", True),
    ("node:20-slim", "node", "trixie", "20", False),
    ("node:20-alpine", "node", "trixie", "20", True),
    ("node:20.19-alpine3.21", "node", "trixie", "20", True),
    ("node:iron-slim", "node", "trixie", "20", False),
    ("node:18", "node", "bookworm", "18", False),
    ("docker.io/library/node:18-bookworm-slim", "node", "bookworm", "18", False),
    ("debian:trixie-slim", "debian", "trixie", "trixie", False),
    ("debian:12.11-slim", "debian", "bookworm", "bookworm", False),
    ("debian:bookworm", "debian", "bookworm", "bookworm", False),
])
def test_recipes(ref, kind, suite, version, alpine):
    made = recipe(ref)
    assert (made.kind, made.suite, made.version, made.alpine) == (kind, suite, version, alpine)
    assert made.shell() == f"KIND={kind}\nSUITE={suite}\nVERSION={version}\nALPINE={int(alpine)}\n"


def test_differences_from_the_official_image_are_noted():
    assert recipe("python:3.13-slim").note == ""
    assert recipe("node:20-bookworm-slim").note == ("Debian bookworm has no Node.js 20: the stand-in is built "
                                                    "from trixie")
    assert "patch release is Debian's, not 3.13.2" in recipe("python:3.13.2-slim").note
    assert "compilers" in recipe("python:3.13").note


@pytest.mark.parametrize("ref, message", [
    ("python:3.12-slim", "python:3.12-slim: Debian has Python 3.11 (bookworm) and 3.13 (trixie), not 3.12: use one of "
                         "those, or a machine with a registry"),
    ("python:3-slim", "the tag names no Python major.minor version"),
    ("python:latest", "pin one Debian has, python:3.13-slim (trixie) or python:3.11-slim (bookworm)"),
    ("node:22-alpine", "Debian has Node.js 18 (bookworm) and 20 (trixie), not 22: use node:20-slim"),
    ("node:lts-alpine", "the tag names no Node.js major version"),
    ("alpine:3.20", "no stand-in for Alpine itself"),
    ("python:3.13-slim@sha256:0123", "pinned by digest"),
    ("postgres:17", "no stand-in exists for it"),
    ("ghcr.io/astral-sh/uv:0.5", "no stand-in exists for it"),
    ("python:3.13-windowsservercore", "no stand-in for the variant 'windowsservercore'"),
    ("python:3.11-slim-bullseye", "stand-ins are built from Debian bookworm and trixie only, not bullseye"),
    ("debian:bullseye-slim", "stand-ins are built from Debian bookworm (12) and trixie (13) only"),
])
def test_what_cannot_be_had_here_says_why_and_what_to_use(ref, message):
    with pytest.raises(NoStandIn) as caught:
        recipe(ref)
    assert message in str(caught.value) and "registry" in str(caught.value)


def test_the_set_up_script_reads_recipes_from_the_command_line(capsys):
    assert base_images._main(["recipe", "node:20-alpine"]) == 0
    assert capsys.readouterr().out == "KIND=node\nSUITE=trixie\nVERSION=20\nALPINE=1\n"
    assert base_images._main(["recipe", "python:3.12"]) == 2
    assert "not 3.12" in capsys.readouterr().err


# --- facts -----------------------------------------------------------------------------------------
def test_facts_say_official_or_stand_in():
    official = base_images.BaseFacts("python:3.13-slim", "pulled")
    stand_in = base_images.BaseFacts("python:3.13-slim", "engine", stand_in="debian-trixie python3.13 3.13.5")
    missing = base_images.BaseFacts("python:3.12-slim", "unavailable", problem="...")
    assert official.official and not stand_in.official and not missing.official
    assert [f.describe() for f in (official, stand_in, missing)] == [
        "python:3.13-slim: official", "python:3.13-slim: stand-in (debian-trixie python3.13 3.13.5)",
        "python:3.12-slim: unavailable"]


# --- ensure, with a fake engine --------------------------------------------------------------------
class FakeImage:
    def __init__(self, ref: str, labels: dict | None = None):
        self.id = f"sha256:{abs(hash(ref)):064x}"[:71]
        self.attrs = {"Config": {"Labels": labels}}


class FakeEngine:
    """images.get / images.pull as the Docker SDK answers them; `script` stands for base-images.sh."""

    def __init__(self, present=(), pullable=(), script_ok=True):
        self.present = {ref: FakeImage(ref, labels) for ref, labels in dict(present).items()}
        self.pullable, self.script_ok, self.pulls, self.scripts = set(pullable), script_ok, [], []
        self.images = self

    def get(self, ref):
        import docker.errors
        if ref not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")
        return self.present[ref]

    def pull(self, ref):
        import docker.errors
        self.pulls.append(ref)
        if ref not in self.pullable:
            raise docker.errors.APIError('Get "https://registry-1.docker.io/v2/": dial tcp: no such host')
        self.present[ref] = FakeImage(ref)

    def run(self, argv, **kwargs):
        from shipcheck.commands import CommandResult
        self.scripts.append(argv)
        if self.script_ok:
            label = {base_images.STAND_IN_LABEL: "debian-trixie python3.13 3.13.5"}
            self.present[argv[-1]] = FakeImage(argv[-1], label)
            return CommandResult(argv, 0, "[setup 1s] built", "", 61.0)
        return CommandResult(argv, 1, "", "[setup] ERROR: apt-get failed for python3.13", 5.0)


@pytest.fixture
def engine(monkeypatch):
    def make(**kwargs) -> FakeEngine:
        fake = FakeEngine(**kwargs)
        monkeypatch.setattr(base_images.commands, "run", fake.run)
        return fake
    return make


def test_an_image_in_the_engine_is_used_as_it_is(engine):
    fake = engine(present={"python:3.13-slim": None,
                           "node:20-alpine": {base_images.STAND_IN_LABEL: "debian-trixie nodejs 20.19.2"}})
    facts = base_images.ensure(["python:3.13-slim", "node:20-alpine"], fake)
    assert [(f.how, f.official, f.stand_in) for f in facts.values()] == [
        ("engine", True, None), ("engine", False, "debian-trixie nodejs 20.19.2")]
    assert fake.pulls == [] and fake.scripts == []


def test_a_reachable_registry_gives_the_official_image(engine):
    fake = engine(pullable={"python:3.11-slim"})
    facts = base_images.ensure(["python:3.11-slim"], fake)["python:3.11-slim"]
    assert (facts.how, facts.official) == ("pulled", True) and fake.scripts == []


def test_without_a_registry_the_stand_in_is_built_under_the_official_name(engine):
    fake = engine()
    facts = base_images.ensure(["python:3.13-slim"], fake)["python:3.13-slim"]
    assert fake.pulls == ["python:3.13-slim"]
    assert fake.scripts == [["bash", str(base_images.SCRIPT), "python:3.13-slim"]]
    assert (facts.how, facts.stand_in, facts.seconds, facts.problem) == (
        "stand-in built", "debian-trixie python3.13 3.13.5", 61.0, None)


def test_what_cannot_be_had_is_a_problem_naming_the_gap_and_the_pull_error(engine):
    fake = engine()
    facts = base_images.ensure(["python:3.12-slim"], fake)["python:3.12-slim"]
    assert facts.how == "unavailable" and fake.scripts == []
    assert facts.problem.startswith("python:3.12-slim: Debian has Python 3.11 (bookworm) and 3.13 (trixie), not 3.12")
    assert "(pull: " in facts.problem and "no such host" in facts.problem


def test_a_failed_stand_in_build_shows_its_output(engine):
    facts = base_images.ensure(["python:3.13-slim"], engine(script_ok=False))["python:3.13-slim"]
    assert "the stand-in build failed (setup/base-images.sh python:3.13-slim, exit 1)" in facts.problem
    assert "apt-get failed for python3.13" in facts.problem


def test_modes(engine):
    fake = engine()
    official = base_images.ensure(["node:20-slim"], fake, mode="official")["node:20-slim"]
    assert "stand-ins are off (--base-images official)" in official.problem and fake.scripts == []
    fake = engine()
    base_images.ensure(["node:20-slim"], fake, mode="stand-in")
    assert fake.pulls == [] and len(fake.scripts) == 1
    with pytest.raises(ValueError, match="expected auto, official or stand-in"):
        base_images.ensure([], fake, mode="local")


# --- the build's preparation (images.prepare_bases) ------------------------------------------------
def _component(tmp_path, text: str):
    from types import SimpleNamespace
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(text)
    return SimpleNamespace(name="web", dockerfile=dockerfile, context=tmp_path)


ALPINE_APK = "FROM node:20-alpine\nRUN apk add --no-cache libc6-compat\nUSER node\n"


def test_apk_on_an_alpine_stand_in_stops_the_build_with_the_alpine_fix(engine, tmp_path):
    from shipcheck import images
    fake = engine(present={"node:20-alpine": {base_images.STAND_IN_LABEL: "debian-trixie nodejs 20.19.2"}})
    bases, problem = images.prepare_bases(_component(tmp_path, ALPINE_APK), {}, fake)
    assert problem.startswith(base_images.ALPINE_FIX + ". apk runs at line 2 (stage 0 (line 1), on node:20-alpine)")
    assert "stand-in built from Debian (debian-trixie nodejs 20.19.2), which has no apk" in problem


def test_apk_on_the_official_alpine_is_fine(engine, tmp_path):
    from shipcheck import images
    official = engine(present={"node:20-alpine": None})
    bases, problem = images.prepare_bases(_component(tmp_path, ALPINE_APK), {}, official)
    assert problem is None and bases["node:20-alpine"].official


def test_build_args_choose_the_bases_prepared(engine, tmp_path):
    from shipcheck import images
    fake = engine(present={"python:3.11-slim": None})
    component = _component(tmp_path, "ARG PY=python:3.13-slim\nFROM ${PY}\n")
    bases, problem = images.prepare_bases(component, {"PY": "python:3.11-slim"}, fake)
    assert list(bases) == ["python:3.11-slim"] and problem is None


def test_a_dockerfile_the_parser_cannot_read_is_left_to_buildkit(engine, tmp_path):
    from shipcheck import images
    assert images.prepare_bases(_component(tmp_path, "ARG X\nFROM $X\n"), {}, engine()) == ({}, None)
