"""Base images a Dockerfile needs, and Debian-built stand-ins for them where no registry answers.

Pure (unit-tested): `parse` reads a Dockerfile's FROM lines (ARG defaults, build-arg
overrides, stage names, `scratch`, `COPY --from=<image>`) into the external images a
build of its target needs, and finds `apk` in RUN steps of stages built on Alpine;
`recipe` maps an official image name to the stand-in that can replace it here, or says
why none can (`NoStandIn`).

Impure: `ensure(refs, docker_client)` makes every base present in the engine: already
there, pulled from a registry, or a stand-in built by setup/base-images.sh under the
official name (so an unmodified `FROM python:3.13-slim` resolves to it). Its facts say,
per image, whether the build used the official image or a stand-in, and what that is
made of; the report names them.

Run as `python3 -m shipcheck.base_images recipe REF` it prints a recipe for the set-up
script (KEY=VALUE lines), so the mapping lives in one place.
"""

from __future__ import annotations

import re
import shlex
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import commands, progress

STAND_IN_LABEL = "io.shipcheck.stand-in"          # "debian-trixie python3.13 3.13.5"
STAND_IN_FOR_LABEL = "io.shipcheck.stand-in.for"  # the official name it answers to
SCRIPT = Path(__file__).resolve().parents[1] / "setup" / "base-images.sh"
BUILD_TIMEOUT_S = 900   # debootstrap, apt and an import: about a minute here, more on a slow mirror
ALPINE_FIX = ("the Dockerfile runs apk (Alpine) and no registry is reachable: use a registry or a "
              "Debian-based base (node:20-slim)")

# Which versions Debian carries, in which release: the only stand-ins that can be made here.
PYTHON_SUITES = {"3.11": "bookworm", "3.13": "trixie"}
NODE_SUITES = {"18": "bookworm", "20": "trixie"}
DEBIAN_SUITES = {"bookworm": "bookworm", "12": "bookworm", "trixie": "trixie", "13": "trixie"}
NODE_CODENAMES = {"hydrogen": "18", "iron": "20"}
DEBIAN_NAMES = ("bookworm", "trixie", "bullseye", "buster", "sid", "forky")

# Predefined platform build args (BuildKit sets them in the global scope).
PLATFORM_ARGS = {"TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64", "TARGETVARIANT": "",
                 "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": ""}


# --- image references -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRef:
    registry: str          # "docker.io" for Docker Hub
    path: str              # "library/python"
    tag: str               # "latest" when none is written
    digest: str | None

    @property
    def library_name(self) -> str | None:
        """`python` for Docker Hub's official `python` image, else None."""
        if self.registry == "docker.io" and self.path.startswith("library/") and self.path.count("/") == 1:
            return self.path.split("/", 1)[1]
        return None


def parse_ref(ref: str) -> ImageRef:
    name, _, digest = ref.partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", name
    last = path.rsplit("/", 1)[-1]
    tag = "latest"
    if ":" in last:
        path, _, tag = path.rpartition(":")
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return ImageRef(registry, path.lower(), tag, digest or None)


def is_alpine(ref: str) -> bool:
    parsed = parse_ref(ref)
    return parsed.path.rsplit("/", 1)[-1] == "alpine" or "alpine" in parsed.tag


# --- Dockerfile parsing ---------------------------------------------------------------------------
class DockerfileError(ValueError):
    """The Dockerfile cannot be read for its base images (the message names the line)."""


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    line: int                               # of its FROM
    image: str | None                       # the external image it starts from (None: scratch or a stage)
    parent: int | None                      # the earlier stage it starts from
    copies_from: tuple[str, ...] = ()       # external images named by COPY --from / RUN --mount from=
    uses_stages: tuple[int, ...] = ()       # earlier stages named the same way
    runs: tuple[tuple[int, str], ...] = ()  # (line, command) of each RUN

    @property
    def label(self) -> str:
        return f"stage {self.name or self.index} (line {self.line})"


@dataclass(frozen=True)
class ApkUse:
    stage: Stage
    line: int
    image: str        # the Alpine image the stage is built on

    def __str__(self) -> str:
        return f"line {self.line} ({self.stage.label}, on {self.image})"


