/** Every bound of the protocol, in one place (SPEC sections named). */

/** §4: most message keys skipped in one chain by one message. */
export const MAX_SKIP = 1000;
/** §4: most stored skipped keys per receiving chain, then per session. */
export const MAX_SKIPPED_PER_CHAIN = 1000;
export const MAX_SKIPPED_PER_SESSION = 2000;
/** §4: a stored skipped key is deleted this long after it was stored. */
export const SKIPPED_KEY_TTL_MS = 30 * 24 * 3600 * 1000;
/** §5: archived sessions kept per peer device, besides the active one. */
export const MAX_ARCHIVED_SESSIONS = 10;
/** §2: a user_id is at most this many UTF-8 bytes. */
export const MAX_USER_ID_BYTES = 65535;
/** §2: OPK ids are below this value; it means "no OPK" on the wire. */
export const NO_OPK_ID = 0xffffffff;
/** §6: padding block. */
export const PAD_BLOCK = 160;
/** §6: most UTF-8 bytes of a text body. */
export const MAX_TEXT_BODY_BYTES = 64 * 1024;
/** §7: key lifetimes and prekey counts. */
export const SPK_ROTATION_MS = 7 * 24 * 3600 * 1000;
export const OLD_SPK_RETENTION_MS = 30 * 24 * 3600 * 1000;
export const PREKEY_LOW_WATER = 20;
export const PREKEY_TOP_UP = 100;
export const SESSION_RESET_INTERVAL_MS = 3600 * 1000;
/** §9: backup KDF defaults and the bounds a reader accepts. */
export const BACKUP_DEFAULTS = { mKib: 65536, t: 3, p: 1 } as const;
export const BACKUP_BOUNDS = { minMKib: 19456, maxMKib: 1048576, minT: 2, maxT: 10, minP: 1, maxP: 16 } as const;
/** Peer keys whose derived forms are remembered (Mont(IK_peer), a verified DeviceCert): one per peer device of a busy client. */
export const DERIVED_KEY_MEMO_ENTRIES = 1024;
