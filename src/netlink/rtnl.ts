// The netlink port: every link/address/route/qdisc change mpctl makes goes through here, via the
// npm package `netlink` (rtnetlink). The package is hidden behind the `Rtnl` interface so the
// control plane can be unit-tested with a recording fake, and its plain-string errors
// ("Request rejected: EEXIST") are parsed into `NetlinkRejected` at this one boundary.
import { openSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { RtNetlinkSocket } from 'netlink';
import { err, ok, type Result } from 'neverthrow';
import { bug, type MpError } from '../errors.js';
import { withNetns } from '../native/netns.js';
import { nla, nlaNested, nlaStr, nlaU32 } from './attr.js';
import { bufferToIp, ipToBuffer, parsePrefix, type Family } from './ip.js';
import {
  checkHtbClassParams,
  checkHtbIds,
  encodeBfifoOptions,
  encodeHtbClassOptions,
  encodeHtbQdiscOptions,
  htbLeafHandle,
  tcHandle,
  type HtbClassParams,
} from './htb.js';
import { encodeTbfOptions, type TbfParams } from './tbf.js';

// The package is CommonJS: `require`d, not imported, because an ESM import of it has node's
// CommonJS export lexer parse its whole 1.6 MB build (every file it re-exports) at every start of
// every command, ~110 ms of this machine's CPU, even for one that never opens a socket.
const { createRtNetlink, FlagsNew } = createRequire(import.meta.url)('netlink') as typeof import('netlink');

export interface LinkInfo {
  index: number;
  name: string;
  up: boolean;
  mtu: number;
  mac: string;
  /** false: IFF_NOARP (no neighbour resolution on the link) */
  arp: boolean;
}

export interface AddrInfo {
  ifname: string;
  family: Family;
  address: string;
  prefixlen: number;
}

export interface RouteSpec {
  /** `default` or a prefix such as `10.0.0.0/24`. */
  dst: string;
  via?: string;
  dev?: string;
  table?: number;
  /** preferred source address */
  src?: string;
  /** needed for `default` routes without `via` */
  family?: Family;
}

export interface RuleSpec {
  family: Family;
  priority: number;
  table: number;
  /** source prefix (`100.64.1.1` or `10.0.0.0/8`) */
  from?: string;
  fwmark?: number;
}

/** The counters of one htb class's bfifo leaf (TCA_STATS, struct tc_stats): what left the queue,
 * what it dropped because it was full, and what waits in it now. */
export interface LeafStats {
  /** sent (dequeued) */
  packets: number;
  bytes: number;
  drops: number;
  backlogBytes: number;
  qlen: number;
}

/** A device's root qdisc as the kernel reports it. */
export interface RootQdisc {
  kind: string;
  /** 0: a default the kernel made (noqueue, pfifo_fast, mq, fq_codel...); else one someone installed */
  handle: number;
}

export interface Rtnl {
  /** Namespace this socket configures (`null`: the caller's own). */
  readonly ns: string | null;
  listLinks(): Promise<Result<LinkInfo[], MpError>>;
  linkIndex(name: string): Promise<Result<number, MpError>>;
  /** Creates a veth pair `name` (here) <-> `peer` (in namespace `peerNs`, or here if null). */
  createVeth(name: string, peer: string, peerNs: string | null): Promise<Result<void, MpError>>;
  /** `ip link add NAME type bridge` (the lab's LAN switch) */
  createBridge(name: string): Promise<Result<void, MpError>>;
  /** `ip link set NAME master BRIDGE` */
  setMaster(name: string, bridge: string): Promise<Result<void, MpError>>;
  /** `ip link set NAME [mtu N] [arp on|off] [up|down]`: only what is given changes. */
  setLink(name: string, opts: { up?: boolean; mtu?: number; arp?: boolean }): Promise<Result<void, MpError>>;
  deleteLink(name: string): Promise<Result<void, MpError>>;
  addAddress(ifname: string, cidr: string, opts?: { nodad?: boolean }): Promise<Result<void, MpError>>;
  listAddresses(): Promise<Result<AddrInfo[], MpError>>;
  addRoute(r: RouteSpec): Promise<Result<void, MpError>>;
  deleteRoute(r: RouteSpec): Promise<Result<void, MpError>>;
  addRule(r: RuleSpec): Promise<Result<void, MpError>>;
  deleteRule(r: RuleSpec): Promise<Result<void, MpError>>;
  /** neighbour proxy entry (`ip neigh add proxy ADDR dev DEV [router]`) */
  addNeighProxy(address: string, dev: string, router?: boolean): Promise<Result<void, MpError>>;
  deleteNeighProxy(address: string, dev: string): Promise<Result<void, MpError>>;
  /** Whether `ifname` has a clsact qdisc (the hook BPF tc programs attach to). */
  hasClsact(ifname: string): Promise<Result<boolean, MpError>>;
  addClsact(ifname: string): Promise<Result<void, MpError>>;
  deleteClsact(ifname: string): Promise<Result<void, MpError>>;
  /** Installs (or changes in place) a tbf root qdisc (1:0); `null` removes that root qdisc. */
  setTbf(ifname: string, tbf: TbfParams | null): Promise<Result<void, MpError>>;
  /** The device's root qdisc (null: none, as on a device that is down). */
  rootQdisc(ifname: string): Promise<Result<RootQdisc | null, MpError>>;
  /**
   * Makes the root qdisc an htb with handle `major`:0 and default class 0 (unclassified packets
   * go out unshaped through its direct queue of `directQlen` packets), replacing whatever root
   * there is. Already that htb: nothing changes (its classes and their queues stay). `current`:
   * the root the caller has just read with rootQdisc (spares a second dump of every qdisc).
   */
  setHtbRoot(ifname: string, major: number, directQlen?: number, current?: RootQdisc | null): Promise<Result<void, MpError>>;
  /**
   * Creates htb class `major`:`minor` under the htb root `major`:0 with a bfifo leaf
   * ((major+minor):0), or changes an existing one's rate and leaf limit in place (its queue and
   * tokens stay). Cheap enough to call many times a second: two requests, no lookups.
   */
  setHtbClass(ifname: string, major: number, minor: number, p: HtbClassParams): Promise<Result<void, MpError>>;
  /** The bfifo leaves of htb `major`'s classes on each of `ifnames`, by device, then class minor
   * (classes without one left out; a device that is gone too, so that the others are still
   * read): one dump of the namespace's qdiscs for all of them. */
  leafStats(ifnames: readonly string[], major: number): Promise<Result<Map<string, Map<number, LeafStats>>, MpError>>;
  /** Deletes htb class `major`:`minor` and its leaf (none there: success). */
  deleteHtbClass(ifname: string, major: number, minor: number): Promise<Result<void, MpError>>;
  /** Deletes the root qdisc (with `handle`: only if it is that one); the kernel's default root
   * comes back. Nothing to delete is success. */
  deleteRootQdisc(ifname: string, handle?: number): Promise<Result<void, MpError>>;
  /** `ip route get ADDR`: the path MTU the route to it carries, including what the kernel cached
   * from ICMP "fragmentation needed" / "packet too big" (null: no MTU on the route). */
  routeMtu(address: string): Promise<Result<number | null, MpError>>;
  close(): void;
}

/** struct tc_stats { u64 bytes; u32 packets, drops, overlimits, bps, pps, qlen, backlog; } */
const TC_STATS_LEN = 36;

/** TCA_STATS of a qdisc (host byte order). */
export function decodeTcStats(b: Buffer): LeafStats {
  return { bytes: Number(b.readBigUInt64LE(0)), packets: b.readUInt32LE(8), drops: b.readUInt32LE(12), qlen: b.readUInt32LE(28), backlogBytes: b.readUInt32LE(32) };
}

const ERRNO_RE = /Request rejected: (E[A-Z0-9]+|-?\d+)/;

/** Turns whatever the `netlink` package threw into our error type. */
export function netlinkError(op: string, e: unknown): MpError {
  const msg = e instanceof Error ? e.message : String(e);
  const m = ERRNO_RE.exec(msg);
  if (m?.[1]) {
    if (m[1] === 'EPERM' || m[1] === 'EACCES')
      return { kind: 'PermissionDenied', message: `netlink ${op}: ${m[1]} (run as root or with CAP_NET_ADMIN)` };
    return { kind: 'NetlinkRejected', op, errno: m[1] };
  }
  if (/Timeout/.test(msg)) return { kind: 'Timeout', what: `netlink ${op}`, message: `netlink ${op} timed out` };
  return { kind: 'NetlinkRejected', op, errno: 'EUNKNOWN', detail: msg };
}

const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const TC_H_ROOT = 0xffffffff;
const TC_H_CLSACT = 0xfffffff1;
const REQ_TIMEOUT_MS = 5000;
/** the tbf root's handle, 1:0 */
const TBF_HANDLE = 0x10000;

const isNoDevice = (r: Result<unknown, MpError>): boolean =>
  r.isErr() && r.error.kind === 'NetlinkRejected' && r.error.errno === 'ENODEV';

class NetlinkRtnl implements Rtnl {
  constructor(
    readonly ns: string | null,
    private readonly sock: RtNetlinkSocket,
  ) {}

  /** ifindex by name for the requests made many times a second (setHtbClass): dropped when the
   * kernel answers ENODEV (the device went away, or came back under another index) */
  private readonly ifindexes = new Map<string, number>();

  /** the last request in flight: the next one waits for it */
  private chain: Promise<unknown> = Promise.resolve();

  /**
   * One request at a time on the socket. The netlink package keeps one multipart reply in
   * assembly per socket: a dump (getLinks, which every request by name starts with) whose parts
   * come in several datagrams, with another request's reply landing between them, is cut short
   * and both fail ("Multipart message not terminated properly"; seen on an RP's start, when the
   * loop device's MTU was set while another request ran).
   */
  private call<T>(op: string, f: () => Promise<T>): Promise<Result<T, MpError>> {
    const run = async (): Promise<Result<T, MpError>> => {
      try {
        return ok(await f());
      } catch (e) {
        return err(netlinkError(op, e));
      }
    };
    const next = this.chain.then(run, run);
    this.chain = next;
    return next;
  }

  async listLinks(): Promise<Result<LinkInfo[], MpError>> {
    return this.call('getLinks', async () =>
      (await this.sock.getLinks(undefined, undefined, { timeout: REQ_TIMEOUT_MS })).map((l) => ({
        index: l.data.index ?? 0,
        name: l.attrs.ifname ?? '',
        up: Boolean(l.data.flags?.up),
        mtu: l.attrs.mtu ?? 0,
        mac: l.attrs.address ? [...l.attrs.address].map((x) => x.toString(16).padStart(2, '0')).join(':') : '',
        arp: !l.data.flags?.noarp,
      })),
    );
  }

  async linkIndex(name: string): Promise<Result<number, MpError>> {
    const links = await this.listLinks();
    if (links.isErr()) return err(links.error);
    const l = links.value.find((x) => x.name === name);
    return l
      ? ok(l.index)
      : err({ kind: 'NotFound', what: 'interface', message: `no interface ${name}${this.ns ? ` in namespace ${this.ns}` : ''}` });
  }

  async createVeth(name: string, peer: string, peerNs: string | null): Promise<Result<void, MpError>> {
    let fd: number | null = null;
    try {
      if (peerNs) fd = openSync(`/run/netns/${peerNs}`, 'r');
    } catch {
      return err({ kind: 'NotFound', what: 'namespace', message: `no network namespace ${peerNs}` });
    }
    try {
      const peerAttrs = [nlaStr(IFLA_IFNAME, peer)];
      if (fd !== null) peerAttrs.push(nlaU32(IFLA_NET_NS_FD, fd));
      const peerInfo = nla(VETH_INFO_PEER, Buffer.concat([Buffer.alloc(16), ...peerAttrs])); // ifinfomsg + attrs
      const linkinfo = Buffer.concat([nlaStr(IFLA_INFO_KIND, 'veth'), nlaNested(IFLA_INFO_DATA, peerInfo)]);
      return (
        await this.call(`create veth ${name}/${peer}`, () =>
          this.sock.newLink({}, { ifname: name, linkinfo }, { flags: FlagsNew.CREATE | FlagsNew.EXCL, timeout: REQ_TIMEOUT_MS }),
        )
      ).map(() => undefined);
    } finally {
      if (fd !== null) closeSync(fd);
    }
  }

  async createBridge(name: string): Promise<Result<void, MpError>> {
    const linkinfo = nlaStr(IFLA_INFO_KIND, 'bridge');
    return (
      await this.call(`create bridge ${name}`, () =>
        this.sock.newLink({}, { ifname: name, linkinfo }, { flags: FlagsNew.CREATE | FlagsNew.EXCL, timeout: REQ_TIMEOUT_MS }),
      )
    ).map(() => undefined);
  }

  async setMaster(name: string, bridge: string): Promise<Result<void, MpError>> {
    const idx = await this.linkIndex(name);
    if (idx.isErr()) return err(idx.error);
    const br = await this.linkIndex(bridge);
    if (br.isErr()) return err(br.error);
    return (await this.call(`set link ${name} master ${bridge}`, () => this.sock.setLink({ index: idx.value }, { master: br.value }, { timeout: REQ_TIMEOUT_MS }))).map(
      () => undefined,
    );
  }

  async setLink(name: string, opts: { up?: boolean; mtu?: number; arp?: boolean }): Promise<Result<void, MpError>> {
    const idx = await this.linkIndex(name);
    if (idx.isErr()) return err(idx.error);
    // ifi_change names the flags this message sets; ifi_flags holds their new values
    const flags: { up?: true; noarp?: true } = {};
    const change: { up?: true; noarp?: true } = {};
    if (opts.up !== undefined) {
      change.up = true;
      if (opts.up) flags.up = true;
    }
    if (opts.arp !== undefined) {
      change.noarp = true;
      if (!opts.arp) flags.noarp = true;
    }
    const data = Object.keys(change).length ? { index: idx.value, flags, change } : { index: idx.value };
    const attrs = opts.mtu === undefined ? {} : { mtu: opts.mtu };
    return (await this.call(`set link ${name}`, () => this.sock.setLink(data, attrs, { timeout: REQ_TIMEOUT_MS }))).map(() => undefined);
  }

  async deleteLink(name: string): Promise<Result<void, MpError>> {
    const idx = await this.linkIndex(name);
    if (idx.isErr()) return err(idx.error);
    return (await this.call(`delete link ${name}`, () => this.sock.delLink({ index: idx.value }, {}, { timeout: REQ_TIMEOUT_MS }))).map(
      () => undefined,
    );
  }

  async addAddress(ifname: string, cidr: string, opts: { nodad?: boolean } = {}): Promise<Result<void, MpError>> {
    const p = parsePrefix(cidr);
    if (!p) return err({ kind: 'Bug', message: `bad address ${cidr}` });
    const idx = await this.linkIndex(ifname);
    if (idx.isErr()) return err(idx.error);
    const a = ipToBuffer(p.address);
    const flags = opts.nodad || p.family === 6 ? { nodad: true as const } : undefined;
    return (
      await this.call(`add address ${cidr} dev ${ifname}`, () =>
        this.sock.newAddress(
          { family: p.family === 4 ? AF_INET : AF_INET6, prefixlen: p.len, index: idx.value, ...(flags ? { flags } : {}) },
          { local: a, address: a, ...(flags ? { flags } : {}) },
          { flags: FlagsNew.CREATE | FlagsNew.EXCL, timeout: REQ_TIMEOUT_MS },
        ),
      )
    ).map(() => undefined);
  }

  async listAddresses(): Promise<Result<AddrInfo[], MpError>> {
    const links = await this.listLinks();
    if (links.isErr()) return err(links.error);
    const names = new Map(links.value.map((l) => [l.index, l.name]));
    return this.call('getAddresses', async () =>
      (await this.sock.getAddresses(undefined, undefined, { timeout: REQ_TIMEOUT_MS }))
        .filter((a) => a.attrs.address !== undefined)
        .map((a) => ({
          ifname: names.get(a.data.index ?? 0) ?? `if${a.data.index}`,
          family: (a.data.family === AF_INET ? 4 : 6) as Family,
          address: bufferToIp(a.attrs.local ?? a.attrs.address!),
          prefixlen: a.data.prefixlen ?? 0,
        })),
    );
  }

  private async routeMsg(r: RouteSpec) {
    const dst = r.dst === 'default' ? null : parsePrefix(r.dst);
    const viaFamily = r.via ? parsePrefix(r.via)?.family : undefined;
    const family = dst?.family ?? viaFamily ?? r.family;
    if (!family || (r.dst !== 'default' && !dst)) return err<never, MpError>({ kind: 'Bug', message: `bad route ${JSON.stringify(r)}` });
    let oif: number | undefined;
    if (r.dev) {
      const idx = await this.linkIndex(r.dev);
      if (idx.isErr()) return err<never, MpError>(idx.error);
      oif = idx.value;
    }
    const table = r.table ?? 254;
    return ok({
      data: {
        family: family === 4 ? AF_INET : AF_INET6,
        dstLen: dst?.len ?? 0,
        table: table < 256 ? table : 252,
        protocol: 'STATIC' as const,
        scope: r.via ? ('UNIVERSE' as const) : ('LINK' as const),
        type: 'UNICAST' as const,
      },
      attrs: {
        ...(dst ? { dst: ipToBuffer(dst.address) } : {}),
        ...(r.via ? { gateway: ipToBuffer(r.via) } : {}),
        ...(r.src ? { prefsrc: ipToBuffer(r.src) } : {}),
        ...(oif !== undefined ? { oif } : {}),
        table,
      },
    });
  }

  async addRoute(r: RouteSpec): Promise<Result<void, MpError>> {
    const m = await this.routeMsg(r);
    if (m.isErr()) return err(m.error);
    return (
      await this.call(`add route ${r.dst}`, () =>
        this.sock.newRoute(m.value.data, m.value.attrs, { flags: FlagsNew.CREATE | FlagsNew.EXCL, timeout: REQ_TIMEOUT_MS }),
      )
    ).map(() => undefined);
  }

  async deleteRoute(r: RouteSpec): Promise<Result<void, MpError>> {
    const m = await this.routeMsg(r);
    if (m.isErr()) return err(m.error);
    // as `ip route del`: scope NOWHERE and no protocol match any route with these keys
    const data = { ...m.value.data, scope: 'NOWHERE' as const, protocol: 0 };
    return (await this.call(`delete route ${r.dst}`, () => this.sock.delRoute(data, m.value.attrs, { timeout: REQ_TIMEOUT_MS }))).map(
      () => undefined,
    );
  }

  private ruleMsg(r: RuleSpec) {
    const from = r.from ? parsePrefix(r.from) : null;
    return {
      data: { family: r.family === 4 ? AF_INET : AF_INET6, srcLen: from?.len ?? 0, table: r.table < 256 ? r.table : 252, action: 'toTbl' as const },
      attrs: {
        priority: r.priority,
        table: r.table,
        ...(from ? { src: ipToBuffer(from.address) } : {}),
        ...(r.fwmark !== undefined ? { fwmark: r.fwmark, fwmask: 0xffffffff } : {}),
      },
    };
  }

  async addRule(r: RuleSpec): Promise<Result<void, MpError>> {
    const m = this.ruleMsg(r);
    return (
      await this.call(`add rule ${r.priority}`, () =>
        this.sock.newRule(m.data, m.attrs, { flags: FlagsNew.CREATE | FlagsNew.EXCL, timeout: REQ_TIMEOUT_MS }),
      )
    ).map(() => undefined);
  }

  async deleteRule(r: RuleSpec): Promise<Result<void, MpError>> {
    const m = this.ruleMsg(r);
    return (await this.call(`delete rule ${r.priority}`, () => this.sock.delRule(m.data, m.attrs, { timeout: REQ_TIMEOUT_MS }))).map(() => undefined);
  }

  private async neighProxyMsg(address: string, dev: string, router = false) {
    const fam = parsePrefix(address)?.family;
    if (!fam) return err<never, MpError>({ kind: 'Bug', message: `bad address ${address}` });
    const idx = await this.linkIndex(dev);
    if (idx.isErr()) return err<never, MpError>(idx.error);
    return ok({
      data: {
        family: fam === 4 ? AF_INET : AF_INET6,
        ifindex: idx.value,
        flags: router ? { proxy: true as const, router: true as const } : { proxy: true as const },
        state: { permanent: true as const },
      },
      attrs: { dst: ipToBuffer(address) },
    });
  }

  async addNeighProxy(address: string, dev: string, router = false): Promise<Result<void, MpError>> {
    const m = await this.neighProxyMsg(address, dev, router);
    if (m.isErr()) return err(m.error);
    return (
      await this.call(`add neigh proxy ${address} dev ${dev}`, () =>
        this.sock.newNeighbor(m.value.data, m.value.attrs, { flags: FlagsNew.CREATE | FlagsNew.EXCL, timeout: REQ_TIMEOUT_MS }),
      )
    ).map(() => undefined);
  }

  async deleteNeighProxy(address: string, dev: string): Promise<Result<void, MpError>> {
    const m = await this.neighProxyMsg(address, dev);
    if (m.isErr()) return err(m.error);
    return (
      await this.call(`delete neigh proxy ${address} dev ${dev}`, () => this.sock.delNeighbor(m.value.data, m.value.attrs, { timeout: REQ_TIMEOUT_MS }))
    ).map(() => undefined);
  }

  async hasClsact(ifname: string): Promise<Result<boolean, MpError>> {
    const idx = await this.linkIndex(ifname);
    if (idx.isErr()) return err(idx.error);
    return (await this.call('getQdiscs', () => this.sock.getQdiscs(undefined, undefined, { timeout: REQ_TIMEOUT_MS }))).map((qs) =>
      qs.some((q) => q.data.ifindex === idx.value && q.attrs.kind === 'clsact'),
    );
  }

  private async clsactMsg(ifname: string) {
    const idx = await this.linkIndex(ifname);
    return idx.map((ifindex) => ({ ifindex, parent: TC_H_CLSACT, handle: 0xffff0000 }));
  }

  async addClsact(ifname: string): Promise<Result<void, MpError>> {
    const m = await this.clsactMsg(ifname);
    if (m.isErr()) return err(m.error);
    return (
      await this.call(`add clsact on ${ifname}`, () =>
        this.sock.newQdisc(m.value, { kind: 'clsact' }, { flags: FlagsNew.CREATE | FlagsNew.EXCL, timeout: REQ_TIMEOUT_MS }),
      )
    ).map(() => undefined);
  }

  async deleteClsact(ifname: string): Promise<Result<void, MpError>> {
    const m = await this.clsactMsg(ifname);
    if (m.isErr()) return err(m.error);
    return (await this.call(`delete clsact on ${ifname}`, () => this.sock.delQdisc(m.value, { kind: 'clsact' }, { timeout: REQ_TIMEOUT_MS }))).map(
      () => undefined,
    );
  }

  async routeMtu(address: string): Promise<Result<number | null, MpError>> {
    const p = parsePrefix(address);
    if (!p) return err({ kind: 'Bug', message: `bad address ${address}` });
    return this.call(`route get ${address}`, async () => {
      const m = await this.sock.getRoute({ family: p.family === 4 ? AF_INET : AF_INET6, dstLen: p.family === 4 ? 32 : 128 }, { dst: ipToBuffer(p.address) }, { timeout: REQ_TIMEOUT_MS });
      const mtu = m[0]?.attrs.metrics?.mtu;
      return mtu && mtu.length >= 4 ? mtu.readUInt32LE(0) : null;
    });
  }

  async setTbf(ifname: string, tbf: TbfParams | null): Promise<Result<void, MpError>> {
    if (tbf === null) return this.deleteRootQdisc(ifname, TBF_HANDLE);
    const idx = await this.linkIndex(ifname);
    if (idx.isErr()) return err(idx.error);
    const base = { ifindex: idx.value, parent: TC_H_ROOT, handle: TBF_HANDLE };
    return (
      await this.call(`tbf on ${ifname}`, () =>
        this.sock.newQdisc(base, { kind: 'tbf', options: encodeTbfOptions(tbf) }, {
          flags: FlagsNew.CREATE | FlagsNew.REPLACE,
          timeout: REQ_TIMEOUT_MS,
        }),
      )
    ).map(() => undefined);
  }

  /** The ifindex of `name`, looked up now (and remembered for onDevice). */
  private async freshIndex(name: string): Promise<Result<number, MpError>> {
    const idx = await this.linkIndex(name);
    if (idx.isOk()) this.ifindexes.set(name, idx.value);
    else this.ifindexes.delete(name);
    return idx;
  }

  /**
   * Runs `f` with the ifindex of `ifname`, remembered from an earlier call so that frequent
   * requests cost no link dump. ENODEV with a remembered index (the device was deleted, or
   * recreated under a new index) looks the name up again and retries once.
   */
  private async onDevice<T>(ifname: string, f: (ifindex: number) => Promise<Result<T, MpError>>): Promise<Result<T, MpError>> {
    const cached = this.ifindexes.get(ifname);
    if (cached !== undefined) {
      const r = await f(cached);
      if (!isNoDevice(r)) return r;
      this.ifindexes.delete(ifname);
    }
    const idx = await this.freshIndex(ifname);
    if (idx.isErr()) return err(idx.error);
    const r = await f(idx.value);
    if (isNoDevice(r)) this.ifindexes.delete(ifname);
    return r;
  }

  private async rootQdiscOf(ifindex: number): Promise<Result<RootQdisc | null, MpError>> {
    // a dump: the kernel has no per-device qdisc dump, and a get of the root would report the
    // builtin noop of a device that is down (the dump leaves builtins out)
    return (await this.call('getQdiscs', () => this.sock.getQdiscs(undefined, undefined, { timeout: REQ_TIMEOUT_MS }))).map((qs) => {
      const q = qs.find((x) => x.data.ifindex === ifindex && x.data.parent === TC_H_ROOT);
      return q ? { kind: q.attrs.kind ?? '', handle: q.data.handle ?? 0 } : null;
    });
  }

  async rootQdisc(ifname: string): Promise<Result<RootQdisc | null, MpError>> {
    const idx = await this.freshIndex(ifname);
    if (idx.isErr()) return err(idx.error);
    return this.rootQdiscOf(idx.value);
  }

  async setHtbRoot(ifname: string, major: number, directQlen = 1000, current?: RootQdisc | null): Promise<Result<void, MpError>> {
    const bad = checkHtbIds(major, 1);
    if (bad) return err(bug(bad));
    const idx = await this.freshIndex(ifname);
    if (idx.isErr()) return err(idx.error);
    const handle = tcHandle(major, 0);
    const root = current !== undefined ? ok(current) : await this.rootQdiscOf(idx.value);
    if (root.isErr()) return err(root.error);
    // htb has no change operation: a replace by the same htb is EINVAL (classes untouched), so an
    // htb already there stays as it is, direct_qlen included
    if (root.value?.kind === 'htb' && root.value.handle === handle) return ok(undefined);
    return (
      await this.call(`htb root ${major.toString(16)}: on ${ifname}`, () =>
        this.sock.newQdisc(
          { ifindex: idx.value, parent: TC_H_ROOT, handle },
          { kind: 'htb', options: encodeHtbQdiscOptions(directQlen) },
          { flags: FlagsNew.CREATE | FlagsNew.REPLACE, timeout: REQ_TIMEOUT_MS },
        ),
      )
    ).map(() => undefined);
  }

  async setHtbClass(ifname: string, major: number, minor: number, p: HtbClassParams): Promise<Result<void, MpError>> {
    const bad = checkHtbIds(major, minor) ?? checkHtbClassParams(p);
    if (bad) return err(bug(bad));
    const classid = tcHandle(major, minor);
    const name = `${major.toString(16)}:${minor.toString(16)}`;
    return this.onDevice(ifname, async (ifindex) => {
      // without NLM_F_EXCL a new class message changes an existing class in place
      const c = await this.call(`htb class ${name} on ${ifname}`, () =>
        this.sock.newTrafficClass(
          { ifindex, parent: tcHandle(major, 0), handle: classid },
          { kind: 'htb', options: encodeHtbClassOptions(p.rateBps) },
          { flags: FlagsNew.CREATE, timeout: REQ_TIMEOUT_MS },
        ),
      );
      if (c.isErr()) return err(c.error);
      // the leaf: a new class has the kernel's pfifo (handle 0), which this replaces; our bfifo
      // (same handle) takes the new limit through its change operation, queue kept
      return (
        await this.call(`bfifo leaf of ${name} on ${ifname}`, () =>
          this.sock.newQdisc(
            { ifindex, parent: classid, handle: htbLeafHandle(major, minor) },
            { kind: 'bfifo', options: encodeBfifoOptions(p.limitBytes) },
            { flags: FlagsNew.CREATE | FlagsNew.REPLACE, timeout: REQ_TIMEOUT_MS },
          ),
        )
      ).map(() => undefined);
    });
  }

  async leafStats(ifnames: readonly string[], major: number): Promise<Result<Map<string, Map<number, LeafStats>>, MpError>> {
    const bad = checkHtbIds(major, 1);
    if (bad) return err(bug(bad));
    const devs = new Map<number, string>();
    for (const name of new Set(ifnames)) {
      // the remembered index (no link dump a call); a device recreated since has no leaves of ours
      const known = this.ifindexes.get(name);
      const idx = known !== undefined ? ok(known) : await this.freshIndex(name);
      if (idx.isErr() && idx.error.kind === 'NotFound') continue;
      if (idx.isErr()) return err(idx.error);
      devs.set(idx.value, name);
    }
    const qs = await this.call('qdisc counters', () => this.sock.getQdiscs(undefined, undefined, { timeout: REQ_TIMEOUT_MS }));
    if (qs.isErr()) return err(qs.error);
    const out = new Map<string, Map<number, LeafStats>>([...devs.values()].map((n) => [n, new Map()]));
    for (const q of qs.value) {
      const parent = q.data.parent ?? 0;
      const minor = parent & 0xffff;
      const dev = devs.get(q.data.ifindex ?? -1);
      const st = q.attrs.stats;
      if (dev === undefined || parent >>> 16 !== major || minor === 0 || q.data.handle !== htbLeafHandle(major, minor)) continue;
      if (q.attrs.kind !== 'bfifo' || !st || st.length < TC_STATS_LEN) continue;
      out.get(dev)!.set(minor, decodeTcStats(st));
    }
    return ok(out);
  }

  async deleteHtbClass(ifname: string, major: number, minor: number): Promise<Result<void, MpError>> {
    const bad = checkHtbIds(major, minor);
    if (bad) return err(bug(bad));
    const name = `${major.toString(16)}:${minor.toString(16)}`;
    const r = await this.onDevice(ifname, (ifindex) =>
      this.call(`delete htb class ${name} on ${ifname}`, () =>
        this.sock.delTrafficClass({ ifindex, parent: tcHandle(major, 0), handle: tcHandle(major, minor) }, {}, { timeout: REQ_TIMEOUT_MS }),
      ),
    );
    // no such class (or no htb major:0 at all) is the state we wanted
    if (r.isErr() && r.error.kind === 'NetlinkRejected' && r.error.errno === 'ENOENT') return ok(undefined);
    return r.map(() => undefined);
  }

  async deleteRootQdisc(ifname: string, handle?: number): Promise<Result<void, MpError>> {
    const idx = await this.linkIndex(ifname);
    if (idx.isErr()) return err(idx.error);
    const r = await this.call(`delete qdisc on ${ifname}`, () =>
      this.sock.delQdisc({ ifindex: idx.value, parent: TC_H_ROOT, handle: handle ?? 0 }, {}, { timeout: REQ_TIMEOUT_MS }),
    );
    // ENOENT: only the kernel's default root (handle 0) is there; EINVAL: the root is not
    // `handle` (not ours to delete). Either way nothing of ours is left.
    if (r.isErr() && r.error.kind === 'NetlinkRejected' && (r.error.errno === 'ENOENT' || r.error.errno === 'EINVAL')) return ok(undefined);
    return r.map(() => undefined);
  }

  close(): void {
    try {
      this.sock.socket.close();
    } catch {
      /* already closed */
    }
  }
}

/** Opens an rtnetlink socket that configures namespace `ns` (the socket is created inside it). */
export function openRtnl(ns: string | null): Result<Rtnl, MpError> {
  return withNetns(ns, () => createRtNetlink()).map((sock) => new NetlinkRtnl(ns, sock));
}
