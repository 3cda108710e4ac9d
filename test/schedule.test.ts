// The scheduler's tiers and byte budgets (bpf/schedule.h) through BPF_PROG_TEST_RUN on encap:
// which link each packet goes out on, and what mp_sched counts. No interfaces needed (the
// redirect helpers only record their target in test runs). Run as root:
//   node --import tsx --test test/schedule.test.ts

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bpfClose, progTestRun } from '../src/native/libmpctl.js';
import {
  decodeHdr,
  decodeLinkStats,
  decodeSched,
  encodeConfig,
  encodeEndpoint,
  encodeLink,
  hostAddr,
  MP_CARRIER_UDP,
  MP_CFG_ACKS_EARLIEST,
  MP_CFG_NO_AUTH,
  MP_LINK_DOWN,
  MP_ALIVE_NS,
  MP_HOLD_QUEUE_NS,
  MP_LINK_F_HELD,
  MP_LINK_F_NO_ACKS,
  MP_LINK_UP,
  NO_ADDR,
} from '../src/datapath/abi.js';
import { packagePath } from '../src/paths.js';
import { must, openObject, type ObjMaps } from './helpers/maps.js';
import { LP_CONFIG, RP_PORT } from './helpers/lp-config.js';
import { ACK, FIN, ipPacket, ipSpec, parseIp, PSH, RST, SYN, tcp } from './helpers/packet.js';
import { serial } from './helpers/serial.js';

// the data path's scheduling reads the clock between packets: not beside another test file
// (helpers/serial.ts; beside one, datapath's 'equal links alternate' met a later clock in a CI run)
await serial();

const TC_ACT_REDIRECT = 7;
const TC_ACT_SHOT = 2;
const LP_SRC = '198.51.100.1';
const RP = '203.0.113.1';

// a client packet of 1000 B TCP payload: 1040 B inner, 1092 B outer on an IPv4/UDP link
const inner = ipPacket(ipSpec('10.9.0.2', '192.0.2.10'), tcp({ sport: 33333, dport: 80, flags: ACK, payload: Buffer.alloc(1000, 3) }));
const OUTER = inner.length + 20 + 8 + 24;
const frame = Buffer.concat([Buffer.from('02000000000b02000000000a0800', 'hex'), inner]);

let obj: ObjMaps;

before(() => {
  obj = openObject(process.env.MPCTL_BPF_OBJ ?? packagePath('build', 'bpf', 'mpctl.o'));
});
after(() => {
  if (obj) bpfClose(obj.handle);
});

/** Unauthenticated LP (MP_CFG_NO_AUTH: no key needed) with no links; aliveNs: the control
 * plane's heartbeat (mp_config.alive_ns; 0: never written). */
function reset(extraFlags = 0, aliveNs = 0n): void {
  obj.zero();
  obj.put(
    'config',
    0,
    encodeConfig({ ...LP_CONFIG, flags: MP_CFG_NO_AUTH | extraFlags, aliveNs }),
  );
}

function setLink(id: number, o: { metric?: number; state?: number; rateBps?: bigint; owdUs?: number; budgetBytes?: bigint; flags?: number; holdKbps?: number; planCapMs?: number } = {}): void {
  obj.put(
    'links',
    id,
    encodeLink({
      ifindex: 100 + id,
      state: o.state ?? MP_LINK_UP,
      carrier: MP_CARRIER_UDP,
      metric: o.metric ?? 0,
      flags: o.flags ?? 0,
      mtu: 1500,
      owdUs: o.owdUs ?? 10_000,
      rateBps: o.rateBps ?? 10_000_000n,
      local: hostAddr(LP_SRC),
      nexthop: NO_ADDR,
      localPort: 40000 + id,
      budgetBytes: o.budgetBytes ?? 0n,
      holdKbps: o.holdKbps ?? 0,
      planCapMs: o.planCapMs ?? 0,
    }),
  );
  obj.put('endpoints', id, encodeEndpoint({ addr: hostAddr(RP), port: RP_PORT, valid: true, updatedNs: 0n }));
}

/** Sends n packets (default: the 1040 B data segment); the link of each (-1: dropped). */
function send(n: number, f: Buffer = frame): number[] {
  const used: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = must(progTestRun(obj.handle, 'encap', f, { dataOutSize: f.length + 512 }));
    if ((r.retval | 0) !== TC_ACT_REDIRECT) {
      assert.equal(r.retval | 0, TC_ACT_SHOT);
      used.push(-1);
      continue;
    }
    const ip = parseIp(r.dataOut);
    used.push(decodeHdr(r.dataOut.subarray(ip.l4 + 8)).linkId);
  }
  return used;
}

const on = (used: number[], id: number) => used.filter((x) => x === id).length;
const sched = () => decodeSched(obj.get('sched', 0));

