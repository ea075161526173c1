/** What the client persists, and under which keys. Binary values are base64url strings. */

export interface StoredIdentity {
  serverUrl: string;
  userId: string;
  deviceId: number;
  token: string;
  akSeed: string;
  akPub: string;
  ikSeed: string;
  ikPub: string;
  deviceCert: string;
  createdAt: number;
}

export interface StoredPrekey {
  id: number;
  priv: string;
  pub: string;
  /** SPK only. */
  sig?: string;
  createdAt: number;
  /** SPK only: when a newer SPK replaced it; its private key goes 30 days later (SPEC §7). */
  replacedAt?: number | null;
  /** OPK only: when this device first saw it gone from the server (claimed); collect.ts says when it goes. */
  goneAt?: number | null;
}

export interface StoredPqPrekey {
  id: number;
  seed: string;
  pub: string;
  sig: string;
  oneTime: boolean;
  createdAt: number;
  /** Last-resort only: when a newer one replaced it (kept 30 days more, like an SPK). */
  replacedAt?: number | null;
  /** One-time only: when this device first saw it gone from the server (claimed). */
  goneAt?: number | null;
}

export interface PrekeyCounters {
  nextSpkId: number;
  nextOpkId: number;
  nextPqpkId: number;
  currentSpkId: number;
  lastResortPqpkId: number;
  spkRotatedAt: number;
}

export interface StoredContact {
  userId: string;
  /** The pinned AK. */
  ak: string;
  verified: boolean;
  pinnedAt: number;
  /** A different AK the server now publishes: sending is blocked until the user accepts it (SPEC §8). */
  changedAk: string | null;
  /** The devices last fetched whose DeviceCert verified under `ak`: id and IK. */
  devices?: { id: number; ik: string }[];
}

/** Message status for the sender, per recipient account (see docs/message-status.md). */
export type MessageStatus = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';

export interface SealedCopyRecord {
  user: string;
  device: number;
  /** The device's IK as used to encrypt (the server compares it to spot stale devices). */
  key: string;
  type: number;
  body: string;
}

export interface OutboxEntry {
  messageId: string;
  /** The account the message is for. */
  recipient: string;
  /** The content JSON exactly as encrypted. */
  content: string;
  createdAt: number;
  /** The sealed copies, kept so every retry sends the same bytes. Empty until encrypted. */
  copies: SealedCopyRecord[];
  attempts: number;
  /** Real-clock ms before which the next attempt waits (retry backoff; 0: now). */
  nextAttemptAt: number;
  /** A call offer: the server wakes offline devices at once (absent: false). */
  urgent?: boolean;
}

export interface MessageRecord {
  messageId: string;
  /** The other account of the conversation. */
  conversation: string;
  sender: string;
  senderDevice: number;
  outgoing: boolean;
  /** The content kind, or 'unreadable' for a message that decrypted but cannot be shown (`unreadable` says why). */
  kind: string;
  /** The content JSON as sent (for an unreadable message: its text, when it is UTF-8). */
  content: string;
  ts: number;
  serverTs: number | null;
  status: MessageStatus;
  failure: string | null;
  /** Set on kind 'unreadable': why it cannot be shown, and whether it is from a newer version. */
  unreadable?: { reason: string; unsupported: boolean };
}

const enc = encodeURIComponent;
const pad = (n: number): string => n.toString().padStart(10, '0');

export const keys = {
  identity: 'identity',
  counters: 'prekeys/counters',
  spk: (id: number) => `prekeys/spk/${pad(id)}`,
  spkPrefix: 'prekeys/spk/',
  opk: (id: number) => `prekeys/opk/${pad(id)}`,
  opkPrefix: 'prekeys/opk/',
  pqpk: (id: number) => `prekeys/pqpk/${pad(id)}`,
  pqpkPrefix: 'prekeys/pqpk/',
  sessions: (userId: string, deviceId: number) => `sessions/${enc(userId)}/${pad(deviceId)}`,
  sessionsOf: (userId: string) => `sessions/${enc(userId)}/`,
  handshake: (hex: string) => `handshakes/${hex}`,
  contact: (userId: string) => `contacts/${enc(userId)}`,
  contactPrefix: 'contacts/',
  outbox: (messageId: string) => `outbox/${messageId}`,
  outboxPrefix: 'outbox/',
  message: (conversation: string, messageId: string) => `messages/${enc(conversation)}/${messageId}`,
  messagesOf: (conversation: string) => `messages/${enc(conversation)}/`,
  /** Receiver dedup on (sender account, message_id), SPEC §6. */
  seen: (sender: string, messageId: string) => `seen/${enc(sender)}/${messageId}`,
  /** Where a message of ours lives, by id, for receipts. */
  sentIndex: (messageId: string) => `sent/${messageId}`,
  resetSentAt: (userId: string, deviceId: number) => `resets/${enc(userId)}/${pad(deviceId)}`,
  /** Received messages no user interface has shown yet (UUIDv7 ids: in the senders' time order). */
  unseen: (messageId: string) => `unseen/${messageId}`,
  unseenPrefix: 'unseen/',
  seenPrefix: 'seen/',
  /** The server's message retention as it last told us (ms). */
  serverRetention: 'server/retention',
  /** When collection last ran (this device's clock). */
  collectedAt: 'server/collected-at',
} as const;
