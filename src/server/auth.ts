/**
 * Device-token authentication: `Authorization: Bearer <token>`. The middleware is for routers
 * mounted beside the v1 routes (Server II); the WebSocket authenticates a raw token with
 * `authenticateToken` (re-exported here).
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ApiError } from './errors.js';
import { authenticateToken } from './services/accounts.js';
import type { AuthContext, ServiceDeps } from './services/deps.js';

export { authenticateToken };
export type { AuthContext };

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by requireDevice (and by routes declared with auth: true). */
      auth?: AuthContext;
    }
  }
}

/** The token in an Authorization header, or null when there is none or it is not a bearer token. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(header ?? '');
  return m ? m[1]! : null;
}

/** Express middleware: 401 unless the request carries the token of a device that is not removed. */
export function requireDevice(deps: Pick<ServiceDeps, 'db'>): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const token = bearerToken(req.get('authorization'));
    const pending = token ? authenticateToken(deps, token) : Promise.resolve(null);
    pending.then(
      (auth) => {
        if (!auth) return next(new ApiError('unauthorized', 'a valid device token is required (Authorization: Bearer <token>)'));
        req.auth = auth;
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

/** The authenticated device of a request that passed requireDevice. */
export function deviceOf(req: Request): AuthContext {
  if (!req.auth) throw new ApiError('unauthorized', 'a valid device token is required (Authorization: Bearer <token>)');
  return req.auth;
}
