// Portal config: TOML file → validated, typed PortalConfig (config/types.ts). Every bad value is
// rejected as ConfigInvalid naming its key path (`link[1].gateway`, 0-based like the link ids)
// and carrying the value; unknown keys are errors, so a typo never silently means "default".
//
//   role = "local"                          role = "remote"
//   lan = "lan"                             wan = "wan"
//   client = ["198.51.100.10/32"]           client = ["198.51.100.10/32"]
//   gateway = ["198.51.100.1"]              forward = ["srv"]
//   remote = "198.51.100.2"
//   [[link]]
//   interface = "wan1"
//   gateway = "100.64.1.254"
//
// The order of checks: the table itself, `role`, unknown keys, then each key in the order of the
// reference (README "Portal configuration"), then the checks across keys.
import { INSTANCE_RULE, isInstanceName } from './instance.js';
import { readFile } from 'node:fs/promises';
import { err, ok, safeTry, type Result } from 'neverthrow';
import { parse as parseToml } from 'smol-toml';
import { MP_IPPROTO, MP_LAN_PREFIXES, MP_MAX_LINKS, MP_NAT_FORWARDS, MP_RESERVED_PORTS } from '../datapath/abi.js';
import { configInvalid, type MpError } from '../errors.js';
import { parseDuration, parseRate, rateProblem } from '../units.js';
import { parsePublicKey } from '../security/keys.js';
import type { AuthConfig, Family, LinkConfig, LocalConfig, PortalConfig, PortForward, Prefix, RemoteConfig } from './types.js';
import { redundantClasses } from './redundant.js';
import { canonicalAddress, isIfname, isLinkLocal, isUnicast, parseBytes, parseClientPrefix, prefixContains } from './values.js';

/** the data path's limits (bpf/mp.h, mirrored in datapath/abi.ts) */
export const MAX_LINKS = MP_MAX_LINKS;
export const MAX_RESERVED_PORTS = MP_RESERVED_PORTS;
/** port_forwards: each takes one entry of mp_nat_fwd and one of mp_nat_fwd_out */
export const MAX_PORT_FORWARDS = MP_NAT_FORWARDS;

/** Defaults of absent keys, in TOML spelling (the README table lists the same). */
export const DEFAULTS = {
  port: 7470,
  ip_proto: MP_IPPROTO, // 253, RFC 3692 experimental
  probe_interval: '100ms',
  carrier: 'udp',
  metric: 0,
  rate: '10mbit', // absent: discovered, from this start
  delay: '10ms',
  budget: 0,
  budget_period: 'monthly',
  congestion_control: true,
  ack_path: 'slowest',
  shape: 'auto' as boolean | 'auto',
  lan_nat_ports: '1024-65535',
} as const;

const COMMON_KEYS = ['role', 'instance', 'port', 'client', 'ip_proto', 'probe_interval', 'private_key', 'peer_public_key', 'insecure_no_auth', 'metrics_listen', 'congestion_control', 'ack_path', 'shape', 'redundant'];
const LOCAL_KEYS = [...COMMON_KEYS, 'lan', 'gateway', 'remote', 'state_dir', 'link', 'lan_prefixes', 'lan_nat_ports', 'port_forwards', 'bond_local'];
const REMOTE_KEYS = [...COMMON_KEYS, 'wan', 'forward', 'single_interface', 'reserved_ports', 'link_names'];
const LINK_KEYS = ['name', 'interface', 'gateway', 'source', 'carrier', 'metric', 'rate', 'delay', 'budget', 'budget_period'];

const LINK_NAME_RE = /^[\w.-]{1,16}$/;
/** protocol numbers the `ip` carrier must not take: the decap program would claim their packets */
const TAKEN_PROTOS: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };

type Table = Record<string, unknown>;
type R<T> = Result<T, MpError>;

const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (path: string, value: unknown, message: string) => err(configInvalid(path, value, message));
const fam = (f: Family) => `IPv${f}`;

