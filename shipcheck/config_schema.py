"""The configuration's JSON Schema (shipcheck.schema.json): validation messages that name the
dotted field and the rule, and the README's field table, both read from the one schema.

Two annotations of our own ride in the schema: `x-rule`, the sentence shipcheck says when a
value breaks a rule (a string, or a map keyword -> sentence), and `x-default`, a default
that is computed rather than literal ("the component name").
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
from functools import cache
from pathlib import Path
from typing import Any, Iterator

from .config_yaml import dotted

SCHEMA_PATH = Path(__file__).with_name("shipcheck.schema.json")
_TYPE_WORDS = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}
# Keywords whose message is built here whatever a string x-rule says (it is about the value).
_OWN_MESSAGE = ("type", "required", "additionalProperties")


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _validator():
    from jsonschema import Draft202012Validator  # imported on first use: `validate` stays fast

    return Draft202012Validator(schema())


# --- messages -----------------------------------------------------------------------------
def kind(value: Any) -> str:
    """The YAML reader's word for a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "date"
    return {int: "integer", float: "number", str: "string", dict: "mapping", list: "list"}.get(type(value), "value")


def show(value: Any, limit: int = 60) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"
    text = str(value) if isinstance(value, (datetime.date, datetime.datetime)) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _rule(subschema: dict, keyword: str) -> str | None:
    rule = subschema.get("x-rule")
    if isinstance(rule, dict):
        return rule.get(keyword)
    return rule if keyword not in _OWN_MESSAGE else None


def _bounds(subschema: dict) -> str:
    low, high = subschema.get("minimum"), subschema.get("maximum")
    if low is not None and high is not None:
        return f"must be {low}-{high}"
    if subschema.get("exclusiveMinimum") == 0:
        return "must be positive"
    if low is not None:
        return f"must be at least {low}"
    return f"must be at most {high}" if high is not None else "out of range"


