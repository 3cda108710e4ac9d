// The benchmark suite's arithmetic and plots, without a lab (the benchmarks themselves run with
// `mpctl lab bench`, never in the unit suite): throughput bins from cumulative per-link
// counters, the time-to-reach and stall figures, and the SVG plot rendered headless.
//   node --import tsx --test test/bench-suite.test.ts

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bins, type Reading } from '../src/lab/bench/sample.js';
import { aloneCandidates, bestOf, dip, flowEvents, longestStall, markStability, ratioFigure, spreadPoints, suiteLabModes, timeToReach, worstSecond } from '../src/lab/bench/suite.js';
import { renderPlot } from '../src/lab/bench/plot.js';
import { BENCHES, gitState, renderBench, spreadText, tenMbitOrder, type BenchReport } from '../src/lab/bench/bench.js';
import { BENCH_NAMES } from '../src/lab/bench/names.js';
import { cpuPressure, pressureShare } from '../src/lab/pressure.js';
import { armKeep, dropsDelta, keepDir, keepFlow, KEEP_ENV, linkLoss } from '../src/lab/bench/keep.js';
import { parseScenario } from '../src/lab/scenario.js';
import { traceWindowBps } from '../src/lab/params.js';
import { lpConfig, rpConfig } from '../src/lab/bond.js';
import { parseConfig } from '../src/config/parse.js';
import { parse as parseToml } from 'smol-toml';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Readings every 50 ms of two links delivering `mbit(t)` Mbit/s each. */
function trace(ms: number, mbit: (tMs: number) => [number, number]): Reading[] {
  const out: Reading[] = [];
  const acc = [0, 0];
  for (let t = 0; t <= ms; t += 50) {
    out.push({ tMs: t, rx: [...acc], tx: [...acc] });
    const [a, b] = mbit(t);
    acc[0] += (a * 1e6 * 0.05) / 8;
    acc[1] += (b * 1e6 * 0.05) / 8;
  }
  return out;
}

describe('benchmark arithmetic', () => {
  it('turns cumulative byte counters into Mbit/s per link and total', () => {
    const bs = bins(trace(2000, () => [20, 5]), 'rx', 100);
    assert.equal(bs.length, 20);
    for (const b of bs) {
      assert.ok(Math.abs(b.perLink[0]! - 20) < 1e-9 && Math.abs(b.perLink[1]! - 5) < 1e-9, JSON.stringify(b));
      assert.ok(Math.abs(b.total - 25) < 1e-9);
    }
    assert.equal(bs[3]!.tS, 0.3);
  });

  it('times how long the total takes to reach a level, and finds stalls', () => {
    // 40 Mbit/s, nothing from 1000 to 1400 ms, 20 from 1400 to 2000, 40 again after
    const r = trace(4000, (t) => (t < 1000 ? [20, 20] : t < 1400 ? [0, 0] : t < 2000 ? [20, 0] : [20, 20]));
    assert.equal(longestStall(r, 0, 4000), 400);
    assert.equal(timeToReach(r, 1000, 2000, 18, 200), 600); // the window 1400-1600 ends 600 ms after
    assert.equal(timeToReach(r, 2000, 4000, 36, 500), 500);
    assert.equal(timeToReach(r, 1000, 2000, 30, 200), null);
  });

  it('checks 4 > 3 > 2 × 10 Mbit across reports, for each CC', () => {
    const rep = (n: number, up: number, down: number): BenchReport => ({
      bench: `${n}x10`,
      startedAt: '',
      durationS: 0,
      git: { commit: 'x', dirty: false },
      host: { cpus: 2, kernel: '', load1: 0, tcpCc: 'bbr' },
      unstable: [],
      figures: ['cubic', 'bbr'].flatMap((cc) => [
        { name: `x, 1 TCP flow client → server (${cc})`, unit: '% of sum', runs: [], median: up, cc },
        { name: `x, best link alone (plain routing), client → server (${cc})`, unit: 'Mbit/s', runs: [], median: 1, cc },
        { name: `x, 1 TCP flow server → client (${cc})`, unit: '% of sum', runs: [], median: down, cc },
      ]),
    });
    const good = tenMbitOrder(new Map([['2x10', rep(2, 90, 90)], ['3x10', rep(3, 90, 90)], ['4x10', rep(4, 89, 90)]]));
    assert.equal(good?.met, true);
    assert.deepEqual(good?.runs, [18, 27, 35.6, 18, 27, 36, 18, 27, 35.6, 18, 27, 36]);
    const bad = tenMbitOrder(new Map([['2x10', rep(2, 90, 90)], ['3x10', rep(3, 90, 50)], ['4x10', rep(4, 89, 90)]]));
    assert.equal(bad?.met, false);
    assert.equal(tenMbitOrder(new Map([['2x10', rep(2, 90, 90)]])), null);
  });
});