export async function loadConfig(file: string): Promise<R<PortalConfig>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return err({ kind: 'NotFound', what: 'config', message: `cannot read config file ${file}` });
  }
  return parseTomlText(text, file).andThen((raw) => parseConfig(raw, file));
}

/** TOML text → its table; a syntax error names `file:line:column` and quotes that line. */
export function parseTomlText(text: string, file: string): R<unknown> {
  try {
    return ok(parseToml(text));
  } catch (e) {
    const { line, column, message } = e as { line?: number; column?: number; message: string };
    const reason = message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    if (line === undefined) return bad(file, undefined, `not valid TOML: ${reason}`);
    return bad(`${file}:${line}:${column ?? 1}`, text.split('\n')[line - 1] ?? '', `not valid TOML: ${reason}`);
  }
}

export function parseConfig(raw: unknown, source: string): R<PortalConfig> {
  return safeTry(function* () {
    if (!isTable(raw)) return bad(source, raw, 'a portal config must be a table of keys');
    const role = raw.role;
    if (role !== 'local' && role !== 'remote') return bad('role', role, 'must be "local" (LP) or "remote" (RP)');
    const [mine, theirs] = role === 'local' ? [LOCAL_KEYS, REMOTE_KEYS] : [REMOTE_KEYS, LOCAL_KEYS];
    for (const [k, v] of Object.entries(raw)) {
      if (mine.includes(k)) continue;
      if (theirs.includes(k))
        return bad(k, v, `is a ${role === 'local' ? 'Remote' : 'Local'} Portal key, not valid with role = "${role}"`);
      return bad(k, v, `unknown key (expected one of: ${mine.join(', ')})`);
    }
    const common = {
      instance: yield* instanceName(raw.instance, role),
      port: yield* integer('port', raw.port, 1, 65535, DEFAULTS.port),
      client: yield* clientPrefixes(raw.client),
      ipProto: yield* ipProto(raw.ip_proto),
      probeIntervalMs: yield* probeInterval(raw.probe_interval),
      auth: yield* authConfig(raw, role),
      ...(raw.metrics_listen === undefined ? {} : { metricsListen: yield* metricsListen(raw.metrics_listen) }),
      congestionControl: yield* boolean('congestion_control', raw.congestion_control, DEFAULTS.congestion_control),
      ackPath: yield* ackPath(raw.ack_path),
      shape: yield* shapeMode(raw.shape),
      redundant: yield* redundantClasses(raw.redundant),
    };
    return role === 'local' ? localConfig(raw, common) : remoteConfig(raw, common);
  });
}

type Common = Omit<LocalConfig, 'role' | 'lan' | 'gateway' | 'remote' | 'links' | 'lanPrefixes' | 'natPorts' | 'portForwards' | 'bondLocal'>;

