// Errors raised by the trine client. Every one is a TrineError, so callers
// that only want to fail closed can catch that one class.

/** JSON-RPC 2.0 error codes that trined answers with (DESIGN.md §3.2). */
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;

/** The base class of every error this package raises. */
export class TrineError extends Error {
    constructor(message, options) {
        super(message, options);
        this.name = 'TrineError';
    }
}

/**
 * The daemon could not be reached, or the connection broke before the reply
 * arrived. The request may or may not have been received: a check that
 * fails this way must be treated as a deny.
 */
export class TrineConnectionError extends TrineError {
    constructor(message, options) {
        super(message, options);
        this.name = 'TrineConnectionError';
    }
}

/**
 * No reply came within the call's timeout. The connection it was sent on is
 * dropped, so a late reply can never be taken for another request's.
 */
export class TrineTimeoutError extends TrineError {
    constructor(message, timeoutMs) {
        super(message);
        this.name = 'TrineTimeoutError';
        this.timeoutMs = timeoutMs;
    }
}

/**
 * The daemon answered with a JSON-RPC error object: code, message and data
 * are the error's own (data is undefined when the reply has none).
 */
export class TrineRpcError extends TrineError {
    constructor(code, message, data) {
        super(message);
        this.name = 'TrineRpcError';
        this.code = code;
        this.data = data;
    }
}

/** The daemon sent something that is not a valid reply. */
export class TrineProtocolError extends TrineError {
    constructor(message) {
        super(message);
        this.name = 'TrineProtocolError';
    }
}
