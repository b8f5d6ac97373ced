/**
 * Parsers for the values written to cgroup v2 interface files, with the kernel's rules
 * (kernel/cgroup/cgroup.c, mm/memcontrol.c, kernel/sched/core.c, kernel/cgroup/pids.c,
 * kernel/cgroup/cpuset.c, block/blk-throttle.c). Every parser throws {@link CgroupError}
 * (`EINVAL` or `ERANGE`, as the kernel does) and has no side effects.
 */
import { CgroupError } from "./errors.js";

/** The page size the kernel rounds memory limits down to (bytes). */
export const PAGE_SIZE = 4096;
/** "max" for memory limits: PAGE_COUNTER_MAX pages. Stored as `null`. */
export type Limit = number | null;

/** Kernel `strstrip`: the written buffer without leading/trailing whitespace (the `\n` of `echo`). */
export function strip(value: string): string {
  return value.trim();
}

function parseUint(tok: string, what: string): number {
  // kstrtoull / simple_strtoull with base 0: decimal, 0x hex, 0 octal.
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(tok)) n = parseInt(tok.slice(2), 16);
  else if (/^0[0-7]+$/.test(tok)) n = parseInt(tok.slice(1), 8);
  else if (/^\+?[0-9]+$/.test(tok)) n = Number(tok);
  else throw new CgroupError("EINVAL", `${what}: "${tok}" is not a number`);
  if (!Number.isSafeInteger(n)) throw new CgroupError("ERANGE", `${what}: "${tok}" is out of range`);
  return n;
}

/** kstrtoint-like signed integer. @throws CgroupError EINVAL */
export function parseInt10(value: string, what: string): number {
  const tok = strip(value);
  if (!/^[+-]?[0-9]+$/.test(tok)) throw new CgroupError("EINVAL", `${what}: "${tok}" is not an integer`);
  const n = Number(tok);
  if (!Number.isSafeInteger(n)) throw new CgroupError("ERANGE", `${what}: "${tok}" is out of range`);
  return n;
}

/**
 * `memparse` as used by `page_counter_memparse`: `max`, or bytes with an optional K/M/G/T/P/E
 * suffix (powers of 1024, either case); rounded down to whole pages like the kernel reports them.
 * @returns bytes (a multiple of {@link PAGE_SIZE}) or `null` for `max`.
 * @throws CgroupError EINVAL on anything else (trailing garbage, negative numbers, empty).
 */
export function parseMemory(value: string, what: string): Limit {
  const tok = strip(value);
  if (tok === "max") return null;
  const m = /^(0x[0-9a-f]+|[0-9]+)([kmgtpe]?)$/i.exec(tok);
  if (!m) throw new CgroupError("EINVAL", `${what}: "${tok}" is not "max" or a byte count`);
  const base = parseUint(m[1]!, what);
  const shift = { "": 0, k: 10, m: 20, g: 30, t: 40, p: 50, e: 60 }[m[2]!.toLowerCase() as "" | "k"]!;
  const bytes = base * 2 ** shift;
  if (!Number.isSafeInteger(bytes)) return null; // beyond PAGE_COUNTER_MAX the kernel clamps to max
  return Math.floor(bytes / PAGE_SIZE) * PAGE_SIZE;
}

/** Renders a memory limit as the kernel does (`max` or bytes). */
export function formatLimit(v: Limit): string {
  return v === null ? "max" : String(v);
}

/** Upper bound of `pids.max` (PID_MAX_LIMIT, include/linux/threads.h). */
export const PIDS_MAX_LIMIT = 4 * 1024 * 1024;

/** `pids.max`: `max` or 0..PID_MAX_LIMIT. @throws CgroupError EINVAL */
export function parsePidsMax(value: string): Limit {
  const tok = strip(value);
  if (tok === "max") return null;
  const n = parseInt10(tok, "pids.max");
  if (n < 0 || n >= PIDS_MAX_LIMIT) throw new CgroupError("EINVAL", `pids.max: ${n} out of range 0..${PIDS_MAX_LIMIT - 1}`);
  return n;
}