function localConfig(raw: Table, common: Common): R<LocalConfig> {
  return safeTry(function* () {
    const lan = yield* ifname('lan', raw.lan);
    const gateway = yield* addresses('gateway', raw.gateway, 'the address(es) the client uses as its default gateway');
    for (const [i, g] of gateway.entries()) {
      const at = gateway.length === 1 && typeof raw.gateway === 'string' ? 'gateway' : `gateway[${i}]`;
      if (!isUnicast(g.address)) return bad(at, g.address, 'is not a unicast address');
      const c = common.client.find((p) => p.family === g.family);
      if (!c) return bad(at, g.address, `is ${fam(g.family)} but client has no ${fam(g.family)} prefix`);
      if (isHost(c) && c.address === g.address) return bad(at, g.address, 'is the client address itself');
    }
    for (const c of common.client)
      if (!gateway.some((g) => g.family === c.family))
        return bad('gateway', raw.gateway, `needs an ${fam(c.family)} address: the client has ${c.address}/${c.len}`);
    const remote = yield* addresses('remote', raw.remote, "the RP's public address(es), one per family");
    for (const [i, r] of remote.entries()) {
      const at = remote.length === 1 && typeof raw.remote === 'string' ? 'remote' : `remote[${i}]`;
      if (!isUnicast(r.address) || isLinkLocal(r.address))
        return bad(at, r.address, 'must be a unicast address reachable across the Internet');
      // a single-interface RP shares its one address with the client (client = remote, /32 or
      // /128); a remote strictly inside a larger client prefix would route the tunnel into itself
      const inside = common.client.find((p) => prefixContains(p, r.address) && !(p.len === (p.family === 4 ? 32 : 128)));
      if (inside) return bad(at, r.address, `is inside the client prefix ${inside.address}/${inside.len}`);
    }
    const stateDir = raw.state_dir;
    if (stateDir !== undefined && (typeof stateDir !== 'string' || !stateDir.startsWith('/') || stateDir.includes('\0')))
      return bad('state_dir', stateDir, 'must be an absolute directory path (budget usage is kept in <state_dir>/<instance>/budget.json)');
    const links = yield* linkTables(raw.link, lan, remote.map((r) => r.family));
    const lanPrefixes = yield* lanPrefixList(raw.lan_prefixes, common.client, remote.map((r) => r.address), links);
    const natPorts = yield* natPortRange(raw.lan_nat_ports);
    const portForwards = yield* portForwardList(raw.port_forwards, lanPrefixes, common.port);
    const bondLocal = yield* boolean('bond_local', raw.bond_local, false);
    if (bondLocal && lanPrefixes.length === 0)
      return bad('bond_local', raw.bond_local, "needs lan_prefixes (whole-LAN mode): the LP's own traffic leaves through the NAT as the client address, from its address on a LAN prefix");
    return ok({
      role: 'local' as const,
      ...common,
      lan,
      gateway: gateway.map((g) => g.address),
      remote: remote.map((r) => r.address),
      ...(stateDir === undefined ? {} : { stateDir: stateDir.replace(/\/+$/, '') || '/' }),
      links,
      lanPrefixes,
      natPorts,
      portForwards,
      bondLocal,
    });
  });
}

/** lan_prefixes (LP, whole-LAN mode): the LAN's private prefixes, each translated to the client
 * address of its family (a single address: the NAT has one address to hand ports of). */
function lanPrefixList(v: unknown, client: Prefix[], remote: string[], links: LinkConfig[]): R<Prefix[]> {
  return safeTry(function* () {
    if (v === undefined) return ok([]);
    if (!Array.isArray(v) || v.length > MP_LAN_PREFIXES)
      return bad('lan_prefixes', v, `must be an array of at most ${MP_LAN_PREFIXES} prefixes (e.g. ["192.168.1.0/24", "fd00:1::/64"])`);
    const out: Prefix[] = [];
    for (const [i, item] of v.entries()) {
      const at = `lan_prefixes[${i}]`;
      const p = parseClientPrefix(item);
      if ('error' in p) return bad(at, item, p.error.replace('a client address', 'a LAN prefix'));
      const c = client.find((x) => x.family === p.family);
      if (!c) return bad(at, item, `is ${fam(p.family)} but client has no ${fam(p.family)} address to translate it to`);
      if (!isHost(c))
        return bad(at, item, `is ${fam(p.family)} but client ${c.address}/${c.len} is not a single address (the NAT translates to one address; a routed prefix needs no NAT: give it to the LAN as client)`);
      if (prefixContains(p, c.address) || prefixContains(c, p.address))
        return bad(at, item, `overlaps the client prefix ${c.address}/${c.len}`);
      const r = remote.find((a) => prefixContains(p, a));
      if (r) return bad(at, item, `contains the RP's address ${r}`);
      for (const l of links)
        for (const a of [l.gateway, l.source])
          if (a !== undefined && prefixContains(p, a)) return bad(at, item, `contains ${a} of link[${l.id}] ("${l.name}"): a LAN prefix must not be reachable through a link`);
      const o = out.find((x) => x.family === p.family && (prefixContains(x, p.address) || prefixContains(p, x.address)));
      if (o) return bad(at, item, `overlaps ${o.address}/${o.len}, listed before`);
      out.push(p);
    }
    return ok(out);
  });
}

