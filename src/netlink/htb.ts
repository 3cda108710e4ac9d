// TCA_OPTIONS for the per-link shaper: an htb root qdisc, one htb class per link at the link's
// pacing rate, and a bfifo leaf under each class (the deep queue that equalises the links in the
// portal instead of in the ISP's buffer). The data path selects the class by setting
// skb->priority to the classid; everything else matches no class and, with default class 0,
// goes out unshaped through htb's direct queue.
import { nla, nlaU32, nlaU64 } from './attr.js';
import { bytesPerSecond, needsRate64, TC_RATESPEC_LEN, writeRatespec, xmitTicks } from './ratespec.js';

export interface HtbClassParams {
  /** the class's rate and ceiling, bits per second */
  rateBps: number;
  /** the leaf bfifo's limit: bytes that may wait in the class's queue */
  limitBytes: number;
}

const TCA_HTB_PARMS = 1;
const TCA_HTB_INIT = 2;
const TCA_HTB_DIRECT_QLEN = 5;
const TCA_HTB_RATE64 = 6;
const TCA_HTB_CEIL64 = 7;
/** The htb ABI version the kernel checks (HTB_VER >> 16): anything else is EINVAL. */
const HTB_VERSION = 3;
/** bytes/s per quantum byte, as tc's default: the quantum the kernel derives for a class */
const HTB_RATE2QUANTUM = 10;
/** two full Ethernet frames: the least bucket that lets a class send back-to-back frames */
const MIN_BURST_BYTES = 2 * 1514;
/** the bucket holds about this much time of the rate (more would let a class burst past it) */
const BURST_SECONDS = 0.001;
/** the highest qdisc major: ffff: is the ingress/clsact qdisc's */
const MAX_MAJOR = 0xfffe;

/**
 * The htb qdisc: struct tc_htb_glob { u32 version, rate2quantum, defcls, debug, direct_pkts }
 * with default class 0 (no such class: unclassified packets go to the direct queue, unshaped),
 * and TCA_HTB_DIRECT_QLEN, without which the direct queue is as long as the device's
 * tx_queue_len, which is 0 on some virtual devices.
 */
export function encodeHtbQdiscOptions(directQlen: number): Buffer {
  const glob = Buffer.alloc(20);
  glob.writeUInt32LE(HTB_VERSION, 0);
  glob.writeUInt32LE(HTB_RATE2QUANTUM, 4);
  glob.writeUInt32LE(0, 8); // defcls
  return Buffer.concat([nla(TCA_HTB_INIT, glob), nlaU32(TCA_HTB_DIRECT_QLEN, directQlen)]);
}

/**
 * An htb class: struct tc_htb_opt { tc_ratespec rate, ceil; u32 buffer, cbuffer, quantum, level,
 * prio } with ceil = rate (the class never borrows), buckets of about 1 ms of the rate but at
 * least two full frames, and quantum 0: the kernel derives it from the rate (rate2quantum,
 * clamped to 1000..200000 bytes; the quantum only matters between classes that share a parent's
 * spare rate, which these never do).
 */
export function encodeHtbClassOptions(rateBps: number): Buffer {
  const bytesPerSec = bytesPerSecond(rateBps);
  const burst = Math.max(MIN_BURST_BYTES, Math.ceil(Number(bytesPerSec) * BURST_SECONDS));
  const ticks = xmitTicks(burst, bytesPerSec);
  const opt = Buffer.alloc(2 * TC_RATESPEC_LEN + 20);
  writeRatespec(opt, 0, bytesPerSec);
  writeRatespec(opt, TC_RATESPEC_LEN, bytesPerSec);
  opt.writeUInt32LE(ticks, 24); // buffer
  opt.writeUInt32LE(ticks, 28); // cbuffer
  // quantum, level (kernel's output only) and prio stay 0
  const attrs = [nla(TCA_HTB_PARMS, opt)];
  if (needsRate64(bytesPerSec)) attrs.push(nlaU64(TCA_HTB_RATE64, bytesPerSec), nlaU64(TCA_HTB_CEIL64, bytesPerSec));
  return Buffer.concat(attrs);
}

/** The bfifo leaf: struct tc_fifo_qopt { u32 limit } in bytes. */
export function encodeBfifoOptions(limitBytes: number): Buffer {
  const qopt = Buffer.alloc(4);
  qopt.writeUInt32LE(limitBytes >>> 0, 0);
  return qopt;
}

/** The tc handle major:minor. */
export const tcHandle = (major: number, minor: number): number => ((major << 16) | minor) >>> 0;

/**
 * The handle of class major:minor's leaf qdisc: (major + minor):0. Every qdisc on the device
 * below the htb root major:0 is one of these leaves, so they cannot collide: each minor gives its
 * own major, all above the root's. checkHtbIds keeps them below ffff: (ingress/clsact).
 */
export const htbLeafHandle = (major: number, minor: number): number => tcHandle(major + minor, 0);

/** Why major:minor cannot be an htb class of ours (null: it can). */
export function checkHtbIds(major: number, minor: number): string | null {
  if (!Number.isInteger(major) || major < 1 || major >= MAX_MAJOR) return `bad htb major ${major}`;
  if (!Number.isInteger(minor) || minor < 1 || major + minor > MAX_MAJOR)
    return `bad htb class minor ${minor} (1..${MAX_MAJOR - major} with major ${major})`;
  return null;
}

/** Why these class parameters cannot be encoded (null: they can). */
export function checkHtbClassParams(p: HtbClassParams): string | null {
  // a rate of 0 bytes/s is EINVAL in the kernel
  if (!Number.isFinite(p.rateBps) || p.rateBps < 8) return `bad htb class rate ${p.rateBps} bit/s`;
  if (!Number.isInteger(p.limitBytes) || p.limitBytes < 1 || p.limitBytes > 0xffffffff) return `bad bfifo limit ${p.limitBytes} bytes`;
  return null;
}
