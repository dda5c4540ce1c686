#!/usr/bin/env node
// The notes MCP server on stdio.
//
//   node server.js [--dir DIR] [--socket PATH]
//
// DIR (or $NOTES_DIR) holds notes.json; PATH (or $TRINE_SOCKET, default
// ./trine.sock) is trined's socket. A stdio server has no HTTP request to
// carry an access token, so, as the MCP specification says for stdio, the
// credentials come from the environment: $TRINE_CLAIMS holds the validated
// token claims as a JSON object.

import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

import { createNotesServer } from './notes.js';

function fail(message) {
    process.stderr.write(`notes-server: ${message}\n`);
    process.exit(2);
}

function readClaims(text) {
    if (text === undefined || text === '') {
        fail('TRINE_CLAIMS is not set: it must hold the token claims as a JSON object');
    }
    let claims;
    try {
        claims = JSON.parse(text);
    } catch (err) {
        fail(`TRINE_CLAIMS is not valid JSON: ${err.message}`);
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
        fail('TRINE_CLAIMS must be a JSON object');
    }
    return claims;
}

async function main() {
    let values;
    try {
        ({ values } = parseArgs({
            options: {
                dir: { type: 'string' },
                socket: { type: 'string' },
            },
        }));
    } catch (err) {
        fail(err.message);
    }
    const dir = values.dir ?? process.env.NOTES_DIR;
    if (!dir) {
        fail('no notes directory: give --dir DIR or set NOTES_DIR');
    }
    const socketPath = values.socket ?? process.env.TRINE_SOCKET ?? './trine.sock';
    const claims = readClaims(process.env.TRINE_CLAIMS);

    // One process serves one client: its lifetime is the MCP session.
    const server = createNotesServer({
        dir,
        socketPath,
        claims,
        sessionId: randomUUID(),
        onError: err => process.stderr.write(`notes-server: ${err.message}\n`),
    });
    await server.connect(new StdioServerTransport());
    process.stderr.write(`notes-server: notes in ${dir}, trined at ${socketPath}\n`);
}

main().catch(err => fail(err.message));
