// The RP's running loop (runtime.ts) over a real UDP socket on loopback with a recording fake of
// the data path: the LP's probe requests are verified and answered by the data path (bpf/probe.h,
// test/probe-answer.test.ts), which records them in mp_peer_probe; the fake's table stands for
// that map. The loop learns a link from what is recorded there, confirms a pending session by it,
// sends requests of its own when the LP's stop, and an administratively down link stays down
// whatever liveness says until it is taken up again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { ok } from 'neverthrow';
import { parseConfig } from '../src/config/parse.js';
import type { RemoteConfig } from '../src/config/types.js';
import * as abi from '../src/datapath/abi.js';
import type { KeysPort } from '../src/security/keys-port.js';
import { decodeProbe, encodeProbe } from '../src/run/probe.js';
import { aliveWriter, startRemote, Tracker, type LinkStatePort } from '../src/run/runtime.js';
import { createInitiation, consumeResponse } from '../src/security/handshake.js';
import { generatePrivateKey, staticKeys } from '../src/security/keys.js';
import { sign } from '../src/security/mac.js';
import { serial } from './helpers/serial.js';

// it measures time: not beside another such file (helpers/serial.ts)
await serial();

class FakePort implements LinkStatePort {
  states: [number, string][] = [];
  learned: number[] = [];
  /** per learn: the budget line written with it (undefined: left as it was) */
  lines: (bigint | undefined)[] = [];
  setState(id: number, s: string) {
    this.states.push([id, s]);
    return ok(undefined);
  }
  learn(id: number, _from: unknown, est: { budgetBytes?: bigint }) {
    this.learned.push(id);
    this.lines.push(est.budgetBytes);
    return ok(undefined);
  }
  setEstimate() {
    return ok(undefined);
  }
  /** heartbeats written (mp_config.alive_ns) */
  alives = 0;
  alive() {
    this.alives++;
    return ok(undefined);
  }
  setLinkMtus() {
    return ok(undefined);
  }
  async routeMtu() {
    return ok(null);
  }
  readRx() {
    return ok(null);
  }
  txBytes() {
    return ok(0n);
  }
  owdUs() {
    return ok(null);
  }
  sched() {
    return ok(null);
  }
  counters() {
    return ok(null);
  }
  setBudget() {
    return ok(undefined);
  }
  /** mp_peer_probe as the data path writes it */
  readonly probes = new Map<number, abi.MpPeerProbe>();
  peerProbes() {
    return ok(Array.from({ length: abi.MP_MAX_LINKS }, (_, id) => this.probes.get(id) ?? null));
  }
  /** the data path verified and answered request `msg` (header + body) from `from` */
  record(msg: Buffer, from: { address: string; port: number }) {
    const id = abi.decodeHdr(msg).linkId;
    const n = (this.probes.get(id)?.requests ?? 0n) + 1n;
    this.probes.set(id, { msg: Buffer.from(msg.subarray(0, abi.MP_PROBE_LEN)), rxNs: process.hrtime.bigint(), requests: n, answered: n, from: abi.hostAddr(from.address), port: from.port, reqLen: 28 + msg.length });
  }
}

const noKeys: KeysPort = { install: () => ok(undefined) };
const quiet = () => {};
const port = () => 20000 + Math.floor(Math.random() * 20000);

function rpConfig(p: number, extra: Record<string, unknown>): RemoteConfig {
  const c = parseConfig({ role: 'remote', wan: 'wan', client: '198.51.100.10', port: p, probe_interval: '20ms', shape: false, ...extra }, 'rp.toml')._unsafeUnwrap();
  assert.ok(c.role === 'remote');
  return c;
}

async function lpSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

const probe = (linkId: number, adminDown = false) =>
  encodeProbe({ linkId, reply: false, metric: 0, carrier: abi.MP_CARRIER_UDP, probeSeq: 1, sentNs: 1n, rateBps: 10_000_000n, owdUs: 1000, adminDown }, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
};

/** A request of the RP's own (liveness): not a capacity train's (train.ts: the RP measures every
 * link once it is up, whatever the LP's control plane does) */
const isProbe = (m: Buffer) => abi.decodeHdr(m).type === abi.MP_T_PROBE && !decodeProbe(m)?.train;

/** A signed RP's run loop over the recording fake, on a hand-driven clock (it moves only when the
 * test calls advance(); the timers still tick), and the LP's socket on loopback with its inbox. */
