/** /live (the process answers), /ready (the database answers), /metrics (Prometheus). */
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
  router.get('/metrics', async (_req, res) => {
    res.locals.route = '/metrics';
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
}