/** port_forwards (LP, whole-LAN mode): "tcp/443 -> 192.168.1.10:443", "udp/51820 -> 192.168.1.20"
 * (same port), "tcp/8443 -> [fd00:1::10]:443". The LAN host must be in a LAN prefix. */
const FORWARD_RE = /^(tcp|udp)\/(\d{1,5})\s*->\s*(?:\[([^\]]+)\]|([^\s:\[\]]+))(?::(\d{1,5}))?$/;
function portForwardList(v: unknown, lan: Prefix[], tunnelPort: number): R<PortForward[]> {
  return safeTry(function* () {
    if (v === undefined) return ok([]);
    if (!Array.isArray(v) || v.length > MAX_PORT_FORWARDS)
      return bad('port_forwards', v, `must be an array of at most ${MAX_PORT_FORWARDS} forwards such as "tcp/443 -> 192.168.1.10:443"`);
    if (v.length > 0 && lan.length === 0) return bad('port_forwards', v, 'needs lan_prefixes (whole-LAN mode): a forward leads to a LAN host');
    const out: PortForward[] = [];
    for (const [i, item] of v.entries()) {
      const at = `port_forwards[${i}]`;
      const m = typeof item === 'string' ? FORWARD_RE.exec(item.trim()) : null;
      if (!m) return bad(at, item, 'must be "tcp/PORT -> ADDRESS[:PORT]" or "udp/PORT -> ADDRESS[:PORT]" (IPv6 in brackets: "tcp/443 -> [fd00:1::10]:443")');
      const proto = m[1] as 'tcp' | 'udp';
      const port = Number(m[2]);
      const targetPort = m[5] === undefined ? port : Number(m[5]);
      if (port < 1 || port > 65535 || targetPort < 1 || targetPort > 65535) return bad(at, item, 'has a port outside 1-65535');
      const a = canonicalAddress(m[3] ?? m[4]);
      if (!a) return bad(at, item, 'does not name an IPv4 or IPv6 address');
      if (!lan.some((p) => prefixContains(p, a.address))) return bad(at, item, `leads to ${a.address}, which is in no lan_prefixes prefix`);
      if (port === tunnelPort) return bad(at, item, `is the tunnel port ${tunnelPort}, which stays with the RP`);
      const f: PortForward = { proto, port, family: a.family, address: a.address, targetPort };
      const twice = out.find((o) => o.proto === f.proto && o.family === f.family && o.port === f.port);
      if (twice) return bad(at, item, `forwards ${proto}/${port} of the ${fam(f.family)} client address a second time`);
      const same = out.find((o) => o.proto === f.proto && o.address === f.address && o.targetPort === f.targetPort);
      if (same) return bad(at, item, `leads to ${a.address} port ${targetPort} as ${same.proto}/${same.port} does (one forward per LAN host and port)`);
      out.push(f);
    }
    return ok(out);
  });
}

/** lan_nat_ports: "lo-hi", the client address's ports the LAN's flows are translated to. */
function natPortRange(v: unknown): R<{ lo: number; hi: number }> {
  const raw = v ?? DEFAULTS.lan_nat_ports;
  const m = typeof raw === 'string' ? /^(\d{1,5})-(\d{1,5})$/.exec(raw) : null;
  const lo = m ? Number(m[1]) : 0;
  const hi = m ? Number(m[2]) : 0;
  if (!m || lo < 1 || hi > 65535 || hi - lo < 255)
    return bad('lan_nat_ports', raw, 'must be a port range "lo-hi" of at least 256 ports within 1-65535 (e.g. "1024-65535")');
  return ok({ lo, hi });
}

