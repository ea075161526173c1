/**
 * Every migration, in order. Forward-only: a shipped migration is never edited; a change is a new
 * file with the next number, added at the end of this list.
 */
import { AccountsDevicesKeys0000000000001 } from './0001-accounts-devices-keys.js';
import { DeliveryQueues0000000000002 } from './0002-delivery-queues.js';
import { RateCounters0000000000003 } from './0003-rate-counters.js';
import { QueueUsage0000000000004 } from './0004-queue-usage.js';
import { PushRegistrations0000000000005 } from './0005-push-registrations.js';
import { QueueGrowth0000000000006 } from './0006-queue-growth.js';
import { QueueTotalsIndex0000000000007 } from './0007-queue-totals-index.js';

export const MIGRATIONS = [
  AccountsDevicesKeys0000000000001,
  DeliveryQueues0000000000002,
  RateCounters0000000000003,
  QueueUsage0000000000004,
  PushRegistrations0000000000005,
  QueueGrowth0000000000006,
  QueueTotalsIndex0000000000007,
];
