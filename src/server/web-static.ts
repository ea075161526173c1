/**
 * Serves the web client (web/dist, built by scripts/build-web.ts) at `/`, with a strict Content
 * Security Policy: scripts and styles only from this origin (no inline code), connections only to
 * this origin's HTTP and WebSocket, no framing. The server only serves the files: it never imports
 * client code.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { type RequestHandler, type Router } from 'express';

export const WEB_DIST = join(import.meta.dirname, '../../web/dist');

/** A Host header we are willing to echo into the policy (anything else: same-origin 'self' only). */
const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

export function contentSecurityPolicy(host: string | undefined): string {
  const ws = host && HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    // Argon2id (key backup) is WebAssembly: compiling it needs 'wasm-unsafe-eval', never 'unsafe-eval'.
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    `connect-src 'self'${ws}`,
    "manifest-src 'self'",
    "worker-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function securityHeaders(): RequestHandler {
  return (req, res, next) => {
    res.set({
      'Content-Security-Policy': contentSecurityPolicy(req.headers.host),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      // Calls need the microphone (this origin only); nothing else does.
      'Permissions-Policy': 'camera=(), microphone=(self), geolocation=()',
    });
    next();
  };
}

/** The router for `/`; when web/dist is missing, `/` says how to build it. */
export function webClientRouter(dir: string = WEB_DIST): Router {
  const router = express.Router();
  router.use(securityHeaders());
  router.use((req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') res.locals.route = 'web';
    next();
  });
  router.use(
    express.static(dir, {
      index: 'index.html',
      redirect: false,
      fallthrough: true,
      setHeaders(res, path) {
        // Hashed bundles never change; the page, the worker and the manifest must be revalidated.
        if (/[\\/]assets[\\/]/.test(path)) res.set('Cache-Control', 'public, max-age=31536000, immutable');
        else res.set('Cache-Control', 'no-cache');
        if (path.endsWith('.webmanifest')) res.set('Content-Type', 'application/manifest+json');
      },
    }),
  );
  router.get('/', (_req, res, next) => {
    if (existsSync(join(dir, 'index.html'))) return next();
    res.status(503).type('text/plain').send('The web client is not built: run `npm run build:web` (npm start does it too).\n');
  });
  return router;
}
