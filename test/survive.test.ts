// The data path outlives its control plane (README, of that name): either portal is killed with
// SIGKILL in the middle of a TCP flow, and the flow goes on at >= 90 % of its rate for 20 s.
// The dead portal's data path keeps forwarding with the estimates it had, and answers the peer's
// probe requests itself (bpf/probe.h), so the survivor keeps the links up; the RP asks on its own
// (runtime.ts startRemote) when the LP's requests stop. Both sides then plan the links at their
// hold rates (98 % of the bandwidth estimate; bpf/schedule.h "Held links"): the survivor's
// controller, without feedback, flags its links held (stale, not lowered), the dead side's data
// path sees its heartbeat stop.
//
//   client ── lp ═╦═ isp1 (20 Mbit/s, 10 ms) ═╦═ inet ── rp ── srv ── server
//                 ╚═ isp2 (20 Mbit/s, 15 ms) ═╝
//
// One lab, one flow (server → client): 10 s, the LP killed, 20 s, the LP started again (it adopts
// the data path: hitless), 10 s, the RP killed, 20 s (60 s each until session 20, 30 s until
// session 23, when the suite needed the time: every hold rule acts within the first second). Each victim's `mpctl status` says its control
// plane is gone since about the kill and its data path forwards the flow (README "`mpctl status`").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iperf } from '../src/lab/measure.js';
import { emulatorHealth, healthBetween, killPortal, must, portalStatus, portalStatusText, restartPortal, sleep, twoLinks, withLab, type PortalStatus } from './helpers/lab.js';

const BEFORE_S = 10;
const AFTER_S = 20;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const frozen = (s: PortalStatus) => s.links.map((l) => `${(l.rateBps / 1e6).toFixed(1)}M/${(l.owdUs / 1000).toFixed(1)}ms ${l.cc?.phase ?? '-'} bw ${((l.cc?.bwBps ?? 0) / 1e6).toFixed(1)} q ${l.cc?.queueMs.toFixed(1) ?? '-'}`).join(', ');

test(`SIGKILL of the LP, then of the RP, mid-flow: the flow goes on at >= 90 % for ${AFTER_S} s each time, the survivor keeps both links up`, { timeout: 300_000 }, async (t) => {
  await withLab(
    twoLinks,
    async (lab) => {
      // the flow is long enough for both windows, the LP's restart and iperf3's own start; each
      // kill's second of the flow is counted back from when the flow ended (taken as it ends:
      // the phases' status calls can outlast it, and an end read after them put the LP's kill
      // at second -1 of the flow, 14 s early, in a CI run)
      const seconds = 2 * (BEFORE_S + AFTER_S) + 10;
      const started = Date.now();
      let ended = 0;
      const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds, reverse: true }).then((r) => {
        ended = Date.now();
        return r;
      });
      const kills: { victim: 'lp' | 'rp'; at: number; restarted?: number; states: string[][]; dead: PortalStatus; text: string; survivorRates: string[]; lab: string }[] = [];
      let health = await emulatorHealth(lab);
      for (const victim of ['lp', 'rp'] as const) {
        const survivor = victim === 'lp' ? 'rp' : 'lp';
        await sleep((kills.at(-1)?.restarted ?? started + 3000) + BEFORE_S * 1000 - Date.now());
        await killPortal(lab, victim);
        const at = Date.now();
        const states: string[][] = [];
        let dead: PortalStatus | null = null;
        let text = '';
        const survivorRates: string[] = []; // its sending rates in the data path: kept, not lowered
        for (let i = 0; i < 6; i++) {
          await sleep(at + ((i + 1) * AFTER_S * 1000) / 7 - Date.now()); // on a grid: the calls take time
          const sv = await portalStatus(lab, survivor);
          states.push(sv.links.map((l) => l.state));
          survivorRates.push(sv.links.map((l) => `${(l.rateBps / 1e6).toFixed(1)}${l.cc?.stale ? ' stale' : ''}`).join('/'));
          if (i === 0) {
            // status truth, mid-flow: --json and the text
            dead = await portalStatus(lab, victim);
            text = await portalStatusText(lab, victim);
          }
        }
        assert.ok(dead);
        await sleep(at + AFTER_S * 1000 - Date.now());
        const now = await emulatorHealth(lab);
        const labLine = healthBetween(health, now); // the lab's own health up to the phase's end
        health = now;
        if (victim === 'lp') assert.match(await restartPortal(lab, 'lp'), /adopting the running data path/, 'the LP adopted its data path');
        kills.push({ victim, at, restarted: Date.now(), states, dead, text, survivorRates, lab: labLine });
      }
      const r = must(await flow, 'iperf3 across the kills');
      const flowStart = ended - seconds * 1000;
      const rates = r.intervals.map((x) => x / 1e6);
      t.diagnostic(`per-second goodput (Mbit/s): ${rates.map((x) => x.toFixed(1)).join(' ')}`);
      for (const k of kills) {
        const s = Math.round((k.at - flowStart) / 1000); // the kill's second of the flow
        assert.ok(s >= BEFORE_S, `${k.victim}: killed ${s} s into the flow, before its window of ${BEFORE_S} s`);
        const before = mean(rates.slice(s - BEFORE_S + 3, s));
        const afterRates = rates.slice(s, s + AFTER_S);
        const after = mean(afterRates);
        const who = k.victim.toUpperCase();
        t.diagnostic(`${who} killed at ${s} s: before ${before.toFixed(2)} Mbit/s, after ${after.toFixed(2)} Mbit/s (${((after / before) * 100).toFixed(1)} %), slowest second after ${Math.min(...afterRates).toFixed(1)}`);
        t.diagnostic(`${who} survivor's link states every ~${Math.round(AFTER_S / 7)} s: ${k.states.map((x) => x.join('/')).join(' ')}; its link rates (Mbit/s) ${k.survivorRates.join(' ')}`);
        t.diagnostic(`${who} phase, the lab's link emulators: ${k.lab}`);
        t.diagnostic(`${who}'s data path after the kill (rate/delay, last phase): ${frozen(k.dead)}; ${JSON.stringify({ controlPlane: k.dead.controlPlane, dataPath: k.dead.dataPath })} (killed at ${k.at})`);
        assert.ok(afterRates.length >= AFTER_S - 1, `${who}: the flow lasted ${afterRates.length} s after the kill`);
        assert.ok(after >= 0.9 * before, `${who}: after the kill ${after.toFixed(2)} Mbit/s < 90 % of ${before.toFixed(2)} (the lab's emulators: ${k.lab})`);
        assert.ok(k.states.every((x) => x.length === 2 && x.every((y) => y === 'up')), `${who}: the survivor kept both links up: ${JSON.stringify(k.states)}`);
        // the victim's status: control plane gone since about the kill, data path forwarding
        assert.deepEqual([k.dead.running, k.dead.controlPlane.running, k.dead.dataPath.forwarding], [false, false, true], `${who}'s status`);
        const seen = k.dead.controlPlane.lastSeenMs;
        assert.ok(seen !== null && k.at - seen < 2500 && seen <= k.at, `${who}: last seen within the publish interval before the kill`);
        assert.ok(k.dead.dataPath.packetsLastSecond > 1000, `${who}: the flow's packets counted: ${k.dead.dataPath.packetsLastSecond}`);
        assert.match(k.text, /control plane: not running since \S+; data path: forwarding, \d{4,} packets in the last second/, `${who}'s status text`);
      }
    },
    { bond: true },
  );
});
