// Budgets in the RP's direction and across restarts, without a kernel:
//   - the allowance in the probe (struct mp_probe flags / budget_kib) and its rounding;
//   - the RP's line from an allowance and its own sending history (cc/budget.ts remoteLine);
//   - PeerAllowances: no budget → no cap, spent, renewed, reordered probes, LP restart;
//   - the LP's keeper: allowance = what is left, usage restored from a saved run;
//   - budget.json: load/save (mode 0600, atomic), corrupt files, another period.
//   node --import tsx --test test/budget-rp.test.ts

import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ok } from 'neverthrow';
import { periodAt, recordSent, remoteLine, sentAt, type SentSample } from '../src/cc/budget.js';
import * as abi from '../src/datapath/abi.js';
import { budgetFile, formatBudgetFile, loadBudgetFile, parseBudgetFile, restoreUsage, saveBudgetFile } from '../src/cc/budget-store.js';
import { BudgetKeeper, PeerAllowances } from '../src/cc/budget-loop.js';
import { allowanceKib, decodeProbe, encodeProbe, PROBE_LEN, type Probe } from '../src/run/probe.js';

const MB = 1_000_000;
const base: Probe = { linkId: 1, reply: false, metric: 0, carrier: abi.MP_CARRIER_UDP, probeSeq: 7, sentNs: 5n, rateBps: 10_000_000n, owdUs: 1000 };

describe('the allowance in the probe', () => {
  it('travels in flags / budget_kib (mp_probe), in whole KiB rounded down', () => {
    const b = encodeProbe({ ...base, budgetBytes: 2 * MB + 1023 }, 0);
    assert.equal(b.length, PROBE_LEN);
    assert.equal(b.readUInt8(abi.MP_HDR_LEN + abi.offsetOf(abi.MP_PROBE, 'flags')), abi.MP_PROBE_F_BUDGET);
    assert.equal(b.readUInt32BE(abi.MP_HDR_LEN + abi.offsetOf(abi.MP_PROBE, 'budget_kib')), Math.floor((2 * MB + 1023) / 1024));
    const d = decodeProbe(b);
    assert.equal(d?.budgetBytes, Math.floor((2 * MB + 1023) / 1024) * 1024);
    assert.ok(d!.budgetBytes! <= 2 * MB + 1023, 'never more than the LP allows');
    assert.equal(decodeProbe(encodeProbe({ ...base, budgetBytes: 1023 }, 0))?.budgetBytes, 0, 'less than 1 KiB left is spent');
  });

  it('no budget: flag clear and zeros, as an LP from before budgets sends', () => {
    for (const p of [{ ...base }, { ...base, budgetBytes: null }]) {
      const b = encodeProbe(p, 0);
      assert.equal(b.readUInt8(abi.MP_HDR_LEN + 3), 0);
      assert.equal(b.readUInt32BE(abi.MP_HDR_LEN + 28), 0);
      assert.equal(decodeProbe(b)?.budgetBytes, null);
    }
  });

  it('replies carry no allowance; unknown flags are malformed; huge allowances saturate', () => {
    assert.equal(decodeProbe(encodeProbe({ ...base, reply: true, budgetBytes: 5 * MB }, 0))?.budgetBytes, null);
    const b = encodeProbe({ ...base, budgetBytes: MB }, 0);
    b.writeUInt8(0x81, abi.MP_HDR_LEN + 3);
    assert.equal(decodeProbe(b), null);
    assert.equal(allowanceKib(1e16), 0xffff_ffff);
    assert.equal(allowanceKib(-5), 0);
  });
});

