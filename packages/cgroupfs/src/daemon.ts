/**
 * The cgroupfs FUSE daemon: serves a {@link CgroupModel} at a mount point through `fuse-native`
 * (libfuse 2), samples `/proc` on an interval, persists the model to its state file after every
 * change, and keeps `procsDir`. Runs in its own process (started by `mountCgroupfs`):
 *
 *   node daemon.js --mountpoint DIR --state-file FILE [--procs-dir DIR] [--interval-ms 1000] [--spin-ms 2] [--cache-timeout 1]
 *
 * --cache-timeout: FUSE entry/attr timeout in seconds (0 disables the kernel's caching).
 *
 * SIGTERM / SIGINT: persist, unmount, exit 0.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { CgroupError } from "./errors.js";
import { CgroupModel, type PersistedState } from "./model.js";
import { realHostEnv } from "./proc.js";
import { scan } from "./sampler.js";
import type { ProcSample } from "./stats.js";

const require = createRequire(import.meta.url);

interface FuseStat {
  mtime: Date;
  atime: Date;
  ctime: Date;
  mode: number;
  size: number;
  nlink: number;
  uid: number;
  gid: number;
}
type Cb = (...args: unknown[]) => void;

interface DaemonOptions {
  mountpoint: string;
  stateFile: string;
  procsDir?: string;
  intervalMs: number;
  spinMs: number;
  cacheTimeoutSec: number;
}

function parseArgs(argv: string[]): DaemonOptions {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const mountpoint = get("--mountpoint");
  const stateFile = get("--state-file");
  if (!mountpoint || !stateFile) throw new Error("usage: daemon --mountpoint DIR --state-file FILE [--procs-dir DIR] [--interval-ms N] [--spin-ms N] [--cache-timeout SEC]");
  return {
    mountpoint,
    stateFile,
    procsDir: get("--procs-dir"),
    intervalMs: Number(get("--interval-ms") ?? 1000),
    spinMs: Number(get("--spin-ms") ?? 2),
    cacheTimeoutSec: Number(get("--cache-timeout") ?? 1),
  };
}

/** CGROUPFS_DEBUG=1: log each sample's scan time, memory and FUSE op counts. */
const DEBUG = !!process.env.CGROUPFS_DEBUG;

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} cgroupfs[${process.pid}] ${msg}\n`);
}

/** Writes a file atomically (temp file + rename), so a crash never leaves a torn state file. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

async function main(): Promise<void> {
  // The parent closes its end of a stderr pipe once the mount serves: never die of EPIPE.
  process.stderr.on("error", () => undefined);
  process.stdout.on("error", () => undefined);
  const opts = parseArgs(process.argv.slice(2));
  const env = realHostEnv();
  mkdirSync(dirname(opts.stateFile), { recursive: true });
  let model: CgroupModel;
  if (existsSync(opts.stateFile)) {
    // A state file that does not parse is an error, never silently replaced (no loss).
    const state = JSON.parse(readFileSync(opts.stateFile, "utf8")) as PersistedState;
    model = CgroupModel.fromState(state, env);
    log(`restored ${state.groups.length} groups, ${model.membership().size}/${Object.keys(state.procs).length} live members from ${opts.stateFile}`);
  } else {
    model = new CgroupModel(env);
  }
  const persist = (): void => writeAtomic(opts.stateFile, JSON.stringify(model.toState()));
  persist();

  // procsDir: <procsDir>/<pid> holds "0::/path\n" for members of non-root groups; no file means the root.
  const procsDir = opts.procsDir;
  if (procsDir) {
    mkdirSync(procsDir, { recursive: true });
    const members = model.membership();
    for (const name of readdirSync(procsDir)) {
      if (!members.has(Number(name))) {
        try {
          unlinkSync(join(procsDir, name));
        } catch {
          /* raced */
        }
      }
    }
    for (const [pid, path] of members) writeAtomic(join(procsDir, String(pid)), `0::${path}\n`);
    model.onMembership((pid, path) => {
      const f = join(procsDir, String(pid));
      try {
        if (path === null) unlinkSync(f);
        else writeAtomic(f, `0::${path}\n`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") log(`procsDir ${f}: ${(e as Error).message}`);
      }
    });
  }

  // ---------------------------------------------------------------- sampler
  // /proc is scanned in chunks between FUSE requests (src/sampler.ts); results apply at once.
  const opCount: Record<string, number> = {};
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  if (DEBUG) loopDelay.enable();
  let known = new Set<number>();
  let sampling = false;
  let firstSample = true;
  const sample = async (): Promise<void> => {
    if (sampling) return;
    sampling = true;
    try {
      const before = model.membership();
      const r = await scan({ members: [...before.keys()] });
      const tApply = performance.now();
      const live = new Map<number, { ppid: number; starttime: number; zombie: boolean }>();
      for (const [pid, ppid, starttime, z] of r.procs) live.set(pid, { ppid, starttime, zombie: z === 1 });
      // Children of members first seen now start in their parent's group (by start time order).
      if (!firstSample) {
        const fresh = r.procs.filter(([pid, , , z]) => !known.has(pid) && z === 0).sort((a, b) => a[2] - b[2]);
        for (const [pid, ppid, starttime] of fresh) model.inherit(pid, ppid, starttime);
      }
      firstSample = false;
      known = new Set(live.keys());
      const reaped = model.reap((pid) => {
        const st = model.memberStart(pid);
        if (!before.has(pid) || st === undefined) return st === undefined ? undefined : { tgid: pid, starttime: st }; // joined during the scan
        const p = live.get(pid);
        return p && !p.zombie ? { tgid: pid, starttime: p.starttime } : undefined;
      });
      const samples = new Map<number, ProcSample>();
      for (const s of r.samples) samples.set(s.pid, s);
      model.applySample(samples, r.system, r.procs.filter((p) => p[3] === 0).map((p) => p[0]));
      const members = model.membership().size;
      if (reaped.length > 0 || members !== lastPersistedMembers) {
        lastPersistedMembers = members;
        persist();
      }
      if (DEBUG) {
        log(`sample: ${r.procs.length} pids, ${members} members, scan ${r.tookMs} ms, apply ${(performance.now() - tApply).toFixed(1)} ms, loop delay p99/max ${(loopDelay.percentile(99) / 1e6).toFixed(2)}/${(loopDelay.max / 1e6).toFixed(2)} ms, mem ${JSON.stringify(Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1e6)])))}, ops ${JSON.stringify(opCount)}`);
        for (const k of Object.keys(opCount)) delete opCount[k];
        loopDelay.reset();
      }
    } catch (e) {
      log(`sample failed: ${(e as Error).stack ?? e}`);
    } finally {
      sampling = false;
    }
  };
  let lastPersistedMembers = model.membership().size;
  await sample();
  const timer = setInterval(() => void sample(), opts.intervalMs);

  // ---------------------------------------------------------------- FUSE
  const Fuse = require("fuse-native") as {
    new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): { mount(cb: (err?: Error) => void): void; unmount(cb: (err?: Error) => void): void };
    EACCES: number;
    EPERM: number;
    EIO: number;
  };
  const started = new Date();
  const dirStat = (nlink: number): FuseStat => ({ mtime: started, atime: started, ctime: started, mode: 0o40755, size: 0, nlink, uid: 0, gid: 0 });
  const fileStat = (mode: number, size: number): FuseStat => ({ mtime: started, atime: started, ctime: started, mode: 0o100000 | mode, size, nlink: 1, uid: 0, gid: 0 });
  const errno = (e: unknown): number => {
    if (e instanceof CgroupError) return -e.errno;
    log(`internal error: ${(e as Error).stack ?? e}`);
    return Fuse.EIO;
  };

  // Adaptive polling: while requests keep coming, keep the event loop spinning (setImmediate) so the
  // libuv wake-up latency is not paid per request; stop after spinMs without one.
  let lastOp = 0;
  let spinning = false;
  const spin = (): void => {
    if (performance.now() - lastOp < opts.spinMs) setImmediate(spin);
    else spinning = false;
  };
  const poke = (op = "?"): void => {
    if (DEBUG) opCount[op] = (opCount[op] ?? 0) + 1;
    lastOp = performance.now();
    if (!spinning && opts.spinMs > 0) {
      spinning = true;
      setImmediate(spin);
    }
  };
  const stale = (): void => {
    if (Date.now() - model.sampledAtMs > 2 * opts.intervalMs) void sample();
  };

  // Rendered text per file, and the snapshot served to reads at offset > 0 (a reader sees one version).
  const bufCache = new Map<string, { gen: number; buf: Buffer }>();
  const render = (path: string): Buffer => {
    const hit = bufCache.get(path);
    if (hit && hit.gen === model.generation) return hit.buf;
    const buf = Buffer.from(model.read(path));
    if (bufCache.size > 50_000) bufCache.clear();
    bufCache.set(path, { gen: model.generation, buf });
    return buf;
  };
  const lastServed = new Map<string, Buffer>();

  const mutated = (): void => {
    persist();
  };

  const ops = {
    getattr(path: string, cb: Cb) {
      poke("getattr");
      try {
        const e = model.lookup(path);
        if (e.kind === "dir") return cb(0, dirStat(2));
        // The current length as size: the host kernel ignores it (direct_io), gVisor's FUSE reads up to it.
        // Write-only files (cgroup.kill) say 1 so that gVisor sends the read that answers EINVAL.
        return cb(0, fileStat(e.mode, e.mode & 0o444 ? render(path).length : 1));
      } catch (err) {
        return cb(errno(err));
      }
    },
    readdir(path: string, cb: Cb) {
      poke("readdir");
      try {
        return cb(0, model.list(path));
      } catch (err) {
        return cb(errno(err));
      }
    },
    read(path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) {
      poke("read");
      try {
        let content: Buffer;
        if (pos === 0) {
          stale();
          content = render(path);
          lastServed.set(path, content);
          if (lastServed.size > 10_000) lastServed.clear();
        } else {
          content = lastServed.get(path) ?? render(path);
        }
        if (pos >= content.length) return cb(0);
        return cb(content.copy(buf, 0, pos, Math.min(content.length, pos + len)));
      } catch (err) {
        return cb(errno(err));
      }
    },
    write(path: string, _fd: number, buf: Buffer, len: number, _pos: number, cb: Cb) {
      poke("write");
      try {
        model.write(path, buf.toString("utf8", 0, len));
        mutated();
        if (path.endsWith("/cgroup.kill")) {
          for (const ms of [20, 100, 300, 1000]) setTimeout(() => void sample(), ms);
        }
        return cb(len);
      } catch (err) {
        return cb(errno(err));
      }
    },
    truncate(path: string, _size: number, cb: Cb) {
      try {
        model.lookup(path);
        return cb(0);
      } catch (err) {
        return cb(errno(err));
      }
    },
    ftruncate(path: string, _fd: number, _size: number, cb: Cb) {
      try {
        model.lookup(path);
        return cb(0);
      } catch (err) {
        return cb(errno(err));
      }
    },
    utimens(path: string, _a: unknown, _m: unknown, cb: Cb) {
      try {
        model.lookup(path);
        return cb(0);
      } catch (err) {
        return cb(errno(err));
      }
    },
    mkdir(path: string, _mode: number, cb: Cb) {
      poke("mkdir");
      try {
        model.mkdir(path);
        mutated();
        return cb(0);
      } catch (err) {
        return cb(errno(err));
      }
    },
    rmdir(path: string, cb: Cb) {
      poke("rmdir");
      try {
        const e = model.lookup(path);
        if (e.kind === "file") throw new CgroupError("ENOTDIR", `${path} is a file`);
        model.rmdir(path);
        mutated();
        return cb(0);
      } catch (err) {
        return cb(errno(err));
      }
    },
    // The kernel's cgroupfs has no create/mknod (EACCES from the VFS), and no unlink/rename of files (EPERM).
    create(_path: string, _mode: number, cb: Cb) {
      return cb(Fuse.EACCES);
    },
    mknod(_path: string, _mode: number, _dev: number, cb: Cb) {
      return cb(Fuse.EACCES);
    },
    unlink(_path: string, cb: Cb) {
      return cb(Fuse.EPERM);
    },
    rename(_src: string, _dest: string, cb: Cb) {
      return cb(Fuse.EPERM);
    },
    link(_src: string, _dest: string, cb: Cb) {
      return cb(Fuse.EPERM);
    },
    symlink(_src: string, _dest: string, cb: Cb) {
      return cb(Fuse.EPERM);
    },
    statfs(_path: string, cb: Cb) {
      return cb(0, { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: 0, namemax: 255 });
    },
  };

  // fsname=cgroup2 is the mount's source in mountinfo; the comma adds libfuse's `direct_io` (every read
  // reaches the daemon, whatever size getattr reports), as fuse-native has no option for it.
  // Entry/attr caching (1 s) is safe: names and modes change only through this mount, which
  // invalidates them itself; a controller's files vanishing when it is disabled are answered ENOENT.
  const fuse = new Fuse(opts.mountpoint, ops, {
    fsname: "cgroup2,direct_io",
    entryTimeout: opts.cacheTimeoutSec,
    attrTimeout: opts.cacheTimeoutSec,
    timeout: false,
  });
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  log(`serving ${opts.mountpoint} (state ${opts.stateFile}${procsDir ? `, procs ${procsDir}` : ""})`);

  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: persisting and unmounting`);
    clearInterval(timer);
    try {
      persist();
    } catch (e) {
      log(`persist failed: ${(e as Error).message}`);
    }
    fuse.unmount((err) => {
      if (err) log(`unmount: ${err.message}`);
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => stop("SIGHUP"));
}

main().catch((e: unknown) => {
  log(`fatal: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