/** Bounds of cpu.max (kernel/sched/core.c: min_cfs_quota_period 1 ms, max_cfs_quota_period 1 s). */
const CFS_PERIOD_MIN = 1000;
const CFS_PERIOD_MAX = 1_000_000;
const CFS_QUOTA_MIN = 1000;

/**
 * `cpu.max`: `"$MAX $PERIOD"` or `"$MAX"` (period kept), MAX = `max` or µs ≥ 1000, PERIOD 1000..1000000 µs.
 * @returns `{ quota: null|µs, period: µs }`. @throws CgroupError EINVAL
 */
export function parseCpuMax(value: string, currentPeriod: number): { quota: number | null; period: number } {
  const toks = strip(value).split(/\s+/).filter(Boolean);
  if (toks.length < 1 || toks.length > 2) throw new CgroupError("EINVAL", `cpu.max: expected "$MAX [$PERIOD]", got "${strip(value)}"`);
  const period = toks.length === 2 ? parseUint(toks[1]!, "cpu.max period") : currentPeriod;
  let quota: number | null;
  if (toks[0] === "max") quota = null;
  else quota = parseUint(toks[0]!, "cpu.max quota");
  if (period < CFS_PERIOD_MIN || period > CFS_PERIOD_MAX) throw new CgroupError("EINVAL", `cpu.max: period ${period} outside ${CFS_PERIOD_MIN}..${CFS_PERIOD_MAX}`);
  if (quota !== null && quota < CFS_QUOTA_MIN) throw new CgroupError("EINVAL", `cpu.max: quota ${quota} below ${CFS_QUOTA_MIN}`);
  return { quota, period };
}

/** Scheduler nice-to-weight table (kernel/sched/core.c sched_prio_to_weight), nice -20..19. */
const PRIO_TO_WEIGHT = [
  88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991,
  1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
];

/** `cpu.weight.nice` → `cpu.weight` as the kernel converts (cpu_weight_nice_write_s64). */
export function niceToWeight(nice: number): number {
  return Math.round((PRIO_TO_WEIGHT[nice + 20]! * 100) / 1024);
}

/** `cpu.weight` → the closest nice value (cpu_weight_nice_read_s64). */
export function weightToNice(weight: number): number {
  const w = Math.round((weight * 1024) / 100);
  let best = 0;
  let bestDiff = Infinity;
  for (let i = 0; i < PRIO_TO_WEIGHT.length; i++) {
    const d = Math.abs(PRIO_TO_WEIGHT[i]! - w);
    if (d < bestDiff) {
      bestDiff = d;
      best = i - 20;
    }
  }
  return best;
}

/**
 * A cpu/mem list (`0-3,5`) as the kernel's `cpulist_parse`. Empty string is the empty set.
 * @returns sorted unique ids. @throws CgroupError EINVAL
 */
export function parseList(value: string, what: string): number[] {
  const tok = strip(value);
  if (tok === "") return [];
  const out = new Set<number>();
  for (const part of tok.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new CgroupError("EINVAL", `${what}: "${tok}" is not a list like 0-3,5`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 1 << 16) throw new CgroupError("EINVAL", `${what}: bad range "${part}"`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

/** Renders ids as the kernel's `%*pbl` list format (`0-3,5`). */
export function formatList(ids: readonly number[]): string {
  const s = [...ids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(j === i ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** A block device `MAJ:MIN`. @throws CgroupError EINVAL (ENODEV in the kernel for unknown devices is not checked). */
export function parseDevice(tok: string, what: string): string {
  if (!/^\d+:\d+$/.test(tok)) throw new CgroupError("EINVAL", `${what}: "${tok}" is not MAJ:MIN`);
  return tok;
}
