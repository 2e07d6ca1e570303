'use strict';
// notes-web: listens on PORT (default 5000). On SIGTERM it stops accepting connections,
// lets open requests finish, and exits; a request still open after 8 s is cut off.

const { createApp } = require('./src/app');

const port = Number(process.env.PORT || 5000);
const server = createApp().listen(port, '0.0.0.0', () => {
  console.log(JSON.stringify({ msg: 'listening', port }));
});

function shutdown(signal) {
  console.log(JSON.stringify({ msg: 'shutting down', signal }));
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(1), 8000).unref();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
