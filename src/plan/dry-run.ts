// `mpctl up --dry-run`: the host checks `up` would make before changing anything, and the plan as
// a shell script that runs as printed. What only mpctl can do — load the BPF object, fill its
// maps, run the probe loop — is not a command: those lines are comments that say so.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import type { LocalConfig, PortalConfig } from '../config/types.js';
import { formatPrefix } from '../config/values.js';
import { describeRedundant } from '../config/redundant.js';
import { formatDuration, formatRate } from '../units.js';
import { renderStep } from './render.js';
import type { Plan } from './types.js';

/** The interfaces the config names, each with the key that names it. */
function namedInterfaces(cfg: PortalConfig): [key: string, ifname: string][] {
  if (cfg.role === 'local') return [['lan', cfg.lan], ...cfg.links.map((l, i): [string, string] => [`link[${i}].interface`, l.interface])];
  return [['wan', cfg.wan], ...cfg.forward.map((f, i): [string, string] => [`forward[${i}]`, f])];
}

/** Every interface the config names exists on this host (`mtus`: the host's interfaces). */
export function checkInterfaces(cfg: PortalConfig, mtus: Record<string, number>): Result<void, MpError> {
  for (const [key, ifname] of namedInterfaces(cfg))
    if (mtus[ifname] === undefined)
      return err({ kind: 'NotFound', what: 'interface', message: `${key}: no interface "${ifname}" on this host (interfaces: ${Object.keys(mtus).sort().join(', ')})` });
  return ok(undefined);
}

/** Whole-LAN mode (bpf/nat.h) as the dry run's head names it: one line per LAN prefix. */
export function describeLan(cfg: LocalConfig): string[] {
  return cfg.lanPrefixes.map((p) => {
    const c = cfg.client.find((x) => x.family === p.family);
    return `whole-LAN NAT: ${formatPrefix(p)} -> ${c?.address ?? '?'} ports ${cfg.natPorts.lo}-${cfg.natPorts.hi} (TCP, UDP, ICMP echo; mpctl up writes it into the BPF maps, down removes them)`;
  }).concat(
    cfg.portForwards.map((f) => {
      const c = cfg.client.find((x) => x.family === f.family);
      const to = f.family === 6 ? `[${f.address}]:${f.targetPort}` : `${f.address}:${f.targetPort}`;
      return `port forward: ${f.proto}/${f.port} of ${c?.address ?? '?'} -> ${to} (mpctl up writes it into the BPF maps)`;
    }),
    cfg.bondLocal ? ["bond_local: the LP's own traffic not bound to a link leaves through the bond, translated as a LAN host's (the routes into mpl…a below)"] : [],
  );
}

/** The plan as `sh` would run it, with what it means in comments. */
export function dryRunScript(cfg: PortalConfig, plan: Plan, configFile: string): string[] {
  const head = [
    '#!/bin/sh',
    `# mpctl up --config ${configFile} --dry-run: ${cfg.role === 'local' ? 'Local' : 'Remote'} Portal "${cfg.instance}", tunnel port ${cfg.port}.`,
    '# Runs as printed (as root). Lines starting with # are not commands: the BPF object, its maps',
    '# and the probe loop are mpctl up\'s own, so its tc filters are shown but cannot run here.',
  ];
  if (cfg.role === 'local')
    for (const l of cfg.links)
      head.push(`#   link ${l.id} ${l.name}: ${l.interface}, rate ${formatRate(l.rateBps)}, delay ${formatDuration(l.delayUs)}, metric ${l.metric}${l.budgetBytes ? `, budget ${l.budgetBytes} B` : ''}`);
  for (const c of cfg.redundant) head.push(`#   ${describeRedundant(c)} (mpctl up writes it into the BPF maps)`);
  if (cfg.role === 'local') for (const l of describeLan(cfg)) head.push(`#   ${l}`);
  const body = plan.steps.map((s) => {
    const line = renderStep(s, 'up', plan.instance);
    return s.kind === 'bpfFilter' ? `# (mpctl up loads and pins the program first) ${line}` : line;
  });
  return [...head, 'set -e', ...body];
}
