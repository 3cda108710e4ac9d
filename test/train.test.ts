// Capacity trains (src/run/train.ts): the rate from the peer's arrival stamps, and a train's life.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dispersion, HINT_OFF, retrainShape, RETRAIN_LEN, RETRAIN_MAX_MS, RETRAIN_MIN_MS, startFromTrain, TRAIN_LEN, TRAIN_MIN_REPLIES, TRAIN_RETRY_MS, TRAIN_TRIES, TRAIN_WAIT_MS, Trains, type TrainReply } from '../src/run/train.js';
import { decodeProbe, encodeProbe, type Probe } from '../src/run/probe.js';
import { MP_HDR_LEN, MP_PROBE_F_TRAIN, MP_PROBE_F_UNRATED } from '../src/datapath/abi.js';

/** The stamps a link of `bps` gives `n` back-to-back packets of `bytes`, from `t0` (u32 µs). */
const stamps = (n: number, bytes: number, bps: number, t0 = 1000): number[] => Array.from({ length: n }, (_, i) => (t0 + Math.round((i * bytes * 8 * 1e6) / bps)) >>> 0);
/** Replies without a data count (a train on an idle link, or a peer that does not say). */
const bare = (ts: readonly number[]): TrainReply[] => ts.map((tsUs) => ({ tsUs, rxBytes: null }));

/** A re-train on a link of `bps` that also carries `dataBps` of a flow: `n` packets of `bytes`
 * queued back to back with the flow's packets between them, the peer's count of data bytes at
 * each arrival (from `rx0`). */
function shared(n: number, bytes: number, bps: number, dataBps: number, rx0 = 10n ** 9n): TrainReply[] {
  // per train packet the bottleneck also serves the flow's share: the spacing is (bytes + data) / bps
  const dataPer = (bytes * dataBps) / (bps - dataBps);
  return Array.from({ length: n }, (_, i) => ({
    tsUs: (1000 + Math.round((i * (bytes + dataPer) * 8 * 1e6) / bps)) >>> 0,
    rxBytes: rx0 + BigInt(Math.round(i * dataPer)),
  }));
}

describe('capacity train: the rate', () => {
  it('is (replies - 1) x size over the span of the stamps', () => {
    for (const bps of [4e6, 10e6, 30e6, 300e6]) {
      const r = dispersion(bare(stamps(TRAIN_LEN, 1280, bps)), 1280, TRAIN_LEN);
      assert.ok(Math.abs(r.bps! / bps - 1) < 0.01, `${bps}: ${r.bps}`);
      assert.equal(r.replies, TRAIN_LEN);
    }
  });

  it('holds across the wrap of the peer\'s µs clock, and whatever the clock\'s offset', () => {
    const r = dispersion(bare(stamps(TRAIN_LEN, 1500, 20e6, 0xffff_f000)), 1500, TRAIN_LEN);
    assert.ok(Math.abs(r.bps! / 20e6 - 1) < 0.01, String(r.bps));
  });

  it('the train\'s tail lost (a full buffer): the packets that got through still give the rate', () => {
    const r = dispersion(bare(stamps(TRAIN_LEN, 1280, 4e6).slice(0, 12)), 1280, TRAIN_LEN);
    assert.ok(Math.abs(r.bps! / 4e6 - 1) < 0.01, String(r.bps));
    assert.deepEqual([r.replies, r.sent], [12, TRAIN_LEN]);
  });

  it('a re-train on a link that carries a flow: the data that arrived between its packets counts with them', () => {
    for (const [bps, data] of [[20e6, 5e6], [20e6, 15e6], [40e6, 1e6]] as const) {
      const replies = shared(RETRAIN_LEN, 1280, bps, data);
      const r = dispersion(replies, 1280, RETRAIN_LEN, true);
      assert.ok(Math.abs(r.bps! / bps - 1) < 0.01, `${bps} with ${data} of data: ${r.bps}`);
      assert.ok(r.dataBytes > 0 && r.retrain);
      // without the data count the same train reads the train's share only
      const blind = dispersion(bare(replies.map((x) => x.tsUs)), 1280, RETRAIN_LEN, true);
      assert.ok(Math.abs(blind.bps! / (bps - data) - 1) < 0.01, `${bps} blind: ${blind.bps}`);
    }
  });

  it('the data count wraps with the u64; one that went back (a peer that restarted) counts nothing', () => {
    const wrapped = shared(RETRAIN_LEN, 1280, 20e6, 5e6, 2n ** 64n - 5000n).map((x) => ({ ...x, rxBytes: BigInt.asUintN(64, x.rxBytes!) }));
    assert.ok(Math.abs(dispersion(wrapped, 1280, RETRAIN_LEN).bps! / 20e6 - 1) < 0.01);
    const back = shared(RETRAIN_LEN, 1280, 20e6, 5e6);
    back[back.length - 1] = { ...back[back.length - 1]!, rxBytes: 3n };
    const r = dispersion(back, 1280, RETRAIN_LEN);
    assert.equal(r.dataBytes, 0);
  });

  it('too few replies, or a span under the stamps\' resolution, measure nothing', () => {
    assert.equal(dispersion(bare(stamps(TRAIN_MIN_REPLIES - 1, 1280, 10e6)), 1280, TRAIN_LEN).bps, null);
    assert.equal(dispersion(bare(Array(TRAIN_LEN).fill(5)), 1280, TRAIN_LEN).bps, null);
    assert.equal(dispersion([], 1280, TRAIN_LEN).bps, null);
  });
});