def _messages(error) -> Iterator[str]:
    keyword, subschema, value = error.validator, error.schema, error.instance
    path = list(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path:  # the error is about a key, not its value
        path.append(value)
    where = dotted(path)
    rule = _rule(subschema, keyword)
    got = f", got {show(value)}" if not isinstance(value, (dict, list)) else ""
    hidden = subschema.get("x-hide-value")  # where a pasted secret would land: never echo it
    if hidden:
        got = " (the value is not shown: it may be a secret)"
    if keyword == "type":
        expected = subschema["type"] if isinstance(subschema["type"], list) else [subschema["type"]]
        if "number" in expected and "integer" in expected:
            expected = [t for t in expected if t != "integer"]
        shown = "" if value is None else " (not shown)" if hidden else f" {show(value)}"
        hint = " (quote it)" if "string" in expected and kind(value) in ("integer", "number", "boolean", "date") else ""
        if kind(value) == "boolean" and "string" in expected:
            hint = " (YAML reads yes/no/on/off/true/false as booleans: quote it)"
        yield f"{where}: expected {' or '.join(_TYPE_WORDS[t] for t in expected)}, got {kind(value)}{shown}{hint}"
    elif keyword == "required":
        for name in error.validator_value:
            if name not in value:
                yield f"{dotted(path + [name])}: {rule or 'required field is missing'}"
    elif keyword == "additionalProperties":
        known = list(subschema.get("properties", {}))
        for name in value:
            if name not in known:
                removed = subschema.get("x-removed", {}).get(name)
                if removed:
                    yield f"{dotted(path + [name])}: {removed}"
                    continue
                close = difflib.get_close_matches(str(name), known, n=1)
                maybe = f"; did you mean {close[0]}?" if close else ""
                yield f"{dotted(path + [name])}: unknown key{maybe} (known: {', '.join(known)})"
    elif rule:
        yield f"{where}: {rule}{got}"
    elif keyword == "enum":
        yield f"{where}: must be one of {', '.join(str(v) for v in subschema['enum'])}{got}"
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        yield f"{where}: {_bounds(subschema)}{got}"
    elif keyword == "minLength" and subschema["minLength"] == 1:
        yield f"{where}: must not be empty"
    elif keyword == "maxLength":
        yield f"{where}: must be at most {subschema['maxLength']} characters{got}"
    elif keyword in ("minItems", "minProperties"):
        yield f"{where}: needs at least {error.validator_value} entr{'y' if error.validator_value == 1 else 'ies'}"
    elif keyword == "uniqueItems":
        yield f"{where}: entries must be unique{got or ', got ' + show(value)}"
    elif keyword == "pattern":
        yield f"{where}: must match {subschema['pattern']}{got}"
    elif keyword in ("oneOf", "anyOf") and error.context:
        from jsonschema.exceptions import best_match

        yield from _messages(best_match(error.context))
    else:
        yield f"{where}: {error.message}"


def _unreadable(value: Any, path: list) -> Iterator[str]:
    """What JSON Schema cannot see: keys that are not strings (YAML `on:` is a boolean, `1:` an
    integer) and NaN/infinity (`.nan`, `.inf`), which compare false with every bound."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                yield (f"{dotted(path + [str(key)])}: the key is {kind(key)} {show(key)}, not a string "
                       "(YAML reads yes/no/on/off as booleans and digits as numbers: quote it)")
            else:
                yield from _unreadable(item, path + [key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unreadable(item, path + [i])
    elif isinstance(value, float) and not math.isfinite(value):
        yield f"{dotted(path)}: must be a finite number, got {value}"


def problems(doc: Any) -> list[str]:
    """Every way `doc` breaks the schema, one line each, starting with the dotted field."""
    found = list(dict.fromkeys(_unreadable(doc, [])))
    if found:
        return found  # the schema would misreport these
    try:
        for error in _validator().iter_errors(doc):
            found.extend(m for m in _messages(error) if m not in found)
    except RecursionError:
        return ["configuration: nested too deeply"]
    return found


# --- the README's field table ------------------------------------------------------------
def _resolve(subschema: dict) -> dict:
    """A property's schema with its local $ref merged in (the property's own keys win)."""
    if "$ref" not in subschema:
        return subschema
    target = schema()
    for part in subschema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target), **{k: v for k, v in subschema.items() if k != "$ref"}}


def _type_text(s: dict) -> str:
    if "x-type" in s:
        return s["x-type"]
    if "enum" in s:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" if not isinstance(v, str) else f"`{v}`" for v in s["enum"])
    types = s.get("type")
    if types is None:
        return "any"
    if isinstance(types, list):
        return " or ".join(types)
    if types == "array":
        items = _resolve(s.get("items", {}))
        return "list of " + ("mappings" if "properties" in items else _type_text(items).removeprefix("one of "))
    if types == "object" and isinstance(s.get("additionalProperties"), dict):
        inner = _resolve(s["additionalProperties"])
        return "map of " + ("mappings" if inner.get("properties") or inner.get("type") == "object" else _type_text(inner))
    return "mapping" if types == "object" else types


def _default_text(s: dict, required: bool) -> str:
    if required:
        return "required"
    if "x-default" in s:
        return s["x-default"]
    return f"`{json.dumps(s['default'])}`" if "default" in s else ""


def _rows(s: dict, prefix: str, depth: int = 0) -> Iterator[tuple[str, str, str, str]]:
    for name, prop in s.get("properties", {}).items():
        prop = _resolve(prop)
        field = prefix + name
        yield field, _type_text(prop), _default_text(prop, name in s.get("required", ())), prop.get("description", "")
        yield from _children(prop, field, depth)


def _children(prop: dict, field: str, depth: int) -> Iterator[tuple[str, str, str, str]]:
    if "properties" in prop:
        yield from _rows(prop, field + ".", depth)
    elif prop.get("type") == "array" and "properties" in _resolve(prop.get("items", {})):
        yield from _rows(_resolve(prop["items"]), field + "[].", depth)
    elif isinstance(prop.get("additionalProperties"), dict):
        inner = _resolve(prop["additionalProperties"])
        placeholder = ("NAME", "KEY")[min(depth, 1)]
        if "properties" in inner:
            yield from _rows(inner, f"{field}.{placeholder}.", depth + 1)
        elif isinstance(inner.get("additionalProperties"), dict):
            yield from _children(inner, f"{field}.{placeholder}", depth + 1)


def field_table() -> str:
    """The configuration table of the README, in Markdown, generated from the schema."""
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for field, type_text, default, meaning in _rows(schema(), ""):
        cells = [f"`{field}`", type_text, default, meaning]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
