// A paced UDP flow with sequence numbers, for tests that need to see every lost packet and the
// longest silence at the receiver (iperf3 reports per second only). Runs inside a lab node:
//
//   node udpflow.mjs recv <bind-addr> <port> <seconds>     prints {received, lost, dup, maxGapMs, firstSeq, lastSeq,
//                                                           gaps: [[Date.now() at its end, ms], …] of silences over 50 ms,
//                                                           missing: [[first, last], …] seq ranges never received}
//   node udpflow.mjs send <dst-addr> <port> <seconds> <packets-per-second> [bytes]
//                                                           prints {sent, startMs (Date.now()), pps}; seq q left at startMs + q/pps
//
// The receiver exits `seconds` after the first packet, or 2 s after the last one.
import { createSocket } from 'node:dgram';

const [mode, addr, portS, secS, ppsS, bytesS] = process.argv.slice(2);
const port = Number(portS);
const seconds = Number(secS);
const family = addr.includes(':') ? 'udp6' : 'udp4';

if (mode === 'recv') {
  const s = createSocket(family);
  const seen = new Set();
  let first = null;
  let last = null;
  let maxGap = 0;
  let dup = 0;
  let lo = Infinity;
  let hi = -1;
  let idle = null;
  const gaps = [];
  const finish = () => {
    s.close();
    const received = seen.size;
    const lost = hi < 0 ? 0 : hi - lo + 1 - received;
    // the seqs that never came, as ranges (the sender's seq × 1/pps is when they were sent)
    const missing = [];
    for (let q = lo; q <= hi && missing.length < 200; q++) {
      if (seen.has(q)) continue;
      const from = q;
      while (q + 1 <= hi && !seen.has(q + 1)) q++;
      missing.push([from, q]);
    }
    process.stdout.write(`${JSON.stringify({ received, lost, dup, maxGapMs: Math.round(maxGap * 10) / 10, firstSeq: hi < 0 ? null : lo, lastSeq: hi, gaps, missing })}\n`);
    process.exit(0);
  };
  s.on('message', (m) => {
    if (m.length < 4) return;
    const now = performance.now();
    const seq = m.readUInt32BE(0);
    if (seen.has(seq)) dup++;
    seen.add(seq);
    lo = Math.min(lo, seq);
    hi = Math.max(hi, seq);
    if (last !== null) {
      maxGap = Math.max(maxGap, now - last);
      if (now - last > 50 && gaps.length < 20) gaps.push([Date.now(), Math.round(now - last)]);
    }
    last = now;
    if (first === null) {
      first = now;
      setTimeout(finish, seconds * 1000);
    }
    clearTimeout(idle);
    idle = setTimeout(finish, 2000);
  });
  s.bind(port, addr, () => process.stdout.write('listening\n'));
} else if (mode === 'send') {
  const pps = Number(ppsS);
  const bytes = Number(bytesS ?? 1000);
  const s = createSocket(family);
  const start = performance.now();
  const startMs = Date.now();
  let seq = 0;
  const tick = () => {
    const elapsed = (performance.now() - start) / 1000;
    if (elapsed >= seconds) {
      s.close();
      process.stdout.write(`${JSON.stringify({ sent: seq, startMs, pps })}\n`);
      return;
    }
    // catch up to the schedule: timers are late under load, the rate stays exact
    const due = Math.floor(elapsed * pps);
    while (seq < due) {
      const buf = Buffer.alloc(bytes); // send() is asynchronous: one buffer per datagram
      buf.writeUInt32BE(seq++, 0);
      s.send(buf, port, addr);
    }
    setTimeout(tick, 2);
  };
  tick();
} else {
  process.stderr.write('usage: udpflow.mjs recv|send ...\n');
  process.exit(2);
}
