/**
 * The JSON shapes of API v1, as zod schemas. Requests are validated with them and the OpenAPI
 * document is generated from them (openapi.ts); nothing here is written twice. Binary values are
 * base64url without padding; request schemas decode them to Uint8Array of the exact length.
 */
import { z } from 'zod';
import { fromBase64url } from '../../protocol/bytes.js';
import { PREKEY_TOP_UP } from '../../protocol/limits.js';
import { API_ERROR_CODES, ERRORS, type ApiErrorCode } from '../errors.js';
import { b64Length, base64url, base64urlPattern, deviceId, deviceIdParam, username } from './fields.js';

export { deviceId, username };

function decode(s: string, ctx: z.RefinementCtx): Uint8Array {
  try {
    return fromBase64url(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'invalid base64url' });
    return z.NEVER;
  }
}

/** Exactly `n` bytes, base64url. */
export const bytesIn = (n: number, what: string) => base64url(what, n).transform(decode);

/** 1 to `max` bytes, base64url. */
export const varBytesIn = (max: number, what: string) =>
  z
    .string()
    .min(2)
    .max(b64Length(max))
    .regex(new RegExp(base64urlPattern()), 'must be canonical base64url without padding')
    .transform(decode)
    .meta({ description: `${what}: 1 to ${max} bytes, base64url without padding` });

/** A binary value in a response. */
export const bytesOut = (n: number | null, what: string) =>
  z.string().meta({ description: `${what}: ${n === null ? '' : `${n} bytes, `}base64url without padding`, pattern: base64urlPattern(n ?? undefined) });

export const u32 = z.number().int().min(0).max(0xffffffff);
const opkId = z.number().int().min(0).max(0xfffffffe).meta({ description: 'OPK id, u32 below 0xFFFFFFFF' });

export const password = z.string().min(8).max(1024).meta({ description: '8 to 1024 characters' });

/** Largest backup blob any configuration accepts; the configured bound (413 above it) is lower. */
export const BACKUP_SCHEMA_MAX_BYTES = 1024 * 1024;

const idsNote =
  'Every id must be above every id of the same kind (SPK, OPK, PQPK) this device uploaded before (409 prekey_id_reused), so no id is ever reused.';

// ---- requests ----------------------------------------------------------------------------------

export const SignedPrekeyIn = z
  .object({ id: u32, pub: bytesIn(32, 'X25519 public key'), sig: bytesIn(64, 'SPK sig by the IK (SPEC §2)') })
  .meta({ id: 'SignedPrekeyIn' });

export const OneTimePrekeyIn = z.object({ id: opkId, pub: bytesIn(32, 'X25519 public key') }).meta({ id: 'OneTimePrekeyIn' });

export const PqPrekeyIn = z
  .object({
    id: u32,
    pub: bytesIn(1184, 'ML-KEM-768 encapsulation key'),
    sig: bytesIn(64, 'PQPK sig by the IK (SPEC §2)'),
    last_resort: z.boolean().meta({ description: 'true: the last-resort PQPK (replaces the current one); false: one-time' }),
  })
  .meta({ id: 'PqPrekeyIn' });

const opks = z.array(OneTimePrekeyIn).max(PREKEY_TOP_UP);
// How many of them are last-resort is checked by the service (422 inconsistent_request): a count
// of matching items is no rule a generator from the document can honour.
const pqpks = z
  .array(PqPrekeyIn)
  .max(PREKEY_TOP_UP + 1)
  .meta({ description: `at most ${PREKEY_TOP_UP} one-time PQPKs and at most one last-resort PQPK (422 inconsistent_request otherwise)` });

export const PrekeyUploadIn = z
  .object({
    spk: SignedPrekeyIn.optional().meta({ description: 'a new SPK; replaces the current one, which is deleted 30 days later' }),
    opks: opks.default([]),
    pqpks: pqpks.default([]),
  })
  .meta({ id: 'PrekeyUpload', description: `Up to ${PREKEY_TOP_UP} OPKs and ${PREKEY_TOP_UP} one-time PQPKs. ${idsNote}` });

export const NewDeviceIn = z
  .object({
    device_id: deviceId,
    ik: bytesIn(32, 'IK, Ed25519 public key'),
    device_cert: bytesIn(64, 'DeviceCert: AK.sign over (username, device_id, IK) (SPEC §2)'),
    spk: SignedPrekeyIn,
    opks,
    pqpks: pqpks.meta({ description: `exactly one last-resort PQPK and at most ${PREKEY_TOP_UP} one-time PQPKs (422 inconsistent_request otherwise)` }),
  })
  .meta({
    id: 'NewDevice',
    description:
      "A device and its first keys. device_id is 1 for the account's first device, and for an added device the account's " +
      `next_device_id (GET /v1/accounts/{username} or the backup recovery response); another id is 409 device_id_mismatch. ${idsNote}`,
  });

export const RegisterIn = z
  .object({
    username,
    password,
    ak: bytesIn(32, 'AK, the account key, Ed25519 public key'),
    device: NewDeviceIn,
    backup: varBytesIn(BACKUP_SCHEMA_MAX_BYTES, 'the encrypted key backup blob (SPEC §9), opaque to the server').optional(),
  })
  .meta({ id: 'RegisterRequest' });

