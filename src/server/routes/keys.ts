/** Prekeys: upload and rotate, counts, and bundle claims. */
import { toBase64url as b64 } from '../../protocol/bytes.js';
import { fetchBundles, prekeyStatus, uploadPrekeys } from '../services/prekeys.js';
import { ApiError } from '../errors.js';
import { requireSelf } from './accounts.js';
import { clientIp, toPrekeyUpload, type RouteDeps } from './deps.js';
import { defineRoute, type AnyRoute } from './route.js';
import { BundlesIn, BundlesOut, DeviceParams, PrekeyCountsOut, PrekeyStatusOut, PrekeyUploadIn, UsernameParams } from './schemas.js';

function requireOwnDevice(auth: { username: string; deviceId: number }, p: { username: string; deviceId: number }): void {
  requireSelf(auth.username, p.username);
  if (auth.deviceId !== p.deviceId) throw new ApiError('forbidden', "a device manages its own prekeys only");
}

export function keyRoutes(deps: RouteDeps): AnyRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/accounts/{username}/devices/{deviceId}/keys',
      tag: 'keys',
      summary: "Upload prekeys; rotate the SPK and the last-resort PQPK",
      description:
        "For the authenticated device only. Every SPK and PQPK sig must verify under the device's IK and every PQPK must be a valid ML-KEM-768 key; otherwise nothing is stored. An SPK replaces the current one (kept 30 days, not served); a PQPK with last_resort true replaces the last-resort PQPK. Returns the counts left.",
      auth: true,
      params: DeviceParams,
      body: PrekeyUploadIn,
      success: { status: 200, description: 'stored; the counts now on the server', schema: PrekeyCountsOut },
      errors: ['forbidden', 'bad_signature', 'bad_key', 'inconsistent_request', 'prekey_id_reused', 'too_many_prekeys'],
      handler: async ({ params, body, auth }) => {
        requireOwnDevice(auth, params);
        const c = await uploadPrekeys(deps, auth, toPrekeyUpload(body));
        return { opk_count: c.opks, pqpk_count: c.pqpks };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/accounts/{username}/devices/{deviceId}/keys',
      tag: 'keys',
      summary: 'Prekey counts and current ids of your device',
      description:
        'How many OPKs and one-time PQPKs are left (top up below 20, SPEC §7) and their ids, the current SPK and last-resort PQPK ids, the highest id of each kind used so far, and the message retention (how long an envelope can wait, so how long the device must keep the private key of a claimed prekey and its dedup records).',
      auth: true,
      params: DeviceParams,
      success: { status: 200, description: 'the counts', schema: PrekeyStatusOut },
      errors: ['forbidden'],
      handler: async ({ params, auth }) => {
        requireOwnDevice(auth, params);
        const s = await prekeyStatus(deps, auth);
        return {
          opk_count: s.opks,
          pqpk_count: s.pqpks,
          spk_id: s.spkId,
          last_resort_pqpk_id: s.lastResortPqpkId,
          max_ids: s.maxIds,
          one_time_ids: { opk: [...s.oneTimeIds.opks], pqpk: [...s.oneTimeIds.pqpks] },
          message_retention_seconds: deps.limits.messageRetentionSeconds,
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/accounts/{username}/bundles',
      tag: 'keys',
      summary: "Claim a prekey bundle for each of a user's devices",
      description:
        "POST, not GET: each call hands out (and deletes) one OPK and one one-time PQPK per device, atomically, so no two callers get the same key. A device with no OPK left comes with opk null; with no one-time PQPK left, with its last-resort PQPK. One requesting account takes one-time keys from one device at most GCHAT_RATE_OPK_CLAIMS times per window (default 10 a day); past it the bundle comes with opk null and the last-resort PQPK, so a session can still start but the pool is not drained. The calling device is left out of its own account's bundles. Verify each DeviceCert under the AK you pinned and each SPK and PQPK sig under the device's IK. Rate-limited per IP and per requesting account.",
      auth: true,
      params: UsernameParams,
      body: BundlesIn,
      success: { status: 200, description: 'one bundle per device', schema: BundlesOut },
      errors: ['not_found', 'rate_limited'],
      handler: async ({ params, body, auth, req }) => {
        await deps.rate.bundlesPerIp.hit(clientIp(req));
        await deps.rate.bundlesPerAccount.hit(auth.accountId);
        const r = await fetchBundles(deps, auth, params.username, body.device_ids, deps.rate.oneTimePrekeyClaims);
        return {
          username: r.username,
          ak: b64(r.akPub),
          bundles: r.bundles.map((b) => ({
            device_id: b.deviceId,
            ik: b64(b.ikPub),
            device_cert: b64(b.deviceCert),
            spk: { id: b.spk.id, pub: b64(b.spk.pub), sig: b64(b.spk.sig) },
            opk: b.opk ? { id: b.opk.id, pub: b64(b.opk.pub) } : null,
            pqpk: { id: b.pqpk.id, pub: b64(b.pqpk.pub), sig: b64(b.pqpk.sig), last_resort: b.pqpk.lastResort },
          })),
        };
      },
    }),
  ];
}
