/**
 * Every migration, in order. Forward-only: a shipped migration is never edited; a change is a new
 * file with the next number, added at the end of this list.
 */
import { AccountsDevicesKeys0000000000001 } from './0001-accounts-devices-keys.js';
import { DeliveryQueues0000000000002 } from './0002-delivery-queues.js';
import { PushRegistrations0000000000003 } from './0003-push-registrations.js';

export const MIGRATIONS = [AccountsDevicesKeys0000000000001, DeliveryQueues0000000000002, PushRegistrations0000000000003];
