import { PmtuSearch } from './src/portal/pmtu.js';
const s = new PmtuSearch(1500, 92);
let path = 1500; const rtt = 600;
const inflight: { token: number; at: number; size: number }[] = [];
const live: { sent: number; at: number }[] = [];
let shrinkAt = -1; let last = '';
for (let t = 0; t < 30_000; t += 10) {
  for (const x of inflight.filter((x) => x.at <= t)) s.ack(x.token, t);
  inflight.splice(0, inflight.length, ...inflight.filter((x) => x.at > t));
  for (const x of live.filter((x) => x.at <= t)) s.heard(x.sent, t);
  live.splice(0, live.length, ...live.filter((x) => x.at > t));
  if (t % 100 === 0) live.push({ sent: t, at: t + rtt });
  const d = s.due(t, rtt);
  if (shrinkAt >= 0 && d.length) console.log(t - shrinkAt, 'sent', d.map((x) => x[1]).join(','));
  for (const [token, size] of d) if (size <= path) inflight.push({ token, at: t + rtt, size });
  if (shrinkAt < 0 && t >= 20_000 && s.status().mode === 'confirmed') { path = 1400; shrinkAt = t; }
  const st = JSON.stringify(s.status());
  if (shrinkAt >= 0 && st !== last) { console.log(t - shrinkAt, st); last = st; }
  if (shrinkAt >= 0 && s.status().mtu <= 1400) break;
}
