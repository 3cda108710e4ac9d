// Buffer-depth trains (src/run/depth.ts): the depth a burst's replies show, through a model of a
// tail-drop FIFO at a link's rate; the bookkeeping of bursts; the controller taking the result.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEPTH_MAX_LEN, DEPTH_MIN_LEN, DEPTH_RETRY_MS, DEPTH_TRIES, DEPTH_WAIT_MS, DepthTrains, depthLen, depthOf } from '../src/run/depth.js';
import { Trains } from '../src/run/train.js';
import * as cc from '../src/cc/controller.js';
import { planCapMs } from '../src/cc/loop.js';

/** A burst of `n` requests of `bytes` through a FIFO of `queueBytes` (tail drop) draining at
 * `rateBps`, the requests entering evenly over `entryUs`; `loss`: random loss before the buffer
 * (seeded); the peer's clock `offsetUs` ahead of ours (u32 wrap). What depthOf gets. */
function burst(o: { n: number; bytes: number; rateBps: number; queueBytes: number; entryUs: number; loss?: number; seed?: number; offsetUs?: number }) {
  let seed = o.seed ?? 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const tx = (o.bytes * 8 * 1e6) / o.rateBps; // µs per request
  const sentUs: number[] = [];
  const stamps = new Map<number, number>();
  let lastDepart = -Infinity;
  for (let i = 0; i < o.n; i++) {
    const e = o.n > 1 ? (o.entryUs * i) / (o.n - 1) : 0;
    sentUs.push(e);
    if (o.loss && rnd() < o.loss) continue;
    const queued = Math.max(0, lastDepart - e) * (o.rateBps / 8e6); // bytes still ahead of it
    if (queued + o.bytes > o.queueBytes) continue; // full: dropped
    lastDepart = Math.max(e, lastDepart) + tx;
    stamps.set(i, (Math.round(lastDepart + 10_000 + (o.offsetUs ?? 0)) >>> 0));
  }
  return { sentUs, stamps, trueDepthUs: (o.queueBytes * 8 * 1e6) / o.rateBps };
}