describe('scheduler: byte budgets', () => {
  it('counts the outer IP bytes scheduled on each link', () => {
    reset();
    setLink(0);
    setLink(1);
    const used = send(10);
    const s = sched();
    assert.equal(s.sentBytes[0], BigInt(on(used, 0) * OUTER));
    assert.equal(s.sentBytes[1], BigInt(on(used, 1) * OUTER));
    assert.equal(decodeLinkStats(obj.get('linkStats', 0)).txBytes, s.sentBytes[0], 'the same bytes as the link counters');
  });

  it('skips a link once it has sent its budget; the packet that crosses the line is the last', () => {
    reset();
    setLink(0, { budgetBytes: BigInt(3 * OUTER - 1), rateBps: 1_000_000_000n }); // far faster: everything goes here while it may
    setLink(1);
    const used = send(10);
    assert.deepEqual(used.slice(0, 3), [0, 0, 0], used.join(' '));
    assert.equal(on(used, 0), 3, `link 0 after its budget: ${used.join(' ')}`);
    assert.equal(on(used, 1), 7);
    assert.equal(sched().sentBytes[0], BigInt(3 * OUTER));
  });

  it('a budget of exactly n packets carries n; raising it (a new period) brings the link back', () => {
    reset();
    setLink(0, { budgetBytes: BigInt(2 * OUTER), rateBps: 1_000_000_000n });
    setLink(1);
    assert.equal(on(send(6), 0), 2);
    setLink(0, { budgetBytes: BigInt(4 * OUTER), rateBps: 1_000_000_000n });
    assert.equal(on(send(6), 0), 2, 'two more packets of budget');
    setLink(0, { budgetBytes: 0n, rateBps: 1_000_000_000n });
    assert.equal(on(send(6), 0), 6, 'budget 0: unlimited');
  });

  it('a spent primary hands over to the backup tier; with every link spent, nothing is sent', () => {
    reset();
    setLink(0, { metric: 0, budgetBytes: BigInt(OUTER) });
    setLink(1, { metric: 1 });
    assert.deepEqual(send(4), [0, 1, 1, 1]);
    setLink(1, { metric: 1, budgetBytes: BigInt(3 * OUTER) });
    assert.deepEqual(send(3), [-1, -1, -1], 'both spent: dropped (no link)');
    assert.ok(obj.drops().no_link >= 3n);
  });
});

describe('scheduler: metric tiers', () => {
  it('the backup tier carries zero bytes while a primary is up, and everything when none is', () => {
    reset();
    setLink(0, { metric: 0, rateBps: 1_000_000n, owdUs: 50_000 }); // slow and far
    setLink(1, { metric: 5, rateBps: 1_000_000_000n, owdUs: 1 }); // fast and near: a backup
    assert.equal(on(send(50), 1), 0);
    assert.equal(sched().sentBytes[1], 0n);
    setLink(0, { metric: 0, state: MP_LINK_DOWN });
    assert.deepEqual([...new Set(send(5))], [1]);
  });
});

const eth = (ipv6: boolean) => Buffer.from(`02000000000b02000000000a${ipv6 ? '86dd' : '0800'}`, 'hex');
const segment = (flags: number, payload = 0, v6 = false) =>
  Buffer.concat([
    eth(v6),
    ipPacket(v6 ? ipSpec('2001:db8:9::2', '2001:db8:1::10') : ipSpec('10.9.0.2', '192.0.2.10'), tcp({ sport: 33333, dport: 80, flags, payload: Buffer.alloc(payload, 7) })),
  ]);
const pureAck = segment(ACK);