describe('capacity train: a re-train\'s shape', () => {
  it('about 10 ms of the link at its estimate: 10 to 16 requests of 400 B to the path MTU', () => {
    assert.deepEqual(retrainShape(20e6, 1500), { len: 16, outerBytes: 1500 });
    assert.deepEqual(retrainShape(100e6, 1500), { len: RETRAIN_LEN, outerBytes: 1500 });
    assert.deepEqual(retrainShape(5e6, 1500), { len: 10, outerBytes: 625 });
    assert.deepEqual(retrainShape(2e6, 1500), { len: 10, outerBytes: 400 });
    assert.deepEqual(retrainShape(20e6, 1280), { len: 16, outerBytes: 1280 }, 'the path MTU not confirmed yet');
    assert.deepEqual(retrainShape(0, 300), { len: 10, outerBytes: 300 }, 'never above the path\'s size');
    for (const bps of [1e5, 1e6, 3e6, 8e6, 12e6, 50e6, 1e9]) {
      const r = retrainShape(bps, 1500);
      assert.ok(r.len >= TRAIN_MIN_REPLIES && r.len <= RETRAIN_LEN && r.outerBytes >= 400 && r.outerBytes <= 1500, `${bps}: ${JSON.stringify(r)}`);
    }
  });
});

describe('capacity train: measurement or configured rate', () => {
  it('no configured rate: the measurement; one more than HINT_OFF times off either way: the measurement; else the configured rate stays', () => {
    assert.equal(HINT_OFF, 3);
    assert.ok(startFromTrain(20e6, null));
    assert.ok(startFromTrain(20e6, 200e6), '10x too high');
    assert.ok(startFromTrain(20e6, 2e6), '10x too low');
    assert.ok(startFromTrain(50e6, 10e6), "an asymmetric line's upstream rate taken for its downstream (the RP)");
    for (const hint of [20e6, 10e6, 40e6, 7e6, 59e6]) assert.ok(!startFromTrain(20e6, hint), `${hint}`);
  });
});

