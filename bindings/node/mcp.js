// An enforcement point for MCP servers built with the official TypeScript
// SDK (@modelcontextprotocol/sdk): before a tool handler runs, trined is
// asked whether this caller may run this tool with these arguments.
//
// Where it hooks in: McpServer runs every tool handler through one method,
// executeToolHandler(tool, args, extra), called by its tools/call request
// handler after the arguments were validated against the tool's input
// schema (and tools whose tasks the SDK polls by itself go through
// handleAutomaticTaskPolling). protect() replaces both on the instance, so
// every tool is guarded, whether it was registered before or after
// protect(), renamed, or had its callback replaced with update(); and the
// policy sees exactly the arguments the handler would get. Both methods
// exist from SDK 1.24.0 on; protect() refuses an McpServer without them
// rather than leave it unguarded.

import { TrineClient } from './client.js';

const PROTECTED = Symbol.for('trine.protected');

// Claim names taken from AuthInfo.extra when it holds no `claims` object.
const CLAIM_NAMES = ['sub', 'aud', 'azp', 'iss', 'exp', 'nbf', 'iat', 'groups',
    'roles', 'act', 'scp'];

// The consent question: accept, decline or cancel, with nothing to fill in.
const CONSENT_SCHEMA = Object.freeze({ type: 'object', properties: {} });

function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function errorResult(text) {
    return { isError: true, content: [{ type: 'text', text }] };
}

/**
 * Returns the token claims trine is given for an AuthInfo (the object an
 * SDK auth middleware puts on req.auth, which reaches handlers as
 * extra.authInfo): authInfo.extra.claims when it is an object; otherwise
 * the standard claims found in authInfo.extra (sub, aud, groups, ...), with
 * client_id from clientId, scope from scopes (space-separated), exp from
 * expiresAt, and aud from resource when no aud was given. The returned
 * object is new; the caller owns it.
 */
export function claimsFromAuthInfo(authInfo) {
    if (!isObject(authInfo)) {
        return {};
    }
    const extra = isObject(authInfo.extra) ? authInfo.extra : {};
    if (isObject(extra.claims)) {
        return { ...extra.claims };
    }
    const claims = {};
    for (const name of CLAIM_NAMES) {
        if (extra[name] !== undefined) {
            claims[name] = extra[name];
        }
    }
    if (typeof authInfo.clientId === 'string' && authInfo.clientId !== '') {
        claims.client_id = authInfo.clientId;
    }
    if (Array.isArray(authInfo.scopes)) {
        claims.scope = authInfo.scopes.join(' ');
    }
    if (typeof authInfo.expiresAt === 'number') {
        claims.exp = authInfo.expiresAt;
    }
    if (claims.aud === undefined && authInfo.resource !== undefined) {
        claims.aud = String(authInfo.resource);
    }
    return claims;
}

/**
 * Returns the text of the tool result for a denied call: the reason and its
 * detail and, for scope_missing, the scopes to ask for and the ready
 * WWW-Authenticate value.
 */
export function denyText(tool, decision) {
    const lines = [`Tool ${tool} was denied by policy: ${decision.explain()}.`];
    if (decision.requiredScopes.length > 0) {
        lines.push(`Required scopes: ${decision.requiredScopes.join(' ')}`);
    }
    if (decision.wwwAuthenticate !== null) {
        lines.push(`WWW-Authenticate: ${decision.wwwAuthenticate}`);
    }
    return lines.join('\n');
}

function promptOf(tool, decision) {
    const prompt = decision.consent?.prompt;
    return typeof prompt === 'string' && prompt !== ''
        ? prompt : `Allow the tool ${tool} to run?`;
}

// True when the client declared form elicitation: `elicitation: {}` (which
// the SDK reads as form) or `elicitation: {form: {...}}`.
function canElicit(mcp) {
    const caps = mcp.server.getClientCapabilities?.();
    const e = caps?.elicitation;
    return isObject(e) && (e.form !== undefined || e.url === undefined);
}

function resolveOption(value, extra) {
    return typeof value === 'function' ? value(extra) : value;
}

/**
 * The decision procedure for one tool call, shared by both interception
 * points. Owns nothing beyond the call.
 */
