from __future__ import annotations

from fastapi import APIRouter, Body, HTTPException, Response, status
from sqlmodel import select

from ..deps import SessionDep, UserId
from ..models import Task, utcnow
from ..schemas import TaskComplete, TaskCreate, TaskRead, TaskUpdate

router = APIRouter(prefix="/api/{user_id}/tasks", tags=["tasks"])


def _own_task(session: SessionDep, user_id: str, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None or task.user_id != user_id:
        raise HTTPException(status_code=404, detail="task not found")
    return task


@router.get("", response_model=list[TaskRead])
def list_tasks(user_id: UserId, session: SessionDep, completed: bool | None = None):
    query = select(Task).where(Task.user_id == user_id)
    if completed is not None:
        query = query.where(Task.completed == completed)
    return session.exec(query.order_by(Task.id)).all()


@router.post("", response_model=TaskRead, status_code=status.HTTP_201_CREATED)
def create_task(user_id: UserId, body: TaskCreate, session: SessionDep):
    task = Task(user_id=user_id, title=body.title, description=body.description or None)
    session.add(task)
    session.commit()
    session.refresh(task)
    return task


@router.get("/{task_id}", response_model=TaskRead)
def get_task(user_id: UserId, task_id: int, session: SessionDep):
    return _own_task(session, user_id, task_id)


@router.put("/{task_id}", response_model=TaskRead)
def update_task(user_id: UserId, task_id: int, body: TaskUpdate, session: SessionDep):
    task = _own_task(session, user_id, task_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("title") is not None:
        task.title = changes["title"]
    if "description" in changes:
        task.description = changes["description"] or None
    if changes.get("completed") is not None:
        task.completed = changes["completed"]
    task.updated_at = utcnow()
    session.add(task)
    session.commit()
    session.refresh(task)
    return task


@router.patch("/{task_id}/complete", response_model=TaskRead)
def complete_task(
    user_id: UserId, task_id: int, session: SessionDep, body: TaskComplete | None = Body(default=None)
):
    task = _own_task(session, user_id, task_id)
    task.completed = True if body is None else body.completed
    task.updated_at = utcnow()
    session.add(task)
    session.commit()
    session.refresh(task)
    return task


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_task(user_id: UserId, task_id: int, session: SessionDep):
    task = _own_task(session, user_id, task_id)
    session.delete(task)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
