// A client for trined: JSON-RPC 2.0 over a Unix socket, one request per line
// (DESIGN.md §3). Requests are pipelined over one connection and replies are
// matched to them in order; a broken connection fails what was pending on it
// and the next call opens a new one.

import net from 'node:net';

import { Decision } from './decision.js';
import {
    TrineConnectionError,
    TrineProtocolError,
    TrineRpcError,
    TrineTimeoutError,
} from './errors.js';

/** How long a call waits for its reply unless told otherwise. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** The longest reply line accepted before the connection is dropped. */
export const DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024;

const NEWLINE = 0x0a;

function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkTimeout(ms, what) {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
        throw new TypeError(`${what} must be a positive number of milliseconds`);
    }
    return ms;
}

/**
 * One socket and the requests waiting on it. A Connection never reconnects:
 * once it fails, it stays failed, and the client makes a new one.
 */
class Connection {
    #path;
    #maxReplyBytes;
    #socket;
    #state = 'connecting';
    #outbox = [];
    #pending = new Map();
    #chunks = [];
    #buffered = 0;
    #failure = null;
    #closed;

    constructor(path, maxReplyBytes) {
        this.#path = path;
        this.#maxReplyBytes = maxReplyBytes;
        this.#socket = net.createConnection({ path });
        this.#closed = new Promise(resolve => this.#socket.once('close', resolve));
        this.#socket.on('connect', () => this.#onConnect());
        this.#socket.on('data', chunk => this.#onData(chunk));
        this.#socket.on('error', err => this.#onError(err));
        this.#socket.on('close', () => this.#onClose());
    }

    /** True once the connection failed or was closed; it takes no more calls. */
    get dead() {
        return this.#state === 'dead';
    }

    /**
     * Sends one encoded request line and returns a promise for its reply's
     * result. The promise rejects with TrineRpcError for an error reply,
     * TrineTimeoutError after timeoutMs (dropping this connection), and
     * TrineConnectionError or TrineProtocolError when the connection fails.
     */
    send(id, line, timeoutMs) {
        return new Promise((resolve, reject) => {
            if (this.dead) {
                reject(this.#failure);
                return;
            }
            const timer = setTimeout(() => {
                const entry = this.#pending.get(id);
                if (!entry) {
                    return;
                }
                this.#pending.delete(id);
                entry.reject(new TrineTimeoutError(
                    `no reply from trined at ${this.#path} within ${timeoutMs} ms`,
                    timeoutMs));
                this.destroy(new TrineConnectionError(
                    'connection to trined dropped: an earlier request on it timed out'));
            }, timeoutMs);
            this.#pending.set(id, { resolve, reject, timer });
            this.#socket.ref();
            if (this.#state === 'open') {
                this.#socket.write(line);
            } else {
                this.#outbox.push(line);
            }
        });
    }

    /**
     * Closes the socket; every pending request rejects with err. Returns a
     * promise that resolves once the socket is closed.
     */
    destroy(err) {
        this.#fail(err);
        this.#socket.destroy();
        return this.#closed;
    }

    #onConnect() {
        if (this.dead) {
            return;
        }
        this.#state = 'open';
        const lines = this.#outbox;
        this.#outbox = [];
        if (lines.length > 0) {
            this.#socket.write(lines.join(''));
        }
        this.#updateRef();
    }

    #onData(chunk) {
        let rest = chunk;
        while (!this.dead && rest.length > 0) {
            const nl = rest.indexOf(NEWLINE);
            if (nl < 0) {
                this.#buffered += rest.length;
                if (this.#buffered > this.#maxReplyBytes) {
                    this.destroy(new TrineProtocolError(
                        `reply from trined exceeds ${this.#maxReplyBytes} bytes`));
                    return;
                }
                this.#chunks.push(rest);
                return;
            }
            this.#chunks.push(rest.subarray(0, nl));
            const line = Buffer.concat(this.#chunks);
            this.#chunks = [];
            this.#buffered = 0;
            rest = rest.subarray(nl + 1);
            this.#onLine(line);
        }
    }

