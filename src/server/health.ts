/** /live (the process answers), /ready (the database answers), /metrics (Prometheus, never open to the world). */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Router } from 'express';
import type { AppDeps } from './app.js';
import { ApiError, errorBody, loggableError } from './errors.js';

export function healthRoutes(router: Router, deps: AppDeps): void {
  router.get('/live', (_req, res) => {
    res.locals.route = '/live';
    res.json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    res.locals.route = '/ready';
    try {
      await deps.db.transaction((tx) => tx.query('SELECT 1'));
      res.json({ status: 'ok' });
    } catch (err) {
      deps.log.warn({ error: loggableError(err) }, 'readiness check failed');
      res.status(503).json(errorBody(new ApiError('unavailable', 'database unavailable')));
    }
  });
  router.get('/metrics', async (req, res) => {
    res.locals.route = '/metrics';
    const token = deps.http.metricsToken;
    // Unconfigured, the API port does not serve metrics at all (a separate listener may).
    if (token === null) throw new ApiError('not_found', 'no such route');
    if (!bearerMatches(req.get('authorization'), token)) throw new ApiError('unauthorized', 'metrics need the configured bearer token');
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
}

/** Compares digests, so the time taken says nothing about how much of the token matched. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (\S+)$/.exec(header ?? '');
  if (!m) return false;
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]!), digest(token));
}