describe('capacity train: its life on a link', () => {
  it('sends TRAIN_LEN requests, takes only its own replies, and ends when all are in', () => {
    const t = new Trains();
    assert.ok(t.due(0, 0));
    const seqs = t.start(0, 0, 1280);
    assert.equal(seqs.length, TRAIN_LEN);
    assert.equal(new Set(seqs).size, TRAIN_LEN);
    assert.ok(!t.due(0, 10), 'one at a time');
    const ts = stamps(TRAIN_LEN, 1280, 20e6);
    assert.equal(t.reply(1, seqs[0]!, ts[0]!), false, 'another link');
    assert.equal(t.reply(0, 12345, ts[0]!), false, 'a liveness probe\'s seq');
    seqs.forEach((s, i) => assert.ok(t.reply(0, s, ts[i]!)));
    assert.equal(t.reply(0, seqs[3]!, 1), false, 'a duplicate');
    const done = t.finish(50);
    assert.equal(done.length, 1);
    assert.ok(Math.abs(done[0]!.result.bps! / 20e6 - 1) < 0.01);
    assert.ok(Math.abs(t.result(0)!.bps! / 20e6 - 1) < 0.01);
    assert.ok(!t.due(0, 1e9), 'measured: never again');
    assert.deepEqual(t.finish(1e9), []);
  });

  it('a train whose replies do not all come ends after TRAIN_WAIT_MS; without enough, it is tried again later, TRAIN_TRIES times at most', () => {
    const t = new Trains();
    let now = 0;
    for (let i = 0; i < TRAIN_TRIES; i++) {
      assert.ok(t.due(3, now), `try ${i + 1}`);
      const seqs = t.start(3, now, 1280);
      t.reply(3, seqs[0]!, 100);
      assert.deepEqual(t.finish(now + TRAIN_WAIT_MS - 1), [], 'still waiting');
      const [r] = t.finish(now + TRAIN_WAIT_MS);
      assert.equal(r?.result.bps, null);
      assert.equal(r?.result.replies, 1);
      assert.ok(!t.due(3, now + TRAIN_RETRY_MS - 1), 'not at once');
      now += TRAIN_RETRY_MS;
    }
    assert.ok(!t.due(3, now), 'given up');
    assert.equal(t.result(3), null);
  });

  it('late replies of an older train do not count in the next one', () => {
    const t = new Trains();
    const old = t.start(0, 0, 1280);
    t.finish(TRAIN_WAIT_MS);
    const seqs = t.start(0, TRAIN_RETRY_MS, 1280);
    assert.equal(t.reply(0, old[5]!, 1), false);
    assert.ok(t.reply(0, seqs[5]!, 1));
  });

  it('re-trains: only on a measured link whose controller suspects room, RETRAIN_LEN long, spaced, the spacing doubling while they raise nothing', () => {
    const t = new Trains();
    assert.ok(!t.retrainDue(0, 0, true, 5e6), 'never measured: the first train comes first');
    const first = t.start(0, 0, 1280);
    const ts = stamps(TRAIN_LEN, 1280, 5e6);
    first.forEach((s, i) => t.reply(0, s, ts[i]!));
    t.finish(100);
    assert.ok(!t.retrainDue(0, RETRAIN_MIN_MS, false, 5e6), 'no suspicion: none');
    assert.ok(!t.retrainDue(0, RETRAIN_MIN_MS - 1, true, 5e6), 'not sooner than RETRAIN_MIN_MS after the last');
    assert.ok(t.retrainDue(0, RETRAIN_MIN_MS, true, 5e6));
    let now = RETRAIN_MIN_MS;
    const seqs = t.start(0, now, 1280, true);
    assert.equal(seqs.length, RETRAIN_LEN);
    assert.ok(!t.retrainDue(0, now + 10 * RETRAIN_MIN_MS, true, 5e6), 'one at a time');
    const sh = shared(RETRAIN_LEN, 1280, 20e6, 5e6);
    seqs.forEach((s, i) => assert.ok(t.reply(0, s, sh[i]!.tsUs, sh[i]!.rxBytes)));
    assert.equal(t.reply(0, (seqs[0]! | (RETRAIN_LEN + 1)) >>> 0, 1), false, 'beyond the re-train\'s length');
    const [r] = t.finish(now + 50);
    assert.ok(r!.result.retrain && Math.abs(r!.result.bps! / 20e6 - 1) < 0.01, JSON.stringify(r));
    assert.ok(t.result(0)!.retrain, 'the latest measurement is what status shows');
    // nothing raised: the spacing doubles up to RETRAIN_MAX_MS
    const gaps: number[] = [];
    for (let i = 0; i < 5; i++) {
      t.retrained(0, now, null, 20e6);
      let next = now + 1;
      while (!t.retrainDue(0, next, true, 20e6)) next += 1;
      gaps.push(next - now);
      now = next;
      t.start(0, now, 1280, true);
      t.finish(now + TRAIN_WAIT_MS);
    }
    assert.deepEqual(gaps, [4000, RETRAIN_MAX_MS, RETRAIN_MAX_MS, RETRAIN_MAX_MS, RETRAIN_MAX_MS]);
    t.retrained(0, now, 40e6, 20e6);
    assert.ok(!t.retrainDue(0, now + RETRAIN_MIN_MS - 1, true, 40e6) && t.retrainDue(0, now + RETRAIN_MIN_MS, true, 40e6), 'a raise: back to the minimum');
    t.start(0, now + RETRAIN_MIN_MS, 1280, true);
    now += RETRAIN_MIN_MS;
    t.finish(now + TRAIN_WAIT_MS);
    t.retrained(0, now, null, 20e6);
    assert.ok(!t.retrainDue(0, now + RETRAIN_MIN_MS, true, 20e6), 'spaced 4 s now');
    assert.ok(t.retrainDue(0, now + RETRAIN_MIN_MS, true, 5e6), 'the estimate fell 20 -> 5 Mbit/s since: the spacing starts over');
  });

  it('a raise the link takes back (a token bucket\'s burst read as its rate) does not start the spacing over when the next re-train raises it again', () => {
    const t = new Trains();
    const seqs = t.start(0, 0, 1280);
    const ts = stamps(TRAIN_LEN, 1280, 10e6);
    seqs.forEach((s, i) => t.reply(0, s, ts[i]!));
    t.finish(100);
    let now = RETRAIN_MIN_MS;
    const gapAfter = (raisedBps: number | null, estimateBps: number, nextEstimate: number): number => {
      t.start(0, now, 1280, true);
      t.finish(now + TRAIN_WAIT_MS);
      t.retrained(0, now, raisedBps, estimateBps);
      let next = now + 1;
      while (!t.retrainDue(0, next, true, nextEstimate)) next++;
      const gap = next - now;
      now = next;
      return gap;
    };
    assert.equal(gapAfter(40e6, 10e6, 10e6), RETRAIN_MIN_MS, 'raised 10 -> 40 (the burst)');
    assert.equal(gapAfter(40e6, 10e6, 10e6), 2 * RETRAIN_MIN_MS, 'the estimate was back at 10: the raise did not hold, spaced out');
    assert.equal(gapAfter(40e6, 10e6, 10e6), RETRAIN_MAX_MS);
    assert.equal(gapAfter(40e6, 30e6, 40e6), RETRAIN_MIN_MS, 'this time it held (30 of 40 before the next): the minimum again');
  });

  it('next: the first train while one is due, then a re-train shaped to the estimate where the controller suspects room, else none; a re-train\'s result goes through raise', () => {
    const t = new Trains();
    let asked = 0;
    const suspect = (v: boolean) => () => (asked++, v);
    assert.equal(t.next(0, 0, suspect(true), () => 5e6), 'first');
    assert.equal(asked, 0, 'the controller is not asked while the first train is due');
    const seqs = t.start(0, 0, 1280);
    const ts = stamps(TRAIN_LEN, 1280, 5e6);
    seqs.forEach((s, i) => t.reply(0, s, ts[i]!));
    t.finish(100);
    assert.equal(t.next(0, RETRAIN_MIN_MS, suspect(false), () => 5e6), null);
    assert.deepEqual(t.next(0, RETRAIN_MIN_MS, suspect(true), () => 5e6), { retrain: 5e6 });
    t.start(0, RETRAIN_MIN_MS, 1280, true);
    t.finish(RETRAIN_MIN_MS + TRAIN_WAIT_MS);
    const raisedTo: number[] = [];
    assert.equal(t.takeRetrain(0, RETRAIN_MIN_MS, 20e6, 5e6, (bps) => (raisedTo.push(bps), true)), true);
    assert.deepEqual(raisedTo, [20e6]);
    assert.equal(t.next(0, 2 * RETRAIN_MIN_MS - 1, suspect(true), () => 20e6), null, 'a raise: RETRAIN_MIN_MS to the next');
    assert.deepEqual(t.next(0, 2 * RETRAIN_MIN_MS, suspect(true), () => 20e6), { retrain: 20e6 });
    t.start(0, 2 * RETRAIN_MIN_MS, 1280, true);
    t.finish(2 * RETRAIN_MIN_MS + TRAIN_WAIT_MS);
    assert.equal(t.takeRetrain(0, 2 * RETRAIN_MIN_MS, null, 20e6, () => assert.fail('an inconclusive re-train raises nothing')), false);
    assert.equal(t.next(0, 3 * RETRAIN_MIN_MS, suspect(true), () => 20e6), null, 'nothing raised: the spacing doubled');
    assert.deepEqual(t.next(0, 4 * RETRAIN_MIN_MS, suspect(true), () => 20e6), { retrain: 20e6 });
  });

  it('a send that failed voids the train', () => {
    const t = new Trains();
    const seqs = t.start(0, 0, 1280);
    t.failed(0);
    assert.equal(t.reply(0, seqs[0]!, 1), false);
    assert.deepEqual(t.finish(1e6), []);
    assert.ok(t.due(0, TRAIN_RETRY_MS));
  });
});