describe("the RP's line", () => {
  const h: SentSample[] = [
    { tUs: 0, sent: 0n },
    { tUs: 100_000, sent: 1000n },
    { tUs: 200_000, sent: 5000n },
    { tUs: 300_000, sent: 9000n },
  ];

  it('sentAt: the newest sample not after the time; before the history, its oldest', () => {
    assert.equal(sentAt(h, 250_000), 5000n);
    assert.equal(sentAt(h, 300_000), 9000n);
    assert.equal(sentAt(h, -5), 0n);
    assert.equal(sentAt([], 10), 0n);
  });

  it('= what was sent a lag ago (what the LP has counted) + the allowance, at least 1', () => {
    assert.equal(remoteLine(10_000, h, 300_000, 150_000), 1000n + 10_000n, 'bytes in flight are not allowed twice');
    assert.equal(remoteLine(10_000, h, 300_000, 0), 19_000n);
    assert.equal(remoteLine(0, [], 0, 0), 1n, '0 would mean no budget');
    // spent: what was in flight already passes the allowance, so the link is out now
    assert.ok(remoteLine(2000, h, 300_000, 150_000) < 9000n);
  });

  it('recordSent keeps a bounded window', () => {
    let x: SentSample[] = [];
    for (let t = 0; t <= 5_000_000; t += 20_000) x = recordSent(x, { tUs: t, sent: BigInt(t) }, 2_000_000);
    assert.ok(x.length <= 102, `${x.length} samples`);
    assert.equal(sentAt(x, 3_000_000), 3_000_000n, 'the window still answers 2 s back');
  });

  it('recordSent keeps no sample that repeats the last one (an idle link), and answers the same', () => {
    let x: SentSample[] = [];
    for (let t = 0; t <= 5_000_000; t += 20_000) x = recordSent(x, { tUs: t, sent: t < 4_000_000 ? 100n : 200n }, 2_000_000);
    assert.deepEqual(x, [{ tUs: 0, sent: 100n }, { tUs: 4_000_000, sent: 200n }]);
    assert.equal(sentAt(x, 3_000_000), 100n);
    assert.equal(sentAt(x, 4_500_000), 200n);
  });
});

describe('PeerAllowances (RP)', () => {
  const logs: string[] = [];
  const log = (m: string) => void logs.push(m);

  it('no budget advertised → 0 (no cap); an allowance → a line; spent, then renewed', () => {
    const p = new PeerAllowances(log);
    p.sample([0n, 0n], 0);
    assert.equal(p.onProbe(1, 1, null, 0, 0), 0n);
    p.sample([0n, 3n * BigInt(MB)], 100_000);
    assert.equal(p.onProbe(1, 2, 2 * MB, 0, 100_000), 5n * BigInt(MB));
    assert.equal(p.onProbe(1, 3, 0, 0, 100_000), 3n * BigInt(MB), 'spent: the line is where we are');
    assert.ok(logs.some((l) => /link 1 budget spent/.test(l)));
    assert.equal(p.onProbe(1, 4, MB, 0, 100_000), 4n * BigInt(MB), 'renewed: the link comes back');
    assert.ok(logs.some((l) => /allows 1000000 more bytes/.test(l)));
    assert.equal(p.onProbe(1, 5, null, 0, 100_000), 0n, 'the LP dropped the budget: uncapped');
  });

  it('a probe older than one applied is ignored (null: the line stays), unless the LP restarted', () => {
    const p = new PeerAllowances(log);
    assert.equal(p.onProbe(0, 10, 100, 0, 0), 100n);
    assert.equal(p.onProbe(0, 9, 5000, 0, 10_000), null, 'reordered: its larger allowance is stale');
    assert.equal(p.onProbe(0, 10, 5000, 0, 10_000), null, 'the same round twice');
    assert.equal(p.onProbe(0, 1, 5000, 0, 1_200_000), 5000n, 'a second of silence: a restarted LP counts from 1 again');
    assert.equal(p.onProbe(0, 0xffff_ffff, 7, 0, 1_300_000), null);
    assert.equal(p.onProbe(0, 2, 7, 0, 1_300_000), 7n, 'seq compares modulo 2^32');
  });
});

describe("the LP's keeper: allowance and restored usage", () => {
  const t0 = Date.UTC(2026, 10, 25, 12);
  const dp = (sent: bigint, rx: bigint) => ({
    counters: () => ok({ txPackets: 0n, txBytes: sent, rxPackets: 0n, rxBytes: rx }),
    sched: () => ok({ seq: 0, busyUntilNs: [], linkSeq: [], sentBytes: [sent, sent] }),
    setBudget: () => ok(undefined),
  });

  it('the allowance is what is left of the limit, both directions counted; null without a budget', () => {
    let sent = 0n;
    let rx = 0n;
    const k = new BudgetKeeper({ ...dp(0n, 0n), counters: () => ok({ txPackets: 0n, txBytes: sent, rxPackets: 0n, rxBytes: rx }) }, () => {});
    k.addLink(0, { limitBytes: 2 * MB, period: { kind: 'monthly', day: 1 } }, t0);
    k.tick(t0);
    sent = 300_000n;
    rx = 1_200_000n;
    k.tick(t0 + 20);
    assert.equal(k.allowance(0), 500_000);
    rx = 3_000_000n;
    k.tick(t0 + 40);
    assert.equal(k.allowance(0), 0, 'overrun: 0, not negative');
    assert.equal(k.allowance(1), null);
  });

  it('starts from a saved run of the same period; saved() is what to persist', () => {
    const period = { kind: 'monthly' as const, day: 1 };
    const start = periodAt(period, t0).startMs;
    const k = new BudgetKeeper(dp(0n, 0n), () => {});
    k.addLink(0, { limitBytes: 2 * MB, period, saved: { periodStartMs: start, usedBytes: 1_500_000 } }, t0);
    k.addLink(1, { limitBytes: 2 * MB, period, saved: { periodStartMs: start - 1, usedBytes: 1_500_000 } }, t0);
    assert.equal(k.allowance(0), 500_000);
    assert.equal(k.allowance(1), 2 * MB, 'another period counts nothing');
    assert.deepEqual(k.saved().get(0), { periodStartMs: start, usedBytes: 1_500_000 });
  });
});