    // Settles the oldest pending request with one reply line. trined answers
    // in request order on a connection, so the reply must carry that
    // request's id; an error that could not name an id (null) is its answer
    // too. Anything else means the stream can no longer be trusted.
    #onLine(line) {
        let msg;
        try {
            msg = JSON.parse(line.toString('utf8'));
        } catch {
            this.destroy(new TrineProtocolError('trined sent a line that is not JSON'));
            return;
        }
        const oldest = this.#pending.keys().next();
        if (!isObject(msg) || oldest.done) {
            this.destroy(new TrineProtocolError('trined sent an unexpected reply'));
            return;
        }
        const id = oldest.value;
        const matches = msg.id === id || (msg.id === null && isObject(msg.error));
        if (!matches) {
            this.destroy(new TrineProtocolError(
                `trined replied with id ${JSON.stringify(msg.id)} where ${id} was expected`));
            return;
        }
        const entry = this.#pending.get(id);
        this.#pending.delete(id);
        clearTimeout(entry.timer);
        if (isObject(msg.error)) {
            const { code, message, data } = msg.error;
            entry.reject(new TrineRpcError(
                Number.isInteger(code) ? code : 0,
                typeof message === 'string' ? message : 'error without a message',
                data));
        } else if ('result' in msg) {
            entry.resolve(msg.result);
        } else {
            entry.reject(new TrineProtocolError('reply has neither result nor error'));
        }
        this.#updateRef();
    }

    #onError(err) {
        const what = this.#state === 'connecting'
            ? `cannot connect to trined at ${this.#path}`
            : `connection to trined at ${this.#path} failed`;
        this.#fail(new TrineConnectionError(`${what}: ${err.code ?? err.message}`,
            { cause: err }));
    }

    #onClose() {
        this.#fail(new TrineConnectionError(
            `connection to trined at ${this.#path} closed`));
    }

    // Marks the connection dead (the first failure wins) and rejects every
    // pending request with it.
    #fail(err) {
        if (this.#failure === null) {
            this.#failure = err;
        }
        this.#state = 'dead';
        this.#outbox = [];
        const pending = [...this.#pending.values()];
        this.#pending.clear();
        for (const entry of pending) {
            clearTimeout(entry.timer);
            entry.reject(this.#failure);
        }
    }

    // An idle connection does not keep the process alive.
    #updateRef() {
        if (this.#pending.size === 0) {
            this.#socket.unref();
        } else {
            this.#socket.ref();
        }
    }
}

/**
 * A client of one trined socket. Calls may be made concurrently: they share
 * one connection, opened on the first call and reopened on the first call
 * after it broke.
 */
export class TrineClient {
    #socketPath;
    #timeoutMs;
    #maxReplyBytes;
    #conn = null;
    #nextId = 1;
    #closed = false;

    /**
     * options.socketPath: the daemon's socket (default "./trine.sock").
     * options.timeoutMs: how long each call waits for its reply (default
     * 5000). options.maxReplyBytes: the longest reply line accepted.
     */
    constructor(options = {}) {
        this.#socketPath = options.socketPath ?? './trine.sock';
        if (typeof this.#socketPath !== 'string' || this.#socketPath === '') {
            throw new TypeError('socketPath must be a non-empty string');
        }
        this.#timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
            'timeoutMs');
        this.#maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    }

    /** The socket path this client talks to. */
    get socketPath() {
        return this.#socketPath;
    }

