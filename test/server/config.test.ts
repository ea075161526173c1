/** Configuration: defaults that serve a fresh machine, and one clear message per bad value. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.js';

describe('configuration', () => {
  it('defaults to port 8080 and embedded PGlite under ./data', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.database).toEqual({ kind: 'pglite', dataDir: path.resolve('data', 'pglite') });
    expect(c.limits.maxBodyBytes).toBeGreaterThan(200 * 1024); // a registration with 100 OPKs and 100 PQPKs fits
    expect(c.rateLimits.registerPerIp).toEqual({ count: 10, windowSeconds: 3600 });
    expect(c.argon2).toEqual({ memoryKib: 19456, iterations: 2, parallelism: 1 });
  });

  it('uses PostgreSQL when DATABASE_URL is set, and GCHAT_DATA_DIR for the embedded one', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h:5432/db' }).database).toEqual({ kind: 'postgres', url: 'postgres://u@h:5432/db' });
    expect(loadConfig({ GCHAT_DATA_DIR: '/srv/gchat' }).database).toEqual({ kind: 'pglite', dataDir: '/srv/gchat/pglite' });
  });

  it('reports every bad value at once, each with its variable, and never echoes DATABASE_URL', () => {
    let err: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://root:hunter2@db/x',
        GCHAT_RATE_LOGIN_IP: '10 per minute',
        GCHAT_MAX_BODY_BYTES: '10',
        LOG_LEVEL: 'loud',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems.find((p) => p.startsWith('PORT:'))).toMatch(/whole number.*"eighty"/);
    expect(problems.find((p) => p.startsWith('GCHAT_RATE_LOGIN_IP:'))).toMatch(/<count>\/<window seconds>/);
    expect(problems.find((p) => p.startsWith('GCHAT_MAX_BODY_BYTES:'))).toMatch(/at least 1024/);
    expect(problems.find((p) => p.startsWith('DATABASE_URL:'))).toMatch(/postgres:\/\//);
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('refuses Argon2 memory below 8 x parallelism', () => {
    expect(() => loadConfig({ GCHAT_ARGON2_MEMORY_KIB: '16', GCHAT_ARGON2_PARALLELISM: '4' })).toThrow(/GCHAT_ARGON2_MEMORY_KIB/);
  });
});
