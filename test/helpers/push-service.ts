/**
 * A loopback Web Push service (RFC 8030) that holds each subscription's private key, as a browser
 * would, so it can check every push the way the real chain does: the VAPID JWT (RFC 8292: ES256
 * under the key in `k`, `aud` = the endpoint's origin, `exp` within 24 hours, `sub` a mailto: or
 * https: URL), the TTL and Urgency headers, and the payload, decrypted (RFC 8291, aes128gcm) with
 * node:crypto alone. Anything out of contract is answered 400 and recorded as a violation.
 */
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseJwt, verifyEs256 } from './jwt.js';

export interface Subscription {
  readonly id: string;
  readonly endpoint: string;
  /** As PushSubscription.toJSON() gives them. */
  readonly keys: { readonly p256dh: string; readonly auth: string };
}

export interface ReceivedPush {
  readonly subscription: string;
  readonly at: number;
  readonly ttl: number;
  readonly urgency: string | null;
  readonly topic: string | null;
  /** The decrypted payload as text. */
  readonly plaintext: string;
  /** The VAPID public key the push was signed under (k=). */
  readonly vapidKey: string;
  readonly claims: Record<string, unknown>;
}

interface Held {
  readonly ecdh: ReturnType<typeof createECDH>;
  readonly auth: Buffer;
  /** The status to answer (201 normally; 404/410 for a dead subscription). */
  status: number;
}

function hkdf(ikm: Buffer, salt: Buffer, info: Buffer, len: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, len));
}

/** RFC 8291 §3.4 + RFC 8188: one aes128gcm record, decrypted with the subscription's private key. */
export function decryptAes128gcm(body: Buffer, ecdh: ReturnType<typeof createECDH>, auth: Buffer): string {
  if (body.length < 21 + 65 + 16) throw new Error('body too short for an aes128gcm record');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  if (idlen !== 65) throw new Error('keyid must be the 65-byte application server public key');
  const asPublic = body.subarray(21, 21 + 65);
  const ciphertext = body.subarray(21 + 65);
  if (ciphertext.length > rs) throw new Error('more than one record');
  const uaPublic = ecdh.getPublicKey();
  const ecdhSecret = ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic]);
  const ikm = hkdf(ecdhSecret, auth, keyInfo, 32);
  const cek = hkdf(ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16);
  const nonce = hkdf(ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12);
  const d = createDecipheriv('aes-128-gcm', cek, nonce);
  d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 0x02) throw new Error('the last record must end in the 0x02 delimiter');
  return padded.subarray(0, end).toString('utf8');
}

export class LoopbackPushService {
  readonly received: ReceivedPush[] = [];
  readonly violations: string[] = [];
  private readonly subs = new Map<string, Held>();
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<LoopbackPushService> {
    let self: LoopbackPushService | null = null;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = self!.handle(req, Buffer.concat(chunks));
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    self = new LoopbackPushService(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  /** A new subscription, as PushManager.subscribe() would make one. */
  subscribe(): Subscription {
    const id = randomUUID();
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.subs.set(id, { ecdh, auth, status: 201 });
    return { id, endpoint: `${this.origin}/push/${id}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } };
  }

  /** From now on the service answers `status` for this subscription (410: unsubscribed). */
  answer(sub: Subscription, status: number): void {
    this.subs.get(sub.id)!.status = status;
  }

  pushesTo(sub: Subscription): ReceivedPush[] {
    return this.received.filter((p) => p.subscription === sub.id);
  }

  private refuse(why: string): number {
    this.violations.push(why);
    return 400;
  }

  private handle(req: IncomingMessage, body: Buffer): number {
    const m = /^\/push\/([0-9a-f-]{36})$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) return 404;
    const held = this.subs.get(m[1]!);
    if (!held) return 404;
    if (held.status !== 201) {
      this.notify();
      return held.status;
    }
    const ttlHeader = req.headers['ttl'];
    if (typeof ttlHeader !== 'string' || !/^\d+$/.test(ttlHeader)) return this.refuse('TTL header missing (RFC 8030 §5.2)');
    const urgency = typeof req.headers['urgency'] === 'string' ? req.headers['urgency'] : null;
    if (urgency !== null && !['very-low', 'low', 'normal', 'high'].includes(urgency)) return this.refuse(`bad Urgency ${urgency}`);
    // RFC 8292 §3: Authorization: vapid t=<JWT>, k=<public key>
    const a = /^vapid t=([A-Za-z0-9_.-]+),\s*k=([A-Za-z0-9_-]+)$/.exec(req.headers['authorization'] ?? '');
    if (!a) return this.refuse('no vapid Authorization');
    const [, token, k] = a as unknown as [string, string, string];
    const raw = Buffer.from(k, 'base64url');
    if (raw.length !== 65 || raw[0] !== 4) return this.refuse('k is not an uncompressed P-256 point');
    const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') }, format: 'jwk' });
    const jwt = parseJwt(token);
    if (jwt.header.alg !== 'ES256') return this.refuse('VAPID JWT alg must be ES256');
    if (!verifyEs256(jwt, key)) return this.refuse('VAPID JWT signature does not verify under k');
    const now = Math.floor(Date.now() / 1000);
    if (jwt.claims.aud !== this.origin) return this.refuse(`aud ${String(jwt.claims.aud)} is not the endpoint origin`);
    const exp = jwt.claims.exp;
    if (typeof exp !== 'number' || exp <= now || exp > now + 24 * 3600) return this.refuse('exp must be in the next 24 hours');
    if (typeof jwt.claims.sub !== 'string' || !/^(mailto:|https:)/.test(jwt.claims.sub)) return this.refuse('sub must be a mailto: or https: URL');
    if (req.headers['content-encoding'] !== 'aes128gcm') return this.refuse('Content-Encoding must be aes128gcm');
    let plaintext: string;
    try {
      plaintext = decryptAes128gcm(body, held.ecdh, held.auth);
    } catch (e) {
      return this.refuse(`payload does not decrypt: ${(e as Error).message}`);
    }
    this.received.push({
      subscription: m[1]!,
      at: performance.now(),
      ttl: Number(ttlHeader),
      urgency,
      topic: typeof req.headers['topic'] === 'string' ? req.headers['topic'] : null,
      plaintext,
      vapidKey: k,
      claims: jwt.claims,
    });
    this.notify();
    return 201;
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
