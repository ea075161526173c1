import { startBrowserSide } from './bench/crypto-browser.js';
const side = await startBrowserSide();
const names = ['webcrypto', 'hashes', 'hashesAes', 'nobleX', 'nobleEdSign', 'noble'];
const res: Record<string, number[]> = {};
for (let round = 0; round < 3; round++) for (const n of names) (res[n] ??= []).push(await side.handshakeRate(n as never, 2500));
for (const n of names) console.log(n, res[n]!.map((x) => x.toFixed(0)).join(' '));
await side.close();
