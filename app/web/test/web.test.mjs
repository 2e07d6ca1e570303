// Tests the built standalone server (.next/standalone/server.js) against a fake backend.
// `npm test` runs scripts/ensure-build.mjs first, which builds when the build is missing or stale.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { once } from 'node:events';

const SERVER = new URL('../.next/standalone/server.js', import.meta.url).pathname;

// ---- fake backend: records every request and answers by path ----
const seen = [];
const backend = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://x');
    const raw = Buffer.concat(chunks).toString();
    seen.push({ method: req.method, path: url.pathname, query: url.search, body: raw, headers: req.headers });
    const json = (status, obj) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    if (url.pathname === '/api/slow/tasks') return setTimeout(() => json(200, []), 3000);
    if (url.pathname === '/api/hang/tasks') return; // never answers
    if (url.pathname === '/api/demo/tasks/999') return json(404, { detail: 'Task not found' });
    if (req.method === 'DELETE') {
      res.writeHead(204);
      return res.end();
    }
    const status = req.method === 'POST' ? 201 : 200;
    json(status, { method: req.method, path: url.pathname, query: url.search, body: raw ? JSON.parse(raw) : null });
  });
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

// Starts the standalone server; resolves once /api/health answers.
async function startApp(env) {
  const port = await freePort();
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1', PORT: String(port), HOSTNAME: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${log}`);
    try {
      const r = await fetch(`${base}/api/health`);
      if (r.ok) return { child, base, log: () => log };
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not start:\n${log}`);
}

async function stopApp(app) {
  if (!app || app.child.exitCode !== null) return;
  app.child.kill('SIGKILL');
  await once(app.child, 'exit');
}

let app;
let backendUrl;

before(async () => {
  assert.ok(existsSync(SERVER), `${SERVER} missing: run "npm run build" first (npm test does it)`);
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  backendUrl = `http://127.0.0.1:${backend.address().port}`;
  app = await startApp({ API_BASE_URL: backendUrl, API_TIMEOUT_MS: '1000' });
});

after(async () => {
  await stopApp(app);
  backend.closeAllConnections();
  backend.close();
});

test('GET /api/health is 200 {"status":"ok"} and does not call the backend', async () => {
  const before = seen.length;
  const r = await fetch(`${app.base}/api/health`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ok' });
  assert.equal(seen.length, before);
});

test('proxy forwards GET with the query string', async () => {
  const r = await fetch(`${app.base}/api/demo/tasks?completed=true&q=a%20b`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /application\/json/);
  const body = await r.json();
  assert.equal(body.method, 'GET');
  assert.equal(body.path, '/api/demo/tasks');
  // Next re-serialises the query (a%20b may arrive as a+b): compare what it means.
  assert.deepEqual([...new URLSearchParams(body.query)], [['completed', 'true'], ['q', 'a b']]);
  assert.equal(r.headers.get('cache-control'), 'no-store');
});

test('proxy forwards POST with JSON body and passes 201 back', async () => {
  const r = await fetch(`${app.base}/api/demo/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'buy milk', description: '2 l' }),
  });
  assert.equal(r.status, 201);
  const body = await r.json();
  assert.equal(body.method, 'POST');
  assert.deepEqual(body.body, { title: 'buy milk', description: '2 l' });
  assert.equal(seen.at(-1).headers['content-type'], 'application/json');
});

test('proxy forwards PUT and PATCH with body, and PATCH without one', async () => {
  let r = await fetch(`${app.base}/api/demo/tasks/3`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'new' }),
  });
  assert.equal(r.status, 200);
  assert.deepEqual((await r.json()).body, { title: 'new' });

  r = await fetch(`${app.base}/api/demo/tasks/3/complete`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ completed: false }),
  });
  assert.equal(r.status, 200);
  let body = await r.json();
  assert.equal(body.method, 'PATCH');
  assert.equal(body.path, '/api/demo/tasks/3/complete');
  assert.deepEqual(body.body, { completed: false });

  r = await fetch(`${app.base}/api/demo/tasks/3/complete`, { method: 'PATCH' });
  body = await r.json();
  assert.equal(body.body, null);
});

test('proxy forwards DELETE and returns 204 with no body', async () => {
  const r = await fetch(`${app.base}/api/demo/tasks/3`, { method: 'DELETE' });
  assert.equal(r.status, 204);
  assert.equal(await r.text(), '');
  assert.equal(seen.at(-1).method, 'DELETE');
  assert.equal(seen.at(-1).path, '/api/demo/tasks/3');
});

test('proxy passes backend error status and body through', async () => {
  const r = await fetch(`${app.base}/api/demo/tasks/999`);
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), { detail: 'Task not found' });
});

test('proxy forwards chat POST', async () => {
  const r = await fetch(`${app.base}/api/demo/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'add buy milk' }),
  });
  assert.equal(r.status, 201);
  assert.deepEqual((await r.json()).body, { message: 'add buy milk' });
});

