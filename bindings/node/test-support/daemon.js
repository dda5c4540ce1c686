// Starts the real trined for the tests: a fresh temporary directory with the
// socket and the audit database, a policy directory, and a log file. Paths
// come from the environment as tests/CMakeLists.txt sets them (TRINED_BIN,
// TRINE_SOURCE_DIR); without them, the binaries of <repo>/build are used.

import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The repository's root. */
export const SOURCE_DIR = process.env.TRINE_SOURCE_DIR
    || path.resolve(HERE, '..', '..', '..');

/** The trined binary under test. */
export const TRINED_BIN = process.env.TRINED_BIN
    || path.join(SOURCE_DIR, 'build', 'trined');

/** The policy the node suite runs against. */
export const NOTES_POLICY = path.join(SOURCE_DIR, 'policy-examples', 'notes');

// Sanitizer builds are several times slower: waits are generous.
const START_TIMEOUT_MS = 30000;
const STOP_TIMEOUT_MS = 60000;

const SANITIZER_MARKS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
    'runtime error:'];

function sleep(ms) {
    return new Promise(resolve => setTimeout(resolve, ms));
}

function canConnect(socketPath) {
    return new Promise(resolve => {
        const s = net.createConnection({ path: socketPath });
        s.once('connect', () => {
            s.destroy();
            resolve(true);
        });
        s.once('error', () => resolve(false));
    });
}

/** Returns a new temporary directory (removed by the caller). */
export function tempDir(prefix) {
    return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * One trined process on its own socket and audit database. start() waits
 * until the socket accepts; stop() sends SIGTERM and resolves to the exit
 * code, failing when the log shows a sanitizer report.
 */
export class Daemon {
    constructor({ policyDir = NOTES_POLICY, dir } = {}) {
        if (!existsSync(TRINED_BIN)) {
            throw new Error(`no trined at ${TRINED_BIN}: build it, or set TRINED_BIN`);
        }
        this.dir = dir ?? tempDir('trine-node-');
        this.policyDir = policyDir;
        this.socketPath = path.join(this.dir, 'trine.sock');
        this.auditPath = path.join(this.dir, 'audit.db');
        this.logPath = path.join(this.dir, 'trined.log');
        this.proc = null;
        this.exit = null;
    }

    async start() {
        const log = openSync(this.logPath, 'a');
        this.proc = spawn(TRINED_BIN, ['--policy', this.policyDir, '--socket',
            this.socketPath, '--audit', this.auditPath],
        { stdio: ['ignore', log, log] });
        closeSync(log);
        this.exit = new Promise(resolve => {
            this.proc.once('exit', (code, signal) => resolve(code ?? signal));
        });
        let exited = false;
        this.exit.then(() => {
            exited = true;
        });
        const deadline = Date.now() + START_TIMEOUT_MS;
        for (;;) {
            if (exited) {
                throw new Error(`trined exited at start:\n${this.log()}`);
            }
            if (await canConnect(this.socketPath)) {
                return this;
            }
            if (Date.now() > deadline) {
                throw new Error(`trined did not accept within ${START_TIMEOUT_MS} ms:\n`
                    + this.log());
            }
            await sleep(20);
        }
    }

    /** Everything trined wrote on stderr, over all its runs. */
    log() {
        try {
            return readFileSync(this.logPath, 'utf8');
        } catch {
            return '';
        }
    }

    /** Stops trined with SIGTERM; resolves to its exit code. */
    async stop() {
        if (this.proc === null) {
            return null;
        }
        const proc = this.proc;
        this.proc = null;
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
        const code = await this.exit;
        clearTimeout(timer);
        const log = this.log();
        for (const mark of SANITIZER_MARKS) {
            if (log.includes(mark)) {
                throw new Error(`sanitizer report in the trined log:\n${log}`);
            }
        }
        return code;
    }

    /** Stops trined (if running) and removes its directory. */
    async cleanup() {
        try {
            return await this.stop();
        } finally {
            rmSync(this.dir, { recursive: true, force: true });
        }
    }
}

/** The audience of policy-examples/notes. */
export const AUDIENCE = 'https://notes.example.com/mcp';

/** The resource_metadata of policy-examples/notes. */
export const RESOURCE_METADATA =
    'https://notes.example.com/.well-known/oauth-protected-resource';

/** Returns validated token claims for the notes policy. */
export function claims(overrides = {}) {
    const c = {
        sub: 'alice',
        scope: 'notes:read',
        client_id: 'notes-desktop',
        aud: AUDIENCE,
        exp: 1893456000,
        ...overrides,
    };
    for (const k of Object.keys(c)) {
        if (c[k] === undefined) {
            delete c[k];
        }
    }
    return c;
}
