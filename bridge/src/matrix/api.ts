/**
 * The homeserver's client-server API as the appservice: the as_token, acting as a ghost with
 * `user_id` (and, for a ghost's own device, `device_id`).
 */
export class MatrixError extends Error {
  override readonly name = 'MatrixError';
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
  ) {
    super(message);
  }
}

export interface As {
  userId?: string;
  deviceId?: string;
}

export class MatrixApi {
  constructor(
    readonly hsUrl: string,
    private readonly asToken: string,
  ) {}

  async request<T = Record<string, unknown>>(method: string, path: string, opts: As & { body?: unknown; query?: Record<string, string> } = {}): Promise<T> {
    const q = new URLSearchParams(opts.query ?? {});
    if (opts.userId) q.set('user_id', opts.userId);
    if (opts.deviceId) q.set('device_id', opts.deviceId);
    const qs = q.toString();
    const res = await fetch(`${this.hsUrl}${path}${qs ? `?${qs}` : ''}`, {
      method,
      headers: { authorization: `Bearer ${this.asToken}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    const json = (text ? JSON.parse(text) : {}) as T & { errcode?: string; error?: string };
    if (!res.ok) throw new MatrixError(res.status, json.errcode ?? 'M_UNKNOWN', `${method} ${path}: ${res.status} ${json.errcode ?? ''} ${json.error ?? ''}`);
    return json;
  }

  /** Registers a ghost (M_USER_IN_USE means it exists already). */
  async ensureRegistered(localpart: string): Promise<void> {
    try {
      await this.request('POST', '/_matrix/client/v3/register', { body: { type: 'm.login.application_service', username: localpart, inhibit_login: true } });
    } catch (e) {
      if (!(e instanceof MatrixError && e.errcode === 'M_USER_IN_USE')) throw e;
    }
  }

  /** MSC4190: the appservice creates its ghost's device. */
  async ensureDevice(userId: string, deviceId: string, displayName: string): Promise<void> {
    await this.request('PUT', `/_matrix/client/v3/devices/${encodeURIComponent(deviceId)}`, { userId, body: { display_name: displayName } });
  }

  async setDisplayName(userId: string, name: string): Promise<void> {
    await this.request('PUT', `/_matrix/client/v3/profile/${encodeURIComponent(userId)}/displayname`, { userId, body: { displayname: name } });
  }

  async join(roomId: string, as: As): Promise<void> {
    await this.request('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, { ...as, body: {} });
  }

  async leave(roomId: string, as: As): Promise<void> {
    await this.request('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`, { ...as, body: {} });
  }

  async send(roomId: string, type: string, txnId: string, content: unknown, as: As): Promise<string> {
    const r = await this.request<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${encodeURIComponent(type)}/${encodeURIComponent(txnId)}`, { ...as, body: content });
    return r.event_id;
  }

  async members(roomId: string, as: As): Promise<string[]> {
    const r = await this.request<{ joined: Record<string, unknown> }>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`, as);
    return Object.keys(r.joined);
  }

  async roomState<T>(roomId: string, type: string, stateKey: string, as: As): Promise<T | null> {
    try {
      return await this.request<T>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/${encodeURIComponent(type)}/${encodeURIComponent(stateKey)}`, as);
    } catch (e) {
      if (e instanceof MatrixError && e.status === 404) return null;
      throw e;
    }
  }

  async typing(roomId: string, userId: string, typing: boolean): Promise<void> {
    await this.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/typing/${encodeURIComponent(userId)}`, { userId, body: { typing, timeout: 30_000 } });
  }

  async receipt(roomId: string, eventId: string, as: As): Promise<void> {
    await this.request('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(eventId)}`, { ...as, body: {} });
  }
}
