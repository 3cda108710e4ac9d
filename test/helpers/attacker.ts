// Traffic tools for the attack tests, run inside a lab namespace:
//
//   ip netns exec <ns> node --import tsx test/helpers/attacker.ts send  <host> <port> <pps> <seconds> <file>
//       sends the datagrams of <file> (one hex payload per line) to host:port at <pps>, cycling
//       through them for <seconds> (0: each once); prints {"sent": n} when done
//   ip netns exec <ns> node --import tsx test/helpers/attacker.ts listen <port>[-<last port>] <ms> <marker hex>
//       counts, for <ms>, the UDP datagrams to <port> (IPv4 and IPv6; or to each port of the
//       range) that contain <marker>; prints {"received": n, "marked": m, "bytes": b,
//       "perPort": {"<port>": n, ...}}
//   ip netns exec <ns> node --import tsx test/helpers/attacker.ts flood <4|6> <pps> <seconds> <rand src bits> <file>
//       sends the whole IP packets of <file> (one hex packet per line) through a raw socket at
//       <pps> for <seconds>, cycling; with <rand src bits> > 0 each IPv4 source's low bits are
//       random (spoofed sources); prints {"sent": n, "startMs": t0, "endMs": t1} (wall clock)
//
// send and listen use plain UDP sockets: an ordinary host on the Internet, no privileges.
// flood is the attacker who can spoof: a raw socket (src/native/libmpctl.ts flood). What comes
// back to the addresses it spoofed reaches listen if the test routes them to the attacker (a
// local route for them there); a source port per spoofed prefix tells the prefixes apart.
//
// With ATTACKER_GO=stdin in the environment the tool starts (node, tsx, its modules), prints
// "ready" and runs only once a line arrives on its stdin (at end of input before one it exits
// without running): a test starts it ahead of time, so the start-up is not in what it times.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { flood } from '../../src/native/libmpctl.js';

async function send(host: string, port: number, pps: number, seconds: number, file: string): Promise<void> {
  const payloads = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => Buffer.from(l.trim(), 'hex'));
  const sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  const total = seconds > 0 ? Math.round(pps * seconds) : payloads.length;
  let sent = 0;
  const t0 = Date.now();
  await new Promise<void>((done) => {
    const tick = () => {
      // as many as are due by now (timer granularity is ~1 ms)
      const due = Math.min(total, Math.floor(((Date.now() - t0) * pps) / 1000) + 1);
      while (sent < due) {
        sock.send(payloads[sent % payloads.length]!, port, host);
        sent++;
      }
      if (sent >= total) done();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await new Promise((r) => setTimeout(r, 100)); // let the last sends leave
  sock.close();
  console.log(JSON.stringify({ sent }));
}

async function listen(ports: string, ms: number, markerHex: string): Promise<void> {
  const marker = Buffer.from(markerHex, 'hex');
  const [first, last] = ports.split('-').map(Number) as [number, number | undefined];
  let received = 0;
  let marked = 0;
  let bytes = 0;
  const perPort: Record<string, number> = {};
  const socks = [];
  for (let port = first; port <= (last ?? first); port++) {
    perPort[port] = 0;
    for (const t of ['udp4', 'udp6'] as const) {
      const s = createSocket({ type: t, ipv6Only: t === 'udp6' });
      s.on('message', (m) => {
        received++;
        perPort[port]!++;
        bytes += m.length;
        if (marker.length && m.includes(marker)) marked++;
      });
      s.bind(port);
      socks.push(s);
    }
  }
  await new Promise((r) => setTimeout(r, ms));
  for (const s of socks) s.close();
  console.log(JSON.stringify({ received, marked, bytes, perPort }));
}

if (process.env.ATTACKER_GO === 'stdin') {
  console.log('ready');
  const go = await new Promise<boolean>((resolve) => {
    process.stdin.once('data', () => resolve(true));
    process.stdin.once('end', () => resolve(false));
  });
  process.stdin.destroy();
  if (!go) process.exit(0);
}

const [cmd, ...a] = process.argv.slice(2);
if (cmd === 'send') await send(a[0]!, Number(a[1]), Number(a[2]), Number(a[3]), a[4]!);
else if (cmd === 'listen') await listen(a[0]!, Number(a[1]), a[2] ?? '');
else if (cmd === 'flood') {
  const packets = readFileSync(a[4]!, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => Buffer.from(l.trim(), 'hex'));
  const startMs = Date.now();
  const r = flood(Number(a[0]) === 6 ? 6 : 4, packets, { pps: Number(a[1]), durationMs: Number(a[2]) * 1000, randSrcBits: Number(a[3]) });
  const endMs = Date.now();
  if (r.isErr()) {
    console.error(JSON.stringify(r.error));
    process.exit(1);
  }
  console.log(JSON.stringify({ sent: r.value, startMs, endMs }));
}
else {
  console.error('usage: attacker.ts send <host> <port> <pps> <seconds> <file> | listen <port>[-<last port>] <ms> [<marker hex>] | flood <4|6> <pps> <seconds> <rand src bits> <file>');
  process.exit(2);
}
