import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CniServerHandle,
  clientPath,
  DEFAULT_DATA_DIR,
  linkHelperPath,
  nodeBundlePath,
  pingCniServer,
  pluginPath,
  socketPathFor,
  startCniServer,
} from "../src/index.js";

export const PLUGIN = pluginPath();
export const REF_DIR = "/usr/lib/cni";

export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

/** Runs an executable with exactly `env` (plus PATH) and `stdin`. */
export function runPlugin(env: Record<string, string | undefined>, stdin: string | Buffer, file = PLUGIN): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const clean: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
    const child = spawn(file, [], { env: clean, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => undefined);
    child.on("error", reject);
    child.on("close", (code) => {
      const stdout = Buffer.concat(out).toString();
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr: Buffer.concat(err).toString(), json });
    });
    child.stdin.end(stdin);
  });
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `fake-cni-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A single-plugin config for fake-cni. */
export function netConf(
  dataDir: string,
  over: Record<string, unknown> = {},
  ipam: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    cniVersion: "1.1.0",
    name: "testnet",
    type: "fake-cni",
    mode: "noop",
    ipam: { type: "fake-cni", ranges: [[{ subnet: "10.123.0.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir, ...ipam },
    ...over,
  };
}

/** Limits concurrency of async jobs. */
export async function pool<T, R>(items: T[], n: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= items.length) return;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/**
 * How a test reaches the plugin: `node` runs the bundle (dist/bin/fake-cni) directly; `client`
 * runs the native client with no server, so every call takes the Node fallback; `client+server`
 * runs the native client with a server started (lazily, one per IPAM dataDir under a root given to
 * {@link serveUnder}) for the config's dataDir, so calls go through the server. Every client run is checked to have
 * taken the expected way (FAKE_CNI_DEBUG trace on stderr, removed from `stderr`).
 */
export type Via = "node" | "client" | "client+server";
export const VIAS: Via[] = ["node", "client", "client+server"];
export const CLIENT = clientPath();

export interface ViaRun extends PluginRun {
  /** The way the client said it took; undefined for `node`. */
  route: "server" | "fallback" | undefined;
}

const roots: string[] = [];

/** Lets {@link runVia} start servers for dataDirs under `root` (a test's temp dir), and only there. */
export function serveUnder(root: string): void {
  roots.push(root.replace(/\/+$/, ""));
}

/** socket → the server this helper started, "external" (a test's own), undefined (cannot start there). */
const servers = new Map<string, Promise<CniServerHandle | "external" | undefined>>();

/** The executable a via runs. */
export function executableFor(via: Via): string {
  return via === "node" ? PLUGIN : CLIENT;
}

/** Copies the via's executable to `<dir>/<name>` (with fake-cni.cjs beside it for the client, and the veth helper), as installFakeCni does. */
export function installExecutable(via: Via, dir: string, name: string): string {
  const target = join(dir, name);
  copyFileSync(executableFor(via), target);
  chmodSync(target, 0o755);
  if (via !== "node") copyFileSync(nodeBundlePath(), join(dir, "fake-cni.cjs"));
  copyFileSync(linkHelperPath(), join(dir, "fake-cni-link"));
  return target;
}

/** The IPAM dataDir the client derives from a config (JSON.parse view), or undefined when not parseable. */
export function dataDirOf(stdin: string | Buffer): string | undefined {
  try {
    const o = JSON.parse(stdin.toString()) as { ipam?: { dataDir?: unknown } };
    if (!o || typeof o !== "object" || Array.isArray(o)) return undefined;
    const d = o.ipam && typeof o.ipam === "object" ? o.ipam.dataDir : undefined;
    return typeof d === "string" && d.startsWith("/") ? d : DEFAULT_DATA_DIR;
  } catch {
    return undefined;
  }
}

/**
 * True when a server answers for `dataDir`: one started elsewhere (the test's own), or one started
 * here (once per socket) for a dataDir under the temp dir; false when none can start there.
 */
export async function ensureServer(dataDir: string): Promise<boolean> {
  const socketPath = socketPathFor(dataDir);
  let s = servers.get(socketPath);
  if (!s) {
    // set synchronously, so concurrent first calls share one start
    s = (async () =>
      (await pingCniServer({ socketPath, timeoutMs: 10_000 })) ? ("external" as const) : startCniServer({ socketPath, workers: 2 }).catch(() => undefined))();
    servers.set(socketPath, s);
  }
  return (await s) !== undefined;
}

/** Stops every server {@link ensureServer} started. */
export async function stopServers(): Promise<void> {
  const all = [...servers.values()];
  servers.clear();
  for (const s of all) {
    const h = await s;
    if (h && h !== "external") await h.stop();
  }
}

/** Runs the plugin the way `via` says and checks the client took the expected way. */
export async function runVia(via: Via, env: Record<string, string | undefined>, stdin: string | Buffer, file?: string): Promise<ViaRun> {
  if (via === "node") return { ...(await runPlugin(env, stdin, file ?? PLUGIN)), route: undefined };
  const dd = dataDirOf(stdin);
  let expected: "server" | "fallback" | undefined;
  const ours = dd !== undefined && roots.some((r) => dd === r || dd.startsWith(`${r}/`));
  if (via === "client+server" && ours) expected = (await ensureServer(dd)) ? "server" : "fallback";
  else if (via === "client" && dd && dd.startsWith(tmpdir())) expected = "fallback";
  const r = await runPlugin({ ...env, FAKE_CNI_DEBUG: "1" }, stdin, file ?? CLIENT);
  const lines = r.stderr.split("\n");
  const trace = lines.filter((l) => l.startsWith("fake-cni-client: "));
  const route = trace.some((l) => l.includes(": server ")) ? "server" : trace.some((l) => l.includes(": fallback ")) ? "fallback" : undefined;
  if (expected && route !== expected) throw new Error(`${via}: expected the call to go to the ${expected}, it went: ${trace.join(" | ") || "(no trace)"}`);
  return { ...r, stderr: lines.filter((l) => !l.startsWith("fake-cni-client: ")).join("\n"), route };
}
