// The TypeScript mirror of bpf/mp.h: wire format, map layouts, enums and drop reasons.
//
// Every struct has one layout table ({ name, offset, size } per C member, in order, padding
// included) and its encoder/decoder reads the offsets from that table, so the table is the
// only place a layout is written down on this side. test/abi.test.ts compares each table and
// enum with the BTF of build/bpf/mpctl.o: a member added, moved or resized on either side
// fails it.
//
// Conventions (as mp.h): map values are host-endian (little-endian: x86_64 and arm64), fields
// named *_be and the wire header are big-endian. Here ports are plain numbers (the encoders
// write network order), addresses are IPv4/IPv6 text, 64-bit counters and times are bigints.

import { bufferToIp, ipFamily, ipToBuffer } from '../netlink/ip.js';
import { nhKeyBytes, nhKeyStream } from '../security/nh.js';

// ---- constants -----------------------------------------------------------------------------

export const MP_VERSION = 1;
export const MP_MAX_LINKS = 16;
/** mp.h MP_RESERVED_PORTS: the length of mp_config.reserved_ports */
export const MP_RESERVED_PORTS = 8;
/** mp.h MP_LAN_PREFIXES: the length of mp_config.lan (whole-LAN mode) */
export const MP_LAN_PREFIXES = 4;
/** whole-LAN mode (bpf/nat.h): entries of mp_nat_out / mp_nat_in, of mp_nat_fwd / mp_nat_fwd_out,
 * ports tried for a new flow */
export const MP_NAT_ENTRIES = 65536;
export const MP_NAT_FORWARDS = 64;
export const MP_NAT_TRIES = 8;
/** enum mp_nat_flags: mp_nat_val.flags. */
export const MP_NAT_F_FORWARD = 1 << 0;
/** mapping timeouts, seconds (mp.h: RFC 5382, 4787, 5508 minimums), and the control plane's sweep */
export const MP_NAT_TCP_EST_S = 7440;
export const MP_NAT_TCP_TRANS_S = 240;
export const MP_NAT_UDP_S = 300;
export const MP_NAT_ICMP_S = 60;
export const MP_NAT_SWEEP_S = 10;
/** enum mp_nat_state: mp_nat_val.state of a TCP flow's reverse entry. */
export const MP_NAT_S_OPENING = 0;
export const MP_NAT_S_EST = 1;
export const MP_NAT_S_CLOSING = 2;

/** The timeout of a mapping (mp_nat_in entry) of protocol `proto` in state `state`, seconds (nat.h nat_timeout). */
export function natTimeoutS(proto: number, state: number): number {
  if (proto === 6) return state === MP_NAT_S_EST ? MP_NAT_TCP_EST_S : MP_NAT_TCP_TRANS_S;
  return proto === 17 ? MP_NAT_UDP_S : MP_NAT_ICMP_S;
}

/** bpf_ktime_get_ns() / 10^9 as the data path reads it (CLOCK_MONOTONIC, as process.hrtime). */
export function natNowS(): number {
  return Number(process.hrtime.bigint() / 1_000_000_000n);
}
export const MP_IPPROTO = 253;
export const MP_HDR_LEN = 24;
/** Key ids on the wire are 1..255 (0: unauthenticated handshake message); mp_rx_keys entries. */
export const MP_KEY_IDS = 256;
/** Bitmap words of one replay window, and the seqs it fully tracks (bpf/mp.h). */
export const MP_REPLAY_WORDS = 33;
export const MP_REPLAY_WINDOW = 2048;
/** Replay window classes per key id: data (encap's seq) and control (userland's seq). */
export const MP_REPLAY_CLASSES = 2;
export const MP_REPLAY_DATA = 0;
export const MP_REPLAY_CONTROL = 1;

// Enum constants keep their C names, so that C and TypeScript read the same.

/** enum mp_msg_type: the low nibble of mp_hdr.ver_type. */
export const MP_T_DATA = 1;
export const MP_T_PROBE = 2;
export const MP_T_FEEDBACK = 3;
export const MP_T_HS_INIT = 4;
export const MP_T_HS_RESP = 5;
export const MP_T_COOKIE = 6;
/** Loss recovery: XOR parity of a link's parity group (bpf/fec.h). */
export const MP_T_FEC = 7;

/** enum mp_role: mp_config.role (0: not configured, the programs pass everything). */
export const MP_ROLE_LOCAL = 1;
export const MP_ROLE_REMOTE = 2;

/** enum mp_cfg_flags: mp_config.flags bits. */
export const MP_CFG_SINGLE_IF = 1 << 0;
export const MP_CFG_DEC_TTL = 1 << 1;
export const MP_CFG_LOOP_FRAG = 1 << 2;
/** INSECURE, benchmarks only: no MAC, no replay window (config `insecure_no_auth`). */
export const MP_CFG_NO_AUTH = 1 << 3;
/** config `ack_path = "earliest"`: pure TCP ACKs scheduled like data (bpf/schedule.h). */
export const MP_CFG_ACKS_EARLIEST = 1 << 4;
/** LP whole-LAN mode: packets from mp_config.lan are translated to the client address (bpf/nat.h). */
export const MP_CFG_LAN_NAT = 1 << 5;
/** LP `bond_local`: replies translated back to local_v4 / local_v6 go to the LP's own stack (bpf/nat.h). */
export const MP_CFG_BOND_LOCAL = 1 << 6;

/** enum mp_link_state: mp_link.state. */
export const MP_LINK_UNUSED = 0;
export const MP_LINK_UP = 1;
export const MP_LINK_DOWN = 2;
export const MP_LINK_ADMIN_DOWN = 3;

/** enum mp_link_flags: mp_link.flags. Pure TCP ACKs avoid the link (lossy or far slower). */
export const MP_LINK_F_NO_ACKS = 1 << 0;
/** Loss recovery on the link: one XOR parity per MP_FEC_K data packets (bpf/fec.h). */
export const MP_LINK_F_FEC = 1 << 1;
/** Held: no live feedback for the link; the scheduler plans it at hold_kbps with a limited
 * queue (bpf/schedule.h, README "The data path outlives its control plane"). */
export const MP_LINK_F_HELD = 1 << 2;
/** The control plane's heartbeat (mp_config.alive_ns) is stale after this long (ns); a held
 * link's modelled queue stays under MP_HOLD_QUEUE_NS (bpf/mp.h). */
export const MP_ALIVE_NS = 500_000_000;
export const MP_HOLD_QUEUE_NS = 100_000_000;
/** Data packets per parity group (bpf/mp.h MP_FEC_K), the longest packet a group holds. */
export const MP_FEC_K = 4;
export const MP_FEC_MAX = 1536;
export const MP_FEC_TX_SLOTS = 2;
export const MP_FEC_RX_SLOTS = 4;

/** enum mp_carrier: mp_link.carrier. */
export const MP_CARRIER_UDP = 0;
export const MP_CARRIER_IP = 1;

/** enum mp_hdr_flags: mp_hdr.flags bits. */
export const MP_HDR_F_DP = 1 << 0;
/** a redundant copy (bpf/redundant.h): the class is in the high nibble of mp_hdr.flags */
export const MP_HDR_F_COPY = 1 << 1;
export const MP_HDR_CLASS_SHIFT = 4;

