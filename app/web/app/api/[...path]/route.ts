// Server-side proxy: /api/<path>?<query> -> ${API_BASE_URL}/api/<path>?<query>.
// Browsers only ever talk to this app, so they never need the cluster's DNS names.
// API_BASE_URL is read on every request (not at build time): one image, many clusters.
export const dynamic = 'force-dynamic';
export const runtime = 'nodejs';

const DEFAULT_BACKEND = 'http://localhost:8000';
const DEFAULT_TIMEOUT_MS = 30_000;
// Request headers worth passing on; hop-by-hop and host headers are left to fetch.
const FORWARD_REQUEST_HEADERS = ['accept', 'content-type', 'authorization', 'x-request-id'];
// Methods safe to send again when the connection failed before any answer: a pooled
// keep-alive connection to a backend pod that is shutting down is closed under us during a
// rolling update, and one retry on a fresh connection reaches a serving pod.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
// Response headers passed back to the browser.
const FORWARD_RESPONSE_HEADERS = ['content-type', 'location', 'x-request-id', 'retry-after'];

type Ctx = { params: Promise<{ path?: string[] }> };

function backendBase(): URL {
  const raw = process.env.API_BASE_URL || DEFAULT_BACKEND;
  return new URL(raw.endsWith('/') ? raw : `${raw}/`);
}

function timeoutMs(): number {
  const n = Number(process.env.API_TIMEOUT_MS);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_TIMEOUT_MS;
}

// Aborted by instrumentation.ts when the server is asked to stop.
function shutdownSignal(): AbortSignal | undefined {
  return (globalThis as { __todoShutdown?: AbortController }).__todoShutdown?.signal;
}

function errorJson(status: number, detail: string): Response {
  return Response.json({ detail }, { status, headers: { 'cache-control': 'no-store' } });
}

function signalFor(): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs());
  const stop = shutdownSignal();
  return stop ? AbortSignal.any([timeout, stop]) : timeout;
}

async function proxy(request: Request, ctx: Ctx): Promise<Response> {
  const { path = [] } = await ctx.params;
  let base: URL;
  try {
    base = backendBase();
  } catch {
    console.error('[proxy] API_BASE_URL is not a valid URL');
    return errorJson(502, 'backend unreachable');
  }
  const target = new URL(`api/${path.map(encodeURIComponent).join('/')}`, base);
  target.search = new URL(request.url).search;

  const headers = new Headers();
  for (const name of FORWARD_REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }

  const method = request.method.toUpperCase();
  let body: ArrayBuffer | undefined;
  if (method !== 'GET' && method !== 'HEAD') {
    const buf = await request.arrayBuffer();
    if (buf.byteLength > 0) body = buf;
  }

  let upstream: Response;
  let payload: ArrayBuffer | null;
  const call = async (): Promise<[Response, ArrayBuffer | null]> => {
    const res = await fetch(target, { method, headers, body, redirect: 'manual', cache: 'no-store', signal: signalFor() });
    // 204/304 (and HEAD) carry no body; anything else is read in full under the same timeout.
    const noBody = res.status === 204 || res.status === 304 || method === 'HEAD';
    return [res, noBody ? null : await res.arrayBuffer()];
  };
  try {
    try {
      [upstream, payload] = await call();
    } catch (first) {
      const e = first as { name?: string };
      if (!IDEMPOTENT.has(method) || e.name === 'TimeoutError' || shutdownSignal()?.aborted) throw first;
      [upstream, payload] = await call();
    }
  } catch (err) {
    // Log where we tried to go (host only: no credentials, no query) and why.
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const why = e.cause?.code || e.cause?.message || e.message || e.name || 'error';
    if (shutdownSignal()?.aborted) {
      return errorJson(503, 'frontend shutting down');
    }
    if (e.name === 'TimeoutError') {
      console.error(`[proxy] ${method} ${target.pathname} -> ${base.host}: timed out after ${timeoutMs()} ms`);
      return errorJson(504, 'backend timeout');
    }
    console.error(`[proxy] ${method} ${target.pathname} -> ${base.host}: backend unreachable (${why})`);
    return errorJson(502, 'backend unreachable');
  }

  const outHeaders = new Headers({ 'cache-control': 'no-store' });
  for (const name of FORWARD_RESPONSE_HEADERS) {
    const value = upstream.headers.get(name);
    if (value !== null) outHeaders.set(name, value);
  }
  return new Response(payload, { status: upstream.status, headers: outHeaders });
}

export const GET = proxy;
export const POST = proxy;
export const PUT = proxy;
export const PATCH = proxy;
export const DELETE = proxy;
export const HEAD = proxy;
export const OPTIONS = proxy;
