/** Daemon processes: spawning (attached or detached), readiness waits, and stopping by pid. */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname } from "node:path";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * True when `pid` names a live process: `kill(pid, 0)` succeeds (EPERM counts as alive) and
 * `/proc/<pid>/stat` does not show a zombie (`Z`) or dead (`X`) state.
 */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Fields of /proc/<pid>/stat after the command: [state, ppid, pgrp, ...]; undefined when gone. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** True when `pid` leads its own process group (pgrp == pid), as every daemon spawned here does. */
export function isGroupLeader(pid: number): boolean {
  return statFields(pid)?.[2] === String(pid);
}

/** Live (non-zombie) members of process group `pgid`, from /proc. */
export function processGroupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(d);
    if (f && f[2] === String(pgid) && f[0] !== "Z" && f[0] !== "X") out.push(Number(d));
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals, group: boolean): void {
  try {
    process.kill(group ? -pid : pid, sig);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ESRCH" && group) {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    } else if (code !== "ESRCH") throw e;
  }
}

async function waitGone(pid: number, group: boolean, ms: number): Promise<boolean> {
  const gone = (): boolean => (group ? processGroupMembers(pid).length === 0 : !isPidAlive(pid));
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (gone()) return true;
    await sleep(50);
  }
  return gone();
}

/**
 * Stops a process by pid, from any process (for `hybrid down`): SIGTERM, wait up to `graceMs`
 * (default 10 000 ms), then SIGKILL and wait up to 5 s more. `group` (default: true when `pid`
 * leads its own process group, as the daemons started here do) sends the signals to the group
 * `-pid` and waits until no live member is left, so a tracer and the runtime under it (and k3s's
 * containerd) all stop. Safe when the pid is already gone.
 * @throws Error when something survives SIGKILL for 5 s (e.g. stuck in uninterruptible sleep),
 *   or EPERM when not allowed to signal it.
 */
export async function stopPid(pid: number, opts: { graceMs?: number; group?: boolean } = {}): Promise<void> {
  if (!Number.isInteger(pid) || pid <= 1) throw new TypeError(`stopPid: refusing pid ${pid}`);
  const group = opts.group ?? isGroupLeader(pid);
  if (group ? processGroupMembers(pid).length === 0 : !isPidAlive(pid)) return;
  signal(pid, "SIGTERM", group);
  if (await waitGone(pid, group, opts.graceMs ?? 10_000)) return;
  signal(pid, "SIGKILL", group);
  if (!(await waitGone(pid, group, 5000))) {
    throw new Error(`stopPid: ${group ? `process group ${pid} (${processGroupMembers(pid).join(", ")})` : `pid ${pid}`} still alive 5 s after SIGKILL`);
  }
}

/** A spawned daemon. */
export interface Daemon {
  pid: number;
  child: ChildProcess;
  /** Resolves when the process exits (never rejects). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once it has exited. */
  hasExited(): boolean;
  /** The last ~8 KiB of its output (from the log file or the in-memory buffer). */
  logTail(): Promise<string>;
}

/** Options of {@link spawnDaemon}. */
export interface SpawnDaemonOptions {
  file: string;
  args: readonly string[];
  /** argv prefix (e.g. `[tracer, "--rules", f, "--"]`): the daemon runs as `wrap[0] ...wrap[1..] file args`. */
  wrap?: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Survive the caller: new session (setsid), unref'd, stdio to `logFile` (or /dev/null). */
  detached?: boolean;
  /** Append stdout and stderr here (created with its directory). */
  logFile?: string;
}

const live = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of live) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  });
}

/**
 * Spawns a daemon in its own process group. Attached daemons (default) are SIGKILLed if the
 * caller exits without stopping them; detached ones live on (record their pid and stop them with
 * {@link stopPid} `{ group: true }`).
 * @throws Error when the executable cannot be spawned (ENOENT/EACCES, named).
 */
export async function spawnDaemon(opts: SpawnDaemonOptions): Promise<Daemon> {
  const argv = [...(opts.wrap ?? []), opts.file, ...opts.args];
  const [file, ...args] = argv as [string, ...string[]];
  let fd: number | undefined;
  if (opts.logFile) {
    mkdirSync(dirname(opts.logFile), { recursive: true });
    fd = openSync(opts.logFile, "a");
  }
  const out = fd ?? (opts.detached ? "ignore" : "pipe");
  const child = spawn(file, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    detached: true,
    stdio: ["ignore", out, out],
  });
  if (fd !== undefined) closeSync(fd);
  let buffer = "";
  const keep = (d: Buffer): void => {
    buffer = (buffer + d.toString()).slice(-8192);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, sig) => {
      done = true;
      if (child.pid) live.delete(child.pid);
      resolve({ code, signal: sig });
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", () => resolve());
    child.once("error", (e) => reject(new Error(`cannot start ${file}: ${e.message}`, { cause: e })));
  });
  const pid = child.pid!;
  if (opts.detached) {
    child.unref();
    child.stdout?.destroy();
    child.stderr?.destroy();
  } else {
    installExitHook();
    live.add(pid);
  }
  return {
    pid,
    child,
    exited,
    hasExited: () => done,
    logTail: async () => {
      if (!opts.logFile) return buffer;
      try {
        const h = await open(opts.logFile, "r");
        try {
          const { size } = await h.stat();
          const len = Math.min(size, 8192);
          const b = Buffer.alloc(len);
          await h.read(b, 0, len, size - len);
          return b.toString();
        } finally {
          await h.close();
        }
      } catch {
        return "";
      }
    },
  };
}

/** A readiness probe's answer. */
export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/**
 * Polls `probe` every `intervalMs` (default 200) until it answers ok, the daemon exits, or
 * `timeoutMs` passes (a wait strategy in the style of testcontainers-node).
 * @throws Error naming what was awaited, the last probe detail and the daemon's log tail.
 */
export async function waitUntilReady(
  what: string,
  daemon: Pick<Daemon, "hasExited" | "exited" | "logTail"> | undefined,
  probe: () => Promise<ProbeResult>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: ProbeResult = { ok: false, detail: "not probed yet" };
  for (;;) {
    if (daemon?.hasExited()) {
      const { code, signal: sig } = await daemon.exited;
      throw new Error(`${what} exited (${sig ?? `code ${code}`}) before it was ready; last probe: ${last.detail}\n--- log tail\n${await daemon.logTail()}`);
    }
    last = await probe().catch((e: unknown) => ({ ok: false, detail: (e as Error).message }));
    if (last.ok) return;
    if (Date.now() >= end) {
      throw new Error(`${what} not ready after ${timeoutMs} ms; last probe: ${last.detail}\n--- log tail\n${daemon ? await daemon.logTail() : ""}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Runs `start` and then `ready`; when `ready` throws, calls `stop` (its own errors are attached
 * as `cause`-less notes) and rethrows the original readiness error.
 */
export async function startThenWait<T>(start: () => Promise<T>, ready: (h: T) => Promise<void>, stop: (h: T) => Promise<void>): Promise<T> {
  const h = await start();
  try {
    await ready(h);
  } catch (e) {
    try {
      await stop(h);
    } catch (stopErr) {
      (e as Error).message += `\n(also failed to stop it: ${(stopErr as Error).message})`;
    }
    throw e;
  }
  return h;
}