describe('scheduler: pure TCP ACKs take the slowest link', () => {
  // 20 Mbit/10 ms and 20 Mbit/60 ms: data lands first on link 0, ACKs go to link 1
  const mismatch = (flags = 0, o: { budget1?: bigint; rate0?: bigint; rate1?: bigint; owd1?: number } = {}) => {
    reset(flags);
    setLink(0, { rateBps: o.rate0 ?? 20_000_000n, owdUs: 10_000 });
    setLink(1, { rateBps: o.rate1 ?? 20_000_000n, owdUs: o.owd1 ?? 60_000, budgetBytes: o.budget1 ?? 0n });
  };

  it('a pure ACK (IPv4 and IPv6) and a SYN-ACK go on the slowest link; data, ACKs with payload, SYN, FIN, RST do not', () => {
    mismatch();
    assert.deepEqual(send(3, pureAck), [1, 1, 1]);
    assert.deepEqual(send(3, segment(ACK, 0, true)), [1, 1, 1], 'IPv6');
    assert.deepEqual(send(1, segment(SYN | ACK)), [1], 'SYN-ACK: the connecting side\'s first RTT sample');
    assert.deepEqual(send(1), [0], 'a data segment lands first on the fast link');
    for (const [what, f] of [
      ['ACK with 1 byte', segment(ACK | PSH, 1)],
      ['SYN', segment(SYN)],
      ['FIN-ACK', segment(FIN | ACK)],
      ['RST-ACK', segment(RST | ACK)],
    ] as const) {
      mismatch();
      assert.deepEqual(send(1, f), [0], what);
    }
  });

  it('ack_path = "earliest" (MP_CFG_ACKS_EARLIEST) and metered slow links: ACKs go like data', () => {
    mismatch(MP_CFG_ACKS_EARLIEST);
    assert.deepEqual(send(3, pureAck), [0, 0, 0]);
    mismatch(0, { budget1: 1_000_000_000n });
    assert.deepEqual(send(3, pureAck), [0, 0, 0], 'a link with a byte budget is not used to slow ACKs down');
  });

  it('no later than the slow link would deliver from an empty queue: a backlog there sends ACKs to the fast link', () => {
    // at 200 kbit an ACK (40 B + 52 B outer) takes 3.7 ms: the second would land 3.7 ms after the
    // slow link's floor, beyond the 1 ms slack (and beyond what real time drains between two
    // PROG_TEST_RUN calls on a busy machine: at 1 Mbit, 0.74 ms an ACK, a 0.5 ms gap flipped it)
    mismatch(0, { rate1: 200_000n });
    assert.deepEqual(send(4, pureAck), [1, 0, 0, 0]);
  });

  it('links of about the same delay (< 2 ms apart): ACKs are spread like data', () => {
    // 1 Mbit each: an ACK keeps a link busy 0.74 ms, so data-like scheduling alternates
    mismatch(0, { rate0: 1_000_000n, rate1: 1_000_000n, owd1: 11_000 });
    const used = send(40, pureAck);
    assert.ok(on(used, 0) > 10 && on(used, 1) > 10, used.join(' '));
  });

  // README "Benchmarks" (ACKs on the slowest link): links the congestion controller flags MP_LINK_F_NO_ACKS (lossy, or far slower)
  it('a link flagged NO_ACKS carries no pure ACK while another link is usable, and still carries data', () => {
    // 30 Mbit/4 ms, 10 Mbit/22 ms, 4 Mbit/150 ms (flagged): ACKs on the slowest of the others
    reset();
    setLink(0, { rateBps: 30_000_000n, owdUs: 4_000 });
    setLink(1, { rateBps: 10_000_000n, owdUs: 22_000 });
    setLink(2, { rateBps: 4_000_000n, owdUs: 150_000, flags: MP_LINK_F_NO_ACKS });
    assert.deepEqual(send(5, pureAck), [1, 1, 1, 1, 1]);
    assert.deepEqual(send(1, segment(SYN | ACK)), [1], 'SYN-ACK');
    // data: where it lands first, the flagged link included (busy links push it there)
    reset();
    setLink(0, { rateBps: 1_000_000n, owdUs: 4_000 });
    setLink(1, { rateBps: 10_000_000n, owdUs: 1_000, flags: MP_LINK_F_NO_ACKS });
    assert.deepEqual(send(2), [1, 1]);
    assert.deepEqual(send(3, pureAck), [0, 0, 0], 'the fast flagged link: no ACKs, though they would land first there');
  });

  it('links of about the same delay, one lossy (flagged): ACKs are spread over the others only; all flagged: like data', () => {
    reset();
    for (const id of [0, 1, 2]) setLink(id, { rateBps: 1_000_000n, owdUs: 10_000 + 300 * id, flags: id === 1 ? MP_LINK_F_NO_ACKS : 0 });
    const used = send(40, pureAck);
    assert.equal(on(used, 1), 0, used.join(' '));
    assert.ok(on(used, 0) > 10 && on(used, 2) > 10, used.join(' '));
    reset();
    for (const id of [0, 1]) setLink(id, { rateBps: 1_000_000n, owdUs: 10_000, flags: MP_LINK_F_NO_ACKS });
    const all = send(40, pureAck);
    assert.ok(on(all, 0) > 10 && on(all, 1) > 10, all.join(' '));
  });
});