function remoteConfig(raw: Table, common: Common): R<RemoteConfig> {
  return safeTry(function* () {
    const wan = yield* ifname('wan', raw.wan);
    const forward = yield* forwardIfaces(raw.forward, wan);
    const singleInterface = raw.single_interface ?? false;
    if (typeof singleInterface !== 'boolean') return bad('single_interface', singleInterface, 'must be true or false');
    if (singleInterface)
      for (const [i, c] of common.client.entries())
        if (!isHost(c))
          return bad(
            Array.isArray(raw.client) ? `client[${i}]` : 'client',
            `${c.address}/${c.len}`,
            "must be a single address on a single-interface RP (the RP's own address)",
          );
    const reservedPorts = yield* reserved(raw.reserved_ports, singleInterface, common.port);
    const linkNames = yield* peerLinkNames(raw.link_names);
    return ok({ role: 'remote' as const, ...common, wan, forward, singleInterface, reservedPorts, linkNames });
  });
}

// ---- the [[link]] tables ----------------------------------------------------------------------

function linkTables(v: unknown, lan: string, remoteFamilies: Family[]): R<LinkConfig[]> {
  return safeTry(function* () {
    if (v === undefined) return bad('link', v, 'at least one [[link]] table is required');
    if (!Array.isArray(v) || v.length < 1 || v.length > MAX_LINKS)
      return bad('link', v, `must be 1 to ${MAX_LINKS} [[link]] tables`);
    const links: LinkConfig[] = [];
    for (const [i, t] of v.entries()) {
      const l = yield* linkTable(t, i, lan, remoteFamilies);
      const at = `link[${i}]`;
      for (const o of links) {
        if (o.interface === l.interface)
          return bad(`${at}.interface`, l.interface, `is already used by link[${o.id}] ("${o.name}")`);
        if (o.name === l.name) return bad(`${at}.name`, l.name, `is already the name of link[${o.id}]`);
        if (l.source !== undefined && o.source === l.source)
          return bad(`${at}.source`, l.source, `is already the source of link[${o.id}] ("${o.name}")`);
      }
      links.push(l);
    }
    return ok(links);
  });
}

function linkTable(t: unknown, id: number, lan: string, remoteFamilies: Family[]): R<LinkConfig> {
  const at = `link[${id}]`;
  return safeTry(function* () {
    if (!isTable(t)) return bad(at, t, 'must be a table ([[link]])');
    for (const [k, v] of Object.entries(t))
      if (!LINK_KEYS.includes(k)) return bad(`${at}.${k}`, v, `unknown key (expected one of: ${LINK_KEYS.join(', ')})`);
    const iface = yield* ifname(`${at}.interface`, t.interface);
    if (iface === lan) return bad(`${at}.interface`, iface, 'is the lan interface');
    const name = t.name ?? iface;
    if (typeof name !== 'string' || !LINK_NAME_RE.test(name))
      return bad(`${at}.name`, name, 'must be 1-16 letters, digits, ".", "_" or "-"');

    const gateway = yield* optionalAddress(`${at}.gateway`, t.gateway);
    if (gateway && !isUnicast(gateway.address)) return bad(`${at}.gateway`, t.gateway, 'is not a unicast address');
    const source = yield* optionalAddress(`${at}.source`, t.source);
    if (source && (!isUnicast(source.address) || isLinkLocal(source.address)))
      return bad(`${at}.source`, t.source, 'must be a unicast address that is not link-local');
    if (gateway && source && gateway.family !== source.family)
      return bad(`${at}.source`, t.source, `is ${fam(source.family)} but gateway is ${fam(gateway.family)}`);
    const given = gateway ? { key: 'gateway', ...gateway } : source ? { key: 'source', ...source } : undefined;
    if (given && !remoteFamilies.includes(given.family))
      return bad(`${at}.${given.key}`, t[given.key], `is ${fam(given.family)} but remote has no ${fam(given.family)} address`);
    const family = given?.family ?? (remoteFamilies.length === 1 ? remoteFamilies[0] : undefined);
    if (family === undefined)
      return bad(
        `${at}.source`,
        undefined,
        "is required on a link without gateway when remote has both IPv4 and IPv6 addresses (it chooses the link's family)",
      );

    const carrier = t.carrier ?? DEFAULTS.carrier;
    if (carrier !== 'udp' && carrier !== 'ip') return bad(`${at}.carrier`, carrier, 'must be "udp" or "ip"');
    const metric = yield* integer(`${at}.metric`, t.metric, 0, 255, DEFAULTS.metric);

    const rateIn = t.rate ?? DEFAULTS.rate;
    const rateBps = typeof rateIn === 'string' || typeof rateIn === 'number' ? parseRate(rateIn) : undefined;
    if (rateBps === undefined || rateBps === null)
      return bad(`${at}.rate`, rateIn, rateProblem(rateIn));
    const delayIn = t.delay ?? DEFAULTS.delay;
    const delayUs = typeof delayIn === 'string' || typeof delayIn === 'number' ? parseDuration(delayIn) : undefined;
    if (delayUs === undefined) return bad(`${at}.delay`, delayIn, 'is not a duration up to 10s (e.g. "10ms", "250us")');
    const budgetIn = t.budget ?? DEFAULTS.budget;
    const budgetBytes = parseBytes(budgetIn);
    if (budgetBytes === undefined) return bad(`${at}.budget`, budgetIn, 'is not a byte count (e.g. "10GB", "500MB", or 0 for none)');
    const periodIn = t.budget_period ?? DEFAULTS.budget_period;
    const budgetPeriod = parseBudgetPeriod(periodIn);
    if (budgetPeriod === undefined) return bad(`${at}.budget_period`, periodIn, 'must be "monthly" (renews on the 1st), "monthly:N" (day N, 1-31), "daily" or "none"');

    const link: LinkConfig = { id, name, interface: iface, family, carrier, metric, rateBps, delayUs, budgetBytes, budgetPeriod };
    if (gateway) link.gateway = gateway.address;
    if (source) link.source = source.address;
    if (t.rate === undefined) link.unrated = true; // measured at link-up (run/train.ts)
    return ok(link);
  });
}