async function startRpWithLp() {
  const lp = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const rp = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const p = port();
  const fake = new FakePort();
  let clockNs = process.hrtime.bigint();
  const clock = { ns: () => clockNs };
  const r = (await startRemote(rpConfig(p, { private_key: '/k', peer_public_key: lp.publicB64 }), fake, { local: rp, peer: lp.public, keys: noKeys }, quiet, clock))._unsafeUnwrap();
  const sock = await lpSocket();
  const from = { address: '127.0.0.1', port: sock.address().port };
  const inbox: Buffer[] = [];
  sock.on('message', (m) => inbox.push(m));
  const send = (m: Buffer) => sock.send(m, p, '127.0.0.1');
  return {
    r,
    fake,
    from,
    inbox,
    send,
    advance: (ns: bigint) => {
      clockNs += ns;
    },
    /** the handshake over the socket (the RP's session waits for the LP to use it): the LP's keys */
    handshake: async (keyId: number) => {
      const init = createInitiation(lp, rp.public, Date.now(), undefined, { keyId });
      send(init.message);
      await waitFor(() => inbox.length === 1);
      return consumeResponse(init.state, inbox.shift()!, Date.now())._unsafeUnwrap();
    },
    close: async () => {
      sock.close();
      await r.stop();
    },
  };
}

test('RP: a link is learned from the requests the data path verified, which confirm the session; when they stop the RP sends its own, signed', async () => {
  const { r, fake, from, inbox, send, advance, handshake, close } = await startRpWithLp();
  try {
    // a request that reaches the socket (the data path let it through: not authentic) is refused
    send(probe(0));
    await waitFor(() => (r.security().rejected.no_key ?? 0) === 1);

    // the handshake over the socket; the session waits for the LP to use it
    const session = await handshake(42);
    assert.equal(r.security().keyId, null, 'pending: the RP does not send yet');
    assert.deepEqual(fake.learned, [], 'nothing learned yet');

    // the data path answered a request under the new key and recorded it
    fake.record(sign(probe(0), session.lpToRp, 42, 1), from);
    await waitFor(() => fake.learned.length === 1);
    assert.deepEqual(fake.learned, [0]);
    assert.equal(r.security().keyId, 42, 'confirmed by the request the data path verified');
    assert.ok(fake.states.some(([id, s]) => id === 0 && s === 'up'), 'heard: up');
    await sleep(60);
    assert.deepEqual(fake.learned, [0], 'the same record is taken once');
    assert.ok(!inbox.some(isProbe), '3 intervals went by, but not on the clock: the LP is not silent yet');

    // no further request from the LP for 2 intervals (its control plane is gone): the RP asks itself
    advance(40_000_000n);
    await waitFor(() => inbox.some(isProbe));
    const own = inbox.find(isProbe)!;
    const h = abi.decodeHdr(own);
    assert.equal(h.keyId, 42);
    assert.ok(sign(Buffer.from(own), session.rpToLp, 42, h.seq).equals(own), 'signed with the RP→LP key');
    const q = decodeProbe(own)!;
    assert.deepEqual([q.reply, q.linkId], [false, 0], 'a request on link 0');

    // the LP's data path answers it (MP_HDR_F_DP, its data seq): heard, with a round trip
    const heard = r.status().find((s) => s.id === 0)!.probesHeard;
    const reply = encodeProbe({ ...q, reply: true, reqLen: 92 }, 0);
    reply.writeUInt8(abi.MP_HDR_F_DP, 1);
    advance(7_000_000n); // the round trip, on the run loop's clock
    send(sign(reply, session.lpToRp, 42, 900_000));
    await waitFor(() => r.status().find((s) => s.id === 0)!.probesHeard > heard);
    assert.equal(r.status().find((s) => s.id === 0)!.rttMs, 7, 'the round trip by the clock');
    assert.equal(r.security().rejected.replay, undefined, 'the data seq space is its own window');
  } finally {
    await close();
  }
});

test('RP: the LP’s size probes (the last request the map kept) show its control plane alive: no requests of its own', async () => {
  const { fake, from, inbox, advance, handshake, close } = await startRpWithLp();
  try {
    const session = await handshake(43);
    let seq = 1;
    fake.record(sign(probe(0), session.lpToRp, 43, seq++), from);
    await waitFor(() => fake.learned.length === 1);
    const size = encodeProbe({ linkId: 0, reply: false, metric: 0, carrier: abi.MP_CARRIER_UDP, probeSeq: 0x8000_0001, sentNs: 1n, rateBps: 0n, owdUs: 0, pmtuProbe: true, replyLen: 1400 }, 0);
    // 6 intervals (20 ms) in which the map shows only the LP's size probes: no request of ours
    for (let i = 0; i < 6; i++) {
      advance(20_000_000n);
      fake.record(sign(Buffer.from(size), session.lpToRp, 43, seq++), from);
      await sleep(30);
    }
    assert.ok(!inbox.some(isProbe), 'the LP is not silent: the RP sends no request of its own');
    // nothing at all for 2 intervals: the RP asks itself
    advance(40_000_000n);
    await waitFor(() => inbox.some(isProbe));
  } finally {
    await close();
  }
});

