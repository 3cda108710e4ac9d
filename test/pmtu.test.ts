// PLPMTUD per link and direction (src/run/pmtu.ts) against a simulated path: probes of at most
// `path` bytes come back after one round trip, larger ones vanish (a black hole: no ICMP).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIRM_METERED_MS, CONFIRM_MS, PmtuSearch, REPROBE_MS } from '../src/run/pmtu.js';

const FLOOR = 92; // an unpadded probe over IPv4/UDP

/** Seeded random numbers in [0, 1) (mulberry32: 32-bit integer steps, no cycles of a few hundred
 * as a multiplier beyond double precision gives). */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let z = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  z = (z + Math.imul(z ^ (z >>> 7), 61 | z)) ^ z;
  return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
};

/** A search that counts its rounds: the calls of due() that send more than one probe (a round's
 * sizes, each STRIKES times; a confirm probe goes alone). */
class Counted extends PmtuSearch {
  rounds = 0;
  override due(now: number, rttMs: number | null, lateMs?: number): readonly (readonly [number, number])[] {
    const out = super.due(now, rttMs, lateMs);
    if (out.length > 1) this.rounds++;
    return out;
  }
}

/** Runs `s` in 10 ms steps from `from` until `until(t)` or `limitMs`; the path may change with time
 * (a probe passes if it fits the path when sent, and `drop` does not take it: round, it is one of
 * a search round's). livenessMs: liveness probes (unpadded, always pass) go this often and their
 * replies are heard. jitter: each packet's round trip is rttMs ± jitterMs / 2 (uniform, from
 * rnd). Probes in flight when it returns are lost. */
function drive(s: PmtuSearch, o: { from: number; limitMs: number; rttMs: number; path: (t: number) => number; until: (t: number) => boolean; livenessMs?: number; jitter?: { jitterMs: number; rnd: () => number }; drop?: (size: number, t: number, round: boolean) => boolean }): number {
  const inflight: { token: number; at: number }[] = [];
  const live: { sent: number; at: number }[] = [];
  const rtt = () => (o.jitter ? o.rttMs + (o.jitter.rnd() - 0.5) * o.jitter.jitterMs : o.rttMs);
  for (let t = o.from; t <= o.from + o.limitMs; t += 10) {
    for (const x of inflight.filter((x) => x.at <= t)) s.ack(x.token, t);
    inflight.splice(0, inflight.length, ...inflight.filter((x) => x.at > t));
    for (const x of live.filter((x) => x.at <= t)) s.heard(x.sent, t);
    live.splice(0, live.length, ...live.filter((x) => x.at > t));
    if (o.livenessMs && t % o.livenessMs === 0) live.push({ sent: t, at: t + rtt() });
    const out = s.due(t, o.rttMs);
    for (const [token, size] of out) if (size <= o.path(t) && !o.drop?.(size, t, out.length > 1)) inflight.push({ token, at: t + rtt() });
    if (o.until(t)) return t;
  }
  return -1;
}

test('the first search finds a path MTU below the interface MTU in one or two rounds', () => {
  for (const path of [1500, 1492, 1280, 1337, 1000]) {
    const s = new PmtuSearch(1500, FLOOR);
    assert.deepEqual([s.status().mtu, s.status().probed], [1500, false], 'the interface MTU until probed');
    const t = drive(s, { from: 0, limitMs: 10_000, rttMs: 40, path: () => path, until: () => s.status().mode === 'confirmed' });
    assert.ok(t >= 0 && t <= 1500, `path ${path}: confirmed after ${t} ms`);
    assert.ok(s.status().mtu <= path && s.status().mtu > path - 5, `path ${path}: found ${s.status().mtu}`);
    assert.equal(s.confirmed(), s.status().mtu);
  }
});

