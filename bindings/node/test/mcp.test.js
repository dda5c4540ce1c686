// The MCP middleware, end to end: the SDK's own Client talks to the example
// notes server (examples/notes-server) over the SDK's InMemoryTransport, and
// the server asks a real trined running policy-examples/notes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTaskStore } from
    '@modelcontextprotocol/sdk/experimental/tasks/stores/in-memory.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

import { TrineClient } from '../index.js';
import { claimsFromAuthInfo, protect, trineClientOf } from '../mcp.js';
import {
    AUDIENCE,
    Daemon,
    RESOURCE_METADATA,
    SOURCE_DIR,
    claims,
    tempDir,
} from '../test-support/daemon.js';

const EXAMPLE_DIR = path.join(SOURCE_DIR, 'examples', 'notes-server');
const { createNotesServer } = await import(
    pathToFileURL(path.join(EXAMPLE_DIR, 'notes.js')).href);

// The AuthInfo an HTTP auth middleware (the SDK's requireBearerAuth) would
// attach for alice's token through the notes-desktop agent.
function aliceAuth(scopes = ['notes:read', 'notes:write', 'notes:delete']) {
    return {
        token: 'opaque-token-of-alice',
        clientId: 'notes-desktop',
        scopes,
        expiresAt: 1893456000,
        resource: new URL(AUDIENCE),
        extra: { sub: 'alice' },
    };
}

// Wraps the server side of a transport the way an authenticating HTTP
// transport behaves: every message reaches the server with the verified
// token's AuthInfo in its extra (StreamableHTTPServerTransport passes
// req.auth as extra.authInfo; Protocol hands it to handlers).
function withAuth(transport, authInfo) {
    return new Proxy(transport, {
        set(target, key, value) {
            if (key === 'onmessage' && typeof value === 'function') {
                target.onmessage = (message, extra) =>
                    value(message, { ...extra, authInfo });
                return true;
            }
            target[key] = value;
            return true;
        },
    });
}

const SEED = {
    notes: {
        'team/plan': { folder: 'team', name: 'plan', text: 'Ship it', created: 'x' },
        'alice/old': { folder: 'alice', name: 'old', text: 'Old stuff', created: 'x' },
        'bob/diary': { folder: 'bob', name: 'diary', text: 'Dear diary', created: 'x' },
    },
};

function textOf(result) {
    assert.equal(result.content.length, 1, JSON.stringify(result));
    assert.equal(result.content[0].type, 'text');
    return result.content[0].text;
}

