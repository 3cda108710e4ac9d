// IP address and prefix parsing shared by the netlink port, the lab and config validation.
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Prefix {
  family: Family;
  address: string;
  len: number;
}

export function ipFamily(addr: string): Family | null {
  if (isIPv4(addr)) return 4;
  if (isIPv6(addr)) return 6;
  return null;
}

/** Parses `10.0.0.1/24` or `fd00::1/64`; a bare address gets a host-length prefix. */
export function parsePrefix(s: string): Prefix | null {
  const [address = '', lenStr] = s.split('/');
  const family = ipFamily(address);
  if (family === null) return null;
  const max = family === 4 ? 32 : 128;
  if (lenStr === undefined) return { family, address, len: max };
  if (!/^\d{1,3}$/.test(lenStr)) return null;
  const len = Number(lenStr);
  return len <= max ? { family, address, len } : null;
}

export function ipToBuffer(addr: string): Buffer {
  if (isIPv4(addr)) return Buffer.from(addr.split('.').map(Number));
  if (!isIPv6(addr)) throw new Error(`not an IP address: ${addr}`);
  let s = addr;
  // an embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1]) {
    const b = v4[1].split('.').map(Number) as [number, number, number, number];
    s = `${s.slice(0, -v4[1].length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  const groups = [...h, ...zeros, ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function bufferToIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