// ---- single keys --------------------------------------------------------------------------------

const isHost = (p: Prefix) => p.len === (p.family === 4 ? 32 : 128);

function instanceName(v: unknown, role: string): R<string> {
  if (v === undefined) return ok(role);
  if (!isInstanceName(v)) return bad('instance', v, INSTANCE_RULE);
  return ok(v);
}

function integer(path: string, v: unknown, lo: number, hi: number, dflt: number): R<number> {
  if (v === undefined) return ok(dflt);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
    return bad(path, v, `must be an integer from ${lo} to ${hi}`);
  return ok(v);
}

function ipProto(v: unknown): R<number> {
  return integer('ip_proto', v, 1, 255, DEFAULTS.ip_proto).andThen((n) =>
    TAKEN_PROTOS[n]
      ? bad('ip_proto', v, `is ${TAKEN_PROTOS[n]}; the ip carrier needs a protocol of its own (253 or 254, RFC 3692)`)
      : ok(n),
  );
}

function probeInterval(v: unknown): R<number> {
  const raw = v ?? DEFAULTS.probe_interval;
  const us = typeof raw === 'string' ? parseDuration(raw) : undefined;
  if (us === undefined || us < 20_000 || us > 1_000_000 || us % 1000 !== 0)
    return bad('probe_interval', raw, 'is not a whole number of milliseconds from 20ms to 1s (e.g. "100ms")');
  return ok(us / 1000);
}

/** private_key, peer_public_key, insecure_no_auth. The key file itself is read (and its mode
 * checked) at `up` (security/auth.ts), so a plan or a dry run needs no secret. */
