// The rate and burst conventions the kernel's token-bucket qdiscs (tbf, htb) share:
// struct tc_ratespec { u8 cell_log, linklayer; u16 overhead; s16 cell_align; u16 mpu; u32 rate }
// with the rate in bytes/s (u32: a larger rate goes in a 64-bit attribute of the qdisc and the
// u32 holds ~0, as tc does), and bucket depths in psched ticks (64 ns).

export const TC_RATESPEC_LEN = 12;
const TC_LINKLAYER_ETHERNET = 1;
const PSCHED_SHIFT = 6;
const U32_MAX = 0xffffffffn;

/** bits/s -> bytes/s, rounded */
export const bytesPerSecond = (rateBps: number): bigint => BigInt(Math.round(rateBps / 8));

/** Whether the rate needs the qdisc's 64-bit rate attribute (TCA_TBF_RATE64, TCA_HTB_RATE64...). */
export const needsRate64 = (bytesPerSec: bigint): boolean => bytesPerSec > U32_MAX;

/**
 * Writes a tc_ratespec at `off`: linklayer ETHERNET, so the kernel computes packet times itself
 * and needs no rate table (cell_log, overhead, cell_align and mpu stay 0).
 */
export function writeRatespec(buf: Buffer, off: number, bytesPerSec: bigint): void {
  buf.writeUInt8(0, off); // cell_log: unused when linklayer is set
  buf.writeUInt8(TC_LINKLAYER_ETHERNET, off + 1);
  buf.writeUInt32LE(Number(needsRate64(bytesPerSec) ? U32_MAX : bytesPerSec), off + 8);
}

/** The time `bytes` take at `bytesPerSec`, in psched ticks (a bucket depth as tbf/htb want it). */
export function xmitTicks(bytes: number, bytesPerSec: bigint): number {
  const ns = (BigInt(Math.round(bytes)) * 1_000_000_000n) / (bytesPerSec > 0n ? bytesPerSec : 1n);
  const ticks = ns >> BigInt(PSCHED_SHIFT);
  return Number(ticks > U32_MAX ? U32_MAX : ticks);
}
