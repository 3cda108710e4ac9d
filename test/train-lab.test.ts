// Capacity trains end to end (src/run/train.ts, bpf/probe.h): each portal measures its direction
// of every link once it is up, before any flow, through the real data paths and the lab's
// emulated links:
//
//   client ── lp ═╦═ cable 40↓/10↑ Mbit  8 ms ═╦═ inet ── rp ── server   no rate configured
//                 ╠═ dsl    6↓/ 2↑ Mbit 20 ms ═╣                         rate = "100mbit" (50x off)
//                 ╚═ fibre 20↓/20↑ Mbit  5 ms ═╝                         rate = "18mbit"
//
// The LP measures the up direction, the RP the down direction. Each link's controller starts
// from the measurement where the config names no rate or one more than HINT_OFF times off, and
// the data path plans the link at it with no packet of a flow sent yet; a configured rate
// within HINT_OFF of the measurement stays the start. Then each portal measures each link's
// buffer (a depth train, src/run/depth.ts), still before any flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScenario } from '../src/lab/scenario.js';
import type { PortalStatus } from '../src/run/status.js';
import { emulatorHealth, healthBetween, withLab } from './helpers/lab.js';
import { depthTrainsOver, labStatus, waitFor } from './helpers/wait.js';
import { cpuPressure, pressureShare } from '../src/lab/pressure.js';

/** a span during which some task waited for a CPU this share of the time or more was contended */
const CONTENDED = 0.2;

const scenario = parseScenario(
  {
    links: [
      { label: 'cable', delay: '8ms', up: { rate: '10mbit' }, down: { rate: '40mbit' } },
      { label: 'dsl', delay: '20ms', up: { rate: '2mbit' }, down: { rate: '6mbit' } },
      { label: 'fibre', delay: '5ms', rate: '20mbit' },
    ],
  },
  't',
)._unsafeUnwrap();

