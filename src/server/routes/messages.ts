/**
 * REST side of the delivery model: send (the stream carries the same send), and the fallback
 * that lists and acks a device's queue. HTTP only: parse, validate, call the delivery services.
 */
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import type { z } from 'zod';
import type { Delivery } from '../delivery/index.js';
import type { Sender, SendResult } from '../delivery/send-service.js';
import { AckRequest, ResendRequest, SendRequest } from '../delivery/schemas.js';
import { errorBody, sendFailure, sendOutcome, type HttpOutcome } from '../delivery/outcome.js';
import { FETCH_PAGE, maxFrameBytes, maxSendPunctuation } from '../delivery/limits.js';
import { tooManyMembers } from '../delivery/frame-guard.js';

/** The routes whose bodies this router parses itself (the app-wide JSON parser leaves them). */
export const SEND_PATHS = ['/v1/messages', '/v1/messages/resend'] as const;

export interface MessagesRouterDeps {
  readonly delivery: Delivery;
  /** A raw device token to its device, or null (Server I's auth). */
  readonly authenticate: (token: string) => Promise<Sender | null>;
  readonly log?: (msg: string, err?: unknown) => void;
}

function answer(res: Response, o: HttpOutcome): void {
  if (o.status === 429) res.setHeader('Retry-After', '1');
  res.status(o.status).json(o.body);
}

export function messagesRouter(deps: MessagesRouterDeps): Router {
  const { delivery } = deps;
  const router = express.Router();
  // A send holds up to maxCopies bodies of up to maxBodyBytes: its own parser and bound, derived
  // from those limits (the app-wide parser skips these paths, see SEND_PATHS). Both 413 cheaply
  // before JSON.parse: a body over the bytes, or with more members than any send can hold.
  const punctuation = maxSendPunctuation(delivery.limits);
  const sendJson = express.json({
    limit: maxFrameBytes(delivery.limits),
    strict: true,
    inflate: false,
    verify: (_req, _res, raw) => {
      if (tooManyMembers(raw, punctuation)) throw Object.assign(new Error('too many members for a send'), { status: 413 });
    },
  });

  const who = async (req: Request, res: Response): Promise<Sender | null> => {
    const h = req.headers.authorization;
    const token = h?.startsWith('Bearer ') ? h.slice(7).trim() : '';
    const sender = token ? await deps.authenticate(token) : null;
    if (!sender) {
      res.status(401).json({ error: { code: 'unauthorized', message: 'a valid device token is required' } });
      return null;
    }
    return sender;
  };

  /** A send-like route: authenticate, validate with `schema`, run, map the result (REST and stream share the mapping). */
  const sendRoute = <T>(path: string, schema: z.ZodType<T>, what: string, run: (sender: Sender, body: T) => Promise<SendResult>): void => {
    // The token is checked before the body is read: a stranger cannot make the server read megabytes.
    const authFirst: RequestHandler = async (req, res, next) => {
      res.locals.route = path;
      const sender = await who(req, res);
      if (!sender) return;
      res.locals.sender = sender;
      next();
    };
    router.post(path, authFirst, sendJson, async (req, res) => {
      const sender = res.locals.sender as Sender;
      const parsed = schema.safeParse(req.body);
      if (!parsed.success) return answer(res, errorBody('invalid_request', parsed.error.issues[0]?.message ?? `bad ${what}`));
      try {
        answer(res, sendOutcome(await run(sender, parsed.data)));
      } catch (err) {
        const o = sendFailure(err);
        if (o.status >= 500) deps.log?.(`${what} failed`, err);
        answer(res, o);
      }
    });
  };
  sendRoute(SEND_PATHS[0], SendRequest, 'send', (sender, body) => delivery.sends.send(sender, body));
  sendRoute(SEND_PATHS[1], ResendRequest, 'resend', (sender, body) => delivery.sends.resend(sender, body));

  router.get('/v1/messages', async (req, res) => {
    res.locals.route = '/v1/messages';
    const sender = await who(req, res);
    if (!sender) return;
    const raw = typeof req.query.limit === 'string' ? Number(req.query.limit) : FETCH_PAGE;
    const limit = Number.isInteger(raw) && raw >= 1 ? Math.min(raw, FETCH_PAGE) : FETCH_PAGE;
    const rows = await delivery.repo.fetch(sender.deviceRef, [], limit + 1);
    res.json({ envelopes: rows.slice(0, limit), more: rows.length > limit });
  });

  router.post('/v1/messages/ack', async (req, res) => {
    res.locals.route = '/v1/messages/ack';
    const sender = await who(req, res);
    if (!sender) return;
    const parsed = AckRequest.safeParse(req.body);
    if (!parsed.success) return answer(res, errorBody('invalid_request', parsed.error.issues[0]?.message ?? 'bad ack'));
    const acked = await delivery.acks.count(sender.deviceRef, parsed.data.ids);
    res.json({ acked });
  });

  return router;
}
