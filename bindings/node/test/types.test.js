// The hand-written declarations (index.d.ts, mcp.d.ts) compile against a
// TypeScript program that uses the package as documented. TypeScript is an
// optional devDependency: without it there is nothing to check.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

test('tsc --noEmit accepts the declarations', { skip: !existsSync(TSC)
    && 'typescript is not installed' }, () => {
    const r = spawnSync(process.execPath, [TSC, '-p',
        path.join(ROOT, 'test-support', 'types', 'tsconfig.json')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '');
});
