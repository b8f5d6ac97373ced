/**
 * Network configuration of the fake-cni plugin: parsing and validation (CNI spec 1.1.0,
 * "Section 1: Network configuration format"; IPAM fields follow the reference `host-local`).
 */
import { PluginError, CniErrorCode } from "./errors.js";
import { type Cidr, type Ip, add, contains, formatIp, lastOf, parseCidr, parseIp } from "./ip.js";

/** Config versions this plugin accepts; results are written in the version asked. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

/** One address range (host-local `ranges[][]` element) after defaults are applied. */
export interface Range {
  subnet: Cidr;
  rangeStart: Ip;
  rangeEnd: Ip;
  gateway?: Ip;
}

/** A route of the result (`{dst, gw?}`, CNI spec "Routes"). */
export interface Route {
  dst: string;
  gw?: string;
  [k: string]: unknown;
}

/** The parsed network configuration. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  mode: "veth" | "noop" | "auto";
  mtu: number;
  /** Range sets: one address is allocated from each. */
  rangeSets: Range[][];
  routes: Route[];
  dns?: Record<string, unknown>;
  /** `<dataDir>/<name>` holds the records (host-local layout). */
  dataDir: string;
  prevResult?: Record<string, unknown>;
  validAttachments?: { containerID: string; ifname: string }[];
  /** Raw object, for fields passed through. */
  raw: Record<string, unknown>;
}

