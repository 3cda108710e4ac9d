// TCA_OPTIONS for the tbf qdisc (the lab's per-direction rate limit and bottleneck queue).
// struct tc_tbf_qopt { tc_ratespec rate, peakrate; u32 limit, buffer, mtu } with
// tc_ratespec { u8 cell_log, linklayer; u16 overhead; s16 cell_align; u16 mpu; u32 rate (bytes/s) }.
import { nla, nlaU32, nlaU64 } from './attr.js';

export interface TbfParams {
  /** bits per second */
  rateBps: number;
  /** token bucket depth in bytes (>= one MTU-sized frame) */
  burstBytes: number;
  /** bytes that may wait for tokens: the bottleneck queue */
  limitBytes: number;
}

const TCA_TBF_PARMS = 1;
const TCA_TBF_RATE64 = 4;
const TCA_TBF_BURST = 6;
const TC_LINKLAYER_ETHERNET = 1;
const PSCHED_SHIFT = 6;

export function encodeTbfOptions(p: TbfParams): Buffer {
  const bytesPerSec = BigInt(Math.round(p.rateBps / 8));
  const qopt = Buffer.alloc(36);
  qopt.writeUInt8(0, 0); // cell_log: unused when linklayer is set
  qopt.writeUInt8(TC_LINKLAYER_ETHERNET, 1);
  qopt.writeUInt32LE(Number(bytesPerSec > 0xffffffffn ? 0xffffffffn : bytesPerSec), 8);
  // peakrate (bytes 12..23) stays zero
  qopt.writeUInt32LE(p.limitBytes >>> 0, 24);
  const burstNs = (BigInt(p.burstBytes) * 1_000_000_000n) / (bytesPerSec > 0n ? bytesPerSec : 1n);
  const ticks = burstNs >> BigInt(PSCHED_SHIFT);
  qopt.writeUInt32LE(Number(ticks > 0xffffffffn ? 0xffffffffn : ticks), 28);
  qopt.writeUInt32LE(0, 32);
  const attrs = [nla(TCA_TBF_PARMS, qopt), nlaU32(TCA_TBF_BURST, p.burstBytes)];
  if (bytesPerSec > 0xffffffffn) attrs.push(nlaU64(TCA_TBF_RATE64, bytesPerSec));
  return Buffer.concat(attrs);
}
