// Minimal netlink attribute encoding for the nested attributes the `netlink` package leaves as
// raw Buffers (IFLA_LINKINFO for veth, TCA_OPTIONS for tbf). Layout per attribute:
// u16 len (header + payload, unpadded), u16 type, payload, padding to 4 bytes.

export const NLA_F_NESTED = 0x8000;

const align4 = (n: number): number => (n + 3) & ~3;

export function nla(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

export const nlaNested = (type: number, ...children: Buffer[]): Buffer =>
  nla(type | NLA_F_NESTED, Buffer.concat(children));

export const nlaU32 = (type: number, v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return nla(type, b);
};

export const nlaU64 = (type: number, v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v, 0);
  return nla(type, b);
};

/** NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND). */
export const nlaStr = (type: number, s: string): Buffer => nla(type, Buffer.from(`${s}\0`, 'utf8'));

/** Parses a flat attribute stream into type -> payload (last one wins; nested flag stripped). */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & ~NLA_F_NESTED;
    if (len < 4 || off + len > buf.length) break;
    out.set(type, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}
