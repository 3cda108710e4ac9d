// The LP's run loop (runtime.ts startLocal) over real UDP sockets on loopback, with a fake peer
// that answers every request as the RP's data path does (probe.ts answer: padded to reply_len)
// and a recording fake of the data path. Once a link's path MTUs are confirmed, a probe round
// that is due to confirm them sends the confirm pair (one padded request asking for a padded
// reply) as the link's request of the round, and no liveness request beside it: one request per
// link per round, and the links stay up on the answers (README "Benchmarks", cpu).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { ok } from 'neverthrow';
import { parseConfig } from '../src/config/parse.js';
import * as abi from '../src/datapath/abi.js';
import type { KeysPort } from '../src/security/keys-port.js';
import { answer, decodeProbe, udpOverhead } from '../src/run/probe.js';
import { startLocal, type LinkStatePort } from '../src/run/runtime.js';
import { serial } from './helpers/serial.js';

// it measures time: not beside another such file (helpers/serial.ts)
await serial();

const none = () => ok(null);
const done = () => ok(undefined);
const port: LinkStatePort = {
  setState: done,
  learn: done,
  setEstimate: done,
  alive: done,
  setLinkMtus: done,
  routeMtu: async () => ok(null),
  readRx: none,
  txBytes: () => ok(0n),
  owdUs: none,
  sched: none,
  counters: none,
  setBudget: done,
  peerProbes: () => ok([]),
};
const noKeys: KeysPort = { install: () => ok(undefined) };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('LP: a round that confirms a link\'s path MTUs sends the confirm pair as its request, no liveness request beside it; the links stay up', async () => {
  const p = 20000 + Math.floor(Math.random() * 20000);
  const cfg = parseConfig(
    {
      role: 'local', lan: 'lan', client: '198.51.100.10', gateway: '198.51.100.1', remote: '198.51.100.2', port: p, insecure_no_auth: true,
      probe_interval: '100ms', shape: false, link: [{ interface: 'wan1' }, { interface: 'wan2' }],
    },
    'lp.toml',
  )._unsafeUnwrap();
  assert.ok(cfg.role === 'local');
  // the peer on loopback (a config names an address across the Internet)
  const lp = { ...cfg, remote: ['127.0.0.1'] };
  // the peer: answers every request (as bpf/probe.h does) and records when each arrived
  const peer = createSocket('udp4');
  await new Promise<void>((r) => peer.bind(p, '127.0.0.1', () => r()));
  // at: when the LP sent it (the request's own stamp, ms): arrivals here are read by this
  // process's event loop, which a machine stall bunches (two sent 90 ms apart read 2.3 ms apart)
  const seen: { link: number; at: number; size: boolean }[] = [];
  peer.on('message', (m, ri) => {
    const q = decodeProbe(m);
    if (!q || q.reply) return;
    // a capacity train (the config names no rate) is answered, stamped, and not a round's request
    if (!q.train) seen.push({ link: q.linkId, at: Number(q.sentNs) / 1e6, size: Boolean(q.pmtuProbe) });
    peer.send(answer(q, udpOverhead(4), Math.round(performance.now() * 1000)), ri.port, ri.address);
  });
  const sources = new Map([
    [0, '127.0.0.2'],
    [1, '127.0.0.3'],
  ]);
  const started = await startLocal(lp, sources, port, { local: null, peer: null, keys: noKeys }, () => {});
  if (started.isErr()) peer.close(); // or the open socket keeps the test file, and the suite, running
  const r = started._unsafeUnwrap();
  try {
    // both links up and their searches settled (confirmed both ways)
    const settled = () => r.status().every((s) => s.state === 'up' && s.pmtu && 'up' in s.pmtu && s.pmtu.up.mode === 'confirmed' && s.pmtu.down.mode === 'confirmed');
    for (let i = 0; i < 300 && !settled(); i++) await sleep(10);
    assert.ok(settled(), JSON.stringify(r.status()));
    const first = seen.length;
    await sleep(2000);
    const win = seen.slice(first);
    const from = win[0]?.at ?? 0;
    for (const id of [0, 1]) {
      const mine = win.filter((s) => s.link === id);
      // confirm probes every third round (CONFIRM_MS 250 on the 100 ms grid): ~6 in 2 s
      assert.ok(mine.filter((s) => s.size).length >= 3, `link ${id}: confirm requests ${JSON.stringify(mine)}`);
      // one request a round: never two on the link in the same wake (those are stamped within
      // microseconds of each other; a confirm pair due on its own wake, which a stall made late,
      // may leave a few milliseconds before the round's request)
      for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.at - mine[i - 1]!.at > 1, `link ${id}: two requests sent ${(mine[i]!.at - mine[i - 1]!.at).toFixed(1)} ms apart: ${JSON.stringify(mine.slice(Math.max(0, i - 4), i + 2).map((s) => [Math.round(s.at - from), s.size]))}`);
    }
    assert.ok(r.status().every((s) => s.state === 'up'), 'the answers to the confirm pairs keep the links up');
  } finally {
    await r.stop();
    peer.close();
  }
});
