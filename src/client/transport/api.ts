/**
 * API v1 over fetch: one typed function per route, binary values as Uint8Array. Errors are
 * ApiRequestError (the server answered 4xx/5xx: `code` from its JSON error) or NetworkError (no
 * answer: retry).
 */
import { fromBase64url, toBase64url as b64 } from '../../protocol/bytes.js';
import type { PreKeyBundle } from '../../protocol/handshake.js';
import type { PrekeyUpload } from '../device-keys.js';

export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
  /** Worth retrying the same request later: the server or the path to it failed, or asked us to wait. */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429 || this.status === 507;
  }
}

export class NetworkError extends Error {
  override readonly name = 'NetworkError';
}

export interface NewDeviceKeys {
  deviceId: number;
  ikPub: Uint8Array;
  deviceCert: Uint8Array;
  prekeys: PrekeyUpload & { spk: NonNullable<PrekeyUpload['spk']> };
}

export interface AccountInfo {
  username: string;
  akPub: Uint8Array;
  devices: { deviceId: number; ikPub: Uint8Array; deviceCert: Uint8Array }[];
  nextDeviceId: number;
}

export interface SealedCopy {
  user: string;
  device: number;
  key: string;
  type: number;
  body: string;
}

export interface SendAnswer {
  message_id: string;
  server_ts: number;
  envelopes: { user: string; device: number; id: string }[];
}

export interface DeviceMismatch {
  missing: { user: string; device: number }[];
  extra: { user: string; device: number }[];
  stale: { user: string; device: number }[];
}

export interface Envelope {
  id: string;
  message_id: string;
  sender: string;
  sender_device: number;
  type: number;
  body: string;
  server_ts: number;
}

/** A device's own prekeys on the server (`null`: a server too old to say). */
export interface PrekeyStatus {
  opks: number;
  pqpks: number;
  maxIds: { spk: number; opk: number; pqpk: number };
  /** The ids of the OPKs and one-time PQPKs the server still holds. */
  oneTimeIds: { opks: number[]; pqpks: number[] } | null;
  /** How long the server keeps an undelivered envelope. */
  retentionMs: number | null;
}

export type PushKind = 'webpush' | 'apns' | 'apns-voip' | 'fcm';

/** A push registration as the server takes it. */
export type PushRegistration =
  | { kind: 'webpush'; endpoint: string; keys: { p256dh: string; auth: string } }
  | { kind: 'apns' | 'apns-voip'; token: string; bundle: string }
  | { kind: 'fcm'; token: string };

export interface TurnCredentials {
  username: string;
  credential: string;
  /** Seconds the credential stays valid. */
  ttl: number;
  uris: string[];
}

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }) => Promise<{
  status: number;
  text(): Promise<string>;
}>;

const REQUEST_TIMEOUT_MS = 30_000;

function prekeysJson(u: PrekeyUpload) {
  return {
    ...(u.spk ? { spk: { id: u.spk.id, pub: b64(u.spk.publicKey), sig: b64(u.spk.signature) } } : {}),
    opks: u.opks.map((k) => ({ id: k.id, pub: b64(k.publicKey) })),
    pqpks: u.pqpks.map((k) => ({ id: k.id, pub: b64(k.publicKey), sig: b64(k.signature), last_resort: !k.oneTime })),
  };
}

function deviceJson(d: NewDeviceKeys) {
  return { device_id: d.deviceId, ik: b64(d.ikPub), device_cert: b64(d.deviceCert), ...prekeysJson(d.prekeys) };
}

/** A bundle as API v1 answers it (base64url), for one device. */
export interface BundleJson {
  device_id: number;
  ik: string;
  device_cert: string;
  spk: { id: number; pub: string; sig: string };
  opk: { id: number; pub: string } | null;
  pqpk: { id: number; pub: string; sig: string; last_resort: boolean };
}

export class GChatApi {
  private readonly base: string;
  token: string | null;

  constructor(
    serverUrl: string,
    token: string | null = null,
    // Bound: the browser's fetch throws "Illegal invocation" when called as a method of another object.
    private readonly fetchImpl: FetchLike = ((input, init) => globalThis.fetch(input, init)) as FetchLike,
  ) {
    this.base = serverUrl.replace(/\/+$/, '');
    this.token = token;
  }

