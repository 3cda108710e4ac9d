import { PmtuSearch } from './src/portal/pmtu.js';
const FLOOR = 92;
function run(rtt: number, phase: number, liveMs = 100) {
  const s = new PmtuSearch(1500, FLOOR);
  let path = 1500;
  const inflight: { token: number; at: number }[] = [];
  const live: { sent: number; at: number }[] = [];
  let shrinkAt = -1, found = -1;
  for (let t = 0; t < 60_000; t += 10) {
    for (const x of inflight.filter((x) => x.at <= t)) s.ack(x.token, t);
    inflight.splice(0, inflight.length, ...inflight.filter((x) => x.at > t));
    for (const x of live.filter((x) => x.at <= t)) s.heard(x.sent, t);
    live.splice(0, live.length, ...live.filter((x) => x.at > t));
    if (t % liveMs === 0) live.push({ sent: t, at: t + rtt });
    for (const [token, size] of s.due(t, rtt)) if (size <= path) inflight.push({ token, at: t + rtt });
    if (shrinkAt < 0 && t >= 20_000 + phase && s.status().mode === 'confirmed') { path = 1400; shrinkAt = t; }
    if (shrinkAt >= 0 && s.status().mtu <= 1400) { found = t - shrinkAt; break; }
  }
  return { found, mtu: s.status().mtu };
}
for (const rtt of [20, 60, 100, 200, 400, 600, 800]) {
  const r = [0, 30, 70, 110, 160, 200, 240].map((ph) => run(rtt, ph));
  console.log(rtt, r.map((x) => `${x.found}/${x.mtu}`).join(' '));
}
