/**
 * Installs the plugin executable and its conflist where a runtime reads them, and removes exactly
 * what it created.
 */
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, readdir, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { CniConfList } from "./invoke.js";
import { parseNetConf } from "./plugin/config.js";

/**
 * Absolute path of the bundled plugin executable (`dist/bin/fake-cni`: one CommonJS file, node
 * shebang, mode 0755). Built by `pnpm build`; the path is returned whether or not it exists.
 */
export function pluginPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(here) === "src" ? resolve(here, "../dist/bin/fake-cni") : resolve(here, "bin/fake-cni");
}

/**
 * Absolute path of the native client (`dist/bin/fake-cni-client`, built from
 * native/fake-cni-client.c by `pnpm build` when a C compiler is there). Returned whether or not it exists.
 */
export function clientPath(): string {
  return join(dirname(pluginPath()), "fake-cni-client");
}

/**
 * Absolute path of veth mode's rtnetlink helper (`dist/bin/fake-cni-link`, built from
 * native/fake-cni-link.c by `pnpm build`; needs libmnl). The plugin runs it from its own
 * directory, so {@link installFakeCni} copies it beside the plugin. Returned whether or not it exists.
 */
export function linkHelperPath(): string {
  return join(dirname(pluginPath()), "fake-cni-link");
}

/** A network served by fake-cni. Field names follow host-local's range fields and the CNI spec. */
export interface FakeCniNetwork {
  /** Network name (CNI `name`; `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`). Keys the IPAM records. */
  name: string;
  /** The IPv4 or IPv6 subnet in CIDR form, e.g. `10.42.0.0/24`. */
  subnet: string;
  /** Gateway address (default: the subnet's first address). Never handed out. */
  gateway?: string;
  /** First address handed out (default: subnet + 1). */
  rangeStart?: string;
  /** Last address handed out (default: the last address, broadcast excluded for IPv4). */
  rangeEnd?: string;
  /** More range sets (host-local `ranges`), e.g. an IPv6 one for dual stack: one address from each. */
  extraRanges?: { subnet: string; gateway?: string; rangeStart?: string; rangeEnd?: string }[][];
  /** `veth` (real interface in the container netns), `noop` (result only), `auto` (veth, else noop). Default `auto`. */
  mode?: "veth" | "noop" | "auto";
  /** IPAM state dir (host-local `dataDir`): records go to `<dataDir>/<name>/`. */
  dataDir: string;
  /** Interface MTU (default 1500). */
  mtu?: number;
  /** Routes put in the result and, in veth mode, in the container (gw defaults to the range gateway). */
  routes?: { dst: string; gw?: string }[];
  /** DNS settings returned in the result (`nameservers`, `domain`, `search`, `options`). */
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
  /** Conflist `cniVersion` (default `1.0.0`, understood by libcni 1.0+ as in containerd 1.6). */
  cniVersion?: string;
  /**
   * Conflist `cniVersions` (CNI 1.1: a newer libcni runs the list as the highest it knows, which
   * enables STATUS and GC). Default `[cniVersion, "1.1.0"]` when nothing is chained; omitted when
   * plugins are chained, since Debian 12's reference plugins stop at 1.0.0 and would refuse 1.1.0.
   */
  cniVersions?: string[];
}

/** What {@link installFakeCni} created. */
export interface CniInstallation {
  /** Every path it created, in creation order; directories end with `/`. Pass to {@link uninstallFakeCni}. */
  files: string[];
  /** The conflist written. */
  confFile: string;
  /**
   * The executables written: `fake-cni`, and `host-local` where aliased; with the native client
   * also `fake-cni.cjs`; when built, veth mode's helper `fake-cni-link`.
   */
  binFiles: string[];
  /** Which executable is installed as `fake-cni`: the native client (+ `fake-cni.cjs`) or the Node bundle. */
  executable: "native" | "node";
  /** The conflist content. */
  conflist: CniConfList;
  /** Removes exactly what was created (idempotent). */
  uninstall(): Promise<void>;
}

/** Options of {@link installFakeCni}. */
export interface InstallFakeCniOptions {
  /** Plugin dir(s) the runtime searches (containerd `bin_dir`/`bin_dirs`); the executable goes in each. */
  binDir: string | string[];
  /** The runtime's CNI config dir (containerd `conf_dir`). */
  confDir: string;
  network: FakeCniNetwork;
  /**
   * Also install the executable as `host-local` (older k3s releases look it up on PATH and fail
   * with `failed to find host-local`). Skipped in a dir that already has a `host-local`.
   */
  hostLocalAlias?: boolean;
  /**
   * What to install as `fake-cni` (and `host-local`):
   * - `"native"`: the native client ({@link clientPath}) plus the Node bundle beside it as
   *   `fake-cni.cjs`, which the client execs when no server answers (see README "Fast path");
   * - `"node"`: the Node bundle alone ({@link pluginPath}), as before;
   * - `"auto"` (default): `"native"` when the client was built, else `"node"`.
   * @throws Error for `"native"` when the client was not built.
   */
  executable?: "auto" | "native" | "node";
  /** Conflist file name (default `10-fake-cni.conflist`; libcni/containerd take the first by name). */
  confFileName?: string;
  /** Reference plugins to chain: `before` run before fake-cni on ADD, `after` after it (e.g. `{type:"portmap", capabilities:{portMappings:true}}`). */
  chain?: { before?: Record<string, unknown>[]; after?: Record<string, unknown>[] };
}

