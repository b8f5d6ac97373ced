/**
 * veth mode: a real veth pair, the container end (`CNI_IFNAME`) inside the netns at `CNI_NETNS`
 * with the allocated addresses and routes, the host end up in the plugin's netns. Uses iproute2
 * (`ip`) and util-linux (`nsenter`), as the reference plugins' netlink calls would do.
 */
import { existsSync } from "node:fs";
import type * as ChildProcess from "node:child_process";
import { PluginError, CniErrorCode } from "./errors.js";

/** 32-bit FNV-1a of a string: names and MACs derived from the attachment key, stable across calls. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Host-side veth name for an attachment: `fc` + 8 hex digits (<= 15 chars, IFNAMSIZ). */
export function hostVethName(network: string, containerId: string, ifname: string): string {
  return `fc${fnv1a(`${network}\0${containerId}\0${ifname}`).toString(16).padStart(8, "0")}`;
}

/** A locally administered unicast MAC derived from `seed`. */
export function macFor(seed: string, prefix = 0x0a): string {
  const h1 = fnv1a(seed);
  const h2 = fnv1a(`${seed}#`);
  const bytes = [prefix & 0xfe, 0x58, (h1 >>> 24) & 255, (h1 >>> 16) & 255, (h1 >>> 8) & 255, h2 & 255];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** node:child_process, loaded only when a link is touched (noop mode never pays for it: ~3 ms of start-up). */
let cp: typeof ChildProcess | undefined;

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string } {
  // process.getBuiltinModule exists from Node 20.16; the CommonJS bundle falls back to require.
  cp ??= (process.getBuiltinModule?.("node:child_process") as typeof ChildProcess | undefined) ?? (require("node:child_process") as typeof ChildProcess);
  const r = cp.spawnSync(cmd, args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], timeout: 10_000 });
  if (r.error) return { ok: false, out: String((r.error as NodeJS.ErrnoException).message) };
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

/** What a veth setup needs. */
export interface VethSpec {
  netns: string;
  ifname: string;
  hostIf: string;
  mtu: number;
  containerMac: string;
  hostMac: string;
  /** `addr/prefix` of each address for the container interface. */
  addresses: string[];
  routes: { dst: string; gw?: string }[];
}

/**
 * Creates the pair and configures the container end.
 * @returns `unsupported: true` when the kernel/sandbox cannot make veth pairs (gVisor answers
 *   `Command "add" is unknown`/EOPNOTSUPP), so auto mode can fall back to noop.
 * @throws PluginError 102 on other failures (the pair is removed again).
 */
export function setupVeth(spec: VethSpec): { ok: true } | { ok: false; unsupported: boolean; msg: string } {
  const add = run("ip", [
    "link", "add", spec.hostIf, "up", "mtu", String(spec.mtu), "address", spec.hostMac,
    "type", "veth", "peer", "name", spec.ifname, "mtu", String(spec.mtu), "address", spec.containerMac, "netns", spec.netns,
  ]);
  if (!add.ok) {
    const unsupported = /unknown|not supported|Operation not permitted|ENOENT|spawnSync ip/i.test(add.out);
    return { ok: false, unsupported, msg: `ip link add ${spec.hostIf}: ${add.out}` };
  }
  const batch = [
    ...spec.addresses.map((a) => `addr add ${a} dev ${spec.ifname}${a.includes(":") ? " nodad" : ""}`),
    `link set ${spec.ifname} up`,
    ...spec.routes.map((r) => `route add ${r.dst}${r.gw ? ` via ${r.gw}` : ""} dev ${spec.ifname}`),
  ].join("\n");
  const conf = run("nsenter", [`--net=${spec.netns}`, "ip", "-batch", "-"], `${batch}\n`);
  if (!conf.ok) {
    run("ip", ["link", "del", spec.hostIf]);
    return { ok: false, unsupported: false, msg: `configuring ${spec.ifname} in ${spec.netns}: ${conf.out}` };
  }
  return { ok: true };
}

/** True when the host end of an attachment exists in the plugin's netns. */
export function hostVethExists(hostIf: string): boolean {
  return existsSync(`/sys/class/net/${hostIf}`);
}

/** Deletes the pair through its host end (which removes the container end too). Missing is fine. */
export function teardownVeth(hostIf: string): void {
  let last = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    if (!hostVethExists(hostIf)) return;
    const r = run("ip", ["link", "del", hostIf]);
    if (r.ok || !hostVethExists(hostIf)) return;
    last = r.out; // e.g. the peer's netns is being torn down right now: try again shortly
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50 * (attempt + 1));
  }
  throw new PluginError(CniErrorCode.LinkSetupFailed, `cannot delete ${hostIf}: ${last}`);
}

/**
 * Reads the container interface's addresses (CHECK).
 * @returns the `addr/prefix` list, or undefined when the interface or netns is missing.
 */
export function containerAddresses(netns: string, ifname: string): string[] | undefined {
  const r = run("nsenter", [`--net=${netns}`, "ip", "-j", "addr", "show", "dev", ifname]);
  if (!r.ok) return undefined;
  try {
    const parsed = JSON.parse(r.out) as { addr_info?: { local: string; prefixlen: number }[] }[];
    return (parsed[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
  } catch {
    return undefined;
  }
}
