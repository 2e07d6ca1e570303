'use strict';
// Settings: built-in defaults, then one file per key in CONFIG_DIR (where the chart mounts
// the ConfigMap notes-web-settings), then environment variables of the same name.
// Read on every call, so an edited ConfigMap is picked up without a restart (the kubelet
// refreshes mounted ConfigMaps within about a minute).

const fs = require('node:fs');
const path = require('node:path');

const DEFAULT_CONFIG_DIR = '/etc/notes-web/config';
// SHUTDOWN_DELAY_S: how long the server keeps serving after SIGTERM (see server.js).
const DEFAULTS = Object.freeze({ GREETING: 'Hello', LOG_LEVEL: 'info', SHUTDOWN_DELAY_S: '5' });

function readSettings(env = process.env) {
  const dir = env.CONFIG_DIR || DEFAULT_CONFIG_DIR;
  const settings = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) {
    try {
      settings[key] = fs.readFileSync(path.join(dir, key), 'utf8').trim();
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err;
    }
    if (env[key]) settings[key] = env[key];
  }
  return settings;
}

module.exports = { readSettings, DEFAULTS, DEFAULT_CONFIG_DIR };