class Guard {
    constructor(mcp, options) {
        if (typeof options.server !== 'string' || options.server === '') {
            throw new TypeError('protect(): options.server must name the server in the policy');
        }
        this.mcp = mcp;
        this.options = options;
        this.server = options.server;
        this.client = options.client ?? new TrineClient({
            socketPath: options.socketPath,
            timeoutMs: options.timeoutMs,
        });
    }

    // The identity part of the check request: {bearer} or {token}.
    async identity(extra) {
        const auth = extra?.authInfo;
        if (isObject(auth)) {
            if (this.options.bearer === true && typeof auth.token === 'string'
                && auth.token !== '') {
                return { bearer: auth.token };
            }
            if (this.options.bearer !== true) {
                const claims = claimsFromAuthInfo(auth);
                const hook = this.options.claimsFromAuthInfo;
                if (typeof hook === 'function') {
                    const more = await hook(auth, extra);
                    if (isObject(more)) {
                        Object.assign(claims, more);
                    }
                }
                return { token: claims };
            }
        }
        if (this.options.claims !== undefined) {
            return { token: await resolveOption(this.options.claims, extra) };
        }
        // No identity at all: trine refuses empty claims (no sub; no aud
        // when the server has an audience), and audits the refusal like any
        // other decision.
        return { token: {} };
    }

    async request(tool, args, extra) {
        const request = {
            server: this.server,
            tool,
            arguments: args === undefined ? {} : args,
            ...await this.identity(extra),
        };
        const session = extra?.sessionId
            ?? await resolveOption(this.options.sessionId, extra);
        if (typeof session === 'string' && session !== '') {
            request.session = session;
        }
        return request;
    }

    async notify(hook, decision, info) {
        if (typeof hook !== 'function') {
            return;
        }
        try {
            await hook(decision, info);
        } catch (err) {
            this.report(err, info);
        }
    }

    report(err, info) {
        const onError = this.options.onError;
        if (typeof onError === 'function') {
            try {
                onError(err, info);
            } catch {
                // A failing error reporter must not change the outcome.
            }
        }
    }

    async denied(decision, info) {
        await this.notify(this.options.onDeny, decision, info);
        if (decision.reason === 'scope_missing') {
            await this.notify(this.options.onStepUp, decision, info);
        }
        return errorResult(denyText(info.tool, decision));
    }

    // Asks trine. Returns {decision}, or {refusal} (a tool result) when no
    // decision could be had: that is a refusal too.
    async check(request, info) {
        try {
            return { decision: await this.client.check(request) };
        } catch (err) {
            this.report(err, info);
            return {
                refusal: errorResult(`Tool ${info.tool} did not run: no decision `
                    + `from the policy daemon (${err.message}).`),
            };
        }
    }

    /**
     * Runs run() when trine allows the call (after asking the user for
     * consent when the policy demands it); otherwise returns an isError
     * tool result that says why.
     */
    async guard(tool, args, extra, run) {
        const info = { tool, arguments: args, extra };
        let request;
        try {
            request = await this.request(tool, args, extra);
        } catch (err) {
            this.report(err, info);
            return errorResult(`Tool ${tool} did not run: the caller's identity could `
                + `not be determined (${err.message}).`);
        }
        const { decision, refusal } = await this.check(request, info);
        if (refusal) {
            return refusal;
        }
        if (decision.allowed) {
            return run();
        }
        if (decision.decision === 'deny') {
            return this.denied(decision, info);
        }
        return this.consent(decision, request, info, run);
    }

