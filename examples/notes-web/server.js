'use strict';
// notes-web: listens on PORT (default 5000).
//
// Shutdown. Kubernetes sends SIGTERM while it is still removing the pod from the Service's
// endpoints, so requests keep arriving for a moment; closing the listener at once refuses
// them. So on SIGTERM the server keeps serving for SHUTDOWN_DELAY_S seconds (default 5,
// answering with `Connection: close`), then stops accepting, lets open requests finish and
// exits; anything still open 8 s later is cut off. A second signal skips the delay.

const { createApp } = require('./src/app');
const { readSettings } = require('./src/settings');

const port = Number(process.env.PORT || 5000);
let draining = false;
const server = createApp({ isDraining: () => draining }).listen(port, '0.0.0.0', () => {
  console.log(JSON.stringify({ msg: 'listening', port }));
});

function stop() {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(1), 8000).unref();
}

function shutdown(signal) {
  const delayS = Number(readSettings().SHUTDOWN_DELAY_S) || 0;
  if (draining || delayS <= 0) {
    console.log(JSON.stringify({ msg: 'shutting down', signal }));
    return stop();
  }
  draining = true;
  console.log(JSON.stringify({ msg: 'draining', signal, delay_s: delayS }));
  setTimeout(stop, delayS * 1000);
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