test('proxy answers 504 when the backend is too slow', async () => {
  const r = await fetch(`${app.base}/api/slow/tasks`);
  assert.equal(r.status, 504);
  assert.deepEqual(await r.json(), { detail: 'backend timeout' });
});

test('proxy answers 502 and logs the target host when the backend is down', async () => {
  const deadPort = await freePort(); // nothing listens there
  const down = await startApp({ API_BASE_URL: `http://127.0.0.1:${deadPort}` });
  try {
    const r = await fetch(`${down.base}/api/demo/tasks`);
    assert.equal(r.status, 502);
    assert.deepEqual(await r.json(), { detail: 'backend unreachable' });
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(down.log().includes(`127.0.0.1:${deadPort}`), down.log());
  } finally {
    await stopApp(down);
  }
});

test('an idempotent request whose connection is reset is sent once more', async () => {
  // A backend pod shutting down closes a pooled connection under the proxy.
  let calls = 0;
  const flaky = createServer((req, res) => {
    calls += 1;
    if (calls === 1) return req.socket.destroy();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('[]');
  });
  flaky.listen(0, '127.0.0.1');
  await once(flaky, 'listening');
  const app3 = await startApp({ API_BASE_URL: `http://127.0.0.1:${flaky.address().port}` });
  try {
    const r = await fetch(`${app3.base}/api/demo/tasks`);
    assert.equal(r.status, 200);
    assert.equal(calls, 2);
    calls = 0;
    const p = await fetch(`${app3.base}/api/demo/tasks`, { method: 'POST', body: '{"title":"x"}',
      headers: { 'content-type': 'application/json' } });
    assert.equal(p.status, 502); // a POST is not sent twice
    assert.equal(calls, 1);
  } finally {
    await stopApp(app3);
    flaky.close();
  }
});

test('API_BASE_URL is read at request time, not baked into the build', async () => {
  // The same build, started with a different backend, talks to that backend.
  const other = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"backend":"other"}');
  });
  other.listen(0, '127.0.0.1');
  await once(other, 'listening');
  const app2 = await startApp({ API_BASE_URL: `http://127.0.0.1:${other.address().port}/` });
  try {
    const r = await fetch(`${app2.base}/api/demo/tasks`);
    assert.deepEqual(await r.json(), { backend: 'other' });
  } finally {
    await stopApp(app2);
    other.close();
  }
});

test('the page renders with the test ids and its static assets are served', async () => {
  const r = await fetch(`${app.base}/`);
  assert.equal(r.status, 200);
  const html = await r.text();
  for (const id of ['task-input', 'add-task', 'task-list', 'chat-input', 'chat-send', 'chat-response', 'user-id']) {
    assert.ok(html.includes(`data-testid="${id}"`), `missing data-testid="${id}"`);
  }
  assert.match(html, /<label[^>]*for="task-input"/);
  assert.match(html, /<label[^>]*for="chat-input"/);
  const scripts = [...html.matchAll(/src="(\/_next\/static\/[^"]+\.js)"/g)].map((m) => m[1]);
  assert.ok(scripts.length > 0, 'no script chunks referenced');
  const js = await fetch(`${app.base}${scripts[0]}`);
  assert.equal(js.status, 200);
  assert.ok(!(await js.text()).includes('sourceMappingURL='), 'client chunk points at a source map');
});

async function stopWithin(a, ms) {
  const t0 = Date.now();
  a.child.kill('SIGTERM');
  const timer = setTimeout(() => a.child.kill('SIGKILL'), ms);
  const [code, signal] = await once(a.child, 'exit');
  clearTimeout(timer);
  assert.notEqual(signal, 'SIGKILL', `still running ${ms} ms after SIGTERM`);
  return { code, elapsed: Date.now() - t0 };
}

test('the server exits promptly on SIGTERM when idle', async () => {
  const a = await startApp({ API_BASE_URL: backendUrl });
  await fetch(`${a.base}/`); // leaves an idle keep-alive connection open
  const { code, elapsed } = await stopWithin(a, 10_000);
  assert.equal(code, 143); // Next exits 128+15 after a clean shutdown
  assert.ok(elapsed < 5_000, `took ${elapsed} ms`);
});

test('SIGTERM aborts an in-flight proxied call (503) and exits well within 10 s', async () => {
  const a = await startApp({ API_BASE_URL: backendUrl }); // default 30 s proxy timeout
  const pending = fetch(`${a.base}/api/hang/tasks`);
  await new Promise((r) => setTimeout(r, 300));
  const stopped = stopWithin(a, 10_000);
  const r = await pending;
  assert.equal(r.status, 503);
  assert.deepEqual(await r.json(), { detail: 'frontend shutting down' });
  const { elapsed } = await stopped;
  assert.ok(elapsed < 8_000, `took ${elapsed} ms`);
});
