/**
 * A loopback APNs (HTTP/2, TLS with a certificate made for the test) that enforces the provider
 * API contract the server relies on: POST /3/device/<hex token>; `authorization: bearer <JWT>`,
 * an ES256 JWT whose header names the key id and whose `iss` is the team id, `iat` within the
 * last hour, verified against the public half of the .p8 key; `apns-topic`, `apns-push-type`,
 * `apns-priority`, `apns-expiration` as Apple documents them (VoIP: topic `<bundle>.voip`,
 * priority 10, expiration 0); a JSON payload of at most 4096 bytes (5120 for VoIP). A token marked
 * dead is answered 410 Unregistered or 400 BadDeviceToken, as APNs does.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseJwt, verifyEs256 } from './jwt.js';

export const KEY_ID = 'ABC123DEFG';
export const TEAM_ID = 'DEF123GHIJ';

export interface ApnsPush {
  readonly token: string;
  readonly pushType: string;
  readonly topic: string;
  readonly priority: string;
  readonly expiration: string | null;
  readonly payload: Record<string, unknown>;
  readonly bytes: number;
}

export class LoopbackApns {
  readonly received: ApnsPush[] = [];
  readonly violations: string[] = [];
  private readonly dead = new Map<string, 'Unregistered' | 'BadDeviceToken'>();

  private constructor(
    private readonly server: http2.Http2SecureServer,
    readonly port: number,
    private readonly dir: string,
    private readonly publicKey: KeyObject,
  ) {}

  /** The env the GChat server needs to reach it. */
  env(): Record<string, string> {
    return {
      GCHAT_APNS_KEY_FILE: join(this.dir, `AuthKey_${KEY_ID}.p8`),
      GCHAT_APNS_KEY_ID: KEY_ID,
      GCHAT_APNS_TEAM_ID: TEAM_ID,
      GCHAT_APNS_HOST: '127.0.0.1',
      GCHAT_APNS_PORT: String(this.port),
      GCHAT_APNS_CA_FILE: join(this.dir, 'cert.pem'),
    };
  }

  static async start(): Promise<LoopbackApns> {
    const dir = mkdtempSync(join(tmpdir(), 'gchat-apns-'));
    // The provider's signing key, as Apple hands it out: a P-256 key in PKCS#8 PEM (.p8).
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, `AuthKey_${KEY_ID}.p8`), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    // The server's TLS certificate, self-signed for 127.0.0.1; the GChat server trusts it as its CA.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ], { stdio: 'ignore' });
    const server = http2.createSecureServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')), allowHTTP1: false });
    let self: LoopbackApns | null = null;
    server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const [status, body] = self!.handle(headers, Buffer.concat(chunks));
        stream.respond({ ':status': status, 'apns-id': randomUUID(), ...(body ? { 'content-type': 'application/json' } : {}) });
        stream.end(body ? JSON.stringify(body) : undefined);
      });
      stream.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    self = new LoopbackApns(server, (server.address() as AddressInfo).port, dir, publicKey);
    return self;
  }

  /** From now on APNs answers this token as dead. */
  kill(token: string, reason: 'Unregistered' | 'BadDeviceToken'): void {
    this.dead.set(token, reason);
  }

  pushesTo(token: string): ApnsPush[] {
    return this.received.filter((p) => p.token === token);
  }

  private refuse(status: number, reason: string): [number, { reason: string }] {
    this.violations.push(reason);
    return [status, { reason }];
  }

  private handle(h: http2.IncomingHttpHeaders, body: Buffer): [number, { reason: string; timestamp?: number } | null] {
    const m = /^\/3\/device\/([0-9a-f]{64,200})$/.exec(String(h[':path']));
    if (h[':method'] !== 'POST' || !m) return this.refuse(404, 'BadPath');
    const token = m[1]!;
    const auth = /^bearer (\S+)$/.exec(String(h['authorization'] ?? ''));
    if (!auth) return this.refuse(403, 'MissingProviderToken');
    let jwt;
    try {
      jwt = parseJwt(auth[1]!);
    } catch {
      return this.refuse(403, 'InvalidProviderToken');
    }
    if (jwt.header.alg !== 'ES256' || jwt.header.kid !== KEY_ID || jwt.claims.iss !== TEAM_ID) return this.refuse(403, 'InvalidProviderToken');
    if (!verifyEs256(jwt, this.publicKey)) return this.refuse(403, 'InvalidProviderToken');
    const iat = jwt.claims.iat;
    const now = Math.floor(Date.now() / 1000);
    if (typeof iat !== 'number' || iat > now + 60 || iat < now - 3600) return this.refuse(403, 'ExpiredProviderToken');
    const topic = String(h['apns-topic'] ?? '');
    const pushType = String(h['apns-push-type'] ?? '');
    const priority = String(h['apns-priority'] ?? '10');
    const expiration = h['apns-expiration'] === undefined ? null : String(h['apns-expiration']);
    if (!topic) return this.refuse(400, 'MissingTopic');
    if (!['alert', 'background', 'voip'].includes(pushType)) return this.refuse(400, 'InvalidPushType');
    if (!['5', '10'].includes(priority)) return this.refuse(400, 'BadPriority');
    if (expiration !== null && !/^\d+$/.test(expiration)) return this.refuse(400, 'BadExpirationDate');
    if (pushType === 'voip') {
      if (!topic.endsWith('.voip')) return this.refuse(400, 'TopicDisallowed');
      // What the server promises for calls (CallKit must see them at once, never late).
      if (priority !== '10' || expiration !== '0') return this.refuse(400, 'VoipMustBeImmediate');
    } else if (topic.endsWith('.voip')) return this.refuse(400, 'TopicDisallowed');
    if (body.length > (pushType === 'voip' ? 5120 : 4096)) return this.refuse(413, 'PayloadTooLarge');
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      return this.refuse(400, 'BadPayload');
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return this.refuse(400, 'BadPayload');
    if (pushType !== 'voip' && typeof (payload as { aps?: unknown }).aps !== 'object') return this.refuse(400, 'BadPayload');
    const dead = this.dead.get(token);
    if (dead === 'Unregistered') return [410, { reason: dead, timestamp: Date.now() }];
    if (dead === 'BadDeviceToken') return [400, { reason: dead }];
    this.received.push({ token, pushType, topic, priority, expiration, payload: payload as Record<string, unknown>, bytes: body.length });
    return [200, null];
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