/** Default IPAM data dir, as host-local's. */
export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function bad(msg: string, details = ""): never {
  throw new PluginError(CniErrorCode.InvalidNetworkConfig, msg, details);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Compares two `x.y.z` version strings. */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

function parseRange(r: unknown, where: string): Range {
  if (!isObj(r)) bad(`${where}: a range must be an object with "subnet"`);
  const subnet = parseCidr(String(r.subnet ?? ""));
  if (!subnet) bad(`${where}: invalid "subnet" ${JSON.stringify(r.subnet)}`, "expected CIDR such as 10.88.0.0/16");
  if (subnet.family === 4 && subnet.prefix > 30) bad(`${where}: subnet ${r.subnet} has too few addresses (prefix must be <= 30)`);
  if (subnet.family === 6 && subnet.prefix > 127) bad(`${where}: subnet ${r.subnet} has too few addresses`);
  const ipField = (k: string): Ip | undefined => {
    if (r[k] === undefined || r[k] === "") return undefined;
    const ip = parseIp(String(r[k]));
    if (!ip) bad(`${where}: invalid "${k}" ${JSON.stringify(r[k])}`);
    if (!contains(subnet, ip)) bad(`${where}: "${k}" ${r[k]} is outside subnet ${formatIp(subnet.network)}/${subnet.prefix}`);
    return ip;
  };
  const last = lastOf(subnet);
  const defaultEnd = subnet.family === 4 ? add(last, -1n) : last;
  const rangeStart = ipField("rangeStart") ?? add(subnet.network, 1n);
  const rangeEnd = ipField("rangeEnd") ?? defaultEnd;
  const gateway = ipField("gateway") ?? add(subnet.network, 1n);
  if (rangeStart.value > rangeEnd.value) bad(`${where}: rangeStart is after rangeEnd`);
  if (rangeStart.value === subnet.network.value) bad(`${where}: rangeStart may not be the network address`);
  if (subnet.family === 4 && rangeEnd.value === last.value) bad(`${where}: rangeEnd may not be the broadcast address`);
  return { subnet, rangeStart, rangeEnd, gateway };
}

/**
 * Parses and validates a network configuration object (already JSON-decoded).
 * @param ipamOnly the executable runs as an IPAM delegate (the `host-local` alias): the top-level
 *   fields then belong to the calling plugin (macvlan's `mode: "bridge"`, bridge's `mtu`), so
 *   `mode` and `mtu` are not validated and take their defaults.
 * @throws PluginError code 1 (unsupported `cniVersion`), 7 (invalid config).
 */
export function parseNetConf(raw: unknown, ipamOnly = false): NetConf {
  if (!isObj(raw)) throw new PluginError(CniErrorCode.DecodingFailure, "network configuration must be a JSON object");
  const cniVersion = raw.cniVersion;
  if (typeof cniVersion !== "string" || cniVersion === "") bad(`"cniVersion" is required`);
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) {
    throw new PluginError(
      CniErrorCode.IncompatibleVersion,
      `incompatible CNI versions: config is "${cniVersion}", plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  }
  const name = raw.name;
  if (typeof name !== "string" || !NAME_RE.test(name)) bad(`"name" is required and must match ${NAME_RE.source}`, `got ${JSON.stringify(name)}`);
  const type = typeof raw.type === "string" ? raw.type : "fake-cni";
  const mode = ipamOnly ? "noop" : (raw.mode ?? "auto");
  if (mode !== "veth" && mode !== "noop" && mode !== "auto") bad(`"mode" must be "veth", "noop" or "auto"`, `got ${JSON.stringify(mode)}`);
  const mtu = ipamOnly ? 1500 : (raw.mtu ?? 1500);
  if (typeof mtu !== "number" || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535) bad(`"mtu" must be an integer 68..65535`);
  const ipam = raw.ipam;
  if (!isObj(ipam)) bad(`"ipam" is required (an object with "ranges" or "subnet")`);
  let rangeSets: Range[][];
  if (ipam.ranges !== undefined) {
    if (!Array.isArray(ipam.ranges) || ipam.ranges.length === 0) bad(`"ipam.ranges" must be a non-empty array of range sets`);
    rangeSets = ipam.ranges.map((set, i) => {
      if (!Array.isArray(set) || set.length === 0) bad(`"ipam.ranges[${i}]" must be a non-empty array of ranges`);
      return set.map((r, j) => parseRange(r, `ipam.ranges[${i}][${j}]`));
    });
  } else if (ipam.subnet !== undefined) {
    rangeSets = [[parseRange(ipam, "ipam")]];
  } else {
    bad(`"ipam" needs "ranges" or "subnet"`);
  }
  // Ranges may not overlap, and a set holds one family (host-local's RangeSet.Canonicalize).
  const all = rangeSets.flat();
  for (const [i, set] of rangeSets.entries()) {
    const fam = set[0]!.subnet.family;
    if (set.some((r) => r.subnet.family !== fam)) bad(`"ipam.ranges[${i}]" mixes IPv4 and IPv6`);
  }
  for (let i = 0; i < all.length; i++)
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i]!;
      const b = all[j]!;
      if (a.subnet.family === b.subnet.family && a.rangeStart.value <= b.rangeEnd.value && b.rangeStart.value <= a.rangeEnd.value)
        bad(`ranges ${formatIp(a.rangeStart)}-${formatIp(a.rangeEnd)} and ${formatIp(b.rangeStart)}-${formatIp(b.rangeEnd)} overlap`);
    }
  const routesRaw = ipam.routes ?? [];
  if (!Array.isArray(routesRaw)) bad(`"ipam.routes" must be an array`);
  const routes = routesRaw.map((r, i) => {
    if (!isObj(r) || !parseCidr(String(r.dst ?? ""))) bad(`"ipam.routes[${i}].dst" must be a CIDR`);
    if (r.gw !== undefined && !parseIp(String(r.gw))) bad(`"ipam.routes[${i}].gw" must be an IP address`);
    return r as Route;
  });
  const dataDir = ipam.dataDir ?? DEFAULT_DATA_DIR;
  if (typeof dataDir !== "string" || !dataDir.startsWith("/")) bad(`"ipam.dataDir" must be an absolute path`);
  const dns = isObj(raw.dns) ? raw.dns : isObj(ipam.dns) ? ipam.dns : undefined;
  if (raw.prevResult !== undefined && !isObj(raw.prevResult)) bad(`"prevResult" must be an object`);
  let validAttachments: NetConf["validAttachments"];
  const va = raw["cni.dev/valid-attachments"];
  if (va !== undefined) {
    if (!Array.isArray(va)) bad(`"cni.dev/valid-attachments" must be an array`);
    validAttachments = va.map((a, i) => {
      if (!isObj(a) || typeof a.containerID !== "string" || typeof a.ifname !== "string")
        bad(`"cni.dev/valid-attachments[${i}]" must be {containerID, ifname}`);
      return { containerID: a.containerID, ifname: a.ifname };
    });
  }
  return {
    cniVersion,
    name,
    type,
    mode,
    mtu,
    rangeSets,
    routes,
    ...(dns ? { dns } : {}),
    dataDir,
    ...(raw.prevResult ? { prevResult: raw.prevResult as Record<string, unknown> } : {}),
    ...(validAttachments ? { validAttachments } : {}),
    raw,
  };
}