@dataclass(frozen=True)
class Dockerfile:
    stages: tuple[Stage, ...]
    target: int       # the stage a build produces: --target, else the last

    def needed(self) -> list[Stage]:
        """The stages a BuildKit build of the target runs (it skips the others)."""
        seen: set[int] = set()
        todo = [self.target]
        while todo:
            index = todo.pop()
            if index in seen:
                continue
            seen.add(index)
            stage = self.stages[index]
            todo += ([stage.parent] if stage.parent is not None else []) + list(stage.uses_stages)
        return [s for s in self.stages if s.index in seen]

    def images(self) -> list[str]:
        """The external images the build needs, in the order the Dockerfile names them."""
        found: list[str] = []
        for stage in self.needed():
            found += ([stage.image] if stage.image else []) + list(stage.copies_from)
        return list(dict.fromkeys(found))

    def root_image(self, stage: Stage) -> str | None:
        while stage.image is None and stage.parent is not None:
            stage = self.stages[stage.parent]
        return stage.image

    def apk_uses(self) -> list[ApkUse]:
        """RUN steps calling apk in stages (of the build) built on an Alpine image."""
        uses = []
        for stage in self.needed():
            image = self.root_image(stage)
            if image and is_alpine(image):
                uses += [ApkUse(stage, line, image) for line, command in stage.runs if _APK.search(command)]
        return uses


_APK = re.compile(r"(?:^|[\s;&|(`])(?:/sbin/)?apk\s+(?:-{1,2}[\w-]+(?:=\S+)?\s+)*"
                  r"(?:add|del|update|upgrade|info|fix|cache|search|fetch|version)\b")
_VAR = re.compile(r"(?<!\\)\$(?:\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
                  r"|(?P<plain>[A-Za-z_]\w*))")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][\w.-]*)\2")


def expand(text: str, values: dict[str, str | None]) -> str:
    """Docker's variable substitution: $X, ${X}, ${X:-word}, ${X-word}, ${X:+word}, ${X+word}."""
    def sub(match: re.Match) -> str:
        name = match["braced"] or match["plain"]
        value, op, word = values.get(name), match["op"], match["word"] or ""
        if op == ":-":
            return value if value else expand(word, values)
        if op == "-":
            return value if value is not None else expand(word, values)
        if op == ":+":
            return expand(word, values) if value else ""
        if op == "+":
            return expand(word, values) if value is not None else ""
        return value or ""
    return _VAR.sub(sub, text)


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) per logical line: continuations joined, comments dropped,
    heredoc bodies appended to their instruction's arguments."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:  # parser directives come first: `# escape=``
        directive = re.match(r"\s*#\s*(\w+)\s*=\s*(\S+)\s*$", line)
        if not directive:
            break
        if directive[1].lower() == "escape":
            escape = directive[2]
    out: list[tuple[int, str, str]] = []
    i = 0
    while i < len(lines):
        start, line = i + 1, lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = []
        while True:
            stripped = line.rstrip()
            if stripped.endswith(escape):
                parts.append(stripped[: -len(escape)])
                while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1  # comments and empty lines inside a continuation are skipped
                if i >= len(lines):
                    break
                line = lines[i]
                i += 1
            else:
                parts.append(line)
                break
        logical = " ".join(p.strip() for p in parts)
        match = re.match(r"([A-Za-z]+)\s*(.*)$", logical, re.S)
        if not match:
            raise DockerfileError(f"line {start}: cannot read `{logical[:60]}`")
        keyword, args = match[1].upper(), match[2]
        if keyword in ("RUN", "COPY", "ADD"):
            for strip_tabs, _, delimiter in _HEREDOC.findall(args):
                body = []
                while i < len(lines):
                    row = lines[i].lstrip("\t") if strip_tabs else lines[i]
                    i += 1
                    if row == delimiter:
                        break
                    body.append(row)
                args += "\n" + "\n".join(body)
        out.append((start, keyword, args))
    return out


def _words(args: str) -> list[str]:
    try:
        return shlex.split(args, comments=False)
    except ValueError:  # an unbalanced quote: whitespace is good enough to find names
        return args.split()