describe('capacity train: on the wire', () => {
  const base: Probe = { linkId: 2, reply: false, metric: 0, carrier: 0, probeSeq: 0x8000_0100, sentNs: 5n, rateBps: 0n, owdUs: 0 };
  it('TRAIN and UNRATED go in a request and come back decoded; a reply carries TRAIN only, and its stamp', () => {
    const req = encodeProbe({ ...base, train: true, unrated: true }, 77, 1200);
    assert.equal(req.length, 1200);
    assert.equal(req.readUInt8(MP_HDR_LEN + 3), MP_PROBE_F_TRAIN | MP_PROBE_F_UNRATED);
    const d = decodeProbe(req)!;
    assert.deepEqual([d.train, d.unrated, d.pmtuProbe, d.tsUs], [true, true, false, 77]);
    const rep = decodeProbe(encodeProbe({ ...base, reply: true, train: true, unrated: true }, 4242))!;
    assert.deepEqual([rep.reply, rep.train, rep.unrated, rep.tsUs], [true, true, false, 4242]);
    assert.equal(decodeProbe(encodeProbe(base, 1))!.train, false);
  });

  it('a train reply carries the data bytes the peer had received (rate_bps), any other reply none', () => {
    const rep = decodeProbe(encodeProbe({ ...base, reply: true, train: true, rxBytes: 123_456_789_012n }, 1))!;
    assert.equal(rep.rxBytes, 123_456_789_012n);
    assert.equal(decodeProbe(encodeProbe({ ...base, reply: true, rxBytes: 5n }, 1))!.rxBytes, undefined);
    assert.equal(decodeProbe(encodeProbe({ ...base, train: true, rateBps: 9n }, 1))!.rxBytes, undefined, 'a request: its rate');
  });
});
