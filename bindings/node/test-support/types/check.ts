// Compiled with tsc --noEmit by test/types.test.js: the declarations must
// describe the package as a TypeScript user calls it.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

import {
    Decision,
    INVALID_PARAMS,
    TrineClient,
    TrineRpcError,
    TrineTimeoutError,
} from 'trine-client';
import { claimsFromAuthInfo, protect, trineClientOf } from 'trine-client/mcp';

async function main(): Promise<void> {
    const client = new TrineClient({ socketPath: '/run/trine/trine.sock', timeoutMs: 2000 });
    const d: Decision = await client.check({
        server: 'notes',
        tool: 'read_note',
        arguments: { folder: 'team', name: 'plan' },
        token: { sub: 'alice', scope: 'notes:read', client_id: 'notes-desktop' },
        session: 's1',
    });
    const allowed: boolean = d.allowed;
    const scopes: string[] = d.requiredScopes;
    const www: string | null = d.wwwAuthenticate;
    const prompt: string | null | undefined = d.consent?.prompt;
    if (d.decision === 'consent_required' && d.auditId !== null) {
        const id: number = await client.grantConsent(d.auditId, { ttl: 60 });
        const revoked: number = await client.revokeConsent(id);
        await client.revokeConsent({ user: 'alice', tool: 'create_note' });
        void revoked;
    }
    const grants = await client.listConsents({ user: 'alice' });
    const mode: 'session' | 'once' | 'always' = grants[0].mode;
    const tools: string[] = (await client.policyTools('notes')).tools;
    const rev: string = (await client.policyStatus()).revision;
    const pong: true = await client.ping();
    try {
        await client.request('nope');
    } catch (err) {
        if (err instanceof TrineRpcError && err.code === INVALID_PARAMS) {
            const data: unknown = err.data;
            void data;
        }
        if (err instanceof TrineTimeoutError) {
            const ms: number = err.timeoutMs;
            void ms;
        }
    }
    void [allowed, scopes, www, prompt, mode, tools, rev, pong, d.explain()];

    const server = protect(new McpServer({ name: 'notes', version: '1.0.0' }), {
        server: 'notes',
        client,
        sessionId: extra => extra.sessionId ?? 'stdio',
        claimsFromAuthInfo: auth => ({ sub: String(auth.extra?.sub ?? '') }),
        onStepUp: (decision, info) => {
            const header: string | null = decision.wwwAuthenticate;
            const tool: string = info.tool;
            void [header, tool];
        },
        consentSchema: { type: 'object', properties: {} },
    });
    const same: McpServer = server;
    const c: TrineClient | null = trineClientOf(server);
    const claims = claimsFromAuthInfo({ token: 't', clientId: 'c', scopes: ['a'] });
    void [same, c, claims.scope];
    await client.close();
}

void main;
