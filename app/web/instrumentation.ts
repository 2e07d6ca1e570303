// Runs once when the server starts. Next's own SIGTERM/SIGINT handler stops accepting
// connections and waits for in-flight requests; a proxied call to a slow backend could
// hold that for the whole proxy timeout. Here, on the first signal, in-flight proxy calls
// are aborted (they answer 503) and a hard deadline guarantees the process exits within
// SHUTDOWN_TIMEOUT_MS (default 8 s), inside `docker stop`'s 10 s and Kubernetes' 30 s.
export function register(): void {
  if (process.env.NEXT_RUNTIME !== 'nodejs') return;
  const g = globalThis as typeof globalThis & { __todoShutdown?: AbortController };
  if (g.__todoShutdown) return;
  const controller = new AbortController();
  g.__todoShutdown = controller;
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    controller.abort(new Error(`received ${signal}`));
    const n = Number(process.env.SHUTDOWN_TIMEOUT_MS);
    const deadline = Number.isFinite(n) && n > 0 ? n : 8000;
    setTimeout(() => {
      console.error(`[shutdown] still running ${deadline} ms after ${signal}; exiting`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }, deadline).unref();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
