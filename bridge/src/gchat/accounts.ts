/**
 * The GChat account and device the bridge holds for each Matrix user who uses it: registered on
 * first use with a generated password, its keys in a sealed store on the bridge database.
 */
import { randomBytes } from 'node:crypto';
import { GChatClient, NotRegisteredError } from '../../../src/client/client.js';
import { nodeWebSocket } from '../../../src/client/node.js';
import { nodeCryptoProvider } from '../../../src/platform/node-crypto.js';
import type { BridgeDb } from '../db.js';
import { gchatUsernameFor } from '../ids.js';
import { SealedKeyValueStore } from '../secret-kv.js';

export class GChatAccounts {
  private readonly clients = new Map<string, GChatClient>();
  private readonly opening = new Map<string, Promise<GChatClient>>();

  constructor(
    private readonly db: BridgeDb,
    private readonly secretsKey: Buffer,
    private readonly serverUrl: string,
    /** Wires a client's events before it starts (and before its catch-up runs). */
    private readonly attach: (matrixUser: string, client: GChatClient) => Promise<void>,
  ) {}

  private options(matrixUser: string) {
    return { store: new SealedKeyValueStore(this.db, `gchat:${matrixUser}`, this.secretsKey), webSocket: nodeWebSocket, crypto: nodeCryptoProvider };
  }

  /** The running client of a Matrix user who has an account, else null. */
  async existing(matrixUser: string): Promise<GChatClient | null> {
    const running = this.clients.get(matrixUser) ?? (await this.opening.get(matrixUser));
    if (running) return running;
    const [row] = await this.db.query('SELECT 1 FROM accounts WHERE matrix_user = $1', [matrixUser]);
    return row ? this.ensure(matrixUser) : null;
  }

  /** The Matrix user's client, registering the GChat account on first use. Callers check who is allowed. */
  ensure(matrixUser: string): Promise<GChatClient> {
    const c = this.clients.get(matrixUser);
    if (c) return Promise.resolve(c);
    let p = this.opening.get(matrixUser);
    if (!p) {
      p = this.openOrRegister(matrixUser).finally(() => this.opening.delete(matrixUser));
      this.opening.set(matrixUser, p);
    }
    return p;
  }

  private async openOrRegister(matrixUser: string): Promise<GChatClient> {
    const o = this.options(matrixUser);
    let client: GChatClient;
    try {
      client = await GChatClient.open(o);
    } catch (e) {
      if (!(e instanceof NotRegisteredError)) throw e;
      // The bridge holds the keys; the recovery code is not needed (a new bridge device would re-register).
      ({ client } = await GChatClient.register(o, { serverUrl: this.serverUrl, username: gchatUsernameFor(matrixUser), password: randomBytes(24).toString('base64url') }));
    }
    await this.db.query('INSERT INTO accounts (matrix_user, gchat_user, created_at) VALUES ($1, $2, $3) ON CONFLICT (matrix_user) DO NOTHING', [matrixUser, client.userId, Date.now()]);
    await this.attach(matrixUser, client);
    await client.start();
    this.clients.set(matrixUser, client);
    return client;
  }

  async startAll(): Promise<void> {
    const rows = await this.db.query<{ matrix_user: string }>('SELECT matrix_user FROM accounts');
    for (const r of rows) await this.ensure(r.matrix_user);
  }

  async stopAll(): Promise<void> {
    for (const c of this.clients.values()) await c.stop();
    this.clients.clear();
  }
}
