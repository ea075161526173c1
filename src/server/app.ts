/**
 * The Express app, built from its dependencies; it does not listen (main.ts and tests do).
 *
 * Further routers (Server II) plug in through `AppExtensions`: route declarations (mounted and
 * documented in /v1/openapi.json like the v1 routes) or plain Express routers. Both are mounted
 * after the v1 routes and before the 404 and error handlers, so they share JSON parsing, body
 * limits, metrics and the error format.
 */
import express, { type ErrorRequestHandler, type Express, type RequestHandler, type Router } from 'express';
import { ApiError, errorBody, loggableError } from './errors.js';
import type { Metrics } from './metrics.js';
import { buildOpenApiDocument, type OpenApiDocument } from './openapi.js';
import { accountRoutes } from './routes/accounts.js';
import { backupRoutes } from './routes/backup.js';
import type { RouteDeps } from './routes/deps.js';
import { healthRoutes } from './health.js';
import { keyRoutes } from './routes/keys.js';
import { mountRoutes, type AnyRoute } from './routes/route.js';

export interface AppDeps extends RouteDeps {
  readonly metrics: Metrics;
  readonly http: {
    /** Largest request body in bytes (413 above it). */
    readonly maxBodyBytes: number;
    /** Express "trust proxy" (which client address rate limits see). */
    readonly trustProxy: boolean | number | string;
  };
}

export interface AppExtensions {
  /** Route declarations, mounted and documented like the v1 routes. */
  readonly routes?: (deps: AppDeps) => AnyRoute[];
  /** Plain routers, mounted at `path`. */
  readonly routers?: readonly { readonly path: string; readonly router: Router }[];
  /**
   * Paths whose router parses its own JSON body, with its own limit (the sends: their bound
   * comes from the delivery limits); the app-wide parser and its maxBodyBytes leave them alone.
   */
  readonly ownBodyPaths?: readonly string[];
}

export interface App {
  readonly express: Express;
  readonly openapi: OpenApiDocument;
}

export const API_VERSION = '1.0.0';

export function v1Routes(deps: RouteDeps): AnyRoute[] {
  return [...accountRoutes(deps), ...backupRoutes(deps), ...keyRoutes(deps)];
}

export function buildApp(deps: AppDeps, ext: AppExtensions = {}): App {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.http.trustProxy);
  app.use(observe(deps));
  // No compressed bodies: a small gzip can inflate far beyond the limit's intent.
  const ownBody = new Set((ext.ownBodyPaths ?? []).map(normalPath));
  app.use(
    express.json({
      limit: deps.http.maxBodyBytes,
      strict: true,
      inflate: false,
      type: (req) => !ownBody.has(normalPath((req as express.Request).path)) && Boolean((req as express.Request).is('application/json')),
    }),
  );

  const routes = [...v1Routes(deps), ...(ext.routes?.(deps) ?? [])];
  const openapi = buildOpenApiDocument(routes, { version: API_VERSION });

  const router = express.Router();
  healthRoutes(router, deps);
  router.get('/v1/openapi.json', (_req, res) => {
    res.locals.route = '/v1/openapi.json';
    res.json(openapi);
  });
  mountRoutes(router, routes, deps);
  app.use(router);
  for (const r of ext.routers ?? []) app.use(r.path, r.router);

  app.use((_req, _res, next) => next(new ApiError('not_found', 'no such route')));
  app.use(errorHandler(deps));
  return { express: app, openapi };
}

/** A path as Express routes it by default: case-insensitive, a trailing slash ignored. */
function normalPath(p: string): string {
  return p.toLowerCase().replace(/\/+$/, '') || '/';
}

/** Metrics and a log line per request: method, route template, status, time. Never a body or a header. */
function observe(deps: AppDeps): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const route = typeof res.locals.route === 'string' ? res.locals.route : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      deps.metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      deps.metrics.httpDuration.observe({ method: req.method, route }, seconds);
      deps.log.debug({ method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    });
    next();
  };
}

/**
 * Errors Express and body-parser raise for a bad request (they carry a 4xx `status`): a body too
 * large, not JSON, in another charset or encoding, a path that does not decode. All are the
 * client's; none is a 5xx.
 */
function requestError(err: unknown): ApiError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status < 400 || status >= 500) return null;
  if (e.type === 'entity.too.large' || status === 413) return new ApiError('payload_too_large', 'request body too large');
  if (e.type === 'entity.parse.failed') return new ApiError('malformed_json', 'request body is not valid JSON (an object or array)');
  if (err instanceof URIError) return new ApiError('invalid_request', 'the path does not decode');
  return new ApiError('invalid_request', 'request body could not be read (send uncompressed UTF-8 JSON)');
}

function errorHandler(deps: AppDeps): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    let e = err instanceof ApiError ? err : requestError(err);
    if (!e) {
      deps.log.error({ error: loggableError(err), method: req.method, route: res.locals.route }, 'unhandled error');
      e = new ApiError('internal', 'internal error');
    }
    if (res.headersSent) return next(err);
    if (e.retryAfterSeconds !== undefined) res.set('Retry-After', String(e.retryAfterSeconds));
    res.status(e.status).json(errorBody(e));
  };
}