def parse(text: str, build_args: dict[str, str] | None = None, target: str | None = None) -> Dockerfile:
    """The stages of a Dockerfile as a BuildKit build with these build args sees them."""
    build_args = build_args or {}
    global_args: dict[str, str | None] = dict(PLATFORM_ARGS)
    stage_args: dict[str, str | None] = {}
    stages: list[dict] = []
    names: dict[str, int] = {}

    def declare(args: str, scope: dict[str, str | None], visible: dict[str, str | None]) -> None:
        for word in _words(args):
            name, eq, default = word.partition("=")
            if name in build_args:
                scope[name] = build_args[name]
            elif eq:
                scope[name] = expand(default, {**visible, **scope})
            else:
                scope[name] = global_args.get(name) if scope is not global_args else None

    def stage_ref(value: str, line: int) -> int | str:
        """A stage index for a stage name or number, else the value as an image."""
        if value.lower() in names:
            return names[value.lower()]
        if value.isdigit():
            if int(value) >= len(stages):
                raise DockerfileError(f"line {line}: --from={value} names a stage that does not exist yet")
            return int(value)
        return value

    for line, keyword, args in _instructions(text):
        if keyword == "ARG":
            if stages:
                declare(args, stage_args, global_args)
            else:
                declare(args, global_args, global_args)
        elif keyword == "FROM":
            words = [w for w in expand(args, global_args).split() if not w.startswith("--")]
            if not words:
                raise DockerfileError(f"line {line}: FROM names no image after expanding its build args ({args}): "
                                      "set the build arg, or give the ARG a default")
            image, name = words[0], None
            if len(words) >= 3 and words[1].lower() == "as":
                name = words[2].lower()
            ref = stage_ref(image, line) if image.lower() in names else image
            stage = {"index": len(stages), "name": name, "line": line, "image": None, "parent": None,
                     "copies_from": [], "uses_stages": [], "runs": []}
            if isinstance(ref, int):
                stage["parent"] = ref
            elif ref.lower() != "scratch":
                stage["image"] = ref
            stages.append(stage)
            if name:
                names[name] = stage["index"]
            stage_args = {}
        elif not stages:
            if keyword not in ("ARG",):
                raise DockerfileError(f"line {line}: {keyword} before the first FROM")
        else:
            current = stages[-1]
            visible = {**global_args, **stage_args}
            sources = []
            if keyword == "COPY":
                sources = [expand(w.split("=", 1)[1], visible) for w in args.split() if w.startswith("--from=")]
            elif keyword == "RUN":
                current["runs"].append((line, args))
                for mount in re.findall(r"--mount=(\S+)", args):
                    sources += [expand(kv[5:], visible) for kv in mount.split(",") if kv.startswith("from=")]
            for source in sources:
                ref = stage_ref(source, line)
                (current["uses_stages"] if isinstance(ref, int) else current["copies_from"]).append(ref)
    if not stages:
        raise DockerfileError("no FROM line: not a Dockerfile")
    frozen = tuple(Stage(s["index"], s["name"], s["line"], s["image"], s["parent"], tuple(s["copies_from"]),
                         tuple(s["uses_stages"]), tuple(s["runs"])) for s in stages)
    if target is None:
        chosen = len(frozen) - 1
    elif target.lower() in names:
        chosen = names[target.lower()]
    else:
        raise DockerfileError(f"target {target!r} is not a stage of the Dockerfile "
                              f"(named stages: {', '.join(names) or 'none'})")
    return Dockerfile(frozen, chosen)


# --- stand-in recipes -----------------------------------------------------------------------------
class NoStandIn(ValueError):
    """No stand-in can be made here for this image; the message says why and what to use."""


@dataclass(frozen=True)
class Recipe:
    ref: str          # the official name, as written
    kind: str         # debian | python | node
    suite: str        # the Debian release it is built from
    version: str      # "3.13", "20", "trixie"
    alpine: bool      # an Alpine name: no apt, busybox applets, alpine-style adduser/addgroup
    note: str = ""    # a difference from the official image worth telling

    def shell(self) -> str:
        return f"KIND={self.kind}\nSUITE={self.suite}\nVERSION={self.version}\nALPINE={int(self.alpine)}\n"


_VERSIONED = re.compile(r"^(?P<version>\d+(?:\.\d+){0,2})(?:-(?P<variant>.+))?$")
_REGISTRY_FIX = "or a machine with a registry"


def _variant(ref: str, variant: str | None) -> tuple[bool, str | None]:
    """(alpine, the Debian release the tag names) for a tag's variant part, e.g. slim-bookworm."""
    if not variant:
        return False, None
    parts = variant.split("-")
    alpine = any(p.startswith("alpine") for p in parts)
    suites = [p for p in parts if p in DEBIAN_NAMES]
    unknown = [p for p in parts if p != "slim" and not p.startswith("alpine") and p not in DEBIAN_NAMES]
    if unknown:
        raise NoStandIn(f"{ref}: no stand-in for the variant {variant!r} (stand-ins come in the slim, full and "
                        f"alpine variants): use one of those, {_REGISTRY_FIX}")
    return alpine, (suites[0] if suites else None)


