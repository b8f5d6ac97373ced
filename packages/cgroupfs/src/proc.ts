/**
 * The real host behind the model: process facts and accounting read from `/proc` (proc(5)),
 * and the CPU/memory-node/huge-page layout from `/sys`.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { HostEnv } from "./model.js";
import { parseList } from "./parse.js";
import type { DiskSample, ProcSample, SystemSample } from "./stats.js";

/** Clock ticks per second of /proc times (sysconf(_SC_CLK_TCK); 100 on Linux and gVisor). */
export const CLK_TCK = 100;
const TICK_USEC = 1_000_000 / CLK_TCK;

/** One reusable buffer: /proc files report size 0, and readFileSync would allocate 64 KiB per call. */
const scratch = Buffer.allocUnsafe(65536);

/** Reads a small /proc file into {@link scratch}; returns its length, or -1 (missing, or larger than the buffer). */
function readBuf(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return -1;
  }
  try {
    let n = 0;
    for (;;) {
      const r = readSync(fd, scratch, n, scratch.length - n, null);
      if (r <= 0) return n;
      n += r;
      if (n === scratch.length) return -1;
    }
  } catch {
    return -1;
  } finally {
    closeSync(fd);
  }
}

/** The number after `key` (e.g. `\nRssAnon:`) in the first `n` bytes of {@link scratch} (× 1024 for `kB`), or 0; no string is made. */
function bufField(n: number, key: Buffer): number {
  let i = scratch.subarray(0, n).indexOf(key);
  if (i < 0) return 0;
  i += key.length;
  while (scratch[i] === 32 || scratch[i] === 9) i++;
  let v = 0;
  for (let c = scratch[i]!; c >= 48 && c <= 57 && i < n; c = scratch[++i]!) v = v * 10 + (c - 48);
  return scratch[i] === 32 && scratch[i + 1] === 107 /* k */ && scratch[i + 2] === 66 /* B */ ? v * 1024 : v;
}

const K = (s: string): Buffer => Buffer.from(s, "latin1");
const KEYS = {
  RssAnon: K("\nRssAnon:"),
  RssFile: K("\nRssFile:"),
  RssShmem: K("\nRssShmem:"),
  VmPTE: K("\nVmPTE:"),
  VmSwap: K("\nVmSwap:"),
  read_bytes: K("\nread_bytes:"),
  write_bytes: K("\nwrite_bytes:"),
  rchar: K("rchar:"),
  wchar: K("\nwchar:"),
  syscr: K("\nsyscr:"),
  syscw: K("\nsyscw:"),
};

/** Parses /proc/<pid>/stat from {@link scratch} (bytes 0..n) without allocating strings (but the state letter). */
function parseStatBuf(n: number): ProcStat | undefined {
  const close = scratch.lastIndexOf(0x29 /* ) */, n - 1);
  if (close < 0) return undefined;
  let pid = 0;
  for (let i = 0; scratch[i]! >= 48 && scratch[i]! <= 57; i++) pid = pid * 10 + scratch[i]! - 48;
  const out: number[] = [];
  let i = close + 2;
  const state = String.fromCharCode(scratch[i]!);
  i += 2; // field 4 starts here
  for (let field = 4; field <= 22 && i < n; field++) {
    let neg = false;
    if (scratch[i] === 45) {
      neg = true;
      i++;
    }
    let v = 0;
    while (i < n && scratch[i] !== 32) v = v * 10 + scratch[i++]! - 48;
    out[field] = neg ? -v : v;
    i++;
  }
  return { pid, state, ppid: out[4] ?? 0, minflt: out[10] ?? 0, majflt: out[12] ?? 0, utime: out[14] ?? 0, stime: out[15] ?? 0, threads: out[20] ?? 0, starttime: out[22] ?? 0 };
}

function readText(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    let n = 0;
    for (;;) {
      const r = readSync(fd, scratch, n, scratch.length - n, null);
      if (r <= 0) break;
      n += r;
      if (n === scratch.length) return readFileSync(path, "latin1"); // larger than the buffer: rare (/proc/stat on big hosts)
    }
    return scratch.toString("latin1", 0, n);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Fields of /proc/<pid>/stat the emulation uses. */
export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  minflt: number;
  majflt: number;
  utime: number;
  stime: number;
  threads: number;
  starttime: number;
}