    async consent(decision, request, info, run) {
        const { tool, extra } = info;
        const prompt = promptOf(tool, decision);
        if (!canElicit(this.mcp)) {
            return errorResult(`Consent is needed before ${tool} can run: ${prompt} `
                + 'This client cannot ask the user (it does not support elicitation).');
        }
        let answer;
        try {
            const options = { relatedRequestId: extra?.requestId };
            if (extra?.signal) {
                options.signal = extra.signal;
            }
            if (this.options.elicitationTimeoutMs !== undefined) {
                options.timeout = this.options.elicitationTimeoutMs;
            }
            answer = await this.mcp.server.elicitInput({
                message: prompt,
                requestedSchema: this.options.consentSchema ?? CONSENT_SCHEMA,
            }, options);
        } catch (err) {
            this.report(err, info);
            return errorResult(`Consent could not be asked (${err.message}): ${tool} `
                + 'did not run.');
        }
        if (answer?.action === 'decline') {
            return errorResult(`Consent was declined: ${tool} did not run.`);
        }
        if (answer?.action !== 'accept') {
            return errorResult(`Consent was declined (the request was dismissed): ${tool} `
                + 'did not run.');
        }
        try {
            await this.client.grantConsent(decision.auditId);
        } catch (err) {
            this.report(err, info);
            return errorResult(`Consent could not be recorded (${err.message}): ${tool} `
                + 'did not run.');
        }
        const { decision: again, refusal } = await this.check(request, info);
        if (refusal) {
            return refusal;
        }
        if (again.allowed) {
            return run();
        }
        if (again.decision === 'deny') {
            return this.denied(again, info);
        }
        return errorResult(`Consent was given, but ${tool} still needs consent: `
            + `${promptOf(tool, again)} It did not run.`);
    }
}

function nameOf(mcp, tool) {
    for (const [name, registered] of Object.entries(mcp._registeredTools ?? {})) {
        if (registered === tool) {
            return name;
        }
    }
    return null;
}

/**
 * Guards every tool of an McpServer with trine. options:
 *  - server (required): the server's name in the policy.
 *  - client: a TrineClient to use; else one is made from socketPath
 *    (default "./trine.sock") and timeoutMs.
 *  - bearer: true to send the raw access token (extra.authInfo.token) for
 *    trined to verify, instead of the claims read from authInfo.
 *  - claimsFromAuthInfo(authInfo, extra): returns claims merged over those
 *    read from authInfo (see claimsFromAuthInfo()).
 *  - claims: the claims (or a function of extra returning them) used when
 *    a request carries no authInfo, as on stdio, where credentials come
 *    from the environment.
 *  - sessionId: the session (or a function of extra returning it) when the
 *    transport has none (extra.sessionId).
 *  - onDeny(decision, info), onStepUp(decision, info): called before a
 *    denied call's result is returned (onStepUp also for scope_missing), so
 *    that an HTTP transport can answer 403 with decision.wwwAuthenticate.
 *    info is {tool, arguments, extra}.
 *  - onError(err, info): told when no decision could be had, or a hook
 *    threw. The call is refused either way.
 *  - consentSchema, elicitationTimeoutMs: the requestedSchema and the
 *    timeout of the consent question.
 * Returns the McpServer. Throws when it is already protected or its SDK
 * lacks the interception points.
 */
export function protect(mcp, options = {}) {
    if (!isObject(mcp) || !isObject(mcp.server)
        || typeof mcp.executeToolHandler !== 'function') {
        throw new TypeError('protect() needs an McpServer from @modelcontextprotocol/sdk '
            + '1.24.0 or later');
    }
    if (mcp[PROTECTED]) {
        throw new Error('this McpServer is already protected');
    }
    const guard = new Guard(mcp, options);
    const execute = mcp.executeToolHandler;
    const poll = mcp.handleAutomaticTaskPolling;

    mcp.executeToolHandler = async function executeGuarded(tool, args, extra) {
        const name = nameOf(this, tool);
        if (name === null) {
            return errorResult('Tool did not run: it is not registered.');
        }
        return guard.guard(name, args, extra,
            () => execute.call(this, tool, args, extra));
    };
    if (typeof poll === 'function') {
        mcp.handleAutomaticTaskPolling = async function pollGuarded(tool, request, extra) {
            const name = request?.params?.name;
            let args = request?.params?.arguments;
            if (typeof this.validateToolInput === 'function') {
                args = await this.validateToolInput(tool, args, name);
            }
            return guard.guard(name, args, extra,
                () => poll.call(this, tool, request, extra));
        };
    }
    Object.defineProperty(mcp, PROTECTED, { value: guard.client });
    return mcp;
}

/** Returns the TrineClient a protected McpServer uses, or null. */
export function trineClientOf(mcp) {
    return mcp?.[PROTECTED] ?? null;
}
