// A plan as the commands an administrator would type: one line per step, for `--dry-run`, the
// `[#] ...` echo of apply, and golden tests.
//
//   up:   the steps in order, each `add` (sysctl -w, ethtool -K, ip, tc)
//   down: the steps in reverse order, each `del`. Sysctls, offloads and link settings go back to
//         the value apply saved before changing them, which the plan cannot know: they render as
//         comments (`# sysctl -w net.ipv4.conf.lan.forwarding=<saved>`) so the output stays
//         pasteable.
import { MAIN_TABLE } from './plan.js';
import { progPin } from './pins.js';
import type { Plan, PlanStep } from './types.js';

export type RenderMode = 'up' | 'down';

export function renderPlan(plan: Plan, mode: RenderMode): string[] {
  const steps = mode === 'up' ? plan.steps : [...plan.steps].reverse();
  return steps.map((s) => renderStep(s, mode, plan.instance));
}

const table = (t: number) => (t === MAIN_TABLE ? 'main' : String(t));
/** `ethtool -K` names of the offload features */
const ETHTOOL_K = { gro: 'gro', gso: 'gso', tso: 'tso', 'tx-csum': 'tx' } as const;
const opt = (name: string, v: string | number | undefined) => (v === undefined ? [] : [name, String(v)]);

export function renderStep(s: PlanStep, mode: RenderMode, instance: string): string {
  const op = mode === 'up' ? 'add' : 'del';
  switch (s.kind) {
    case 'sysctl':
      return mode === 'up' ? `sysctl -w ${s.key}=${s.value}` : `# sysctl -w ${s.key}=<saved>`;
    case 'offload': {
      const f = ETHTOOL_K[s.feature];
      return mode === 'up' ? `ethtool -K ${s.ifname} ${f} ${s.on ? 'on' : 'off'}` : `# ethtool -K ${s.ifname} ${f} <saved>`;
    }
    case 'veth':
      // `ip link del` of either end removes both
      return `ip link ${op} ${s.name} type veth peer name ${s.peer}`;
    case 'link': {
      if (mode === 'down') return `# ip link set ${s.dev} <saved>`;
      const arp = s.arp === undefined ? [] : ['arp', s.arp ? 'on' : 'off'];
      const up = s.up === undefined ? [] : [s.up ? 'up' : 'down'];
      return ['ip link set', s.dev, ...opt('mtu', s.mtu), ...arp, ...up].join(' ');
    }
    case 'route':
      return [`ip -${s.family} route ${op}`, s.dst, ...opt('via', s.via), ...opt('dev', s.dev), ...opt('src', s.src), 'table', table(s.table)].join(' ');
    case 'rule':
      return [
        `ip -${s.family} rule ${op}`,
        ...opt('fwmark', s.fwmark === undefined ? undefined : `0x${s.fwmark.toString(16)}`),
        ...opt('from', s.from),
        'lookup',
        table(s.table),
        'priority',
        String(s.priority),
      ].join(' ');
    case 'neighProxy':
      return `ip -${s.family} neigh ${op} proxy ${s.address} dev ${s.dev}${s.router && mode === 'up' ? ' router' : ''}`;
    case 'clsact':
      return `tc qdisc ${op} dev ${s.dev} clsact`;
    case 'shaper':
      return mode === 'up'
        ? `tc qdisc replace dev ${s.dev} root handle ${(s.handle >>> 16).toString(16)}: htb default 0${s.ifOwnRoot === 'skip' ? '   # shape = "auto": not over a root qdisc of the operator\'s' : ''}`
        : `tc qdisc del dev ${s.dev} root handle ${(s.handle >>> 16).toString(16)}:`;
    case 'bpfFilter': {
      const head = `tc filter ${op} dev ${s.dev} ${s.direction} prio ${s.priority} handle ${s.handle} bpf`;
      return mode === 'up' ? `${head} da pinned ${progPin(instance, s.prog)}` : head;
    }
  }
}