test('a path that shrinks at runtime is found within 2 s; growth within the re-probe interval', () => {
  const s = new PmtuSearch(1500, FLOOR);
  let path = 1500;
  drive(s, { from: 0, limitMs: 5000, rttMs: 60, path: () => path, until: () => s.status().mode === 'confirmed' });
  assert.equal(s.status().mtu, 1500);
  path = 1280;
  const t0 = 10_000;
  const t = drive(s, { from: t0, limitMs: 10_000, rttMs: 60, path: () => path, until: () => s.status().mode === 'confirmed' && s.status().mtu <= 1280 });
  assert.ok(t >= 0 && t - t0 <= 2000, `shrink found after ${t - t0} ms`);
  assert.ok(s.status().mtu > 1275, `${s.status().mtu}`);
  assert.equal(s.status().shrinks, 1, 'counted as size-dependent loss');
  path = 1500;
  const g = drive(s, { from: t, limitMs: REPROBE_MS + 5000, rttMs: 60, path: () => path, until: () => s.status().mtu === 1500 });
  assert.ok(g >= 0 && g - t <= REPROBE_MS + 2000, `growth found after ${g - t} ms`);
});

test('one lost confirmation is not a shrink; a dead link does not collapse the MTU after restart', () => {
  const s = new PmtuSearch(1500, FLOOR);
  drive(s, { from: 0, limitMs: 5000, rttMs: 20, path: () => 1500, until: () => s.status().mode === 'confirmed' });
  let drop = true; // lose exactly one confirmation probe
  const path = () => (drop ? ((drop = false), 0) : 1500);
  drive(s, { from: 5000, limitMs: 20 * CONFIRM_MS, rttMs: 20, path, until: () => false });
  assert.deepEqual([s.status().mtu, s.status().shrinks], [1500, 0]);
  s.restart(20_000);
  drive(s, { from: 20_000, limitMs: 3000, rttMs: 20, path: () => 1500, until: () => s.status().mode === 'confirmed' });
  assert.equal(s.status().mtu, 1500);
});

test('a restart searches above what is confirmed: probes lost in a busy moment do not lower it', () => {
  const s = new PmtuSearch(1500, FLOOR);
  drive(s, { from: 0, limitMs: 5000, rttMs: 20, path: () => 1400, until: () => s.status().mode === 'confirmed' });
  const found = s.status().mtu;
  assert.ok(found > 1395 && found <= 1400, `${found}`);
  // the link came back up, and every probe of the new search is lost (a stalled event loop, a full queue)
  s.restart(10_000);
  drive(s, { from: 10_000, limitMs: 3000, rttMs: 20, path: () => 0, until: () => s.status().mode === 'confirmed' });
  assert.deepEqual([s.status().mtu, s.status().probed], [found, true], 'never below the confirmed value');
  // a real shrink while it was down is found by the confirm probes that follow
  const t = drive(s, { from: 13_000, limitMs: 5000, rttMs: 20, path: () => 1280, until: () => s.status().mode === 'confirmed' && s.status().mtu <= 1280 });
  assert.ok(t >= 0 && t - 13_000 <= 2000, `shrink after a restart found after ${t - 13_000} ms`);
});

test('seeded from a running data path (hitless restart): confirmed at once, no search, confirm probes from then on', () => {
  const s = new PmtuSearch(1500, FLOOR);
  s.seed(1400, 0);
  assert.deepEqual([s.status().mtu, s.status().probed, s.status().mode, s.confirmed()], [1400, true, 'confirmed', 1400]);
  const sizes: number[] = [];
  for (let t = 0; t <= 1000; t += 10)
    for (const [token, size] of s.due(t, 20)) {
      sizes.push(size);
      s.ack(token, t + 20);
    }
  assert.ok(sizes.length > 0 && sizes.every((x) => x === 1400), `only confirm probes at the seeded size: ${sizes.join(',')}`);
  // nothing known (0) or no more than the floor: not a seed
  const u = new PmtuSearch(1500, FLOOR);
  u.seed(0, 0);
  assert.deepEqual([u.status().mtu, u.status().probed, u.status().mode], [1500, false, 'search']);
});