describe('protect() with the notes server', () => {
    let daemon;
    let trine;
    let dir;
    let open;

    before(async () => {
        daemon = await new Daemon().start();
        trine = new TrineClient({ socketPath: daemon.socketPath, timeoutMs: 30000 });
    });

    after(async () => {
        await trine?.close();
        assert.equal(await daemon?.cleanup(), 0);
    });

    beforeEach(() => {
        dir = tempDir('trine-notes-');
        writeFileSync(path.join(dir, 'notes.json'), JSON.stringify(SEED));
        open = [];
    });

    afterEach(async () => {
        for (const c of open) {
            await c.close();
        }
        rmSync(dir, { recursive: true, force: true });
    });

    function onDisk() {
        return Object.keys(JSON.parse(readFileSync(path.join(dir, 'notes.json'), 'utf8')).notes)
            .sort();
    }

    // Connects an SDK Client to a fresh notes server. elicit: the client's
    // answer to a consent question (no elicitation capability when absent).
    async function connect({ authInfo = aliceAuth(), elicit, server: serverOptions = {} } = {}) {
        const events = { denied: [], stepUps: [], errors: [], asked: [] };
        const server = createNotesServer({
            dir,
            trine,
            onDeny: (d, info) => events.denied.push({ d, info }),
            onStepUp: (d, info) => events.stepUps.push({ d, info }),
            onError: err => events.errors.push(err),
            ...serverOptions,
        });
        const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
        await server.connect(authInfo ? withAuth(serverSide, authInfo) : serverSide);
        const client = new Client({ name: 'notes-test-client', version: '1.0.0' },
            elicit ? { capabilities: { elicitation: {} } } : {});
        if (elicit) {
            client.setRequestHandler(ElicitRequestSchema, async req => {
                events.asked.push(req.params);
                return elicit(req.params);
            });
        }
        await client.connect(clientSide);
        const c = {
            client,
            server,
            events,
            call: (name, args) => client.callTool({ name, arguments: args }),
            close: async () => {
                await client.close();
                await server.close();
            },
        };
        open.push(c);
        return c;
    }

    test('an allowed call runs the tool', async () => {
        const c = await connect();
        const read = await c.call('read_note', { folder: 'team', name: 'plan' });
        assert.equal(read.isError, undefined);
        assert.equal(textOf(read), 'Ship it');
        assert.equal(textOf(await c.call('list_notes', { folder: 'team' })), 'plan');
        assert.deepEqual(c.events.denied, []);
    });

    test('a denied call returns the reason and does not run', async () => {
        const c = await connect();
        const r = await c.call('read_note', { folder: 'bob', name: 'diary' });
        assert.equal(r.isError, true);
        assert.equal(textOf(r), 'Tool read_note was denied by policy: user_denied: no role '
            + 'of user alice allows it (notes.read on notes:bob/diary).');
        assert.equal(c.events.denied.length, 1);
        const { d, info } = c.events.denied[0];
        assert.equal(d.reason, 'user_denied');
        assert.equal(info.tool, 'read_note');
        assert.deepEqual(info.arguments, { folder: 'bob', name: 'diary' });
        assert.deepEqual(c.events.stepUps, []);
    });

    test('scope_missing names the scopes and WWW-Authenticate, and calls onStepUp', async () => {
        const c = await connect({ authInfo: aliceAuth(['notes:read']) });
        const r = await c.call('delete_note', { folder: 'alice', name: 'old' });
        assert.equal(r.isError, true);
        const www = 'Bearer error="insufficient_scope", scope="notes:delete", '
            + `resource_metadata="${RESOURCE_METADATA}"`;
        assert.equal(textOf(r), [
            'Tool delete_note was denied by policy: scope_missing: no scope of the token '
                + 'allows it (notes.delete on notes:alice/old).',
            'Required scopes: notes:delete',
            `WWW-Authenticate: ${www}`,
        ].join('\n'));
        assert.equal(c.events.stepUps.length, 1);
        assert.equal(c.events.stepUps[0].d.wwwAuthenticate, www);
        assert.deepEqual(c.events.stepUps[0].d.requiredScopes, ['notes:delete']);
        assert.equal(c.events.denied.length, 1);
        assert.ok(onDisk().includes('alice/old'));
    });

    test('consent through elicitation: once per session, every time for delete', async () => {
        const c = await connect({ elicit: () => ({ action: 'accept', content: {} }) });
        assert.equal(textOf(await c.call('create_note',
            { folder: 'team', name: 'a', text: 'A' })), 'Created team/a.');
        assert.deepEqual(c.events.asked, [{
            mode: 'form',
            message: 'Let notes-desktop create notes in team for this session?',
            requestedSchema: { type: 'object', properties: {} },
        }]);
        // The session grant covers the next call: no second question.
        assert.equal(textOf(await c.call('create_note',
            { folder: 'team', name: 'b', text: 'B' })), 'Created team/b.');
        assert.equal(c.events.asked.length, 1);
        assert.deepEqual(onDisk(), ['alice/old', 'bob/diary', 'team/a', 'team/b', 'team/plan']);

        // Deleting asks each time, with the note in the question.
        assert.equal(textOf(await c.call('delete_note', { folder: 'alice', name: 'old' })),
            'Deleted alice/old.');
        assert.equal(c.events.asked.length, 2);
        assert.equal(c.events.asked[1].message,
            'Delete the note alice/old? This cannot be undone.');
        const again = await c.call('delete_note', { folder: 'alice', name: 'old' });
        assert.equal(c.events.asked.length, 3);
        assert.equal(textOf(again), 'No note alice/old.');
        assert.deepEqual(onDisk(), ['bob/diary', 'team/a', 'team/b', 'team/plan']);

        // Another connection is another session: it is asked again.
        const other = await connect({ elicit: () => ({ action: 'accept' }) });
        assert.equal(textOf(await other.call('create_note',
            { folder: 'team', name: 'c', text: 'C' })), 'Created team/c.');
        assert.equal(other.events.asked.length, 1);
        assert.equal(c.events.asked.length, 3);

        const grants = (await trine.listConsents({ user: 'alice' }))
            .filter(g => g.tool === 'create_note');
        assert.equal(grants.length, 2);
        assert.notEqual(grants[0].session, grants[1].session);
        assert.deepEqual(grants.map(g => g.mode), ['session', 'session']);
        await trine.revokeConsent({ user: 'alice' });
    });

    test('declined consent: the tool does not run', async () => {
        const c = await connect({ elicit: () => ({ action: 'decline' }) });
        const created = await c.call('create_note', { folder: 'team', name: 'x', text: 'X' });
        assert.equal(created.isError, true);
        assert.equal(textOf(created), 'Consent was declined: create_note did not run.');
        const deleted = await c.call('delete_note', { folder: 'alice', name: 'old' });
        assert.equal(deleted.isError, true);
        assert.equal(textOf(deleted), 'Consent was declined: delete_note did not run.');
        assert.equal(c.events.asked.length, 2);
        assert.deepEqual(onDisk(), ['alice/old', 'bob/diary', 'team/plan']);
        assert.deepEqual(await trine.listConsents({ user: 'alice' }), []);

        const cancelled = await connect({ elicit: () => ({ action: 'cancel' }) });
        const r = await cancelled.call('delete_note', { folder: 'alice', name: 'old' });
        assert.equal(r.isError, true);
        assert.equal(textOf(r),
            'Consent was declined (the request was dismissed): delete_note did not run.');
        assert.deepEqual(onDisk(), ['alice/old', 'bob/diary', 'team/plan']);
    });

    test('a client without elicitation is told that consent is needed', async () => {
        const c = await connect();
        const r = await c.call('create_note', { folder: 'team', name: 'x', text: 'X' });
        assert.equal(r.isError, true);
        assert.equal(textOf(r), 'Consent is needed before create_note can run: Let '
            + 'notes-desktop create notes in team for this session? This client cannot ask '
            + 'the user (it does not support elicitation).');
        assert.deepEqual(onDisk(), ['alice/old', 'bob/diary', 'team/plan']);
    });

    test('no daemon: every call is refused', async () => {
        const nowhere = path.join(dir, 'absent.sock');
        const c = await connect({ server: { trine: undefined, socketPath: nowhere } });
        const r = await c.call('read_note', { folder: 'team', name: 'plan' });
        assert.equal(r.isError, true);
        assert.equal(textOf(r), 'Tool read_note did not run: no decision from the policy '
            + `daemon (cannot connect to trined at ${nowhere}: ENOENT).`);
        assert.equal(c.events.errors.length, 1);
        assert.equal(c.events.errors[0].name, 'TrineConnectionError');
        await trineClientOf(c.server).close();
    });

    test('identity: authInfo.extra.claims, the claims hook, bearer, none', async () => {
        const asBob = await connect({
            authInfo: { token: 't', clientId: 'ignored', scopes: [],
                extra: { claims: claims({ sub: 'bob' }) } },
        });
        assert.equal(textOf(await asBob.call('read_note', { folder: 'bob', name: 'diary' })),
            'Dear diary');

        const hooked = await connect({
            server: { claimsFromAuthInfo: () => ({ client_id: 'notes-summarizer' }) },
            elicit: () => ({ action: 'accept' }),
        });
        const r = await hooked.call('create_note', { folder: 'team', name: 'x', text: 'X' });
        assert.equal(textOf(r), 'Tool create_note was denied by policy: agent_denied: no agent '
            + 'block allows agent notes-summarizer to do it (notes.create on notes:team/x).');
        assert.equal(hooked.events.asked.length, 0);

        const bearer = await connect({ server: { bearer: true } });
        assert.equal(textOf(await bearer.call('read_note', { folder: 'team', name: 'plan' })),
            'Tool read_note did not run: no decision from the policy daemon (params.bearer: '
            + 'bearer verification is not configured on this daemon; pass validated claims in '
            + 'params.token).');

        const anonymous = await connect({ authInfo: null });
        const denied = await anonymous.call('read_note', { folder: 'team', name: 'plan' });
        // No identity at all: trine is asked with empty claims, which fail
        // the first token check (the server has an audience).
        assert.equal(denied.isError, true);
        assert.equal(anonymous.events.denied[0].d.reason, 'audience_mismatch');

        const fromEnv = await connect({ authInfo: null, server: { claims: claims() } });
        assert.equal(textOf(await fromEnv.call('read_note', { folder: 'team', name: 'plan' })),
            'Ship it');
    });

    test('claims read from AuthInfo', () => {
        assert.deepEqual(claimsFromAuthInfo(aliceAuth()), {
            sub: 'alice',
            client_id: 'notes-desktop',
            scope: 'notes:read notes:write notes:delete',
            exp: 1893456000,
            aud: AUDIENCE,
        });
        assert.deepEqual(claimsFromAuthInfo({ token: 't', clientId: 'c', scopes: ['a'],
            extra: { aud: ['x', 'y'], groups: ['editors'], internal: 1 } }), {
            aud: ['x', 'y'], groups: ['editors'], client_id: 'c', scope: 'a',
        });
        assert.deepEqual(claimsFromAuthInfo(undefined), {});
    });

    test('tools registered after protect() are guarded too', async () => {
        const c = await connect();
        let ran = false;
        c.server.registerTool('rename_note', {
            inputSchema: { folder: z.string(), name: z.string() },
        }, async () => {
            ran = true;
            return { content: [{ type: 'text', text: 'renamed' }] };
        });
        const r = await c.call('rename_note', { folder: 'team', name: 'plan' });
        assert.equal(r.isError, true);
        assert.equal(textOf(r), 'Tool rename_note was denied by policy: unknown_tool: '
            + 'no tool "rename_note" on server "notes".');
        assert.equal(ran, false);
    });

    test('task tools the SDK polls by itself are guarded too', async () => {
        const taskStore = new InMemoryTaskStore();
        const server = protect(new McpServer({ name: 'notes', version: '1.0.0' },
            { taskStore }), { server: 'notes', client: trine });
        const created = [];
        for (const name of ['list_notes', 'rename_note']) {
            server.experimental.tasks.registerToolTask(name, {
                inputSchema: { folder: z.string() },
                execution: { taskSupport: 'optional' },
            }, {
                createTask: async (args, extra) => {
                    created.push(name);
                    const task = await extra.taskStore.createTask({ ttl: 60000,
                        pollInterval: 10 });
                    await extra.taskStore.storeTaskResult(task.taskId, 'completed', {
                        content: [{ type: 'text', text: `${name} in ${args.folder}` }],
                    });
                    return { task };
                },
                getTask: async (args, extra) => extra.taskStore.getTask(extra.taskId),
                getTaskResult: async (args, extra) =>
                    extra.taskStore.getTaskResult(extra.taskId),
            });
        }
        const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
        await server.connect(withAuth(serverSide, aliceAuth()));
        const client = new Client({ name: 'task-client', version: '1.0.0' });
        await client.connect(clientSide);
        open.push({ close: async () => {
            await client.close();
            await server.close();
            taskStore.cleanup();
        } });

        const denied = await client.callTool({ name: 'rename_note',
            arguments: { folder: 'team' } });
        assert.equal(denied.isError, true);
        assert.equal(textOf(denied), 'Tool rename_note was denied by policy: unknown_tool: '
            + 'no tool "rename_note" on server "notes".');
        assert.deepEqual(created, []);
        const allowed = await client.callTool({ name: 'list_notes',
            arguments: { folder: 'team' } });
        assert.equal(textOf(allowed), 'list_notes in team');
        assert.deepEqual(created, ['list_notes']);
    });

    test('protect() refuses what it cannot guard', () => {
        const server = createNotesServer({ dir, trine });
        assert.throws(() => protect(server, { server: 'notes', client: trine }),
            { message: 'this McpServer is already protected' });
        assert.throws(() => protect({ server: {} }, { server: 'notes' }), TypeError);
    });

    test('the stdio server takes its identity from TRINE_CLAIMS', async () => {
        const transport = new StdioClientTransport({
            command: process.execPath,
            args: [path.join(EXAMPLE_DIR, 'server.js'), '--dir', dir,
                '--socket', daemon.socketPath],
            env: { PATH: process.env.PATH, TRINE_CLAIMS: JSON.stringify(claims()) },
            stderr: 'ignore',
        });
        const client = new Client({ name: 'stdio-test', version: '1.0.0' });
        await client.connect(transport);
        try {
            const { tools } = await client.listTools();
            assert.deepEqual(tools.map(t => t.name),
                ['list_notes', 'read_note', 'create_note', 'delete_note']);
            const r = await client.callTool({ name: 'list_notes', arguments: { folder: 'team' } });
            assert.equal(textOf(r), 'plan');
            const d = await client.callTool({ name: 'read_note',
                arguments: { folder: 'bob', name: 'diary' } });
            assert.equal(d.isError, true);
            assert.match(textOf(d), /^Tool read_note was denied by policy: user_denied: /);
        } finally {
            await client.close();
        }

        const bad = spawnSync(process.execPath, [path.join(EXAMPLE_DIR, 'server.js'),
            '--dir', dir], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
        assert.equal(bad.status, 2);
        assert.equal(bad.stderr, 'notes-server: TRINE_CLAIMS is not set: it must hold the '
            + 'token claims as a JSON object\n');
    });
});
