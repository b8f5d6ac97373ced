/**
 * The fake-cni command handler, shared by the executable (main.ts, one call per process) and the
 * resident server (server.ts, one call per request). Implements CNI spec 1.1.0:
 * VERSION, ADD, DEL, CHECK, STATUS, GC, for configs of versions 0.3.0 .. 1.1.0, with results in
 * the version asked. Runs as the main (interface) plugin, or as an IPAM plugin when its file is
 * named `host-local` (then it returns only `ips`, `routes`, `dns`, as host-local does).
 */
import { PluginError, CniErrorCode } from "./errors.js";
import { type NetConf, SUPPORTED_VERSIONS, parseNetConf, versionAtLeast } from "./config.js";
import { type Allocation, Store } from "./ipam.js";
import { formatCidr, formatIp, parseCidr, parseIp, type Ip } from "./ip.js";
import { containerAddresses, hostVethExists, hostVethName, macFor, setupVeth, teardownVeth } from "./link.js";

/** The environment a plugin is called with (CNI spec section 3: `CNI_COMMAND`, `CNI_CONTAINERID`, ...). */
export type CniEnv = Record<string, string | undefined>;

/** What a plugin run produces: the bytes for stdout (a result, or the spec's error object, newline-terminated; empty for DEL etc.) and the exit status. */
export interface CniOutcome {
  stdout: string;
  exitCode: number;
}

interface Env {
  command: string;
  containerId: string;
  netns: string;
  ifname: string;
  args: Map<string, string>;
}

const COMMANDS = new Set(["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"]);
const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function envError(msg: string): never {
  throw new PluginError(CniErrorCode.InvalidEnvironment, msg);
}

