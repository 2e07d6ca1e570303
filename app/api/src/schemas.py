"""Request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .models import DESCRIPTION_MAX, MESSAGE_MAX, TITLE_MAX

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX)]


class TaskCreate(BaseModel):
    title: Title
    description: Description | None = None


class TaskUpdate(BaseModel):
    title: Title | None = None
    description: Description | None = None
    completed: bool | None = None


class TaskComplete(BaseModel):
    completed: bool = True


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime


class ChatRequest(BaseModel):
    conversation_id: int | None = None
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MESSAGE_MAX)]


class ToolCall(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = None


class ChatResponse(BaseModel):
    conversation_id: int
    response: str
    tool_calls: list[ToolCall] = Field(default_factory=list)


class MessageRead(BaseModel):
    id: int
    role: str
    content: str
    created_at: datetime
