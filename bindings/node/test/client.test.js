// The client against a real trined (policy-examples/notes), and against fake
// servers for the failures a real daemon does not produce on demand.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
    Decision,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    TrineClient,
    TrineConnectionError,
    TrineError,
    TrineProtocolError,
    TrineRpcError,
    TrineTimeoutError,
} from '../index.js';
import {
    Daemon,
    NOTES_POLICY,
    RESOURCE_METADATA,
    claims,
    tempDir,
} from '../test-support/daemon.js';

const POLICY_TEXT = readFileSync(path.join(NOTES_POLICY, 'notes.trine'));

// "sha256:" + hex SHA-256 over each file's name and bytes (DESIGN.md §2).
const REVISION = `sha256:${createHash('sha256').update('notes.trine')
    .update(POLICY_TEXT).digest('hex')}`;

// Returns "notes.trine:N" for the first policy line that contains needle.
function rule(needle) {
    const lines = POLICY_TEXT.toString('utf8').split('\n');
    const i = lines.findIndex(l => l.includes(needle));
    assert.notEqual(i, -1, `no policy line contains ${needle}`);
    return `notes.trine:${i + 1}`;
}

function read(folder, name, token = claims()) {
    return { server: 'notes', tool: 'read_note', arguments: { folder, name }, token };
}

function create(folder, name, session, token = claims({ scope: 'notes:write' })) {
    return {
        server: 'notes',
        tool: 'create_note',
        arguments: { folder, name, text: 'hello' },
        token,
        session,
    };
}

// A Unix socket server that runs onConnection for each client, in its own
// temporary directory. close() ends every connection.
async function fakeServer(onConnection) {
    const dir = tempDir('trine-fake-');
    const socketPath = path.join(dir, 'fake.sock');
    const sockets = new Set();
    let connections = 0;
    const server = net.createServer(sock => {
        connections += 1;
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => {});
        onConnection(sock);
    });
    await new Promise(resolve => server.listen(socketPath, resolve));
    return {
        socketPath,
        get connections() {
            return connections;
        },
        get open() {
            return sockets.size;
        },
        async close() {
            for (const s of sockets) {
                s.destroy();
            }
            await new Promise(resolve => server.close(resolve));
            rmSync(dir, { recursive: true, force: true });
        },
    };
}

// Calls fn on each request line a fake server receives.
function onLines(sock, fn) {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', data => {
        buf += data;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            fn(JSON.parse(line));
        }
    });
}

async function waitFor(cond, what, ms = 5000) {
    const deadline = Date.now() + ms;
    while (!cond()) {
        if (Date.now() > deadline) {
            assert.fail(`timed out waiting for ${what}`);
        }
        await new Promise(resolve => setTimeout(resolve, 10));
    }
}

