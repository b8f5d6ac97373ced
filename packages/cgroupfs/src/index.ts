/**
 * @hybrid/cgroupfs: a FUSE filesystem that emulates the cgroup v2 unified hierarchy with live
 * accounting from /proc and the kernel's rules (Documentation/admin-guide/cgroup-v2.rst).
 *
 * The filesystem is served by a daemon in its own process (src/daemon.ts): FUSE callbacks run on
 * the Node main thread, so a process must never read the mount it serves synchronously.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, realpathSync } from "node:fs";
import { readFile, readdir, stat, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import type { PersistedState } from "./model.js";

export { CgroupModel, CONTROLLERS, MEMORY_STAT_KEYS, normalizePath } from "./model.js";
export type { Controller, HostEnv, GroupSettings, PersistedState, Entry, MembershipListener } from "./model.js";
export { CgroupError, ERRNO } from "./errors.js";
export type { ErrnoName } from "./errors.js";
export type { ProcSample, SystemSample, Agg } from "./stats.js";
export { realHostEnv } from "./proc.js";

/** Options of {@link mountCgroupfs}. */
export interface MountOptions {
  /** Directory to mount on (created if missing), e.g. `<stateDir>/cgroup` or `/sys/fs/cgroup`. */
  mountpoint: string;
  /** The persisted hierarchy (JSON, {@link PersistedState}); created if missing, restored if present. */
  stateFile: string;
  /** When set, the daemon keeps `<procsDir>/<pid>` = `0::/path\n` for every member of a non-root group (no file: the root). */
  procsDir?: string;
  /** Daemon stdout/stderr go here (appended). Without it they are discarded once the mount is ready. */
  logFile?: string;
  /** `true`: the daemon survives the caller (new session, unref'd, stdio to `logFile`). Default false. */
  detached?: boolean;
  /** How long to wait for the mount to serve `cgroup.controllers` (ms). Default 15000. */
  readyTimeoutMs?: number;
  /** Accounting refresh interval of the sampler (ms). Default 1000. */
  sampleIntervalMs?: number;
}

/** A running cgroupfs mount. */
export interface CgroupfsHandle {
  /** Absolute mount point. */
  mountpoint: string;
  /** Daemon pid. */
  pid: number;
  /** Stops the daemon (it persists first) and removes the mount. Idempotent. */
  unmount(): Promise<void>;
}

/**
 * Node flags of the daemon: a small young generation and memory-lean V8 heuristics keep its RSS
 * near 70 MB at 1,000 groups (the default 16 MB semi-spaces alone would add ~30 MB).
 */
export const DAEMON_NODE_FLAGS = ["--max-semi-space-size=1", "--optimize-for-size"];

/** Node argv of the daemon: dist/daemon.js next to this module, or src/daemon.ts run through tsx (tests). */
export function daemonArgv(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const js = join(here, "daemon.js");
  if (existsSync(js)) return [...DAEMON_NODE_FLAGS, js];
  const ts = join(here, "daemon.ts");
  return [...DAEMON_NODE_FLAGS, "--import", import.meta.resolve("tsx/esm"), ts];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * Mount entries whose mount point is `mountpoint`: from /proc/self/mountinfo (mountinfo(5)), plus
 * /proc/mounts, because gVisor drops a dead FUSE mount from mountinfo while /proc/mounts keeps it.
 */
async function mountEntries(mountpoint: string): Promise<Array<{ fstype: string; source: string }>> {
  const abs = resolve(mountpoint);
  const out: Array<{ fstype: string; source: string }> = [];
  const info = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  for (const line of info.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const mp = pre.split(" ")[4];
    if (mp === undefined || unescapeMount(mp) !== abs) continue;
    const [fstype = "", source = ""] = post.split(" ");
    out.push({ fstype, source });
  }
  const mounts = await readFile("/proc/mounts", "utf8").catch(() => "");
  for (const line of mounts.split("\n")) {
    const [source = "", mp, fstype = ""] = line.split(" ");
    if (mp !== undefined && unescapeMount(mp) === abs) out.push({ fstype, source });
  }
  return out;
}

/**
 * True when a FUSE mount is present at `mountpoint` (per /proc/self/mountinfo), whether its
 * daemon is alive or the mount is stale ("Transport endpoint is not connected").
 */
export async function isCgroupfsMounted(mountpoint: string): Promise<boolean> {
  return (await mountEntries(mountpoint)).some((e) => e.fstype === "fuse" || e.fstype.startsWith("fuse."));
}

/**
 * True when the mount answers ENOTCONN ("Transport endpoint is not connected": its daemon died).
 * A read is used, not only stat: the kernel may answer stat from its attribute cache.
 */
async function isStale(mountpoint: string): Promise<boolean> {
  for (const probe of [() => stat(mountpoint), () => readFile(join(mountpoint, "cgroup.controllers"))]) {
    try {
      await probe();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTCONN" || code === "ECONNABORTED") return true;
    }
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const s = readFileSync(`/proc/${pid}/stat`, "latin1");
    return !/\) [ZX] /.test(s);
  } catch {
    return false;
  }
}