test('tunnel MTUs: the largest link sets inner_mtu, the smallest (>= 576 inner) the MSS clamp, the same on both portals', async () => {
  const { tunnelMtus } = await import('../src/plan/mtu.js');
  const l = (up: number, down: number, family: 4 | 6 = 4) => ({ family, carrier: 'udp' as const, up, down });
  // one 1280 link among 1500s: inner 1448 both ways, clamp 1228 (full segments fit every link)
  assert.deepEqual(tunnelMtus([l(1280, 1280), l(1500, 1500), l(1500, 1500)]), { up: 1448, down: 1448, clamp: 1228 });
  // asymmetric: the smaller direction clamps; each direction's largest link its inner MTU
  assert.deepEqual(tunnelMtus([l(1500, 1400), l(1400, 1500, 6)]), { up: 1448, down: 1428, clamp: 1328 });
  // a tiny link (576 outer: 524 inner) does not drag the clamp below 576 inner
  assert.deepEqual(tunnelMtus([l(576, 576), l(1500, 1500)]), { up: 1448, down: 1448, clamp: 1448 });
  assert.equal(tunnelMtus([]), null);
});

/** A path of no size limit whose every packet (probe or liveness, every 100 ms) arrives after
 * `delay()` ms or is lost (null), for `ms`; seeded random numbers. After 5 s: the smallest MTU,
 * the search rounds `s` sent, the confirm probes lost (the first from 4 s: a round follows its
 * loss within a second) and how many of them followed another lost one. */
function noisyPath(s: Counted, ms: number, rttMs: number, delay: (rnd: () => number) => number | null, seed: number): { min: number; rounds: number; lost: number; inARow: number } {
  const rnd = random(seed);
  const inflight: { token: number; at: number }[] = [];
  const live: { sent: number; at: number }[] = [];
  let min = s.status().mtu;
  let rounds = 0;
  let lost = 0;
  let inARow = 0;
  let lastLost = false;
  for (let t = 0; t < ms; t += 10) {
    for (const x of inflight.filter((x) => x.at <= t)) s.ack(x.token, t);
    inflight.splice(0, inflight.length, ...inflight.filter((x) => x.at > t));
    for (const x of live.filter((x) => x.at <= t)) s.heard(x.sent, t); // later replies: losses known sooner
    live.splice(0, live.length, ...live.filter((x) => x.at > t));
    const d = t % 100 === 0 ? delay(rnd) : null;
    if (d !== null) live.push({ sent: t, at: t + d });
    const r0 = s.rounds;
    const out = s.due(t, rttMs);
    if (t > 5000) rounds += s.rounds - r0;
    out.forEach(([token], i) => {
      const e = delay(rnd);
      if (e !== null) inflight.push({ token, at: t + e });
      if (out.length % 2 === 0 || i < out.length - 1) return; // a confirm probe goes alone or last
      if (e === null && t > 4000) lost++;
      if (e === null && lastLost && t > 4000) inARow++;
      lastLost = e === null;
    });
    if (t > 5000) min = Math.min(min, s.status().mtu);
  }
  return { min, rounds, lost, inARow };
}

test('random loss (a busy queue) does not lower the path MTU, however often it looks like a shrink', () => {
  const s = new Counted(1500, FLOOR);
  const { min, rounds } = noisyPath(s, 120_000, 20, (rnd) => (rnd() >= 0.1 ? 20 : null), 7); // 10 % of every probe lost
  assert.ok(rounds > 20, `losses that looked like a shrink happened: ${rounds} searches on them`);
  assert.equal(min, 1500, 'the size itself is tried again in the search: never settled lower');
});

test('1 % random loss for 10 minutes (40 and 600 ms round trips, 40 ms of variation): never lowered, no search round but one per lost confirm probe, no shrink without LOSSES in a row', (t) => {
  for (const [rtt, seed] of [[40, 5], [600, 9]] as const) {
    const s = new Counted(1500, FLOOR);
    const r = noisyPath(s, 600_000, rtt, (rnd) => (rnd() >= 0.01 ? rtt - 20 + rnd() * 40 : null), seed);
    t.diagnostic(`rtt ${rtt}: ${JSON.stringify({ ...r, shrinks: s.status().shrinks, sent: s.status().sent })}`);
    assert.equal(r.min, 1500, `rtt ${rtt}: never lowered`);
    assert.ok(r.lost >= 10, `rtt ${rtt}: confirm probes were lost (${r.lost})`);
    assert.ok(r.rounds <= r.lost, `rtt ${rtt}: ${r.rounds} search rounds for ${r.lost} lost confirm probes`);
    assert.ok(s.status().shrinks <= r.inARow, `rtt ${rtt}: ${s.status().shrinks} shrinks, ${r.inARow} confirm probes lost after another`);
  }
});

