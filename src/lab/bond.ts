// The bond inside the lab: the client takes the Remote Portal's address as its own, and both
// portals run `mpctl up` inside their namespaces with generated configs — the very path a user
// deploys. Addressing (see topology.ts):
//
//   client eth0  198.51.100.10/24, 2001:db8:100::10/64   default via 198.51.100.1 / 2001:db8:100::1
//                (the inet router's addresses on the rp segment, answered for by the LP's proxy)
//   lp           links wanK → RP 198.51.100.2 / 2001:db8:100::2, UDP port 7470
//   rp           wan (tunnel in, client out) + srv (the server side) as a forward interface
//
// Single-interface mode gives the client the RP's own address 198.51.100.2 instead.
//
// Keys: each portal gets a fresh key pair per `lab up` (lp.key / rp.key, mode 600 in the lab's
// directory, which `lab down` removes); each config names its own key file and the other's
// public key, as a user's would. `insecureNoAuth` (benchmarks of the MAC's cost) turns it off.
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { readPortalState } from '../apply/state.js';
import { openRtnl } from '../netlink/rtnl.js';
import { bpffsMount } from '../native/libmpctl.js';
import { BPFFS_ROOT } from '../plan/pins.js';
import { spawnDetached, waitForLog, run } from './namespaces.js';
import { formatDuration, formatRate, nominalBps, type LinkSettings } from './params.js';
import { labDir } from './state.js';
import { LAN, nsName } from './topology.js';
import { generatePrivateKey, publicKeyOf } from '../security/keys.js';
import { routeClientAddresses } from './hop.js';

export const BOND = {
  port: 7470,
  rp: { v4: '198.51.100.2', v6: '2001:db8:100::2' },
  gateway: { v4: '198.51.100.1', v6: '2001:db8:100::1' },
  client: { v4: '198.51.100.10', v6: '2001:db8:100::10' },
} as const;

export interface BondOptions {
  singleInterface: boolean;
  /** carry every second link (isp2, isp4, …) over IPv6 instead of IPv4: mixed underlays */
  ipv6Underlay?: boolean;
  /** the raw IP carrier instead of UDP: true, every second link (wan2, wan4, …); a list, those
   * links (1-based: [3, 4] with ipv6Underlay gives IPv4/UDP, IPv6/UDP, IPv4/IP, IPv6/IP) */
  ipCarrier?: boolean | readonly number[];
  /** INSECURE, benchmarks only: both portals run with insecure_no_auth = true */
  insecureNoAuth?: boolean;
  /** whole-LAN mode: the LP translates the lab's LAN (topology.ts LAN) to the client address;
   * the client node keeps its lab address (the client address is the NAT's) */
  lan?: boolean;
  /** both portals shape their links (`shape = true`: an htb class per link at its pacing rate);
   * absent or false: `shape = false` (the product's default, "auto", would shape the lab's
   * devices, which only the lab's routed-hosts mode suits: lab.ts UpOptions.shape) */
  shape?: boolean;
  /** LP config extras (tests of tiers, budgets and static weights): per link (by index) its
   * `metric`, its configured `rate` instead of the emulated one ('': none, measured), its `budget`; and
   * `congestion_control`; `omitRates`: no `rate` or `delay` keys (capacity discovery) */
  lp?: { metrics?: number[]; rates?: string[]; budgets?: string[]; congestionControl?: boolean; omitRates?: boolean; redundant?: string[]; portForwards?: string[] };
}

/** What a portal's config says about keys: its own key file and the other portal's public key. */
export interface PortalKeys {
  privateKeyFile: string;
  peerPublicKey: string;
}

function keyLines(k: PortalKeys, o: BondOptions): string[] {
  return [`private_key = "${k.privateKeyFile}"`, `peer_public_key = "${k.peerPublicKey}"`, ...(o.insecureNoAuth === true ? ['insecure_no_auth = true'] : [])];
}

/** A key pair per portal, written (mode 600) into `dir`: what each config must name. */
export async function generateBondKeys(dir: string): Promise<Result<{ lp: PortalKeys; rp: PortalKeys }, MpError>> {
  const priv = { lp: generatePrivateKey(), rp: generatePrivateKey() };
  const pub = { lp: publicKeyOf(priv.lp), rp: publicKeyOf(priv.rp) };
  if (pub.lp.isErr()) return err(pub.lp.error);
  if (pub.rp.isErr()) return err(pub.rp.error);
  for (const role of ['lp', 'rp'] as const) {
    const file = `${dir}/${role}.key`;
    await writeFile(file, `${priv[role]}\n`, { mode: 0o600 });
    await chmod(file, 0o600); // an existing file keeps its mode on write
  }
  return ok({
    lp: { privateKeyFile: `${dir}/lp.key`, peerPublicKey: pub.rp.value },
    rp: { privateKeyFile: `${dir}/rp.key`, peerPublicKey: pub.lp.value },
  });
}