test('capacity and depth trains: each portal measures its direction of each link before any flow (rate, then buffer); no rate, or one far off: it starts from the measurement', { timeout: 150_000 }, async (t) => {
  await withLab(
    scenario,
    async (lab) => {
      const p0 = cpuPressure();
      const truth = { lp: [10e6, 2e6, 20e6], rp: [40e6, 6e6, 20e6] };
      const trained = (s: PortalStatus) => s.links.length === 3 && s.links.every((l) => l.train);
      for (const role of ['lp', 'rp'] as const) {
        const { value: s } = await waitFor(`${role}: every link trained`, () => labStatus(lab, role), trained, 10_000, 200);
        for (const l of s.links) t.diagnostic(`${role} link ${l.id}: train ${JSON.stringify(l.train)} rate ${l.rateBps} cc ${JSON.stringify(l.cc)}`);
        assert.equal(s.links.length, 3, `${role}: three links`);
        for (const l of s.links) {
          const want = truth[role][l.id]!;
          assert.ok(l.train, `${role} link ${l.id}: a train measured it`);
          // the emulator's rate is of IP packets; its timer spaces them to ±1 ms
          assert.ok(Math.abs(l.train.bps / want - 1) <= 0.2, `${role} link ${l.id}: ${l.train.bps} bit/s measured, ${want} emulated`);
          assert.ok(l.train.replies >= 8 && l.train.replies <= l.train.sent, `${role} link ${l.id}: ${l.train.replies} of ${l.train.sent} replies`);
          assert.ok(l.cc, `${role} link ${l.id}: a controller`);
          assert.equal(l.tx.packets, 0, `${role} link ${l.id}: no data sent yet`);
          if (l.id === 2) {
            assert.equal(l.cc.bwBps, 18e6, `${role} link 2: the configured 18 Mbit/s is within 3x: it stays the start`);
            continue;
          }
          assert.ok(Math.abs(l.cc.bwBps / l.train.bps - 1) < 0.01, `${role} link ${l.id}: the controller starts from the train (${l.cc.bwBps})`);
          assert.ok(l.rateBps >= 0.9 * l.train.bps && l.rateBps <= 2.1 * l.train.bps, `${role} link ${l.id}: the data path plans it at ${l.rateBps}, not the 10 Mbit/s start or the configured 100`);
        }
      }
      // then a depth train on each (src/run/depth.ts): the lab's buffers hold 50 ms (the
      // emulator's default queue). The LP's 2 Mbit/s dsl holds 8 packets, too few answers to
      // tell ('few', tried again, then over). A burst is sent at Node's pace (~26 µs a request
      // here) and the lab carries it with the CPU it has: the emulator's send of each frame runs
      // that frame's softirqs (through the inet router to the peer's data path, whose answer comes
      // back), so a long burst reaches the buffer stretched. Session 33's machine, the replies'
      // queues: each request of a burst met 0.07-0.2 ms more than the one before it beyond the
      // link's frame time, and after the overflow each one that got in met ~0.6 ms more than the
      // one before it (the 20 Mbit/s fibre's 301: 54 ms rising to 71), which the data path
      // rightly calls 'mixed' (a later request met more queue than the buffer held: not a
      // tail-drop FIFO's overflow) on any link whose burst is long: the fibres' and the RP's
      // 40 Mbit/s cable's (754 requests), 1 to 3 of the 6 in a run. A depth read while that
      // stretch ran ahead of the overflow is high by up to ~0.1 ms a request the buffer held:
      // the cable read 66-73 ms (195 requests held). The 10 and 6 Mbit/s links' short bursts
      // were measured in every run.
      let measured = 0;
      const byRole = { lp: 0, rp: 0 };
      const emulators = await emulatorHealth(lab);
      const all = await depthTrainsOver(lab);
      const share = pressureShare(p0, cpuPressure());
      t.diagnostic(`the lab's link emulators during the trains: ${healthBetween(emulators, await emulatorHealth(lab))}`);
      // a contended machine runs the veths' softirqs late (ksoftirqd waits for a CPU): every
      // one-way delay grows by the wait, a burst's last requests' too. Quiet (some task waiting
      // under CONTENDED of the span): 46.3-52.6 ms on the 50 ms buffers; contended: 55.0-57.9
      // with three CPU hogs on the 2-CPU machine (share ~50 %), 62.5 in a CI run; quiet on
      // session 32's machine (its emulators up to 100 ms late) the RP's 40 Mbit/s cable read
      // 56.2 and 58.0
      const contended = share === null || share >= CONTENDED;
      const pressure = `cpu pressure ${share === null ? 'unknown' : `${(share * 100).toFixed(1)} %`}`;
      for (const role of ['lp', 'rp'] as const) {
        const s = all[role];
        for (const l of s.links) {
          const d = l.depthTrain!;
          const held = (0.05 * truth[role][l.id]!) / 8 / (l.train?.outerBytes ?? 1500);
          const most = (contended ? 72 : 60) + 0.1 * held;
          t.diagnostic(`${role} link ${l.id}: depth train ${JSON.stringify(d)}, cc buffer ${l.cc?.depthMs} ms; the buffer holds ~${held.toFixed(0)} requests: up to ${most.toFixed(1)} ms accepted (${pressure})`);
          assert.equal(l.tx.packets, 0, `${role} link ${l.id}: still no data sent (a depth train is probes)`);
          if (d.depthMs === null) {
            const allowed = role === 'lp' && l.id === 1 ? ['few'] : ['mixed'];
            assert.ok(allowed.includes(d.none ?? ''), `${role} link ${l.id}: no depth (${d.none})`);
            assert.ok(d.tries === 3 && d.over, `${role} link ${l.id}: tried three times (${d.tries})`);
            continue;
          }
          measured++;
          byRole[role]++;
          assert.ok(d.depthMs >= 40 && d.depthMs <= most, `${role} link ${l.id}: buffer ${d.depthMs} ms, the emulator holds 50 (${pressure})`);
          assert.equal(l.cc?.depthMs, d.depthMs, `${role} link ${l.id}: the controller took it (the scheduler's plan cap follows)`);
        }
      }
      assert.ok(measured >= 2 && byRole.lp >= 1 && byRole.rp >= 1, `${measured} of 6 buffers measured (lp ${byRole.lp}, rp ${byRole.rp})`);
    },
    { bond: true, lp: { rates: ['', '100mbit', '18mbit'] } },
  );
});
