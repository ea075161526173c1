/**
 * One 1:1 audio call: its RTCPeerConnection, the signalling it sends through the client SDK
 * (end-to-end encrypted call-offer/answer/ice/hangup messages) and its state. The caller makes
 * the offer; if no connection comes up within a few seconds it switches its connection to
 * relay-only (TURN) and restarts ICE with a new offer for the same call id.
 */
import type { CallSignal } from '../../../src/client/core.js';
import type { IceCandidate } from '../../../src/protocol/content.js';
import { ICE_BATCH_MS, RELAY_TIMEOUT_MS, RING_TIMEOUT_MS, directTimeoutMs, relayOnlyForced } from './options.js';
import { readCallStats, type CallStats } from './stats.js';

/** Remote candidates of a generation not yet described, kept at most. */
const MAX_PENDING_CANDIDATES = 100;

export type CallState = 'ringing' | 'connecting' | 'connected' | 'ended';
export type EndReason = 'hangup' | 'declined' | 'busy' | 'failed' | 'no-answer' | 'elsewhere' | 'no-microphone';

/** What the call needs from the SDK (GChatClient implements it). */
export interface CallSignalling {
  iceServers(): Promise<{ urls: string[]; username: string; credential: string }[] | null>;
  sendCallOffer(to: string, callId: string, sdp: string): Promise<string>;
  sendCallAnswer(to: string, callId: string, sdp: string): Promise<string>;
  sendCallIce(to: string, callId: string, candidates: IceCandidate[]): Promise<string>;
  sendCallHangup(to: string, callId: string, reason?: 'hangup' | 'declined' | 'busy' | 'failed'): Promise<string>;
}

export interface CallView {
  id: string;
  peer: string;
  direction: 'outgoing' | 'incoming';
  state: CallState;
  endReason: EndReason | null;
  /** The connection was switched to relay-only (forced, or the retry after a failed direct attempt). */
  relayOnly: boolean;
  connectedAt: number | null;
  stats: CallStats | null;
}

function micRefused(e: unknown): boolean {
  return e instanceof DOMException && (e.name === 'NotAllowedError' || e.name === 'NotFoundError');
}

export class Call {
  state: CallState = 'ringing';
  endReason: EndReason | null = null;
  relayOnly = relayOnlyForced();
  connectedAt: number | null = null;
  stats: CallStats | null = null;
  /** The peer's device in this call (the caller's, or the callee device that answered). */
  private peerDevice: number | null;
  private pc: RTCPeerConnection | null = null;
  private mic: MediaStream | null = null;
  private iceServers: RTCIceServer[] = [];
  private readonly audio = new Audio();
  private remoteOffer: string | null;
  /** Remote candidates that came before the remote description (or before we accepted). */
  private pendingRemote: { device: number; c: IceCandidate }[] = [];
  private outgoingIce: IceCandidate[] = [];
  private iceTimer: ReturnType<typeof setTimeout> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(
    private readonly sig: CallSignalling,
    readonly id: string,
    readonly peer: string,
    readonly direction: 'outgoing' | 'incoming',
    private readonly changed: () => void,
    offer: { sdp: string; device: number } | null,
  ) {
    this.remoteOffer = offer?.sdp ?? null;
    this.peerDevice = offer?.device ?? null;
    this.audio.autoplay = true;
  }

  static incoming(sig: CallSignalling, s: CallSignal & { kind: 'offer' }, changed: () => void): Call {
    const call = new Call(sig, s.callId, s.peer, 'incoming', changed, { sdp: s.sdp, device: s.from.device });
    call.setTimer(RING_TIMEOUT_MS, () => call.finish('no-answer', null));
    return call;
  }

  /** A call to `peer`, shown as ringing at once; `dial()` opens the microphone and sends the offer. */
  static outgoing(sig: CallSignalling, id: string, peer: string, changed: () => void): Call {
    return new Call(sig, id, peer, 'outgoing', changed, null);
  }