// README "The data path outlives its control plane": a held link is planned at hold_kbps, not at
// the pacing rate of the moment, and its modelled queue stays under MP_HOLD_QUEUE_NS.
describe('scheduler: held links', () => {
  // two 10 Mbit/s links whose held rates are 10 and 2.5 Mbit/s: held, link 1 takes a fifth
  const two = (flags1: number) => {
    setLink(0, { holdKbps: 10_000 });
    setLink(1, { holdKbps: 2_500, flags: flags1 });
  };

  it('a link flagged HELD is planned at its hold rate; unflagged, at its live rate', () => {
    reset();
    two(0);
    const live = send(40);
    assert.ok(on(live, 1) >= 18 && on(live, 1) <= 22, `live: ${on(live, 1)} of 40 on link 1`);
    reset();
    two(MP_LINK_F_HELD);
    const held = send(40);
    assert.ok(on(held, 1) >= 6 && on(held, 1) <= 10, `held: ${on(held, 1)} of 40 on link 1`);
    assert.equal(on(held, -1), 0, 'nothing dropped under the queue limit');
  });

  it("with the control plane's heartbeat older than MP_ALIVE_NS every link with a hold rate is held; fresh or never written, none", () => {
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    for (const [alive, held] of [
      [now - BigInt(MP_ALIVE_NS) - 100_000_000n, true],
      [now, false],
      [0n, false],
    ] as const) {
      reset(0, alive);
      two(0);
      const used = send(40);
      const n = on(used, 1);
      assert.ok(held ? n >= 6 && n <= 10 : n >= 18 && n <= 22, `heartbeat ${alive}: ${n} of 40 on link 1`);
    }
  });

  it('a held link takes no packet past MP_HOLD_QUEUE_NS of modelled queue: dropped as hold_queue; a link without a hold rate is never limited', () => {
    // 1 Mbit/s: a 1092 B packet is 8.7 ms of queue, so about 50 ms / 8.7 ms of them fit
    const fit = Math.floor(MP_HOLD_QUEUE_NS / ((OUTER * 8e9) / 1e6)) + 1;
    reset();
    setLink(0, { holdKbps: 1_000, flags: MP_LINK_F_HELD });
    const before = obj.drops().hold_queue;
    const used = send(12);
    const sent = on(used, 0);
    assert.ok(sent >= fit && sent <= fit + 1, `${sent} sent, ${fit} fit`);
    assert.equal(obj.drops().hold_queue - before, BigInt(12 - sent), 'every other packet counted as hold_queue');
    reset();
    setLink(0, { rateBps: 1_000_000n, flags: MP_LINK_F_HELD }); // held, but no hold rate: live
    assert.equal(on(send(12), 0), 12);
  });
});

// The buffer-depth cap (mp_link.plan_cap_ms) on links like the delay mismatch's (20 Mbit/10 ms +
// 20 Mbit/60 ms), slowed 100× so that the test's own run time drains next to nothing of the
// modelled backlogs: 200 kbit/s, 10 ms and 5010 ms. A burst fills the fast link's planned backlog
// up to the delay difference that lands its packets with the slow link's; capped, the fast link
// stops at its cap and the slow link takes the rest, later than its order, instead of a full
// buffer.
describe('scheduler: buffer depth (plan_cap_ms)', () => {
  // a 1092 B outer packet is 43.7 ms at 200 kbit/s
  const perS = 1e9 / ((OUTER * 8e9) / 200_000);
  const mismatch = (cap0: number, cap1: number) => {
    reset();
    setLink(0, { rateBps: 200_000n, owdUs: 10_000, planCapMs: cap0 });
    setLink(1, { rateBps: 200_000n, owdUs: 5_010_000, planCapMs: cap1 });
  };

  it('uncapped, the fast link takes a burst until its backlog is the delay difference', () => {
    mismatch(0, 0);
    const used = send(100);
    assert.equal(on(used, 0), 100, used.join(' '));
  });

  it('the fast link capped takes the burst up to its cap; the slow link the rest, though it lands later', () => {
    mismatch(2000, 0);
    const used = send(100);
    const n0 = on(used, 0);
    assert.ok(n0 >= 2 * perS && n0 <= 2 * perS + 2, `${n0} on the fast link, ${(2 * perS).toFixed(1)} make its 2 s cap`);
    assert.equal(on(used, 1), 100 - n0);
    assert.ok(Number(sched().busyUntilNs[0]) - Number(process.hrtime.bigint()) < 2.1e9, 'the fast link planned within its cap (and one packet)');
  });

  it('every link full: the earliest arrival again (the fast link past its cap up to the delay difference), nothing dropped', () => {
    mismatch(2000, 500);
    const used = send(200);
    // the fast link to its cap (~46), the slow link to its cap (~12), then the fast link until
    // its packets land after the slow link's (5 + 0.5 s: ~126 in all), then both in turn
    const n0 = on(used, 0);
    const n1 = on(used, 1);
    assert.equal(on(used, -1), 0, 'no drops');
    assert.ok(n0 >= 5.5 * perS && n1 >= 0.5 * perS, `fast ${n0}, slow ${n1}`);
    assert.ok(Math.abs(n0 - 5.5 * perS - (n1 - 0.5 * perS)) <= 3, `past both caps the links alternate: fast ${n0}, slow ${n1}`);
  });
});