function readEnv(env: CniEnv): Env {
  const command = env.CNI_COMMAND ?? "";
  if (!command) envError("CNI_COMMAND is required");
  if (!COMMANDS.has(command)) envError(`unknown CNI_COMMAND ${JSON.stringify(command)}`);
  const containerId = env.CNI_CONTAINERID ?? "";
  const netns = env.CNI_NETNS ?? "";
  const ifname = env.CNI_IFNAME ?? "";
  if (command === "ADD" || command === "DEL" || command === "CHECK") {
    if (!containerId) envError("CNI_CONTAINERID is required");
    if (!ID_RE.test(containerId)) envError(`invalid CNI_CONTAINERID ${JSON.stringify(containerId)}: must match ${ID_RE.source}`);
    if (!ifname) envError("CNI_IFNAME is required");
    if (ifname.length > 15 || ifname === "." || ifname === ".." || /[/:\s]/.test(ifname))
      envError(`invalid CNI_IFNAME ${JSON.stringify(ifname)}: at most 15 characters, no '/', ':' or spaces`);
    if (command !== "DEL" && !netns) envError("CNI_NETNS is required");
    if (/[\0-\x1f]/.test(netns)) envError(`invalid CNI_NETNS ${JSON.stringify(netns)}: control characters`);
  }
  const args = new Map<string, string>();
  const rawArgs = env.CNI_ARGS ?? "";
  if (rawArgs) {
    for (const pair of rawArgs.split(";")) {
      if (pair === "") continue;
      const eq = pair.indexOf("=");
      if (eq <= 0) envError(`invalid CNI_ARGS element ${JSON.stringify(pair)}: want KEY=VALUE`);
      args.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  return { command, containerId, netns, ifname, args };
}

type Json = Record<string, unknown>;

function ipEntry(version: string, a: { address: string; gateway?: string; interface?: number }, family: 4 | 6): Json {
  const e: Json = {};
  if (!versionAtLeast(version, "1.0.0")) e.version = String(family);
  e.address = a.address;
  if (a.gateway) e.gateway = a.gateway;
  if (a.interface !== undefined) e.interface = a.interface;
  return e;
}

/** Brings a prevResult to the shape of `version` (only the `ips[].version` field differs 0.3 → 1.0). */
function normalisePrev(prev: Json | undefined, version: string): Json {
  const out: Json = { interfaces: [], ips: [], routes: [], ...(prev ?? {}) };
  const ips = Array.isArray(out.ips) ? (out.ips as Json[]) : [];
  out.ips = ips.map((ip) => {
    const c = parseCidr(String(ip.address ?? ""));
    const copy: Json = { ...ip };
    delete copy.version;
    return ipEntry(version, copy as { address: string }, c?.family ?? 4);
  });
  out.cniVersion = version;
  return out;
}

/**
 * The ADD result. As the main plugin, prevResult's interfaces/ips/routes are kept and this
 * plugin's appended (CNI spec section 4, chained plugins). As an IPAM delegate (`ifaces`
 * undefined) only this plugin's allocation is returned, as host-local does: the calling plugin
 * merges it.
 */
function buildResult(conf: NetConf, env: Env, allocs: Allocation[], ifaces: Json[] | undefined): Json {
  const v = conf.cniVersion;
  const base = normalisePrev(ifaces ? conf.prevResult : undefined, v);
  const interfaces = Array.isArray(base.interfaces) ? [...(base.interfaces as Json[])] : [];
  let ifIndex: number | undefined;
  if (ifaces) {
    interfaces.push(...ifaces);
    ifIndex = interfaces.length - 1; // the container interface is the last one added
  }
  const ips = [
    ...(base.ips as Json[]),
    ...allocs.map((a) =>
      ipEntry(
        v,
        {
          address: formatCidr(a.ip, a.range.subnet.prefix),
          ...(a.range.gateway ? { gateway: formatIp(a.range.gateway) } : {}),
          ...(ifIndex !== undefined ? { interface: ifIndex } : {}),
        },
        a.ip.family,
      ),
    ),
  ];
  const routes = [...((base.routes as Json[]) ?? []), ...conf.routes];
  const result: Json = { cniVersion: v };
  if (ifaces || interfaces.length) result.interfaces = interfaces;
  result.ips = ips;
  if (routes.length) result.routes = routes;
  const dns = conf.dns ?? (base.dns as Json | undefined);
  if (dns) result.dns = dns;
  return result;
}

function requestedIps(env: Env, conf: NetConf): Ip[] {
  const out: Ip[] = [];
  const add = (s: string): void => {
    const ip = parseIp(s.includes("/") ? s.slice(0, s.indexOf("/")) : s);
    if (!ip) throw new PluginError(CniErrorCode.InvalidEnvironment, `invalid requested IP ${JSON.stringify(s)}`);
    out.push(ip);
  };
  const a = env.args.get("IP");
  if (a) for (const s of a.split(",")) if (s) add(s);
  const rc = conf.raw.runtimeConfig as Json | undefined;
  if (rc && Array.isArray(rc.ips)) for (const s of rc.ips) add(String(s));
  return out;
}

async function cmdAdd(conf: NetConf, env: Env, ipamOnly: boolean): Promise<Json> {
  const store = new Store(conf);
  store.ensureDir();
  const want = requestedIps(env, conf);
  const allocs = store.withLock(() => store.allocate(env.containerId, env.ifname, want));
  if (ipamOnly) return buildResult(conf, env, allocs, undefined);
  const hostIf = hostVethName(conf.name, env.containerId, env.ifname);
  const containerMac = allocs[0]?.ip.family === 4 ? mac4(allocs[0].ip) : macFor(`${conf.name}/${env.containerId}/${env.ifname}`);
  let mode = conf.mode;
  let hostIface: Json | undefined;
  if (mode !== "noop") {
    if (hostVethExists(hostIf)) await teardownVeth(hostIf); // a repeated ADD, or a pair left by a lost DEL
    const r = await setupVeth({
      netns: env.netns,
      ifname: env.ifname,
      hostIf,
      mtu: conf.mtu,
      containerMac,
      hostMac: macFor(hostIf, 0x02),
      addresses: allocs.map((a) => formatCidr(a.ip, a.range.subnet.prefix)),
      routes: conf.routes.map((r) => ({ dst: r.dst, ...(r.gw ? { gw: r.gw } : gwFor(r.dst, allocs)) })),
    });
    if (r.ok) {
      mode = "veth";
      hostIface = { name: hostIf, mac: macFor(hostIf, 0x02) };
      if (versionAtLeast(conf.cniVersion, "1.1.0")) hostIface.mtu = conf.mtu;
    } else if (mode === "auto" && r.unsupported) {
      mode = "noop";
    } else {
      store.withLock(() => store.release(env.containerId, env.ifname));
      throw new PluginError(CniErrorCode.LinkSetupFailed, `veth setup failed`, r.msg);
    }
  }
  const cont: Json = { name: env.ifname, mac: containerMac, sandbox: env.netns };
  if (versionAtLeast(conf.cniVersion, "1.1.0")) cont.mtu = conf.mtu;
  return buildResult(conf, env, allocs, hostIface ? [hostIface, cont] : [cont]);
}

/** Default route gateway: the gateway of the first allocation of the route's family. */
function gwFor(dst: string, allocs: Allocation[]): { gw?: string } {
  const fam = parseCidr(dst)?.family;
  const a = allocs.find((x) => x.ip.family === fam && x.range.gateway);
  return a?.range.gateway ? { gw: formatIp(a.range.gateway) } : {};
}

/** Kubernetes-style MAC for an IPv4 address: 0a:58 followed by the four address bytes. */
function mac4(ip: Ip): string {
  const v = Number(ip.value);
  return ["0a", "58", ...[24, 16, 8, 0].map((s) => ((v >>> s) & 255).toString(16).padStart(2, "0"))].join(":");
}

async function cmdDel(conf: NetConf, env: Env, ipamOnly: boolean): Promise<void> {
  const store = new Store(conf);
  if (!ipamOnly) await teardownVeth(hostVethName(conf.name, env.containerId, env.ifname));
  try {
    store.ensureDir();
  } catch {
    return; // nothing can be recorded where nothing can be made: nothing to free
  }
  store.withLock(() => store.release(env.containerId, env.ifname));
}

async function cmdCheck(conf: NetConf, env: Env, ipamOnly: boolean): Promise<void> {
  if (!conf.prevResult) throw new PluginError(CniErrorCode.InvalidNetworkConfig, "CHECK needs prevResult");
  const store = new Store(conf);
  const held = new Set(store.findByAttachment(env.containerId, env.ifname).map((ip) => formatIp(ip)));
  if (held.size === 0) throw new PluginError(CniErrorCode.UnknownContainer, `no IPAM record for ${env.containerId}/${env.ifname} in network ${conf.name}`);
  const prev = normalisePrev(conf.prevResult, conf.cniVersion);
  const prevIps = (prev.ips as Json[]).map((i) => parseCidr(String(i.address ?? ""))).filter((c) => c !== undefined);
  const mine = prevIps.filter((c) => conf.rangeSets.some((set) => set.some((r) => r.subnet.family === c.family && r.subnet.network.value === c.network.value)));
  for (const c of mine)
    if (!held.has(formatIp(c.ip)))
      throw new PluginError(CniErrorCode.CheckFailed, `address ${formatIp(c.ip)} of prevResult is not recorded for ${env.containerId}/${env.ifname}`);
  if (ipamOnly) return;
  const hostIf = hostVethName(conf.name, env.containerId, env.ifname);
  const veth = conf.mode === "veth" || (conf.mode === "auto" && hostVethExists(hostIf));
  if (!veth) return;
  if (!hostVethExists(hostIf)) throw new PluginError(CniErrorCode.CheckFailed, `host interface ${hostIf} is missing`);
  const addrs = await containerAddresses(env.netns, env.ifname);
  if (!addrs) throw new PluginError(CniErrorCode.CheckFailed, `interface ${env.ifname} is missing in ${env.netns}`);
  for (const c of mine) {
    const want = formatCidr(c.ip, c.prefix);
    if (!addrs.includes(want)) throw new PluginError(CniErrorCode.CheckFailed, `interface ${env.ifname} lacks address ${want}`, addrs.join(","));
  }
}

function cmdStatus(conf: NetConf): void {
  const store = new Store(conf);
  try {
    store.ensureDir();
    store.withLock(() => undefined);
  } catch (e) {
    throw new PluginError(CniErrorCode.PluginNotAvailable, `IPAM state directory ${store.dir} is not usable`, (e as Error).message);
  }
  const free = store.freeCounts();
  const i = free.findIndex((n) => n <= 0n);
  if (i >= 0) throw new PluginError(CniErrorCode.PluginNotAvailable, `range set ${i} of network ${conf.name} has no free address`);
}

async function cmdGc(conf: NetConf, ipamOnly: boolean): Promise<void> {
  const store = new Store(conf);
  try {
    store.ensureDir();
  } catch {
    return;
  }
  const freed = store.withLock(() => store.gc(conf.validAttachments ?? []));
  if (!ipamOnly) for (const f of freed) await teardownVeth(hostVethName(conf.name, f.id, f.ifname));
}

/**
 * Runs one CNI command: `env` is the plugin's environment (`CNI_*`), `stdin` the network
 * configuration (or a thunk reading it, called only after the environment is validated, so a bad
 * `CNI_COMMAND` never waits on stdin), `programName` the file name the plugin was run as
 * (`host-local` makes it an IPAM plugin). Never throws: failures become the spec's error object
 * (CNI spec section "Error") with exit status 1. Resolves once the command's work is done
 * (veth mode: the kernel has created or deleted the pair).
 */
export async function handleCni(env: CniEnv, stdin: string | (() => string), programName: string): Promise<CniOutcome> {
  const r = await run(env, typeof stdin === "string" ? () => stdin : stdin, programName);
  return { stdout: r.out ? `${r.out}\n` : "", exitCode: r.code };
}

async function run(env: CniEnv, stdin: () => string, argv1: string): Promise<{ out: string; code: number }> {
  let version = "1.1.0";
  try {
    const e = readEnv(env);
    const text = stdin();
    if (e.command === "VERSION") {
      let asked: unknown;
      try {
        asked = text.trim() ? (JSON.parse(text) as Json).cniVersion : undefined;
      } catch {
        asked = undefined;
      }
      const cniVersion = typeof asked === "string" && asked ? asked : "1.1.0";
      return { out: JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS }), code: 0 };
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new PluginError(CniErrorCode.DecodingFailure, `cannot decode network configuration: ${(err as Error).message}`);
    }
    if (raw && typeof raw === "object" && typeof (raw as Json).cniVersion === "string") version = (raw as Json).cniVersion as string;
    const ipamOnly = argv1.slice(argv1.lastIndexOf("/") + 1) === "host-local";
    const conf = parseNetConf(raw, ipamOnly);
    const needs = (min: string): void => {
      if (!versionAtLeast(conf.cniVersion, min))
        throw new PluginError(CniErrorCode.IncompatibleVersion, `config version ${conf.cniVersion} does not allow ${e.command} (needs ${min})`);
    };
    switch (e.command) {
      case "ADD":
        return { out: JSON.stringify(await cmdAdd(conf, e, ipamOnly)), code: 0 };
      case "DEL":
        await cmdDel(conf, e, ipamOnly);
        return { out: "", code: 0 };
      case "CHECK":
        needs("0.4.0");
        await cmdCheck(conf, e, ipamOnly);
        return { out: "", code: 0 };
      case "STATUS":
        needs("1.1.0");
        cmdStatus(conf);
        return { out: "", code: 0 };
      default:
        needs("1.1.0");
        await cmdGc(conf, ipamOnly);
        return { out: "", code: 0 };
    }
  } catch (err) {
    const pe =
      err instanceof PluginError ? err : new PluginError(CniErrorCode.IoFailure, `internal error: ${(err as Error)?.message ?? String(err)}`);
    const obj: Json = { cniVersion: SUPPORTED_VERSIONS.includes(version as never) ? version : "1.1.0", code: pe.code, msg: pe.message };
    if (pe.details) obj.details = pe.details;
    return { out: JSON.stringify(obj), code: 1 };
  }
}
