// `mpctl lab …`: the network-namespace lab every test, demo and benchmark runs in.
import type { Argv, CommandModule } from 'yargs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import { labDown, labExec, labSchedule, labSet, labStatus, labUp, listLabs, SHAPE_NEEDS_HOP, type Direction } from '../../lab/lab.js';
import { renderStatus } from '../../lab/render.js';
import { labCheck, renderCheck } from '../../lab/check.js';
import { BENCHES, renderBench, runBench, writeSummary } from '../../lab/bench/bench.js';
import { CPU_PARTS } from '../../lab/bench/cpu.js';
import { defaultScenario, loadScenario, parseDirPatch, uniformScenario, type Scenario } from '../../lab/scenario.js';
import { integerIn, positiveUpTo } from '../options.js';
import { MAX_LINKS } from '../../lab/topology.js';
import { run } from '../run.js';

const DEFAULT_LAB = process.env.MPCTL_LAB ?? 'lab';

/** Every lab command but `list` creates or reads namespaces, veths and qdiscs: root only. */
const asRoot = (f: () => Promise<Result<number, MpError>>) => () =>
  process.getuid?.() === 0
    ? f()
    : Promise.resolve(err<number, MpError>({ kind: 'PermissionDenied', message: 'the lab creates network namespaces and emulated links: run it as root' }));

const nameOpt = <T>(y: Argv<T>) =>
  y.option('name', { alias: 'n', type: 'string', default: DEFAULT_LAB, describe: 'lab name (namespaces are mp-<name>-<node>; env MPCTL_LAB)' });

async function scenarioFrom(a: { scenario?: string; links?: number }): Promise<Result<Scenario, MpError>> {
  if (a.scenario && a.links !== undefined)
    return err({ kind: 'ConfigInvalid', path: '--links', value: a.links, message: 'use either --scenario or --links, not both' });
  if (a.scenario) return loadScenario(a.scenario);
  if (a.links !== undefined) return uniformScenario(a.links);
  return ok(defaultScenario());
}

const up: CommandModule = {
  command: 'up',
  describe: 'create the lab: client — lp — isp1..N — inet — rp — server, with emulated links',
  builder: (y) =>
    nameOpt(y)
      .option('scenario', { alias: 's', type: 'string', describe: 'JSON or TOML scenario file (links and their settings)' })
      .option('links', { type: 'number', describe: `N identical unshaped links instead of the default scenario (1-${MAX_LINKS})` })
      .option('bond', { type: 'boolean', default: true, describe: 'start both portals (--no-bond: the bare lab, client traffic over link 1)' })
      .option('single-interface', { type: 'boolean', default: false, describe: 'the RP shares its own address with the client' })
      .option('ipv6-underlay', { type: 'boolean', default: false, describe: 'carry every second link over IPv6 (mixed underlays)' })
      .option('ip-carrier', { type: 'boolean', default: false, describe: 'every second link uses the raw IP carrier (protocol 253) instead of UDP' })
      .option('lan', { type: 'boolean', default: false, describe: 'whole-LAN mode: a LAN switch with host1 and host2 (192.168.1.0/24, fd00:1::/64) that the LP translates to the client address' })
      .option('routed-hosts', {
        type: 'boolean',
        default: true,
        describe:
          'a router one IP hop in front of each end host (cgw before the LP, sgw before the RP; proxy ARP/NDP, every address kept): IP receive frees the sender\'s skbs, so a queue in a portal does not eat the end host\'s TCP small-queues budget, as on a real LAN (--no-routed-hosts: the end hosts\' veths straight on the portals, and no shaping)',
      })
      .option('shape', {
        type: 'boolean',
        describe: 'both portals shape their links (shape = true: an htb class per link at its pacing rate, the delay-equalising queue in the portal instead of the ISP buffer); default: with routed hosts (the portals\' own default is shape = "auto"); --no-shape: shape = false',
      })
      .option('json', { type: 'boolean', default: false, describe: 'print the status as JSON' })
      .check(integerIn('links', 1, MAX_LINKS))
      .check((a) => (a.shape === true && a.routedHosts === false ? `--shape needs routed hosts (drop --no-routed-hosts): ${SHAPE_NEEDS_HOP}` : true)),
  handler: (a) =>
    run(asRoot(async () => {
      const sc = await scenarioFrom(a as { scenario?: string; links?: number });
      if (sc.isErr()) return err(sc.error);
      const r = await labUp({ name: a.name as string, scenario: sc.value, bond: a.bond as boolean, singleInterface: a.singleInterface as boolean, ipv6Underlay: a.ipv6Underlay as boolean, ipCarrier: a.ipCarrier as boolean, lan: a.lan as boolean, routedHosts: a.routedHosts as boolean, ...(a.shape !== undefined ? { shape: a.shape as boolean } : {}) });
      if (r.isErr()) return err(r.error);
      const s = await labStatus(a.name as string);
      if (s.isErr()) return err(s.error);
      console.log(a.json ? JSON.stringify(s.value, null, 2) : renderStatus(s.value));
      return ok(0);
    })),
};

