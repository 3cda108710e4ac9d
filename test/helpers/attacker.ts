// Traffic tools for the attack tests, run inside a lab namespace:
//
//   ip netns exec <ns> node --import tsx test/helpers/attacker.ts send  <host> <port> <pps> <seconds> <file>
//       sends the datagrams of <file> (one hex payload per line) to host:port at <pps>, cycling
//       through them for <seconds> (0: each once); prints {"sent": n} when done
//   ip netns exec <ns> node --import tsx test/helpers/attacker.ts listen <port> <ms> <marker hex>
//       counts, for <ms>, the UDP datagrams to <port> (IPv4 and IPv6) that contain <marker>;
//       prints {"received": n, "marked": m}
//
// Plain UDP sockets: the attacker is an ordinary host on the Internet, it needs no privileges.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';

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

async function listen(port: number, ms: number, markerHex: string): Promise<void> {
  const marker = Buffer.from(markerHex, 'hex');
  let received = 0;
  let marked = 0;
  const socks = (['udp4', 'udp6'] as const).map((t) => {
    const s = createSocket({ type: t, ipv6Only: t === 'udp6' });
    s.on('message', (m) => {
      received++;
      if (m.includes(marker)) marked++;
    });
    s.bind(port);
    return s;
  });
  await new Promise((r) => setTimeout(r, ms));
  for (const s of socks) s.close();
  console.log(JSON.stringify({ received, marked }));
}

const [cmd, ...a] = process.argv.slice(2);
if (cmd === 'send') await send(a[0]!, Number(a[1]), Number(a[2]), Number(a[3]), a[4]!);
else if (cmd === 'listen') await listen(Number(a[0]), Number(a[1]), a[2]!);
else {
  console.error('usage: attacker.ts send <host> <port> <pps> <seconds> <file> | listen <port> <ms> <marker hex>');
  process.exit(2);
}