test('an isolated lost confirm probe costs one search round that finds the same size; the search for growth is not put off', () => {
  const s = new Counted(1500, FLOOR);
  let path = 1400;
  const t1 = drive(s, { from: 0, limitMs: 5000, rttMs: 100, path: () => path, until: () => s.status().mode === 'confirmed', livenessMs: 100 });
  assert.equal(s.status().mtu, 1400);
  path = 1500; // found at the next search above, REPROBE_MS after the first
  let nextDrop = 10_000;
  let drops = 0;
  let min = 1400;
  const r0 = s.rounds;
  const grown = drive(s, {
    from: t1,
    limitMs: REPROBE_MS + 10_000,
    rttMs: 100,
    path: () => path,
    drop: (_, t, round) => !round && t >= nextDrop && ((nextDrop += 20_000), ++drops > 0), // a confirm probe every 20 s
    until: () => ((min = Math.min(min, s.status().mtu)), s.status().mtu === 1500),
    livenessMs: 100,
  });
  assert.ok(grown >= 0 && grown - t1 <= REPROBE_MS + 1000, `growth found after ${grown - t1} ms, ${drops} confirm probes lost meanwhile`);
  assert.equal(min, 1400, 'the size in use never lowered');
  assert.equal(s.status().shrinks, 0);
  const rounds = s.rounds - r0;
  assert.ok(drops >= 10 && rounds >= drops && rounds <= drops + 2, `${rounds} rounds: one per lost probe (${drops}), and growth's`);
});

test('a burst that loses a confirm probe and its search round’s large probes lowers nothing: the next confirm probe passes', () => {
  const s = new Counted(1500, FLOOR);
  drive(s, { from: 0, limitMs: 5000, rttMs: 100, path: () => 1500, until: () => s.status().mode === 'confirmed', livenessMs: 100 });
  const r0 = s.rounds;
  let min = 1500;
  // from 6 s, everything above 1400 is lost: the next confirm probe, then its search round's
  const drop = (size: number, t: number, round: boolean) => t >= 6000 && size > 1400 && s.rounds - r0 <= (round ? 1 : 0);
  drive(s, { from: 5010, limitMs: 10_000, rttMs: 100, path: () => 1500, drop, until: () => ((min = Math.min(min, s.status().mtu)), false), livenessMs: 100 });
  assert.equal(s.rounds - r0, 2, 'the search on suspicion, then a second one on the loss it saw');
  assert.deepEqual([min, s.status().mtu, s.status().shrinks, s.status().mode], [1500, 1500, 0, 'confirmed']);
});

test('metered links: no search on one lost confirm probe (every CONFIRM_METERED_MS); two in a row are a shrink', () => {
  const s = new Counted(1500, FLOOR, true);
  let path = 1500;
  const t1 = drive(s, { from: 0, limitMs: 5000, rttMs: 100, path: () => path, until: () => s.status().mode === 'confirmed', livenessMs: 100 });
  const r0 = s.rounds;
  const sent0 = s.status().sent;
  let dropped = false;
  const drop = (_: number, t: number, round: boolean) => !round && t > t1 && !dropped && (dropped = true);
  drive(s, { from: t1 + 10, limitMs: 6 * CONFIRM_METERED_MS, rttMs: 100, path: () => path, drop, until: () => false, livenessMs: 100 });
  assert.ok(dropped, 'a confirm probe was lost');
  assert.deepEqual([s.rounds - r0, s.status().mtu], [0, 1500], 'no search');
  assert.ok(s.status().sent - sent0 <= 7, `confirm probes only, one per CONFIRM_METERED_MS: ${s.status().sent - sent0} in 60 s`);
  path = 1400;
  const t0 = t1 + 7 * CONFIRM_METERED_MS;
  const t = drive(s, { from: t0, limitMs: 4 * CONFIRM_METERED_MS, rttMs: 100, path: () => path, until: () => s.status().mtu <= 1400, livenessMs: 100 });
  assert.ok(t >= 0 && t - t0 <= 2 * CONFIRM_METERED_MS + 1000, `shrink found after ${t - t0} ms`);
});