export const AddDeviceIn = z.object({ password, device: NewDeviceIn }).meta({ id: 'AddDeviceRequest' });

export const PasswordIn = z.object({ password }).meta({ id: 'PasswordRequest' });

export const BackupIn = z
  .object({ blob: varBytesIn(BACKUP_SCHEMA_MAX_BYTES, 'the encrypted key backup blob (SPEC §9), opaque to the server') })
  .meta({ id: 'BackupRequest' });

export const BundlesIn = z
  .object({
    device_ids: z.array(deviceId).max(1000).optional().meta({ description: 'only these devices (default: every device)' }),
  })
  .meta({ id: 'BundlesRequest' });

export const UsernameParams = z.object({ username });
export const DeviceParams = z.object({ username, deviceId: deviceIdParam });

// ---- responses ---------------------------------------------------------------------------------

export const NewDeviceOut = z
  .object({
    username,
    device_id: deviceId,
    token: z.string().meta({ description: 'device token (Authorization: Bearer <token>); shown once, 43 characters' }),
  })
  .meta({ id: 'NewDeviceResponse' });

export const DeviceOut = z
  .object({
    device_id: deviceId,
    ik: bytesOut(32, 'IK'),
    device_cert: bytesOut(64, 'DeviceCert'),
    created_at: z.string().meta({ description: 'ISO 8601' }),
  })
  .meta({ id: 'Device' });

export const AccountOut = z
  .object({
    username,
    ak: bytesOut(32, 'AK, which clients pin on first contact (SPEC §5)'),
    devices: z.array(DeviceOut).meta({ description: 'devices not removed, by device id' }),
    next_device_id: z.number().int().meta({ description: 'the device_id the next added device must sign and send' }),
  })
  .meta({ id: 'Account' });

export const BackupOut = z
  .object({ blob: bytesOut(null, 'key backup blob'), updated_at: z.string().meta({ description: 'ISO 8601' }) })
  .meta({ id: 'Backup' });

export const RecoveredBackupOut = z
  .object({
    blob: bytesOut(null, 'key backup blob'),
    updated_at: z.string(),
    next_device_id: z.number().int().meta({ description: 'the device_id to sign for the device being added' }),
  })
  .meta({ id: 'RecoveredBackup' });

export const PrekeyCountsOut = z
  .object({
    opk_count: z.number().int().meta({ description: 'OPKs left on the server' }),
    pqpk_count: z.number().int().meta({ description: 'one-time PQPKs left (the last-resort PQPK not counted)' }),
  })
  .meta({ id: 'PrekeyCounts' });

export const PrekeyStatusOut = PrekeyCountsOut.extend({
  spk_id: u32.nullable(),
  last_resort_pqpk_id: u32.nullable(),
  max_ids: z
    .object({ spk: z.number().int(), opk: z.number().int(), pqpk: z.number().int() })
    .meta({ description: 'the highest id of each kind used so far (-1: none); new ids must be above them' }),
  one_time_ids: z
    .object({ opk: z.array(u32), pqpk: z.array(u32) })
    .meta({ description: 'the OPKs and one-time PQPKs still on the server, ascending; any other was claimed (or never uploaded)' }),
  message_retention_seconds: z
    .number()
    .int()
    .meta({ description: 'GCHAT_MESSAGE_RETENTION_SECONDS: how long an undelivered envelope (and a send dedup entry) is kept' }),
}).meta({ id: 'PrekeyStatus' });

export const BundleOut = z
  .object({
    device_id: deviceId,
    ik: bytesOut(32, 'IK'),
    device_cert: bytesOut(64, 'DeviceCert'),
    spk: z.object({ id: u32, pub: bytesOut(32, 'SPK'), sig: bytesOut(64, 'SPK sig') }),
    opk: z.object({ id: u32, pub: bytesOut(32, 'OPK') }).nullable().meta({ description: 'null when the device has no OPK left' }),
    pqpk: z
      .object({ id: u32, pub: bytesOut(1184, 'PQPK'), sig: bytesOut(64, 'PQPK sig'), last_resort: z.boolean() })
      .meta({ description: 'a one-time PQPK, or the last-resort PQPK when none is left' }),
  })
  .meta({ id: 'Bundle' });

export const BundlesOut = z
  .object({ username, ak: bytesOut(32, 'AK'), bundles: z.array(BundleOut) })
  .meta({ id: 'Bundles' });

/** The error of every refusal; the codes and their statuses are errors.ts's table. */
export const ErrorInfo = z
  .object({
    code: z.enum(API_ERROR_CODES as [ApiErrorCode, ...ApiErrorCode[]]).meta({
      description: API_ERROR_CODES.map((c) => `${c} (${ERRORS[c].status}): ${ERRORS[c].about}`).join('; '),
    }),
    message: z.string().meta({ description: 'what went wrong, for people; clients act on the code' }),
  })
  .meta({ id: 'ErrorInfo' });

export const ErrorOut = z
  .object({ error: ErrorInfo })
  .meta({ id: 'Error', description: 'Every refusal: { "error": { "code", "message" } }; device_mismatch and queue_full carry details beside "error".' });
