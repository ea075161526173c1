/** Stable codes for every input the protocol refuses. Messages never carry key or body bytes. */
export type ProtocolErrorCode =
  | 'bad_length'
  | 'bad_format'
  | 'bad_version'
  | 'bad_type'
  | 'bad_signature'
  | 'bad_key'
  | 'bad_kem_key'
  | 'zero_dh'
  | 'untrusted_identity'
  | 'sender_mismatch'
  | 'unknown_prekey'
  | 'replayed_prekey'
  | 'handshake_mismatch'
  | 'no_session'
  | 'too_many_skipped'
  | 'decrypt_failed'
  | 'bad_padding'
  | 'bad_content'
  | 'bad_backup_params'
  | 'bad_backup'
  | 'bad_secret';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function fail(code: ProtocolErrorCode, message: string): never {
  throw new ProtocolError(code, message);
}