test('a stalled event loop (answers read late) does not count as loss', () => {
  const s = new PmtuSearch(1500, FLOOR);
  const sent = s.due(0, 20); // the first round
  assert.ok(sent.length > 0);
  // 600 ms without running; the answers (every size passed) are read only after the next due()
  assert.deepEqual(s.due(600, 20), [], 'nothing new while catching up');
  for (const [token] of sent) s.ack(token, 600);
  s.due(650, 20);
  assert.deepEqual([s.status().mode, s.status().mtu], ['confirmed', 1500]);
});

/** A confirmed 1500 path shrinks to 1400 (a black hole) at 12 s + `phase`, in one run (probes in
 * flight then pass, as probes sent before it do); liveness probes every 100 ms. How long until
 * the search uses 1400 (ms), and the search's state when it settled. */
function shrinkAt(rttMs: number, phase: number, jitter?: { jitterMs: number; rnd: () => number }): { ms: number; mtu: number; shrinks: number } {
  const s = new PmtuSearch(1500, FLOOR);
  const t0 = 12_000 + phase;
  const path = (t: number) => (t < t0 ? 1500 : 1400);
  const t = drive(s, { from: 0, limitMs: t0 + 10_000, rttMs, path, until: (t) => t >= t0 && s.status().mtu <= 1400, livenessMs: 100, jitter });
  assert.ok(t >= 0, `rtt ${rttMs} phase ${phase}: found`);
  assert.equal(s.status().mtu, 1400, 'exactly the size that passes (a first-round guess)');
  const settled = drive(s, { from: t, limitMs: 10_000, rttMs, path, until: () => s.status().mode === 'confirmed', livenessMs: 100, jitter });
  assert.ok(settled >= 0, 'settles');
  return { ms: t - t0, mtu: s.status().mtu, shrinks: s.status().shrinks };
}

/** Phases of the shrink against the confirm probes' CONFIRM_MS grid, 10 ms apart. */
const PHASES = Array.from({ length: CONFIRM_MS / 10 }, (_, i) => i * 10);

test('a shrink is found within 2 s up to satellite round trips (600 ms): the first late confirm probe starts a search, the second lost one lets it use what passed', (t) => {
  const worst = new Map<number, number>();
  for (const rtt of [20, 100, 300, 600])
    for (const phase of PHASES) {
      const r = shrinkAt(rtt, phase);
      assert.deepEqual([r.mtu, r.shrinks], [1400, 1], `rtt ${rtt} phase ${phase}: one shrink, settled at what passes`);
      worst.set(rtt, Math.max(worst.get(rtt) ?? 0, r.ms));
    }
  const w = JSON.stringify(Object.fromEntries(worst));
  t.diagnostic(`worst of ${PHASES.length} phases per round trip (ms): ${w}`);
  // one confirm interval (the phase) + the first probe late (a round trip + ORDER_MS) + the search's round trip
  assert.ok([...worst.values()].every((ms) => ms <= 2000), `within 2 s, worst per round trip: ${w}`);
  assert.ok((worst.get(600) ?? 0) <= CONFIRM_MS + 2 * 600 + 150, `600 ms: one confirm interval + 2 round trips + 150 ms: ${w}`);
  assert.ok((worst.get(600) ?? 0) > 2 * 600, `no faster than 2 round trips (the test measures what it says): ${w}`);
});

test('600 ms round trip varying by 20 ms: a shrink is found within 1.6 s whatever its phase', (t) => {
  const rnd = random(3);
  const all: number[] = [];
  for (let run = 0; run < 4; run++) for (const phase of PHASES) all.push(shrinkAt(600, phase, { jitterMs: 20, rnd }).ms);
  all.sort((a, b) => a - b);
  const at = (q: number) => all[Math.min(all.length - 1, Math.floor(q * all.length))];
  const d = `${all.length} runs: min ${all[0]}, median ${at(0.5)}, max ${all.at(-1)} ms`;
  t.diagnostic(d);
  assert.ok(all.at(-1)! <= 1600, d);
  assert.ok(all[0]! > 2 * 600, d);
});