  async dial(): Promise<void> {
    try {
      await this.open();
      if (this.state === 'ended') return;
      const offer = await this.pc!.createOffer();
      await this.pc!.setLocalDescription(offer);
      await this.sig.sendCallOffer(this.peer, this.id, offer.sdp!);
      if (this.state === 'ringing') this.setTimer(RING_TIMEOUT_MS, () => this.finish('no-answer', 'hangup'));
    } catch (e) {
      this.finish(micRefused(e) ? 'no-microphone' : 'failed', null);
    }
  }

  view(): CallView {
    return { id: this.id, peer: this.peer, direction: this.direction, state: this.state, endReason: this.endReason, relayOnly: this.relayOnly, connectedAt: this.connectedAt, stats: this.stats };
  }

  // ---- user actions ------------------------------------------------------------------------

  async accept(): Promise<void> {
    if (this.direction !== 'incoming' || this.state !== 'ringing' || !this.remoteOffer) return;
    this.setState('connecting');
    try {
      await this.open();
      await this.answer(this.remoteOffer);
      this.setTimer(directTimeoutMs() + RELAY_TIMEOUT_MS, () => this.finish('failed', 'failed'));
    } catch (e) {
      this.finish(micRefused(e) ? 'no-microphone' : 'failed', 'failed');
    }
  }

  decline(): void {
    this.finish('declined', 'declined');
  }

  hangUp(): void {
    this.finish('hangup', 'hangup');
  }

  // ---- signals from the peer (already matched to this call id) ------------------------------

  async onSignal(s: CallSignal): Promise<void> {
    if (this.state === 'ended') return;
    if (s.own) {
      // Another of our devices answered or declined this ringing call: stop ringing here.
      if (this.direction === 'incoming' && this.state === 'ringing' && (s.kind === 'answer' || s.kind === 'hangup')) this.finish('elsewhere', null);
      return;
    }
    // Before a callee device answered, any of the peer's devices may speak; after, only that one.
    if (this.peerDevice !== null && s.from.device !== this.peerDevice) return;
    switch (s.kind) {
      case 'answer':
        return this.onAnswer(s.sdp, s.from.device);
      case 'offer':
        // The caller's relay-only retry: a fresh connection on this side too, relay-only, answering the new offer.
        if (this.direction === 'incoming' && this.state !== 'ringing' && this.pc) {
          this.relayOnly = true;
          this.changed();
          this.connect();
          await this.answer(s.sdp);
        }
        return;
      case 'ice':
        for (const c of s.candidates) this.pendingRemote.push({ device: s.from.device, c });
        return this.flushRemote();
      case 'hangup':
        return this.finish(s.reason === 'declined' ? 'declined' : s.reason === 'busy' ? 'busy' : s.reason === 'failed' ? 'failed' : 'hangup', null);
    }
  }

  private async onAnswer(sdp: string, device: number): Promise<void> {
    if (this.direction !== 'outgoing' || !this.pc) return;
    if (this.state === 'ringing') {
      this.peerDevice = device;
      this.setState('connecting');
      this.setTimer(this.relayOnly ? RELAY_TIMEOUT_MS : directTimeoutMs(), () => void this.noConnection());
    } else if (device !== this.peerDevice || this.pc.signalingState !== 'have-local-offer') return;
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    await this.flushRemote();
  }

  // ---- the connection ------------------------------------------------------------------------

  private async open(): Promise<void> {
    this.mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    if (this.state === 'ended') return this.release();
    this.iceServers = (await this.sig.iceServers().catch(() => null)) ?? [];
    this.connect();
  }