/** Builds the conflist for `network` (and chained plugins). */
export function buildConflist(network: FakeCniNetwork, chain: InstallFakeCniOptions["chain"] = {}): CniConfList {
  const range = (r: { subnet: string; gateway?: string; rangeStart?: string; rangeEnd?: string }): Record<string, string> => ({
    subnet: r.subnet,
    ...(r.gateway ? { gateway: r.gateway } : {}),
    ...(r.rangeStart ? { rangeStart: r.rangeStart } : {}),
    ...(r.rangeEnd ? { rangeEnd: r.rangeEnd } : {}),
  });
  const cniVersion = network.cniVersion ?? "1.0.0";
  const plugin: Record<string, unknown> = {
    type: "fake-cni",
    mode: network.mode ?? "auto",
    mtu: network.mtu ?? 1500,
    ipam: {
      type: "fake-cni",
      ranges: [[range(network)], ...(network.extraRanges ?? []).map((s) => s.map(range))],
      ...(network.routes ? { routes: network.routes } : {}),
      dataDir: network.dataDir,
    },
    ...(network.dns ? { dns: network.dns } : {}),
  };
  return {
    cniVersion,
    ...versionsField(network, cniVersion, chain),
    name: network.name,
    plugins: [...(chain.before ?? []), plugin, ...(chain.after ?? [])],
  };
}

function versionsField(network: FakeCniNetwork, cniVersion: string, chain: InstallFakeCniOptions["chain"] = {}): { cniVersions?: string[] } {
  if (network.cniVersions) return { cniVersions: network.cniVersions };
  const chained = (chain.before?.length ?? 0) + (chain.after?.length ?? 0) > 0;
  return chained || cniVersion === "1.1.0" ? {} : { cniVersions: [cniVersion, "1.1.0"] };
}

async function sameContent(a: string, b: string): Promise<boolean> {
  try {
    const [x, y] = await Promise.all([readFile(a), readFile(b)]);
    return x.equals(y);
  } catch {
    return false;
  }
}