test('ICMP too big is a hint: a search at once with its size, confirmed by probes; a forged one costs a search, not the MTU', () => {
  const s = new PmtuSearch(1500, FLOOR);
  let path = 1500;
  drive(s, { from: 0, limitMs: 5000, rttMs: 100, path: () => path, until: () => s.status().mode === 'confirmed', livenessMs: 100 });
  path = 1337; // not a common size: only the hint finds it in the first round
  assert.equal(s.tooBig(1337, 6000), true);
  assert.equal(s.tooBig(1337, 6010), false, 'a repeat while the search runs changes nothing');
  const t = drive(s, { from: 6000, limitMs: 5000, rttMs: 100, path: () => path, until: () => s.status().mtu <= 1337, livenessMs: 100 });
  assert.ok(t >= 0 && t - 6000 <= 300, `used one round trip after the ICMP (${t - 6000} ms)`);
  drive(s, { from: t, limitMs: 5000, rttMs: 100, path: () => path, until: () => s.status().mode === 'confirmed', livenessMs: 100 });
  assert.equal(s.status().mtu, 1337);
  // forged: says 600 while 1337 passes
  assert.equal(s.tooBig(600, 20_000), true);
  drive(s, { from: 20_000, limitMs: 5000, rttMs: 100, path: () => path, until: () => s.status().mode === 'confirmed', livenessMs: 100 });
  assert.equal(s.status().mtu, 1337, 'the probes decide');
  assert.equal(s.tooBig(1400, 30_000), false, 'larger than the size in use: nothing');
});

test('a link that reorders (a round trip of 20-320 ms, each packet its own) does not lower the path MTU', () => {
  const s = new Counted(1500, FLOOR);
  const { min } = noisyPath(s, 60_000, 170, (rnd) => 20 + Math.round(rnd() * 300), 11);
  assert.equal(s.status().mode, 'confirmed');
  assert.deepEqual([min, s.status().shrinks], [1500, 0], 'a later probe overtaking by less than the round trip’s variation is no loss');
});

/** As drive, but due() runs only when nextDue() says something is due, checked at each event (a
 * reply, a liveness probe): the run loop's one timer (wake.ts). Returns when `until` held and
 * how many times due() ran. */
function driveByEvents(s: PmtuSearch, o: { from: number; limitMs: number; rttMs: number; path: () => number; until: () => boolean; livenessMs: number }): { t: number; calls: number } {
  const inflight: { token: number; at: number }[] = [];
  const live: { sent: number; at: number }[] = [];
  let calls = 0;
  let t = o.from;
  let nextLive = Math.ceil(o.from / o.livenessMs) * o.livenessMs;
  while (t <= o.from + o.limitMs) {
    for (const x of inflight.filter((x) => x.at <= t)) s.ack(x.token, t);
    inflight.splice(0, inflight.length, ...inflight.filter((x) => x.at > t));
    for (const x of live.filter((x) => x.at <= t)) s.heard(x.sent, t);
    live.splice(0, live.length, ...live.filter((x) => x.at > t));
    if (t >= nextLive) {
      live.push({ sent: t, at: t + o.rttMs });
      nextLive += o.livenessMs;
    }
    if (s.nextDue() <= t) {
      calls++;
      for (const [token, size] of s.due(t, o.rttMs, 0)) if (size <= o.path()) inflight.push({ token, at: t + o.rttMs });
    }
    if (o.until()) return { t, calls };
    const next = Math.min(nextLive, ...inflight.map((x) => x.at), ...live.map((x) => x.at), Math.max(t + 1, s.nextDue()));
    t = Math.ceil(next);
  }
  return { t: -1, calls };
}