describe('TrineClient against trined', () => {
    let daemon;
    let client;

    before(async () => {
        daemon = await new Daemon().start();
        client = new TrineClient({ socketPath: daemon.socketPath, timeoutMs: 30000 });
    });

    after(async () => {
        await client?.close();
        assert.equal(await daemon?.cleanup(), 0);
    });

    test('ping', async () => {
        assert.equal(await client.ping(), true);
    });

    test('an allowed read, with every field of the decision', async () => {
        const d = await client.check(read('team', 'plan'));
        assert.ok(d instanceof Decision);
        assert.equal(d.decision, 'allow');
        assert.equal(d.reason, 'allow');
        assert.equal(d.allowed, true);
        assert.deepEqual(d.requiredScopes, []);
        assert.equal(d.wwwAuthenticate, null);
        assert.equal(d.consent, null);
        assert.ok(Number.isInteger(d.auditId) && d.auditId > 0, `auditId ${d.auditId}`);
        assert.equal(d.policyRevision, REVISION);
        assert.deepEqual(d.reasons, [{ code: 'allow', rule: rule('tool "notes" "read_note"') }]);
        assert.deepEqual(d.matched, [
            { set: 'user', rule: rule('notes.create on "notes:team"') },
            { set: 'scope', rule: rule('scope "notes:read"') },
            { set: 'agent', rule: rule('agent "notes-desktop"') },
        ]);
        assert.equal(d.raw.audit_id, d.auditId);
        assert.ok(Object.isFrozen(d));
    });

    test('a deny names the set, the pair and the detail', async () => {
        const d = await client.check(read('bob', 'diary'));
        assert.equal(d.decision, 'deny');
        assert.equal(d.reason, 'user_denied');
        assert.equal(d.allowed, false);
        assert.deepEqual(d.reasons, [{
            code: 'user_denied',
            set: 'user',
            action: 'notes.read',
            resource: 'notes:bob/diary',
            detail: 'no role of user alice allows it',
        }]);
        assert.equal(d.explain(),
            'user_denied: no role of user alice allows it (notes.read on notes:bob/diary)');
    });

    test('each deny reason of the notes policy', async () => {
        const cases = [
            [read('team', 'plan', claims({ exp: 1700000000 })), 'token_expired'],
            [read('team', 'plan', claims({ sub: undefined })), 'token_invalid'],
            [read('team', 'plan', claims({ aud: 'https://elsewhere.example.com' })),
                'audience_mismatch'],
            [{ ...read('team', 'plan'), tool: 'rename_note' }, 'unknown_tool'],
            [read('..', 'plan'), 'argument_invalid'],
            [create('team', 'handbook', 's1'), 'forbidden'],
            [read('team', 'plan', claims({ client_id: 'notes-summarizer' })), 'allow'],
            [create('team', 'x', 's1', claims({ scope: 'notes:write',
                client_id: 'notes-summarizer' })), 'agent_denied'],
        ];
        for (const [req, reason] of cases) {
            const d = await client.check(req);
            assert.equal(d.reason, reason, JSON.stringify(req));
            assert.equal(d.decision, reason === 'allow' ? 'allow' : 'deny');
        }
    });

    test('scope_missing carries the step-up', async () => {
        const d = await client.check({
            server: 'notes',
            tool: 'delete_note',
            arguments: { folder: 'alice', name: 'old' },
            token: claims(),
        });
        assert.equal(d.decision, 'deny');
        assert.equal(d.reason, 'scope_missing');
        assert.deepEqual(d.requiredScopes, ['notes:delete']);
        assert.equal(d.wwwAuthenticate,
            'Bearer error="insufficient_scope", scope="notes:delete", '
            + `resource_metadata="${RESOURCE_METADATA}"`);
    });

    test('session consent: required, granted, listed, revoked', async () => {
        const first = await client.check(create('team', 'a', 'sess-1'));
        assert.equal(first.decision, 'consent_required');
        assert.equal(first.reason, 'consent_required');
        assert.deepEqual(first.consent, {
            mode: 'session',
            prompt: 'Let notes-desktop create notes in team for this session?',
        });
        const id = await client.grantConsent(first.auditId);
        assert.ok(Number.isInteger(id) && id > 0);

        assert.equal((await client.check(create('team', 'b', 'sess-1'))).decision, 'allow');
        assert.equal((await client.check(create('team', 'c', 'sess-1'))).decision, 'allow');
        assert.equal((await client.check(create('team', 'c', 'sess-2'))).decision,
            'consent_required');

        const listed = await client.listConsents({ user: 'alice', agent: 'notes-desktop' });
        const mine = listed.find(g => g.id === id);
        assert.deepEqual({ ...mine, granted_ms: 0 }, {
            id,
            user: 'alice',
            agent: 'notes-desktop',
            server: 'notes',
            tool: 'create_note',
            mode: 'session',
            session: 'sess-1',
            granted_ms: 0,
            expires_ms: null,
            used_ms: null,
            decision_id: first.auditId,
        });
        assert.deepEqual(await client.listConsents({ user: 'nobody' }), []);

        assert.equal(await client.revokeConsent(id), 1);
        assert.equal(await client.revokeConsent(id), 0);
        assert.equal((await client.check(create('team', 'd', 'sess-1'))).decision,
            'consent_required');
    });

    test('a grant with a ttl expires; revoke by user', async () => {
        const d = await client.check(create('team', 'e', 'sess-ttl'));
        const id = await client.grantConsent(d.auditId, { ttl: 3600 });
        const [g] = (await client.listConsents({ user: 'alice' })).filter(x => x.id === id);
        assert.equal(g.expires_ms - g.granted_ms, 3600 * 1000);
        assert.equal(await client.revokeConsent({ user: 'alice', tool: 'create_note' }), 1);
        assert.deepEqual((await client.listConsents({ user: 'alice' }))
            .filter(x => x.tool === 'create_note'), []);
    });

    test('always consent is used once, for those arguments only', async () => {
        const del = name => ({
            server: 'notes',
            tool: 'delete_note',
            arguments: { folder: 'alice', name },
            token: claims({ scope: 'notes:delete' }),
        });
        const d = await client.check(del('old'));
        assert.equal(d.decision, 'consent_required');
        assert.deepEqual(d.consent, {
            mode: 'always',
            prompt: 'Delete the note alice/old? This cannot be undone.',
        });
        await client.grantConsent(d.auditId);
        assert.equal((await client.check(del('other'))).decision, 'consent_required');
        assert.equal((await client.check(del('old'))).decision, 'allow');
        assert.equal((await client.check(del('old'))).decision, 'consent_required');
    });

    test('policy.status and policy.tools', async () => {
        const status = await client.policyStatus();
        assert.equal(status.revision, REVISION);
        assert.deepEqual(status.files, ['notes.trine']);
        assert.ok(Number.isInteger(status.loaded_at));
        assert.deepEqual(status.counts, {
            scope: 3, role: 4, user: 3, group: 1, agent: 2, server: 1, tool: 4,
            forbid: 1, rules: 11,
        });
        assert.deepEqual(await client.policyTools('notes'), {
            tools: ['list_notes', 'read_note', 'create_note', 'delete_note'],
            wildcard: false,
        });
        assert.deepEqual(await client.policyTools('github'), { tools: [], wildcard: false });
    });

    test('JSON-RPC errors become TrineRpcError with the code and message', async () => {
        await assert.rejects(client.check({ server: 42, tool: 'read_note', token: claims() }),
            err => err instanceof TrineRpcError && err instanceof TrineError
                && err.code === INVALID_PARAMS
                && err.message === 'params.server must be a string');
        await assert.rejects(client.request('no.such.method'), {
            name: 'TrineRpcError',
            code: METHOD_NOT_FOUND,
            message: 'unknown method "no.such.method"',
        });
        const allowed = await client.check(read('team', 'plan'));
        await assert.rejects(client.grantConsent(allowed.auditId), {
            code: INVALID_PARAMS,
            message: `params.audit_id: decision ${allowed.auditId} is allow, not consent_required`,
        });
        await assert.rejects(client.check({ ...read('team', 'plan'), token: undefined,
            bearer: 'opaque' }), {
            code: INVALID_PARAMS,
            message: 'params.bearer: bearer verification is not configured on this daemon; '
                + 'pass validated claims in params.token',
        });
        // The connection survives errors.
        assert.equal(await client.ping(), true);
    });

    test('500 concurrent checks on one connection, each matched to its request', async () => {
        const reqs = [];
        for (let i = 0; i < 500; i++) {
            // Alternate an allow, a user_denied and an argument_invalid, each
            // naming its own note, so a reply given to the wrong request shows.
            const kind = i % 3;
            if (kind === 0) {
                reqs.push([read('team', `n${i}`), 'allow', `n${i}`]);
            } else if (kind === 1) {
                reqs.push([read('bob', `n${i}`), 'user_denied', `n${i}`]);
            } else {
                reqs.push([read('team', `n${i}/x`), 'argument_invalid', null]);
            }
        }
        const out = await Promise.all(reqs.map(([r]) => client.check(r)));
        const ids = new Set();
        out.forEach((d, i) => {
            const [, reason, name] = reqs[i];
            assert.equal(d.reason, reason, `request ${i}`);
            if (reason === 'user_denied') {
                assert.equal(d.reasons[0].resource, `notes:bob/${name}`);
            }
            ids.add(d.auditId);
        });
        assert.equal(ids.size, 500);
    });
});