def _suite_note(ref: str, what: str, wanted: str | None, suite: str) -> str:
    if wanted and wanted != suite:
        if wanted not in ("bookworm", "trixie"):
            raise NoStandIn(f"{ref}: stand-ins are built from Debian bookworm and trixie only, not {wanted}: "
                            f"use a trixie or bookworm tag, {_REGISTRY_FIX}")
        return f"Debian {wanted} has no {what}: the stand-in is built from {suite}"
    return ""


def recipe(ref: str) -> Recipe:
    """The stand-in that can replace `ref` here, or NoStandIn saying why none can."""
    parsed = parse_ref(ref)
    if parsed.digest:
        raise NoStandIn(f"{ref}: pinned by digest, which an image built here cannot match: drop the "
                        f"@{parsed.digest.split(':')[0]}:... part, {_REGISTRY_FIX}")
    name, tag = parsed.library_name, parsed.tag
    if name == "python":
        return _python(ref, tag)
    if name == "node":
        return _node(ref, tag)
    if name == "debian":
        return _debian(ref, tag)
    if name == "alpine":
        raise NoStandIn(f"{ref}: no stand-in for Alpine itself (its packages come from apk, which has no "
                        f"equivalent here): use debian:trixie-slim, {_REGISTRY_FIX}")
    raise NoStandIn(f"{ref}: not in the engine, no registry answers, and no stand-in exists for it (stand-ins: "
                    f"python:3.11 and 3.13, node:18 and 20, debian:bookworm and trixie; slim, full and alpine "
                    f"variants): use one of those, {_REGISTRY_FIX}")


def _debian_suite(ref: str, variant: str | None, runtime: str, suite: str | None, unknown: str
                  ) -> tuple[str, bool, str]:
    """The Debian suite that packages `runtime` (None: none does, `unknown` says what to do),
    whether the tag asked for Alpine, and the note on what the stand-in differs in."""
    if suite is None:
        raise NoStandIn(f"{ref}: {unknown}, {_REGISTRY_FIX}")
    alpine, wanted = _variant(ref, variant)
    return suite, alpine, _suite_note(ref, runtime, wanted, suite)


def _python(ref: str, tag: str) -> Recipe:
    match = _VERSIONED.match(tag)
    if not match or match["version"].count(".") == 0:
        raise NoStandIn(f"{ref}: the tag names no Python major.minor version (it moves with each release): pin one "
                        f"Debian has, python:3.13-slim (trixie) or python:3.11-slim (bookworm), {_REGISTRY_FIX}")
    version = ".".join(match["version"].split(".")[:2])
    suite, alpine, note = _debian_suite(ref, match["variant"], f"Python {version}", PYTHON_SUITES.get(version),
                                        f"Debian has Python 3.11 (bookworm) and 3.13 (trixie), not {version}: "
                                        f"use one of those")
    notes = [note]
    if match["version"].count(".") == 2:
        notes.append(f"the patch release is Debian's, not {match['version']}")
    if not match["variant"]:
        notes.append("built like the slim variant: the full image's compilers are not in it (apt-get install them)")
    return Recipe(ref, "python", suite, version, alpine, "; ".join(n for n in notes if n))


def _node(ref: str, tag: str) -> Recipe:
    head, _, rest = tag.partition("-")
    if head in NODE_CODENAMES:
        tag = NODE_CODENAMES[head] + (f"-{rest}" if rest else "")
    match = _VERSIONED.match(tag)
    if not match:
        raise NoStandIn(f"{ref}: the tag names no Node.js major version (it moves with each release): pin one "
                        f"Debian has, node:20-slim (trixie) or node:18-slim (bookworm), {_REGISTRY_FIX}")
    major = match["version"].split(".")[0]
    suite, alpine, note = _debian_suite(ref, match["variant"], f"Node.js {major}", NODE_SUITES.get(major),
                                        f"Debian has Node.js 18 (bookworm) and 20 (trixie), not {major}: "
                                        f"use node:20-slim or node:20-alpine")
    notes = [note]
    if "." in match["version"]:
        notes.append(f"the release is Debian's, not {match['version']}")
    return Recipe(ref, "node", suite, major, alpine, "; ".join(n for n in notes if n))


