/**
 * A small libcni-like invoker: runs a network configuration list through its plugins as the
 * runtime would (libcni `AddNetworkList`/`DelNetworkList`/`CheckNetworkList`/`GCNetworkList`/
 * `GetStatusNetworkList`, CNI spec 1.1.0 section 4 "Plugin delegation" and section 3 "Execution
 * protocol"): ADD and CHECK in order passing `prevResult`, DEL in reverse, STATUS and GC to every
 * plugin, `runtimeConfig` injected from `capabilityArgs` for plugins that declare the capability.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

/** The spec's error object (`{cniVersion, code, msg, details}`). */
export interface CniErrorObject {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

/** A CNI result (spec section 5, "Result Types") or a VERSION answer; fields present as the command gives them. */
export interface CniResult {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; mtu?: number; sandbox?: string; [k: string]: unknown }[];
  ips?: { address: string; gateway?: string; interface?: number; version?: string }[];
  routes?: { dst: string; gw?: string; [k: string]: unknown }[];
  dns?: Record<string, unknown>;
  supportedVersions?: string[];
  [k: string]: unknown;
}

/** Thrown when a plugin fails: carries the plugin's error object, or a synthetic one (code 999 style) when it printed none. */
export class CniInvokeError extends Error {
  constructor(
    /** The error object the plugin printed (or one made up from its exit when it printed garbage). */
    readonly cniError: CniErrorObject,
    /** The plugin `type` that failed. */
    readonly plugin: string,
    readonly command: CniCommand,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`CNI ${command} failed in plugin ${plugin}: [${cniError.code}] ${cniError.msg}${cniError.details ? ` (${cniError.details})` : ""}`);
    this.name = "CniInvokeError";
  }
}

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC";

/** A network configuration list (`.conflist`, spec section 1). */
export interface CniConfList {
  cniVersion: string;
  /** CNI 1.1: versions the list can be run as; the highest one the caller supports is used. */
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: Record<string, unknown>[];
  [k: string]: unknown;
}

/** Options of {@link invokeCni}. */
export interface InvokeCniOptions {
  command: CniCommand;
  /** The list to run; or give `config` (a single-plugin `.conf`). */
  conflist?: CniConfList;
  config?: Record<string, unknown>;
  /** `CNI_CONTAINERID` (ADD/DEL/CHECK). */
  containerId?: string;
  /** `CNI_NETNS` path (ADD/CHECK; optional for DEL). */
  netns?: string;
  /** `CNI_IFNAME`, default `eth0`. */
  ifname?: string;
  /** Dirs searched for plugin executables (also `CNI_PATH`). */
  binDirs: string[];
  /** `CNI_ARGS` pairs. */
  args?: Record<string, string> | [string, string][];
  /** The ADD result, for CHECK and DEL (libcni passes its cached result). */
  prevResult?: CniResult;
  /** Values for declared capabilities (`portMappings`, `bandwidth`, `ips`, ...), put in `runtimeConfig`. */
  capabilityArgs?: Record<string, unknown>;
  /** GC: the attachments still in use (`cni.dev/valid-attachments`). */
  validAttachments?: { containerID: string; ifname: string }[];
  /** Kill a plugin after this many milliseconds (default 60 000). */
  timeoutMs?: number;
}

/** Versions the invoker itself can run a list as (the highest in `cniVersions` wins). */
const INVOKER_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

function cmpVersion(a: string, b: string): number {
  const x = a.split(".").map(Number);
  const y = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** The version a list runs as: the highest of `cniVersions` known to the invoker, else `cniVersion` (CNI 1.1 section 1). */
export function effectiveVersion(list: CniConfList): string {
  const known = (list.cniVersions ?? []).filter((v) => INVOKER_VERSIONS.includes(v)).sort(cmpVersion);
  return known[known.length - 1] ?? list.cniVersion;
}

/** Finds plugin `type` in `binDirs`. @throws Error `failed to find plugin "X" in path [...]` (libcni's wording). */
export function findPlugin(type: string, binDirs: string[]): string {
  for (const d of binDirs) {
    const p = join(d, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new Error(`failed to find plugin "${type}" in path [${binDirs.join(" ")}]`);
}

/**
 * The environment a plugin runs with: the caller's (as libcni passes `os.Environ()`) plus the CNI
 * variables, minus `NODE_OPTIONS` and `NODE_EXTRA_CA_CERTS`, which would make every Node-based
 * plugin (fake-cni) load the caller's preloads (e.g. tsx) or a CA bundle on each call.
 */
function pluginEnv(cni: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...cni };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

async function execPlugin(
  file: string,
  type: string,
  command: CniCommand,
  env: Record<string, string>,
  stdin: string,
  timeoutMs: number,
): Promise<CniResult | undefined> {
  return await new Promise((resolve, reject) => {
    const child = spawn(file, [], { env: pluginEnv(env), stdio: ["pipe", "pipe", "pipe"], timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => undefined);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      let parsed: unknown;
      try {
        parsed = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        parsed = undefined;
      }
      if (code === 0) {
        if (stdout.trim() && parsed === undefined) {
          reject(new CniInvokeError({ code: 999, msg: `plugin printed non-JSON output: ${stdout.slice(0, 200)}` }, type, command, code, stderr));
          return;
        }
        resolve(parsed as CniResult | undefined);
        return;
      }
      const obj = parsed as Partial<CniErrorObject> | undefined;
      const cniError: CniErrorObject =
        obj && typeof obj.code === "number"
          ? { ...(obj as CniErrorObject) }
          : { code: 999, msg: `plugin exited ${code ?? signal} without an error object`, details: (stderr || stdout).slice(0, 500) };
      reject(new CniInvokeError(cniError, type, command, code, stderr));
    });
    child.stdin.end(stdin);
  });
}

function argsString(args: InvokeCniOptions["args"]): string {
  if (!args) return "";
  const pairs = Array.isArray(args) ? args : Object.entries(args);
  return pairs.map(([k, v]) => `${k}=${v}`).join(";");
}

/** Builds the stdin config of one plugin of the list (libcni `buildOneConfig` + `injectRuntimeConfig`). */
export function pluginConfig(
  list: CniConfList,
  plugin: Record<string, unknown>,
  version: string,
  extra: { prevResult?: CniResult; capabilityArgs?: Record<string, unknown>; validAttachments?: InvokeCniOptions["validAttachments"] },
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, cniVersion: version, name: list.name };
  if (extra.prevResult) conf.prevResult = extra.prevResult;
  const caps = plugin.capabilities as Record<string, boolean> | undefined;
  if (caps && extra.capabilityArgs) {
    const rc: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(extra.capabilityArgs)) if (caps[k]) rc[k] = v;
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
  }
  delete conf.capabilities;
  if (extra.validAttachments) conf["cni.dev/valid-attachments"] = extra.validAttachments;
  return conf;
}

