// Shared harness for the `trine proxy` end-to-end tests: starts the real
// trined on a temporary socket and audit log, and connects the official
// MCP TypeScript SDK's Client, over StdioClientTransport, to
// `trine proxy ... -- node <server-filesystem> <root>`.
//
// Paths come from the environment, as tests/CMakeLists.txt sets them
// (TRINE_BIN, TRINED_BIN, TRINE_SOURCE_DIR); when unset, the binaries are
// looked up in <repo>/build.

import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export const SOURCE_DIR =
  process.env.TRINE_SOURCE_DIR || path.resolve(here, '..', '..');
export const TRINE_BIN =
  process.env.TRINE_BIN || path.join(SOURCE_DIR, 'build', 'trine');
export const TRINED_BIN =
  process.env.TRINED_BIN || path.join(SOURCE_DIR, 'build', 'trined');
export const POLICY = path.join(SOURCE_DIR, 'policy-examples',
  'mcp-server-filesystem');
export const SERVER_JS = path.join(here, 'node_modules', '@modelcontextprotocol',
  'server-filesystem', 'dist', 'index.js');

export const AUDIENCE = 'https://mcp.example.com/filesystem';

// Token claims, as an MCP server would have validated them.
export const ALICE = {
  sub: 'alice', scope: 'files:read files:write', client_id: 'claude-desktop',
  aud: AUDIENCE, exp: 4102444800,
};
export const BOB = { ...ALICE, sub: 'bob' };

// What a sanitizer build prints when it finds a fault.
const SANITIZER_REPORT = /AddressSanitizer|LeakSanitizer|runtime error:/;

export function tempDir(prefix = 'trine-proxy-') {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function canConnect(socket) {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// Starts trined on DIR/trine.sock with the audit log DIR/audit.db (or the
// given paths). Lines up to 64 MiB are taken, so calls with large
// arguments can be checked.
export async function startTrined(dir, socket = path.join(dir, 'trine.sock'),
  audit = path.join(dir, 'audit.db')) {
  const log = [];
  const proc = spawn(TRINED_BIN, ['--policy', POLICY, '--socket', socket,
    '--audit', audit, '--max-line', String(64 * 1024 * 1024),
    '--workers', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => log.push(d.toString()));
  const deadline = Date.now() + 30000;
  while (!(await canConnect(socket))) {
    if (proc.exitCode !== null || Date.now() > deadline)
      throw new Error(`trined did not start: ${log.join('')}`);
    await delay(20);
  }
  return {
    socket, audit, proc,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await once(proc, 'exit');
      }
      const text = log.join('');
      if (SANITIZER_REPORT.test(text))
        throw new Error(`trined reported a fault:\n${text}`);
      return proc.exitCode;
    },
  };
}

// The proxy's command line for a server rooted at root.
export function proxyArgs(socket, claimsFile, root, extra = []) {
  return ['proxy', '--socket', socket, '--server', 'filesystem',
    '--claims', claimsFile, ...extra, '--', process.execPath, SERVER_JS, root];
}

// Connects an SDK client through the proxy. onElicit, when given, is the
// client's elicitation handler (and the client declares the capability).
// Returns { client, session: Promise<hex id>, elicited: [requests],
// close() }.
export async function connect({ socket, claims, root, onElicit, dir }) {
  const claimsFile = path.join(dir, `claims-${Math.random().toString(16)
    .slice(2)}.json`);
  fs.writeFileSync(claimsFile, JSON.stringify(claims));
  const transport = new StdioClientTransport({
    command: TRINE_BIN,
    args: proxyArgs(socket, claimsFile, root),
    stderr: 'pipe',
  });
  let stderr = '';
  let gotSession;
  const session = new Promise((resolve, reject) => {
    gotSession = resolve;
    setTimeout(() => reject(new Error(`no session id on stderr: ${stderr}`)),
      20000).unref();
  });
  transport.stderr.on('data', (d) => {
    stderr += d.toString();
    const m = /session ([0-9a-f]{32})/.exec(stderr);
    if (m) gotSession(m[1]);
  });
  const capabilities = onElicit ? { elicitation: {} } : {};
  const client = new Client({ name: 'trine-proxy-test', version: '1.0.0' },
    { capabilities });
  const elicited = [];
  if (onElicit) {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      elicited.push(req);
      return onElicit(req);
    });
  }
  await client.connect(transport);
  return {
    client, session, elicited,
    stderr: () => stderr,
    async close() {
      await client.close();
      if (SANITIZER_REPORT.test(stderr))
        throw new Error(`the proxy reported a fault:\n${stderr}`);
    },
  };
}

// The text of a tool result's first content block.
export function text(result) {
  return result.content?.[0]?.text ?? '';
}

// Every audit row (oldest first), as `trine audit --format json` prints it.
export function auditRows(db) {
  const out = execFileSync(TRINE_BIN, ['audit', '--db', db, '--format',
    'json'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

// Every raw proxy still running, so a failed test cannot leave one behind.
const running = new Set();

// Kills every raw proxy still running (for after() hooks).
export function killProxies() {
  for (const proc of running) proc.kill('SIGKILL');
  running.clear();
}

// A raw proxy on pipes, for what the SDK would never send: write lines,
// read the replies line by line. `command` is the server (default: the
// filesystem server on root); `extra` goes before `--`; `env` is added to
// the environment.
export function rawProxy(socket, claimsFile, root,
  { command, extra = [], env = {} } = {}) {
  const args = command
    ? ['proxy', '--socket', socket, '--server', 'filesystem',
      ...(claimsFile ? ['--claims', claimsFile] : []), ...extra, '--',
      ...command]
    : proxyArgs(socket, claimsFile, root, extra);
  const proc = spawn(TRINE_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env } });
  const closed = once(proc, 'close');
  running.add(proc);
  closed.then(() => running.delete(proc));
  let buf = '';
  let stderr = '';
  const lines = [];
  const waiters = [];
  proc.stdout.on('data', (d) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    while (waiters.length && lines.length) waiters.shift()(lines.shift());
  });
  proc.stderr.on('data', (d) => { stderr += d.toString(); });
  proc.stdin.on('error', () => {});
  return {
    proc,
    write(s) { proc.stdin.write(s); },
    send(msg) { proc.stdin.write(`${JSON.stringify(msg)}\n`); },
    next(timeout = 20000) {
      if (lines.length) return Promise.resolve(lines.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(
          `no line from the proxy; stderr: ${stderr}`)), timeout);
        waiters.push((l) => { clearTimeout(t); resolve(l); });
      });
    },
    // Resolves true when no line comes within ms.
    async quiet(ms = 300) {
      await delay(ms);
      return lines.length === 0;
    },
    // Closes the proxy's stdin and waits for it: [exit code, signal].
    async end() {
      proc.stdin.end();
      return this.wait();
    },
    async wait() {
      const [code, signal] = await closed;
      if (SANITIZER_REPORT.test(stderr))
        throw new Error(`the proxy reported a fault:\n${stderr}`);
      return [code, signal];
    },
    stderr: () => stderr,
  };
}
