/**
 * A loopback stand-in for Google's OAuth2 token endpoint and FCM HTTP v1, enforcing the contract
 * the server relies on: the token exchange takes grant_type jwt-bearer with an RS256 JWT signed by
 * the service account's private key (iss = client_email, aud = token_uri, the messaging scope,
 * iat/exp within an hour); sends carry that bearer token, go to /v1/projects/<project>/messages:send,
 * and hold a valid message (token, string-only data, android.priority HIGH, ttl "<n>s") with no
 * notification block: data-only. An unregistered token is answered 404 UNREGISTERED, as FCM does.
 */
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseJwt, verifyRs256 } from './jwt.js';

export const PROJECT = 'gchat-test-project';
const CLIENT_EMAIL = 'gchat-push@gchat-test-project.iam.gserviceaccount.com';
const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

export interface FcmMessage {
  readonly token: string;
  readonly data: Record<string, string>;
  readonly android: Record<string, unknown>;
}

export class LoopbackFcm {
  readonly received: FcmMessage[] = [];
  readonly violations: string[] = [];
  tokenExchanges = 0;
  private readonly accessTokens = new Set<string>();
  private readonly unregistered = new Set<string>();

  private constructor(
    private readonly server: Server,
    readonly origin: string,
    private readonly dir: string,
    private readonly publicKey: KeyObject,
  ) {}

  static async start(): Promise<LoopbackFcm> {
    const dir = mkdtempSync(join(tmpdir(), 'gchat-fcm-'));
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    let self: LoopbackFcm | null = null;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => self!.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A service-account file as the Firebase console hands it out, with token_uri pointed here.
    writeFileSync(
      join(dir, 'service-account.json'),
      JSON.stringify({
        type: 'service_account',
        project_id: PROJECT,
        private_key_id: randomBytes(20).toString('hex'),
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
        client_email: CLIENT_EMAIL,
        client_id: '1234567890',
        token_uri: `${origin}/token`,
      }),
    );
    self = new LoopbackFcm(server, origin, dir, publicKey);
    return self;
  }

  env(): Record<string, string> {
    return { GCHAT_FCM_SERVICE_ACCOUNT_FILE: join(this.dir, 'service-account.json'), GCHAT_FCM_ENDPOINT: this.origin };
  }

  unregister(token: string): void {
    this.unregistered.add(token);
  }

  messagesTo(token: string): FcmMessage[] {
    return this.received.filter((m) => m.token === token);
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  private refuse(res: ServerResponse, status: number, why: string): void {
    this.violations.push(why);
    this.reply(res, status, { error: { code: status, message: why, status: status === 401 ? 'UNAUTHENTICATED' : 'INVALID_ARGUMENT' } });
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    if (req.method === 'POST' && req.url === '/token') return this.token(req, res, body);
    if (req.method === 'POST' && req.url === `/v1/projects/${PROJECT}/messages:send`) return this.send(req, res, body);
    this.refuse(res, 404, `unknown route ${req.method} ${req.url}`);
  }

  private token(req: IncomingMessage, res: ServerResponse, body: string): void {
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return this.refuse(res, 400, 'token request must be form-encoded');
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return this.refuse(res, 400, 'grant_type must be jwt-bearer');
    let jwt;
    try {
      jwt = parseJwt(form.get('assertion') ?? '');
    } catch {
      return this.refuse(res, 400, 'assertion is not a JWT');
    }
    if (jwt.header.alg !== 'RS256' || !verifyRs256(jwt, this.publicKey)) return this.refuse(res, 400, 'assertion not signed RS256 by the service account key');
    const c = jwt.claims;
    const now = Math.floor(Date.now() / 1000);
    if (c.iss !== CLIENT_EMAIL) return this.refuse(res, 400, 'iss must be the client_email');
    if (c.aud !== `${this.origin}/token`) return this.refuse(res, 400, 'aud must be the token_uri');
    if (typeof c.scope !== 'string' || !c.scope.split(' ').includes(SCOPE)) return this.refuse(res, 400, 'scope must include firebase.messaging');
    if (typeof c.iat !== 'number' || typeof c.exp !== 'number' || c.iat > now + 60 || c.exp <= now || c.exp - c.iat > 3600) return this.refuse(res, 400, 'iat/exp out of bounds');
    this.tokenExchanges++;
    const access = `ya29.${randomBytes(24).toString('base64url')}`;
    this.accessTokens.add(access);
    this.reply(res, 200, { access_token: access, expires_in: 3599, token_type: 'Bearer' });
  }

  private send(req: IncomingMessage, res: ServerResponse, body: string): void {
    const bearer = /^Bearer (\S+)$/.exec(String(req.headers['authorization'] ?? ''));
    if (!bearer || !this.accessTokens.has(bearer[1]!)) return this.refuse(res, 401, 'no valid bearer token');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return this.refuse(res, 400, 'body is not JSON');
    }
    const msg = (parsed as { message?: unknown }).message as Record<string, unknown> | undefined;
    if (!msg || typeof msg !== 'object') return this.refuse(res, 400, 'no message');
    const keys = Object.keys(parsed as object);
    if (keys.length !== 1) return this.refuse(res, 400, 'unknown top-level fields');
    if (typeof msg.token !== 'string' || msg.token.length === 0) return this.refuse(res, 400, 'message.token missing');
    if ('notification' in msg || 'webpush' in msg || 'apns' in msg) return this.refuse(res, 400, 'a wake-up must be data-only');
    const data = msg.data as Record<string, unknown> | undefined;
    if (!data || typeof data !== 'object' || !Object.values(data).every((v) => typeof v === 'string')) return this.refuse(res, 400, 'data values must be strings');
    const android = msg.android as Record<string, unknown> | undefined;
    if (!android || android.priority !== 'HIGH') return this.refuse(res, 400, 'android.priority must be HIGH');
    if ('notification' in android) return this.refuse(res, 400, 'a wake-up must be data-only');
    if (android.ttl !== undefined && !(typeof android.ttl === 'string' && /^\d+(\.\d+)?s$/.test(android.ttl))) return this.refuse(res, 400, 'android.ttl must be "<seconds>s"');
    if (Buffer.byteLength(JSON.stringify(data)) > 4096) return this.refuse(res, 400, 'data payload over 4096 bytes');
    if (this.unregistered.has(msg.token)) {
      return this.reply(res, 404, {
        error: { code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND', details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }] },
      });
    }
    this.received.push({ token: msg.token, data: data as Record<string, string>, android });
    this.reply(res, 200, { name: `projects/${PROJECT}/messages/${randomBytes(8).toString('hex')}` });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
