// trine-client: a client for the trined policy daemon. The MCP middleware is
// in "trine-client/mcp".

export {
    TrineClient,
    DEFAULT_TIMEOUT_MS,
    DEFAULT_MAX_REPLY_BYTES,
} from './client.js';
export { Decision } from './decision.js';
export {
    TrineError,
    TrineConnectionError,
    TrineTimeoutError,
    TrineRpcError,
    TrineProtocolError,
    PARSE_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    INVALID_PARAMS,
    INTERNAL_ERROR,
} from './errors.js';
