/** What scripts/bench-crypto.ts asks of each implementation it compares. */

export type Party = 'A' | 'B';

/** Two devices with an established session, each storing its session state after every operation. */
export interface Conversation {
  /** Encrypts on `from`'s side; returns the bytes that would go on the wire. */
  send(from: Party, plaintext: Uint8Array): Promise<Uint8Array>;
  /** Decrypts on `to`'s side; returns the plaintext. */
  receive(to: Party, wire: Uint8Array): Promise<Uint8Array>;
  /** Bytes of `party`'s stored session state for the peer, as the store holds it. */
  storedSessionBytes(party: Party): Promise<number>;
}

export interface HandshakeResult {
  /** Size of the first (prekey) message on the wire. */
  readonly wireBytes: number;
}

export type KdfResult = { readonly ms: number; readonly output: Uint8Array } | { readonly na: string };

export interface BenchSide {
  readonly name: string;
  /** One line on what runs underneath (provider, library version, KEM). */
  readonly describe: string;
  /**
   * One full handshake between devices that already have their identity keys: the responder makes
   * fresh prekeys (signed, with a one-time EC prekey and a one-time post-quantum prekey) and the
   * bundle, the initiator checks it and starts a session, encrypts the first message, and the
   * responder decrypts that prekey message. Fresh session stores each time.
   */
  handshake(plaintext: Uint8Array): Promise<HandshakeResult>;
  /** A conversation in which both sides have sent and received, so A sends normal messages. */
  conversation(): Promise<Conversation>;
  /** The key-backup KDF at the implementation's own parameters. */
  backupKdf(): Promise<KdfResult & { readonly params?: string }>;
}