/** Parses /proc/<pid>/stat (the comm field may hold spaces and parentheses). */
export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(" ")));
  const f = text.slice(close + 2).split(" ");
  // f[0] is field 3 (state); field N is f[N-3]
  const num = (n: number): number => Number(f[n - 3] ?? 0);
  return { pid, state: f[0] ?? "?", ppid: num(4), minflt: num(10), majflt: num(12), utime: num(14), stime: num(15), threads: num(20), starttime: num(22) };
}

/** /proc/<pid>/stat of a process, or undefined when it does not exist. */
export function readStat(pid: number): ProcStat | undefined {
  const n = readBuf(`/proc/${pid}/stat`);
  if (n > 0) return parseStatBuf(n);
  const t = readText(`/proc/${pid}/stat`);
  return t === undefined ? undefined : parseStat(t);
}

function tgidOf(pid: number): number | undefined {
  const t = readText(`/proc/${pid}/status`);
  if (t === undefined) return undefined;
  const m = /^Tgid:\s*(\d+)/m.exec(t);
  return m ? Number(m[1]) : pid;
}

function kv(text: string | undefined, scale = 1): Record<string, number> {
  const out: Record<string, number> = {};
  if (!text) return out;
  for (const line of text.split("\n")) {
    const m = /^([^:\s]+):?\s+(\d+)(\s*kB)?/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * (m[3] ? 1024 : scale);
  }
  return out;
}

function readIo(pid: number, charIo: boolean): { rbytes: number; wbytes: number; rios: number; wios: number } {
  const n = readBuf(`/proc/${pid}/io`);
  if (n <= 0) return { rbytes: 0, wbytes: 0, rios: 0, wios: 0 };
  return {
    rbytes: bufField(n, charIo ? KEYS.rchar : KEYS.read_bytes),
    wbytes: bufField(n, charIo ? KEYS.wchar : KEYS.write_bytes),
    rios: bufField(n, KEYS.syscr),
    wios: bufField(n, KEYS.syscw),
  };
}

/**
 * A full accounting sample of one process (stat + status + io).
 * @param charIo use rchar/wchar (syscall-level bytes) instead of read_bytes/write_bytes (storage-level),
 *   for sandboxes that report the latter as 0.
 */
export function sampleProcess(pid: number, st?: ProcStat, charIo = false): ProcSample | undefined {
  const s = st ?? readStat(pid);
  if (!s) return undefined;
  const sn = readBuf(`/proc/${pid}/status`);
  const status =
    sn > 0
      ? { RssAnon: bufField(sn, KEYS.RssAnon), RssFile: bufField(sn, KEYS.RssFile), RssShmem: bufField(sn, KEYS.RssShmem), VmPTE: bufField(sn, KEYS.VmPTE), VmSwap: bufField(sn, KEYS.VmSwap) }
      : { RssAnon: 0, RssFile: 0, RssShmem: 0, VmPTE: 0, VmSwap: 0 };
  const io = readIo(pid, charIo);
  return {
    pid,
    threads: s.threads || 1,
    userUsec: s.utime * TICK_USEC,
    systemUsec: s.stime * TICK_USEC,
    anon: status.RssAnon,
    file: status.RssFile + status.RssShmem,
    shmem: status.RssShmem,
    pagetables: status.VmPTE,
    swap: status.VmSwap,
    pgfault: s.minflt + s.majflt,
    pgmajfault: s.majflt,
    ...io,
  };
}

/**
 * A cheap sample from /proc/<pid>/stat (CPU, threads, faults), plus /proc/<pid>/io when `withIo`:
 * used for non-members (the root's rollup).
 */
export function statOnlySample(s: ProcStat, withIo = false): ProcSample {
  const io = withIo ? readIo(s.pid, true) : { rbytes: 0, wbytes: 0, rios: 0, wios: 0 };
  return {
    pid: s.pid,
    threads: s.threads || 1,
    userUsec: s.utime * TICK_USEC,
    systemUsec: s.stime * TICK_USEC,
    anon: 0,
    file: 0,
    shmem: 0,
    pagetables: 0,
    swap: 0,
    pgfault: s.minflt + s.majflt,
    pgmajfault: s.majflt,
    ...io,
  };
}

