/**
 * IPv4/IPv6 address arithmetic on bigints, enough for CNI IPAM (RFC 4291 text forms, RFC 4632 CIDR).
 * No dependency: this module is bundled into the plugin executable and must load fast.
 */

/** An address: its family (4 or 6) and value as an unsigned integer (32 or 128 bits). */
export interface Ip {
  family: 4 | 6;
  value: bigint;
}

/** A prefix: network address (host bits zero), prefix length, and the address as written. */
export interface Cidr {
  family: 4 | 6;
  /** The address as written (host bits may be set, as in `ips[].address` of a CNI result). */
  ip: Ip;
  /** The network address (host bits cleared). */
  network: Ip;
  prefix: number;
}

const bits = (f: 4 | 6): number => (f === 4 ? 32 : 128);

/** Parses a dotted-quad IPv4 or an RFC 4291 IPv6 text address. @returns undefined when malformed. */
export function parseIp(text: string): Ip | undefined {
  if (typeof text !== "string") return undefined;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    let v = 0n;
    for (const part of text.split(".")) {
      if (part.length > 1 && part.startsWith("0")) return undefined;
      const n = Number(part);
      if (n > 255) return undefined;
      v = (v << 8n) | BigInt(n);
    }
    return { family: 4, value: v };
  }
  if (!text.includes(":") || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    const v4 = parseIp(text.slice(lastColon + 1));
    if (!v4 || v4.family !== 4) return undefined;
    tailV4 = v4.value;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const parse = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const a = parse(halves[0] ?? "");
  const b = halves.length === 2 ? parse(halves[1] ?? "") : [];
  if (!a || !b) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - a.length - b.length;
    if (fill < 1) return undefined;
    groups = [...a, ...new Array<number>(fill).fill(0), ...b];
  } else {
    if (a.length !== 8) return undefined;
    groups = a;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return { family: 6, value: v };
}

/** Formats an address in canonical text (RFC 5952 for IPv6: lower case, longest zero run as `::`). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join(".");
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Parses `addr/prefix`. @returns undefined when malformed or the prefix is out of range. */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== "string") return undefined;
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const p = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bits(ip.family)) return undefined;
  return { family: ip.family, ip, network: { family: ip.family, value: ip.value & mask(ip.family, prefix) }, prefix };
}

/** The netmask of `prefix` bits as an integer. */
export function mask(family: 4 | 6, prefix: number): bigint {
  const b = BigInt(bits(family));
  const all = (1n << b) - 1n;
  return prefix === 0 ? 0n : (all << (b - BigInt(prefix))) & all;
}

/** Last address of the prefix (the IPv4 broadcast address). */
export function lastOf(c: Cidr): Ip {
  return { family: c.family, value: c.network.value | (~mask(c.family, c.prefix) & ((1n << BigInt(bits(c.family))) - 1n)) };
}

/** True when `ip` lies inside prefix `c`. */
export function contains(c: Cidr, ip: Ip): boolean {
  return ip.family === c.family && (ip.value & mask(c.family, c.prefix)) === c.network.value;
}

/** `ip + n` in the same family (no overflow check: callers stay inside a prefix). */
export function add(ip: Ip, n: bigint): Ip {
  return { family: ip.family, value: ip.value + n };
}

/** `a/prefix` text of an address with a prefix length. */
export function formatCidr(ip: Ip, prefix: number): string {
  return `${formatIp(ip)}/${prefix}`;
}