function authConfig(raw: Table, role: 'local' | 'remote'): R<AuthConfig> {
  const peerRole = role === 'local' ? "the Remote Portal's" : "the Local Portal's";
  const insecure = raw.insecure_no_auth ?? false;
  if (typeof insecure !== 'boolean') return bad('insecure_no_auth', insecure, 'must be true or false');
  const file = raw.private_key;
  if (file !== undefined && (typeof file !== 'string' || !file.startsWith('/') || file.includes('\0') || file.endsWith('/')))
    return bad('private_key', file, 'must be the absolute path of a private key file (make one: umask 077; mpctl genkey > /etc/mpctl/portal.key)');
  const peer = raw.peer_public_key;
  if (peer !== undefined) {
    if (typeof peer !== 'string') return bad('peer_public_key', peer, `must be ${peerRole} public key in base64 (mpctl pubkey prints it)`);
    const k = parsePublicKey(peer, 'peer_public_key');
    if (k.isErr()) return err(k.error);
  }
  if (insecure) return ok({ mode: 'insecure-no-auth', privateKeyFile: file ?? null, peerPublicKey: peer ?? null });
  if (file === undefined)
    return bad('private_key', file, 'is required: the path of this portal\'s private key file (mpctl genkey), or insecure_no_auth = true for benchmarks');
  if (peer === undefined)
    return bad('peer_public_key', peer, `is required: ${peerRole} public key in base64 (mpctl pubkey < its key file)`);
  return ok({ mode: 'authenticated', privateKeyFile: file, peerPublicKey: peer });
}

/** `"127.0.0.1:9472"` or `"[::1]:9472"`: an address literal (no names: nothing to resolve at up) and a port. */
function boolean(path: string, v: unknown, dflt: boolean): R<boolean> {
  if (v === undefined) return ok(dflt);
  return typeof v === 'boolean' ? ok(v) : bad(path, v, 'must be true or false');
}

/** `monthly`, `monthly:15`, `daily`, `none`: when a link's budget renews (UTC). */
function parseBudgetPeriod(v: unknown): LinkConfig['budgetPeriod'] | undefined {
  if (v === 'none' || v === 'daily') return { kind: v };
  if (v === 'monthly') return { kind: 'monthly', day: 1 };
  const m = typeof v === 'string' ? /^monthly:(\d{1,2})$/.exec(v) : null;
  const day = m ? Number(m[1]) : 0;
  return day >= 1 && day <= 31 ? { kind: 'monthly', day } : undefined;
}

function metricsListen(v: unknown): R<{ host: string; port: number }> {
  const m = typeof v === 'string' ? /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(v) : null;
  const host = m ? canonicalAddress(m[1] ?? m[2]) : undefined;
  const port = m ? Number(m[3]) : 0;
  if (!m || !host || port < 1 || port > 65535)
    return bad('metrics_listen', v, 'must be "address:port" with an IP address, e.g. "127.0.0.1:9472" or "[::1]:9472"');
  if (host.family === 6 && !m[1]) return bad('metrics_listen', v, 'an IPv6 address needs brackets: "[::1]:9472"');
  return ok({ host: host.address, port });
}

function ifname(path: string, v: unknown): R<string> {
  if (v === undefined) return bad(path, v, 'is required: an interface name');
  if (!isIfname(v)) return bad(path, v, 'is not an interface name (1-15 characters, no "/", ":" or spaces)');
  return ok(v);
}

function optionalAddress(path: string, v: unknown): R<{ family: Family; address: string } | undefined> {
  if (v === undefined) return ok(undefined);
  const a = canonicalAddress(v);
  return a ? ok(a) : bad(path, v, 'is not an IPv4 or IPv6 address');
}

/** A string or an array of strings; each item checked by `one`, at most one per family. */
function perFamily<T extends { family: Family }>(
  key: string,
  v: unknown,
  what: string,
  example: string,
  one: (at: string, item: unknown) => R<T>,
): R<T[]> {
  return safeTry(function* () {
    if (v === undefined) return bad(key, v, `is required: ${what}`);
    const items: [string, unknown][] =
      typeof v === 'string' ? [[key, v]] : Array.isArray(v) ? v.map((x, i) => [`${key}[${i}]`, x]) : [];
    if (items.length < 1 || items.length > 2)
      return bad(key, v, `must be ${example} or an array of at most one IPv4 and one IPv6 value`);
    const out: T[] = [];
    for (const [at, item] of items) {
      const x = yield* one(at, item);
      if (out.some((o) => o.family === x.family)) return bad(at, item, `is a second ${fam(x.family)} value (at most one per family)`);
      out.push(x);
    }
    return ok(out);
  });
}

