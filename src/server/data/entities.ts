/**
 * The rows of migration 0001's tables, as the repositories return them. Binary columns are
 * Uint8Array, ids are numbers (u32 values live in bigint columns).
 */

export interface AccountRow {
  readonly id: string;
  readonly username: string;
  readonly passwordHash: string;
  readonly akPub: Uint8Array;
  /** The id the next added device must use. */
  readonly nextDeviceId: number;
}

export interface BackupRow {
  readonly blob: Uint8Array;
  readonly updatedAt: Date;
}

export interface DeviceRow {
  readonly accountId: string;
  readonly deviceId: number;
  readonly ikPub: Uint8Array;
  readonly deviceCert: Uint8Array;
  readonly maxSpkId: number;
  readonly maxOpkId: number;
  readonly maxPqpkId: number;
  readonly createdAt: Date;
}

/** Who a device token belongs to. */
export interface TokenOwnerRow {
  readonly accountId: string;
  readonly username: string;
  readonly deviceId: number;
  readonly tokenHash: Uint8Array;
}

export interface SignedPrekeyRow {
  readonly id: number;
  readonly pub: Uint8Array;
  readonly sig: Uint8Array;
}

export interface OneTimePrekeyRow {
  readonly id: number;
  readonly pub: Uint8Array;
}

export interface PqPrekeyRow {
  readonly id: number;
  readonly pub: Uint8Array;
  readonly sig: Uint8Array;
  readonly lastResort: boolean;
}

/** The device a repository call is about. */
export interface DeviceRef {
  readonly accountId: string;
  readonly deviceId: number;
}