describe('budget.json', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'mpctl-budget-'));
    dirs.push(d);
    return d;
  };
  const now = Date.UTC(2026, 10, 25, 12);
  const monthly = { kind: 'monthly' as const, day: 1 };
  const start = periodAt(monthly, now).startMs;

  it('save then load gives back every link; mode 0600, no temporary file left', async () => {
    const d = await tmp();
    const f = budgetFile(`${d}/state`, 'lp');
    const m = new Map([
      ['4g', { periodStartMs: start, usedBytes: 1234567 }],
      ['sat', { periodStartMs: 0, usedBytes: 5 }],
    ]);
    assert.ok((await saveBudgetFile(f, m, now)).isOk());
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    assert.equal((await stat(`${d}/state/lp`)).mode & 0o777, 0o700);
    assert.deepEqual(await readdir(`${d}/state/lp`), ['budget.json']);
    assert.deepEqual(await loadBudgetFile(f, () => {}), m);
    assert.match(await readFile(f, 'utf8'), /"periodStart": "2026-11-01T00:00:00.000Z"/);
  });

  it('a missing file is empty and silent; a corrupt one is empty with a warning', async () => {
    const d = await tmp();
    const warned: string[] = [];
    assert.equal((await loadBudgetFile(`${d}/none.json`, (m) => void warned.push(m))).size, 0);
    assert.equal(warned.length, 0);
    for (const bad of ['{"version":1,"links":{"4g":{"periodStartMs":1,"usedBytes":-1}}}', '{"version":2,"links":{}}', '{"version":1,"links":', '[]', '{"version":1,"links":{"x":{"periodStartMs":"1","usedBytes":1}}}']) {
      await writeFile(`${d}/b.json`, bad);
      assert.equal((await loadBudgetFile(`${d}/b.json`, (m) => void warned.push(m))).size, 0, bad);
      assert.ok(parseBudgetFile(bad).isErr(), bad);
    }
    assert.equal(warned.length, 5);
    assert.match(warned[0]!, /corrupt.*starting at 0/);
  });

  it('restore: usage of the current period counts, another period is dropped with a warning, unbudgeted links take nothing', () => {
    const saved = new Map([
      ['4g', { periodStartMs: start, usedBytes: 1000 }],
      ['lte', { periodStartMs: periodAt(monthly, now - 40 * 86_400_000).startMs, usedBytes: 9e9 }],
      ['dsl', { periodStartMs: start, usedBytes: 1000 }],
    ]);
    const r = restoreUsage(
      [
        { name: '4g', budgetBytes: 2 * MB, budgetPeriod: monthly },
        { name: 'lte', budgetBytes: 2 * MB, budgetPeriod: monthly },
        { name: 'dsl', budgetBytes: 0, budgetPeriod: monthly },
      ],
      saved,
      now,
    );
    assert.deepEqual([...r.usage.keys()], ['4g']);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /link lte: .*not the current one.*starting at 0/);
    // the period rolls over: the same file now restores nothing
    const next = restoreUsage([{ name: '4g', budgetBytes: 2 * MB, budgetPeriod: monthly }], saved, Date.UTC(2026, 11, 1, 0, 0, 1));
    assert.equal(next.usage.size, 0);
  });

  it('formatBudgetFile round-trips through parseBudgetFile', () => {
    const m = new Map([['a', { periodStartMs: start, usedBytes: 42 }]]);
    assert.deepEqual(parseBudgetFile(formatBudgetFile(m, now))._unsafeUnwrap(), m);
  });
});