const down: CommandModule = {
  command: 'down',
  describe: 'remove the lab: its namespaces, veths, emulators and files (safe to repeat)',
  builder: (y) => nameOpt(y).option('all', { type: 'boolean', default: false, describe: 'remove every lab on this machine' }),
  handler: (a) =>
    run(asRoot(async () => {
      const names = a.all ? await listLabs() : [a.name as string];
      for (const n of names) {
        const r = await labDown(n);
        if (r.isErr()) return err(r.error);
        console.log(r.value.removed.length ? `lab ${n}: removed ${r.value.removed.length} namespaces` : `lab ${n}: nothing to remove`);
      }
      return ok(0);
    })),
};

const status: CommandModule = {
  command: 'status',
  describe: "show the lab's topology, addresses and each link's live settings and counters",
  builder: (y) => nameOpt(y).option('json', { type: 'boolean', default: false, describe: 'machine-readable output' }),
  handler: (a) =>
    run(asRoot(async () => {
      const s = await labStatus(a.name as string);
      if (s.isErr()) return err(s.error);
      console.log(a.json ? JSON.stringify(s.value, null, 2) : renderStatus(s.value));
      return ok(0);
    })),
};

const set: CommandModule = {
  command: 'set <link>',
  describe: "change a link's emulation while traffic flows (e.g. lab set isp2 --rate 5mbit --delay 40ms)",
  builder: (y) =>
    nameOpt(y)
      .positional('link', { type: 'string', describe: 'link node (isp1..) or its label', demandOption: true })
      .option('dir', { choices: ['up', 'down', 'both'] as const, default: 'both' as const, describe: 'direction: up = lp → rp' })
      .option('rate', { type: 'string', describe: 'e.g. 20mbit, 500kbit, none' })
      .option('delay', { type: 'string', describe: 'one-way delay, e.g. 40ms' })
      .option('jitter', { type: 'string', describe: 'delay variation (no reordering), e.g. 5ms' })
      .option('loss', { type: 'string', describe: 'random loss in percent, e.g. 2%' })
      .option('queue', { type: 'string', describe: 'bottleneck queue: 100pkt, 64kb or 50ms' })
      .option('trace', { type: 'string', describe: 'Mahimahi delivery-opportunity trace file (starts over now), or none' })
      .option('mtu', { type: 'string', describe: 'a smaller MTU inside the ISP (576..9000 or none): too-big packets are answered with ICMP' })
      .option('mtu-icmp', { type: 'boolean', describe: 'with --mtu: --no-mtu-icmp drops too-big packets silently (a path MTU black hole)' })
      .option('if-mtu', { type: 'string', describe: "the link's interface MTU (576..9000 or none = 1500)" })
      .option('down', { type: 'boolean', describe: 'cut the link (100 % loss, in flight packets lost)' })
      .option('up', { type: 'boolean', describe: 'restore a cut link' }),
  handler: (a) =>
    run(asRoot(async () => {
      if (a.down && a.up) return err({ kind: 'ConfigInvalid', path: '--down', value: true, message: '--down and --up exclude each other' });
      const raw: Record<string, unknown> = {};
      for (const k of ['rate', 'delay', 'jitter', 'loss', 'queue', 'trace', 'mtu'] as const) if (a[k] !== undefined) raw[k] = a[k];
      if (a['if-mtu'] !== undefined) raw.if_mtu = a['if-mtu'];
      if (a['mtu-icmp'] !== undefined) raw.mtu_icmp = a['mtu-icmp'];
      if (a.down) raw.outage = true;
      if (a.up) raw.outage = false;
      if (Object.keys(raw).length === 0)
        return err({ kind: 'ConfigInvalid', path: 'lab set', value: a.link, message: 'nothing to change: give --rate, --delay, --jitter, --loss, --queue, --trace, --mtu, --mtu-icmp, --if-mtu, --down or --up' });
      const patch = parseDirPatch(raw, (k) => (k === 'outage' ? (a.down ? '--down' : '--up') : `--${k.replace('_', '-')}`));
      if (patch.isErr()) return err(patch.error);
      const dirs: Direction[] = a.dir === 'both' ? ['up', 'down'] : [a.dir as Direction];
      const r = await labSet({ name: a.name as string, node: a.link as string, dirs, patch: patch.value });
      if (r.isErr()) return err(r.error);
      return ok(0);
    })),
};

