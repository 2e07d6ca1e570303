'use strict';
// `npm test` (node:test): the API against a throwaway config directory.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test, before, after } = require('node:test');
const { createApp } = require('../src/app');

let server;
let base;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notes-web-'));

before(async () => {
  fs.writeFileSync(path.join(dir, 'GREETING'), 'Bonjour\n');
  server = createApp({ env: { CONFIG_DIR: dir }, log: { log() {}, error() {} } }).listen(0);
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('status answers 200', async () => {
  const res = await fetch(`${base}/status`);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).status, 'ok');
});

test('greeting comes from the config directory', async () => {
  const res = await fetch(`${base}/api/greeting?name=Ada`);
  assert.deepEqual(await res.json(), { greeting: 'Bonjour', message: 'Bonjour, Ada!' });
});

test('echo returns the JSON body', async () => {
  const res = await fetch(`${base}/api/echo`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":[1,2]}',
  });
  assert.deepEqual(await res.json(), { echo: { a: [1, 2] } });
});

test('bad JSON is a 400, not a 500', async () => {
  const res = await fetch(`${base}/api/echo`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{',
  });
  assert.equal(res.status, 400);
});

test('the root names the service', async () => {
  const res = await fetch(`${base}/`);
  assert.deepEqual(await res.json(), { service: 'notes-web', version: '1.0.0' });
});

test('a draining server asks clients to close their connection', async () => {
  const draining = createApp({ env: { CONFIG_DIR: dir }, isDraining: () => true }).listen(0);
  await new Promise((resolve) => draining.once('listening', resolve));
  const res = await fetch(`http://127.0.0.1:${draining.address().port}/status`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('connection'), 'close');
  draining.close();
});

test('unknown path is a JSON 404', async () => {
  const res = await fetch(`${base}/nope`);
  assert.equal(res.status, 404);
});