/** Pids of cgroupfs daemons serving `mountpoint` (found by their command line in /proc). */
async function findDaemons(mountpoint: string): Promise<number[]> {
  const abs = resolve(mountpoint);
  const out: number[] = [];
  for (const n of await readdir("/proc")) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    try {
      const argv = (await readFile(`/proc/${n}/cmdline`, "utf8")).split("\0");
      const i = argv.indexOf("--mountpoint");
      if (i >= 0 && argv[i + 1] === abs && argv.some((a) => /daemon\.(js|ts)$/.test(a))) out.push(Number(n));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function runUnmount(mountpoint: string, lazy: boolean): Promise<void> {
  const tries: Array<[string, string[]]> = lazy
    ? [["fusermount", ["-uz", mountpoint]], ["umount", ["-l", mountpoint]]]
    : [["fusermount", ["-u", mountpoint]], ["umount", [mountpoint]]];
  for (const [cmd, args] of tries) {
    const r = await execa(cmd, args, { reject: false, timeout: 10_000 });
    if (r.exitCode === 0 && !(await isCgroupfsMounted(mountpoint))) return;
  }
}

/**
 * Stops the daemon serving `mountpoint` and removes the mount; usable from any process, idempotent.
 * Order: SIGTERM to the daemon (`pid`, or daemons found by command line), SIGKILL after `timeoutMs`;
 * then `fusermount -u` / `umount`, then lazy `fusermount -uz` / `umount -l`.
 * @throws Error if a mount is still present at the end.
 */
export async function unmountCgroupfs(opts: { mountpoint: string; pid?: number; timeoutMs?: number }): Promise<void> {
  const mountpoint = resolve(opts.mountpoint);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const pids = new Set(await findDaemons(mountpoint));
  if (opts.pid !== undefined && alive(opts.pid)) pids.add(opts.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + timeoutMs;
  while ([...pids].some(alive) && Date.now() < deadline) await sleep(25);
  for (const pid of pids) {
    if (alive(pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  const killDeadline = Date.now() + 2000;
  while ([...pids].some(alive) && Date.now() < killDeadline) await sleep(25);
  for (let i = 0; i < 3 && (await isCgroupfsMounted(mountpoint)); i++) {
    await runUnmount(mountpoint, i > 0);
  }
  if (await isCgroupfsMounted(mountpoint)) throw new Error(`cgroupfs: ${mountpoint} is still mounted after unmount attempts`);
}

/** Removes a dead daemon's mount (ENOTCONN): kills leftover daemons, unmounts (plain, then lazy). */
async function replaceStale(mountpoint: string): Promise<void> {
  for (const pid of await findDaemons(mountpoint)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  await runUnmount(mountpoint, false);
  if (await isStale(mountpoint)) await runUnmount(mountpoint, true);
  if ((await isStale(mountpoint)) || (await isCgroupfsMounted(mountpoint))) throw new Error(`cgroupfs: could not remove the stale mount at ${mountpoint}`);
}

/**
 * Starts the cgroupfs daemon and waits until `<mountpoint>/cgroup.controllers` reads through the mount.
 *
 * A stale mount at `mountpoint` (dead daemon, ENOTCONN) is lazily unmounted first. A live cgroupfs
 * already serving there is an error (unmount it first). On any failure the daemon is stopped, the
 * mount removed, and the original error rethrown (with the daemon's last log lines).
 * @throws Error when the mount does not serve within `readyTimeoutMs`, the daemon exits, or the mount point is busy.
 */
export async function mountCgroupfs(opts: MountOptions): Promise<CgroupfsHandle> {
  const given = resolve(opts.mountpoint);
  if (await isStale(given)) await replaceStale(given);
  mkdirSync(given, { recursive: true });
  const mountpoint = realpathSync(given);
  const stateFile = resolve(opts.stateFile);
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15_000;

  if (await isCgroupfsMounted(mountpoint)) {
    if (await isStale(mountpoint)) await replaceStale(mountpoint);
    else throw new Error(`cgroupfs: ${mountpoint} is already served by a live FUSE daemon (unmountCgroupfs first)`);
  }
  mkdirSync(dirname(stateFile), { recursive: true });
  if (opts.procsDir) mkdirSync(opts.procsDir, { recursive: true });

  const args = [...daemonArgv(), "--mountpoint", mountpoint, "--state-file", stateFile];
  if (opts.procsDir) args.push("--procs-dir", resolve(opts.procsDir));
  if (opts.sampleIntervalMs) args.push("--interval-ms", String(opts.sampleIntervalMs));

  let logFd: number | undefined;
  if (opts.logFile) {
    mkdirSync(dirname(opts.logFile), { recursive: true });
    logFd = openSync(opts.logFile, "a");
  }
  const child: ChildProcess = spawn(process.execPath, args, {
    detached: opts.detached ?? false,
    stdio: ["ignore", logFd ?? "ignore", logFd ?? "pipe"],
  });
  if (logFd !== undefined) closeSync(logFd);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited: string | undefined;
  child.on("exit", (code, sig) => {
    exited = `daemon exited (${code ?? sig})`;
  });
  const pid = child.pid;
  const tail = (): string => (opts.logFile ? safeTail(opts.logFile) : stderr);
  try {
    if (pid === undefined) throw new Error("cgroupfs: daemon did not start");
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (exited) throw new Error(`cgroupfs: ${exited} before serving ${mountpoint}\n${tail()}`);
      try {
        if ((await mountEntries(mountpoint)).some((e) => e.fstype === "fuse")) {
          const c = await readFile(join(mountpoint, "cgroup.controllers"), "utf8");
          if (c.includes("cpu")) break;
        }
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`cgroupfs: ${mountpoint} not serving after ${readyTimeoutMs} ms\n${tail()}`);
      await sleep(20);
    }
  } catch (e) {
    try {
      await unmountCgroupfs({ mountpoint, pid, timeoutMs: 2000 });
    } catch {
      /* keep the original error */
    }
    throw e;
  }
  child.stderr?.removeAllListeners("data");
  child.stderr?.destroy();
  child.removeAllListeners("exit");
  child.unref();
  return {
    mountpoint,
    pid,
    unmount: () => unmountCgroupfs({ mountpoint, pid }),
  };
}

function safeTail(file: string): string {
  try {
    return readFileSync(file, "utf8").slice(-4000);
  } catch {
    return "";
  }
}

/**
 * Reads the persisted model of a cgroupfs (its state file): groups, controllers, limits, members.
 * Consistent because the daemon replaces the file atomically after each change.
 * @throws Error when the file is missing or not a version-1 state.
 */
export async function readModel(stateFile: string): Promise<PersistedState> {
  const s = JSON.parse(await readFile(stateFile, "utf8")) as PersistedState;
  if (s.version !== 1) throw new Error(`${stateFile}: not a cgroupfs state (version ${String(s.version)})`);
  return s;
}

/**
 * For `hybrid doctor`: whether FUSE can be used here — `/dev/fuse` exists and a test cgroupfs
 * mounts, serves `cgroup.controllers` and unmounts (in a temp dir).
 * @returns `{ available, detail }`; never throws.
 */
export async function probeFuse(): Promise<{ available: boolean; detail: string }> {
  if (!existsSync("/dev/fuse")) return { available: false, detail: "/dev/fuse is missing" };
  let dir: string | undefined;
  try {
    dir = await mkdtemp(join(tmpdir(), "cgroupfs-probe-"));
    const h = await mountCgroupfs({ mountpoint: join(dir, "mnt"), stateFile: join(dir, "state.json"), readyTimeoutMs: 10_000 });
    const ctrls = (await readFile(join(h.mountpoint, "cgroup.controllers"), "utf8")).trim();
    await h.unmount();
    return { available: true, detail: `test mount served cgroup.controllers "${ctrls}"` };
  } catch (e) {
    return { available: false, detail: `test mount failed: ${(e as Error).message.split("\n")[0]}` };
  } finally {
    if (dir) {
      for (let i = 0; i < 20; i++) {
        const ok = await rm(dir, { recursive: true, force: true }).then(
          () => true,
          () => false,
        );
        if (ok) break;
        await sleep(100); // a lazily detached mount may still hold the directory for a moment
      }
    }
  }
}

/** The cgroup path of `pid` as the cgroupfs's `procsDir` records it (`/` when it has no file). */
export async function cgroupOfPid(procsDir: string, pid: number): Promise<string> {
  try {
    const t = await readFile(join(procsDir, String(pid)), "utf8");
    return t.replace(/^0::/, "").trim() || "/";
  } catch {
    return "/";
  }
}