describe('TrineClient connections', () => {
    test('a missing socket is a TrineConnectionError', async () => {
        const dir = tempDir('trine-none-');
        const socketPath = path.join(dir, 'absent.sock');
        const client = new TrineClient({ socketPath });
        try {
            await assert.rejects(client.ping(), err => err instanceof TrineConnectionError
                && err.message === `cannot connect to trined at ${socketPath}: ENOENT`);
        } finally {
            await client.close();
            rmSync(dir, { recursive: true, force: true });
        }
    });

    test('reconnects after trined restarts', async () => {
        const daemon = await new Daemon().start();
        const client = new TrineClient({ socketPath: daemon.socketPath, timeoutMs: 30000 });
        try {
            const before = await client.check(read('team', 'plan'));
            assert.equal(before.decision, 'allow');
            assert.equal(await daemon.stop(), 0);
            await assert.rejects(client.ping(), TrineConnectionError);
            await daemon.start();
            assert.equal(await client.ping(), true);
            const after = await client.check(read('team', 'plan'));
            assert.equal(after.decision, 'allow');
            // The same audit log: ids go on where they stopped.
            assert.equal(after.auditId, before.auditId + 1);
        } finally {
            await client.close();
            assert.equal(await daemon.cleanup(), 0);
        }
    });

    test('a broken connection fails every pending call; the next call reconnects', async () => {
        let received = 0;
        const fake = await fakeServer(sock => onLines(sock, msg => {
            received += 1;
            if (fake.connections === 1 && received === 3) {
                sock.destroy();
            } else if (fake.connections > 1) {
                sock.write(`${JSON.stringify({ jsonrpc: '2.0', id: msg.id,
                    result: { pong: true } })}\n`);
            }
        }));
        const client = new TrineClient({ socketPath: fake.socketPath });
        try {
            const results = await Promise.allSettled([client.ping(), client.ping(),
                client.ping()]);
            for (const r of results) {
                assert.equal(r.status, 'rejected');
                assert.ok(r.reason instanceof TrineConnectionError, String(r.reason));
                assert.equal(r.reason.message,
                    `connection to trined at ${fake.socketPath} closed`);
            }
            assert.equal(await client.ping(), true);
            assert.equal(fake.connections, 2);
        } finally {
            await client.close();
            await fake.close();
        }
    });

    test('a timeout rejects with TrineTimeoutError and drops the connection', async () => {
        const fake = await fakeServer(sock => onLines(sock, msg => {
            // Answer only on a second connection: the first stays silent.
            if (fake.connections > 1) {
                sock.write(`${JSON.stringify({ jsonrpc: '2.0', id: msg.id,
                    result: { pong: true } })}\n`);
            }
        }));
        const client = new TrineClient({ socketPath: fake.socketPath, timeoutMs: 5000 });
        try {
            const t0 = Date.now();
            const slow = client.ping({ timeoutMs: 200 });
            const other = client.ping();
            await assert.rejects(slow, err => err instanceof TrineTimeoutError
                && err.timeoutMs === 200
                && err.message === `no reply from trined at ${fake.socketPath} within 200 ms`);
            const elapsed = Date.now() - t0;
            assert.ok(elapsed >= 190 && elapsed < 3000, `took ${elapsed} ms`);
            await assert.rejects(other, err => err instanceof TrineConnectionError
                && /timed out/.test(err.message));
            await waitFor(() => fake.open === 0, 'the dropped connection to close');
            assert.equal(await client.ping(), true);
            assert.equal(fake.connections, 2);
        } finally {
            await client.close();
            await fake.close();
        }
    });

    test('a reply that is not JSON, or answers another id, is a protocol error', async () => {
        const replies = ['this is not json', '{"jsonrpc":"2.0","id":999,"result":{}}',
            '{"jsonrpc":"2.0","id":1,"result":{"decision":"maybe","reason":"x"}}'];
        const fake = await fakeServer(sock => onLines(sock, msg => {
            const reply = replies[fake.connections - 1].replace('"id":1', `"id":${msg.id}`);
            sock.write(`${reply}\n`);
        }));
        const client = new TrineClient({ socketPath: fake.socketPath });
        try {
            await assert.rejects(client.ping(), {
                name: 'TrineProtocolError',
                message: 'trined sent a line that is not JSON',
            });
            await assert.rejects(client.ping(), {
                name: 'TrineProtocolError',
                message: 'trined replied with id 999 where 2 was expected',
            });
            await assert.rejects(client.check(read('team', 'plan')), err =>
                err instanceof TrineProtocolError
                && err.message === 'check result has an unknown decision: "maybe"');
        } finally {
            await client.close();
            await fake.close();
        }
    });

    test('an error without an id answers the oldest pending request', async () => {
        const fake = await fakeServer(sock => onLines(sock, () => {
            sock.write('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,'
                + '"message":"line exceeds 256 bytes","data":{"limit":256}}}\n');
        }));
        const client = new TrineClient({ socketPath: fake.socketPath });
        try {
            await assert.rejects(client.ping(), err => err instanceof TrineRpcError
                && err.code === -32700 && err.message === 'line exceeds 256 bytes'
                && err.data.limit === 256);
        } finally {
            await client.close();
            await fake.close();
        }
    });

    test('close() fails pending calls and refuses later ones', async () => {
        const fake = await fakeServer(() => {});
        const client = new TrineClient({ socketPath: fake.socketPath });
        try {
            const pending = assert.rejects(client.ping(), {
                name: 'TrineConnectionError',
                message: 'the client was closed',
            });
            await waitFor(() => fake.connections === 1, 'the connection');
            await client.close();
            await pending;
            await assert.rejects(client.ping(), {
                name: 'TrineConnectionError',
                message: 'the client is closed',
            });
        } finally {
            await fake.close();
        }
    });

    test('bad options are refused', () => {
        assert.throws(() => new TrineClient({ socketPath: '' }), TypeError);
        assert.throws(() => new TrineClient({ timeoutMs: 0 }), TypeError);
        assert.throws(() => new TrineClient({ timeoutMs: Infinity }), TypeError);
    });
});
