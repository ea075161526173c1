/** The encrypted key backup blob (SPEC §9): stored and returned as is, never read by the server. */
import { toBase64url as b64 } from '../../protocol/bytes.js';
import { putBackup, readBackup, recoverBackup } from '../services/accounts.js';
import { requireSelf } from './accounts.js';
import { clientIp, type RouteDeps } from './deps.js';
import { defineRoute, type AnyRoute } from './route.js';
import { BackupIn, BackupOut, PasswordIn, RecoveredBackupOut, UsernameParams } from './schemas.js';

export function backupRoutes(deps: RouteDeps): AnyRoute[] {
  return [
    defineRoute({
      method: 'put',
      path: '/v1/accounts/{username}/backup',
      tag: 'backup',
      summary: 'Store (replace) the key backup blob',
      auth: true,
      params: UsernameParams,
      body: BackupIn,
      success: { status: 204, description: 'stored' },
      errors: ['forbidden', 'payload_too_large'],
      handler: async ({ params, body, auth }) => {
        requireSelf(auth.username, params.username);
        await putBackup(deps, auth, body.blob);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/accounts/{username}/backup',
      tag: 'backup',
      summary: 'Fetch the key backup blob (from a device of the account)',
      auth: true,
      params: UsernameParams,
      success: { status: 200, description: 'the blob', schema: BackupOut },
      errors: ['forbidden', 'not_found'],
      handler: async ({ params, auth }) => {
        requireSelf(auth.username, params.username);
        const b = await readBackup(deps, auth);
        return { blob: b64(b.blob), updated_at: b.updatedAt.toISOString() };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/accounts/{username}/backup/recover',
      tag: 'backup',
      summary: 'Fetch the key backup blob with the password (a device being added)',
      description:
        'For a device that has no token yet: returns the blob, to recover the AK from, and next_device_id, the id to sign its DeviceCert over. Rate-limited per IP; wrong passwords are counted per (account, IP) and per account, and an IP that has not failed is never refused for the account\'s count.',
      auth: false,
      params: UsernameParams,
      body: PasswordIn,
      success: { status: 200, description: 'the blob and the next device id', schema: RecoveredBackupOut },
      errors: ['bad_credentials', 'not_found', 'rate_limited'],
      handler: async ({ params, body, req }) => {
        const ip = clientIp(req);
        await deps.rate.loginPerIp.hit(ip);
        const b = await deps.rate.passwords.attempt(params.username, ip, () => recoverBackup(deps, params.username, body.password));
        return { blob: b64(b.blob), updated_at: b.updatedAt.toISOString(), next_device_id: b.nextDeviceId };
      },
    }),
  ];
}
