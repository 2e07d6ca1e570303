"""Reading the JUnit report of an inner pytest run (pytester): each test's outcome, its
failure or skip text, and its system-out (where the attached diagnostics land)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Case:
    outcome: str  # passed | failed | error | skipped
    text: str  # failure or skip message and traceback
    system_out: str  # JUnit system-out: the attached diagnostics' text
    seconds: float


def parse(path: Path) -> dict[str, Case]:
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                text = f"{child.get('message', '')}\n{child.text or ''}"
                break
        out = "\n".join(child.text or "" for child in case if child.tag == "system-out")
        cases[case.get("name")] = Case(outcome, text, out, float(case.get("time") or 0))
    return cases
