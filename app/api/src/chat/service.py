"""One chat turn: load or create the conversation, store both messages, and answer
with OpenRouter when a key is set, else (or when the API fails) with the interpreter."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session, select

from ..config import Settings
from ..models import Conversation, Message, utcnow
from .interpreter import describe_result, interpret
from .openrouter import OpenRouterAgent, OpenRouterError

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20  # earlier messages sent to the model as context


class ConversationNotFound(Exception):
    pass


def _history(session: Session, conversation_id: int) -> list[dict[str, str]]:
    rows = session.exec(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc())  # type: ignore[union-attr]
        .limit(HISTORY_LIMIT)
    ).all()
    return [{"role": m.role, "content": m.content} for m in reversed(rows)]


def _answer(
    settings: Settings, session: Session, user_id: str, history: list[dict[str, str]], message: str
) -> tuple[str, list[dict[str, Any]]]:
    if settings.openrouter_api_key:
        try:
            return OpenRouterAgent(settings).run(session, user_id, history, message)
        except OpenRouterError as exc:
            if exc.tool_calls:
                # Tools already ran: running the interpreter too could repeat them, so
                # answer from what was done.
                log.warning("OpenRouter failed after %d tool call(s) (%s); answering from their results",
                            len(exc.tool_calls), exc)
                text = "\n".join(describe_result(c["name"], c["result"]) for c in exc.tool_calls)
                return text, exc.tool_calls
            log.warning("OpenRouter failed (%s); falling back to the built-in interpreter", exc)
    return interpret(session, user_id, message)


def chat(
    settings: Settings, session: Session, user_id: str, conversation_id: int | None, message: str
) -> tuple[int, str, list[dict[str, Any]]]:
    if conversation_id is None:
        conversation = Conversation(user_id=user_id)
        session.add(conversation)
        session.flush()
        history: list[dict[str, str]] = []
    else:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.user_id != user_id:
            raise ConversationNotFound(conversation_id)
        history = _history(session, conversation_id)
    assert conversation.id is not None

    session.add(Message(conversation_id=conversation.id, user_id=user_id, role="user", content=message))
    text, calls = _answer(settings, session, user_id, history, message)
    session.add(Message(conversation_id=conversation.id, user_id=user_id, role="assistant", content=text))
    conversation.updated_at = utcnow()
    session.add(conversation)
    session.commit()
    return conversation.id, text, calls
