// `trine proxy` in front of the official filesystem MCP server: the SDK's
// Client talks to the proxy over stdio, the proxy asks a real trined about
// every tools/call, and the real server works on a temporary directory.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
  ALICE, BOB, auditRows, connect, killProxies, rawProxy, startTrined, tempDir,
  text,
} from './harness.mjs';

let dir;
let root;
let trined;

before(async () => {
  dir = tempDir();
  root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'secrets'), { recursive: true });
  fs.writeFileSync(path.join(root, 'notes.txt'), 'hello from notes\n');
  fs.writeFileSync(path.join(root, 'secrets', 'key.txt'), 'k3y\n');
  trined = await startTrined(dir);
});

after(async () => {
  killProxies();
  assert.equal(await trined.stop(), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(claims, onElicit) {
  return connect({ socket: trined.socket, claims, root, onElicit, dir });
}

const accept = async () => ({ action: 'accept', content: {} });
const decline = async () => ({ action: 'decline' });

test('an allowed read returns the file', async () => {
  const s = await open(ALICE);
  try {
    const r = await s.client.callTool({
      name: 'read_text_file',
      arguments: { path: path.join(root, 'notes.txt') },
    });
    assert.equal(r.isError, undefined);
    assert.equal(text(r), 'hello from notes\n');
  } finally {
    await s.close();
  }
});

test('a denied read is an isError result naming the reason', async () => {
  const s = await open(ALICE);
  try {
    const r = await s.client.callTool({
      name: 'read_text_file',
      arguments: { path: path.join(root, 'secrets', 'key.txt') },
    });
    assert.equal(r.isError, true);
    assert.match(text(r), /^trine denied this call \(filesystem\/read_text_file\): forbidden\.\n/);
    assert.match(text(r), /\nWhy: an absolute limit of the policy forbids it\.\n/);
    assert.doesNotMatch(text(r), /k3y/);
  } finally {
    await s.close();
  }
});

test('a denied write leaves the file system untouched', async () => {
  const s = await open(BOB, accept);
  const target = path.join(root, 'notes.txt');
  const fresh = path.join(root, 'bob.txt');
  try {
    const r = await s.client.callTool({
      name: 'write_file', arguments: { path: target, content: 'overwritten' },
    });
    assert.equal(r.isError, true);
    assert.match(text(r), /\): user_denied\.\n/);
    const r2 = await s.client.callTool({
      name: 'write_file', arguments: { path: fresh, content: 'x' },
    });
    assert.equal(r2.isError, true);
    assert.equal(s.elicited.length, 0, 'a deny never asks for consent');
  } finally {
    await s.close();
  }
  assert.equal(fs.readFileSync(target, 'utf8'), 'hello from notes\n');
  assert.equal(fs.existsSync(fresh), false);
});

test('a write that needs consent asks through elicitation, then runs',
  async () => {
    const s = await open(ALICE, accept);
    const target = path.join(root, 'consented.txt');
    try {
      const r = await s.client.callTool({
        name: 'write_file', arguments: { path: target, content: 'approved' },
      });
      assert.equal(r.isError, undefined, text(r));
      assert.equal(s.elicited.length, 1);
      const p = s.elicited[0].params;
      assert.equal(p.message, 'Let claude-desktop write files as alice for ' +
        `the rest of this session? First file: ${target}`);
      assert.deepEqual(p.requestedSchema, { type: 'object', properties: {} });
      assert.equal(fs.readFileSync(target, 'utf8'), 'approved');

      // The grant is for the session: the next write does not ask again.
      const r2 = await s.client.callTool({
        name: 'write_file',
        arguments: { path: path.join(root, 'second.txt'), content: '2' },
      });
      assert.equal(r2.isError, undefined, text(r2));
      assert.equal(s.elicited.length, 1);
    } finally {
      await s.close();
    }
    assert.equal(fs.readFileSync(path.join(root, 'second.txt'), 'utf8'), '2');
  });

test('a declined consent writes nothing', async () => {
  const s = await open(ALICE, decline);
  const target = path.join(root, 'declined.txt');
  try {
    const r = await s.client.callTool({
      name: 'write_file', arguments: { path: target, content: 'no' },
    });
    assert.equal(r.isError, true);
    assert.equal(s.elicited.length, 1);
    assert.match(text(r), /consent_required\./);
    assert.match(text(r), /\nPrompt: Let claude-desktop write files/);
    assert.match(text(r), /\nThe user declined, so the call was not made\./);
  } finally {
    await s.close();
  }
  assert.equal(fs.existsSync(target), false);
});

test('without the elicitation capability, consent is an isError that says ' +
  'how to grant it', async () => {
  const s = await open(ALICE);
  const target = path.join(root, 'no-elicit.txt');
  try {
    const r = await s.client.callTool({
      name: 'write_file', arguments: { path: target, content: 'no' },
    });
    assert.equal(r.isError, true);
    assert.match(text(r),
      /\nThis client cannot ask for consent .*: grant it with `trine consent grant \d+`/);
  } finally {
    await s.close();
  }
  assert.equal(fs.existsSync(target), false);
});

test('tools/list omits the tools the policy has no block for', async () => {
  const s = await open(ALICE);
  try {
    const { tools } = await s.client.listTools();
    const names = tools.map((t) => t.name).sort();
    assert.deepEqual(names, [
      'create_directory', 'directory_tree', 'edit_file', 'get_file_info',
      'list_directory', 'list_directory_with_sizes', 'move_file',
      'read_media_file', 'read_text_file', 'search_files', 'write_file',
    ]);
    // A kept tool arrives whole.
    const read = tools.find((t) => t.name === 'read_text_file');
    assert.equal(read.inputSchema.type, 'object');
    assert.ok(read.inputSchema.properties.path);
    // A hidden tool is still refused if called.
    const r = await s.client.callTool({ name: 'list_allowed_directories',
      arguments: {} });
    assert.equal(r.isError, true);
    assert.match(text(r), /\): unknown_tool\.\n/);
  } finally {
    await s.close();
  }
});

test('ping passes through to the server', async () => {
  const s = await open(ALICE);
  try {
    assert.deepEqual(await s.client.ping(), {});
  } finally {
    await s.close();
  }
});

test('a 1 MB argument passes', async () => {
  const s = await open(ALICE, accept);
  const target = path.join(root, 'big.txt');
  const content = 'abcdefghijklmnop'.repeat(65536);
  try {
    const r = await s.client.callTool({
      name: 'write_file', arguments: { path: target, content },
    });
    assert.equal(r.isError, undefined, text(r));
  } finally {
    await s.close();
  }
  assert.equal(fs.readFileSync(target, 'utf8'), content);
});

test('a garbage line gets a parse error and the session goes on',
  async () => {
    const claimsFile = path.join(dir, 'raw-claims.json');
    fs.writeFileSync(claimsFile, JSON.stringify(ALICE));
    const p = rawProxy(trined.socket, claimsFile, root);
    p.write('this is not json\n');
    assert.deepEqual(JSON.parse(await p.next()), {
      jsonrpc: '2.0', id: null,
      error: { code: -32700, message:
        "parse error: invalid JSON at byte 4: invalid token near 'this'" },
    });
    p.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {
      protocolVersion: '2025-06-18', capabilities: {},
      clientInfo: { name: 'raw', version: '1' } } });
    const init = JSON.parse(await p.next());
    assert.equal(init.id, 1);
    assert.ok(init.result.serverInfo);
    p.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    p.write('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{' +
      '"name":"read_text_file","name":"write_file"}}\n');
    const dup = JSON.parse(await p.next());
    assert.equal(dup.id, null);
    assert.equal(dup.error.code, -32700);
    assert.match(dup.error.message, /duplicate object key/);
    p.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: {
      name: 'read_text_file', arguments: { path: path.join(root,
        'notes.txt') } } });
    const r = JSON.parse(await p.next());
    assert.equal(r.id, 3);
    assert.equal(r.result.content[0].text, 'hello from notes\n');
    assert.deepEqual(await p.end(), [0, null]);
  });

