'use client';

import { useCallback, useEffect, useState, type FormEvent } from 'react';

type Task = {
  id: number;
  user_id: string;
  title: string;
  description?: string | null;
  completed: boolean;
  created_at?: string;
  updated_at?: string;
};

type ToolCall = { name: string; arguments?: unknown; result?: unknown };
type ChatReply = { conversation_id: number | string; response: string; tool_calls?: ToolCall[] };

// All calls go to this app's own /api proxy, never straight to the backend.
async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(`/api${path}`, {
    ...init,
    cache: 'no-store',
    headers: init?.body ? { 'content-type': 'application/json' } : undefined,
  });
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (typeof body?.detail === 'string') detail = body.detail;
    } catch {
      /* body was not JSON */
    }
    throw new Error(detail);
  }
  return (res.status === 204 ? undefined : await res.json()) as T;
}

export default function Home() {
  // Controls stay disabled until React has hydrated, so nothing submits natively.
  const [ready, setReady] = useState(false);
  const [userId, setUserId] = useState('demo');
  const [tasks, setTasks] = useState<Task[]>([]);
  const [loading, setLoading] = useState(false);
  const [title, setTitle] = useState('');
  const [error, setError] = useState('');
  const [message, setMessage] = useState('');
  const [sending, setSending] = useState(false);
  const [reply, setReply] = useState('');
  const [toolCalls, setToolCalls] = useState<ToolCall[]>([]);
  const [conversationId, setConversationId] = useState<ChatReply['conversation_id'] | null>(null);

  const user = encodeURIComponent(userId.trim() || 'demo');

  const refresh = useCallback(async () => {
    setLoading(true);
    try {
      setTasks(await api<Task[]>(`/${user}/tasks`));
      setError('');
    } catch (e) {
      setError(`Could not load tasks: ${(e as Error).message}`);
    } finally {
      setLoading(false);
    }
  }, [user]);

  useEffect(() => setReady(true), []);

  // A different user has different tasks and conversations.
  useEffect(() => {
    if (!ready) return;
    setConversationId(null);
    setReply('');
    setToolCalls([]);
    const t = setTimeout(refresh, 250);
    return () => clearTimeout(t);
  }, [ready, refresh]);

  async function run(action: () => Promise<unknown>, what: string) {
    try {
      await action();
      setError('');
    } catch (e) {
      setError(`${what} failed: ${(e as Error).message}`);
    }
    await refresh();
  }

  async function addTask(e: FormEvent) {
    e.preventDefault();
    const t = title.trim();
    if (!t) return;
    await run(() => api(`/${user}/tasks`, { method: 'POST', body: JSON.stringify({ title: t }) }), 'Add');
    setTitle('');
  }

  const toggle = (task: Task) =>
    run(
      () =>
        api(`/${user}/tasks/${task.id}/complete`, {
          method: 'PATCH',
          body: task.completed ? JSON.stringify({ completed: false }) : undefined,
        }),
      task.completed ? 'Undo' : 'Complete',
    );

  const remove = (task: Task) => run(() => api(`/${user}/tasks/${task.id}`, { method: 'DELETE' }), 'Delete');

  async function sendChat(e: FormEvent) {
    e.preventDefault();
    const text = message.trim();
    if (!text) return;
    setSending(true);
    try {
      const body = conversationId === null ? { message: text } : { conversation_id: conversationId, message: text };
      const r = await api<ChatReply>(`/${user}/chat`, { method: 'POST', body: JSON.stringify(body) });
      setConversationId(r.conversation_id);
      setReply(r.response);
      setToolCalls(r.tool_calls ?? []);
      setMessage('');
      setError('');
      if (r.tool_calls && r.tool_calls.length > 0) await refresh();
    } catch (err) {
      setReply('');
      setToolCalls([]);
      setError(`Chat failed: ${(err as Error).message}`);
    } finally {
      setSending(false);
    }
  }

  return (
    <main data-testid="app" data-ready={ready ? 'true' : 'false'}>
      <h1>Todo Chatbot</h1>

      <section aria-labelledby="user-heading">
        <h2 id="user-heading">User</h2>
        <div className="row">
          <label htmlFor="user-id">User id</label>
          <input
            id="user-id"
            type="text"
            data-testid="user-id"
            value={userId}
            onChange={(e) => setUserId(e.target.value)}
            autoComplete="off"
          />
        </div>
      </section>

      <p role="alert" data-testid="error" className="error">
        {error}
      </p>

      <section aria-labelledby="tasks-heading">
        <h2 id="tasks-heading">Tasks</h2>
        <form onSubmit={addTask} aria-label="Add task">
          <label htmlFor="task-input">New task</label>
          <input
            id="task-input"
            type="text"
            data-testid="task-input"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
            placeholder="e.g. buy milk"
            autoComplete="off"
            disabled={!ready}
          />
          <button type="submit" data-testid="add-task" disabled={!ready || !title.trim()}>
            Add task
          </button>
        </form>
        <ul className="tasks" data-testid="task-list" aria-label="Tasks" aria-busy={loading}>
          {tasks.map((task) => (
            <li
              key={task.id}
              data-testid="task-item"
              data-task-id={task.id}
              data-completed={task.completed ? 'true' : 'false'}
            >
              <span className="title">
                <span className="muted">#{task.id}</span> {task.title}
                {task.description ? <span className="muted"> — {task.description}</span> : null}
              </span>
              <button
                type="button"
                data-testid="task-toggle"
                aria-label={`${task.completed ? 'Undo' : 'Complete'} ${task.title}`}
                onClick={() => toggle(task)}
              >
                {task.completed ? 'Undo' : 'Complete'}
              </button>
              <button
                type="button"
                data-testid="task-delete"
                aria-label={`Delete ${task.title}`}
                onClick={() => remove(task)}
              >
                Delete
              </button>
            </li>
          ))}
        </ul>
        {ready && !loading && tasks.length === 0 ? (
          <p className="muted" data-testid="task-empty">
            No tasks yet.
          </p>
        ) : null}
      </section>

      <section aria-labelledby="chat-heading">
        <h2 id="chat-heading">Chat</h2>
        <form onSubmit={sendChat} aria-label="Chat">
          <label htmlFor="chat-input">Message</label>
          <input
            id="chat-input"
            type="text"
            data-testid="chat-input"
            value={message}
            onChange={(e) => setMessage(e.target.value)}
            placeholder='try "add buy milk", "list", "complete 3"'
            autoComplete="off"
            disabled={!ready}
          />
          <button type="submit" data-testid="chat-send" disabled={!ready || sending || !message.trim()}>
            {sending ? 'Sending…' : 'Send'}
          </button>
        </form>
        <p className="reply" data-testid="chat-response" aria-live="polite" aria-label="Assistant reply">
          {reply}
        </p>
        {toolCalls.length > 0 ? (
          <ul className="tools" data-testid="chat-tool-calls" aria-label="Tool calls">
            {toolCalls.map((c, i) => (
              <li key={i}>{c.name}</li>
            ))}
          </ul>
        ) : null}
      </section>
    </main>
  );
}
