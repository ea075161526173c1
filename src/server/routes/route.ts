/**
 * A route is declared once, as data: method, path, schemas, documented errors and a handler. The
 * same declaration mounts the Express handler (parse, authenticate, call a service, reply) and
 * registers the path in the OpenAPI document, so the two cannot drift apart.
 */
import type { Request, Response, Router } from 'express';
import type { z } from 'zod';
import { bearerToken } from '../auth.js';
import { ApiError, type ApiErrorCode } from '../errors.js';
import { authenticateToken } from '../services/accounts.js';
import type { AuthContext, ServiceDeps } from '../services/deps.js';

type Method = 'get' | 'post' | 'put' | 'delete';

export interface HandlerContext<P, B, A> {
  readonly params: P;
  readonly body: B;
  readonly auth: A;
  readonly req: Request;
}

export interface RouteSpec<P extends z.ZodType | undefined, B extends z.ZodType | undefined, Auth extends boolean> {
  readonly method: Method;
  /** OpenAPI form: /v1/accounts/{username}. */
  readonly path: string;
  readonly tag: string;
  readonly summary: string;
  readonly description?: string;
  /** A device token is required (401 without a valid one). */
  readonly auth: Auth;
  readonly params?: P;
  readonly body?: B;
  readonly success: { readonly status: 200 | 201 | 204; readonly description: string; readonly schema?: z.ZodType };
  /** Error codes this route can answer besides the generic ones (see openapi.ts). */
  readonly errors: readonly ApiErrorCode[];
  readonly handler: (
    ctx: HandlerContext<P extends z.ZodType ? z.output<P> : undefined, B extends z.ZodType ? z.output<B> : undefined, Auth extends true ? AuthContext : undefined>,
  ) => Promise<unknown>;
}

/** A route with its types erased, for lists of routes. */
export interface AnyRoute {
  readonly method: Method;
  readonly path: string;
  readonly tag: string;
  readonly summary: string;
  readonly description?: string;
  readonly auth: boolean;
  readonly params?: z.ZodType;
  readonly body?: z.ZodType;
  readonly success: { readonly status: 200 | 201 | 204; readonly description: string; readonly schema?: z.ZodType };
  readonly errors: readonly ApiErrorCode[];
  readonly handler: (ctx: HandlerContext<unknown, unknown, AuthContext | undefined>) => Promise<unknown>;
}

export function defineRoute<P extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined, Auth extends boolean = false>(
  spec: RouteSpec<P, B, Auth>,
): AnyRoute {
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

/** Mounts each route on `router`. */
export function mountRoutes(router: Router, routes: readonly AnyRoute[], deps: Pick<ServiceDeps, 'db'>): void {
  for (const route of routes) {
    router[route.method](expressPath(route.path), async (req: Request, res: Response) => {
      res.locals.route = route.path;
      let auth: AuthContext | undefined;
      if (route.auth) {
        const token = bearerToken(req.get('authorization'));
        auth = (token && (await authenticateToken(deps, token))) || undefined;
        if (!auth) throw new ApiError('unauthorized', 'a valid device token is required (Authorization: Bearer <token>)');
        req.auth = auth;
      }
      const params = parse(route.params, req.params, 'path');
      // A route without a body ignores whatever was sent; no body at all reads as {}.
      const body = route.body ? parse(route.body, req.body === undefined ? {} : req.body, 'body') : undefined;
      const out = await route.handler({ params, body, auth, req });
      if (route.success.status === 204) res.status(204).end();
      else res.status(route.success.status).json(out);
    });
  }
}
