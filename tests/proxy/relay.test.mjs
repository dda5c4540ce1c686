// What `trine proxy` relays, byte for byte, and in what order. The server
// here is `cat`: it echoes every line the proxy forwards, so what comes
// back is exactly what the server was sent. Also: batches, the size limit,
// consent through a raw elicitation exchange, cancellation, the end of the
// client's input, exit statuses and the identity checks at start.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
  ALICE, BOB, auditRows, killProxies, rawProxy, startTrined, tempDir,
} from './harness.mjs';

let dir;
let trined;
let aliceFile;
let bobFile;

before(async () => {
  dir = tempDir();
  trined = await startTrined(dir);
  aliceFile = path.join(dir, 'alice.json');
  bobFile = path.join(dir, 'bob.json');
  fs.writeFileSync(aliceFile, JSON.stringify(ALICE));
  fs.writeFileSync(bobFile, JSON.stringify(BOB));
});

after(async () => {
  killProxies();
  assert.equal(await trined.stop(), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

function catProxy(opts = {}) {
  return rawProxy(trined.socket, opts.claims ?? aliceFile, null,
    { command: ['cat'], ...opts });
}

const INIT_ELICIT = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":' +
  '{"protocolVersion":"2025-06-18","capabilities":{"elicitation":{}},' +
  '"clientInfo":{"name":"raw","version":"1"}}}';

function call(id, name, args) {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call',
    params: { name, arguments: args } });
}

test('an allowed call reaches the server byte for byte', async () => {
  const p = catProxy();
  const odd = '{ "params" : {"arguments":{"path":"/srv/a.txt"}, "name":' +
    '"read_text_file"},"id":"x\\u0041" ,"method":"tools/call",' +
    '"jsonrpc":"2.0"}\r';
  p.write(`${odd}\n`);
  assert.equal(await p.next(), odd);
  // Notifications and other requests pass unchanged too.
  p.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
  assert.equal(await p.next(),
    '{"jsonrpc":"2.0","method":"notifications/initialized"}');
  assert.deepEqual(await p.end(), [0, null]);
});

test('a denied call never reaches the server', async () => {
  const p = catProxy({ claims: bobFile });
  p.write(`${call(1, 'write_file', { path: '/srv/a.txt', content: 'x' })}\n`);
  const r = JSON.parse(await p.next());
  assert.equal(r.id, 1);
  assert.equal(r.result.isError, true);
  assert.match(r.result.content[0].text,
    /^trine denied this call \(filesystem\/write_file\): user_denied\.\n/);
  // A tools/call without an id is dropped, not forwarded unchecked.
  p.write('{"jsonrpc":"2.0","method":"tools/call","params":{"name":' +
    '"write_file","arguments":{"path":"/srv/a.txt","content":"x"}}}\n');
  p.write('{"jsonrpc":"2.0","id":2,"method":"ping"}\n');
  assert.equal(await p.next(), '{"jsonrpc":"2.0","id":2,"method":"ping"}');
  assert.deepEqual(await p.end(), [0, null]);
  assert.match(p.stderr(), /dropped a tools\/call notification/);
});

test('a batch loses its denied calls; the proxy answers them', async () => {
  const p = catProxy();
  const batch = [
    { jsonrpc: '2.0', id: 5, method: 'tools/call', params: {
      name: 'read_text_file', arguments: { path: '/srv/secrets/a' } } },
    { jsonrpc: '2.0', id: 6, method: 'tools/call', params: {
      name: 'read_text_file', arguments: { path: '/srv/b' } } },
    { jsonrpc: '2.0', method: 'notifications/progress', params: {} },
    7,
  ];
  p.write(`${JSON.stringify(batch)}\n`);
  const replies = JSON.parse(await p.next());
  assert.deepEqual(replies.map((r) => [r.id, r.result?.isError ?? r.error.code]),
    [[5, true], [null, -32600]]);
  assert.match(replies[0].result.content[0].text, /\): forbidden\.\n/);
  assert.deepEqual(JSON.parse(await p.next()), [batch[1], batch[2]]);
  // A batch whose calls are all allowed goes as it came.
  const ok = ` [${call(8, 'read_text_file', { path: '/srv/c' })} ] `;
  p.write(`${ok}\n`);
  assert.equal(await p.next(), ok);
  // An empty batch is answered by the proxy, as JSON-RPC says.
  p.write('[ ]\n');
  assert.deepEqual(JSON.parse(await p.next()), { jsonrpc: '2.0', id: null,
    error: { code: -32600, message: 'invalid request: an empty batch' } });
  assert.ok(await p.quiet(), 'nothing was forwarded');
  assert.deepEqual(await p.end(), [0, null]);
});

test('a message over --max-message is refused, and the session goes on',
  async () => {
    const p = catProxy({ extra: ['--max-message', '1024'] });
    const big = call(1, 'read_text_file', { path: `/srv/${'a'.repeat(1100)}` });
    p.write(`${big}\n`);
    assert.deepEqual(JSON.parse(await p.next()), {
      jsonrpc: '2.0', id: null, error: { code: -32600, message:
        'invalid request: the message exceeds --max-message (1024 bytes); ' +
        'nothing was forwarded' } });
    const small = call(2, 'read_text_file', { path: '/srv/a' });
    p.write(`${small}\n`);
    assert.equal(await p.next(), small);
    assert.ok(await p.quiet(), 'nothing of the long line was forwarded');
    assert.deepEqual(await p.end(), [0, null]);
  });

