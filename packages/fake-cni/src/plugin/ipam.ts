/**
 * IPAM store in the reference `host-local` layout (plugins/ipam/host-local/backend/disk):
 * `<dataDir>/<network>/<ip>` holds `<containerId>\r\n<ifname>`, `last_reserved_ip.<set>` the
 * last address handed out per range set. Callers are serialised by an exclusive lock file
 * (`fake-cni.lock`, holding the owner's pid, created atomically with its content by link(2) of a
 * private temp file, so it is never seen empty; a lock whose owner is gone or older than
 * {@link STALE_LOCK_MS} is broken). Node has no flock(2), hence the lock file. Records themselves
 * are created with O_EXCL, so even a wrongly broken lock cannot hand an address out twice.
 */
import {
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { PluginError, CniErrorCode } from "./errors.js";
import type { NetConf, Range } from "./config.js";
import { type Ip, add, contains, formatIp, parseIp } from "./ip.js";

export const LOCK_NAME = "fake-cni.lock";
/** A lock older than this is broken even when its owner seems alive (pid reuse, other pid namespace). */
export const STALE_LOCK_MS = 60_000;
/** How long a caller waits for the lock before answering error 11 (host-local waits forever on flock). */
export const LOCK_WAIT_MS = 50_000;
const LINE_BREAK = "\r\n";

/**
 * Mutual exclusion between the threads of one process, taken before the lock file and released
 * after it. The resident server (server.ts) installs one shared by its worker threads, so callers
 * inside the server queue in memory instead of polling the lock file; the lock file still
 * serialises them against other processes (the Node fallback, other servers).
 */
export interface InProcessMutex {
  /** Takes the mutex for `key` (the network's state dir), waiting up to `timeoutMs`; false on timeout. */
  acquire(key: string, timeoutMs: number): boolean;
  /** Releases the mutex for `key`. */
  release(key: string): void;
  /** Suffix making this thread's private lock temp file name unique within the process. */
  tag: string;
}

let inProcess: InProcessMutex | undefined;

/** Installs (or, with `undefined`, removes) the in-process mutex used by every {@link Store}. */
export function setInProcessMutex(m: InProcessMutex | undefined): void {
  inProcess = m;
}

const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
function sleep(ms: number): void {
  Atomics.wait(sleepBuf, 0, 0, ms);
}

function ioError(what: string, e: unknown): PluginError {
  const err = e as NodeJS.ErrnoException;
  return new PluginError(CniErrorCode.IoFailure, `${what}: ${err.code ?? ""} ${err.message ?? String(e)}`.trim());
}

/** One allocation: the address, its range (for prefix and gateway) and its range set index. */
export interface Allocation {
  ip: Ip;
  range: Range;
  set: number;
}

/** The state directory of one network, opened (created if missing). */
export class Store {
  readonly dir: string;
  private locked = false;

  constructor(readonly conf: NetConf) {
    this.dir = `${conf.dataDir.replace(/\/+$/, "")}/${conf.name}`;
  }

  /** Creates the network's directory. @throws PluginError 5 when it cannot be made. */
  ensureDir(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw ioError(`cannot create IPAM directory ${this.dir}`, e);
    }
  }

  /**
   * Takes the exclusive lock, waiting up to `timeoutMs`.
   * @throws PluginError 11 (try again later) on timeout, 5 on I/O errors.
   */
  lock(timeoutMs = LOCK_WAIT_MS): void {
    const path = `${this.dir}/${LOCK_NAME}`;
    const mutex = inProcess;
    if (mutex && !mutex.acquire(this.dir, timeoutMs))
      throw new PluginError(CniErrorCode.TryAgainLater, `IPAM lock ${path} is held by another caller`);
    try {
      this.lockFile(path, mutex ? `${path}.${process.pid}${mutex.tag}` : `${path}.${process.pid}`, timeoutMs);
    } catch (e) {
      mutex?.release(this.dir);
      throw e;
    }
    this.mutex = mutex;
  }

  private mutex: InProcessMutex | undefined;

  private lockFile(path: string, mine: string, timeoutMs: number): void {
    try {
      writeFileSync(mine, `${process.pid}\n`, { mode: 0o644 });
    } catch (e) {
      throw ioError(`cannot create lock ${path}`, e);
    }
    const deadline = Date.now() + timeoutMs;
    let wait = 1;
    try {
      for (;;) {
        try {
          linkSync(mine, path);
          this.locked = true;
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw ioError(`cannot create lock ${path}`, e);
        }
        this.breakIfStale(path);
        if (Date.now() > deadline) throw new PluginError(CniErrorCode.TryAgainLater, `IPAM lock ${path} is held by another caller`);
        sleep(wait + Math.floor(Math.random() * wait));
        wait = Math.min(wait * 2, 20);
      }
    } finally {
      try {
        unlinkSync(mine);
      } catch {
        /* gone */
      }
    }
  }

  private breakIfStale(path: string): void {
    let content: string;
    let mtime: number;
    try {
      content = readFileSync(path, "utf8");
      mtime = statSync(path).mtimeMs;
    } catch {
      return; // released meanwhile
    }
    const pid = Number(content.trim());
    let dead = false;
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 0);
      } catch (e) {
        dead = (e as NodeJS.ErrnoException).code === "ESRCH";
      }
    } else {
      dead = false; // unknown owner (not ours): only age breaks it
    }
    if (!dead && Date.now() - mtime < STALE_LOCK_MS) return;
    // Move it aside, then check we moved the stale one, not a fresh lock taken meanwhile.
    const aside = `${path}.stale.${process.pid}`;
    try {
      renameSync(path, aside);
    } catch {
      return;
    }
    try {
      if (readFileSync(aside, "utf8") !== content) {
        try {
          linkSync(aside, path); // someone else's fresh lock: put it back unless a newer one exists
        } catch {
          /* a newer lock is there */
        }
      }
    } finally {
      try {
        unlinkSync(aside);
      } catch {
        /* gone */
      }
    }
  }

  /** Releases the lock (no-op when not held). */
  unlock(): void {
    if (!this.locked) return;
    this.locked = false;
    try {
      unlinkSync(`${this.dir}/${LOCK_NAME}`);
    } catch {
      /* already broken as stale */
    }
    const m = this.mutex;
    this.mutex = undefined;
    m?.release(this.dir);
  }

  /** Runs `fn` under the lock. */
  withLock<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  /** All records: address file name → `{id, ifname}`. Unreadable or foreign files are skipped. */
  records(): Map<string, { id: string; ifname: string }> {
    const out = new Map<string, { id: string; ifname: string }>();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
      throw ioError(`cannot list ${this.dir}`, e);
    }
    for (const n of names) {
      if (!parseIp(n)) continue;
      let text: string;
      try {
        text = readFileSync(`${this.dir}/${n}`, "utf8");
      } catch {
        continue;
      }
      const [id = "", ifname = ""] = text.split(LINE_BREAK);
      out.set(n, { id: id.trim(), ifname: ifname.trim() });
    }
    return out;
  }

  /** Addresses held by (id, ifname). */
  findByAttachment(id: string, ifname: string): Ip[] {
    const out: Ip[] = [];
    for (const [n, r] of this.records()) if (r.id === id && r.ifname === ifname) out.push(parseIp(n)!);
    return out;
  }

  private reserve(ip: Ip, id: string, ifname: string): boolean {
    const file = `${this.dir}/${formatIp(ip)}`;
    try {
      writeFileSync(file, `${id}${LINE_BREAK}${ifname}`, { flag: "wx", mode: 0o644 });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw ioError(`cannot write IPAM record ${file}`, e);
    }
  }

  private lastReserved(set: number): Ip | undefined {
    try {
      return parseIp(readFileSync(`${this.dir}/last_reserved_ip.${set}`, "utf8").trim());
    } catch {
      return undefined;
    }
  }

  /**
   * Allocates one address from each range set for (id, ifname); call under the lock.
   * An attachment that already holds addresses gets them back (ADD is idempotent here).
   * @param requested addresses asked through `CNI_ARGS IP=` (each must fall in some range set).
   * @throws PluginError 100 when a range set is exhausted, 101 when a requested address is taken.
   */
  allocate(id: string, ifname: string, requested: Ip[] = []): Allocation[] {
    const sets = this.conf.rangeSets;
    const existing = this.findByAttachment(id, ifname);
    const out: Allocation[] = [];
    const taken: Ip[] = [];
    try {
      for (let s = 0; s < sets.length; s++) {
        const set = sets[s]!;
        const mine = existing.find((ip) => set.some((r) => inRange(r, ip)));
        if (mine) {
          out.push({ ip: mine, range: set.find((r) => inRange(r, mine))!, set: s });
          continue;
        }
        const want = requested.find((ip) => set.some((r) => inRange(r, ip)));
        if (want) {
          const range = set.find((r) => inRange(r, want))!;
          if ((range.gateway && range.gateway.value === want.value) || !this.reserve(want, id, ifname))
            throw new PluginError(CniErrorCode.AddressUnavailable, `requested address ${formatIp(want)} is not available`);
          taken.push(want);
          out.push({ ip: want, range, set: s });
          continue;
        }
        const got = this.nextFree(set, s, id, ifname);
        if (!got) {
          const desc = set.map((r) => `${formatIp(r.rangeStart)}-${formatIp(r.rangeEnd)}`).join(",");
          throw new PluginError(CniErrorCode.AddressesExhausted, `no IP addresses available in range set: ${desc}`);
        }
        taken.push(got.ip);
        out.push(got);
        try {
          writeFileSync(`${this.dir}/last_reserved_ip.${s}`, formatIp(got.ip));
        } catch (e) {
          throw ioError("cannot write last_reserved_ip", e);
        }
      }
      for (const ip of requested)
        if (!out.some((a) => a.ip.value === ip.value && a.ip.family === ip.family))
          throw new PluginError(CniErrorCode.AddressUnavailable, `requested address ${formatIp(ip)} is outside every range`);
    } catch (e) {
      for (const ip of taken) this.remove(formatIp(ip));
      throw e;
    }
    return out;
  }

  private nextFree(set: Range[], s: number, id: string, ifname: string): Allocation | undefined {
    // Start after the last reserved address (host-local's RangeIter), wrap around once.
    const last = this.lastReserved(s);
    let ri = 0;
    let cur: Ip | undefined;
    if (last) {
      const idx = set.findIndex((r) => inRange(r, last));
      if (idx >= 0) {
        ri = idx;
        cur = last;
      }
    }
    const total = set.reduce((n, r) => n + (r.rangeEnd.value - r.rangeStart.value + 1n), 0n);
    const step = (r: Range, ip: Ip | undefined): Ip | undefined =>
      ip === undefined ? r.rangeStart : ip.value >= r.rangeEnd.value ? undefined : add(ip, 1n);
    for (let n = 0n; n < total; n++) {
      let range = set[ri]!;
      let next = step(range, cur);
      if (!next) {
        ri = (ri + 1) % set.length;
        range = set[ri]!;
        next = range.rangeStart;
      }
      cur = next;
      if (range.gateway && range.gateway.value === next.value) continue;
      if (this.reserve(next, id, ifname)) return { ip: next, range, set: s };
    }
    return undefined;
  }

  private remove(name: string): void {
    try {
      unlinkSync(`${this.dir}/${name}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(`cannot remove IPAM record ${name}`, e);
    }
  }

  /** Frees every address held by (id, ifname); unknown attachments are not an error. @returns freed addresses. */
  release(id: string, ifname: string): string[] {
    const freed: string[] = [];
    for (const [n, r] of this.records())
      if (r.id === id && r.ifname === ifname) {
        this.remove(n);
        freed.push(n);
      }
    return freed;
  }

  /** Frees every record whose (id, ifname) is not in `valid` (CNI 1.1 GC). @returns freed `{ip, id, ifname}`. */
  gc(valid: { containerID: string; ifname: string }[]): { ip: string; id: string; ifname: string }[] {
    const keep = new Set(valid.map((v) => `${v.containerID}\n${v.ifname}`));
    const freed: { ip: string; id: string; ifname: string }[] = [];
    for (const [n, r] of this.records())
      if (!keep.has(`${r.id}\n${r.ifname}`)) {
        this.remove(n);
        freed.push({ ip: n, ...r });
      }
    return freed;
  }

  /** Number of addresses still free per range set (for STATUS). */
  freeCounts(): bigint[] {
    const recs = [...this.records().keys()].map((n) => parseIp(n)!);
    return this.conf.rangeSets.map((set) => {
      let total = 0n;
      for (const r of set) {
        total += r.rangeEnd.value - r.rangeStart.value + 1n;
        if (r.gateway && inRange(r, r.gateway)) total -= 1n;
      }
      const used = recs.filter((ip) => set.some((r) => inRange(r, ip))).length;
      return total - BigInt(used);
    });
  }
}

/** True when `ip` lies within `[rangeStart, rangeEnd]` of `r`. */
export function inRange(r: Range, ip: Ip): boolean {
  return contains(r.subnet, ip) && ip.value >= r.rangeStart.value && ip.value <= r.rangeEnd.value;
}
