// The benchmark suite's arithmetic and plots, without a lab (the benchmarks themselves run with
// `mpctl lab bench`, never in the unit suite): throughput bins from cumulative per-link
// counters, the time-to-reach and stall figures, and the SVG plot rendered headless.
//   node --import tsx --test test/bench-suite.test.ts

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bins, type Reading } from '../src/lab/bench-sample.js';
import { longestStall, timeToReach } from '../src/lab/bench-suite.js';
import { renderPlot } from '../src/lab/bench-plot.js';
import { tenMbitOrder, type BenchReport } from '../src/lab/bench.js';

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

  it('checks 4 > 3 > 2 × 10 Mbit across reports', () => {
    const rep = (n: number, up: number, down: number): BenchReport => ({
      bench: `${n}x10`,
      startedAt: '',
      durationS: 0,
      host: { cpus: 2, kernel: '', load1: 0, tcpCc: 'bbr' },
      figures: [
        { name: 'x, 1 TCP flow client → server', unit: '% of sum', runs: [], median: up },
        { name: 'x, 1 TCP flow server → client', unit: '% of sum', runs: [], median: down },
      ],
    });
    const good = tenMbitOrder(new Map([['2x10', rep(2, 90, 90)], ['3x10', rep(3, 90, 90)], ['4x10', rep(4, 89, 90)]]));
    assert.equal(good?.met, true);
    assert.deepEqual(good?.runs, [18, 27, 35.6, 18, 27, 36]);
    const bad = tenMbitOrder(new Map([['2x10', rep(2, 90, 90)], ['3x10', rep(3, 90, 50)], ['4x10', rep(4, 89, 90)]]));
    assert.equal(bad?.met, false);
    assert.equal(tenMbitOrder(new Map([['2x10', rep(2, 90, 90)]])), null);
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
