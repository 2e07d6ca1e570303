'use strict';
// Docker HEALTHCHECK: `node healthcheck.js /status` exits 0 when GET <path> answers 200.

const http = require('node:http');

const path = process.argv[2] || '/status';
const port = Number(process.env.PORT || 5000);
const req = http.get({ host: '127.0.0.1', port, path, timeout: 4000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  console.error(`GET ${path}: ${err.message}`);
  process.exit(1);
});
