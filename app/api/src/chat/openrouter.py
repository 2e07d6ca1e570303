"""The OpenRouter path: OpenAI-compatible chat completions with tool calling, over
plain httpx."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from sqlmodel import Session

from ..config import Settings
from .tools import TOOL_SCHEMAS, run_tool

log = logging.getLogger(__name__)

MAX_ROUNDS = 5  # model turns per chat message; tool loops stop here

SYSTEM_PROMPT = (
    "You are the assistant of a todo app. You manage the user's tasks only through the "
    "tools you are given: add_task, list_tasks, complete_task, delete_task, update_task. "
    "Task ids are the numbers list_tasks returns; when the user refers to a task by name, "
    "list the tasks first to find its id. After using tools, confirm briefly what you did. "
    "Keep replies short and friendly."
)


class OpenRouterError(Exception):
    """The API could not give an answer. The message holds no secrets."""

    def __init__(self, message: str, tool_calls: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.tool_calls = tool_calls or []


def _parse_arguments(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class OpenRouterAgent:
    def __init__(self, settings: Settings, client: httpx.Client | None = None):
        if not settings.openrouter_api_key:
            raise ValueError("OpenRouterAgent needs an API key")
        self._settings = settings
        self._client = client

    def _post(self, client: httpx.Client, payload: dict[str, Any]) -> dict[str, Any]:
        url = self._settings.openrouter_base_url.rstrip("/") + "/chat/completions"
        headers = {
            "Authorization": f"Bearer {self._settings.openrouter_api_key}",
            "X-Title": "Todo Chatbot",
        }
        try:
            resp = client.post(url, json=payload, headers=headers)
        except httpx.HTTPError as exc:  # timeouts, refused connections, TLS errors
            raise OpenRouterError(f"request failed: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise OpenRouterError(f"HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            raise OpenRouterError("response is not JSON") from None
        if not isinstance(data, dict) or "error" in data and not data.get("choices"):
            raise OpenRouterError("API returned an error object")
        return data

    def run(
        self,
        session: Session,
        user_id: str,
        history: list[dict[str, str]],
        message: str,
    ) -> tuple[str, list[dict[str, Any]]]:
        """Answer one message: (reply text, tool calls made). Raises OpenRouterError,
        carrying the tool calls already made, when the API fails."""
        messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
        messages += history
        messages.append({"role": "user", "content": message})
        calls: list[dict[str, Any]] = []
        timeout = httpx.Timeout(self._settings.openrouter_timeout, connect=min(10.0, self._settings.openrouter_timeout))
        client = self._client or httpx.Client(timeout=timeout)
        try:
            for _ in range(MAX_ROUNDS):
                payload = {
                    "model": self._settings.openrouter_model,
                    "messages": messages,
                    "tools": TOOL_SCHEMAS,
                    "tool_choice": "auto",
                }
                try:
                    data = self._post(client, payload)
                    reply = data["choices"][0]["message"]
                except OpenRouterError as exc:
                    raise OpenRouterError(str(exc), calls) from None
                except (KeyError, IndexError, TypeError):
                    raise OpenRouterError("unexpected response shape", calls) from None
                requested = reply.get("tool_calls") or []
                if not requested:
                    content = reply.get("content")
                    if not isinstance(content, str) or not content.strip():
                        raise OpenRouterError("empty answer", calls)
                    return content.strip(), calls
                messages.append(
                    {"role": "assistant", "content": reply.get("content") or "", "tool_calls": requested}
                )
                for call in requested:
                    try:
                        call_id = call["id"]
                        name = call["function"]["name"]
                        raw_args = call["function"].get("arguments")
                    except (KeyError, TypeError):
                        raise OpenRouterError("malformed tool call", calls) from None
                    args = _parse_arguments(raw_args)
                    if args is None:
                        result: dict[str, Any] = {"error": "arguments are not a JSON object"}
                        args = {}
                    else:
                        result = run_tool(session, user_id, name, args)
                    calls.append({"name": name, "arguments": args, "result": result})
                    messages.append({"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)})
            raise OpenRouterError(f"no final answer after {MAX_ROUNDS} rounds", calls)
        finally:
            if self._client is None:
                client.close()
