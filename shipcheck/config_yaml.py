"""Reading the configuration's YAML without ever raising anything but `YamlError`.

A plain `yaml.safe_load` silently keeps the last of two equal keys, follows aliases into
cycles or exponential expansions, and surfaces raw tracebacks for a directory, a binary
file or a `!!python/...` tag. Each of those becomes one message here that names the file
(or the `--set` item), the line and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1_000_000  # a configuration is a few kB; anything near this is not one
MAX_NODES = 100_000  # after alias expansion: stops "billion laughs" before it costs memory
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(ValueError):
    """The text is not a configuration document; the message says where and why. `syntax`:
    the text is not plain YAML at all (quoting it as a string may be the fix)."""

    def __init__(self, message: str, syntax: bool = False):
        super().__init__(message)
        self.syntax = syntax


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's when present: same rules, 5x faster
    """SafeLoader (plain data only: no `!!python/...` tags), composed first so the node tree
    can be checked (duplicate keys, cycles, size) before anything is constructed."""


def dotted(path: list) -> str:
    """['checks', 2, 'request', 'path'] -> 'checks[2].request.path'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "configuration"


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Refuse duplicate keys, recursive aliases and documents that expand past MAX_NODES."""
    visits = 0
    stack: list[tuple[yaml.Node, list, tuple[int, ...]]] = [(root, [], ())]
    while stack:
        node, path, ancestors = stack.pop()
        visits += 1
        if visits > MAX_NODES:
            raise YamlError(f"{source}: expands to more than {MAX_NODES} values (YAML aliases?); write it out plainly")
        if id(node) in ancestors:
            raise YamlError(f"{dotted(path)}: a YAML alias in {source} refers to a value that contains it "
                            "(a cycle); write the value out")
        inside = ancestors + (id(node),)
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    key, line = key_node.value, key_node.start_mark.line + 1
                    if key in first_line:
                        raise YamlError(f"{dotted(path + [key])}: key {key!r} appears twice at line {line} of {source} "
                                        f"(first at line {first_line[key]}); YAML would keep only the last: remove one")
                    first_line[key] = line
                    stack.append((value_node, path + [key], inside))
                else:
                    stack.append((value_node, path + ["?"], inside))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, path + [i], inside) for i, item in enumerate(node.value))


def _describe(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return (f"not valid YAML: character U+{exc.character:04X} at offset {exc.position} is not allowed "
                "(control characters); remove it")
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    prefix = "could not determine a constructor for the tag "
    if problem.startswith(prefix):
        tag = problem[len(prefix):].strip("'").replace("tag:yaml.org,2002:", "!!")
        return f"YAML tags such as {tag} are not allowed (plain data only)"
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"not valid YAML{where}: {problem}" + (f" ({context})" if context else "")


def parse(text: str, source: str) -> Any:
    """The document in `text` (None when empty); `source` (the file, or the --set item) is
    named in every YamlError."""
    loader = None
    try:
        loader = _Loader(text)  # its reader refuses control characters right away
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlError(f"{source}: {_describe(exc)}", syntax=True) from None
    except RecursionError:
        raise YamlError(f"{source}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def read(path: Path) -> Any:
    """The document in the file at `path`; every problem with the file is a YamlError."""
    if not path.exists():
        raise YamlError(f"configuration file {path} does not exist (set --shipcheck-config or SHIPCHECK_CONFIG)")
    if path.is_dir():
        raise YamlError(f"configuration file {path} is a directory; give the file, e.g. {path / 'shipcheck.yaml'}")
    if not path.is_file():
        raise YamlError(f"configuration file {path} is not a regular file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise YamlError(f"configuration file {path}: {size} bytes, more than a configuration ({MAX_BYTES} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise YamlError(f"configuration file {path}: cannot read it: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"configuration file {path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start}); save it as UTF-8") from None
    return parse(text.removeprefix("\ufeff"), str(path))