/** mkdir -p that records each directory it made (with a trailing `/`). */
async function mkdirs(dir: string, created: string[]): Promise<void> {
  const missing: string[] = [];
  let d = resolve(dir);
  while (!existsSync(d)) {
    missing.unshift(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing) {
    await mkdir(m, { mode: 0o755 });
    created.push(`${m}/`);
  }
}

/**
 * Installs the plugin and writes the conflist.
 * - Copies the executable (`executable`: the native client plus `fake-cni.cjs`, or the Node bundle
 *   {@link pluginPath}) to `<binDir>/fake-cni` (0755) in each bin dir, with veth mode's helper
 *   `fake-cni-link` ({@link linkHelperPath}) when it was built; with `hostLocalAlias` also to
 *   `<binDir>/host-local` unless a different `host-local` is already there.
 * - Writes `<confDir>/<confFileName>` from {@link buildConflist}.
 * - Creates missing dirs (and the IPAM `dataDir`), recording them for uninstall.
 * The network is validated up front with the plugin's own config parser (the same rules ADD applies).
 * @throws Error (before writing anything) when the plugin is not built (`pnpm build`), the network
 *   is invalid (`installFakeCni: invalid network: <the plugin's message>`), or a different `fake-cni` or a conflist of that name with
 *   other content already exists (never overwritten). On a failure half-way, what was created is
 *   removed again.
 */
export async function installFakeCni(opts: InstallFakeCniOptions): Promise<CniInstallation> {
  const bundle = pluginPath();
  if (!existsSync(bundle)) throw new Error(`fake-cni plugin not built: ${bundle} is missing (run pnpm build in packages/fake-cni)`);
  const want = opts.executable ?? "auto";
  if (!["auto", "native", "node"].includes(want)) throw new Error(`installFakeCni: executable must be auto, native or node, got ${JSON.stringify(want)}`);
  const native = want === "native" || (want === "auto" && existsSync(clientPath()));
  if (native && !existsSync(clientPath())) throw new Error(`installFakeCni: native client not built: ${clientPath()} is missing (pnpm build needs make and cc)`);
  const src = native ? clientPath() : bundle;
  // name in binDir -> source file
  const extra: [string, string][] = native ? [["fake-cni.cjs", bundle]] : [];
  if (existsSync(linkHelperPath())) extra.push(["fake-cni-link", linkHelperPath()]);
  const net = opts.network;
  if (!net || typeof net.name !== "string" || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(net.name)) throw new Error(`installFakeCni: invalid network name ${JSON.stringify(net?.name)}`);
  if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(net.subnet ?? "")) throw new Error(`installFakeCni: network.subnet must be a CIDR, got ${JSON.stringify(net.subnet)}`);
  if (typeof net.dataDir !== "string" || !net.dataDir.startsWith("/")) throw new Error("installFakeCni: network.dataDir must be an absolute path");
  const binDirs = (Array.isArray(opts.binDir) ? opts.binDir : [opts.binDir]).map((d) => resolve(d));
  if (binDirs.length === 0) throw new Error("installFakeCni: binDir is empty");
  const confFile = join(resolve(opts.confDir), opts.confFileName ?? "10-fake-cni.conflist");
  const conflist = buildConflist(net, opts.chain);
  const ours = conflist.plugins.find((p) => p.type === "fake-cni")!;
  try {
    parseNetConf({ ...ours, cniVersion: conflist.cniVersion, name: conflist.name });
  } catch (e) {
    const details = (e as { details?: string }).details;
    throw new Error(`installFakeCni: invalid network: ${(e as Error).message}${details ? ` (${details})` : ""}`);
  }
  const text = `${JSON.stringify(conflist, null, 2)}\n`;
  // Refuse to clobber foreign files before touching anything.
  for (const d of binDirs)
    for (const [name, from] of [["fake-cni", src], ...extra] as [string, string][]) {
      const target = join(d, name);
      if (existsSync(target) && !(await sameContent(from, target))) throw new Error(`installFakeCni: ${target} exists and is not this plugin; not overwriting`);
    }
  if (existsSync(confFile) && (await readFile(confFile, "utf8")) !== text) throw new Error(`installFakeCni: ${confFile} exists with other content; not overwriting`);

  const files: string[] = [];
  const binFiles: string[] = [];
  try {
    for (const d of binDirs) {
      await mkdirs(d, files);
      const names: [string, string][] = [["fake-cni", src], ...extra];
      if (opts.hostLocalAlias) {
        const hl = join(d, "host-local");
        if (!existsSync(hl) || (await sameContent(src, hl))) names.push(["host-local", src]);
      }
      for (const [n, from] of names) {
        const target = join(d, n);
        await copyFile(from, target);
        await chmod(target, 0o755);
        files.push(target);
        binFiles.push(target);
      }
    }
    await mkdirs(opts.confDir, files);
    await writeFile(confFile, text, { mode: 0o644 });
    files.push(confFile);
    await mkdirs(net.dataDir, files);
  } catch (e) {
    await uninstallFakeCni(files);
    throw e;
  }
  return { files, confFile, binFiles, conflist, executable: native ? "native" : "node", uninstall: () => uninstallFakeCni(files) };
}

const IPAM_FILE = /^([0-9a-fA-F:.]+|last_reserved_ip\.\d+|fake-cni\.lock(\.stale)?(\.\d+)?(\.t\d+)?)$/;

/**
 * Removes the paths an installation recorded, in reverse order; idempotent (missing paths are fine).
 * Files are unlinked. A directory entry (trailing `/`) is removed when, after deleting the IPAM
 * records fake-cni keeps in it and in its per-network subdirs (address files, `last_reserved_ip.N`,
 * `fake-cni.lock`) and a stale server socket (`fake-cni.sock` nobody answers on: stop the server
 * first with stopCniServer), it is empty; a directory holding anything else is left in place.
 */
export async function uninstallFakeCni(files: string[]): Promise<void> {
  for (const f of [...files].reverse()) {
    if (f.endsWith("/")) {
      const dir = f.slice(0, -1);
      await clearIpamDir(dir, 1);
      await rmdir(dir).catch(() => undefined);
    } else {
      await unlink(f).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
    }
  }
}

async function clearIpamDir(dir: string, depth: number): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = await stat(p).catch(() => undefined);
    if (!st) continue;
    if (depth > 0 && n === "fake-cni.sock" && st.isSocket()) {
      const { pingCniServer } = await import("./server-control.js");
      if ((await pingCniServer({ socketPath: p, timeoutMs: 1_000 })) === undefined) await unlink(p).catch(() => undefined);
      continue;
    }
    if (st.isDirectory() && depth > 0) {
      const inner = await readdir(p).catch(() => [] as string[]);
      if (inner.length > 0 && inner.every((x) => IPAM_FILE.test(x))) {
        await clearIpamDir(p, 0);
        await rmdir(p).catch(() => undefined);
      }
    } else if (st.isFile() && IPAM_FILE.test(n) && depth === 0) {
      await unlink(p).catch(() => undefined);
    }
  }
}
