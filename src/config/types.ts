// Typed, validated portal configuration (parsed from TOML by config/parse.ts).
//
//   # lp.toml (Local Portal)                     # rp.toml (Remote Portal)
//   role = "local"                               role = "remote"
//   lan = "lan"                                  wan = "wan"
//   client = ["198.51.100.10/32", "2001:db8:100::10/128"]
//   gateway = ["198.51.100.1", "2001:db8:100::1"] # RP side: forward = ["srv"]
//   remote = "198.51.100.2"                      port = 7470
//   port = 7470                                  client = [...same...]
//   private_key = "/etc/mpctl/lp.key"            private_key = "/etc/mpctl/rp.key"
//   peer_public_key = "<RP's, base64>"           peer_public_key = "<LP's, base64>"
//   [[link]]
//   name = "dsl"; interface = "wan1"; gateway = "100.64.1.254"
//   carrier = "udp"; metric = 0; rate = "20mbit"; delay = "10ms"

import type { RedundantClass } from './redundant.js';

export type Family = 4 | 6;

export interface Prefix {
  family: Family;
  address: string;
  len: number;
}

export interface LinkConfig {
  /** 0-based link id on the wire (order in the file) */
  id: number;
  name: string;
  interface: string;
  /** underlay family: the gateway's or source's, else the remote's only family */
  family: Family;
  /** next hop on this link (its ISP gateway); absent = point-to-point */
  gateway?: string;
  /** outer source address; absent = the interface's first address of the remote's family */
  source?: string;
  carrier: 'udp' | 'ip';
  metric: number;
  /** starting rate estimate in bit/s, a hint only (the congestion controller discovers the
   * link's capacity from it, up or down; absent in the config: 10 Mbit/s) */
  rateBps: number;
  /** the config names no `rate`: a capacity train measures the link once it is up, and the
   * controller starts from that instead (run/train.ts) */
  unrated?: true;
  /** starting one-way delay estimate in µs (measured afterwards) */
  delayUs: number;
  /** optional byte budget for metered links (0 = unlimited) */
  budgetBytes: number;
  /** when the budget renews (UTC): `budget_period`, default monthly on the 1st */
  budgetPeriod: { kind: 'none' } | { kind: 'daily' } | { kind: 'monthly'; day: number };
}

interface Common {
  /** instance name (pins, state files); default: the role */
  instance: string;
  /** UDP port of the tunnel: the RP listens on it, the LP sends to it and binds it per link */
  port: number;
  /** the addresses the client uses as its own (the RP's public address or a routed prefix) */
  client: Prefix[];
  /** protocol number of the `ip` carrier */
  ipProto: number;
  /** milliseconds between liveness probes on each link (20..1000, default 100) */
  probeIntervalMs: number;
  /** keys and the handshake (src/security/auth.ts) */
  auth: AuthConfig;
  /** Prometheus endpoint (`metrics_listen = "127.0.0.1:9472"`); absent: off */
  metricsListen?: { host: string; port: number };
  /** `congestion_control = false`: keep each link's configured rate and delay (static weights,
   * for comparison); default true: per-link controllers from receiver feedback */
  congestionControl: boolean;
  /** where pure TCP ACKs go: "slowest" (default: the slowest unmetered link of the tier, so every
   * round trip includes the bond's longest delay and window-limited senders fill slow links
   * too) or "earliest" (scheduled like data). bpf/schedule.h */
  ackPath: 'slowest' | 'earliest';
  /** `shape = true`: each link's tunnel traffic leaves through an htb class of its own at the
   * link's pacing rate (src/run/shaper.ts, bpf/shape.h), so the queue that equalises the links'
   * delays sits in the portal, not in the ISP's buffer. "auto" (the default): the same on the
   * devices whose root qdisc is the kernel's default; a device with an operator's root keeps it
   * and its links go unshaped (true: up fails there); false: no link shaped */
  shape: boolean | 'auto';
  /** `[[redundant]]` classes: latency-critical traffic sent on several links (config/redundant.ts) */
  redundant: RedundantClass[];
}

/**
 * Who the portal talks to. One LP per RP and one RP per LP: each side names the other's static
 * public key (`peer_public_key`), so a Remote Portal serves exactly one Local Portal (run one RP
 * instance per LP, on its own port, to serve several).
 */
export type AuthConfig =
  | {
      mode: 'authenticated';
      /** absolute path of this portal's private key file (mode 600, read at `up`) */
      privateKeyFile: string;
      /** the other portal's static public key, base64 (the LP's on an RP, the RP's on an LP) */
      peerPublicKey: string;
    }
  /** INSECURE, benchmarks only (`insecure_no_auth = true`): no handshake, no MAC, no replay check */
  | { mode: 'insecure-no-auth'; privateKeyFile: string | null; peerPublicKey: string | null };

export interface LocalConfig extends Common {
  role: 'local';
  /** interface facing the client */
  lan: string;
  /** addresses the LP answers for on lan (the client's default gateway(s)) */
  gateway: string[];
  /** the RP's address (outer destination) per family */
  remote: string[];
  /** `state_dir`: where budget usage is kept across restarts (<stateDir>/<instance>/budget.json);
   * absent: $MPCTL_STATE_DIR, else /var/lib/mpctl (cc/budget-store.ts) */
  stateDir?: string;
  links: LinkConfig[];
  /** whole-LAN mode (`lan_prefixes`): devices on these prefixes reach the Internet as the client
   * address of their family, translated by the LP's data path (bpf/nat.h); [] = off */
  lanPrefixes: Prefix[];
  /** `lan_nat_ports = "1024-65535"`: the client address's ports the NAT hands out */
  natPorts: { lo: number; hi: number };
  /** `port_forwards = ["tcp/443 -> 192.168.1.10:443"]`: connections from the Internet to the
   * client address's port reach this LAN host (whole-LAN mode) */
  portForwards: PortForward[];
  /** `bond_local = true` (whole-LAN mode): the LP's own traffic that is not bound to a link goes
   * through the bond from its address on a LAN prefix, translated like a LAN host's (plan step 9) */
  bondLocal: boolean;
}

export interface PortForward {
  proto: 'tcp' | 'udp';
  /** the client address's port */
  port: number;
  /** the LAN host's address (its family is the forward's) and port */
  family: Family;
  address: string;
  targetPort: number;
}

export interface RemoteConfig extends Common {
  role: 'remote';
  /** the RP's Internet interface (tunnel in, client traffic out) */
  wan: string;
  /** further interfaces whose ingress traffic to the client is encapsulated */
  forward: string[];
  /** the RP shares its own address with the client */
  singleInterface: boolean;
  /** single-interface RP: TCP/UDP ports that stay local (e.g. 22) */
  reservedPorts: number[];
  /** `link_names`: the LP's link names by link id (its [[link]] order); [] = numbers only */
  linkNames: string[];
}

export type PortalConfig = LocalConfig | RemoteConfig;