test('with trined stopped, calls fail closed; it is asked again once back',
  async () => {
    const d2 = tempDir('trine-proxy-down-');
    const t2 = await startTrined(d2);
    const s = await connect({ socket: t2.socket, claims: ALICE, root,
      onElicit: accept, dir: d2 });
    const target = path.join(root, 'while-down.txt');
    try {
      const ok = await s.client.callTool({ name: 'read_text_file',
        arguments: { path: path.join(root, 'notes.txt') } });
      assert.equal(ok.isError, undefined);
      assert.equal(await t2.stop(), 0);

      const r = await s.client.callTool({ name: 'write_file',
        arguments: { path: target, content: 'x' } });
      assert.equal(r.isError, true);
      assert.match(text(r), /^authorization unavailable: /);
      const r2 = await s.client.callTool({ name: 'read_text_file',
        arguments: { path: path.join(root, 'notes.txt') } });
      assert.equal(r2.isError, true);
      assert.match(text(r2), /^authorization unavailable: cannot connect to /);
      assert.equal(s.elicited.length, 0);
      // tools/list cannot be filtered: an error, not an unfiltered list.
      await assert.rejects(s.client.listTools(), (e) => {
        assert.equal(e.code, -32603);
        assert.match(e.message, /authorization unavailable: cannot connect to /);
        return true;
      });

      const t3 = await startTrined(d2);
      try {
        const back = await s.client.callTool({ name: 'read_text_file',
          arguments: { path: path.join(root, 'notes.txt') } });
        assert.equal(back.isError, undefined);
        assert.equal(text(back), 'hello from notes\n');
      } finally {
        assert.equal(await t3.stop(), 0);
      }
    } finally {
      await s.close();
      fs.rmSync(d2, { recursive: true, force: true });
    }
    assert.equal(fs.existsSync(target), false);
  });

test('every call the proxy decided has its audit row with its session',
  async () => {
    const s = await open(ALICE, accept);
    let session;
    try {
      session = await s.session;
      assert.match(session, /^[0-9a-f]{32}$/);
      const calls = [
        ['read_text_file', { path: path.join(root, 'notes.txt') }],
        ['read_text_file', { path: path.join(root, 'secrets', 'key.txt') }],
        ['write_file', { path: path.join(root, 'audited.txt'), content: 'a' }],
        ['read_file', { path: path.join(root, 'notes.txt') }],
      ];
      for (const [name, args] of calls)
        await s.client.callTool({ name, arguments: args });
    } finally {
      await s.close();
    }
    const rows = auditRows(trined.audit).filter((r) => r.session === session);
    assert.deepEqual(rows.map((r) => [r.tool, r.decision, r.reason]), [
      ['read_text_file', 'allow', 'allow'],
      ['read_text_file', 'deny', 'forbidden'],
      ['write_file', 'consent_required', 'consent_required'],
      ['write_file', 'allow', 'allow'],
      ['read_file', 'deny', 'unknown_tool'],
    ]);
    for (const r of rows) {
      assert.equal(r.server, 'filesystem');
      assert.equal(r.user, 'alice');
      assert.equal(r.agent, 'claude-desktop');
    }
    // The content is redacted in the log.
    assert.equal(rows[2].arguments.content, '[redacted]');
    // Another run of the proxy is another session.
    const other = auditRows(trined.audit).filter((r) => r.session &&
      r.session !== session);
    assert.ok(other.length > 0);
  });