test('setAdmin: an administratively down link stays down while probes arrive, and comes back on setAdmin(false)', async () => {
  const p = port();
  const fake = new FakePort();
  const r = (await startRemote(rpConfig(p, { insecure_no_auth: true }), fake, { local: null, peer: null, keys: noKeys }, quiet))._unsafeUnwrap();
  assert.equal(r.security().mode, 'insecure-no-auth');
  const sock = await lpSocket();
  const keepProbing = setInterval(() => fake.record(probe(3), { address: '127.0.0.1', port: sock.address().port }), 10);
  try {
    await waitFor(() => fake.states.some(([id, s]) => id === 3 && s === 'up'));
    assert.ok(r.setAdmin(3, true).isOk());
    const mark = fake.states.length;
    await sleep(150); // 7 probe intervals of liveness with probes arriving
    assert.deepEqual(fake.states.slice(mark - 1), [[3, 'admin-down']], 'liveness did not touch it');
    assert.ok(r.setAdmin(3, false).isOk());
    assert.deepEqual(fake.states.at(-1), [3, 'up'], 'back to its liveness at once');
    assert.ok(r.setAdmin(16, true).isErr(), 'no such link');
  } finally {
    clearInterval(keepProbing);
    sock.close();
    await r.stop();
  }
});

test("RP: the LP's admin-down flag in its probes takes the link out of the RP's sending too, and its absence brings it back", async () => {
  const p = port();
  const fake = new FakePort();
  const r = (await startRemote(rpConfig(p, { insecure_no_auth: true }), fake, { local: null, peer: null, keys: noKeys }, quiet))._unsafeUnwrap();
  const sock = await lpSocket();
  let adminDown = false;
  // the requests as the data path records them (bpf/probe.h): the flag comes in the verified probe
  const keepProbing = setInterval(() => fake.record(probe(2, adminDown), { address: '127.0.0.1', port: sock.address().port }), 10);
  try {
    await waitFor(() => fake.states.some(([id, s]) => id === 2 && s === 'up'));
    adminDown = true;
    await waitFor(() => fake.states.at(-1)?.[1] === 'admin-down');
    const mark = fake.states.length;
    await sleep(150); // probes keep arriving, flagged: liveness leaves it down
    assert.deepEqual(fake.states.slice(mark - 1), [[2, 'admin-down']]);
    // the RP's own operator holds it too: the LP's "up" alone does not bring it back
    assert.ok(r.setAdmin(2, true).isOk());
    adminDown = false;
    await sleep(100);
    assert.equal(fake.states.at(-1)?.[1], 'admin-down', "the RP operator's hold stays");
    assert.ok(r.setAdmin(2, false).isOk());
    assert.deepEqual(fake.states.at(-1), [2, 'up'], 'back once neither holds it');
  } finally {
    clearInterval(keepProbing);
    sock.close();
    await r.stop();
  }
});

test("RP: a probe's budget allowance becomes the link's budget line, written with the link; none: uncapped; a stale probe leaves it", async () => {
  const p = port();
  const fake = new FakePort();
  const r = (await startRemote(rpConfig(p, { insecure_no_auth: true }), fake, { local: null, peer: null, keys: noKeys }, quiet))._unsafeUnwrap();
  const sock = await lpSocket();
  const send = (seq: number, budgetBytes: number | null) =>
    fake.record(encodeProbe({ linkId: 2, reply: false, metric: 0, carrier: abi.MP_CARRIER_UDP, probeSeq: seq, sentNs: 1n, rateBps: 10_000_000n, owdUs: 1000, budgetBytes }, 0), { address: '127.0.0.1', port: sock.address().port });
  try {
    send(1, 2048 * 1024);
    await waitFor(() => fake.lines.length === 1);
    assert.equal(fake.lines[0], 2048n * 1024n, 'nothing sent yet: the line is the allowance');
    send(2, 0);
    await waitFor(() => fake.lines.length === 2);
    assert.equal(fake.lines[1], 1n, 'spent: a line of 1 byte (0 would mean no budget)');
    send(1, 4096 * 1024);
    await waitFor(() => fake.lines.length === 3);
    assert.equal(fake.lines[2], undefined, 'an older round: the line stays');
    send(3, null);
    await waitFor(() => fake.lines.length === 4);
    assert.equal(fake.lines[3], 0n, 'no budget advertised: not capped');
  } finally {
    sock.close();
    await r.stop();
  }
});

