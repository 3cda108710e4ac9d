// `mpctl lab …`: the network-namespace lab every test, demo and benchmark runs in.
import type { Argv, CommandModule } from 'yargs';
import { err, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import { BENCH_NAMES, CPU_PARTS } from '../../lab/bench/names.js';
import { MAX_LINKS, SHAPE_NEEDS_HOP } from '../../lab/topology.js';
import { integerIn, positiveUpTo } from '../options.js';
import { run } from '../run.js';

// what each command does is loaded when it runs (lab-run.ts), not to parse one
const handlers = () => import('./lab-run.js');

const DEFAULT_LAB = process.env.MPCTL_LAB ?? 'lab';

/** Every lab command but `list` creates or reads namespaces, veths and qdiscs: root only. */
const asRoot = (f: () => Promise<Result<number, MpError>>) => () =>
  process.getuid?.() === 0
    ? f()
    : Promise.resolve(err<number, MpError>({ kind: 'PermissionDenied', message: 'the lab creates network namespaces and emulated links: run it as root' }));

const nameOpt = <T>(y: Argv<T>) =>
  y.option('name', { alias: 'n', type: 'string', default: DEFAULT_LAB, describe: 'lab name (namespaces are mp-<name>-<node>; env MPCTL_LAB)' });

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
  handler: (a) => run(asRoot(async () => (await handlers()).runLabUp(a))),
};

const down: CommandModule = {
  command: 'down',
  describe: 'remove the lab: its namespaces, veths, emulators and files (safe to repeat)',
  builder: (y) => nameOpt(y).option('all', { type: 'boolean', default: false, describe: 'remove every lab on this machine' }),
  handler: (a) => run(asRoot(async () => (await handlers()).runLabDown(a))),
};

const status: CommandModule = {
  command: 'status',
  describe: "show the lab's topology, addresses and each link's live settings and counters",
  builder: (y) => nameOpt(y).option('json', { type: 'boolean', default: false, describe: 'machine-readable output' }),
  handler: (a) => run(asRoot(async () => (await handlers()).runLabStatus(a))),
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
  handler: (a) => run(asRoot(async () => (await handlers()).runLabSet(a))),
};

const exec: CommandModule = {
  command: 'exec <node> [cmd..]',
  describe: 'run a command inside a lab node (client, lp, isp1.., inet, rp, server); node names resolve inside the lab',
  builder: (y) =>
    nameOpt(y)
      .positional('node', { type: 'string', demandOption: true })
      .positional('cmd', { type: 'string', array: true, describe: 'command and arguments (after --); default: a shell' }),
  handler: (a) => run(asRoot(async () => (await handlers()).runLabExec(a))),
};

const check: CommandModule = {
  command: 'check',
  describe: 'measure every link (ping RTT, iperf3 goodput both ways) and client → server, next to the settings',
  builder: (y) =>
    nameOpt(y)
      .option('seconds', { type: 'number', default: 3, describe: 'iperf3 measured seconds per direction (after 2 s of warm-up)' })
      .option('json', { type: 'boolean', default: false })
      .check(positiveUpTo('seconds', 600)),
  handler: (a) => run(asRoot(async () => (await handlers()).runLabCheck(a))),
};

const bench: CommandModule = {
  command: 'bench [names..]',
  describe: `run benchmarks in their own lab and write JSON and plots (${BENCH_NAMES.join(', ')}; default: all)`,
  builder: (y) =>
    y
      .positional('names', { type: 'string', array: true })
      .option('runs', { type: 'number', default: 3, describe: 'repetitions per figure (the median is reported)' })
      .option('out', { type: 'string', default: 'bench-results', describe: 'directory for <name>.json, <name>.svg and summary.json' })
      .option('seconds', { type: 'number', describe: "measured seconds per flow instead of each scenario's (short validation runs)" })
      .option('only', { type: 'string', describe: `some parts of a benchmark, comma-separated (cpu: ${CPU_PARTS.join(', ')}); the report keeps the others' figures` })

      .check(integerIn('runs', 1, 100))
      .check((a) => {
        const unknown = ((a.names as string[] | undefined) ?? []).filter((n) => !(BENCH_NAMES as readonly string[]).includes(n));
        return unknown.length === 0 || `no benchmark ${unknown.map((n) => `"${n}"`).join(', ')} (benchmarks: ${BENCH_NAMES.join(', ')})`;
      }),
  handler: (a) => run(asRoot(async () => (await handlers()).runLabBench(a))),
};

const schedule: CommandModule = {
  command: 'schedule',
  describe: "play the scenario's schedules on a running lab (lab up starts this itself when there are any)",
  builder: (y) => nameOpt(y),
  handler: (a) => run(async () => (await handlers()).runLabSchedule(a)),
};

const list: CommandModule = {
  command: 'list',
  describe: 'list the labs that are up on this machine',
  handler: () => run(async () => (await handlers()).runLabList()),
};

export const labCommand: CommandModule = {
  command: 'lab <command>',
  describe: 'network-namespace lab: two portals, emulated links (rate, delay, jitter, loss, outage)',
  builder: (y) => y.command([up, down, status, set, exec, check, bench, schedule, list]).demandCommand(1, 'give a lab command: up, down, status, set, exec, check, bench, schedule or list'),
  handler: () => {},
};