test('consent through elicitation: other traffic keeps its order', async () => {
  const p = catProxy();
  p.write(`${INIT_ELICIT}\n`);
  assert.equal(await p.next(), INIT_ELICIT);
  const write = call(9, 'write_file', { path: '/srv/notes.txt', content: 'x' });
  p.write(`${write}\n`);
  const el = JSON.parse(await p.next());
  assert.equal(el.method, 'elicitation/create');
  assert.match(el.id, /^trine-proxy-1-[0-9a-f]{16}$/);
  assert.match(el.params.message, /^Let claude-desktop write files as alice /);
  // A later request waits behind the call; a response to the server does
  // not wait.
  p.write('{"jsonrpc":"2.0","id":10,"method":"ping"}\n');
  p.write('{"jsonrpc":"2.0","id":77,"result":{}}\n');
  assert.equal(await p.next(), '{"jsonrpc":"2.0","id":77,"result":{}}');
  assert.ok(await p.quiet(), 'the ping waits for the call');
  p.send({ jsonrpc: '2.0', id: el.id, result: { action: 'accept' } });
  assert.equal(await p.next(), write);
  assert.equal(await p.next(), '{"jsonrpc":"2.0","id":10,"method":"ping"}');
  // The grant is the session's: the next write is not asked about.
  const write2 = call(11, 'write_file', { path: '/srv/b.txt', content: 'y' });
  p.write(`${write2}\n`);
  assert.equal(await p.next(), write2);
  assert.deepEqual(await p.end(), [0, null]);
  const session = /session ([0-9a-f]{32})/.exec(p.stderr())[1];
  const rows = auditRows(trined.audit).filter((r) => r.session === session);
  assert.deepEqual(rows.map((r) => r.decision),
    ['consent_required', 'allow', 'allow']);
});

test('a response whose id only looks like the proxy\'s goes to the server', async () => {
  const p = catProxy();
  p.write(`${INIT_ELICIT}\n`);
  await p.next();
  // The server may pick such ids; without this run's nonce they are its.
  const answer = '{"jsonrpc":"2.0","id":"trine-proxy-1-0123456789abcdef",' +
    '"result":{"action":"accept"}}';
  p.write(`${answer}\n`);
  assert.equal(await p.next(), answer);
  // Even while one of the proxy's own elicitations waits.
  p.write(`${call(3, 'write_file', { path: '/srv/e.txt', content: 'x' })}\n`);
  const el = JSON.parse(await p.next());
  assert.equal(el.method, 'elicitation/create');
  const forged = JSON.stringify({ jsonrpc: '2.0',
    id: el.id.replace(/[0-9a-f]{16}$/, '0'.repeat(16)),
    result: { action: 'accept' } });
  p.write(`${forged}\n`);
  assert.equal(await p.next(), forged);
  p.send({ jsonrpc: '2.0', id: el.id, result: { action: 'decline' } });
  const r = JSON.parse(await p.next());
  assert.equal(r.id, 3);
  assert.equal(r.result.isError, true);
  assert.deepEqual(await p.end(), [0, null]);
});

test('a full queue behind a consent wait: requests refused, drops said',
  async () => {
    // The queue holds 4 x --max-message, and at least 64 MiB.
    const p = catProxy({ extra: ['--max-message', '1100000'] });
    p.write(`${INIT_ELICIT}\n`);
    await p.next();
    p.write(`${call(4, 'write_file', { path: '/srv/q.txt', content: 'x' })}\n`);
    const el = JSON.parse(await p.next());
    assert.equal(el.method, 'elicitation/create');
    // 70 notifications of 1 MB fill the queue (at least 64 MiB) and more.
    const pad = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/pad',
      params: { p: 'x'.repeat(1000000) } });
    for (let i = 0; i < 70; i++) p.write(`${pad}\n`);
    // A batch is refused with an array, a request with an object (each
    // larger than what room may be left).
    const ping = (id) => JSON.stringify({ jsonrpc: '2.0', id, method: 'ping',
      params: { p: 'x'.repeat(1000000) } });
    p.write(`[${ping(41)}]\n`);
    p.write(`${ping(42)}\n`);
    const message = 'the proxy holds too many messages behind a call ' +
      'waiting for consent; send it again later';
    assert.deepEqual(JSON.parse(await p.next()), [{ jsonrpc: '2.0', id: 41,
      error: { code: -32603, message } }]);
    assert.deepEqual(JSON.parse(await p.next()), { jsonrpc: '2.0', id: 42,
      error: { code: -32603, message } });
    assert.match(p.stderr(), /dropped 1 message that cannot be answered/);
    p.send({ jsonrpc: '2.0', id: el.id, result: { action: 'decline' } });
    assert.equal(JSON.parse(await p.next()).id, 4);
    assert.deepEqual(await p.end(), [0, null]);
  });