  get url(): string {
    return this.base;
  }

  private async call<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`;
    let res: { status: number; text(): Promise<string> };
    let text: string;
    try {
      res = await this.fetchImpl(this.base + path, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await res.text();
    } catch (e) {
      throw new NetworkError(`${method} ${path}: ${(e as Error).message}`);
    }
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      if (res.status < 400) throw new NetworkError(`${method} ${path}: answer is not JSON`);
    }
    if (res.status >= 400) {
      const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiRequestError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `HTTP ${res.status}`, parsed);
    }
    return parsed as T;
  }

  async register(input: { username: string; password: string; akPub: Uint8Array; device: NewDeviceKeys; backup?: Uint8Array }): Promise<{ deviceId: number; token: string }> {
    const r = await this.call<{ device_id: number; token: string }>(
      'POST',
      '/v1/accounts',
      { username: input.username, password: input.password, ak: b64(input.akPub), device: deviceJson(input.device), ...(input.backup ? { backup: b64(input.backup) } : {}) },
      false,
    );
    return { deviceId: r.device_id, token: r.token };
  }

  async recoverBackup(username: string, password: string): Promise<{ blob: Uint8Array; nextDeviceId: number }> {
    const r = await this.call<{ blob: string; next_device_id: number }>('POST', `/v1/accounts/${encodeURIComponent(username)}/backup/recover`, { password }, false);
    return { blob: fromBase64url(r.blob), nextDeviceId: r.next_device_id };
  }

  async addDevice(username: string, password: string, device: NewDeviceKeys): Promise<{ deviceId: number; token: string }> {
    const r = await this.call<{ device_id: number; token: string }>('POST', `/v1/accounts/${encodeURIComponent(username)}/devices`, { password, device: deviceJson(device) }, false);
    return { deviceId: r.device_id, token: r.token };
  }

  async putBackup(username: string, blob: Uint8Array): Promise<void> {
    await this.call('PUT', `/v1/accounts/${encodeURIComponent(username)}/backup`, { blob: b64(blob) });
  }

  async getBackup(username: string): Promise<Uint8Array> {
    const r = await this.call<{ blob: string }>('GET', `/v1/accounts/${encodeURIComponent(username)}/backup`);
    return fromBase64url(r.blob);
  }

  async account(username: string): Promise<AccountInfo> {
    const r = await this.call<{ username: string; ak: string; devices: { device_id: number; ik: string; device_cert: string }[]; next_device_id: number }>(
      'GET',
      `/v1/accounts/${encodeURIComponent(username)}`,
    );
    return {
      username: r.username,
      akPub: fromBase64url(r.ak),
      devices: r.devices.map((d) => ({ deviceId: d.device_id, ikPub: fromBase64url(d.ik), deviceCert: fromBase64url(d.device_cert) })),
      nextDeviceId: r.next_device_id,
    };
  }

  async removeDevice(username: string, deviceId: number): Promise<void> {
    await this.call('DELETE', `/v1/accounts/${encodeURIComponent(username)}/devices/${deviceId}`);
  }

  async prekeyStatus(username: string, deviceId: number): Promise<PrekeyStatus> {
    const r = await this.call<{
      opk_count: number;
      pqpk_count: number;
      max_ids: { spk: number; opk: number; pqpk: number };
      one_time_ids?: { opk: number[]; pqpk: number[] };
      message_retention_seconds?: number;
    }>('GET', `/v1/accounts/${encodeURIComponent(username)}/devices/${deviceId}/keys`);
    return {
      opks: r.opk_count,
      pqpks: r.pqpk_count,
      maxIds: r.max_ids,
      oneTimeIds: r.one_time_ids ? { opks: r.one_time_ids.opk, pqpks: r.one_time_ids.pqpk } : null,
      retentionMs: typeof r.message_retention_seconds === 'number' ? r.message_retention_seconds * 1000 : null,
    };
  }

  async uploadPrekeys(username: string, deviceId: number, upload: PrekeyUpload): Promise<{ opks: number; pqpks: number }> {
    const r = await this.call<{ opk_count: number; pqpk_count: number }>('POST', `/v1/accounts/${encodeURIComponent(username)}/devices/${deviceId}/keys`, prekeysJson(upload));
    return { opks: r.opk_count, pqpks: r.pqpk_count };
  }

  /** Claims one bundle per device (each call uses up one OPK and one-time PQPK per device). */
  async bundles(username: string, deviceIds?: number[]): Promise<{ akPub: Uint8Array; bundles: PreKeyBundle[] }> {
    const r = await this.call<{ username: string; ak: string; bundles: BundleJson[] }>(
      'POST',
      `/v1/accounts/${encodeURIComponent(username)}/bundles`,
      deviceIds ? { device_ids: deviceIds } : {},
    );
    return {
      akPub: fromBase64url(r.ak),
      bundles: r.bundles.map((b) => bundleFromJson(r.username, b)),
    };
  }

  /**
   * Sends one logical message; a 409 with `missing/extra/stale` is thrown as ApiRequestError with that body.
   * `urgent` (call offers): offline devices get an immediate wake-up (an APNs VoIP push on iOS).
   */
  async send(messageId: string, recipient: string, copies: SealedCopy[], urgent = false): Promise<SendAnswer> {
    return this.call<SendAnswer>('POST', '/v1/messages', { message_id: messageId, recipient, copies, ...(urgent ? { urgent: true } : {}) });
  }

  /** The server's VAPID public key (base64url), for PushManager.subscribe's applicationServerKey. */
  async vapidPublicKey(): Promise<string> {
    return (await this.call<{ public_key: string }>('GET', '/v1/push/vapid', undefined, false)).public_key;
  }

  /** Registers this device for wake-ups (one registration per kind; a new one replaces the old). */
  async registerPush(registration: PushRegistration): Promise<void> {
    await this.call('PUT', '/v1/push/registrations', registration);
  }

  async pushRegistrations(): Promise<{ kind: PushKind; address: string; bundle: string | null }[]> {
    return (await this.call<{ registrations: { kind: PushKind; address: string; bundle: string | null }[] }>('GET', '/v1/push/registrations')).registrations;
  }

  async unregisterPush(kind: PushKind): Promise<void> {
    await this.call('DELETE', `/v1/push/registrations/${encodeURIComponent(kind)}`);
  }

  /** Short-lived TURN credentials and URIs (404 not_found: the server offers no relay). */
  async turn(): Promise<TurnCredentials> {
    return this.call<TurnCredentials>('GET', '/v1/turn');
  }

  /** Sends an accepted message again to one device that could not read it (after its session-reset). */
  async resend(messageId: string, recipient: string, copy: SealedCopy): Promise<SendAnswer> {
    return this.call<SendAnswer>('POST', '/v1/messages/resend', { message_id: messageId, recipient, copy });
  }

  async fetchQueue(limit?: number): Promise<{ envelopes: Envelope[]; more: boolean }> {
    return this.call('GET', `/v1/messages${limit ? `?limit=${limit}` : ''}`);
  }

  async ack(ids: string[]): Promise<number> {
    return (await this.call<{ acked: number }>('POST', '/v1/messages/ack', { ids })).acked;
  }
}

/** A bundle of `username`'s device in the protocol's shape, ready for verifyBundle / startSession. */
export function bundleFromJson(username: string, b: BundleJson): PreKeyBundle {
  return {
    userId: username,
    deviceId: b.device_id,
    ikPub: fromBase64url(b.ik),
    deviceCert: fromBase64url(b.device_cert),
    spkId: b.spk.id,
    spkPub: fromBase64url(b.spk.pub),
    spkSig: fromBase64url(b.spk.sig),
    opkId: b.opk ? b.opk.id : null,
    opkPub: b.opk ? fromBase64url(b.opk.pub) : null,
    pqpkId: b.pqpk.id,
    pqpkPub: fromBase64url(b.pqpk.pub),
    pqpkSig: fromBase64url(b.pqpk.sig),
  };
}

export function deviceMismatchOf(e: unknown): DeviceMismatch | null {
  if (!(e instanceof ApiRequestError) || e.status !== 409) return null;
  const b = e.body as Partial<DeviceMismatch> | undefined;
  return b && Array.isArray(b.missing) && Array.isArray(b.extra) && Array.isArray(b.stale) ? (b as DeviceMismatch) : null;
}
