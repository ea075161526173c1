/** The web client's files at `/`: the CSP on every answer, cache headers, no escape from the directory, a hint when unbuilt. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentSecurityPolicy, webClientRouter } from '../../src/server/web-static.js';

async function serve(dir: string): Promise<{ url: string; server: Server }> {
  const app = express();
  app.use(webClientRouter(dir));
  app.use((_req, res) => res.status(404).json({ error: { code: 'not_found' } }));
  const server = await new Promise<Server>((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

describe('web client static files', () => {
  const root = mkdtempSync(join(tmpdir(), 'gchat-web-static-'));
  const dist = join(root, 'dist');
  let built: { url: string; server: Server };
  let unbuilt: { url: string; server: Server };

  beforeAll(async () => {
    mkdirSync(join(dist, 'assets'), { recursive: true });
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>GChat</title>');
    writeFileSync(join(dist, 'assets/main-ABC.js'), 'export {}');
    writeFileSync(join(dist, 'manifest.webmanifest'), '{}');
    writeFileSync(join(root, 'secret.txt'), 'not served');
    built = await serve(dist);
    unbuilt = await serve(join(root, 'missing'));
  });

  afterAll(() => {
    built.server.close();
    unbuilt.server.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html at / with the CSP and no-cache; hashed assets are immutable', async () => {
    const page = await fetch(`${built.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>GChat</title>');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(csp).toMatch(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ wss:\/\/127\.0\.0\.1:\d+/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const js = await fetch(`${built.url}/assets/main-ABC.js`);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(js.headers.get('content-type')).toContain('javascript');
    expect((await fetch(`${built.url}/manifest.webmanifest`)).headers.get('content-type')).toContain('application/manifest+json');
  });

  it('never leaves the directory, and passes unknown paths on (the API answers its JSON 404)', async () => {
    for (const p of ['/../secret.txt', '/..%2fsecret.txt', '/%2e%2e/secret.txt', '/nothing.js', '/%']) {
      const res = await fetch(`${built.url}${p}`);
      expect(res.status, p).toBe(404);
      expect(await res.text(), p).not.toContain('not served');
    }
  });

  it('does not echo a strange Host header into the policy', () => {
    expect(contentSecurityPolicy('evil.example; script-src *')).toContain("connect-src 'self';");
    expect(contentSecurityPolicy('[::1]:8080')).toContain('ws://[::1]:8080');
  });

  it('says how to build when web/dist is missing', async () => {
    const res = await fetch(`${unbuilt.url}/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build:web');
  });
});
