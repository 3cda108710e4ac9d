// Byte budgets of metered links (src/cc/budget.ts): what counts, when the link is taken out,
// that it stays out until the allowance renews, and renewal across calendar periods.
//   node --import tsx --test test/cc-budget.test.ts

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { budgetStatus, initialBudget, onCounters, periodAt, reconfigure, type LinkCounters } from '../src/cc/budget.js';

const MB = 1_000_000;
const t0 = Date.UTC(2025, 2, 10, 12, 0, 0); // 10 March 2025, 12:00 UTC
const c = (tx: number, rx: number, txPackets = 0, rxPackets = 0): LinkCounters => ({
  txBytes: BigInt(tx),
  rxBytes: BigInt(rx),
  txPackets: BigInt(txPackets),
  rxPackets: BigInt(rxPackets),
});

describe('byte budgets', () => {
  it('counts both directions from the first reading on, with per-packet overhead if asked', () => {
    let s = initialBudget({ limitBytes: 100 * MB }, t0);
    s = onCounters(s, c(5 * MB, 5 * MB), t0).state; // the baseline: what was before is not ours
    s = onCounters(s, c(6 * MB, 8 * MB), t0 + 1000).state;
    assert.equal(s.usedBytes, 4 * MB);
    let o = initialBudget({ limitBytes: 100 * MB, count: 'tx', perPacketOverhead: 14 }, t0);
    o = onCounters(o, c(0, 0), t0).state;
    o = onCounters(o, c(1500 * 1000, 9 * MB, 1000, 5000), t0 + 1000).state;
    assert.equal(o.usedBytes, 1500 * 1000 + 14 * 1000);
  });

  it('takes the link out before the allowance is spent, by what its rate carries in the margin', () => {
    let s = initialBudget({ limitBytes: 100 * MB, marginMs: 2000 }, t0);
    s = onCounters(s, c(0, 0), t0).state;
    // 80 MB used, 20 MB left; at 40 Mbit/s the 2 s margin is 10 MB: fine
    let r = onCounters(s, c(40 * MB, 40 * MB), t0 + 1000, 40e6);
    assert.deepEqual([r.state.status, r.change], ['ok', null]);
    r = onCounters(r.state, c(46 * MB, 45 * MB), t0 + 2000, 20e6); // 91 MB (≥ 90 %), margin 5 MB: low
    assert.deepEqual([r.state.status, r.change], ['low', 'low']);
    r = onCounters(r.state, c(46 * MB, 45 * MB), t0 + 3000, 20e6); // nothing new: no change
    assert.equal(r.change, null);
    r = onCounters(r.state, c(46 * MB, 45 * MB), t0 + 4000, 40e6); // 9 MB left, 10 MB per 2 s: out
    assert.deepEqual([r.state.status, r.change], ['exhausted', 'exhausted']);
    assert.equal(budgetStatus(r.state, t0 + 4000).remainingBytes, 9 * MB);
  });

  it('stays out until the period renews, then comes back with a fresh allowance', () => {
    let s = initialBudget({ limitBytes: 10 * MB, period: { kind: 'daily' } }, t0);
    s = onCounters(s, c(0, 0), t0).state;
    let r = onCounters(s, c(10 * MB, 0), t0 + 1000);
    assert.equal(r.change, 'exhausted');
    // taken out: its rate is now 0 and nothing flows, but it must not flap back
    r = onCounters(r.state, c(10 * MB + 500, 0), t0 + 60_000, 0);
    assert.deepEqual([r.state.status, r.change], ['exhausted', null]);
    const midnight = Date.UTC(2025, 2, 11);
    assert.equal(budgetStatus(r.state, t0).renewsInMs, midnight - t0);
    r = onCounters(r.state, c(10 * MB + 800, 0), midnight + 5);
    assert.deepEqual([r.state.status, r.change, r.state.usedBytes], ['ok', 'ok', 300]);
  });

  it('renews monthly on the configured day, the last day of shorter months', () => {
    assert.deepEqual(periodAt({ kind: 'monthly', day: 15 }, t0), { startMs: Date.UTC(2025, 1, 15), endMs: Date.UTC(2025, 2, 15) });
    assert.deepEqual(periodAt({ kind: 'monthly', day: 1 }, t0), { startMs: Date.UTC(2025, 2, 1), endMs: Date.UTC(2025, 3, 1) });
    assert.deepEqual(periodAt({ kind: 'monthly', day: 31 }, Date.UTC(2025, 1, 20)), { startMs: Date.UTC(2025, 0, 31), endMs: Date.UTC(2025, 1, 28) });
    assert.deepEqual(periodAt({ kind: 'monthly', day: 5 }, Date.UTC(2025, 0, 3)), { startMs: Date.UTC(2024, 11, 5), endMs: Date.UTC(2025, 0, 5) });
    assert.deepEqual(periodAt({ kind: 'none' }, t0), { startMs: 0, endMs: null });
    assert.throws(() => initialBudget({ limitBytes: 1, period: { kind: 'monthly', day: 0 } }, t0));
  });

  it('survives a data-path reload (counters back to zero) and a portal restart (saved usage)', () => {
    let s = initialBudget({ limitBytes: 100 * MB }, t0);
    s = onCounters(s, c(0, 0), t0).state;
    s = onCounters(s, c(30 * MB, 0), t0 + 1000).state;
    s = onCounters(s, c(2 * MB, 1 * MB), t0 + 2000).state; // reloaded: all of it is new
    assert.equal(s.usedBytes, 33 * MB);
    const saved = budgetStatus(s, t0 + 2000).saved;
    assert.equal(initialBudget({ limitBytes: 100 * MB }, t0 + 3000, saved).usedBytes, 33 * MB);
    assert.equal(initialBudget({ limitBytes: 100 * MB }, Date.UTC(2025, 3, 2), saved).usedBytes, 0); // next month
  });

  it('a raised limit puts the link back; no limit never takes it out', () => {
    let s = initialBudget({ limitBytes: 10 * MB }, t0);
    s = onCounters(s, c(0, 0), t0).state;
    s = onCounters(s, c(12 * MB, 0), t0 + 1000).state;
    assert.equal(s.status, 'exhausted');
    const r = reconfigure(s, { limitBytes: 50 * MB }, t0 + 2000);
    assert.deepEqual([r.state.status, r.change, r.state.usedBytes], ['ok', 'ok', 12 * MB]);
    let u = initialBudget({ limitBytes: 0 }, t0);
    u = onCounters(u, c(0, 0), t0).state;
    u = onCounters(u, c(1e15, 1e15), t0 + 1000, 1e9).state;
    assert.equal(u.status, 'ok');
    assert.equal(budgetStatus(u, t0).remainingBytes, null);
  });
});
