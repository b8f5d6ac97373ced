/** Starting, probing and stopping the runtime: the OS's containerd or k3s (natively). */
import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { generateContainerdConfig, readContainerdConfigDirs } from "./containerd-config.js";
import { spawnDaemon, startThenWait, stopPid, waitUntilReady, type Daemon, type ProbeResult } from "./process.js";

/** A started runtime. `stop()` is idempotent and waits until the process (or container) is gone. */
export interface RuntimeHandle {
  kind: "containerd" | "k3s" | "k3s-docker";
  /** Leader of the runtime's process group (the wrapper's pid when `wrap` was given). */
  pid?: number;
  /** Docker container id (kind `k3s-docker`). */
  containerId?: string;
  /** containerd's gRPC socket (kind `containerd`). */
  socket?: string;
  /** Admin kubeconfig (kinds `k3s`, `k3s-docker`). */
  kubeconfig?: string;
  /** Log file, when one was given. */
  logFile?: string;
  /** Native kinds: resolves when the process exits by itself or is stopped (for supervision). */
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/**
 * Probes containerd: `ctr --address SOCK version` must answer with the server version.
 * @returns `{ ok, version (server), detail }`; never throws.
 */
export async function probeContainerd(socket: string, opts: { ctr?: string; timeoutMs?: number } = {}): Promise<ProbeResult & { version?: string }> {
  if (!existsSync(socket)) return { ok: false, detail: `socket ${socket} does not exist` };
  const r = await execa(opts.ctr ?? "ctr", ["--address", socket, "--timeout", "2s", "version"], {
    reject: false,
    timeout: opts.timeoutMs ?? 5000,
    stdin: "ignore",
  });
  if (r.exitCode !== 0) return { ok: false, detail: `ctr version: ${String(r.stderr || r.stdout).trim() || `exit ${r.exitCode}`}` };
  const m = /Server:\s*\n\s*Version:\s*(\S+)/.exec(String(r.stdout));
  if (!m) return { ok: false, detail: `ctr version printed no server version: ${String(r.stdout).trim()}` };
  return { ok: true, version: m[1], detail: `containerd ${m[1]} answers on ${socket}` };
}

/** Options of {@link startContainerd}. */
export interface StartContainerdOptions {
  /** Owns `root/`, `state/`, `containerd.sock` and (when generated) `config.toml`. Absolute. */
  stateDir: string;
  /** Use this config instead of generating `<stateDir>/config.toml`; root/state/socket are still pinned by flags. */
  configPath?: string;
  /** CNI dirs for the generated config (e.g. fake-cni's `cni/bin`, `cni/net.d`). */
  cniBinDir: string;
  cniConfDir: string;
  /** Snapshotter for the generated config; default `native` (works on 9p/FUSE roots). */
  snapshotter?: "native" | "overlayfs";
  /** Generated config: CRI `disable_cgroup`. */
  disableCgroup?: boolean;
  /** argv prefix, e.g. `[tracer, "--rules", f, "--"]`. */
  wrap?: readonly string[];
  /** Survive the caller (setsid, unref, output to `logFile`). */
  detached?: boolean;
  logFile?: string;
  /** Default 30 000. */
  readyTimeoutMs?: number;
  /** containerd executable; default `containerd` on PATH. */
  containerd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts the OS's containerd (the runtime k3s embeds) with a config in k3s's shape, its own
 * root, state and socket under `stateDir`, and waits until `ctr version` answers on the socket.
 * On a readiness failure it stops containerd and rethrows the readiness error.
 * @returns a handle `{ kind: "containerd", pid, socket, stop }`.
 * @throws TypeError on a relative stateDir or a socket path ≥ 108 bytes; Error when containerd
 *   cannot be spawned, exits early, or is not ready in time (with its log tail).
 */
export async function startContainerd(opts: StartContainerdOptions): Promise<RuntimeHandle> {
  if (!opts.stateDir?.startsWith("/")) throw new TypeError(`startContainerd: stateDir must be absolute, got ${JSON.stringify(opts.stateDir)}`);
  const root = join(opts.stateDir, "root");
  const state = join(opts.stateDir, "state");
  const socket = join(opts.stateDir, "containerd.sock");
  let configPath = opts.configPath;
  await mkdir(opts.stateDir, { recursive: true });
  if (!configPath) {
    configPath = join(opts.stateDir, "config.toml");
    await writeFile(
      configPath,
      generateContainerdConfig({
        root,
        state,
        address: socket,
        cniBinDir: opts.cniBinDir,
        cniConfDir: opts.cniConfDir,
        snapshotter: opts.snapshotter ?? "native",
        disableCgroup: opts.disableCgroup,
      }),
    );
  } else if (!existsSync(configPath)) {
    throw new Error(`startContainerd: configPath ${configPath} does not exist`);
  }
  const handle = await startThenWait(
    async () => {
      const d = await spawnDaemon({
        file: opts.containerd ?? "containerd",
        args: ["--config", configPath!, "--address", socket, "--root", root, "--state", state],
        wrap: opts.wrap,
        detached: opts.detached,
        logFile: opts.logFile,
        env: opts.env,
      });
      return makeHandle("containerd", d, { socket, logFile: opts.logFile }, async () => {
        await rm(socket, { force: true });
        await rm(`${socket}.ttrpc`, { force: true });
      });
    },
    async (h) => waitUntilReady("containerd", h.daemon, () => probeContainerd(socket), opts.readyTimeoutMs ?? 30_000),
    (h) => h.stop(),
  );
  return strip(handle);
}

type InternalHandle = RuntimeHandle & { daemon: Daemon };

function strip(h: InternalHandle): RuntimeHandle {
  const { daemon: _d, ...rest } = h;
  return rest;
}

function makeHandle(kind: RuntimeHandle["kind"], d: Daemon, extra: Partial<RuntimeHandle>, after?: () => Promise<void>): InternalHandle {
  let stopping: Promise<void> | undefined;
  return {
    kind,
    pid: d.pid,
    ...extra,
    exited: d.exited,
    daemon: d,
    stop: () =>
      (stopping ??= (async () => {
        await stopPid(d.pid, { group: true, graceMs: 15_000 });
        if (!d.hasExited() && d.child.exitCode === null && d.child.pid) {
          // our own child: let Node reap it so no zombie is left
          await Promise.race([d.exited, new Promise((r) => setTimeout(r, 2000))]);
        }
        await after?.();
      })()),
  };
}

/** The TLS material and URL a kubeconfig's current context names. */
export interface KubeconfigCredentials {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecureSkipTlsVerify?: boolean;
}

interface KubeconfigDoc {
  "current-context"?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  users?: { name: string; user: Record<string, unknown> }[];
}

/**
 * Reads the current context's server URL and credentials from a kubeconfig (inline `*-data`
 * base64 fields or file paths, as kubectl does).
 * @throws Error naming the missing context/cluster/user or an unreadable file.
 */
export async function readKubeconfig(path: string): Promise<KubeconfigCredentials> {
  const doc = parseYaml(await readFile(path, "utf8")) as KubeconfigDoc;
  const ctxName = doc?.["current-context"] ?? doc?.contexts?.[0]?.name;
  const ctx = doc?.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`kubeconfig ${path}: no context ${JSON.stringify(ctxName)}`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (!cluster || typeof cluster.server !== "string") throw new Error(`kubeconfig ${path}: cluster ${JSON.stringify(ctx.cluster)} has no server`);
  const material = async (data: unknown, file: unknown): Promise<Buffer | undefined> => {
    if (typeof data === "string") return Buffer.from(data, "base64");
    if (typeof file === "string") return readFile(file);
    return undefined;
  };
  return {
    server: cluster.server,
    ca: await material(cluster["certificate-authority-data"], cluster["certificate-authority"]),
    cert: await material(user["client-certificate-data"], user["client-certificate"]),
    key: await material(user["client-key-data"], user["client-key"]),
    token: typeof user.token === "string" ? user.token : undefined,
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
  };
}

/**
 * GETs `path` on the API server of a kubeconfig with its CA and client certificate (or token).
 * @returns status code and body; rejects on connection/TLS errors.
 */
export async function kubeGet(kubeconfig: string, path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  const c = await readKubeconfig(kubeconfig);
  const url = new URL(path, c.server);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "GET",
        ca: c.ca,
        cert: c.cert,
        key: c.key,
        rejectUnauthorized: !c.insecureSkipTlsVerify,
        headers: c.token ? { authorization: `Bearer ${c.token}` } : {},
        timeout: timeoutMs,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`GET ${url.href} timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Probes the k3s API server: `GET /readyz` with the kubeconfig's CA and client certificate must
 * answer 200 `ok` (kube-apiserver health endpoint). Never throws.
 */
export async function probeK3s(kubeconfig: string): Promise<ProbeResult> {
  if (!existsSync(kubeconfig)) return { ok: false, detail: `kubeconfig ${kubeconfig} not written yet` };
  try {
    const r = await kubeGet(kubeconfig, "/readyz");
    if (r.status === 200 && r.body.trim() === "ok") return { ok: true, detail: "GET /readyz: 200 ok" };
    return { ok: false, detail: `GET /readyz: ${r.status} ${r.body.trim().slice(0, 200)}` };
  } catch (e) {
    return { ok: false, detail: `GET /readyz: ${(e as Error).message}` };
  }
}

/** Options of {@link startK3s}. */
export interface StartK3sOptions {
  /** The k3s binary ({@link findK3sBinary}, {@link downloadK3s}) or the stand-in. */
  binary: string;
  /** Full argv after the binary, starting with `server` ({@link buildK3sServerArgs}). */
  args: readonly string[];
  wrap?: readonly string[];
  env?: NodeJS.ProcessEnv;
  detached?: boolean;
  logFile?: string;
  /** The `--write-kubeconfig` path; readiness is `GET /readyz` with its credentials. */
  kubeconfig: string;
  /** Default 120 000 (k3s took 15–20 s in gVisor, much more under a full ptrace). */
  readyTimeoutMs?: number;
}

/**
 * Starts k3s (natively, optionally under a wrapper such as the ptrace shim) and waits until its
 * API server answers `/readyz` with the kubeconfig's client certificate. On a readiness failure
 * it stops k3s and rethrows the readiness error.
 * @throws Error when the binary cannot be spawned, exits early, or is not ready in time (log tail included).
 */
export async function startK3s(opts: StartK3sOptions): Promise<RuntimeHandle> {
  if (!opts.kubeconfig?.startsWith("/")) throw new TypeError(`startK3s: kubeconfig must be an absolute path, got ${JSON.stringify(opts.kubeconfig)}`);
  if (opts.args[0] !== "server" && opts.args[0] !== "agent") throw new TypeError(`startK3s: args must start with "server" or "agent", got ${JSON.stringify(opts.args[0])}`);
  const handle = await startThenWait(
    async () => {
      const d = await spawnDaemon({ file: opts.binary, args: opts.args, wrap: opts.wrap, env: opts.env, detached: opts.detached, logFile: opts.logFile });
      return makeHandle("k3s", d, { kubeconfig: opts.kubeconfig, logFile: opts.logFile });
    },
    async (h) => waitUntilReady("k3s", h.daemon, () => probeK3s(opts.kubeconfig), opts.readyTimeoutMs ?? 120_000, 500),
    (h) => h.stop(),
  );
  return strip(handle);
}

/**
 * Reads the containerd config k3s generated under its data dir
 * (`<dataDir>/agent/etc/containerd/config.toml`) and returns the CNI dirs, snapshotter and
 * socket it names, so the CNI layer installs where this k3s release really looks.
 * @throws Error when the file does not exist yet (k3s writes it when the agent starts).
 */
export async function readK3sContainerdConfig(dataDir: string): Promise<ReturnType<typeof readContainerdConfigDirs> & { path: string }> {
  const path = join(dataDir, "agent", "etc", "containerd", "config.toml");
  const toml = await readFile(path, "utf8").catch((e: Error) => {
    throw new Error(`k3s has not written ${path} yet: ${e.message}`);
  });
  return { path, ...readContainerdConfigDirs(toml) };
}
