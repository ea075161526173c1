/** TURN relay credentials for calls (coturn shared-secret REST scheme). */
import { turnCredential } from '../calls/turn.js';
import type { TurnConfig } from '../config.js';
import { ApiError } from '../errors.js';
import { TurnOut } from '../push/schemas.js';
import { defineRoute, type AnyRoute } from './route.js';

export function turnRoutes(turn: TurnConfig | null, now: () => number): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/turn',
      tag: 'calls',
      summary: 'Short-lived TURN credentials and the TURN URIs, for RTCPeerConnection iceServers',
      description:
        'username is "<expiry>:<account>.<device>", credential is base64(HMAC-SHA1(secret, username)): coturn (use-auth-secret) checks both and refuses an expired username. 404 when this server offers no TURN relay.',
      auth: true,
      success: { status: 200, description: 'credentials', schema: TurnOut },
      errors: ['not_found'],
      handler: async ({ auth }) => {
        if (!turn) throw new ApiError('not_found', 'this server offers no TURN relay');
        const c = turnCredential(turn, `${auth.username}.${auth.deviceId}`, now());
        return { username: c.username, credential: c.credential, ttl: c.ttl, uris: [...c.uris] };
      },
    }),
  ];
}
