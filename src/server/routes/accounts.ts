/** Accounts and devices: register, public account record, add and remove devices. */
import { toBase64url as b64 } from '../../protocol/bytes.js';
import { ApiError } from '../errors.js';
import { addDevice, getAccount, register, removeDevice } from '../services/accounts.js';
import { clientIp, toNewDevice, type RouteDeps } from './deps.js';
import { defineRoute, type AnyRoute } from './route.js';
import { AccountOut, AddDeviceIn, DeviceParams, NewDeviceOut, RegisterIn, UsernameParams } from './schemas.js';

export function accountRoutes(deps: RouteDeps): AnyRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/accounts',
      tag: 'accounts',
      summary: 'Register an account with its AK and first device',
      description:
        "The first device is device 1: its DeviceCert is AK.sign over (username, 1, IK). The server checks the DeviceCert under the AK sent, the SPK and PQPK sigs under the IK, and refuses what does not verify. Returns the device's token. Rate-limited per IP.",
      auth: false,
      body: RegisterIn,
      success: { status: 201, description: 'the account and its first device exist', schema: NewDeviceOut },
      errors: ['bad_signature', 'bad_key', 'inconsistent_request', 'username_taken', 'device_id_mismatch', 'payload_too_large', 'rate_limited'],
      handler: async ({ body, req }) => {
        await deps.rate.registerPerIp.hit(clientIp(req));
        const r = await register(deps, { username: body.username, password: body.password, akPub: body.ak, device: toNewDevice(body.device), backup: body.backup });
        return { username: body.username, device_id: r.deviceId, token: r.token };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/accounts/{username}',
      tag: 'accounts',
      summary: "An account's AK and its devices with their certificates",
      description:
        'Public: what a client pins on first contact (AK, SPEC §5) and checks each device against (DeviceCert under the AK). Removed devices are not listed. next_device_id is the id a device being added must sign. Rate-limited per IP.',
      auth: false,
      params: UsernameParams,
      success: { status: 200, description: 'the account record', schema: AccountOut },
      errors: ['not_found', 'rate_limited'],
      handler: async ({ params, req }) => {
        await deps.rate.lookupsPerIp.hit(clientIp(req));
        const a = await getAccount(deps, params.username);
        return {
          username: a.username,
          ak: b64(a.akPub),
          devices: a.devices.map((d) => ({ device_id: d.deviceId, ik: b64(d.ikPub), device_cert: b64(d.deviceCert), created_at: d.createdAt.toISOString() })),
          next_device_id: a.nextDeviceId,
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/accounts/{username}/devices',
      tag: 'accounts',
      summary: 'Add a device to an account (password and a DeviceCert signed by the AK)',
      description:
        "The new device first recovers the AK from the key backup (POST /v1/accounts/{username}/backup/recover), signs its DeviceCert over the account's next_device_id, and sends it with its keys. A device_id other than next_device_id (e.g. another device was added meanwhile) is 409 device_id_mismatch: fetch the account again and sign the new id. Rate-limited per IP; wrong passwords are counted per (account, IP) and per account, and an IP that has not failed is never refused for the account's count.",
      auth: false,
      params: UsernameParams,
      body: AddDeviceIn,
      success: { status: 201, description: 'the device exists; its token', schema: NewDeviceOut },
      errors: ['bad_credentials', 'bad_signature', 'bad_key', 'inconsistent_request', 'device_id_mismatch', 'too_many_devices', 'rate_limited'],
      handler: async ({ params, body, req }) => {
        const ip = clientIp(req);
        await deps.rate.loginPerIp.hit(ip);
        const r = await deps.rate.passwords.attempt(params.username, ip, () =>
          addDevice(deps, { username: params.username, password: body.password, device: toNewDevice(body.device) }),
        );
        return { username: params.username, device_id: r.deviceId, token: r.token };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/accounts/{username}/devices/{deviceId}',
      tag: 'accounts',
      summary: 'Remove one of your devices',
      description:
        "Any device of the account may remove any of its devices, itself included. Final (SPEC §7): the device's token stops working, its DeviceCert and keys are no longer served, its id is never used again.",
      auth: true,
      params: DeviceParams,
      success: { status: 204, description: 'the device is removed' },
      errors: ['forbidden', 'not_found'],
      handler: async ({ params, auth }) => {
        requireSelf(auth.username, params.username);
        await removeDevice(deps, auth, params.deviceId);
      },
    }),
  ];
}

/** A device acts on its own account only. */
export function requireSelf(authUsername: string, username: string): void {
  if (authUsername !== username) throw new ApiError('forbidden', "this device's account is not the account in the path");
}
