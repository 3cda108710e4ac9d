// Capacity trains (src/run/train.ts): the rate from the peer's arrival stamps, and a train's life.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dispersion, HINT_OFF, startFromTrain, TRAIN_LEN, TRAIN_MIN_REPLIES, TRAIN_RETRY_MS, TRAIN_TRIES, TRAIN_WAIT_MS, Trains } from '../src/run/train.js';
import { decodeProbe, encodeProbe, type Probe } from '../src/run/probe.js';
import { MP_HDR_LEN, MP_PROBE_F_TRAIN, MP_PROBE_F_UNRATED } from '../src/datapath/abi.js';

/** The stamps a link of `bps` gives `n` back-to-back packets of `bytes`, from `t0` (u32 µs). */
const stamps = (n: number, bytes: number, bps: number, t0 = 1000): number[] => Array.from({ length: n }, (_, i) => (t0 + Math.round((i * bytes * 8 * 1e6) / bps)) >>> 0);

describe('capacity train: the rate', () => {
  it('is (replies - 1) x size over the span of the stamps', () => {
    for (const bps of [4e6, 10e6, 30e6, 300e6]) {
      const r = dispersion(stamps(TRAIN_LEN, 1280, bps), 1280, TRAIN_LEN);
      assert.ok(Math.abs(r.bps! / bps - 1) < 0.01, `${bps}: ${r.bps}`);
      assert.equal(r.replies, TRAIN_LEN);
    }
  });

  it('holds across the wrap of the peer\'s µs clock, and whatever the clock\'s offset', () => {
    const r = dispersion(stamps(TRAIN_LEN, 1500, 20e6, 0xffff_f000), 1500, TRAIN_LEN);
    assert.ok(Math.abs(r.bps! / 20e6 - 1) < 0.01, String(r.bps));
  });

  it('the train\'s tail lost (a full buffer): the packets that got through still give the rate', () => {
    const r = dispersion(stamps(TRAIN_LEN, 1280, 4e6).slice(0, 12), 1280, TRAIN_LEN);
    assert.ok(Math.abs(r.bps! / 4e6 - 1) < 0.01, String(r.bps));
    assert.deepEqual([r.replies, r.sent], [12, TRAIN_LEN]);
  });

  it('too few replies, or a span under the stamps\' resolution, measure nothing', () => {
    assert.equal(dispersion(stamps(TRAIN_MIN_REPLIES - 1, 1280, 10e6), 1280, TRAIN_LEN).bps, null);
    assert.equal(dispersion(Array(TRAIN_LEN).fill(5), 1280, TRAIN_LEN).bps, null);
    assert.equal(dispersion([], 1280, TRAIN_LEN).bps, null);
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
});