/**
 * Runs `command` over the list like libcni.
 * @returns ADD: the last plugin's result; VERSION: the first plugin's version info (`supportedVersions`);
 *   DEL, CHECK, STATUS, GC: `{}`.
 * @throws CniInvokeError carrying the failing plugin's CNI error object; Error when a plugin
 *   executable is not found in `binDirs` or the options are incomplete. On an ADD failure the
 *   plugins already run are NOT rolled back (the caller DELs, as the runtime would).
 */
export async function invokeCni(opts: InvokeCniOptions): Promise<CniResult> {
  const list: CniConfList | undefined =
    opts.conflist ??
    (opts.config
      ? { cniVersion: String(opts.config.cniVersion ?? ""), name: String(opts.config.name ?? ""), plugins: [opts.config] }
      : undefined);
  if (!list || !Array.isArray(list.plugins) || list.plugins.length === 0) throw new Error("invokeCni: give a conflist with plugins, or a config");
  const version = effectiveVersion(list);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const ifname = opts.ifname ?? "eth0";
  const base: Record<string, string> = { CNI_COMMAND: opts.command, CNI_PATH: opts.binDirs.join(":") };
  const cmd = opts.command;
  if (cmd === "ADD" || cmd === "DEL" || cmd === "CHECK") {
    if (!opts.containerId) throw new Error(`invokeCni ${cmd}: containerId is required`);
    Object.assign(base, { CNI_CONTAINERID: opts.containerId, CNI_IFNAME: ifname, CNI_NETNS: opts.netns ?? "", CNI_ARGS: argsString(opts.args) });
  }
  const one = async (plugin: Record<string, unknown>, extra: Parameters<typeof pluginConfig>[3]): Promise<CniResult | undefined> => {
    const type = String(plugin.type ?? "");
    if (!type) throw new Error(`invokeCni: a plugin of list "${list.name}" has no type`);
    const file = findPlugin(type, opts.binDirs);
    const stdin = cmd === "VERSION" ? JSON.stringify({ cniVersion: version }) : JSON.stringify(pluginConfig(list, plugin, version, extra));
    return await execPlugin(file, type, cmd, base, stdin, timeoutMs);
  };
  switch (cmd) {
    case "ADD": {
      let prev: CniResult | undefined;
      for (const p of list.plugins) prev = (await one(p, { prevResult: prev, capabilityArgs: opts.capabilityArgs })) ?? prev;
      return prev ?? {};
    }
    case "CHECK": {
      if (list.disableCheck) return {};
      if (!opts.prevResult) throw new Error("invokeCni CHECK: prevResult (the ADD result) is required");
      for (const p of list.plugins) await one(p, { prevResult: opts.prevResult, capabilityArgs: opts.capabilityArgs });
      return {};
    }
    case "DEL": {
      for (const p of [...list.plugins].reverse())
        await one(p, { ...(opts.prevResult ? { prevResult: opts.prevResult } : {}), capabilityArgs: opts.capabilityArgs });
      return {};
    }
    case "STATUS": {
      if (cmpVersion(version, "1.1.0") < 0) return {}; // libcni: STATUS is a no-op before 1.1.0
      for (const p of list.plugins) await one(p, {});
      return {};
    }
    case "GC": {
      if (list.disableGC || cmpVersion(version, "1.1.0") < 0) return {}; // libcni: GC needs 1.1.0
      for (const p of list.plugins) await one(p, { validAttachments: opts.validAttachments ?? [] });
      return {};
    }
    case "VERSION":
      return (await one(list.plugins[0]!, {})) ?? {};
    default:
      throw new Error(`invokeCni: unknown command ${String(cmd)}`);
  }
}