function clientPrefixes(v: unknown): R<Prefix[]> {
  return perFamily('client', v, 'the address(es) the client uses as its own', 'a prefix', (at, item) => {
    const p = parseClientPrefix(item);
    return 'error' in p ? bad(at, item, p.error) : ok(p);
  });
}

function addresses(key: string, v: unknown, what: string): R<{ family: Family; address: string }[]> {
  return perFamily(key, v, what, 'an address', (at, item) => {
    const a = canonicalAddress(item);
    return a ? ok(a) : bad(at, item, 'is not an IPv4 or IPv6 address');
  });
}

function forwardIfaces(v: unknown, wan: string): R<string[]> {
  if (v === undefined) return ok([]);
  if (!Array.isArray(v)) return bad('forward', v, 'must be an array of interface names');
  const out: string[] = [];
  for (const [i, x] of v.entries()) {
    const at = `forward[${i}]`;
    if (!isIfname(x)) return bad(at, x, 'is not an interface name (1-15 characters, no "/", ":" or spaces)');
    if (x === wan) return bad(at, x, 'is the wan interface (its traffic to the client is encapsulated anyway)');
    if (out.includes(x)) return bad(at, x, 'is listed twice');
    out.push(x);
  }
  return ok(out);
}

function reserved(v: unknown, singleInterface: boolean, port: number): R<number[]> {
  if (v === undefined) return ok([]);
  if (!Array.isArray(v) || v.length > MAX_RESERVED_PORTS)
    return bad('reserved_ports', v, `must be an array of at most ${MAX_RESERVED_PORTS} ports`);
  if (v.length > 0 && !singleInterface)
    return bad('reserved_ports', v, 'only applies to a single-interface RP (set single_interface = true)');
  const out: number[] = [];
  for (const [i, x] of v.entries()) {
    const at = `reserved_ports[${i}]`;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > 65535) return bad(at, x, 'must be an integer from 1 to 65535');
    if (x === port) return bad(at, x, 'is the tunnel port, which always stays local');
    if (out.includes(x)) return bad(at, x, 'is listed twice');
    out.push(x);
  }
  return ok(out);
}

/** link_names (RP): the LP's link names in the order of its [[link]] tables, so that status, the
 *  console, metrics and `mpctl link <name>` on the RP speak of "dsl", not of link 0. */
function peerLinkNames(v: unknown): R<string[]> {
  if (v === undefined) return ok([]);
  if (!Array.isArray(v) || v.length > MAX_LINKS)
    return bad('link_names', v, `must be an array of at most ${MAX_LINKS} names: the LP's [[link]] names in its order`);
  const out: string[] = [];
  for (const [i, x] of v.entries()) {
    const at = `link_names[${i}]`;
    if (typeof x !== 'string' || !LINK_NAME_RE.test(x)) return bad(at, x, 'must be 1-16 letters, digits, ".", "_" or "-"');
    if (out.includes(x)) return bad(at, x, 'is listed twice');
    out.push(x);
  }
  return ok(out);
}

/** shape: per-link shaping (run/shaper.ts): on every link device, off, or "auto" (where the
 * device's root qdisc is the kernel's default; an operator's own root leaves that device's
 * links unshaped). */
function shapeMode(v: unknown): R<boolean | 'auto'> {
  if (v === undefined) return ok(DEFAULTS.shape);
  if (typeof v === 'boolean' || v === 'auto') return ok(v);
  return bad('shape', v, 'must be true (shape every link; up fails on a device with a root qdisc of its own), false, or "auto" (shape the links whose device has the kernel\'s default root qdisc, leave the others unshaped)');
}

/** ack_path: where pure TCP ACKs go (bpf/schedule.h). */
function ackPath(v: unknown): R<'slowest' | 'earliest'> {
  if (v === undefined) return ok(DEFAULTS.ack_path);
  if (v === 'slowest' || v === 'earliest') return ok(v);
  return bad('ack_path', v, 'must be "slowest" (ACKs take the slowest link of the tier, so window-limited senders fill links of different delay) or "earliest" (like data)');
}
