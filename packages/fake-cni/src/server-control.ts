/**
 * Starting and stopping the resident fake-cni server (src/plugin/server.ts) that the native client
 * (native/fake-cni-client.c) talks to. The server is the Node bundle run as
 * `node fake-cni.cjs serve --socket <path>`, a process of its own.
 *
 * Socket rule (what the client derives from each network config): `<ipam.dataDir>/fake-cni.sock`,
 * host-local's default `/var/lib/cni/networks/fake-cni.sock` when the config has no absolute
 * `ipam.dataDir`. One server serves every network whose configs name that dataDir.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, lstatSync, openSync, readFileSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { pluginPath } from "./install.js";

/** host-local's default `dataDir` (also fake-cni's). */
export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";
/** File name of the server socket inside a dataDir. */
export const SOCKET_NAME = "fake-cni.sock";

/** The socket the native client uses for configs with this IPAM `dataDir` (trailing slashes ignored). */
export function socketPathFor(dataDir: string = DEFAULT_DATA_DIR): string {
  const d = dataDir.replace(/\/+$/, "");
  return `${d}/${SOCKET_NAME}`;
}

/** Absolute path of the Node bundle under the name the client and the server use (`dist/bin/fake-cni.cjs`). */
export function nodeBundlePath(): string {
  return join(dirname(pluginPath()), "fake-cni.cjs");
}

/** Options of {@link startCniServer}. Give `dataDir` or `socketPath`. */
export interface StartCniServerOptions {
  /** IPAM dataDir the server serves: the socket is {@link socketPathFor}(dataDir). */
  dataDir?: string;
  /** Explicit socket path (absolute, ≤ 107 bytes: sun_path). */
  socketPath?: string;
  /**
   * true: the server gets its own session (setsid) and outlives the caller (stop it with
   * {@link stopCniServer}, from any process). false (default): it also stops when the caller's
   * process ends (it watches a pipe from the caller).
   */
  detached?: boolean;
  /** File the server's log (stderr) is appended to; default: discarded. */
  logFile?: string;
  /** Worker threads running requests (default 4, 1..32). */
  workers?: number;
  /** How long to wait for the server to listen (default 15 000 ms). */
  timeoutMs?: number;
  /** Node executable (default: the caller's `process.execPath`). */
  nodePath?: string;
}

/** A running server. */
export interface CniServerHandle {
  /** Server process id. */
  pid: number;
  /** The socket it listens on. */
  socketPath: string;
  /** Stops it ({@link stopCniServer} with this socket and pid). */
  stop(): Promise<void>;
}

/**
 * Starts a fake-cni server and resolves once it listens (its socket mode 0600).
 * A stale socket file (nobody answering) is replaced.
 * @throws Error when the bundle is not built, the socket path is invalid or too long, a server
 *   already answers on it, a non-socket file is in the way, or it does not come up in `timeoutMs`.
 */