    /**
     * Sends one JSON-RPC request and returns a promise for its result.
     * params is omitted from the request when undefined. options.timeoutMs
     * overrides the client's timeout for this call.
     */
    request(method, params, options = {}) {
        if (this.#closed) {
            return Promise.reject(new TrineConnectionError('the client is closed'));
        }
        let timeoutMs;
        let line;
        try {
            timeoutMs = checkTimeout(options.timeoutMs ?? this.#timeoutMs, 'timeoutMs');
            const id = this.#nextId++;
            const msg = { jsonrpc: '2.0', id, method };
            if (params !== undefined) {
                msg.params = params;
            }
            line = `${JSON.stringify(msg)}\n`;
            if (this.#conn === null || this.#conn.dead) {
                this.#conn = new Connection(this.#socketPath, this.#maxReplyBytes);
            }
            return this.#conn.send(id, line, timeoutMs);
        } catch (err) {
            return Promise.reject(err);
        }
    }

    /**
     * Asks whether a tool call may run. request: {server, tool, arguments,
     * token (validated claims) or bearer (a raw access token), session}.
     * Resolves to a Decision; rejects with a TrineError when there is no
     * decision (which the caller must treat as a deny).
     */
    async check(request, options = {}) {
        if (!isObject(request)) {
            throw new TypeError('check() takes a request object');
        }
        const params = { server: request.server, tool: request.tool };
        for (const key of ['arguments', 'token', 'bearer', 'session']) {
            if (request[key] !== undefined) {
                params[key] = request[key];
            }
        }
        return new Decision(await this.request('check', params, options));
    }

    /**
     * Records the user's consent to the consent_required decision auditId,
     * optionally for ttl seconds. Resolves to the new grant's id.
     */
    async grantConsent(auditId, { ttl, timeoutMs } = {}) {
        const params = { audit_id: auditId };
        if (ttl !== undefined) {
            params.ttl = ttl;
        }
        const result = await this.request('consent.grant', params, { timeoutMs });
        if (!isObject(result) || !Number.isInteger(result.consent_id)) {
            throw new TrineProtocolError('consent.grant result has no consent_id');
        }
        return result.consent_id;
    }

    /**
     * Revokes one grant (a number: its consent id) or every grant of a user,
     * narrowed by agent, server and tool ({user, agent, server, tool}; or
     * {consentId}). Resolves to the number of live grants revoked.
     */
    async revokeConsent(target, { timeoutMs } = {}) {
        let params;
        if (typeof target === 'number') {
            params = { consent_id: target };
        } else if (isObject(target)) {
            params = {};
            if (target.consentId !== undefined) {
                params.consent_id = target.consentId;
            }
            for (const key of ['user', 'agent', 'server', 'tool']) {
                if (target[key] !== undefined) {
                    params[key] = target[key];
                }
            }
        } else {
            throw new TypeError(
                'revokeConsent() takes a consent id or {user, agent, server, tool}');
        }
        const result = await this.request('consent.revoke', params, { timeoutMs });
        if (!isObject(result) || !Number.isInteger(result.revoked)) {
            throw new TrineProtocolError('consent.revoke result has no revoked count');
        }
        return result.revoked;
    }

    /**
     * Lists the live grants, oldest first, optionally only those of one user
     * and/or agent. Resolves to an array of grant objects as the daemon
     * sends them (id, user, agent, server, tool, mode, session, ...).
     */
    async listConsents({ user, agent, timeoutMs } = {}) {
        const params = {};
        if (user !== undefined) {
            params.user = user;
        }
        if (agent !== undefined) {
            params.agent = agent;
        }
        const result = await this.request('consent.list', params, { timeoutMs });
        if (!isObject(result) || !Array.isArray(result.consents)) {
            throw new TrineProtocolError('consent.list result has no consents');
        }
        return result.consents;
    }

    /** Resolves to the serving policy's revision, files, loaded_at and counts. */
    async policyStatus({ timeoutMs } = {}) {
        const result = await this.request('policy.status', undefined, { timeoutMs });
        if (!isObject(result)) {
            throw new TrineProtocolError('policy.status result is not an object');
        }
        return result;
    }

    /** Resolves to {tools, wildcard}: the tools the policy knows for server. */
    async policyTools(server, { timeoutMs } = {}) {
        const result = await this.request('policy.tools', { server }, { timeoutMs });
        if (!isObject(result) || !Array.isArray(result.tools)) {
            throw new TrineProtocolError('policy.tools result has no tools');
        }
        return result;
    }

    /** Resolves to true when the daemon answers. */
    async ping({ timeoutMs } = {}) {
        const result = await this.request('ping', undefined, { timeoutMs });
        if (!isObject(result) || result.pong !== true) {
            throw new TrineProtocolError('ping result is not {"pong":true}');
        }
        return true;
    }

    /**
     * Closes the connection; pending calls reject with TrineConnectionError
     * and later calls are refused. Resolves once the socket is closed.
     */
    async close() {
        this.#closed = true;
        const conn = this.#conn;
        this.#conn = null;
        if (conn !== null) {
            await conn.destroy(new TrineConnectionError('the client was closed'));
        }
    }
}