test('a cancelled call is dropped, with its elicitation', async () => {
  const p = catProxy();
  p.write(`${INIT_ELICIT}\n`);
  await p.next();
  p.write(`${call('w', 'write_file', { path: '/srv/c.txt', content: 'x' })}\n`);
  const el = JSON.parse(await p.next());
  assert.equal(el.method, 'elicitation/create');
  p.send({ jsonrpc: '2.0', method: 'notifications/cancelled',
    params: { requestId: 'w', reason: 'timeout' } });
  assert.deepEqual(JSON.parse(await p.next()), { jsonrpc: '2.0',
    method: 'notifications/cancelled', params: { requestId: el.id,
      reason: 'the tool call was cancelled' } });
  // A late answer is taken by the proxy and goes nowhere.
  p.send({ jsonrpc: '2.0', id: el.id, result: { action: 'accept' } });
  p.write('{"jsonrpc":"2.0","id":12,"method":"ping"}\n');
  assert.equal(await p.next(), '{"jsonrpc":"2.0","id":12,"method":"ping"}');
  assert.ok(await p.quiet());
  assert.deepEqual(await p.end(), [0, null]);
});

test('a declined or unanswered elicitation fails the call', async () => {
  const p = catProxy();
  p.write(`${INIT_ELICIT}\n`);
  await p.next();
  p.write(`${call(1, 'write_file', { path: '/srv/d.txt', content: 'x' })}\n`);
  let el = JSON.parse(await p.next());
  p.send({ jsonrpc: '2.0', id: el.id, error: { code: -1, message: 'no UI' } });
  let r = JSON.parse(await p.next());
  assert.equal(r.id, 1);
  assert.match(r.result.content[0].text,
    /\nThe client could not ask the user \(the client answered error -1: no UI\), so the call was not made\./);
  // The client's input ends while it is being asked.
  p.write(`${call(2, 'write_file', { path: '/srv/d.txt', content: 'x' })}\n`);
  el = JSON.parse(await p.next());
  assert.match(el.id, /^trine-proxy-2-/);
  p.proc.stdin.end();
  r = JSON.parse(await p.next());
  assert.equal(r.id, 2);
  assert.match(r.result.content[0].text,
    /\nThe client closed its input before answering, so the call was not made\./);
  assert.deepEqual(await p.wait(), [0, null]);
});

test('the proxy exits with the server\'s status', async () => {
  let p = catProxy({ command: ['sh', '-c', 'exit 7'] });
  assert.deepEqual(await p.end(), [7, null]);
  p = catProxy({ command: ['sh', '-c', 'kill -TERM $$'] });
  assert.deepEqual(await p.wait(), [143, null]);
  p = catProxy({ command: [path.join(dir, 'no-such-server')] });
  assert.deepEqual(await p.wait(), [127, null]);
  assert.match(p.stderr(), /cannot run .*no-such-server: No such file or directory/);
  // A signal to the proxy goes to the server.
  p = catProxy({ command: ['sh', '-c',
    'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'] });
  assert.equal(await p.next(), 'ready');
  p.proc.kill('SIGTERM');
  assert.deepEqual(await p.wait(), [42, null]);
});

test('no identity, or a bad one, refuses to start', async () => {
  const cases = [
    [{}, null, /no identity to check calls with/],
    [{ TRINE_CLAIMS: '{"sub":' }, null, /TRINE_CLAIMS is not valid JSON: /],
    [{ TRINE_CLAIMS: '["alice"]' }, null, /TRINE_CLAIMS must be a JSON object/],
    [{ TRINE_BEARER: '' }, null, /TRINE_BEARER is empty/],
    [{ TRINE_BEARER: 't', TRINE_CLAIMS: '{}' }, null, /are both set/],
    [{}, path.join(dir, 'missing.json'), /--claims: cannot read .*missing\.json/],
  ];
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '{"sub": "alice",}');
  cases.push([{}, bad, /--claims .*bad\.json is not valid JSON: line 1/]);
  for (const [env, claims, msg] of cases) {
    const clean = { TRINE_CLAIMS: undefined, TRINE_BEARER: undefined, ...env };
    for (const k of Object.keys(clean)) if (clean[k] === undefined) delete clean[k];
    const p = rawProxy(trined.socket, claims, null, { command: ['cat'],
      env: clean });
    const [code] = await p.end();
    assert.equal(code, 3, `${JSON.stringify(env)}: ${p.stderr()}`);
    assert.match(p.stderr(), msg);
  }
});

test('claims from TRINE_CLAIMS are checked, and the server never sees them',
  async () => {
    const p = rawProxy(trined.socket, null, null, {
      command: ['sh', '-c', 'echo "env:${TRINE_CLAIMS:-none}"; exec cat'],
      env: { TRINE_CLAIMS: JSON.stringify(BOB) } });
    assert.equal(await p.next(), 'env:none');
    p.write(`${call(1, 'write_file', { path: '/srv/a', content: 'x' })}\n`);
    const r = JSON.parse(await p.next());
    assert.match(r.result.content[0].text, /user_denied/);
    assert.deepEqual(await p.end(), [0, null]);
  });
