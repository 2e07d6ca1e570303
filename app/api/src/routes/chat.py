from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlmodel import select

from ..chat.service import ConversationNotFound, chat
from ..deps import SessionDep, SettingsDep, UserId
from ..models import Conversation, Message
from ..schemas import ChatRequest, ChatResponse, MessageRead

router = APIRouter(prefix="/api/{user_id}", tags=["chat"])


@router.post("/chat", response_model=ChatResponse)
def post_chat(user_id: UserId, body: ChatRequest, session: SessionDep, settings: SettingsDep):
    try:
        conversation_id, text, calls = chat(settings, session, user_id, body.conversation_id, body.message)
    except ConversationNotFound:
        raise HTTPException(status_code=404, detail="conversation not found") from None
    return {"conversation_id": conversation_id, "response": text, "tool_calls": calls}


@router.get("/conversations/{conversation_id}/messages", response_model=list[MessageRead])
def list_messages(user_id: UserId, conversation_id: int, session: SessionDep):
    """A conversation's stored messages, oldest first (for a client to restore a chat)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.user_id != user_id:
        raise HTTPException(status_code=404, detail="conversation not found")
    rows = session.exec(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    ).all()
    return [MessageRead(id=m.id, role=m.role, content=m.content, created_at=m.created_at) for m in rows]
