// Type declarations for trine-client (index.js, client.js, decision.js,
// errors.js).

/** JSON-RPC 2.0 error codes that trined answers with. */
export const PARSE_ERROR: -32700;
export const INVALID_REQUEST: -32600;
export const METHOD_NOT_FOUND: -32601;
export const INVALID_PARAMS: -32602;
export const INTERNAL_ERROR: -32603;

/** How long a call waits for its reply unless told otherwise (ms). */
export const DEFAULT_TIMEOUT_MS: number;
/** The longest reply line accepted before the connection is dropped. */
export const DEFAULT_MAX_REPLY_BYTES: number;

/** The base class of every error this package raises. */
export class TrineError extends Error {}

/** trined could not be reached, or the connection broke before the reply. */
export class TrineConnectionError extends TrineError {}

/** No reply within the timeout; the connection was dropped. */
export class TrineTimeoutError extends TrineError {
    constructor(message: string, timeoutMs: number);
    readonly timeoutMs: number;
}

/** trined answered with a JSON-RPC error. */
export class TrineRpcError extends TrineError {
    constructor(code: number, message: string, data?: unknown);
    readonly code: number;
    readonly data: unknown;
}

/** trined sent something that is not a valid reply. */
export class TrineProtocolError extends TrineError {}

export type DecisionKind = 'allow' | 'deny' | 'consent_required';

export type ReasonCode =
    | 'allow'
    | 'token_expired'
    | 'token_invalid'
    | 'audience_mismatch'
    | 'unknown_tool'
    | 'argument_invalid'
    | 'forbidden'
    | 'user_denied'
    | 'agent_denied'
    | 'scope_missing'
    | 'consent_required'
    | 'audit_unavailable';

export type ConsentMode = 'session' | 'once' | 'always';

/** One entry of a result's `reasons` (DESIGN.md §3.1). */
export interface Reason {
    code: ReasonCode | string;
    set?: 'user' | 'scope' | 'agent';
    action?: string;
    resource?: string;
    agent?: string;
    argument?: string;
    rule?: string;
    detail?: string;
}

/** One entry of a result's `matched`. */
export interface MatchedRule {
    set: 'user' | 'scope' | 'agent';
    rule: string;
}

/** The result object of a check, as trined sends it. */
export interface CheckResult {
    decision: DecisionKind;
    reason: ReasonCode | string;
    audit_id?: number;
    policy_revision?: string;
    consent?: { mode: ConsentMode; prompt: string };
    required_scopes?: string[];
    www_authenticate?: string;
    reasons?: Reason[];
    matched?: MatchedRule[];
    [key: string]: unknown;
}

/** A decision, read once from the daemon's result. Frozen. */
export class Decision {
    constructor(result: unknown);
    readonly decision: DecisionKind;
    readonly reason: ReasonCode | string;
    readonly allowed: boolean;
    readonly requiredScopes: string[];
    readonly wwwAuthenticate: string | null;
    readonly consent: { readonly mode: ConsentMode | null; readonly prompt: string | null } | null;
    readonly auditId: number | null;
    readonly policyRevision: string | null;
    readonly reasons: Reason[];
    readonly matched: MatchedRule[];
    readonly raw: CheckResult;
    /** One line: the primary reason, its detail and its (action, resource). */
    explain(): string;
}

/** Validated access-token claims (a decoded JWT or an introspection reply). */
export interface TokenClaims {
    sub?: string;
    scope?: string;
    scp?: string | string[];
    client_id?: string;
    azp?: string;
    aud?: string | string[];
    exp?: number;
    groups?: string | string[];
    roles?: string | string[];
    act?: Record<string, unknown> | null;
    [claim: string]: unknown;
}

export interface CheckRequest {
    server: string;
    tool: string;
    arguments?: Record<string, unknown>;
    /** The claims the caller validated; or give `bearer`. */
    token?: TokenClaims;
    /** A raw access token for trined to verify itself. */
    bearer?: string;
    session?: string;
}

export interface CallOptions {
    /** Overrides the client's timeout for this call. */
    timeoutMs?: number;
}

export interface ConsentGrant {
    id: number;
    user: string;
    agent: string;
    server: string;
    tool: string;
    mode: ConsentMode;
    session: string | null;
    granted_ms: number;
    expires_ms: number | null;
    used_ms: number | null;
    decision_id: number | null;
}

export interface RevokeFilter {
    consentId?: number;
    user?: string;
    agent?: string;
    server?: string;
    tool?: string;
}

export interface PolicyStatus {
    revision: string;
    files: string[];
    loaded_at: number;
    counts: {
        scope: number;
        role: number;
        user: number;
        group: number;
        agent: number;
        server: number;
        tool: number;
        forbid: number;
        rules: number;
    };
    [key: string]: unknown;
}

export interface PolicyTools {
    tools: string[];
    wildcard: boolean;
}

export interface TrineClientOptions {
    /** The daemon's socket; default "./trine.sock". */
    socketPath?: string;
    /** How long each call waits for its reply; default 5000 ms. */
    timeoutMs?: number;
    /** The longest reply line accepted; default 64 MiB. */
    maxReplyBytes?: number;
}

/** A client of one trined socket; calls share one pipelined connection. */
export class TrineClient {
    constructor(options?: TrineClientOptions);
    readonly socketPath: string;
    request(method: string, params?: Record<string, unknown>,
        options?: CallOptions): Promise<unknown>;
    check(request: CheckRequest, options?: CallOptions): Promise<Decision>;
    grantConsent(auditId: number, options?: { ttl?: number } & CallOptions): Promise<number>;
    revokeConsent(target: number | RevokeFilter, options?: CallOptions): Promise<number>;
    listConsents(options?: { user?: string; agent?: string } & CallOptions):
        Promise<ConsentGrant[]>;
    policyStatus(options?: CallOptions): Promise<PolicyStatus>;
    policyTools(server: string, options?: CallOptions): Promise<PolicyTools>;
    ping(options?: CallOptions): Promise<true>;
    close(): Promise<void>;
}
