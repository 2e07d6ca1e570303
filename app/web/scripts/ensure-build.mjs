// Runs `npm run build` unless .next/standalone is newer than every source file, then
// copies the static assets beside the standalone server (as the Docker image does) so
// `npm start` and the tests serve the same files the container serves.
import { execSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const server = join(root, '.next/standalone/server.js');
const buildId = join(root, '.next/BUILD_ID');

function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

const sources = ['app', 'public', 'instrumentation.ts', 'next.config.mjs', 'package.json', 'package-lock.json', 'tsconfig.json'];
const sourceTime = Math.max(...sources.map((s) => newest(join(root, s))));
const stale = !existsSync(server) || !existsSync(buildId) || statSync(buildId).mtimeMs < sourceTime;

if (stale || process.argv.includes('--force')) {
  console.log('[ensure-build] building the app (npm run build)');
  execSync('npm run build', { cwd: root, stdio: 'inherit', env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' } });
} else {
  console.log('[ensure-build] .next/standalone is up to date');
}
cpSync(join(root, '.next/static'), join(root, '.next/standalone/.next/static'), { recursive: true });
if (existsSync(join(root, 'public'))) cpSync(join(root, 'public'), join(root, '.next/standalone/public'), { recursive: true });