test('nextDue: run only when it says (and on replies), the searches find the same MTUs as fast, with a few calls a second', () => {
  for (const rtt of [20, 100, 600]) {
    const stepped = new PmtuSearch(1500, FLOOR);
    const evented = new PmtuSearch(1500, FLOOR);
    let path = 1500;
    const first = drive(stepped, { from: 0, limitMs: 10_000, rttMs: rtt, path: () => path, until: () => stepped.status().mode === 'confirmed', livenessMs: 100 });
    const e = driveByEvents(evented, { from: 0, limitMs: 10_000, rttMs: rtt, path: () => path, until: () => evented.status().mode === 'confirmed', livenessMs: 100 });
    assert.ok(e.t >= 0 && e.t <= first + 10, `rtt ${rtt}: first search ${e.t} ms (stepped: ${first} ms)`);
    // settled: a confirm probe every CONFIRM_MS is all it needs, a few calls a second
    const quiet = driveByEvents(evented, { from: e.t, limitMs: 10_000, rttMs: rtt, path: () => path, until: () => false, livenessMs: 100 });
    assert.ok(quiet.calls <= (10_000 / CONFIRM_MS) * 2 + 2, `rtt ${rtt}: ${quiet.calls} calls in 10 s confirmed`);
    assert.equal(evented.status().mode, 'confirmed');
    assert.equal(evented.status().shrinks, 0, 'no loss judged while nothing was lost');
    // the path shrinks: found as fast as by the 10 ms steps
    path = 1400;
    const t0 = 30_000;
    drive(stepped, { from: first, limitMs: t0 - first - 10, rttMs: rtt, path: () => 1500, until: () => false, livenessMs: 100 });
    const ts = drive(stepped, { from: t0, limitMs: 10_000, rttMs: rtt, path: () => path, until: () => stepped.status().mtu <= 1400, livenessMs: 100 });
    const te = driveByEvents(evented, { from: t0, limitMs: 10_000, rttMs: rtt, path: () => path, until: () => evented.status().mtu <= 1400, livenessMs: 100 });
    assert.ok(te.t >= 0 && te.t - t0 <= ts - t0 + CONFIRM_MS, `rtt ${rtt}: shrink found after ${te.t - t0} ms (stepped: ${ts - t0} ms)`);
    assert.equal(evented.status().mtu, 1400);
  }
});

test('lateMs: a caller that runs only when due tells a stall by its lateness, not by the gap since its last call', () => {
  const s = new PmtuSearch(1500, FLOOR);
  for (const [token] of s.due(0, 20, 0)) s.ack(token, 20);
  s.due(30, 20, 0);
  assert.equal(s.status().mode, 'confirmed');
  // the next confirm probe, CONFIRM_MS on: a gap longer than STALL_MS, yet on time
  const at = s.nextDue();
  assert.ok(at >= 20 + CONFIRM_MS && at <= 30 + CONFIRM_MS, `next confirm at ${at}`);
  const [probe] = s.due(at, 20, 0);
  assert.ok(probe, 'on time: the probe goes');
  assert.equal(s.due(at + 1, 20, 0).length, 0, 'not again');
  // a wake 600 ms late, past the probe's deadline: its answer may wait unread, nothing is judged
  // lost or sent; the answer read next counts
  const late = at + 1000;
  assert.deepEqual(s.due(late, 20, 600), []);
  const acked = s.status().acked;
  s.ack(probe[0], late + 1);
  assert.equal(s.status().acked, acked + 1, 'still in flight: its deadline moved on by the stall');
  // without lateMs, the gap since the last call (the 10 ms caller of the tests above)
  const t = new PmtuSearch(1500, FLOOR);
  t.due(0, 20);
  assert.deepEqual(t.due(600, 20), []);
});

test('a stall starts no search on suspicion for the confirm probes it held up (their answers may wait unread)', () => {
  const s = new Counted(1500, FLOOR);
  drive(s, { from: 0, limitMs: 5000, rttMs: 20, path: () => 1500, until: () => s.status().mode === 'confirmed', livenessMs: 100 });
  const at = s.nextDue();
  const [probe] = s.due(at, 20, 0);
  assert.ok(probe, 'a confirm probe');
  const r0 = s.rounds;
  assert.deepEqual(s.due(at + 600, 20, 600), [], 'a wake 600 ms late: nothing');
  s.due(at + 610, 20, 0);
  assert.equal(s.rounds, r0, 'no search round');
  // the same probe without the stall, unanswered: late, a round on suspicion
  const u = new Counted(1500, FLOOR);
  drive(u, { from: 0, limitMs: 5000, rttMs: 20, path: () => 1500, until: () => u.status().mode === 'confirmed', livenessMs: 100 });
  const uAt = u.nextDue();
  u.due(uAt, 20, 0);
  const u0 = u.rounds;
  u.due(u.nextDue(), 20, 0);
  assert.equal(u.rounds, u0 + 1, 'late: a round on suspicion');
});
