"""The built-in, deterministic command interpreter used when no OpenRouter key is set
(and as the fallback when the OpenRouter API fails)."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from .tools import run_tool

HELP = (
    "I can manage your tasks. Try:\n"
    "- add buy milk  (add <title>, optionally: add <title> -- <description>)\n"
    "- list  (or: list pending, list completed)\n"
    "- complete 3\n"
    "- delete 3\n"
    "- update 3 buy oat milk"
)

_ID = r"(?:task\s+)?#?(\d+)"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:help|\?|hi|hello)\W*$", re.I), "help"),
    (re.compile(r"^(?:add|create|new)(?:\s+(?:a\s+)?task)?[:\s]\s*(?P<rest>.+)$", re.I | re.S), "add_task"),
    (re.compile(r"^(?:list|show|ls)(?:\s+(?:my\s+)?(?P<status>all|pending|open|todo|completed|done))?(?:\s+tasks?)?\W*$", re.I), "list_tasks"),
    (re.compile(rf"^(?:complete|done|finish|check)\s+{_ID}\W*$", re.I), "complete_task"),
    (re.compile(rf"^(?:delete|remove|rm)\s+{_ID}\W*$", re.I), "delete_task"),
    (re.compile(rf"^(?:update|rename|edit|change)\s+{_ID}\s*[:\s]\s*(?P<rest>.+)$", re.I | re.S), "update_task"),
]

_STATUS = {"pending": "pending", "open": "pending", "todo": "pending", "completed": "completed", "done": "completed"}


def parse(message: str) -> tuple[str, dict[str, Any]] | None:
    """(tool name, arguments) for a command, ("help", {}) for a greeting, None otherwise."""
    text = message.strip()
    for pattern, name in _PATTERNS:
        m = pattern.match(text)
        if not m:
            continue
        if name == "help":
            return name, {}
        if name == "add_task":
            title, _, desc = m.group("rest").partition(" -- ")
            args: dict[str, Any] = {"title": title.strip()}
            if desc.strip():
                args["description"] = desc.strip()
            return name, args
        if name == "list_tasks":
            status = (m.group("status") or "all").lower()
            return name, {"status": _STATUS.get(status, "all")}
        if name == "update_task":
            title, _, desc = m.group("rest").partition(" -- ")
            args = {"task_id": int(m.group(1)), "title": title.strip()}
            if desc.strip():
                args["description"] = desc.strip()
            return name, args
        return name, {"task_id": int(m.group(1))}
    return None


def _line(task: dict[str, Any]) -> str:
    mark = "x" if task.get("completed") else " "
    return f"#{task['id']} [{mark}] {task['title']}"


def describe_result(name: str, result: dict[str, Any]) -> str:
    """A short human reply for one tool result."""
    if "error" in result:
        return f"Sorry, I couldn't do that: {result['error']}."
    task = result.get("task") or {}
    if name == "add_task":
        return f"Added task #{task['id']}: {task['title']}."
    if name == "complete_task":
        return f"Marked task #{task['id']} as completed: {task['title']}."
    if name == "delete_task":
        return f"Deleted task #{task['id']}: {task['title']}."
    if name == "update_task":
        return f"Updated task #{task['id']}: {task['title']}."
    if name == "list_tasks":
        tasks = result.get("tasks", [])
        status = result.get("status", "all")
        kind = "" if status == "all" else f"{status} "
        if not tasks:
            return f"You have no {kind}tasks."
        noun = "task" if len(tasks) == 1 else "tasks"
        return f"You have {len(tasks)} {kind}{noun}:\n" + "\n".join(_line(t) for t in tasks)
    return "Done."


def interpret(session: Session, user_id: str, message: str) -> tuple[str, list[dict[str, Any]]]:
    """Handle one message: (reply text, tool calls made)."""
    parsed = parse(message)
    if parsed is None or parsed[0] == "help":
        return HELP, []
    name, args = parsed
    result = run_tool(session, user_id, name, args)
    return describe_result(name, result), [{"name": name, "arguments": args, "result": result}]
