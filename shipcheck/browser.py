"""A real browser on the deployed app: headless Chromium (Debian's package) renders the page
with JavaScript, for the rendered DOM and a screenshot; and what a browser check asks of
that DOM: a text a reader sees, an element a simple CSS selector finds.

The DOM is read with the standard library's html.parser. Chromium's `--dump-dom` writes
the serialised DOM (every element closed, void elements bare), so a small tree builder is
enough; no HTML5 parser dependency for a handful of selectors.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from . import commands

# Flags for a closed network: without the background-networking ones Chromium keeps
# trying to reach Google's hosts.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,900", "--virtual-time-budget=8000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no Chromium: install Debian's `chromium` package (the set-up does: setup/setup.sh)")


def render(url: str, timeout_s: float = 120) -> tuple[str, str]:
    """(rendered DOM, screenshot as base64 PNG) of `url` after its scripts ran.

    One Chromium run writes both (Chromium 156 honours --dump-dom and --screenshot
    together: half the time of two runs, and the screenshot shows the very DOM checked);
    an older Chromium that writes only the DOM is run once more for the screenshot."""
    exe = chromium()
    with tempfile.TemporaryDirectory(prefix="shipcheck-chromium-") as tmp:
        shot = Path(tmp) / "page.png"
        argv = [exe, *FLAGS, "--user-data-dir=" + str(Path(tmp) / "profile")]
        dom = commands.run([*argv, "--dump-dom", f"--screenshot={shot}", url], timeout_s=timeout_s,
                           what=f"rendering {url}").stdout
        if not shot.exists():
            commands.run([*argv, f"--screenshot={shot}", url], timeout_s=timeout_s, what=f"screenshot of {url}")
        return dom, base64.b64encode(shot.read_bytes()).decode()


# --- the DOM, pure --------------------------------------------------------------------------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
# Text inside these is not what a reader sees (a framework's JSON payload in a <script> may
# hold the very text the page failed to show).
HIDDEN_TEXT = {"script", "style", "template", "noscript", "head", "title"}


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str]
    parent: "Element | None" = None
    children: list["Element"] = field(default_factory=list)

    def __repr__(self) -> str:
        shown = "".join(f' {k}="{v}"' if v else f" {k}" for k, v in self.attrs.items())
        return f"<{self.tag}{shown}>"


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.open = [self.root]
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.text.append(" ")  # a tag is a word boundary; text between tags is kept whole
        element = Element(tag, {k: v or "" for k, v in attrs}, self.open[-1])
        self.open[-1].children.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_startendtag(self, tag, attrs):  # <br/>, <svg .../>: no children
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.open.pop()

    def handle_endtag(self, tag):
        self.text.append(" ")
        for i in range(len(self.open) - 1, 0, -1):  # close up to the matching open element, if any
            if self.open[i].tag == tag:
                del self.open[i:]
                return

    def handle_data(self, data):
        if not any(e.tag in HIDDEN_TEXT for e in self.open):
            self.text.append(data)


@dataclass
class Document:
    root: Element
    text: str  # the visible text, whitespace collapsed

    @classmethod
    def parse(cls, html: str) -> "Document":
        builder = _TreeBuilder()
        builder.feed(html)
        builder.close()
        return cls(builder.root, collapse("".join(builder.text)))

    def elements(self) -> list[Element]:
        found, stack = [], list(reversed(self.root.children))
        while stack:
            element = stack.pop()
            found.append(element)
            if element.tag != "template":  # its content is not part of the document (as for querySelector)
                stack.extend(reversed(element.children))
        return found

    def select(self, selector: str) -> list[Element]:
        """Elements matching `selector`, in document order."""
        parsed = parse_selector(selector)
        return [e for e in self.elements() if any(_matches(e, chain) for chain in parsed)]

    def contains_text(self, text: str) -> bool:
        return collapse(text) in self.text


def collapse(text: str) -> str:
    return " ".join(text.split())


# --- selectors: a simple subset of CSS --------------------------------------------------------
class SelectorError(ValueError):
    pass


SUPPORTED = 'tag, #id, .class, [attr], [attr="value"], combined as tag.class[attr="value"], a descendant (space) or a list (comma)'
_NAME = r"[A-Za-z_][-A-Za-z0-9_]*"
_ATTR = r"[A-Za-z_][-A-Za-z0-9_:]*"  # xlink:href
_PART = re.compile(rf"""
    (?P<tag>{_NAME}|\*)
  | \#(?P<id>-?{_NAME})
  | \.(?P<cls>-?{_NAME})
  | \[\s*(?P<attr>{_ATTR})\s*(?:=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[-A-Za-z0-9_]+))\s*)?\]
