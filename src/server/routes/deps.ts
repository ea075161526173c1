import type { RateLimiters } from '../rate-limit.js';
import type { ServiceDeps } from '../services/deps.js';
import type { NewDeviceInput, PrekeyUpload } from '../services/key-checks.js';
import type { Request } from 'express';
import type { z } from 'zod';
import type { NewDeviceIn, PrekeyUploadIn } from './schemas.js';

export interface RouteDeps extends ServiceDeps {
  readonly rate: RateLimiters;
}

/** The client address rate limits count against (honours the trust-proxy setting). */
export function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

export function toPrekeyUpload(u: z.output<typeof PrekeyUploadIn>): PrekeyUpload {
  return {
    spk: u.spk,
    opks: u.opks,
    pqpks: u.pqpks.map((k) => ({ id: k.id, pub: k.pub, sig: k.sig, lastResort: k.last_resort })),
  };
}

export function toNewDevice(d: z.output<typeof NewDeviceIn>): NewDeviceInput {
  return {
    deviceId: d.device_id,
    ikPub: d.ik,
    deviceCert: d.device_cert,
    prekeys: toPrekeyUpload({ spk: d.spk, opks: d.opks, pqpks: d.pqpks }),
  };
}
