/**
 * A loopback TCP proxy that misbehaves: it delays data, refuses some connections and cuts others
 * at random moments. Byte order within a connection is kept (TCP would), so what clients see is a
 * flaky network, not a corrupting one. Randomness is seeded, so a failure can be replayed.
 */
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { mulberry32 } from './seeded-random.js';

export interface ChaosOptions {
  /** Where connections go; with several, each new connection takes the next that accepts it. */
  targetPort: number | number[];
  seed: number;
  /** Probability that a new connection is refused at once. */
  refuse: number;
  /** Probability that a connection is cut at a random moment within `cutWithinMs`. */
  cut: number;
  cutWithinMs: number;
  /** Each chunk is held up to this long. */
  maxDelayMs: number;
}

/** The moments a connection is joined to a target: a dead target is skipped for the next one. */
function connectAny(ports: readonly number[], start: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const attempt = (i: number): void => {
      if (i >= ports.length) return reject(new Error('no target accepts'));
      const s = createConnection({ host: '127.0.0.1', port: ports[(start + i) % ports.length]! });
      s.once('connect', () => resolve(s));
      s.once('error', () => attempt(i + 1));
    };
    attempt(0);
  });
}


export class ChaosProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly random: () => number;
  port = 0;
  enabled = true;
  readonly stats = { connections: 0, refused: 0, cut: 0, stalls: 0 };
  private next = 0;
  /** While set, no byte moves in either direction (a stalled network, not a closed one). */
  private stalledUntil = 0;

  constructor(private readonly o: ChaosOptions) {
    this.random = mulberry32(o.seed);
  }

  async start(): Promise<void> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    client.on('error', () => undefined);
    if (this.enabled && this.random() < this.o.refuse) {
      this.stats.refused++;
      client.destroy();
      return;
    }
    const ports = Array.isArray(this.o.targetPort) ? this.o.targetPort : [this.o.targetPort];
    client.pause();
    connectAny(ports, this.next++).then(
      (upstream) => this.join(client, upstream),
      () => client.destroy(),
    );
  }

  private join(client: Socket, upstream: Socket): void {
    if (client.destroyed) return void upstream.destroy();
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    this.sockets.add(client).add(upstream);
    const forget = () => {
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', forget);
    upstream.on('close', forget);
    this.pipe(client, upstream);
    this.pipe(upstream, client);
    client.resume();
    if (this.enabled && this.random() < this.o.cut) {
      setTimeout(() => {
        this.stats.cut++;
        forget();
      }, this.random() * this.o.cutWithinMs).unref();
    }
  }

  /** Forwards with a random delay per chunk, keeping order. */
  private pipe(from: Socket, to: Socket): void {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const delay = this.enabled ? this.random() * this.o.maxDelayMs : 0;
      chain = chain.then(() => new Promise<void>((r) => setTimeout(r, Math.max(delay, this.stalledUntil - Date.now())))).then(() => {
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on('end', () => void chain.then(() => to.end()));
  }

  /** Holds every byte for `ms` (connections stay open, as on a congested or frozen link). */
  stall(ms: number): void {
    this.stats.stalls++;
    this.stalledUntil = Math.max(this.stalledUntil, Date.now() + ms);
  }

  /** Cuts every open connection now. */
  cutAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