""", re.VERBOSE)


@dataclass(frozen=True)
class Compound:
    """One element's conditions: tag, id, classes, attributes (name -> value or None for presence)."""
    tag: str | None = None
    id: str | None = None
    classes: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str | None], ...] = ()


def _compound(text: str, whole: str) -> Compound:
    tag, id_, classes, attrs, pos = None, None, [], [], 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match or (match.group("tag") and pos > 0):
            raise SelectorError(f"selector {whole!r}: cannot read {text[pos:]!r}; supported: {SUPPORTED}")
        if match.group("tag"):
            tag = None if match.group("tag") == "*" else match.group("tag").lower()
        elif match.group("id"):
            id_ = match.group("id")
        elif match.group("cls"):
            classes.append(match.group("cls"))
        else:
            value = next((v for v in (match.group("dq"), match.group("sq"), match.group("bare")) if v is not None), None)
            attrs.append((match.group("attr").lower(), value))
        pos = match.end()
    return Compound(tag, id_, tuple(classes), tuple(attrs))


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, current, quote = [], "", None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif (char.isspace() if sep == " " else char == sep):
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def parse_selector(selector: str) -> list[tuple[Compound, ...]]:
    """A list (comma) of descendant chains (space) of compound selectors; raises
    SelectorError naming what is supported for anything else (>, +, ~, :pseudo)."""
    if not isinstance(selector, str) or not selector.strip():
        raise SelectorError(f"selector {selector!r} is empty; supported: {SUPPORTED}")
    chains = []
    for alternative in _split_outside_quotes(selector, ","):
        parts = [p for p in _split_outside_quotes(alternative.strip(), " ") if p]
        if not parts:
            raise SelectorError(f"selector {selector!r}: an empty alternative; supported: {SUPPORTED}")
        chains.append(tuple(_compound(p, selector) for p in parts))
    return chains


def _matches_compound(element: Element, c: Compound) -> bool:
    if c.tag and element.tag != c.tag:
        return False
    if c.id is not None and element.attrs.get("id") != c.id:
        return False
    if c.classes and not set(c.classes) <= set(element.attrs.get("class", "").split()):
        return False
    return all(name in element.attrs and (value is None or element.attrs[name] == value) for name, value in c.attrs)


def _matches(element: Element, chain: tuple[Compound, ...]) -> bool:
    """The last compound matches the element, each earlier one some ancestor, in order."""
    if not _matches_compound(element, chain[-1]):
        return False
    ancestor, rest = element.parent, list(chain[:-1])
    while rest and ancestor is not None:
        if _matches_compound(ancestor, rest[-1]):
            rest.pop()
        ancestor = ancestor.parent
    return not rest


def select(html: str, selector: str) -> list[Element]:
    return Document.parse(html).select(selector)


def dom_problems(dom: str, expect_text: str | None = None, expect_selector: str | None = None) -> list[str]:
    """What the rendered DOM lacks of what a browser check expects (empty: all found)."""
    document = Document.parse(dom)
    problems = []
    if expect_text is not None and not document.contains_text(expect_text):
        problems.append(f"no visible text {collapse(expect_text)!r}")
    if expect_selector is not None and not document.select(expect_selector):
        problems.append(f"no element matching {expect_selector!r}")
    return problems