describe('benchmark bookkeeping', () => {
  it('spread is in points: max − min of percentages, else relative to the median', () => {
    assert.equal(spreadPoints({ unit: '% of sum', runs: [80, 91.5, 85], median: 85 }), 11.5);
    assert.ok(Math.abs(spreadPoints({ unit: 'ratio', runs: [0.9, 1.0], median: 0.95 }) - 10) < 1e-9);
    assert.equal(spreadPoints({ unit: 'Mbit/s', runs: [18, 20], median: 19 }), (2 / 19) * 100);
    assert.equal(spreadPoints({ unit: 'ms', runs: [200], median: 200 }), 0);
    assert.equal(spreadPoints({ unit: 'ms', runs: [0, 50], median: 0 }), Infinity);
  });

  it('flags figures whose runs spread more than 10 points as unstable, and only those', () => {
    const figs = markStability([
      { name: 'wide', unit: '% of sum', runs: [46, 83, 72], median: 72 },
      { name: 'tight', unit: '% of sum', runs: [91.8, 91.9, 91.8], median: 91.8 },
      { name: 'edge', unit: '% of sum', runs: [80, 90], median: 85 },
      { name: 'one run', unit: '% of sum', runs: [50], median: 50 },
    ]);
    assert.deepEqual(figs.map((f) => [f.name, f.spread, f.unstable]), [
      ['wide', 37, true],
      ['tight', 0.1, false],
      ['edge', 10, false],
      ['one run', undefined, undefined],
    ]);
  });

  it('the ratio to the best link alone: each bond run over the best link median, target 0.97', () => {
    const f = ratioFigure('r', [36, 38, 18], 19, 'cubic', '');
    assert.deepEqual(f.runs, [1.895, 2, 0.947]);
    assert.equal(f.median, 1.895);
    assert.equal(f.met, true);
    assert.equal(f.cc, 'cubic');
    assert.equal(ratioFigure('r', [18], 19, 'bbr', '').met, false);
    assert.equal(ratioFigure('r', [18.5], 19, 'bbr', '').met, true); // 0.974: within the header overhead
  });

  it('the best link alone is the one with the highest median', () => {
    assert.deepEqual(bestOf([{ link: 'isp1', mbit: [19, 10, 19.1] }, { link: 'isp2', mbit: [18, 18.5, 18.2] }]), { link: 'isp1', mbit: [19, 10, 19.1], median: 19 });
    assert.equal(bestOf([]), null);
  });

  it('measures alone only the links that can be best: within half the fastest, not flapping, once each', () => {
    const sc = (links: unknown[]) => parseScenario({ links }, 't')._unsafeUnwrap().links;
    assert.deepEqual(aloneCandidates(sc([{ rate: '20mbit' }, { rate: '20mbit' }]), 'up'), [0]);
    assert.deepEqual(aloneCandidates(sc([{ rate: '20mbit' }, { rate: '20mbit', loss: '1%' }]), 'up'), [0, 1]);
    assert.deepEqual(aloneCandidates(sc([{ rate: '50mbit' }, { rate: '5mbit', delay: '275ms' }]), 'down'), [0]);
    assert.deepEqual(aloneCandidates(sc([{ up: { rate: '10mbit' }, down: { rate: '40mbit' } }, { up: { rate: '5mbit' }, down: { rate: '25mbit' } }]), 'up'), [0, 1]);
    assert.deepEqual(aloneCandidates(sc([{ rate: '20mbit' }, { rate: '20mbit', schedule: [{ at: '3s', outage: true }] }]), 'up'), [0]);
  });

  it('plays schedules from an offset: earlier steps set the starting state', () => {
    const links = parseScenario({ links: [{ rate: '20mbit' }, { rate: '30mbit', schedule: [{ at: '0s', delay: '25ms' }, { at: '15s', delay: '45ms', rate: '18mbit' }, { at: '30s', delay: '30ms' }], repeat: '60s' }] }, 't')._unsafeUnwrap().links;
    const ev = flowEvents('lab', links, 10, 12);
    assert.deepEqual(ev.map((e) => [e.atS, e.label]), [
      [0, ''],
      [5, 'isp2 18 Mbit 45 ms'],
    ]);
    assert.deepEqual(flowEvents('lab', links, 0, 31).map((e) => e.atS), [0, 15, 30]);
    // a trace starts over with every flow, so the bond and each link alone see the same part
    const traced = parseScenario({ links: [{ rate: '20mbit' }, { down: { trace: 'lte-down.trace' } }] }, 't', new URL('./fixtures/traces/', import.meta.url).pathname)._unsafeUnwrap().links;
    assert.deepEqual(flowEvents('lab', traced, 0, 7).map((e) => [e.atS, e.label]), [[0, '']]);
  });

  it('what a trace delivers in a window, looping', () => {
    const ms = [1, 2, 2, 4]; // 4 opportunities every 4 ms: 12 Mbit/s
    assert.equal(traceWindowBps(ms, 0, 4), 12e6);
    assert.equal(traceWindowBps(ms, 0, 400), 12e6);
    assert.equal(traceWindowBps(ms, 1, 2), 24e6); // the two at 2 ms
    assert.equal(traceWindowBps(ms, 4, 8), 12e6); // the next period
  });

  it('the cut dip is measured from the moment the cut acted, not floored by a window', () => {
    // 40 Mbit/s; cut acts at 1000 ms: 50 ms of 5 Mbit/s, then 20 (the survivor)
    const r = trace(3000, (t) => (t < 1000 ? [20, 20] : t < 1050 ? [5, 0] : [20, 0]));
    const d = dip(r, 1000, 3000, 18);
    assert.equal(d.ms, 50);
    assert.ok(Math.abs(d.lowestMbit - 5) < 1e-9, String(d.lowestMbit));
    const none = dip(trace(3000, () => [20, 20]), 1000, 3000, 18);
    assert.equal(none.ms, 0);
    const slow = dip(trace(3000, (t) => (t < 1000 ? [20, 20] : t < 1400 ? [0, 0] : [20, 0])), 1000, 3000, 18);
    assert.equal(slow.ms, 400);
    assert.equal(dip(trace(3000, (t) => (t < 1000 ? [20, 20] : [5, 0])), 1000, 3000, 18).ms, Infinity);
  });

  it('discover writes the LP config without rate or delay, and the config accepts that', () => {
    const links = parseScenario({ links: [{ rate: '30mbit', delay: '4ms' }, { rate: '10mbit', delay: '22ms' }] }, 't')._unsafeUnwrap().links;
    const keys = { privateKeyFile: '/k', peerPublicKey: 'p' };
    const without = lpConfig('d', links, { singleInterface: false, lp: { omitRates: true } }, keys);
    assert.doesNotMatch(without, /^(rate|delay) =/m);
    assert.match(lpConfig('d', links, { singleInterface: false }, keys), /^rate = "30mbit"$/m);
    const cfg = parseConfig({ ...parseToml(without), private_key: undefined, peer_public_key: undefined, insecure_no_auth: true }, 'lp.toml');
    assert.ok(cfg.isOk(), JSON.stringify(cfg));
  });

  it('the suite labs: routed hosts and shaping portals by default; MPCTL_LAB_SHAPE=0 or MPCTL_LAB_ROUTED_HOSTS=0 turns them off', () => {
    assert.deepEqual(suiteLabModes({}), { routedHosts: true, shape: true });
    assert.deepEqual(suiteLabModes({ MPCTL_LAB_SHAPE: '0' }), { routedHosts: true, shape: false });
    assert.deepEqual(suiteLabModes({ MPCTL_LAB_ROUTED_HOSTS: '0' }), { routedHosts: false, shape: false }, 'no shaping without the hop');
    assert.deepEqual(suiteLabModes({ MPCTL_LAB_SHAPE: '1', MPCTL_LAB_ROUTED_HOSTS: '1' }), { routedHosts: true, shape: true });
  });

  it('the portals of a lab get shape = true or shape = false, never the product default', () => {
    const links = parseScenario({ links: [{ rate: '20mbit', delay: '10ms' }] }, 't')._unsafeUnwrap().links;
    const keys = { privateKeyFile: '/k', peerPublicKey: 'p' };
    assert.match(lpConfig('d', links, { singleInterface: false, shape: true }, keys), /^shape = true$/m);
    assert.match(lpConfig('d', links, { singleInterface: false }, keys), /^shape = false$/m);
    assert.match(rpConfig('d', links, { singleInterface: false, shape: true }, keys), /^shape = true$/m);
    assert.match(rpConfig('d', links, { singleInterface: false }, keys), /^shape = false$/m);
  });

  it("the flap figure is the flow's worst second after the warm-up", () => {
    assert.equal(worstSecond([1e6, 2e6, 19e6, 17e6, 30e6, 0], 3), 17);
  });

  it('records the git commit and whether the tree was dirty', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpctl-git-'));
    try {
      const git = (...a: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.email=t@t', '-c', 'user.name=t', ...a], { stdio: 'pipe' }).toString().trim();
      git('init', '-q');
      writeFileSync(join(dir, 'f'), 'a');
      git('add', 'f');
      git('commit', '-qm', 'x');
      const head = git('rev-parse', 'HEAD');
      assert.deepEqual(await gitState(dir), { commit: head, dirty: false });
      // another bench's report in the reports directory is not a change of the code measured
      mkdirSync(join(dir, 'out'));
      writeFileSync(join(dir, 'out', 'r.json'), '1');
      git('add', 'out/r.json');
      git('commit', '-qm', 'r');
      const head2 = git('rev-parse', 'HEAD');
      writeFileSync(join(dir, 'out', 'r.json'), '2');
      assert.deepEqual(await gitState(dir, join(dir, 'out')), { commit: head2, dirty: false });
      assert.deepEqual(await gitState(dir), { commit: head2, dirty: true });
      writeFileSync(join(dir, 'f'), 'b');
      assert.deepEqual(await gitState(dir, join(dir, 'out')), { commit: head2, dirty: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('renders the commit, ratios with 3 decimals and the unstable flag', () => {
    const text = renderBench({
      bench: 'x',
      startedAt: 't',
      durationS: 1,
      git: { commit: '0123456789abcdef', dirty: true },
      host: { cpus: 2, kernel: 'k', load1: 0, tcpCc: 'bbr' },
      unstable: ['a'],
      figures: markStability([
        { name: 'a', unit: '% of sum', runs: [46, 83], median: 64.5, cc: 'cubic', cpuPressurePct: [3.1, 48.7] },
        { name: 'b', unit: 'ratio', runs: [0.955], median: 0.955, target: '≥ 0.97', met: false },
      ]),
    });
    assert.match(text, /0123456789ab\+dirty/);
    assert.match(text, /UNSTABLE \(spread 37\.0 points\)/);
    assert.match(text, /0\.955 ratio {2}target ≥ 0\.97: MISSED/);
    assert.match(text, /cpu pressure \(% of each run's time a task waited for a CPU\): 3\.1, 48\.7\n {2}b\n/);
  });

  it('cpu pressure: the share of a span some task waited for a CPU, from /proc/pressure/cpu', () => {
    assert.equal(pressureShare({ someUs: 1_000_000, atMs: 0 }, { someUs: 1_250_000, atMs: 1000 }), 0.25);
    assert.equal(pressureShare({ someUs: 0, atMs: 0 }, { someUs: 5_000_000, atMs: 1000 }), 1, 'at most all of it');
    assert.equal(pressureShare({ someUs: null, atMs: 0 }, { someUs: 5, atMs: 1000 }), null, 'no PSI: unknown');
    assert.equal(pressureShare({ someUs: 5, atMs: 1000 }, { someUs: 6, atMs: 1000 }), null, 'no span');
    // this kernel has PSI (the lab's tests read it); a 50 ms busy loop counts only if another
    // task waited meanwhile, so only the reading's shape is checked
    const a = cpuPressure();
    const until = Date.now() + 50;
    while (Date.now() < until);
    const b = cpuPressure();
    assert.ok(a.someUs !== null && b.someUs !== null && b.someUs >= a.someUs, JSON.stringify({ a, b }));
    const sh = pressureShare(a, b);
    assert.ok(sh !== null && sh >= 0 && sh <= 1, String(sh));
  });

  it('a kept flow\'s link losses: each way, what one portal sent on a link less what the other received', () => {
    const at = (lp: [number, number][], rp: [number, number][]) => ({
      lp: { drops: {}, links: lp.map(([tx, rx], id) => ({ id, tx, rx })) },
      rp: { drops: {}, links: rp.map(([tx, rx], id) => ({ id, tx, rx })) },
    });
    const a = at([[100, 50], [200, 70]], [[40, 90], [60, 190]]);
    // up: the LP sent 1000 / 2000 more, the RP received 990 / 2000; down: the RP sent 500 / 300,
    // the LP received 500 / 296
    const b = at([[1100, 550], [2200, 366]], [[540, 1080], [360, 2190]]);
    assert.deepEqual(linkLoss(a, b), { up: { 0: 10, 1: 0 }, down: { 0: 0, 1: 4 } });
  });

  it('MPCTL_BENCH_KEEP: the traces pointed into the directory, one line per flow with its drops, nothing without it', async () => {
    assert.deepEqual(dropsDelta({ duplicate: 3, replay: 1 }, { duplicate: 5, replay: 1, no_route: 2 }), { duplicate: 2, no_route: 2 }, 'what grew, only');
    const flow = { lab: 'b', cc: 'cubic', dir: 'down', startMs: 1, endMs: 2, mbit: 9.5, retransmits: 3, intervals: [9, 10], drops: { lp: {}, rp: { duplicate: 2 } } };
    const none: NodeJS.ProcessEnv = {};
    assert.equal(keepDir(none), null);
    assert.ok((await armKeep(none)).isOk());
    assert.ok((await keepFlow(flow, none)).isOk());
    assert.equal(none.MPCTL_CC_TRACE, undefined, 'no trace unless asked');
    const dir = join(mkdtempSync(join(tmpdir(), 'mpctl-keep-')), 'runs');
    try {
      const env: NodeJS.ProcessEnv = { [KEEP_ENV]: dir };
      assert.ok((await armKeep(env)).isOk());
      assert.ok(existsSync(dir), 'created');
      assert.equal(env.MPCTL_CC_TRACE, `${dir}/cc`, 'the portals inherit the trace prefix');
      const mine: NodeJS.ProcessEnv = { [KEEP_ENV]: dir, MPCTL_CC_TRACE: '/elsewhere/x' };
      assert.ok((await armKeep(mine)).isOk());
      assert.equal(mine.MPCTL_CC_TRACE, '/elsewhere/x', 'a trace asked for is kept');
      assert.ok((await keepFlow(flow, env)).isOk());
      assert.ok((await keepFlow({ ...flow, mbit: 2.1 }, env)).isOk());
      const lines = readFileSync(`${dir}/flows.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as typeof flow);
      assert.deepEqual(lines.map((l) => l.mbit), [9.5, 2.1]);
      assert.deepEqual(lines[0], flow);
      const bad = await keepFlow(flow, { [KEEP_ENV]: '/proc/mpctl-no-such-dir' });
      assert.ok(bad.isErr(), 'an unwritable directory is an error, not silence');
      assert.match(JSON.stringify(bad.error), /flows\.jsonl/);
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });

  it('an unstable figure around a median of 0 shows its range, also once through JSON', () => {
    const [f] = markStability([{ name: 'dip', unit: 'ms', runs: [400, 0, 250, 0, 0, 0], median: 0 }]);
    assert.equal(f!.unstable, true);
    const want = 'runs from 0.0 to 400 ms around a median of 0';
    assert.equal(spreadText(f!), want);
    assert.equal(spreadText(JSON.parse(JSON.stringify(f))), want); // Infinity is null in JSON
    assert.equal(spreadText({ unit: '% of sum', runs: [46, 83], spread: 37 }), 'spread 37.0 points');
  });
});

describe('benchmark plots', () => {
  it('renders throughput over time per link and total as SVG, offline', async () => {
    const svg = (await renderPlot('2×20 test', [
      {
        title: 'client → server',
        points: [0, 0.1, 0.2].flatMap((tS) => [
          { tS, series: 'link 1', mbit: 19.5 },
          { tS, series: 'link 2', mbit: 19.6 },
          { tS, series: 'total', mbit: 39.1 },
        ]),
        events: [{ tS: 0.1, label: 'isp2 cut' }],
        sumMbit: 39.6,
      },
    ]))._unsafeUnwrap();
    assert.match(svg, /^<svg /);
    for (const text of ['2×20 test', 'client → server', 'isp2 cut', 'link 1', 'total', 'time (s)']) assert.ok(svg.includes(text), text);
  });
});

it('the CLI\'s list of benchmarks (names.ts, read without loading them) is bench.ts\'s, in its order', () => {
  assert.deepEqual([...BENCH_NAMES], [...BENCHES]);
});