/** Numeric entries of /proc (live processes, thread group leaders only). */
export function listPids(): number[] {
  const out: number[] = [];
  for (const n of readdirSync("/proc")) {
    const c = n.charCodeAt(0);
    if (c >= 48 && c <= 57) out.push(Number(n));
  }
  return out.sort((a, b) => a - b);
}

/** System-wide figures: /proc/stat (cpu), /proc/meminfo, /proc/vmstat, /proc/diskstats. Missing files give empty parts. */
export function sampleSystem(): SystemSample {
  const sys: SystemSample = { meminfo: kv(readText("/proc/meminfo")), vmstat: kv(readText("/proc/vmstat")), disks: [] };
  const stat = readText("/proc/stat");
  const cpu = stat ? /^cpu\s+(.*)$/m.exec(stat) : null;
  if (cpu) {
    const f = cpu[1]!.trim().split(/\s+/).map(Number);
    sys.cpu = {
      userUsec: (f[0] ?? 0) * TICK_USEC,
      niceUsec: (f[1] ?? 0) * TICK_USEC,
      systemUsec: ((f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0)) * TICK_USEC,
    };
  }
  const disk = readText("/proc/diskstats");
  if (disk) {
    for (const line of disk.split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f.length < 14) continue;
      const name = f[2]!;
      if (/^(loop|ram|zram)/.test(name) && Number(f[3]) === 0) continue;
      if (/^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme\d+n\d+p|mmcblk\d+p)\d+$/.test(name)) continue; // partitions roll up into the disk
      const d: DiskSample = {
        device: `${f[0]}:${f[1]}`,
        rios: Number(f[3]),
        rbytes: Number(f[5]) * 512,
        wios: Number(f[7]),
        wbytes: Number(f[9]) * 512,
        dios: Number(f[14] ?? 0),
        dbytes: Number(f[16] ?? 0) * 512,
      };
      if (d.rios + d.wios + d.dios > 0) sys.disks.push(d);
    }
  }
  return sys;
}

function hugepageSizes(): string[] {
  try {
    const sizes = readdirSync("/sys/kernel/mm/hugepages")
      .map((n) => /^hugepages-(\d+)kB$/.exec(n))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b)
      .map((kb) => (kb >= 1024 * 1024 ? `${kb / 1024 / 1024}GB` : kb >= 1024 ? `${kb / 1024}MB` : `${kb}KB`));
    if (sizes.length) return sizes;
  } catch {
    /* gVisor has no /sys/kernel/mm */
  }
  return ["2MB"];
}

function onlineList(path: string, fallback: number[]): number[] {
  const t = readText(path);
  if (t === undefined) return fallback;
  try {
    const l = parseList(t, path);
    return l.length ? l : fallback;
  } catch {
    return fallback;
  }
}

function rootDevice(): string {
  try {
    const dev = statSync("/").dev;
    // glibc's gnu_dev_major/minor
    const major = ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    return `${major}:${minor}`;
  } catch {
    return "0:0";
  }
}

/** The real host: /proc for processes, /sys for CPUs, nodes and huge page sizes. */
export function realHostEnv(): HostEnv {
  const ncpu = Math.max(1, availableParallelism());
  return {
    processInfo(pid) {
      if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
      const s = readStat(pid);
      if (!s || s.state === "Z" || s.state === "X") return undefined;
      const tgid = tgidOf(pid) ?? pid;
      if (tgid !== pid) {
        const leader = readStat(tgid);
        if (!leader || leader.state === "Z") return undefined;
        return { tgid, starttime: leader.starttime };
      }
      return { tgid, starttime: s.starttime };
    },
    kill(pid, signal) {
      try {
        process.kill(pid, signal);
      } catch {
        /* gone */
      }
    },
    cpus: onlineList("/sys/devices/system/cpu/online", [...Array(ncpu).keys()]),
    mems: onlineList("/sys/devices/system/node/online", [0]),
    hugepageSizes: hugepageSizes(),
    ioDevice: rootDevice(),
  };
}
