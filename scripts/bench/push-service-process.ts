/**
 * bench:push's loopback Web Push service in a process of its own, so that decrypting 500 pushes
 * does not take CPU from the load generator's sends. Talks to its parent over IPC: `subscribe`
 * answers a subscription; each verified push is reported with its receipt time on the shared
 * wall clock (performance.timeOrigin + performance.now()).
 */
import { LoopbackPushService } from '../../test/helpers/push-service.js';

const service = await LoopbackPushService.start();
const reported = { n: 0 };
setInterval(() => {
  while (reported.n < service.received.length) {
    const p = service.received[reported.n++]!;
    process.send?.({ op: 'received', subscription: p.subscription, at: performance.timeOrigin + p.at });
  }
  if (service.violations.length) process.send?.({ op: 'violations', count: service.violations.length });
}, 5).unref();
process.on('message', (m: { op: string; rid: number }) => {
  if (m.op === 'subscribe') process.send?.({ op: 'subscription', rid: m.rid, sub: service.subscribe() });
});
process.on('disconnect', () => void service.close().then(() => process.exit(0)));
process.send?.({ op: 'ready' });
