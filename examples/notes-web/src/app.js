'use strict';
// The HTTP API:
//   GET  /                the service's name and version
//   GET  /status          liveness and readiness: the process serves requests
//   GET  /api/greeting    {"greeting", "message"} from the GREETING setting (?name=...)
//   POST /api/echo        echoes a JSON body: {"echo": <body>}

const express = require('express');
const { readSettings } = require('./settings');

const { version } = require('../package.json');

const MAX_NAME = 64;

// isDraining(): true once the server is shutting down; responses then ask the client (or
// proxy) to close its connection, so its next request goes to another replica.
function createApp({ env = process.env, log = console, isDraining = () => false } = {}) {
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    if (isDraining()) res.set('Connection', 'close');
    next();
  });
  app.use(express.json({ limit: '16kb' }));

  app.use((req, res, next) => {
    if (readSettings(env).LOG_LEVEL === 'debug') {
      res.on('finish', () => log.log(JSON.stringify({ method: req.method, path: req.path, status: res.statusCode })));
    }
    next();
  });

  app.get('/', (req, res) => {
    res.json({ service: 'notes-web', version });
  });

  app.get('/status', (req, res) => {
    res.json({ status: 'ok', uptime_s: Math.round(process.uptime()) });
  });

  app.get('/api/greeting', (req, res) => {
    const name = String(req.query.name || 'world').slice(0, MAX_NAME);
    const { GREETING } = readSettings(env);
    res.json({ greeting: GREETING, message: `${GREETING}, ${name}!` });
  });

  app.post('/api/echo', (req, res) => {
    if (!req.is('application/json')) {
      return res.status(415).json({ error: 'send a JSON body (content-type: application/json)' });
    }
    res.json({ echo: req.body });
  });

  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });

  // Express calls a four-argument middleware for errors: bad JSON, a body over the limit.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const status = err.status || err.statusCode || 500;
    if (status >= 500) log.error(err);
    res.status(status).json({ error: status >= 500 ? 'internal error' : err.message });
  });

  return app;
}

module.exports = { createApp };
