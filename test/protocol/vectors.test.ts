import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const vectors = join(root, '../shared/protocol/vectors');

describe('npm run vectors on ../shared/protocol/vectors', () => {
  it('passes every case of every file', async () => {
    expect(existsSync(vectors), `vector directory missing: ${vectors}`).toBe(true);
    const { stdout } = await promisify(execFile)('npx', ['tsx', 'scripts/vectors.ts', vectors], { cwd: root }).catch((e: { stdout: string }) => {
      throw new Error(`vector runner failed:\n${e.stdout}`);
    });
    const last = stdout.trim().split('\n').at(-1)!;
    const [, passed, failed] = /^(\d+) passed, (\d+) failed$/.exec(last) ?? [];
    expect(Number(failed)).toBe(0);
    // 5 files; every case counts.
    expect(Number(passed)).toBeGreaterThanOrEqual(60);
    for (const f of ['backup.json', 'keys.json', 'padding.json', 'session.json', 'x3dh.json']) expect(stdout).toMatch(new RegExp(`^${f}: (\\d+)/\\1 cases passed$`, 'm'));
  }, 180_000);

  it('fails on a directory with a corrupted vector', async () => {
    const { mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'vec-'));
    const x3dh = JSON.parse(readFileSync(join(vectors, 'x3dh.json'), 'utf8'));
    x3dh.cases[0].expected.sk = '00'.repeat(32);
    writeFileSync(join(dir, 'x3dh.json'), JSON.stringify(x3dh));
    const r = await promisify(execFile)('npx', ['tsx', 'scripts/vectors.ts', dir], { cwd: root }).then(
      () => ({ code: 0, stdout: '' }),
      (e: { code: number; stdout: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/2 passed, 1 failed/);
  }, 60_000);
});
