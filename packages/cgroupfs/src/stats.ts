/**
 * Accounting samples: what the sampler reads from `/proc` and what the model rolls up.
 * Units: CPU in microseconds, memory and I/O in bytes, counts as counts.
 */

/** One process's accounting, from `/proc/<pid>/stat`, `/proc/<pid>/status` and `/proc/<pid>/io`. */
export interface ProcSample {
  pid: number;
  /** Number of threads (tasks): what `pids.current` counts. */
  threads: number;
  /** utime in µs (stat field 14 × 10⁶ / CLK_TCK). */
  userUsec: number;
  /** stime in µs (stat field 15). */
  systemUsec: number;
  /** RssAnon (bytes). */
  anon: number;
  /** RssFile + RssShmem (bytes): the memcg "file" counter includes shmem. */
  file: number;
  /** RssShmem (bytes). */
  shmem: number;
  /** VmPTE (bytes). */
  pagetables: number;
  /** VmSwap (bytes). */
  swap: number;
  /** minflt + majflt (stat fields 10, 12). */
  pgfault: number;
  /** majflt. */
  pgmajfault: number;
  /** read_bytes / write_bytes / syscr / syscw of /proc/<pid>/io. */
  rbytes: number;
  wbytes: number;
  rios: number;
  wios: number;
}

/** Fields summed over a group's subtree. */
export type Agg = Omit<ProcSample, "pid">;

export const AGG_KEYS = [
  "threads",
  "userUsec",
  "systemUsec",
  "anon",
  "file",
  "shmem",
  "pagetables",
  "swap",
  "pgfault",
  "pgmajfault",
  "rbytes",
  "wbytes",
  "rios",
  "wios",
] as const satisfies readonly (keyof Agg)[];

export function emptyAgg(): Agg {
  return { threads: 0, userUsec: 0, systemUsec: 0, anon: 0, file: 0, shmem: 0, pagetables: 0, swap: 0, pgfault: 0, pgmajfault: 0, rbytes: 0, wbytes: 0, rios: 0, wios: 0 };
}

export function addAgg(into: Agg, from: Agg): void {
  for (const k of AGG_KEYS) into[k] += from[k];
}

/** Kernel stack per task (THREAD_SIZE on x86-64, 16 KiB): the estimate behind `kernel_stack`. */
export const THREAD_STACK_BYTES = 16384;

/** memory.current of an aggregate: anon + file + kernel (stacks + page tables), in bytes. */
export function memoryCurrent(a: Agg): number {
  return a.anon + a.file + a.threads * THREAD_STACK_BYTES + a.pagetables;
}

/** A block device's counters from /proc/diskstats. */
export interface DiskSample {
  device: string; // MAJ:MIN
  rbytes: number;
  wbytes: number;
  rios: number;
  wios: number;
  dbytes: number;
  dios: number;
}

/** System-wide figures for the root cgroup (the kernel's root cgroup reports the whole system). */
export interface SystemSample {
  /** From the `cpu` line of /proc/stat (µs); undefined where /proc/stat is missing. */
  cpu?: { userUsec: number; niceUsec: number; systemUsec: number };
  /** /proc/meminfo in bytes (kB × 1024), keyed by its names (`AnonPages`, `Cached`, ...). */
  meminfo: Record<string, number>;
  /** /proc/vmstat counters (`pgfault`, `pgmajfault`, ...). */
  vmstat: Record<string, number>;
  /** /proc/diskstats whole devices with activity; empty where missing (gVisor). */
  disks: DiskSample[];
}

export function emptySystem(): SystemSample {
  return { meminfo: {}, vmstat: {}, disks: [] };
}