test('the run loop on a hand-driven clock: up when heard, down after 3 silent intervals, an admin hold outlasts both', () => {
  const fake = new FakePort();
  let now = 1_000;
  const t = new Tracker([0, 1], fake as unknown as LinkStatePort, { intervalMs: 100, missed: 3 }, quiet, () => now);
  t.hear(0);
  assert.deepEqual(fake.states, [[0, 'up']], 'link 1, never heard, stays down unwritten');
  now += 300;
  t.evaluate();
  assert.equal(t.state.get(0), 'up', 'three intervals: still up');
  now += 1;
  t.evaluate();
  assert.deepEqual(fake.states.at(-1), [0, 'down'], 'past three intervals without an answer: down');
  t.hear(0);
  assert.deepEqual(fake.states.at(-1), [0, 'up'], 'an answer brings it back at once');
  assert.ok(t.setAdmin(0, true, 'peer').isOk());
  now += 10_000;
  t.hear(0);
  assert.deepEqual(fake.states.at(-1), [0, 'admin-down'], 'heard or not, the hold keeps it down');
  assert.ok(t.setAdmin(0, false, 'peer').isOk());
  assert.deepEqual(fake.states.at(-1), [0, 'up']);
});

test('fastDown holds a link down until a probe after it; fastUp (its data arrived after all) brings it back at once, and the wrong verdict does not lengthen the next hold', () => {
  const fake = new FakePort();
  let now = 1_000;
  const t = new Tracker([0, 1], fake as unknown as LinkStatePort, { intervalMs: 100, missed: 3 }, quiet, () => now);
  const ups: number[] = [];
  t.onUp = (id) => ups.push(id);
  t.hear(0);
  t.hear(1);
  now += 5_000; // up for a while (a link that dies within 2 s of coming up is held: nextHoldMs)
  t.hear(0);
  t.hear(1);
  t.fastDown(1);
  assert.deepEqual(fake.states.at(-1), [1, 'down'], 'the data says dead: down at once');
  now += 10;
  t.evaluate();
  assert.equal(t.state.get(1), 'down', 'no probe heard since: still down');
  t.fastUp(1);
  assert.deepEqual(fake.states.at(-1), [1, 'up'], 'its data arrived: up without waiting for a probe');
  assert.deepEqual(ups, [0, 1, 1]);
  t.fastUp(1);
  t.fastUp(0);
  assert.equal(fake.states.filter(([id]) => id === 1).length, 3, 'fastUp of a link that is up changes nothing');
  // a real cut 100 ms after that return: the first fast-down's hold (0), not a doubled one
  now += 100;
  t.fastDown(1);
  now += 1;
  t.hear(1);
  assert.deepEqual(fake.states.at(-1), [1, 'up'], 'the next probe brings it back: no hold, the first verdict did not count');
  // while a second one within 2 s of that return does hold it (nextHoldMs)
  now += 100;
  t.fastDown(1);
  now += 1;
  t.hear(1);
  assert.deepEqual(fake.states.at(-1), [1, 'down'], 'held: a link that keeps dying');
  // and fastUp never brings back a link the probes call down
  now += 10_000;
  t.evaluate();
  t.fastUp(1);
  assert.equal(t.state.get(1), 'down', 'silent for 10 s: the probes keep it down');
});

test('the heartbeat: written on a wake 195 ms or more after the last write, never more than 250 ms after it (the loop wakes for it)', () => {
  let now = 1000;
  const writes: number[] = [];
  const hb = aliveWriter({ alive: () => (writes.push(now), ok(undefined)) }, () => {}, () => now);
  // wakes every 100 ms (the default probe interval): every second one writes
  for (let i = 0; i < 10; i++, now += 100) hb.beat();
  assert.deepEqual(writes, [1000, 1200, 1400, 1600, 1800]);
  // a wake 2 ms early still writes
  now = 1998;
  hb.beat();
  assert.equal(writes.at(-1), 1998);
  // a long probe interval (1 s): the loop is told to wake 250 ms after the last write at the latest
  now = 2100;
  hb.beat();
  assert.equal(writes.at(-1), 1998, 'too soon after the last write');
  assert.equal(hb.at(5000), 5000 + 148, 'on the caller\'s clock: 250 ms after the write');
  now = 2248;
  assert.equal(hb.at(7000), 7000);
  hb.beat();
  assert.equal(writes.at(-1), 2248);
  // the data path takes the heartbeat as gone after MP_ALIVE_NS: the writes keep well inside it
  const gaps = writes.slice(1).map((w, i) => w - writes[i]!);
  assert.ok(gaps.every((g) => g <= abi.MP_ALIVE_NS / 1e6 / 2), `gaps ${gaps.join(', ')} ms`);
});
