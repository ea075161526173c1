/** What the in-call screen shows about the connection, read from RTCPeerConnection.getStats(). */
export interface CallStats {
  /** The selected candidate pair's local candidate type: 'host', 'srflx', 'prflx' or 'relay'. */
  route: string | null;
  audioBytesSent: number;
  audioBytesReceived: number;
}

type Report = Record<string, unknown> & { type: string; id: string };

export async function readCallStats(pc: RTCPeerConnection): Promise<CallStats> {
  const reports = new Map<string, Report>();
  (await pc.getStats()).forEach((r: Report) => reports.set(r.id, r));
  let pair: Report | undefined;
  for (const r of reports.values()) {
    if (r.type === 'transport' && typeof r.selectedCandidatePairId === 'string') pair = reports.get(r.selectedCandidatePairId);
  }
  // Some browsers name no selected pair on the transport: the nominated, succeeded one is it.
  pair ??= [...reports.values()].find((r) => r.type === 'candidate-pair' && r.nominated === true && r.state === 'succeeded');
  const local = pair && typeof pair.localCandidateId === 'string' ? reports.get(pair.localCandidateId) : undefined;
  let sent = 0;
  let received = 0;
  for (const r of reports.values()) {
    if (r.kind !== 'audio') continue;
    if (r.type === 'outbound-rtp' && typeof r.bytesSent === 'number') sent += r.bytesSent;
    if (r.type === 'inbound-rtp' && typeof r.bytesReceived === 'number') received += r.bytesReceived;
  }
  return { route: typeof local?.candidateType === 'string' ? local.candidateType : null, audioBytesSent: sent, audioBytesReceived: received };
}