const exec: CommandModule = {
  command: 'exec <node> [cmd..]',
  describe: 'run a command inside a lab node (client, lp, isp1.., inet, rp, server); node names resolve inside the lab',
  builder: (y) =>
    nameOpt(y)
      .positional('node', { type: 'string', demandOption: true })
      .positional('cmd', { type: 'string', array: true, describe: 'command and arguments (after --); default: a shell' }),
  handler: (a) =>
    run(asRoot(async () => {
      const argv = [...((a.cmd as string[] | undefined) ?? []), ...((a['--'] as string[] | undefined) ?? [])].map(String);
      return labExec(a.name as string, a.node as string, argv);
    })),
};

const check: CommandModule = {
  command: 'check',
  describe: 'measure every link (ping RTT, iperf3 goodput both ways) and client → server, next to the settings',
  builder: (y) =>
    nameOpt(y)
      .option('seconds', { type: 'number', default: 3, describe: 'iperf3 measured seconds per direction (after 2 s of warm-up)' })
      .option('json', { type: 'boolean', default: false })
      .check(positiveUpTo('seconds', 600)),
  handler: (a) =>
    run(asRoot(async () => {
      const r = await labCheck(a.name as string, a.seconds as number);
      if (r.isErr()) return err(r.error);
      console.log(a.json ? JSON.stringify(r.value, null, 2) : renderCheck(r.value));
      return ok(r.value.endToEnd.every((e) => e.ok) ? 0 : 1);
    })),
};

const bench: CommandModule = {
  command: 'bench [names..]',
  describe: `run benchmarks in their own lab and write JSON and plots (${BENCHES.join(', ')}; default: all)`,
  builder: (y) =>
    y
      .positional('names', { type: 'string', array: true })
      .option('runs', { type: 'number', default: 3, describe: 'repetitions per figure (the median is reported)' })
      .option('out', { type: 'string', default: 'bench-results', describe: 'directory for <name>.json, <name>.svg and summary.json' })
      .option('seconds', { type: 'number', describe: "measured seconds per flow instead of each scenario's (short validation runs)" })
      .option('only', { type: 'string', describe: `some parts of a benchmark, comma-separated (cpu: ${CPU_PARTS.join(', ')}); the report keeps the others' figures` })

      .check(integerIn('runs', 1, 100))
      .check((a) => {
        const unknown = ((a.names as string[] | undefined) ?? []).filter((n) => !(BENCHES as readonly string[]).includes(n));
        return unknown.length === 0 || `no benchmark ${unknown.map((n) => `"${n}"`).join(', ')} (benchmarks: ${BENCHES.join(', ')})`;
      }),
  handler: (a) =>
    run(asRoot(async () => {
      const names = (a.names as string[] | undefined)?.length ? (a.names as string[]) : [...BENCHES];
      for (const n of names) {
        const only = (a.only as string | undefined)?.split(',').filter(Boolean);
        const r = await runBench(n, a.runs as number, a.out as string, a.seconds as number | undefined, only);
        if (r.isErr()) return err(r.error);
        console.log(`${renderBench(r.value.report)}
  → ${r.value.file}${r.value.plot ? `, ${r.value.plot}` : ''}`);
      }
      const s = await writeSummary(a.out as string);
      console.log(`  → ${s.file}`);
      return ok(0);
    })),
};

const schedule: CommandModule = {
  command: 'schedule',
  describe: "play the scenario's schedules on a running lab (lab up starts this itself when there are any)",
  builder: (y) => nameOpt(y),
  handler: (a) =>
    run(async () => {
      const r = await labSchedule(a.name as string, (line) => console.log(`${new Date().toISOString()} ${line}`));
      if (r.isErr()) return err(r.error);
      console.log(`schedule done: ${r.value} changes`);
      return ok(0);
    }),
};

const list: CommandModule = {
  command: 'list',
  describe: 'list the labs that are up on this machine',
  handler: () =>
    run(async () => {
      for (const n of await listLabs()) console.log(n);
      return ok(0);
    }),
};

export const labCommand: CommandModule = {
  command: 'lab <command>',
  describe: 'network-namespace lab: two portals, emulated links (rate, delay, jitter, loss, outage)',
  builder: (y) => y.command([up, down, status, set, exec, check, bench, schedule, list]).demandCommand(1, 'give a lab command: up, down, status, set, exec, check, bench, schedule or list'),
  handler: () => {},
};