export const portalInstance = (lab: string, role: 'lp' | 'rp'): string => `${lab.slice(0, 12)}-${role}`;

export function clientAddrs(o: BondOptions): { v4: string; v6: string } {
  return o.singleInterface ? BOND.rp : BOND.client;
}

export function lpConfig(lab: string, links: LinkSettings[], o: BondOptions, keys: PortalKeys): string {
  const c = clientAddrs(o);
  const lines = [
    `# generated by mpctl lab for lab "${lab}"`,
    'role = "local"',
    `instance = "${portalInstance(lab, 'lp')}"`,
    'lan = "lan"',
    `client = ["${c.v4}/32", "${c.v6}/128"]`,
    `gateway = ["${BOND.gateway.v4}", "${BOND.gateway.v6}"]`,
    `remote = ["${BOND.rp.v4}", "${BOND.rp.v6}"]`,
    `port = ${BOND.port}`,
    ...keyLines(keys, o),
    ...(o.lp?.congestionControl === false ? ['congestion_control = false'] : []),
    `shape = ${o.shape === true}`,
    // whole-LAN mode, with the LP's own traffic through the bond too (from 192.168.1.1, fd00:1::1)
    ...(o.lan === true ? [`lan_prefixes = ["${LAN.v4}", "${LAN.v6}"]`, 'bond_local = true'] : []),
    ...(o.lp?.portForwards ? [`port_forwards = [${o.lp.portForwards.map((f) => JSON.stringify(f)).join(', ')}]`] : []),
    // budget usage (budget.json) in the lab's directory, which `lab down` removes
    `state_dir = "${labDir(lab)}/state"`,
    // [[redundant]] tables (given to both portals): after the top-level keys, before [[link]]
    ...(o.lp?.redundant ? ['', ...o.lp.redundant] : []),
  ];
  links.forEach((l, i) => {
    const k = i + 1;
    const v6 = o.ipv6Underlay === true && k % 2 === 0;
    // static estimates from the emulated settings (the congestion controller replaces them)
    const rate = Math.min(nominalBps(l.up) ?? 1e9, nominalBps(l.down) ?? 1e9);
    lines.push(
      '',
      '[[link]]',
      `name = "${l.label}"`,
      `interface = "wan${k}"`,
      v6 ? `gateway = "fd00:64:${k.toString(16)}::fe"` : `gateway = "100.64.${k}.254"`,
      v6 ? `source = "fd00:64:${k.toString(16)}::1"` : `source = "100.64.${k}.1"`,
      ...((o.ipCarrier === true && k % 2 === 0) || (Array.isArray(o.ipCarrier) && o.ipCarrier.includes(k)) ? ['carrier = "ip"'] : []),
      ...(o.lp?.omitRates === true
        ? []
        : [...(o.lp?.rates?.[i] === '' ? [] : [`rate = "${o.lp?.rates?.[i] ?? formatRate(rate)}"`]), `delay = "${formatDuration(Math.max(l.up.delayUs, 100))}"`]),
      ...(o.lp?.metrics?.[i] !== undefined ? [`metric = ${o.lp.metrics[i]}`] : []),
      ...(o.lp?.budgets?.[i] !== undefined ? [`budget = "${o.lp.budgets[i]}"`] : []),
    );
  });
  return `${lines.join('\n')}\n`;
}

export function rpConfig(lab: string, links: LinkSettings[], o: BondOptions, keys: PortalKeys): string {
  const c = clientAddrs(o);
  return [
    `# generated by mpctl lab for lab "${lab}"`,
    'role = "remote"',
    `instance = "${portalInstance(lab, 'rp')}"`,
    'wan = "wan"',
    'forward = ["srv"]',
    `port = ${BOND.port}`,
    `client = ["${c.v4}/32", "${c.v6}/128"]`,
    ...keyLines(keys, o),
    ...(o.singleInterface ? ['single_interface = true', 'reserved_ports = [22]'] : []),
    `shape = ${o.shape === true}`,
    `link_names = [${links.map((l) => `"${l.label}"`).join(', ')}]`,
    ...(o.lp?.redundant ? ['', ...o.lp.redundant] : []),
    '',
  ].join('\n');
}