/** redundant mode (bpf/mp.h, bpf/redundant.h) */
export const MP_RED_CLASSES = 8;
export const MP_RED_PORT_RANGES = 4;
export const MP_RED_PREFIXES = 4;
export const MP_RED_ALL_LINKS = 0xff;
/** A data packet in its link's parity group; on MP_T_FEC also bits 4..7 = packets covered. */
export const MP_HDR_F_FEC = 1 << 2;
export const MP_HDR_FEC_COUNT_SHIFT = 4;

/** enum mp_probe_flags: mp_probe.flags. */
export const MP_PROBE_F_BUDGET = 1 << 0;
export const MP_PROBE_F_ADMIN_DOWN = 1 << 1;
export const MP_PROBE_F_PMTU = 1 << 2;
/** a capacity train's request or reply (src/run/train.ts): not liveness, echoed */
export const MP_PROBE_F_TRAIN = 1 << 3;
/** LP request: its config names no rate for the link (rate_bps is a default; the RP starts from its train) */
export const MP_PROBE_F_UNRATED = 1 << 4;

/** enum mp_drop_reason, by value: DROP_REASONS[MP_DROP_TRUNCATED] === 'truncated'. */
export const DROP_REASONS = [
  'none',
  'truncated',
  'bad_version',
  'bad_link',
  'bad_inner',
  'no_link',
  'too_big',
  'adjust_room',
  'store',
  'redirect',
  'fib',
  'ttl',
  'gso',
  'no_config',
  'bad_mac',
  'replay',
  'no_key',
  'loop',
  'fragment',
  'hs_malformed',
  'hs_source_rate',
  'hs_global_rate',
  'bad_probe',
  'duplicate',
  'fec_spare',
  'fec_bad',
  'hold_queue',
  'nat_ports',
  'nat_miss',
  'nat_frag',
  'nat_proto',
  'fec_late',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
/** MP_DROP_MAX: entries of the mp_drops map. */
export const MP_DROP_MAX = DROP_REASONS.length;
export const DropReason = Object.fromEntries(DROP_REASONS.map((n, i) => [n, i])) as Record<DropReason, number>;

/** Every enum of mp.h as C constant name → value, for the BTF test. */
export const ENUMS: Record<string, Record<string, number>> = {
  mp_msg_type: { MP_T_DATA, MP_T_PROBE, MP_T_FEEDBACK, MP_T_HS_INIT, MP_T_HS_RESP, MP_T_COOKIE, MP_T_FEC },
  mp_role: { MP_ROLE_LOCAL, MP_ROLE_REMOTE },
  mp_cfg_flags: { MP_CFG_SINGLE_IF, MP_CFG_DEC_TTL, MP_CFG_LOOP_FRAG, MP_CFG_NO_AUTH, MP_CFG_ACKS_EARLIEST, MP_CFG_LAN_NAT, MP_CFG_BOND_LOCAL },
  mp_nat_flags: { MP_NAT_F_FORWARD },
  mp_nat_state: { MP_NAT_S_OPENING, MP_NAT_S_EST, MP_NAT_S_CLOSING },
  mp_link_state: { MP_LINK_UNUSED, MP_LINK_UP, MP_LINK_DOWN, MP_LINK_ADMIN_DOWN },
  mp_link_flags: { MP_LINK_F_NO_ACKS, MP_LINK_F_FEC, MP_LINK_F_HELD },
  mp_carrier: { MP_CARRIER_UDP, MP_CARRIER_IP },
  mp_hdr_flags: { MP_HDR_F_DP, MP_HDR_F_COPY, MP_HDR_F_FEC },
  mp_probe_flags: { MP_PROBE_F_BUDGET, MP_PROBE_F_ADMIN_DOWN, MP_PROBE_F_PMTU, MP_PROBE_F_TRAIN, MP_PROBE_F_UNRATED },
  mp_drop_reason: {
    ...Object.fromEntries(DROP_REASONS.map((n, i) => [`MP_DROP_${n.toUpperCase()}`, i])),
    MP_DROP_MAX,
  },
};

// ---- layouts -------------------------------------------------------------------------------

export interface Field {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

export interface StructLayout {
  /** The C struct's name (without `struct`). */
  readonly name: string;
  readonly size: number;
  readonly fields: readonly Field[];
}

function layout(name: string, size: number, fields: [string, number, number][]): StructLayout {
  return { name, size, fields: fields.map(([n, offset, sz]) => ({ name: n, offset, size: sz })) };
}

// prettier-ignore
export const MP_ADDR = layout('mp_addr', 20, [
  ['family', 0, 1], ['prefix_len', 1, 1], ['pad', 2, 2], ['addr', 4, 16],
]);
// prettier-ignore
export const MP_HDR = layout('mp_hdr', 24, [
  ['ver_type', 0, 1], ['flags', 1, 1], ['link_id', 2, 1], ['key_id', 3, 1],
  ['seq', 4, 4], ['link_seq', 8, 4], ['ts_us', 12, 4], ['tag', 16, 8],
]);
// prettier-ignore
/** The body of an MP_T_PROBE message, after mp_hdr (wire, big-endian; src/run/probe.ts). */
export const MP_PROBE = layout('mp_probe', 40, [
  ['kind', 0, 1], ['metric', 1, 1], ['carrier', 2, 1], ['flags', 3, 1], ['probe_seq', 4, 4],
  ['sent_ns', 8, 8], ['rate_bps', 16, 8], ['owd_us', 24, 4], ['budget_kib', 28, 4],
  ['reply_len', 32, 2], ['req_len', 34, 2], ['pmtu_down', 36, 2], ['pmtu_up', 38, 2],
]);
/** The shortest probe message; a padded one is longer (mp.h: probe v2). */
export const MP_PROBE_LEN = MP_HDR_LEN + MP_PROBE.size;
// prettier-ignore
export const MP_CONFIG = layout('mp_config', 288, [
  ['role', 0, 4], ['flags', 4, 4], ['lan_ifindex', 8, 4], ['wan_ifindex', 12, 4],
  ['port_be', 16, 2], ['mss_v4', 18, 2], ['mss_v6', 20, 2], ['inner_mtu', 22, 2],
  ['ip_proto', 24, 1], ['pad', 25, 3], ['client_v4', 28, 20], ['client_v6', 48, 20],
  ['reserved_ports', 68, 16], ['loop_ifindex', 84, 4], ['loop_mark', 88, 4],
  ['own_v4', 92, 20], ['own_v6', 112, 20], ['alive_ns', 136, 8],
  ['lan', 144, 20 * MP_LAN_PREFIXES], ['nat_port_lo', 224, 2], ['nat_port_hi', 226, 2], ['pad2', 228, 4],
  ['local_ifindex', 232, 4], ['local_mac', 236, 6], ['pad3', 242, 2], ['local_v4', 244, 20], ['local_v6', 264, 20],
  ['shape_handle', 284, 4],
]);
// prettier-ignore
export const MP_LINK = layout('mp_link', 80, [
  ['ifindex', 0, 4], ['state', 4, 1], ['carrier', 5, 1], ['metric', 6, 1], ['flags', 7, 1],
  ['mtu', 8, 4], ['owd_us', 12, 4], ['rate_bps', 16, 8], ['local', 24, 20], ['nexthop', 44, 20],
  ['local_port_be', 64, 2], ['plan_cap_ms', 66, 2], ['hold_kbps', 68, 4], ['budget_bytes', 72, 8],
]);
// prettier-ignore
export const MP_ENDPOINT = layout('mp_endpoint', 32, [
  ['addr', 0, 20], ['port_be', 20, 2], ['valid', 22, 1], ['pad', 23, 1], ['updated_ns', 24, 8],
]);
// prettier-ignore
export const MP_SCHED = layout('mp_sched', 328, [
  ['lock', 0, 4], ['seq', 4, 4], ['busy_until_ns', 8, 8 * MP_MAX_LINKS], ['link_seq', 136, 4 * MP_MAX_LINKS],
  ['sent_bytes', 200, 8 * MP_MAX_LINKS],
]);
// prettier-ignore
export const MP_LINK_STATS = layout('mp_link_stats', 32, [
  ['tx_packets', 0, 8], ['tx_bytes', 8, 8], ['rx_packets', 16, 8], ['rx_bytes', 24, 8],
]);
// prettier-ignore
export const MP_RX = layout('mp_rx', 40, [
  ['last_rx_ns', 0, 8], ['max_link_seq', 8, 4], ['last_owd_us', 12, 4], ['packets', 16, 8], ['bytes', 24, 8],
  ['ptb_mtu', 32, 4], ['ptb_count', 36, 4],
]);
// prettier-ignore
/** mp_peer_probe[link_id]: the last probe request the data path answered on a link (bpf/probe.h). */
export const MP_PEER_PROBE = layout('mp_peer_probe', 120, [
  ['hdr', 0, 24], ['req', 24, 40], ['rx_ns', 64, 8], ['requests', 72, 8], ['answered', 80, 8],
  ['from', 88, 20], ['port_be', 108, 2], ['req_len', 110, 2], ['pad', 112, 8],
]);
// prettier-ignore
export const MP_LOOP_STATS = layout('mp_loop_stats', 24, [
  ['gso', 0, 8], ['frag', 8, 8], ['back', 16, 8],
]);

// prettier-ignore
/** Longest body the MAC covers (bpf/mp.h MP_NH_MAX_BODY); its NH key stream in u32 words. */
export const MP_NH_MAX_BODY = 9216;
export const MP_NH_KEY_WORDS = (MP_NH_MAX_BODY + 16) / 4;

export const MP_KEY = layout('mp_key', 32 + 4 * MP_NH_KEY_WORDS, [
  ['key', 0, 16], ['expires_ns', 16, 8], ['id', 24, 1], ['valid', 25, 1], ['pad', 26, 6], ['nh', 32, 4 * MP_NH_KEY_WORDS],
]);
// prettier-ignore
export const MP_REPLAY = layout('mp_replay', 16 + 8 * MP_REPLAY_WORDS, [
  ['lock', 0, 4], ['top', 4, 4], ['any', 8, 4], ['pos', 12, 4], ['bits', 16, 8 * MP_REPLAY_WORDS],
]);
// prettier-ignore
export const MP_FEC_ACC = layout('mp_fec_acc', 32 + MP_FEC_MAX, [
  ['group', 0, 4], ['count', 4, 4], ['seq_xor', 8, 4], ['max_len', 12, 4], ['taint', 16, 4], ['rebuilt', 20, 4], ['rebuilt_seq', 24, 4],
  ['pad', 28, 4], ['bytes', 32, MP_FEC_MAX],
]);
export const MP_FEC_STATS = layout('mp_fec_stats', 24, [
  ['parity_tx', 0, 8], ['parity_rx', 8, 8], ['rebuilt', 16, 8],
]);

// prettier-ignore
/** mp_red_class[i]: a redundant class (bpf/redundant.h), written by userland. */
export const MP_RED_CLASS = layout('mp_red_class', 128, [
  ['used', 0, 1], ['links', 1, 1], ['n_ports', 2, 1], ['n_prefixes', 3, 1], ['pad', 4, 4], ['dscp', 8, 8],
  ['port_lo', 16, 2 * MP_RED_PORT_RANGES], ['port_hi', 24, 2 * MP_RED_PORT_RANGES],
  ['prefix', 32, 20 * MP_RED_PREFIXES], ['cap_bytes_per_s', 112, 8], ['burst_bytes', 120, 4], ['pad2', 124, 4],
]);
// prettier-ignore
/** mp_red_bucket[i]: class i's token bucket (data path state; written zeroed by userland). */
export const MP_RED_BUCKET = layout('mp_red_bucket', 24, [
  ['lock', 0, 4], ['pad', 4, 4], ['tokens', 8, 8], ['last_ns', 16, 8],
]);
// prettier-ignore
/** mp_red_stats[i]: per-CPU counters of class i. */
export const MP_RED_STATS = layout('mp_red_stats', 64 + 8 * MP_MAX_LINKS, [
  ['packets', 0, 8], ['bytes', 8, 8], ['copies', 16, 8], ['copy_bytes', 24, 8], ['capped', 32, 8],
  ['single', 40, 8], ['copy_failed', 48, 8], ['duplicates', 56, 8], ['wins', 64, 8 * MP_MAX_LINKS],
]);

// prettier-ignore
/** whole-LAN mode (bpf/nat.h): the key and value of mp_nat_out, mp_nat_in, mp_nat_fwd, mp_nat_fwd_out. */
export const MP_NAT_KEY = layout('mp_nat_key', 20, [
  ['family', 0, 1], ['proto', 1, 1], ['port_be', 2, 2], ['addr', 4, 16],
]);
// prettier-ignore
export const MP_NAT_VAL = layout('mp_nat_val', 24, [
  ['addr', 0, 16], ['port_be', 16, 2], ['flags', 18, 1], ['state', 19, 1], ['last_s', 20, 4],
]);

export const LAYOUTS: readonly StructLayout[] = [
  MP_ADDR, MP_HDR, MP_PROBE, MP_CONFIG, MP_LINK, MP_ENDPOINT, MP_SCHED, MP_LINK_STATS, MP_RX, MP_PEER_PROBE, MP_LOOP_STATS, MP_KEY, MP_REPLAY,
  MP_RED_CLASS, MP_RED_BUCKET, MP_RED_STATS,
  MP_FEC_ACC, MP_FEC_STATS, MP_NAT_KEY, MP_NAT_VAL,
];

/** Value sizes (per CPU for the per-CPU maps: see percpuValueSize). */
export const MP_CONFIG_SIZE = MP_CONFIG.size;
export const MP_LINK_SIZE = MP_LINK.size;
export const MP_ENDPOINT_SIZE = MP_ENDPOINT.size;
export const MP_SCHED_SIZE = MP_SCHED.size;
export const MP_LINK_STATS_SIZE = MP_LINK_STATS.size;
export const MP_RX_SIZE = MP_RX.size;
export const MP_LOOP_STATS_SIZE = MP_LOOP_STATS.size;
export const MP_KEY_SIZE = MP_KEY.size;
export const MP_REPLAY_SIZE = MP_REPLAY.size;

/** The maps of build/bpf/mpctl.o (bpf/maps.h): name, type, key and value size, entries. */
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_LRU_HASH = 9;
export const MAPS = {
  config: { name: 'mp_config', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_CONFIG.size, maxEntries: 1 },
  links: { name: 'mp_links', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_LINK.size, maxEntries: MP_MAX_LINKS },
  endpoints: { name: 'mp_endpoints', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_ENDPOINT.size, maxEntries: MP_MAX_LINKS },
  sched: { name: 'mp_sched', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_SCHED.size, maxEntries: 1 },
  linkStats: { name: 'mp_link_stats', type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, value: MP_LINK_STATS.size, maxEntries: MP_MAX_LINKS },
  rx: { name: 'mp_rx', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_RX.size, maxEntries: MP_MAX_LINKS },
  drops: { name: 'mp_drops', type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, value: 8, maxEntries: MP_DROP_MAX },
  loopStats: { name: 'mp_loop_stats', type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, value: MP_LOOP_STATS.size, maxEntries: 1 },
  txKey: { name: 'mp_tx_key', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_KEY.size, maxEntries: 1 },
  rxKeys: { name: 'mp_rx_keys', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_KEY.size, maxEntries: MP_KEY_IDS },
  replay: { name: 'mp_replay', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_REPLAY.size, maxEntries: MP_KEY_IDS * MP_REPLAY_CLASSES },
  /** bpf/flood.h: [0] the global handshake bucket, [1 + id] link id's endpoint bucket (GCRA tat, ns) */
  hsLimits: { name: 'mp_hs_limits', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: 8, maxEntries: 1 + MP_MAX_LINKS },
  peerProbe: { name: 'mp_peer_probe', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_PEER_PROBE.size, maxEntries: MP_MAX_LINKS },
  redClass: { name: 'mp_red_class', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_RED_CLASS.size, maxEntries: MP_RED_CLASSES },
  redBucket: { name: 'mp_red_bucket', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_RED_BUCKET.size, maxEntries: MP_RED_CLASSES },
  redStats: { name: 'mp_red_stats', type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, value: MP_RED_STATS.size, maxEntries: MP_RED_CLASSES },
  /** bpf/fec.h: parity groups being built (sender) and received (receiver), loss-recovery counters */
  fecTx: { name: 'mp_fec_tx', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_FEC_ACC.size, maxEntries: MP_MAX_LINKS * MP_FEC_TX_SLOTS },
  fecRx: { name: 'mp_fec_rx', type: BPF_MAP_TYPE_ARRAY, keySize: 4, value: MP_FEC_ACC.size, maxEntries: MP_MAX_LINKS * MP_FEC_RX_SLOTS },
  fecStats: { name: 'mp_fec_stats', type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, value: MP_FEC_STATS.size, maxEntries: 1 },
  natOut: { name: 'mp_nat_out', type: BPF_MAP_TYPE_LRU_HASH, keySize: MP_NAT_KEY.size, value: MP_NAT_VAL.size, maxEntries: MP_NAT_ENTRIES },
  natIn: { name: 'mp_nat_in', type: BPF_MAP_TYPE_LRU_HASH, keySize: MP_NAT_KEY.size, value: MP_NAT_VAL.size, maxEntries: MP_NAT_ENTRIES },
  natFwd: { name: 'mp_nat_fwd', type: BPF_MAP_TYPE_HASH, keySize: MP_NAT_KEY.size, value: MP_NAT_VAL.size, maxEntries: MP_NAT_FORWARDS },
  natFwdOut: { name: 'mp_nat_fwd_out', type: BPF_MAP_TYPE_HASH, keySize: MP_NAT_KEY.size, value: MP_NAT_VAL.size, maxEntries: MP_NAT_FORWARDS },
} as const;

/** Bytes per CPU in a per-CPU map value buffer: round_up(value_size, 8). */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/** The buffer a per-CPU map lookup needs: round_up(value_size, 8) per possible CPU. */
export function percpuValueSize(valueSize: number, ncpu: number): number {
  return perCpuStride(valueSize) * ncpu;
}

/** A u32 array key. */
export function mapKey(index: number): Buffer {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(index);
  return k;
}

// ---- field access --------------------------------------------------------------------------

/** Each layout's members by name (the codecs look offsets up by name on every message). */
const offsets = new WeakMap<StructLayout, Map<string, number>>();

/** Offset of a member; throws on a name the table does not have (a typo is a bug here). */
function at(l: StructLayout, name: string): number {
  let m = offsets.get(l);
  if (!m) offsets.set(l, (m = new Map(l.fields.map((f) => [f.name, f.offset]))));
  const o = m.get(name);
  if (o === undefined) throw new Error(`struct ${l.name} has no member ${name}`);
  return o;
}
/** A member's offset in a layout (for codecs of wire bodies outside this file). */
export const offsetOf = at;
/** Members' offsets of a layout, looked up (and checked, as `at` does) on first use only: for
 * the decoders the run loop calls on every message and wake (README "Benchmarks", cpu). */
function offsetsOnce<K extends string>(l: StructLayout, names: readonly K[]): () => Readonly<Record<K, number>> {
  let o: Record<K, number> | null = null;
  return () => (o ??= Object.fromEntries(names.map((n) => [n, at(l, n)])) as Record<K, number>);
}

// ---- struct mp_addr ------------------------------------------------------------------------

/** struct mp_addr: family 4 or 6 (0: unset), prefix length, address text. */
export interface MpAddr {
  family: number;
  prefixLen: number;
  /** IPv4/IPv6 text; '' when unset. */
  addr: string;
}

/** The unset address (family 0): no prefix, on-link next hop, unknown endpoint. */
export const NO_ADDR: MpAddr = Object.freeze({ family: 0, prefixLen: 0, addr: '' });

/** A host address (prefix 32 or 128). */
export function hostAddr(addr: string): MpAddr {
  const family = ipFamily(addr);
  if (family === null) throw new Error(`not an IP address: ${addr}`);
  return { family, prefixLen: family === 4 ? 32 : 128, addr };
}

function writeAddr(b: Buffer, off: number, a: MpAddr): void {
  if (a.family === 0) return; // unset: all zero
  if (a.family !== ipFamily(a.addr)) throw new Error(`address ${JSON.stringify(a.addr)} is not IPv${a.family}`);
  b.writeUInt8(a.family, off + at(MP_ADDR, 'family'));
  b.writeUInt8(a.prefixLen, off + at(MP_ADDR, 'prefix_len'));
  ipToBuffer(a.addr).copy(b, off + at(MP_ADDR, 'addr'));
}

function readAddr(b: Buffer, off: number): MpAddr {
  const family = b.readUInt8(off + at(MP_ADDR, 'family'));
  const a = off + at(MP_ADDR, 'addr');
  if (family !== 4 && family !== 6) return { ...NO_ADDR };
  return {
    family,
    prefixLen: b.readUInt8(off + at(MP_ADDR, 'prefix_len')),
    addr: bufferToIp(b.subarray(a, a + (family === 4 ? 4 : 16))),
  };
}

// ---- struct mp_config ----------------------------------------------------------------------

export interface MpConfig {
  /** MP_ROLE_LOCAL or MP_ROLE_REMOTE (0: unconfigured, the programs pass everything). */
  role: number;
  /** MP_CFG_* bits. */
  flags: number;
  lanIfindex: number;
  wanIfindex: number;
  /** RP: tunnel UDP port it listens on; LP: the RP's port. */
  port: number;
  mssV4: number;
  mssV6: number;
  /** Largest inner packet that fits every link (0: no check). */
  innerMtu: number;
  /** Protocol number of the `ip` carrier (0: not used). */
  ipProto: number;
  /** The client's IPv4 / IPv6 prefix (NO_ADDR: none of that family). */
  clientV4: MpAddr;
  clientV6: MpAddr;
  /** Single-interface RP: TCP/UDP ports that stay local (at most 8). */
  reservedPorts: number[];
  /** The segmentation loop's entry device mpf…a (0: no loop; bpf/loop.h). */
  loopIfindex: number;
  /** skb->mark of a packet in the loop (0: no loop). */
  loopMark: number;
  /** The portal's own address of each family, for "time exceeded" of a family no link has
   * (bpf/ttl.h; absent = NO_ADDR). */
  ownV4?: MpAddr;
  ownV6?: MpAddr;
  /** The control plane's heartbeat, CLOCK_MONOTONIC ns (0 / absent: never written). */
  aliveNs?: bigint;
  /** LP whole-LAN mode (MP_CFG_LAN_NAT): the LAN prefixes (at most MP_LAN_PREFIXES; absent = none) */
  lan?: MpAddr[];
  /** the client address's ports the NAT hands out (absent: 0-0, none) */
  natPortLo?: number;
  natPortHi?: number;
  /** LP `bond_local` (MP_CFG_BOND_LOCAL): the bond device mpl…a (ifindex, MAC "aa:bb:…") and the
   * LP's own source of each family (absent: 0 / none) */
  localIfindex?: number;
  localMac?: string;
  localV4?: MpAddr;
  localV6?: MpAddr;
  /** Per-link shaping (bpf/shape.h): the htb root's major handle << 16 on the link devices
   * (absent / 0: off). */
  shapeHandle?: number;
}

export function encodeConfig(c: MpConfig): Buffer {
  const b = Buffer.alloc(MP_CONFIG.size);
  const f = (n: string) => at(MP_CONFIG, n);
  b.writeUInt32LE(c.role, f('role'));
  b.writeUInt32LE(c.flags, f('flags'));
  b.writeUInt32LE(c.lanIfindex, f('lan_ifindex'));
  b.writeUInt32LE(c.wanIfindex, f('wan_ifindex'));
  b.writeUInt16BE(c.port, f('port_be'));
  b.writeUInt16LE(c.mssV4, f('mss_v4'));
  b.writeUInt16LE(c.mssV6, f('mss_v6'));
  b.writeUInt16LE(c.innerMtu, f('inner_mtu'));
  b.writeUInt8(c.ipProto, f('ip_proto'));
  writeAddr(b, f('client_v4'), c.clientV4);
  writeAddr(b, f('client_v6'), c.clientV6);
  if (c.reservedPorts.length > MP_RESERVED_PORTS) throw new Error(`at most ${MP_RESERVED_PORTS} reserved ports, got ${c.reservedPorts.length}`);
  c.reservedPorts.forEach((p, i) => b.writeUInt16LE(p, f('reserved_ports') + 2 * i));
  b.writeUInt32LE(c.loopIfindex, f('loop_ifindex'));
  b.writeUInt32LE(c.loopMark >>> 0, f('loop_mark'));
  writeAddr(b, f('own_v4'), c.ownV4 ?? NO_ADDR);
  writeAddr(b, f('own_v6'), c.ownV6 ?? NO_ADDR);
  b.writeBigUInt64LE(c.aliveNs ?? 0n, f('alive_ns'));
  const lan = c.lan ?? [];
  if (lan.length > MP_LAN_PREFIXES) throw new Error(`at most ${MP_LAN_PREFIXES} LAN prefixes, got ${lan.length}`);
  for (let i = 0; i < MP_LAN_PREFIXES; i++) writeAddr(b, f('lan') + MP_ADDR.size * i, lan[i] ?? NO_ADDR);
  b.writeUInt16LE(c.natPortLo ?? 0, f('nat_port_lo'));
  b.writeUInt16LE(c.natPortHi ?? 0, f('nat_port_hi'));
  b.writeUInt32LE(c.localIfindex ?? 0, f('local_ifindex'));
  if (c.localMac !== undefined) {
    const mac = c.localMac.split(':').map((x) => Number.parseInt(x, 16));
    if (mac.length !== 6 || mac.some((x) => !(x >= 0 && x <= 255))) throw new Error(`not a MAC address: ${c.localMac}`);
    Buffer.from(mac).copy(b, f('local_mac'));
  }
  writeAddr(b, f('local_v4'), c.localV4 ?? NO_ADDR);
  writeAddr(b, f('local_v6'), c.localV6 ?? NO_ADDR);
  b.writeUInt32LE((c.shapeHandle ?? 0) >>> 0, f('shape_handle'));
  return b;
}

export function decodeConfig(b: Buffer): MpConfig {
  const f = (n: string) => at(MP_CONFIG, n);
  const ports: number[] = [];
  for (let i = 0; i < MP_RESERVED_PORTS; i++) {
    const p = b.readUInt16LE(f('reserved_ports') + 2 * i);
    if (p) ports.push(p);
  }
  return {
    role: b.readUInt32LE(f('role')),
    flags: b.readUInt32LE(f('flags')),
    lanIfindex: b.readUInt32LE(f('lan_ifindex')),
    wanIfindex: b.readUInt32LE(f('wan_ifindex')),
    port: b.readUInt16BE(f('port_be')),
    mssV4: b.readUInt16LE(f('mss_v4')),
    mssV6: b.readUInt16LE(f('mss_v6')),
    innerMtu: b.readUInt16LE(f('inner_mtu')),
    ipProto: b.readUInt8(f('ip_proto')),
    clientV4: readAddr(b, f('client_v4')),
    clientV6: readAddr(b, f('client_v6')),
    reservedPorts: ports,
    loopIfindex: b.readUInt32LE(f('loop_ifindex')),
    loopMark: b.readUInt32LE(f('loop_mark')),
    ownV4: readAddr(b, f('own_v4')),
    ownV6: readAddr(b, f('own_v6')),
    aliveNs: b.readBigUInt64LE(f('alive_ns')),
    lan: Array.from({ length: MP_LAN_PREFIXES }, (_, i) => readAddr(b, f('lan') + MP_ADDR.size * i)).filter((a) => a.family !== 0),
    natPortLo: b.readUInt16LE(f('nat_port_lo')),
    natPortHi: b.readUInt16LE(f('nat_port_hi')),
    localIfindex: b.readUInt32LE(f('local_ifindex')),
    localMac: [...b.subarray(f('local_mac'), f('local_mac') + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':'),
    localV4: readAddr(b, f('local_v4')),
    localV6: readAddr(b, f('local_v6')),
    shapeHandle: b.readUInt32LE(f('shape_handle')),
  };
}

// ---- struct mp_link ------------------------------------------------------------------------

export interface MpLink {
  /** Egress device of the outer packet. */
  ifindex: number;
  /** MP_LINK_*. */
  state: number;
  /** MP_CARRIER_*. */
  carrier: number;
  /** Tier: lower is preferred. */
  metric: number;
  /** MP_LINK_F_* (absent: 0). */
  flags?: number;
  /** Outer MTU of the link. */
  mtu: number;
  /** One-way delay estimate, µs. */
  owdUs: number;
  /** Pacing rate estimate, bit/s (0: treated as 1 Mbit/s). */
  rateBps: bigint;
  /** Outer source address. */
  local: MpAddr;
  /** Gateway for bpf_redirect_neigh (NO_ADDR: on-link / FIB lookup). */
  nexthop: MpAddr;
  /** Outer UDP source port. */
  localPort: number;
  /** Metered link: nothing more is scheduled once mp_sched.sent_bytes reaches it (0 / absent: no budget). */
  budgetBytes?: bigint;
  /** The rate the scheduler uses while the link is held, kbit/s (0 / absent: none). */
  holdKbps?: number;
  /** The most backlog the scheduler plans on the link, ms (0 / absent: no cap; schedule.h). */
  planCapMs?: number;
}

export function encodeLink(l: MpLink): Buffer {
  const b = Buffer.alloc(MP_LINK.size);
  const f = (n: string) => at(MP_LINK, n);
  b.writeUInt32LE(l.ifindex, f('ifindex'));
  b.writeUInt8(l.state, f('state'));
  b.writeUInt8(l.carrier, f('carrier'));
  b.writeUInt8(l.metric, f('metric'));
  b.writeUInt8(l.flags ?? 0, f('flags'));
  b.writeUInt32LE(l.mtu, f('mtu'));
  b.writeUInt32LE(l.owdUs, f('owd_us'));
  b.writeBigUInt64LE(l.rateBps, f('rate_bps'));
  writeAddr(b, f('local'), l.local);
  writeAddr(b, f('nexthop'), l.nexthop);
  b.writeUInt16BE(l.localPort, f('local_port_be'));
  b.writeUInt16LE(l.planCapMs ?? 0, f('plan_cap_ms'));
  b.writeUInt32LE(l.holdKbps ?? 0, f('hold_kbps'));
  b.writeBigUInt64LE(l.budgetBytes ?? 0n, f('budget_bytes'));
  return b;
}

export function decodeLink(b: Buffer): MpLink {
  const f = (n: string) => at(MP_LINK, n);
  return {
    ifindex: b.readUInt32LE(f('ifindex')),
    state: b.readUInt8(f('state')),
    carrier: b.readUInt8(f('carrier')),
    metric: b.readUInt8(f('metric')),
    flags: b.readUInt8(f('flags')),
    mtu: b.readUInt32LE(f('mtu')),
    owdUs: b.readUInt32LE(f('owd_us')),
    rateBps: b.readBigUInt64LE(f('rate_bps')),
    local: readAddr(b, f('local')),
    nexthop: readAddr(b, f('nexthop')),
    localPort: b.readUInt16BE(f('local_port_be')),
    holdKbps: b.readUInt32LE(f('hold_kbps')),
    planCapMs: b.readUInt16LE(f('plan_cap_ms')),
    budgetBytes: b.readBigUInt64LE(f('budget_bytes')),
  };
}

// ---- struct mp_endpoint --------------------------------------------------------------------

export interface MpEndpoint {
  /** Where the peer receives on this link (NO_ADDR: unknown). */
  addr: MpAddr;
  /** UDP port (0 for the `ip` carrier). */
  port: number;
  /** false: the link is not used. */
  valid: boolean;
  /** bpf_ktime_get_ns() of the last update. */
  updatedNs: bigint;
}

export function encodeEndpoint(e: MpEndpoint): Buffer {
  const b = Buffer.alloc(MP_ENDPOINT.size);
  const f = (n: string) => at(MP_ENDPOINT, n);
  writeAddr(b, f('addr'), e.addr);
  b.writeUInt16BE(e.port, f('port_be'));
  b.writeUInt8(e.valid ? 1 : 0, f('valid'));
  b.writeBigUInt64LE(e.updatedNs, f('updated_ns'));
  return b;
}

export function decodeEndpoint(b: Buffer): MpEndpoint {
  const f = (n: string) => at(MP_ENDPOINT, n);
  return {
    addr: readAddr(b, f('addr')),
    port: b.readUInt16BE(f('port_be')),
    valid: b.readUInt8(f('valid')) !== 0,
    updatedNs: b.readBigUInt64LE(f('updated_ns')),
  };
}

// ---- struct mp_sched -----------------------------------------------------------------------

export interface MpSched {
  /** Last per-direction sequence number sent. */
  seq: number;
  busyUntilNs: bigint[];
  linkSeq: number[];
  /** Outer IP bytes scheduled on each link (budgets). */
  sentBytes: bigint[];
}

const schedOff = offsetsOnce(MP_SCHED, ['seq', 'busy_until_ns', 'link_seq', 'sent_bytes'] as const);
export function decodeSched(b: Buffer): MpSched {
  const f = schedOff();
  const busyUntilNs: bigint[] = new Array(MP_MAX_LINKS);
  const linkSeq: number[] = new Array(MP_MAX_LINKS);
  const sentBytes: bigint[] = new Array(MP_MAX_LINKS);
  for (let i = 0; i < MP_MAX_LINKS; i++) {
    busyUntilNs[i] = b.readBigUInt64LE(f.busy_until_ns + 8 * i);
    linkSeq[i] = b.readUInt32LE(f.link_seq + 4 * i);
    sentBytes[i] = b.readBigUInt64LE(f.sent_bytes + 8 * i);
  }
  return { seq: b.readUInt32LE(f.seq), busyUntilNs, linkSeq, sentBytes };
}

// ---- struct mp_key, struct mp_replay (authentication) ----------------------------------------

export interface MpKey {
  /** The session key, 16 bytes: the MAC's SipHash-2-4 key; encodeKey expands NH's from it. */
  key: Buffer;
  /** CLOCK_MONOTONIC ns (process.hrtime.bigint() is the same clock) after which it is unused. */
  expiresNs: bigint;
  /** 1..255 */
  id: number;
  valid: boolean;
}

export const NO_KEY: MpKey = Object.freeze({ key: Buffer.alloc(16), expiresNs: 0n, id: 0, valid: false });

/** struct mp_key, with the NH key stream of a valid key expanded from it (src/security/nh.ts). */
export function encodeKey(k: MpKey): Buffer {
  if (k.key.length !== 16) throw new Error(`mp_key.key needs 16 bytes, got ${k.key.length}`);
  const b = Buffer.alloc(MP_KEY.size);
  const f = (n: string) => at(MP_KEY, n);
  k.key.copy(b, f('key'));
  if (k.valid) nhKeyBytes(nhKeyStream(k.key, MP_NH_KEY_WORDS)).copy(b, f('nh'));
  b.writeBigUInt64LE(k.expiresNs, f('expires_ns'));
  b.writeUInt8(k.id, f('id'));
  b.writeUInt8(k.valid ? 1 : 0, f('valid'));
  return b;
}

export function decodeKey(b: Buffer): MpKey {
  const f = (n: string) => at(MP_KEY, n);
  return {
    key: Buffer.from(b.subarray(f('key'), f('key') + 16)),
    expiresNs: b.readBigUInt64LE(f('expires_ns')),
    id: b.readUInt8(f('id')),
    valid: b.readUInt8(f('valid')) !== 0,
  };
}

/** mp_replay's index for a key id and class (MP_REPLAY_DATA / MP_REPLAY_CONTROL). */
export const replayIndex = (keyId: number, cls: number): number => keyId * MP_REPLAY_CLASSES + cls;

/** A fresh window: written before a key id is (re)installed. */
export const emptyReplay = (): Buffer => Buffer.alloc(MP_REPLAY.size);

export interface MpReplay {
  top: number;
  any: boolean;
  /** ring bit index of top (bpf/replay.h) */
  pos: number;
  bits: bigint[];
}

export function decodeReplay(b: Buffer): MpReplay {
  const f = (n: string) => at(MP_REPLAY, n);
  return {
    top: b.readUInt32LE(f('top')),
    any: b.readUInt32LE(f('any')) !== 0,
    pos: b.readUInt32LE(f('pos')),
    bits: Array.from({ length: MP_REPLAY_WORDS }, (_, i) => b.readBigUInt64LE(f('bits') + 8 * i)),
  };
}

// ---- per-CPU counters ----------------------------------------------------------------------

export interface MpLinkStats {
  txPackets: bigint;
  txBytes: bigint;
  rxPackets: bigint;
  rxBytes: bigint;
}

/** Sum a per-CPU mp_link_stats lookup (round_up(size, 8) bytes per possible CPU; ncpu
 * defaults to as many as the buffer holds). */
export function decodeLinkStats(perCpu: Buffer, ncpu?: number): MpLinkStats {
  const stride = perCpuStride(MP_LINK_STATS.size);
  const end = Math.min(perCpu.length, (ncpu ?? Infinity) * stride);
  const f = (n: string) => at(MP_LINK_STATS, n);
  const sum = { txPackets: 0n, txBytes: 0n, rxPackets: 0n, rxBytes: 0n };
  for (let cpu = 0; cpu + stride <= end; cpu += stride) {
    sum.txPackets += perCpu.readBigUInt64LE(cpu + f('tx_packets'));
    sum.txBytes += perCpu.readBigUInt64LE(cpu + f('tx_bytes'));
    sum.rxPackets += perCpu.readBigUInt64LE(cpu + f('rx_packets'));
    sum.rxBytes += perCpu.readBigUInt64LE(cpu + f('rx_bytes'));
  }
  return sum;
}

/** Sum one per-CPU __u64 counter (an mp_drops lookup). */
export function sumPerCpuU64(perCpu: Buffer): bigint {
  let sum = 0n;
  for (let off = 0; off + 8 <= perCpu.length; off += 8) sum += perCpu.readBigUInt64LE(off);
  return sum;
}

/** mp_drops: one per-CPU lookup per reason (index = enum value; null = absent) → totals. */
export function decodeDrops(perReason: readonly (Buffer | null)[]): Record<DropReason, bigint> {
  return Object.fromEntries(
    DROP_REASONS.map((name, i) => {
      const v = perReason[i];
      return [name, v ? sumPerCpuU64(v) : 0n];
    }),
  ) as Record<DropReason, bigint>;
}

// ---- struct mp_rx --------------------------------------------------------------------------

export interface MpRx {
  lastRxNs: bigint;
  maxLinkSeq: number;
  lastOwdUs: number;
  packets: bigint;
  bytes: bigint;
  /** ICMP "too big" about our outer packets on the link (bpf/ptb.h): the last MTU named, how many */
  ptbMtu: number;
  ptbCount: number;
}

const rxOff = offsetsOnce(MP_RX, ['last_rx_ns', 'max_link_seq', 'last_owd_us', 'packets', 'bytes', 'ptb_mtu', 'ptb_count'] as const);
export function decodeRx(b: Buffer): MpRx {
  const f = rxOff();
  return {
    lastRxNs: b.readBigUInt64LE(f.last_rx_ns),
    maxLinkSeq: b.readUInt32LE(f.max_link_seq),
    lastOwdUs: b.readUInt32LE(f.last_owd_us),
    packets: b.readBigUInt64LE(f.packets),
    bytes: b.readBigUInt64LE(f.bytes),
    ptbMtu: b.readUInt32LE(f.ptb_mtu),
    ptbCount: b.readUInt32LE(f.ptb_count),
  };
}

// ---- struct mp_peer_probe -------------------------------------------------------------------

export interface MpPeerProbe {
  /** the last request's mp_hdr + mp_probe as they arrived (wire order: src/run/probe.ts decodes it) */
  msg: Buffer;
  /** bpf_ktime_get_ns() when it arrived (0: never) */
  rxNs: bigint;
  /** authentic requests taken on this link, and replies the data path sent for them */
  requests: bigint;
  answered: bigint;
  /** where it came from: address, UDP port (0: the ip carrier), outer IP length */
  from: MpAddr;
  port: number;
  reqLen: number;
}

export function decodePeerProbe(b: Buffer): MpPeerProbe {
  const f = (n: string) => at(MP_PEER_PROBE, n);
  return {
    msg: Buffer.from(b.subarray(f('hdr'), f('req') + MP_PROBE.size)),
    rxNs: b.readBigUInt64LE(f('rx_ns')),
    requests: b.readBigUInt64LE(f('requests')),
    answered: b.readBigUInt64LE(f('answered')),
    from: readAddr(b, f('from')),
    port: b.readUInt16BE(f('port_be')),
    reqLen: b.readUInt16LE(f('req_len')),
  };
}

// ---- struct mp_loop_stats (per-CPU) ---------------------------------------------------------

export interface MpLoopStats {
  /** GSO super-packets sent into the segmentation loop */
  gso: bigint;
  /** IPv4 packets without DF sent into the loop to be fragmented */
  frag: bigint;
  /** segments and fragments that came back out of the loop and were carried */
  back: bigint;
}

/** Sum a per-CPU mp_loop_stats lookup (as decodeLinkStats). */
export function decodeLoopStats(perCpu: Buffer, ncpu?: number): MpLoopStats {
  const stride = perCpuStride(MP_LOOP_STATS.size);
  const end = Math.min(perCpu.length, (ncpu ?? Infinity) * stride);
  const f = (n: string) => at(MP_LOOP_STATS, n);
  const sum = { gso: 0n, frag: 0n, back: 0n };
  for (let cpu = 0; cpu + stride <= end; cpu += stride) {
    sum.gso += perCpu.readBigUInt64LE(cpu + f('gso'));
    sum.frag += perCpu.readBigUInt64LE(cpu + f('frag'));
    sum.back += perCpu.readBigUInt64LE(cpu + f('back'));
  }
  return sum;
}

// ---- struct mp_hdr (wire, big-endian) ------------------------------------------------------

export interface MpHdr {
  version: number;
  /** MP_T_*. */
  type: number;
  flags: number;
  linkId: number;
  keyId: number;
  seq: number;
  linkSeq: number;
  /** Sender's clock in µs, truncated to 32 bits. */
  tsUs: number;
  /** 8-byte MAC tag. */
  tag: Buffer;
}

export function encodeHdr(h: Partial<MpHdr> & Pick<MpHdr, 'type'>): Buffer {
  const b = Buffer.alloc(MP_HDR.size);
  const f = (n: string) => at(MP_HDR, n);
  b.writeUInt8((((h.version ?? MP_VERSION) & 0xf) << 4) | (h.type & 0xf), f('ver_type'));
  b.writeUInt8(h.flags ?? 0, f('flags'));
  b.writeUInt8(h.linkId ?? 0, f('link_id'));
  b.writeUInt8(h.keyId ?? 0, f('key_id'));
  b.writeUInt32BE((h.seq ?? 0) >>> 0, f('seq'));
  b.writeUInt32BE((h.linkSeq ?? 0) >>> 0, f('link_seq'));
  b.writeUInt32BE((h.tsUs ?? 0) >>> 0, f('ts_us'));
  if (h.tag) h.tag.copy(b, f('tag'), 0, 8);
  return b;
}

const hdrOff = offsetsOnce(MP_HDR, ['ver_type', 'flags', 'link_id', 'key_id', 'seq', 'link_seq', 'ts_us', 'tag'] as const);
export function decodeHdr(b: Buffer): MpHdr {
  if (b.length < MP_HDR.size) throw new Error(`mp_hdr needs ${MP_HDR.size} bytes, got ${b.length}`);
  const f = hdrOff();
  const vt = b.readUInt8(f.ver_type);
  return {
    version: vt >> 4,
    type: vt & 0xf,
    flags: b.readUInt8(f.flags),
    linkId: b.readUInt8(f.link_id),
    keyId: b.readUInt8(f.key_id),
    seq: b.readUInt32BE(f.seq),
    linkSeq: b.readUInt32BE(f.link_seq),
    tsUs: b.readUInt32BE(f.ts_us),
    tag: Buffer.from(b.subarray(f.tag, f.tag + 8)),
  };
}

// ---- redundant mode (bpf/redundant.h) ----------------------------------------------------------

/** mp_red_class[i] as userland writes it. */
export interface MpRedClass {
  /** links a packet is sent on: 2..MP_MAX_LINKS, or MP_RED_ALL_LINKS */
  links: number;
  /** DSCP values (0..63) that match */
  dscp: readonly number[];
  /** UDP source or destination port ranges that match (inclusive) */
  ports: readonly { lo: number; hi: number }[];
  /** source or destination prefixes that match */
  prefixes: readonly MpAddr[];
  /** the copies' byte rate and bucket depth */
  capBytesPerS: number;
  burstBytes: number;
}

export function encodeRedClass(c: MpRedClass | null): Buffer {
  const b = Buffer.alloc(MP_RED_CLASS.size);
  if (!c) return b;
  const f = (n: string) => at(MP_RED_CLASS, n);
  b.writeUInt8(1, f('used'));
  b.writeUInt8(c.links, f('links'));
  b.writeUInt8(c.ports.length, f('n_ports'));
  b.writeUInt8(c.prefixes.length, f('n_prefixes'));
  let dscp = 0n;
  for (const d of c.dscp) dscp |= 1n << BigInt(d);
  b.writeBigUInt64LE(dscp, f('dscp'));
  c.ports.slice(0, MP_RED_PORT_RANGES).forEach((r, i) => {
    b.writeUInt16LE(r.lo, f('port_lo') + 2 * i);
    b.writeUInt16LE(r.hi, f('port_hi') + 2 * i);
  });
  c.prefixes.slice(0, MP_RED_PREFIXES).forEach((p, i) => writeAddr(b, f('prefix') + MP_ADDR.size * i, p));
  b.writeBigUInt64LE(BigInt(Math.round(c.capBytesPerS)), f('cap_bytes_per_s'));
  b.writeUInt32LE(c.burstBytes, f('burst_bytes'));
  return b;
}

/** mp_red_stats[i], summed over CPUs. */
export interface MpRedStats {
  packets: bigint;
  bytes: bigint;
  copies: bigint;
  copyBytes: bigint;
  capped: bigint;
  single: bigint;
  copyFailed: bigint;
  duplicates: bigint;
  /** per link id: the first copy came on this link */
  wins: bigint[];
}

export function decodeRedStats(perCpu: Buffer, ncpu?: number): MpRedStats {
  const stride = perCpuStride(MP_RED_STATS.size);
  const end = Math.min(perCpu.length, (ncpu ?? Infinity) * stride);
  const f = (n: string) => at(MP_RED_STATS, n);
  const sum: MpRedStats = { packets: 0n, bytes: 0n, copies: 0n, copyBytes: 0n, capped: 0n, single: 0n, copyFailed: 0n, duplicates: 0n, wins: Array.from({ length: MP_MAX_LINKS }, () => 0n) };
  const scalar = { packets: 'packets', bytes: 'bytes', copies: 'copies', copyBytes: 'copy_bytes', capped: 'capped', single: 'single', copyFailed: 'copy_failed', duplicates: 'duplicates' } as const;
  for (let cpu = 0; cpu + stride <= end; cpu += stride) {
    for (const [k, n] of Object.entries(scalar)) sum[k as keyof typeof scalar] += perCpu.readBigUInt64LE(cpu + f(n));
    for (let i = 0; i < MP_MAX_LINKS; i++) sum.wins[i]! += perCpu.readBigUInt64LE(cpu + f('wins') + 8 * i);
  }
  return sum;
}

// ---- whole-LAN mode: struct mp_nat_key, struct mp_nat_val (bpf/nat.h) --------------------------

/** A NAT map key: (family, L4 protocol, port or echo id, address). */
export interface MpNatKey {
  family: 4 | 6;
  proto: number;
  port: number;
  addr: string;
}

/** A NAT map value: the other side's address and port, MP_NAT_F_* flags; in mp_nat_in the
 * flow's TCP state (MP_NAT_S_*) and the second of its last packet (natNowS's clock); absent: 0. */
export interface MpNatVal {
  addr: string;
  port: number;
  flags: number;
  state?: number;
  lastS?: number;
}

export function encodeNatKey(k: MpNatKey): Buffer {
  const b = Buffer.alloc(MP_NAT_KEY.size);
  if (k.family !== ipFamily(k.addr)) throw new Error(`address ${JSON.stringify(k.addr)} is not IPv${k.family}`);
  b.writeUInt8(k.family, at(MP_NAT_KEY, 'family'));
  b.writeUInt8(k.proto, at(MP_NAT_KEY, 'proto'));
  b.writeUInt16BE(k.port, at(MP_NAT_KEY, 'port_be'));
  ipToBuffer(k.addr).copy(b, at(MP_NAT_KEY, 'addr'));
  return b;
}

export function decodeNatKey(b: Buffer): MpNatKey {
  const family = b.readUInt8(at(MP_NAT_KEY, 'family')) === 6 ? 6 : 4;
  const a = at(MP_NAT_KEY, 'addr');
  return {
    family,
    proto: b.readUInt8(at(MP_NAT_KEY, 'proto')),
    port: b.readUInt16BE(at(MP_NAT_KEY, 'port_be')),
    addr: bufferToIp(b.subarray(a, a + (family === 4 ? 4 : 16))),
  };
}

export function encodeNatVal(v: MpNatVal): Buffer {
  const b = Buffer.alloc(MP_NAT_VAL.size);
  ipToBuffer(v.addr).copy(b, at(MP_NAT_VAL, 'addr'));
  b.writeUInt16BE(v.port, at(MP_NAT_VAL, 'port_be'));
  b.writeUInt8(v.flags, at(MP_NAT_VAL, 'flags'));
  b.writeUInt8(v.state ?? 0, at(MP_NAT_VAL, 'state'));
  b.writeUInt32LE(v.lastS ?? 0, at(MP_NAT_VAL, 'last_s'));
  return b;
}

/** `family`: the key's (an IPv4 address fills the first 4 bytes). */
export function decodeNatVal(b: Buffer, family: 4 | 6): MpNatVal {
  const a = at(MP_NAT_VAL, 'addr');
  return {
    addr: bufferToIp(b.subarray(a, a + (family === 4 ? 4 : 16))),
    port: b.readUInt16BE(at(MP_NAT_VAL, 'port_be')),
    flags: b.readUInt8(at(MP_NAT_VAL, 'flags')),
    state: b.readUInt8(at(MP_NAT_VAL, 'state')),
    lastS: b.readUInt32LE(at(MP_NAT_VAL, 'last_s')),
  };
}
