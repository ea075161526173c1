/** Sign up (recovery code shown once, or a passphrase with the SPEC §9 warning) and sign in on a new browser. */
import { useState } from 'preact/hooks';
import { Engine } from '../engine.js';

type Mode = 'signup' | 'signin';

function errorText(e: unknown): string {
  const err = e as { code?: string; status?: number; message?: string };
  if (err.code === 'username_taken') return 'That username is taken. Choose another.';
  if (err.code === 'bad_credentials' || err.status === 401) return 'Wrong username or password.';
  if (err.code === 'rate_limited') return 'Too many attempts. Wait a minute and try again.';
  if (/backup|recovery|decrypt|open/i.test(err.message ?? '')) return 'That recovery code or passphrase does not open this account’s key backup.';
  return err.message ?? 'Something went wrong.';
}

export function Onboarding(props: { onReady: (e: Engine, recoveryCode: string | null) => void }) {
  const [mode, setMode] = useState<Mode>('signup');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [usePassphrase, setUsePassphrase] = useState(false);
  const [secret, setSecret] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (ev: Event): Promise<void> => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'signup') {
        const { engine, recoveryCode } = await Engine.register({ username: username.trim(), password, ...(usePassphrase ? { passphrase: secret } : {}) });
        props.onReady(engine, recoveryCode);
      } else {
        props.onReady(await Engine.addDevice({ username: username.trim(), password, secret }), null);
      }
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };

  return (
    <main class="onboarding">
      <div class="card auth-card">
        <div class="brand">
          <img src="/icons/icon-192.png" alt="" width="48" height="48" />
          <h1>GChat</h1>
        </div>
        <p class="lede">Private messages, encrypted in this browser. Your keys never leave it.</p>
        <div class="tabs" role="tablist" aria-label="Account">
          <button role="tab" id="tab-signup" aria-selected={mode === 'signup'} aria-controls="auth-form" class={mode === 'signup' ? 'tab active' : 'tab'} onClick={() => setMode('signup')}>
            Create account
          </button>
          <button role="tab" id="tab-signin" aria-selected={mode === 'signin'} aria-controls="auth-form" class={mode === 'signin' ? 'tab active' : 'tab'} onClick={() => setMode('signin')}>
            Sign in
          </button>
        </div>
        <div id="auth-form" role="tabpanel" aria-labelledby={mode === 'signup' ? 'tab-signup' : 'tab-signin'}>
        <form onSubmit={submit}>
          <label>
            Username
            <input name="username" autocomplete="username" required pattern="[a-z0-9._\-]{3,32}" title="3 to 32 lowercase letters, digits, . _ -" value={username} onInput={(e) => setUsername(e.currentTarget.value.toLowerCase())} />
          </label>
          <label>
            Password
            <input name="password" type="password" autocomplete={mode === 'signup' ? 'new-password' : 'current-password'} required minLength={8} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          {mode === 'signup' ? (
            <>
              <label class="check">
                <input type="checkbox" name="use-passphrase" checked={usePassphrase} onChange={(e) => setUsePassphrase(e.currentTarget.checked)} />
                Protect my key backup with my own passphrase instead of a recovery code
              </label>
              {usePassphrase && (
                <>
                  <label>
                    Backup passphrase
                    <input name="passphrase" type="password" autocomplete="new-password" required value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
                  </label>
                  <p class="warning" role="note">
                    The server stores your encrypted key backup and could try to guess a weak passphrase. Use a long one you do not use anywhere else. A generated recovery code is safer.
                  </p>
                </>
              )}
            </>
          ) : (
            <>
              <label>
                Recovery code or backup passphrase
                <input name="secret" autocomplete="off" spellcheck={false} required value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
              </label>
              <p class="hint">This browser becomes a new device of your account. It starts with no history: messages are end-to-end encrypted to each device.</p>
            </>
          )}
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          <button class="primary" type="submit" disabled={busy}>
            {busy ? (mode === 'signup' ? 'Creating keys…' : 'Opening key backup…') : mode === 'signup' ? 'Create account' : 'Sign in'}
          </button>
        </form>
        </div>
      </div>
    </main>
  );
}

/** The recovery code, shown once; the user confirms they kept it before going on. */
export function RecoveryCode(props: { code: string; onDone: () => void }) {
  const [kept, setKept] = useState(false);
  return (
    <main class="onboarding">
      <div class="card auth-card">
        <h1>Your recovery code</h1>
        <p class="lede">Write it down or store it in a password manager. It is shown only now. You need it to use GChat on another browser or device.</p>
        <p class="recovery-code" data-testid="recovery-code" aria-label="Recovery code">
          {props.code}
        </p>
        <label class="check">
          <input type="checkbox" name="kept" checked={kept} onChange={(e) => setKept(e.currentTarget.checked)} />I have saved my recovery code
        </label>
        <button class="primary" disabled={!kept} onClick={props.onDone}>
          Continue
        </button>
      </div>
    </main>
  );
}
