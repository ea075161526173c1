import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { run as runBackup } from '../../scripts/vectors/backup.js';
import type { VectorFile } from '../../scripts/vectors/types.js';

const root = join(import.meta.dirname, '../..');
const vectors = join(root, 'test/vectors');

describe('npm run vectors on test/vectors', () => {
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

describe('the backup runner honours the case flags', () => {
  const file = JSON.parse(readFileSync(join(vectors, 'backup.json'), 'utf8')) as VectorFile;
  const pick = (name: string, extra: Record<string, unknown>): Record<string, unknown> => ({ ...file.cases.find((c) => c['name'] === name)!, ...extra });

  it('before_kdf: a case refused before Argon2id passes, one refused by the tag (after Argon2id) fails', async () => {
    const results = await runBackup({
      ...file,
      cases: [pick('m_below_minimum', { before_kdf: true }), pick('t_below_minimum', { before_kdf: true }), pick('wrong_passphrase', { before_kdf: true })],
    });
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['m_below_minimum', true],
      ['t_below_minimum', true],
      ['wrong_passphrase', false],
    ]);
    expect(results[2]!.detail).toMatch(/Argon2id/);
  }, 120_000);

  it('reader_only: the writer is skipped (a salt the writer would not reproduce), without the flag it is not', async () => {
    const badSalt = { salt: 'ff'.repeat(16) };
    const results = await runBackup({
      ...file,
      cases: [pick('min_params', { ...badSalt, reader_only: true }), pick('min_params', { ...badSalt, name: 'min_params_written' })],
    });
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['min_params', true],
      ['min_params_written', false],
    ]);
  }, 120_000);

  it('reject: a blob the reader opens fails the case, whatever the reason text says', async () => {
    const results = await runBackup({ ...file, cases: [pick('min_params', { expect: 'reject', reason: 'magic' })] });
    expect(results[0]).toMatchObject({ ok: false, detail: 'reader accepted the blob' });
  }, 120_000);
});

describe('npm run sync:protocol', () => {
  it('copies the spec and the vectors in, drops vector files the source no longer has, and reports an unchanged copy', async () => {
    const { mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const src = mkdtempSync(join(tmpdir(), 'proto-src-'));
    const repo = mkdtempSync(join(tmpdir(), 'proto-repo-'));
    mkdirSync(join(src, 'vectors'));
    writeFileSync(join(src, 'SPEC.md'), '# spec v2\n');
    writeFileSync(join(src, 'README.md'), '# readme\n');
    writeFileSync(join(src, 'vectors', 'keys.json'), '{"topic":"keys"}');
    mkdirSync(join(repo, 'test/vectors'), { recursive: true });
    writeFileSync(join(repo, 'test/vectors', 'gone.json'), '{}');
    const sync = () => promisify(execFile)('npx', ['tsx', 'scripts/sync-protocol.ts', src, repo], { cwd: root });
    const first = await sync();
    expect(readFileSync(join(repo, 'docs/protocol.md'), 'utf8')).toBe('# spec v2\n');
    expect(readFileSync(join(repo, 'test/vectors/README.md'), 'utf8')).toBe('# readme\n');
    expect(readdirSync(join(repo, 'test/vectors')).sort()).toEqual(['README.md', 'keys.json']);
    expect(first.stdout).toMatch(/removed test\/vectors\/gone.json/);
    expect((await sync()).stdout).toMatch(/^up to date with /m);
    const missing = await promisify(execFile)('npx', ['tsx', 'scripts/sync-protocol.ts', join(src, 'nowhere'), repo], { cwd: root }).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    expect(missing).toBe(1);
  }, 120_000);
});
