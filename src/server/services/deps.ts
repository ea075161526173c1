/** What every service function receives: no globals, so tests fix the clock and randomness. */
import type { Logger } from 'pino';
import type { CryptoProvider, RandomSource } from '../../protocol/primitives.js';
import type { Limits } from '../config.js';
import type { Database } from '../db.js';
import type { DeviceRemovalHooks } from './hooks.js';
import type { PasswordHasher } from './passwords.js';

export interface ServiceDeps {
  readonly db: Database;
  readonly crypto: CryptoProvider;
  readonly random: RandomSource;
  readonly clock: () => Date;
  readonly passwords: PasswordHasher;
  readonly limits: Limits;
  readonly deviceRemoval: DeviceRemovalHooks;
  readonly log: Logger;
}

/** The device a request authenticated as. */
export interface AuthContext {
  readonly accountId: string;
  readonly username: string;
  readonly deviceId: number;
}