export async function startCniServer(opts: StartCniServerOptions): Promise<CniServerHandle> {
  const socketPath = resolve(opts.socketPath ?? socketPathFor(opts.dataDir));
  if (!opts.socketPath && !opts.dataDir) throw new Error("startCniServer: give dataDir or socketPath");
  if (Buffer.byteLength(socketPath) > 107) throw new Error(`startCniServer: socket path longer than 107 bytes: ${socketPath}`);
  const bundle = nodeBundlePath();
  if (!existsSync(bundle)) throw new Error(`startCniServer: ${bundle} is missing (run pnpm build in packages/fake-cni)`);
  const detached = opts.detached ?? false;
  const logFd = opts.logFile ? openSync(opts.logFile, "a", 0o644) : undefined;
  const args = [bundle, "serve", "--socket", socketPath, "--workers", String(opts.workers ?? 4)];
  if (!detached) args.push("--exit-with-stdin");
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(opts.nodePath ?? process.execPath, args, {
    detached,
    env,
    cwd: "/", // hold no directory of the caller busy (unmounts, rm -r)
    stdio: [detached ? "ignore" : "pipe", "pipe", logFd ?? "ignore"],
  });
  if (logFd !== undefined) closeSync(logFd);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  try {
    const line = await new Promise<string>((res, rej) => {
      let text = "";
      const timer = setTimeout(() => rej(new Error(`startCniServer: no answer from the server within ${timeoutMs} ms`)), timeoutMs);
      child.stdout!.on("data", (b: Buffer) => {
        text += b.toString();
        const nl = text.indexOf("\n");
        if (nl >= 0) {
          clearTimeout(timer);
          res(text.slice(0, nl));
        }
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        rej(e);
      });
      child.once("exit", (code, sig) => {
        clearTimeout(timer);
        rej(new Error(`startCniServer: server exited (${code ?? sig}) before listening${text ? `: ${text.trim()}` : ""}`));
      });
    });
    const msg = JSON.parse(line) as { ready?: boolean; pid?: number; error?: string };
    if (!msg.ready) throw new Error(`startCniServer: ${msg.error ?? line}`);
  } catch (e) {
    if (child.exitCode === null) child.kill("SIGKILL");
    throw e;
  }
  child.removeAllListeners("exit");
  child.stdout!.destroy();
  if (!detached) (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.unref();
  const pid = child.pid!;
  return { pid, socketPath, stop: () => stopCniServer({ socketPath, pid }).then(() => undefined) };
}

/** Sends a control request; resolves the server's answer, or undefined when nobody answers. */
function control(socketPath: string, what: "ping" | "stop", timeoutMs: number): Promise<CniServerInfo | undefined> {
  return new Promise((res) => {
    const c = connect(socketPath);
    let text = "";
    const timer = setTimeout(() => {
      c.destroy();
      res(undefined);
    }, timeoutMs);
    c.on("connect", () => c.end(`FCNI1\nFAKE_CNI_CONTROL=${what}\0\0`));
    c.on("data", (b: Buffer) => (text += b.toString()));
    c.on("error", () => undefined);
    c.on("close", () => {
      clearTimeout(timer);
      const m = /^0\n(\{.*\})/.exec(text);
      res(m ? (JSON.parse(m[1]!) as CniServerInfo) : undefined);
    });
  });
}

/** What a server says about itself. */
export interface CniServerInfo {
  /** Its process id. */
  pid: number;
  /** CNI requests it has taken since it started. */
  served: number;
}

/**
 * The server answering on `socketPath` (pid, requests served), or undefined when none answers
 * (no socket, ECONNREFUSED, stale file) within `timeoutMs` (default 2000). Never throws.
 */
export function pingCniServer(opts: { socketPath: string; timeoutMs?: number }): Promise<CniServerInfo | undefined> {
  return control(opts.socketPath, "ping", opts.timeoutMs ?? 2_000);
}

/** True while `pid` runs (a zombie, exited but not yet reaped by its parent, counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

function isOurServer(pid: number, socketPath: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(socketPath);
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

/**
 * Stops the server on `socketPath`, from any process; idempotent. Asks it to stop over the socket
 * (it finishes running requests, ≤ 10 s, removes its socket, exits 0); when it does not answer and
 * `pid` is given and that process is still a fake-cni server for this socket (its command line
 * names the socket), sends SIGTERM. A process that does not exit within `timeoutMs` (default
 * 15 000) gets SIGKILL. Finally removes the socket file if it is still there (stale).
 * @returns the pid that was stopped, or undefined when no server was running.
 */
export async function stopCniServer(opts: { socketPath: string; pid?: number; timeoutMs?: number }): Promise<{ pid?: number }> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let pid = (await control(opts.socketPath, "stop", 2_000))?.pid;
  if (pid === undefined && opts.pid !== undefined && alive(opts.pid) && isOurServer(opts.pid, opts.socketPath)) {
    pid = opts.pid;
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      /* gone */
    }
  }
  if (pid !== undefined && !(await waitGone(pid, timeoutMs))) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
    await waitGone(pid, 2_000);
  }
  try {
    if (lstatSync(opts.socketPath).isSocket() && (await control(opts.socketPath, "ping", 500)) === undefined) unlinkSync(opts.socketPath);
  } catch {
    /* no file */
  }
  return pid === undefined ? {} : { pid };
}