/** Gives the client the bonded address and routes through the LP's proxied gateway (and, in a
 * lab with routed hosts, tells the client's router about both). */
async function configureClient(lab: string, links: number, o: BondOptions): Promise<Result<void, MpError>> {
  const r = openRtnl(nsName(lab, 'client'));
  if (r.isErr()) return err(r.error);
  const rt = r.value;
  try {
    const c = clientAddrs(o);
    for (const [cidr, gw, fam] of [
      [`${c.v4}/24`, BOND.gateway.v4, 4],
      [`${c.v6}/64`, BOND.gateway.v6, 6],
    ] as const) {
      const a = await rt.addAddress('eth0', cidr, { nodad: true });
      // EEXIST: the bond was up before in this lab (benchmarks restart it with other settings)
      if (a.isErr() && !(a.error.kind === 'NetlinkRejected' && a.error.errno === 'EEXIST')) return err(a.error);
      // replace the lab's default route (via the LP's lan address) with the bonded one
      await rt.deleteRoute({ dst: 'default', family: fam });
      const d = await rt.addRoute({ dst: 'default', via: gw, dev: 'eth0', src: c[fam === 4 ? 'v4' : 'v6'] });
      if (d.isErr()) return err(d.error);
    }
    return await routeClientAddresses(lab, links, [c.v4, c.v6], [BOND.gateway.v4, BOND.gateway.v6]);
  } finally {
    rt.close();
  }
}

/** Writes both configs, starts RP then LP inside their namespaces, and waits until each is up. */
export async function startBond(lab: string, links: LinkSettings[], o: BondOptions, mpctlPath: string): Promise<Result<void, MpError>> {
  const dir = labDir(lab);
  const files = { rp: `${dir}/rp.toml`, lp: `${dir}/lp.toml` };
  const keys = await generateBondKeys(dir);
  if (keys.isErr()) return err(keys.error);
  await writeFile(files.rp, rpConfig(lab, links, o, keys.value.rp));
  await writeFile(files.lp, lpConfig(lab, links, o, keys.value.lp));
  const c = o.lan === true ? ok(undefined) : await configureClient(lab, links.length, o);
  if (c.isErr()) return err(c.error);
  // mount the pin bpffs here, in the host's mount namespace: a portal started by `ip netns exec`
  // has a private one, and pins it mounted there would be invisible to `mpctl status` elsewhere
  const m = bpffsMount(BPFFS_ROOT);
  if (m.isErr()) return err(m.error);
  // the logs are appended to when the bond is restarted in the same lab: only this run's lines count
  const logFrom = { rp: 0, lp: 0 };
  // both at once, as a boot starts them (a portal's start is mostly its own CPU: the CLI's
  // modules and the BPF object's verification): an LP up before its RP listens has its first
  // initiation lost and retries 1 s later (handshakeRetryMs)
  const started = await Promise.all(
    (['rp', 'lp'] as const).map(async (role) => {
      const log = `${dir}/${role}.log`;
      logFrom[role] = await stat(log).then((s) => s.size, () => 0);
      const pid = await spawnDetached(nsName(lab, role), [mpctlPath, 'up', role === 'lp' ? 'local' : 'remote', '--config', files[role], '--no-tui'], log);
      if (pid.isErr()) return err(pid.error);
      return waitForLog(log, 'portal up', pid.value, 20_000, logFrom[role]);
    }),
  );
  for (const r of started) if (r.isErr()) return err(r.error);
  // the LP uses a link once its first probe is answered: wait for that (a link that starts cut
  // never answers, so this is bounded and not an error)
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    const text = (await readFile(`${dir}/lp.log`).catch(() => Buffer.alloc(0))).subarray(logFrom.lp).toString('utf8');
    const upLinks = new Set([...text.matchAll(/link (\d+) up/g)].map((m) => m[1]));
    if (upLinks.size >= links.filter((l) => !l.up.down && !l.down.down).length) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return ok(undefined);
}

/** Stops both portals cleanly (they tear down their own kernel state) before the lab goes away:
 * `mpctl down` in each one's namespace, both at once; none for a portal without a record (not
 * up: a lab without a bond, or one stopped already), where it would find nothing to do. */
export async function stopBond(lab: string, mpctlPath: string): Promise<void> {
  await Promise.all(
    (['lp', 'rp'] as const).map(async (role) => {
      const st = await readPortalState(portalInstance(lab, role));
      if (st.isErr() && st.error.kind === 'NotFound') return;
      await run('ip', ['netns', 'exec', nsName(lab, role), mpctlPath, 'down', '--instance', portalInstance(lab, role)], 15_000);
    }),
  );
}