def _debian(ref: str, tag: str) -> Recipe:
    release, _, variant = tag.partition("-")
    release = release.split(".")[0]  # 12.11 -> 12
    if release not in DEBIAN_SUITES or variant not in ("", "slim"):
        raise NoStandIn(f"{ref}: stand-ins are built from Debian bookworm (12) and trixie (13) only: use "
                        f"debian:trixie-slim or debian:bookworm-slim, {_REGISTRY_FIX}")
    suite = DEBIAN_SUITES[release]
    return Recipe(ref, "debian", suite, suite, False)


# --- making bases present (impure) ----------------------------------------------------------------
@dataclass(frozen=True)
class BaseFacts:
    """How one base image was had for a build."""
    ref: str
    how: str                    # "engine" (already there), "pulled", "stand-in built", "unavailable"
    stand_in: str | None = None  # what the stand-in is made of ("debian-trixie python3.13 3.13.5"); None: official
    image_id: str | None = None
    seconds: float = 0.0
    problem: str | None = None   # why the build cannot have it (then it cannot build)
    note: str = ""

    @property
    def official(self) -> bool:
        return self.problem is None and self.stand_in is None

    def describe(self) -> str:
        if self.problem:
            return f"{self.ref}: unavailable"
        if self.stand_in:
            return f"{self.ref}: stand-in ({self.stand_in})"
        return f"{self.ref}: official"


_lock = threading.Lock()  # builds run in parallel; one base is made once, one at a time (2 cores)


def _inspect(client, ref: str):
    import docker.errors
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _facts(ref: str, image, how: str, seconds: float = 0.0, note: str = "") -> BaseFacts:
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return BaseFacts(ref, how, labels.get(STAND_IN_LABEL), image.id, round(seconds, 1), note=note)


def ensure(refs, docker_client, mode: str = "auto") -> dict[str, BaseFacts]:
    """Make each base image present in the engine, and say how.

    auto: the engine's copy, else a pull, else a stand-in under the official name;
    official: never a stand-in; stand-in: no pull attempt (a stand-in when absent).
    """
    if mode not in ("auto", "official", "stand-in"):
        raise ValueError(f"base image mode {mode!r}: expected auto, official or stand-in")
    facts = {}
    with _lock:
        for ref in dict.fromkeys(refs):
            facts[ref] = _ensure_one(ref, docker_client, mode)
    return facts


def _ensure_one(ref: str, client, mode: str) -> BaseFacts:
    image = _inspect(client, ref)
    if image is not None:
        return _facts(ref, image, "engine")
    pull_error = "not tried (--base-images stand-in)"
    if mode != "stand-in":
        start = time.monotonic()
        progress.say(f"base image {ref}: not in the engine, pulling")
        try:
            client.images.pull(ref)
            image = _inspect(client, ref)
            if image is not None:
                return _facts(ref, image, "pulled", time.monotonic() - start)
        except Exception as exc:  # the SDK raises several kinds; all mean "not from a registry"
            pull_error = str(exc).splitlines()[0][:200]
        progress.say(f"base image {ref}: pull failed ({pull_error})")
    if mode == "official":
        return BaseFacts(ref, "unavailable", problem=f"{ref}: not in the engine and the pull failed ({pull_error}); "
                         "stand-ins are off (--base-images official): use a registry, or --base-images auto")
    try:
        plan = recipe(ref)
    except NoStandIn as exc:
        return BaseFacts(ref, "unavailable", problem=f"{exc} (pull: {pull_error})")
    progress.say(f"base image {ref}: building a stand-in from Debian {plan.suite}"
                 + (f" ({plan.note})" if plan.note else ""))
    start = time.monotonic()
    result = commands.run(["bash", str(SCRIPT), ref], check=False, timeout_s=BUILD_TIMEOUT_S,
                          on_line=lambda line: progress.say(f"[{ref}] {line}"))
    image = _inspect(client, ref) if result.ok else None
    if image is None:
        return BaseFacts(ref, "unavailable", problem=f"{ref}: the stand-in build failed (setup/base-images.sh "
                         f"{ref}, exit {result.rc}):\n{result.tail(15, both=True)}")
    progress.say(f"base image {ref}: stand-in built in {result.duration_s:.0f} s")
    return _facts(ref, image, "stand-in built", result.duration_s, plan.note)


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "recipe":
        try:
            sys.stdout.write(recipe(argv[1]).shell())
            return 0
        except NoStandIn as exc:
            print(exc, file=sys.stderr)
            return 2
    print("usage: python3 -m shipcheck.base_images recipe REF", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