  /**
   * A new peer connection with the current policy, replacing any earlier one: the relay-only retry
   * starts over rather than restarting ICE on a connection whose direct pair may still win.
   */
  private connect(): void {
    this.pc?.close();
    this.outgoingIce = [];
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.relayOnly ? 'relay' : 'all' });
    this.pc = pc;
    if (!this.mic) return;
    for (const t of this.mic.getAudioTracks()) pc.addTrack(t, this.mic);
    pc.ontrack = (ev) => {
      this.audio.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
      void this.audio.play().catch(() => undefined);
    };
    pc.onicecandidate = (ev) => {
      if (!ev.candidate || this.pc !== pc) return;
      this.outgoingIce.push(ev.candidate.toJSON() as IceCandidate);
      this.iceTimer ??= setTimeout(() => this.sendIce(), ICE_BATCH_MS);
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return; // a connection replaced by the relay-only retry
      if (pc.connectionState === 'connected') this.onConnected();
      else if (pc.connectionState === 'failed' && this.state !== 'ended') void this.noConnection();
    };
  }

  private async answer(offerSdp: string): Promise<void> {
    const pc = this.pc!;
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await this.sig.sendCallAnswer(this.peer, this.id, answer.sdp!);
    await this.flushRemote();
  }

  private sendIce(): void {
    this.iceTimer = null;
    const batch = this.outgoingIce.splice(0);
    if (batch.length && this.state !== 'ended') void this.sig.sendCallIce(this.peer, this.id, batch).catch(() => undefined);
  }

  /**
   * Adds the peer's candidates once their ICE generation's description is in: after an ICE restart
   * the new generation's candidates can come before the new offer or answer (they are kept until
   * it is), and candidates of an old generation are dropped.
   */
  private async flushRemote(): Promise<void> {
    const pc = this.pc;
    if (!pc?.remoteDescription || this.peerDevice === null) return;
    const ufrag = /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription.sdp)?.[1];
    const mine = this.pendingRemote.filter((p) => p.device === this.peerDevice);
    const ready = mine.filter((p) => !p.c.usernameFragment || p.c.usernameFragment === ufrag);
    this.pendingRemote = mine.filter((p) => !ready.includes(p)).slice(-MAX_PENDING_CANDIDATES);
    for (const { c } of ready) await pc.addIceCandidate(c).catch(() => undefined);
  }

  private onConnected(): void {
    if (this.state === 'ended' || this.state === 'connected') return;
    this.clearTimer();
    this.connectedAt = Date.now();
    this.setState('connected');
    this.statsTimer = setInterval(() => void this.refreshStats(), 1000);
    void this.refreshStats();
  }

  /** No connection in time (or ICE failed): the caller retries relay-only once, then gives up. */
  private async noConnection(): Promise<void> {
    if (this.state === 'ended' || this.state === 'connected') return;
    const pc = this.pc;
    if (this.direction === 'outgoing' && !this.relayOnly && pc) {
      this.relayOnly = true;
      this.changed();
      this.setTimer(RELAY_TIMEOUT_MS, () => this.finish('failed', 'failed'));
      this.connect();
      const fresh = this.pc!;
      const offer = await fresh.createOffer();
      await fresh.setLocalDescription(offer);
      await this.sig.sendCallOffer(this.peer, this.id, offer.sdp!);
      return;
    }
    // The callee waits (its timer): the caller may still be switching to the relay.
    if (this.direction === 'outgoing') this.finish('failed', 'failed');
  }

  private async refreshStats(): Promise<void> {
    if (!this.pc || this.state !== 'connected') return;
    this.stats = await readCallStats(this.pc);
    this.changed();
  }

  // ---- ending ----------------------------------------------------------------------------------

  /** Ends the call here; `tell` sends the peer a hang-up with that reason. */
  finish(reason: EndReason, tell: 'hangup' | 'declined' | 'busy' | 'failed' | null): void {
    if (this.state === 'ended') return;
    this.endReason = reason;
    this.setState('ended');
    if (tell) void this.sig.sendCallHangup(this.peer, this.id, tell).catch(() => undefined);
    this.release();
  }

  private release(): void {
    this.clearTimer();
    if (this.iceTimer) clearTimeout(this.iceTimer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.pc?.close();
    for (const t of this.mic?.getTracks() ?? []) t.stop();
    this.audio.srcObject = null;
  }

  private setState(s: CallState): void {
    this.state = s;
    this.changed();
  }

  private setTimer(ms: number, fn: () => void): void {
    this.clearTimer();
    this.timer = setTimeout(fn, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
