// `mpctl lab check`: measures every link through the lab (ping RTT, iperf3 goodput both ways)
// and the end-to-end path client → server, next to what the link is set to.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { iperf, linkAddrs, ping, TCP_GOODPUT_RATIO } from './measure.js';
import { formatRate } from './params.js';
import { readState } from './state.js';

export interface LinkCheck {
  node: string;
  label: string;
  rttMs: number;
  expectedRttMs: number;
  upBps: number | null;
  downBps: number | null;
  /** goodput a TCP flow can reach on the shaped link (rate × 1448/1514) */
  expectedUpBps: number | null;
  expectedDownBps: number | null;
}

export interface CheckReport {
  links: LinkCheck[];
  endToEnd: { family: 4 | 6; ok: boolean; rttMs: number }[];
  /** bonded lab: one TCP flow client → server and back, against the sum of the link rates */
  bond: { upBps: number; downBps: number; sumUpBps: number; sumDownBps: number } | null;
}

export async function labCheck(name: string, seconds = 3): Promise<Result<CheckReport, MpError>> {
  const st = await readState(name);
  if (st.isErr()) return err(st.error);
  const links: LinkCheck[] = [];
  for (const [i, l] of st.value.links.entries()) {
    const k = i + 1;
    const a = linkAddrs(k);
    // one ping first: ARP across a slow link would delay the first several probes
    await ping(name, 'lp', a.gw, { count: 1, intervalS: 0.01, from: a.lp });
    const p = await ping(name, 'lp', a.gw, { count: 20, intervalS: 0.01, from: a.lp });
    if (p.isErr()) return err(p.error);
    const rate = async (reverse: boolean) => {
      if (l[reverse ? 'down' : 'up'].down) return ok(null);
      return (await iperf(name, { server: { node: 'inet', addr: a.gw }, client: { node: 'lp', addr: a.lp }, seconds, omitS: 2, reverse })).map((x) => x.bps);
    };
    const up = await rate(false);
    if (up.isErr()) return err(up.error);
    const down = await rate(true);
    if (down.isErr()) return err(down.error);
    links.push({
      node: l.node,
      label: l.label,
      rttMs: p.value.avgMs,
      expectedRttMs: (l.up.delayUs + l.down.delayUs) / 1000,
      upBps: up.value,
      downBps: down.value,
      expectedUpBps: l.up.rateBps === null ? null : l.up.rateBps * TCP_GOODPUT_RATIO,
      expectedDownBps: l.down.rateBps === null ? null : l.down.rateBps * TCP_GOODPUT_RATIO,
    });
  }
  const endToEnd: CheckReport['endToEnd'] = [];
  for (const family of [4, 6] as const) {
    const p = await ping(name, 'client', family === 4 ? '203.0.113.2' : '2001:db8:113::2', { count: 3, intervalS: 0.05 });
    if (p.isErr()) return err(p.error);
    endToEnd.push({ family, ok: p.value.received === p.value.transmitted, rttMs: p.value.avgMs });
  }
  let bond: CheckReport['bond'] = null;
  if (st.value.bond) {
    const flow = async (reverse: boolean) =>
      (await iperf(name, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds, omitS: 2, reverse })).map((x) => x.bps);
    const up = await flow(false);
    if (up.isErr()) return err(up.error);
    const down = await flow(true);
    if (down.isErr()) return err(down.error);
    const sum = (dir: 'up' | 'down') => st.value.links.reduce((a, l) => a + (l[dir].down ? 0 : (l[dir].rateBps ?? 0)), 0);
    bond = { upBps: up.value, downBps: down.value, sumUpBps: sum('up'), sumDownBps: sum('down') };
  }
  return ok({ links, endToEnd, bond });
}

const mbit = (bps: number | null): string => (bps === null ? '—' : formatRate(Math.round(bps / 1e4) * 1e4));
const pct = (got: number | null, want: number | null): string =>
  got === null || want === null ? '' : ` (${((got / want) * 100).toFixed(1)} %)`;

export function renderCheck(r: CheckReport): string {
  const out = ['link        rtt (set)            up goodput (of TCP max)        down goodput (of TCP max)'];
  for (const l of r.links) {
    out.push(
      `${`${l.node} ${l.label}`.padEnd(11)} ${`${l.rttMs.toFixed(2)} ms (${l.expectedRttMs} ms)`.padEnd(20)} ` +
        `${`${mbit(l.upBps)}${pct(l.upBps, l.expectedUpBps)}`.padEnd(30)} ${mbit(l.downBps)}${pct(l.downBps, l.expectedDownBps)}`,
    );
  }
  for (const e of r.endToEnd)
    out.push(`client → server IPv${e.family}: ${e.ok ? `ok, rtt ${e.rttMs.toFixed(2)} ms ${r.bond ? '(through the bond)' : '(over isp1)'}` : 'FAILED'}`);
  if (r.bond) {
    const line = (what: string, got: number, sum: number) =>
      `one TCP flow ${what} through the bond: ${mbit(got)} = ${sum ? ((got / sum) * 100).toFixed(1) : '—'} % of the links' sum (${mbit(sum)})`;
    out.push(line('client → server', r.bond.upBps, r.bond.sumUpBps), line('server → client', r.bond.downBps, r.bond.sumDownBps));
  }
  return out.join('\n');
}
