// The RP's running loop (runtime.ts) over a real UDP socket on loopback with a recording fake of
// the data path: it learns a link only from an authenticated probe, answers nothing without a
// session, and an administratively down link stays down whatever liveness says until it is
// taken up again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { ok } from 'neverthrow';
import { parseConfig } from '../src/config/parse.js';
import type { RemoteConfig } from '../src/config/types.js';
import * as abi from '../src/datapath/abi.js';
import type { KeysPort } from '../src/portal/keys-port.js';
import { encodeProbe } from '../src/portal/probe.js';
import { startRemote, type LinkStatePort } from '../src/portal/runtime.js';
import { createInitiation, consumeResponse } from '../src/security/handshake.js';
import { generatePrivateKey, staticKeys } from '../src/security/keys.js';
import { sign } from '../src/security/mac.js';

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
}

const noKeys: KeysPort = { install: () => ok(undefined) };
const quiet = () => {};
const port = () => 20000 + Math.floor(Math.random() * 20000);

function rpConfig(p: number, extra: Record<string, unknown>): RemoteConfig {
  const c = parseConfig({ role: 'remote', wan: 'wan', client: '198.51.100.10', port: p, probe_interval: '20ms', ...extra }, 'rp.toml')._unsafeUnwrap();
  assert.ok(c.role === 'remote');
  return c;
}

async function lpSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

const probe = (linkId: number) => encodeProbe({ linkId, reply: false, metric: 0, carrier: abi.MP_CARRIER_UDP, probeSeq: 1, sentNs: 1n, rateBps: 10_000_000n, owdUs: 1000 }, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
};

test('RP: a link is learned only from an authenticated probe; the answer is signed with the session key', async () => {
  const lp = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const rp = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const p = port();
  const fake = new FakePort();
  const r = (await startRemote(rpConfig(p, { private_key: '/k', peer_public_key: lp.publicB64 }), fake, { local: rp, peer: lp.public, keys: noKeys }, quiet))._unsafeUnwrap();
  const sock = await lpSocket();
  const inbox: Buffer[] = [];
  sock.on('message', (m) => inbox.push(m));
  try {
    // before any handshake: an unsigned probe and one signed with a made-up key are refused
    sock.send(probe(0), p, '127.0.0.1');
    sock.send(sign(probe(0), Buffer.alloc(16, 7), 9, 1), p, '127.0.0.1');
    await waitFor(() => (r.security().rejected.no_key ?? 0) === 2);
    assert.deepEqual(fake.learned, [], 'nothing learned from them');
    assert.equal(inbox.length, 0, 'nothing answered');

    // the handshake over the same socket, then a signed probe
    const init = createInitiation(lp, rp.public, Date.now(), undefined, { keyId: 42 });
    sock.send(init.message, p, '127.0.0.1');
    await waitFor(() => inbox.length === 1);
    const session = consumeResponse(init.state, inbox.shift()!, Date.now())._unsafeUnwrap();
    assert.equal(r.security().keyId, null, 'pending: the RP does not send yet');
    const forged = sign(probe(0), session.lpToRp, 42, 1);
    forged[30] = forged[30]! ^ 0x40;
    sock.send(forged, p, '127.0.0.1');
    await waitFor(() => r.security().rejected.bad_mac === 1);
    assert.deepEqual(fake.learned, []);
    sock.send(sign(probe(0), session.lpToRp, 42, 2), p, '127.0.0.1');
    await waitFor(() => inbox.length === 1);
    assert.deepEqual(fake.learned, [0]);
    const reply = inbox.shift()!;
    assert.equal(abi.decodeHdr(reply).keyId, 42, 'confirmed: the reply goes under the new session');
    assert.equal(abi.decodeHdr(reply).seq, 1);
    assert.ok(sign(Buffer.from(reply), session.rpToLp, 42, 1).equals(reply), 'signed with the RP→LP key');
    // the same probe again is a replay: not learned again, not answered
    sock.send(sign(probe(0), session.lpToRp, 42, 2), p, '127.0.0.1');
    await waitFor(() => r.security().rejected.replay === 1);
    assert.deepEqual(fake.learned, [0]);
    const s = r.security();
    assert.equal(s.handshakes, 1);
    assert.equal(s.responsesSent, 1);
    assert.equal(s.peer, lp.publicB64);
  } finally {
    sock.close();
    await r.stop();
  }
});

test('setAdmin: an administratively down link stays down while probes arrive, and comes back on setAdmin(false)', async () => {
  const p = port();
  const fake = new FakePort();
  const r = (await startRemote(rpConfig(p, { insecure_no_auth: true }), fake, { local: null, peer: null, keys: noKeys }, quiet))._unsafeUnwrap();
  assert.equal(r.security().mode, 'insecure-no-auth');
  const sock = await lpSocket();
  const keepProbing = setInterval(() => sock.send(probe(3), p, '127.0.0.1'), 10);
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

test("RP: a probe's budget allowance becomes the link's budget line, written with the link; none: uncapped; a stale probe leaves it", async () => {
  const p = port();
  const fake = new FakePort();
  const r = (await startRemote(rpConfig(p, { insecure_no_auth: true }), fake, { local: null, peer: null, keys: noKeys }, quiet))._unsafeUnwrap();
  const sock = await lpSocket();
  const send = (seq: number, budgetBytes: number | null) =>
    sock.send(encodeProbe({ linkId: 2, reply: false, metric: 0, carrier: abi.MP_CARRIER_UDP, probeSeq: seq, sentNs: 1n, rateBps: 10_000_000n, owdUs: 1000, budgetBytes }, 0), p, '127.0.0.1');
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
