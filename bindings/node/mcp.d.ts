// Type declarations for trine-client/mcp (mcp.js).

import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type {
    ElicitRequestFormParams,
    ServerNotification,
    ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';

import type { Decision, TokenClaims, TrineClient } from './index.js';

/** The `extra` the SDK hands to tool handlers. */
export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** What hooks learn about the call. */
export interface CallInfo {
    tool: string;
    arguments: unknown;
    extra: ToolExtra;
}

type Awaitable<T> = T | Promise<T>;

export interface ProtectOptions {
    /** The server's name in the policy (`tool "<server>" ...`). */
    server: string;
    /** The client to ask; else one is made from socketPath and timeoutMs. */
    client?: TrineClient;
    socketPath?: string;
    timeoutMs?: number;
    /** Send extra.authInfo.token as `bearer` for trined to verify. */
    bearer?: boolean;
    /** Claims merged over those read from authInfo. */
    claimsFromAuthInfo?: (authInfo: AuthInfo, extra: ToolExtra) =>
        Awaitable<TokenClaims | undefined>;
    /** Claims for requests without authInfo (stdio). */
    claims?: TokenClaims | ((extra: ToolExtra) => Awaitable<TokenClaims>);
    /** The session when the transport has none. */
    sessionId?: string | ((extra: ToolExtra) => Awaitable<string | undefined>);
    /** Called for every denied call, before its result is returned. */
    onDeny?: (decision: Decision, info: CallInfo) => Awaitable<void>;
    /** Called for a scope_missing deny, after onDeny. */
    onStepUp?: (decision: Decision, info: CallInfo) => Awaitable<void>;
    /** Told when no decision could be had, or a hook threw. */
    onError?: (err: Error, info: CallInfo) => void;
    /** The requestedSchema of the consent question; default no fields. */
    consentSchema?: ElicitRequestFormParams['requestedSchema'];
    /** How long the consent question may wait for the user. */
    elicitationTimeoutMs?: number;
}

/** Guards every tool of server with trine; returns server. */
export function protect<T extends McpServer>(server: T, options: ProtectOptions): T;

/** The TrineClient a protected McpServer uses, or null. */
export function trineClientOf(server: McpServer): TrineClient | null;

/** The token claims read from an SDK AuthInfo. */
export function claimsFromAuthInfo(authInfo: AuthInfo | undefined): TokenClaims;

/** The text of the tool result for a denied call. */
export function denyText(tool: string, decision: Decision): string;
