// Plain-text rendering of `mpctl lab status` for people (`--json` prints LabStatus as is).
import { formatDuration, formatLoss, formatQueue, formatRate, type DirSettings } from './params.js';
import type { LabStatus } from './lab.js';
import { basename } from 'node:path';
import { ROUTERS } from './topology.js';

function dirLine(d: DirSettings): string {
  const rate = d.trace ? `trace ${basename(d.trace.file)} (mean ${formatRate(d.trace.meanBps)})${d.rateBps !== null ? ` ≤ ${formatRate(d.rateBps)}` : ''}` : formatRate(d.rateBps);
  const parts = [rate.padEnd(9), `delay ${formatDuration(d.delayUs)}`.padEnd(13)];
  parts.push(`jitter ${formatDuration(d.jitterUs)}`.padEnd(14), `loss ${formatLoss(d.lossPpm)}`.padEnd(13));
  parts.push(`queue ${formatQueue(d.queue)}`.padEnd(14), d.down ? 'OUTAGE' : 'ok');
  if (d.schedule.length) parts.push(`schedule of ${d.schedule.length} step${d.schedule.length > 1 ? 's' : ''}${d.repeatUs !== null ? ` every ${d.repeatUs / 1e6} s` : ''}`);
  return parts.join(' ');
}

export function renderStatus(s: LabStatus): string {
  const out: string[] = [];
  out.push(`lab ${s.name}${s.complete ? '' : ' (incomplete: bring-up did not finish)'} — namespaces ${s.prefix}*`);
  out.push('');
  // routed-hosts mode: the router in front of each end host's side
  const hop = (node: string) => (s.nodes.some((n) => n.node === node) ? ` ── ${node}` : '');
  out.push(`  client${hop(ROUTERS.client)} ── lp ═╦═ ` + s.links.map((l) => `${l.node}(${l.label})`).join(' ═╬═ ') + ` ═╩═ inet ── rp${hop(ROUTERS.server)} ── server`);
  out.push('');
  out.push('links (up = lp → rp, down = rp → lp):');
  for (const l of s.links) {
    out.push(`  ${l.node} ${l.label}  emulator ${l.emulatorPid ? `pid ${l.emulatorPid}` : 'NOT RUNNING'}`);
    for (const dir of ['up', 'down'] as const) {
      const d = l[dir];
      const st = d.live?.stats;
      const counters = st
        ? `  tx ${st.txPackets} pkts, dropped loss ${st.droppedLoss} / outage ${st.droppedDown} / queue ${st.droppedQueue}`
        : '';
      out.push(`    ${dir.padEnd(4)} ${dirLine(d)}${counters}`);
    }
  }
  out.push('');
  out.push('nodes:');
  for (const n of s.nodes) {
    out.push(`  ${n.node.padEnd(7)} ${n.ns}${n.present ? '' : '  (MISSING)'}`);
    for (const i of n.interfaces)
      out.push(`    ${i.name.padEnd(6)} → ${i.peer.padEnd(12)} ${i.addresses.join('  ') || '(no addresses: L2 only)'}`);
  }
  return out.join('\n');
}
