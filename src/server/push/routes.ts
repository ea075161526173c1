/** Push registration routes (per device) and the VAPID public key. HTTP only: validate, call the service. */
import { ApiError } from '../errors.js';
import { defineRoute, type AnyRoute } from '../routes/route.js';
import type { PushService } from './service.js';
import { PushKindParams, PushRegistrationIn, PushRegistrationsOut, VapidOut } from './schemas.js';

export function pushRoutes(push: PushService): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/push/vapid',
      tag: 'push',
      summary: "The server's VAPID public key, for PushManager.subscribe({ applicationServerKey })",
      description: 'Generated at first start and kept in the database, so every instance signs with the same key.',
      auth: false,
      success: { status: 200, description: 'the key', schema: VapidOut },
      errors: ['unavailable'],
      handler: async () => ({ public_key: push.vapidPublicKey() }),
    }),
    defineRoute({
      method: 'put',
      path: '/v1/push/registrations',
      tag: 'push',
      summary: 'Register this device for wake-ups: a Web Push subscription, an APNs token (regular or VoIP) or an FCM token',
      description:
        'One registration per kind and device; a new one replaces the old. Wake-ups carry no message content: they tell the device to connect and read its queue. ' +
        'A registration the push service calls dead (Web Push 404/410, APNs Unregistered/BadDeviceToken, FCM UNREGISTERED) is removed. Removing the device removes its registrations.',
      auth: true,
      body: PushRegistrationIn,
      success: { status: 204, description: 'registered' },
      errors: ['bad_endpoint', 'bad_key'],
      handler: async ({ body, auth }) => {
        await push.register(auth, body);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/push/registrations',
      tag: 'push',
      summary: "This device's push registrations",
      auth: true,
      success: { status: 200, description: 'the registrations', schema: PushRegistrationsOut },
      errors: [],
      handler: async ({ auth }) => ({
        registrations: (await push.list(auth)).map((r) => ({ kind: r.kind, address: r.address, bundle: r.bundle })),
      }),
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/push/registrations/{kind}',
      tag: 'push',
      summary: "Remove this device's registration of one kind",
      auth: true,
      params: PushKindParams,
      success: { status: 204, description: 'removed' },
      errors: ['not_found'],
      handler: async ({ params, auth }) => {
        if (!(await push.unregister(auth, params.kind))) throw new ApiError('not_found', 'this device has no registration of that kind');
      },
    }),
  ];
}
