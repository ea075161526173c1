/**
 * A route is declared once, as data: method, path, schemas, documented errors and a handler. The
 * same declaration mounts the Express handler (authenticate, read and validate the body, call a
 * service, reply) and registers the path in the OpenAPI document (openapi.ts), so the two cannot
 * drift apart. Every route of the server is declared here, the delivery routes and the stream's
 * plain-HTTP answer included.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { z } from 'zod';
import { bearerToken } from '../auth.js';
import { ApiError, type ApiErrorCode } from '../errors.js';
import { authenticateToken } from '../services/accounts.js';
import type { AuthContext, ServiceDeps } from '../services/deps.js';

type Method = 'get' | 'post' | 'put' | 'delete';

export interface HandlerContext<P, B, A, Q = undefined> {
  readonly params: P;
  readonly body: B;
  readonly auth: A;
  readonly query: Q;
  readonly req: Request;
  readonly res: Response;
}

export interface RouteSpec<
  P extends z.ZodType | undefined,
  B extends z.ZodType | undefined,
  Auth extends boolean,
  Q extends z.ZodType | undefined = undefined,
> {
  readonly method: Method;
  /** OpenAPI form: /v1/accounts/{username}. */
  readonly path: string;
  readonly tag: string;
  readonly summary: string;
  readonly description?: string;
  /** A device token is required (401 without a valid one). */
  readonly auth: Auth;
  readonly params?: P;
  readonly query?: Q;
  /** The JSON body. Optional in the document when the schema accepts `{}`: a request without a body reads as `{}`. */
  readonly body?: B;
  /** Largest body in bytes (413 past it); default the app's limit. */
  readonly maxBodyBytes?: number;
  /** A cheap look at the raw body before JSON.parse: true refuses it with 413 (e.g. far more members than any valid body). */
  readonly tooBig?: (raw: Buffer) => boolean;
  /** 101: a WebSocket endpoint; its upgrades never reach Express (the handler answers plain HTTP requests). */
  readonly success: { readonly status: SuccessStatus; readonly description: string; readonly schema?: z.ZodType };
  /** Error codes this route can answer besides the generic ones (see openapi.ts). */
  readonly errors: readonly ApiErrorCode[];
  readonly handler: (
    ctx: HandlerContext<
      P extends z.ZodType ? z.output<P> : undefined,
      B extends z.ZodType ? z.output<B> : undefined,
      Auth extends true ? AuthContext : undefined,
      Q extends z.ZodType ? z.output<Q> : undefined
    >,
  ) => Promise<unknown>;
}

type SuccessStatus = 101 | 200 | 201 | 204;

/** A route with its types erased, for lists of routes. */
export interface AnyRoute {
  readonly method: Method;
  readonly path: string;
  readonly tag: string;
  readonly summary: string;
  readonly description?: string;
  readonly auth: boolean;
  readonly params?: z.ZodType;
  readonly query?: z.ZodType;
  readonly body?: z.ZodType;
  readonly maxBodyBytes?: number;
  readonly tooBig?: (raw: Buffer) => boolean;
  readonly success: { readonly status: SuccessStatus; readonly description: string; readonly schema?: z.ZodType };
  readonly errors: readonly ApiErrorCode[];
  readonly handler: (ctx: HandlerContext<unknown, unknown, AuthContext | undefined, unknown>) => Promise<unknown>;
}

export function defineRoute<
  P extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  Auth extends boolean = false,
  Q extends z.ZodType | undefined = undefined,
>(spec: RouteSpec<P, B, Auth, Q>): AnyRoute {
  return spec as unknown as AnyRoute;
}

/** The first problem zod found, named by its path; never the value. */
export function describeIssue(error: z.ZodError, where: string): string {
  const issue = error.issues[0];
  if (!issue) return `invalid ${where}`;
  const at = issue.path.length > 0 ? issue.path.map(String).join('.') : where;
  return `${at}: ${issue.message}`;
}

function parse<S extends z.ZodType>(schema: S | undefined, value: unknown, where: string): unknown {
  if (!schema) return undefined;
  const r = schema.safeParse(value);
  if (!r.success) throw new ApiError('invalid_request', describeIssue(r.error, where));
  return r.data;
}

export function expressPath(openapiPath: string): string {
  return openapiPath.replace(/\{(\w+)\}/g, ':$1');
}

/** A body the request announces (RFC 9112 §6.3), whatever its type. */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Whether a route's body may be left out: its schema accepts `{}`, which a request without a body reads as. */
export function bodyOptional(route: AnyRoute): boolean {
  return route.body !== undefined && route.body.safeParse({}).success;
}

/**
 * Mounts each route on `router`: authenticate first (an anonymous request is refused before its
 * body is read), then read the JSON body under the route's limit, then validate and handle.
 */
export function mountRoutes(router: Router, routes: readonly AnyRoute[], deps: Pick<ServiceDeps, 'db'>, maxBodyBytes: number): void {
  for (const route of routes) {
    const chain: RequestHandler[] = [
      (_req, res, next) => {
        res.locals.route = route.path;
        next();
      },
    ];
    if (route.auth) {
      chain.push(async (req: Request, _res: Response, next: NextFunction) => {
        const token = bearerToken(req.get('authorization'));
        const auth = (token && (await authenticateToken(deps, token))) || undefined;
        if (!auth) throw new ApiError('unauthorized', 'a valid device token is required (Authorization: Bearer <token>)');
        req.auth = auth;
        next();
      });
    }
    if (route.body) {
      // No compressed bodies: a small gzip can inflate far beyond the limit's intent.
      const tooBig = route.tooBig;
      const json = express.json({
        limit: route.maxBodyBytes ?? maxBodyBytes,
        strict: true,
        inflate: false,
        ...(tooBig && {
          verify: (_req: unknown, _res: unknown, raw: Buffer) => {
            // A plain error with a status: body-parser sets fields on what verify throws.
            if (tooBig(raw)) throw Object.assign(new Error('more members than any valid body holds'), { status: 413, type: 'entity.too.large' });
          },
        }),
      });
      chain.push((req, res, next) => {
        if (hasBody(req) && !req.is('application/json')) throw new ApiError('unsupported_media_type', 'send the body as application/json');
        json(req, res, next);
      });
    }
    chain.push(async (req: Request, res: Response) => {
      const params = parse(route.params, req.params, 'path');
      const query = parse(route.query, req.query, 'query');
      let body: unknown;
      if (route.body) {
        if (req.body === undefined && !bodyOptional(route)) throw new ApiError('invalid_request', 'a JSON body is required');
        body = parse(route.body, req.body ?? {}, 'body');
      }
      const out = await route.handler({ params, query, body, auth: req.auth, req, res });
      if (route.success.status === 204) res.status(204).end();
      else res.status(route.success.status).json(out);
    });
    router[route.method](expressPath(route.path), ...chain);
  }
}
