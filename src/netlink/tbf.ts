// TCA_OPTIONS for the tbf qdisc (the lab's per-direction rate limit and bottleneck queue).
// struct tc_tbf_qopt { tc_ratespec rate, peakrate; u32 limit, buffer, mtu } (ratespec.ts).
import { nla, nlaU32, nlaU64 } from './attr.js';
import { bytesPerSecond, needsRate64, writeRatespec, xmitTicks } from './ratespec.js';

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

export function encodeTbfOptions(p: TbfParams): Buffer {
  const bytesPerSec = bytesPerSecond(p.rateBps);
  const qopt = Buffer.alloc(36);
  writeRatespec(qopt, 0, bytesPerSec);
  // peakrate (bytes 12..23) stays zero
  qopt.writeUInt32LE(p.limitBytes >>> 0, 24);
  qopt.writeUInt32LE(xmitTicks(p.burstBytes, bytesPerSec), 28);
  qopt.writeUInt32LE(0, 32);
  const attrs = [nla(TCA_TBF_PARMS, qopt), nlaU32(TCA_TBF_BURST, p.burstBytes)];
  if (needsRate64(bytesPerSec)) attrs.push(nlaU64(TCA_TBF_RATE64, bytesPerSec));
  return Buffer.concat(attrs);
}
