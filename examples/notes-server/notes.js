// The notes MCP server: short text notes in folders, kept in one JSON file,
// with every tool call decided by trine (policy-examples/notes).
//
// createNotesServer() builds the server without a transport, so that the
// stdio entry point (server.js) and tests can each connect it their way.

import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { protect } from 'trine-client/mcp';
import { z } from 'zod';

/** The server's name in the policy, and the name it gives MCP clients. */
export const SERVER_NAME = 'notes';

const FILE_NAME = 'notes.json';

/**
 * The notes of one directory, in DIR/notes.json: {"notes": {"<folder>/<name>":
 * {"folder", "name", "text", "created"}}}. Writes go through a temporary file
 * and a rename, one at a time, so the file is always whole.
 */
export class NoteStore {
    #dir;
    #file;
    #queue = Promise.resolve();

    constructor(dir) {
        this.#dir = dir;
        this.#file = path.join(dir, FILE_NAME);
    }

    /** The path of the JSON file. */
    get file() {
        return this.#file;
    }

    /** Resolves to the notes object; an absent file holds no notes. */
    async load() {
        let text;
        try {
            text = await readFile(this.#file, 'utf8');
        } catch (err) {
            if (err.code === 'ENOENT') {
                return {};
            }
            throw err;
        }
        const data = JSON.parse(text);
        if (data === null || typeof data !== 'object' || typeof data.notes !== 'object'
            || data.notes === null) {
            throw new Error(`${this.#file} is not a notes file`);
        }
        return data.notes;
    }

    /** Resolves to the names of the notes in folder, sorted. */
    async list(folder) {
        const notes = await this.load();
        return Object.values(notes)
            .filter(n => n.folder === folder)
            .map(n => n.name)
            .sort();
    }

    /** Resolves to the note, or null when there is none. */
    async read(folder, name) {
        const notes = await this.load();
        return Object.hasOwn(notes, `${folder}/${name}`)
            ? notes[`${folder}/${name}`] : null;
    }

    /** Creates a note; resolves to false when one of that name exists. */
    create(folder, name, text) {
        return this.#update(notes => {
            const key = `${folder}/${name}`;
            if (Object.hasOwn(notes, key)) {
                return false;
            }
            notes[key] = { folder, name, text, created: new Date().toISOString() };
            return true;
        });
    }

    /** Deletes a note; resolves to false when there was none. */
    delete(folder, name) {
        return this.#update(notes => {
            const key = `${folder}/${name}`;
            if (!Object.hasOwn(notes, key)) {
                return false;
            }
            delete notes[key];
            return true;
        });
    }

    // Runs change(notes) on a fresh copy and writes it back when it returns
    // true, after every earlier update has finished.
    #update(change) {
        const run = this.#queue.then(async () => {
            const notes = await this.load();
            if (!change(notes)) {
                return false;
            }
            await mkdir(this.#dir, { recursive: true });
            const tmp = `${this.#file}.${process.pid}.${randomUUID()}.tmp`;
            await writeFile(tmp, `${JSON.stringify({ notes }, null, 2)}\n`, { mode: 0o600 });
            await rename(tmp, this.#file);
            return true;
        });
        this.#queue = run.catch(() => {});
        return run;
    }
}

function text(t) {
    return { content: [{ type: 'text', text: t }] };
}

function failure(t) {
    return { isError: true, content: [{ type: 'text', text: t }] };
}

const folder = z.string().min(1).max(64).describe('The folder, e.g. "team"');
const name = z.string().min(1).max(64).describe('The note\'s name, e.g. "plan"');

/**
 * Returns a new McpServer with the four notes tools, guarded by trine.
 * options:
 *  - dir (required): the directory that holds notes.json.
 *  - trine: a TrineClient; or socketPath (default "./trine.sock").
 *  - claims: the caller's token claims when requests carry no authInfo (on
 *    stdio they come from the environment).
 *  - sessionId: the MCP session for `session` consent when the transport
 *    has none; by default one random id for this server's connection.
 *  - onDeny, onStepUp, onError, bearer, claimsFromAuthInfo: passed on to
 *    protect() (see trine-client/mcp).
 */
export function createNotesServer(options) {
    if (typeof options?.dir !== 'string' || options.dir === '') {
        throw new TypeError('createNotesServer(): options.dir is required');
    }
    const store = new NoteStore(options.dir);
    const server = new McpServer({ name: SERVER_NAME, version: '0.1.0' });

    // Guard first: every tool registered from here on is checked by trine.
    protect(server, {
        server: SERVER_NAME,
        client: options.trine,
        socketPath: options.socketPath,
        claims: options.claims,
        sessionId: options.sessionId ?? randomUUID(),
        bearer: options.bearer,
        claimsFromAuthInfo: options.claimsFromAuthInfo,
        onDeny: options.onDeny,
        onStepUp: options.onStepUp,
        onError: options.onError,
    });

    server.registerTool('list_notes', {
        title: 'List notes',
        description: 'Lists the names of the notes in a folder.',
        inputSchema: { folder },
        annotations: { readOnlyHint: true },
    }, async args => {
        const names = await store.list(args.folder);
        return text(names.length > 0 ? names.join('\n') : `No notes in ${args.folder}.`);
    });

    server.registerTool('read_note', {
        title: 'Read a note',
        description: 'Returns the text of one note.',
        inputSchema: { folder, name },
        annotations: { readOnlyHint: true },
    }, async args => {
        const note = await store.read(args.folder, args.name);
        return note === null
            ? failure(`No note ${args.folder}/${args.name}.`)
            : text(note.text);
    });

    server.registerTool('create_note', {
        title: 'Create a note',
        description: 'Creates a note. The user is asked once per session.',
        inputSchema: { folder, name, text: z.string().describe('The note\'s text') },
    }, async args => {
        const created = await store.create(args.folder, args.name, args.text);
        return created
            ? text(`Created ${args.folder}/${args.name}.`)
            : failure(`A note ${args.folder}/${args.name} already exists.`);
    });

    server.registerTool('delete_note', {
        title: 'Delete a note',
        description: 'Deletes a note. The user is asked every time.',
        inputSchema: { folder, name },
        annotations: { destructiveHint: true },
    }, async args => {
        const deleted = await store.delete(args.folder, args.name);
        return deleted
            ? text(`Deleted ${args.folder}/${args.name}.`)
            : failure(`No note ${args.folder}/${args.name}.`);
    });

    return server;
}
