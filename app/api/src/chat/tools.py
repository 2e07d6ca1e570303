"""The chat tools. Each works on one user's tasks and returns a JSON-safe result;
problems (a missing task, a bad argument) come back as {"error": ...} so a model can
read them, never as exceptions."""

from __future__ import annotations

from typing import Any, Callable

from sqlmodel import Session, select

from ..models import DESCRIPTION_MAX, TITLE_MAX, Task, utcnow

ToolResult = dict[str, Any]


def task_summary(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
    }


def _clean_title(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > TITLE_MAX:
        return None
    return value


def _clean_description(value: Any) -> tuple[bool, str | None]:
    """(ok, cleaned) for an optional description."""
    if value is None:
        return True, None
    if not isinstance(value, str) or len(value.strip()) > DESCRIPTION_MAX:
        return False, None
    return True, value.strip() or None


def _task_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("#").isdigit():
        return int(value.strip().lstrip("#"))
    return None


def _get_task(session: Session, user_id: str, task_id: int) -> Task | None:
    task = session.get(Task, task_id)
    if task is None or task.user_id != user_id:
        return None
    return task


def add_task(session: Session, user_id: str, title: Any = None, description: Any = None, **_: Any) -> ToolResult:
    clean = _clean_title(title)
    if clean is None:
        return {"error": f"a task needs a title of 1 to {TITLE_MAX} characters"}
    ok, desc = _clean_description(description)
    if not ok:
        return {"error": f"the description may have at most {DESCRIPTION_MAX} characters"}
    task = Task(user_id=user_id, title=clean, description=desc)
    session.add(task)
    session.flush()
    return {"status": "created", "task": task_summary(task)}


def list_tasks(session: Session, user_id: str, status: Any = "all", **_: Any) -> ToolResult:
    status = status if status in ("all", "pending", "completed") else "all"
    query = select(Task).where(Task.user_id == user_id)
    if status == "pending":
        query = query.where(Task.completed == False)  # noqa: E712 - SQL expression
    elif status == "completed":
        query = query.where(Task.completed == True)  # noqa: E712
    tasks = session.exec(query.order_by(Task.id)).all()
    return {"status": status, "count": len(tasks), "tasks": [task_summary(t) for t in tasks]}


def complete_task(session: Session, user_id: str, task_id: Any = None, **_: Any) -> ToolResult:
    tid = _task_id(task_id)
    task = _get_task(session, user_id, tid) if tid is not None else None
    if task is None:
        return {"error": f"task {task_id} not found"}
    if not task.completed:
        task.completed = True
        task.updated_at = utcnow()
        session.add(task)
        session.flush()
    return {"status": "completed", "task": task_summary(task)}


def delete_task(session: Session, user_id: str, task_id: Any = None, **_: Any) -> ToolResult:
    tid = _task_id(task_id)
    task = _get_task(session, user_id, tid) if tid is not None else None
    if task is None:
        return {"error": f"task {task_id} not found"}
    summary = task_summary(task)
    session.delete(task)
    session.flush()
    return {"status": "deleted", "task": summary}


def update_task(
    session: Session,
    user_id: str,
    task_id: Any = None,
    title: Any = None,
    description: Any = None,
    **_: Any,
) -> ToolResult:
    tid = _task_id(task_id)
    task = _get_task(session, user_id, tid) if tid is not None else None
    if task is None:
        return {"error": f"task {task_id} not found"}
    if title is None and description is None:
        return {"error": "nothing to update: give a new title or description"}
    if title is not None:
        clean = _clean_title(title)
        if clean is None:
            return {"error": f"a task needs a title of 1 to {TITLE_MAX} characters"}
        task.title = clean
    if description is not None:
        ok, desc = _clean_description(description)
        if not ok:
            return {"error": f"the description may have at most {DESCRIPTION_MAX} characters"}
        task.description = desc
    task.updated_at = utcnow()
    session.add(task)
    session.flush()
    return {"status": "updated", "task": task_summary(task)}


TOOLS: dict[str, Callable[..., ToolResult]] = {
    "add_task": add_task,
    "list_tasks": list_tasks,
    "complete_task": complete_task,
    "delete_task": delete_task,
    "update_task": update_task,
}


def run_tool(session: Session, user_id: str, name: str, arguments: dict[str, Any]) -> ToolResult:
    func = TOOLS.get(name)
    if func is None:
        return {"error": f"unknown tool {name!r}"}
    # user_id always comes from the URL, never from the model's arguments.
    args = {k: v for k, v in arguments.items() if k not in ("session", "user_id")}
    return func(session, user_id, **args)


_TASK_ID = {"type": "integer", "description": "The task's id, as shown by list_tasks."}

# OpenAI-compatible function definitions, as sent to OpenRouter.
TOOL_SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "add_task",
            "description": "Create a new task for the user.",
            "parameters": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": f"Short title, at most {TITLE_MAX} characters."},
                    "description": {"type": "string", "description": "Optional longer description."},
                },
                "required": ["title"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_tasks",
            "description": "List the user's tasks.",
            "parameters": {
                "type": "object",
                "properties": {
                    "status": {
                        "type": "string",
                        "enum": ["all", "pending", "completed"],
                        "description": "Which tasks to list; default all.",
                    }
                },
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "complete_task",
            "description": "Mark one of the user's tasks as completed.",
            "parameters": {"type": "object", "properties": {"task_id": _TASK_ID}, "required": ["task_id"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "delete_task",
            "description": "Delete one of the user's tasks.",
            "parameters": {"type": "object", "properties": {"task_id": _TASK_ID}, "required": ["task_id"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "update_task",
            "description": "Change the title and/or description of one of the user's tasks.",
            "parameters": {
                "type": "object",
                "properties": {
                    "task_id": _TASK_ID,
                    "title": {"type": "string", "description": "New title."},
                    "description": {"type": "string", "description": "New description."},
                },
                "required": ["task_id"],
            },
        },
    },
]