describe('depth trains', () => {
  it('a burst long enough to queue 200 ms at the estimate, within bounds', () => {
    assert.equal(depthLen(20e6, 1500), 335);
    assert.equal(depthLen(20e6, 1280), 392);
    assert.equal(depthLen(0, 1500), DEPTH_MIN_LEN);
    assert.equal(depthLen(1e9, 1500), DEPTH_MAX_LEN);
  });

  it("finds a FIFO's depth from the replies' stamps: 50 ms at 20 Mbit/s, entered over 0-5 ms, across the peer clock's wrap", () => {
    for (const entryUs of [0, 2_000, 5_000]) {
      const b = burst({ n: 335, bytes: 1500, rateBps: 20e6, queueBytes: 125_000, entryUs, offsetUs: 0xffff_ffff - 100_000 });
      const r = depthOf(b.sentUs, b.stamps);
      // (the median of the last three before the overflow: a packet or two under the buffer)
      assert.ok(r.depthUs !== null && r.depthUs <= b.trueDepthUs && r.depthUs >= b.trueDepthUs - 2_000, `entry ${entryUs} µs: ${r.depthUs} against ${b.trueDepthUs}`);
      assert.ok(r.overflowAt !== null && r.overflowAt >= 80 && r.overflowAt <= 90, `overflow at ${r.overflowAt}`);
    }
  });

  it('one request sent later than its time says does not deepen the buffer', () => {
    const b = burst({ n: 335, bytes: 1500, rateBps: 20e6, queueBytes: 125_000, entryUs: 1_000 });
    const r0 = depthOf(b.sentUs, b.stamps);
    const held = [...b.sentUs];
    held[r0.overflowAt! - 1]! -= 8_000; // its send was held back 8 ms after we took its time
    const st = new Map(b.stamps);
    st.set(r0.overflowAt! - 1, st.get(r0.overflowAt! - 1)! + 8_000);
    const r = depthOf(held, st);
    assert.ok(r.depthUs !== null && r.depthUs <= b.trueDepthUs && r.depthUs >= b.trueDepthUs - 2_000, `${r.depthUs} against ${b.trueDepthUs} (${r0.depthUs} without)`);
  });

  it('random loss (2 %) is not an overflow; its depth is still the FIFO', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const b = burst({ n: 335, bytes: 1500, rateBps: 20e6, queueBytes: 125_000, entryUs: 3_000, loss: 0.02, seed });
      const r = depthOf(b.sentUs, b.stamps);
      assert.ok(r.depthUs !== null && r.depthUs <= b.trueDepthUs && r.depthUs >= b.trueDepthUs - 3_000, `seed ${seed}: ${r.depthUs} against ${b.trueDepthUs}`);
    }
  });

  it('no depth where the buffer took the whole burst, nor from too few replies', () => {
    const deep = burst({ n: 335, bytes: 1500, rateBps: 20e6, queueBytes: 1_000_000, entryUs: 3_000 });
    const r = depthOf(deep.sentUs, deep.stamps);
    assert.equal(r.depthUs, null);
    assert.equal(r.overflowAt, null);
    assert.equal(r.none, 'deep');
    assert.ok(r.maxQueueUs > 190_000, `the most queue met ${r.maxQueueUs}`);
    // replies lost on the way back (the peer's own burst filling that direction): a run of
    // losses before the buffer is full, then requests that met more queue than those before it
    const full = burst({ n: 335, bytes: 1500, rateBps: 20e6, queueBytes: 125_000, entryUs: 1_000 });
    const back = new Map([...full.stamps].filter(([i]) => i < 40 || i >= 60));
    const rb = depthOf(full.sentUs, back);
    assert.equal(rb.overflowAt, 40);
    assert.equal(rb.depthUs, null, `read ${rb.depthUs} from replies lost on the way back`);
    assert.equal(rb.none, 'mixed');
    // a dead link: nothing back
    assert.equal(depthOf(deep.sentUs, new Map()).depthUs, null);
    // a buffer of a few packets: under the controller's floor (depthMinUs), none
    const tiny = burst({ n: 335, bytes: 1500, rateBps: 20e6, queueBytes: 15_000, entryUs: 0 });
    assert.equal(depthOf(tiny.sentUs, tiny.stamps).depthUs, null);
    assert.equal(depthOf(tiny.sentUs, tiny.stamps).none, 'few');
    // 2 Mbit/s, 50 ms: 8 requests fit; sends slow enough (24 ms for the 35) that 4 more drain in
    // and answer: still few before the overflow (the lab read 'mixed' from 12 such replies)
    const slow = burst({ n: 35, bytes: 1500, rateBps: 2e6, queueBytes: 12_500, entryUs: 24_000 });
    const rs = depthOf(slow.sentUs, slow.stamps);
    assert.ok(rs.replies >= 12, `${rs.replies} replies`);
    assert.equal(rs.none, 'few');
  });

  it('bursts: their sequence numbers, replies, a failed send tried again, results after the wait', () => {
    const d = new DepthTrains();
    assert.ok(d.due(1, 0));
    const seqs = d.start(1, 0, 1500, 100);
    assert.equal(seqs.length, 100);
    assert.ok(seqs.every((s) => DepthTrains.owns(s)));
    assert.ok(!d.due(1, 0), 'one burst at a time');
    // a capacity train's sequence numbers are not a depth train's, and the other way round
    const tr = new Trains();
    const ts = tr.start(1, 0, 1500);
    assert.ok(ts.every((s) => !DepthTrains.owns(s)));
    assert.equal(tr.reply(1, seqs[0]!, 5), false);
    assert.equal(d.reply(1, ts[0]!, 5), false);
    // replies: our own link and burst only, once each
    d.sent(1, 0, 0xffff_ff00);
    d.sent(1, 99, 0x0000_0f00); // across our clock's wrap: 4,096 µs later
    assert.equal(d.reply(2, seqs[0]!, 1), false);
    assert.equal(d.reply(1, seqs[0]!, 1000), true);
    assert.equal(d.reply(1, seqs[0]!, 1000), false);
    assert.deepEqual(d.finish(DEPTH_WAIT_MS - 1), [], 'waited for');
    const [f] = d.finish(DEPTH_WAIT_MS);
    assert.equal(f?.id, 1);
    assert.equal(f?.result.replies, 1);
    assert.equal(f?.result.depthUs, null);
    assert.equal(f?.result.none, 'few');
    // too few replies told nothing: tried again, DEPTH_TRIES times in all, spaced
    assert.equal(f?.again, true);
    assert.ok(!d.due(1, DEPTH_WAIT_MS + DEPTH_RETRY_MS - 1));
    let at = DEPTH_WAIT_MS + DEPTH_RETRY_MS;
    for (let i = 1; i < DEPTH_TRIES; i++) {
      assert.ok(d.due(1, at), `try ${i + 1}`);
      d.start(1, at, 1500, 100);
      at += DEPTH_WAIT_MS;
      assert.equal(d.finish(at)[0]?.again, i < DEPTH_TRIES - 1);
      at += DEPTH_RETRY_MS;
    }
    assert.ok(!d.due(1, at + 60_000), 'out of tries');
    // a depth, or none to find (the buffer took the burst), is the answer: not again
    const b = burst({ n: 335, bytes: 1500, rateBps: 20e6, queueBytes: 1_000_000, entryUs: 1_000 });
    const g = new DepthTrains();
    const gs = g.start(4, 0, 1500, 335);
    gs.forEach((s, i) => {
      g.sent(4, i, b.sentUs[i]!);
      if (b.stamps.has(i)) g.reply(4, s, b.stamps.get(i)!);
    });
    const [gf] = g.finish(DEPTH_WAIT_MS);
    assert.equal(gf?.result.none, 'deep');
    assert.equal(gf?.again, false);
    assert.ok(!g.due(4, 60_000));
    // a send that failed (no session yet) is no try
    const e = new DepthTrains();
    for (let i = 0; i < DEPTH_TRIES + 1; i++) {
      assert.ok(e.due(3, 0), `after ${i} failed sends`);
      e.start(3, 0, 1500, 50);
      e.failed(3);
    }
  });

  it("the controller takes a depth where it has none: the scheduler's plan cap follows, in the planned rate's milliseconds", () => {
    const s = cc.initial({ initialRateBps: 20e6 });
    assert.equal(cc.planCapUs(s), 0);
    const d = cc.withDepth(s, 49_000);
    assert.equal(d.depthUs, 49_000);
    assert.equal(cc.planCapUs(d), 44_100);
    assert.equal(cc.withDepth(d, 80_000), d, 'a depth learned stays');
    assert.equal(cc.withDepth(s, 5_000), s, 'under depthMinUs: none');
    // written in the planned rate's milliseconds: a link planned at twice its estimate (a
    // startup) queues twice the planned backlog, so its cap is halved; at or under it, as is
    assert.equal(planCapMs(d, 20_000_000n), 45);
    assert.equal(planCapMs(d, 19_600_000n), 45, 'a shaped link (98 %)');
    assert.equal(planCapMs(d, 40_000_000n), 23, 'planned at 2x: half');
    assert.equal(planCapMs(d, 25_000_000n), 36, 'a probe up (1.25x)');
    assert.equal(planCapMs(s, 40_000_000n), 0, 'no depth: no cap');
    assert.equal(planCapMs(cc.withDepth(cc.initial({ initialRateBps: 1e5 }), 10_000), 1_000_000_000n), 1, 'never 0 where there is a cap');
  });
});
