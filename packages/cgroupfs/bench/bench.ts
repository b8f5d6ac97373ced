/**
 * cgroupfs read benchmark: reads/s and p99 latency of memory.stat and cpu.stat at 1, 100 and 1,000
 * groups with live members, side by side in the same run with the kernel's cgroupfs and with LXCFS
 * (Debian lxcfs, started here on a temp dir: /proc/uptime, /proc/meminfo), plus the daemon's RSS.
 * Reads come from bench/reader.c, a separate process (open, read to EOF, close, in a loop).
 *
 *   pnpm bench            (root, needs gcc, lxcfs, /dev/fuse; build first: pnpm build)
 *   BENCH_SECONDS=1 BENCH_ROUNDS=5 BENCH_SIZES=1,100,1000 pnpm bench
 *
 * Each size runs ROUNDS interleaved rounds (LXCFS, cgroupfs, peers, one after the other) so that all
 * see the same machine load; medians are reported, and the ratio is the median of per-round ratios.
 *
 * Goals (issue 4): memory.stat at ≥1.2× LXCFS's /proc/uptime rate; ≤80 MB RSS at 1,000 groups.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { mountCgroupfs, unmountCgroupfs, type CgroupfsHandle } from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SIZES = (process.env.BENCH_SIZES ?? "1,100,1000").split(",").map(Number);
const dir = mkdtempSync(join(tmpdir(), "cgfs-bench-"));
const reader = join(dir, "reader");
const sleepers: ChildProcess[] = [];
let lxcfs: ChildProcess | undefined;
let handle: CgroupfsHandle | undefined;
const lxdir = join(dir, "lxcfs");

interface Result {
  reads: number;
  rate: number;
  p50_us: number;
  p99_us: number;
  errors: number;
}
function measure(files: string[]): Result {
  const out = execFileSync(reader, [String(SECONDS), ...files], { encoding: "utf8", maxBuffer: 1 << 20 });
  const r = JSON.parse(out) as Result;
  if (r.errors > 0 || r.reads === 0) throw new Error(`reader errors on ${files[0]}: ${out}`);
  return r;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
function rssMb(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
/** Median over rounds of each field. */
function med(rs: Result[]): Result {
  return { reads: median(rs.map((r) => r.reads)), rate: median(rs.map((r) => r.rate)), p50_us: median(rs.map((r) => r.p50_us)), p99_us: median(rs.map((r) => r.p99_us)), errors: Math.max(...rs.map((r) => r.errors)) };
}

async function main(): Promise<void> {
  execFileSync("gcc", ["-O2", "-o", reader, join(here, "reader.c")]);
  const rows: Array<{ what: string; groups: number } & Result> = [];
  const add = (what: string, r: Result, groups: number): void => {
    rows.push({ what, groups, ...r });
    console.error(`${what.padEnd(52)} ${String(groups).padStart(5)} ${r.rate.toFixed(0).padStart(8)}/s  p50 ${r.p50_us.toFixed(0).padStart(5)} µs  p99 ${r.p99_us.toFixed(0).padStart(5)} µs`);
  };

  // peers: the kernel's cgroup filesystem and LXCFS
  const kernelCpu = ["/sys/fs/cgroup/unified/cpu.stat", "/sys/fs/cgroup/cpu.stat"].find(existsSync);
  const kernelMem = ["/sys/fs/cgroup/unified/memory.stat", "/sys/fs/cgroup/memory.stat", "/sys/fs/cgroup/memory/memory.stat"].find(existsSync);
  execFileSync("mkdir", ["-p", lxdir]);
  lxcfs = spawn("lxcfs", ["-p", join(dir, "lxcfs.pid"), lxdir], { stdio: "ignore" });
  for (let i = 0; i < 100 && !existsSync(join(lxdir, "proc/uptime")); i++) await sleep(50);

  // cgroupfs with N groups, one live member each
  const mp = join(dir, "cg");
  handle = await mountCgroupfs({ mountpoint: mp, stateFile: join(dir, "state.json"), procsDir: join(dir, "procs"), logFile: join(dir, "daemon.log") });
  await writeFile(join(mp, "cgroup.subtree_control"), "+cpu +memory +pids +io");
  await mkdir(join(mp, "bench"));
  await writeFile(join(mp, "bench/cgroup.subtree_control"), "+cpu +memory +pids +io");
  let made = 0;
  const ratios: Record<string, number> = {};
  let rssAtMax = { rss: 0, hwm: 0 };
  for (const n of SIZES) {
    for (; made < n; made++) {
      const g = join(mp, `bench/g${made}`);
      await mkdir(g);
      const c = spawn("sleep", ["3600"], { stdio: "ignore" });
      sleepers.push(c);
      await writeFile(join(g, "cgroup.procs"), String(c.pid));
    }
    await sleep(1500); // at least one sample with every member
    const current = Number(readFileSync(join(mp, `bench/g0/memory.current`), "utf8"));
    if (!(current > 0)) throw new Error(`memory.current of a live group is ${current}`);
    const pick = Array.from({ length: Math.min(n, 1000) }, (_, i) => Math.floor((i * n) / Math.min(n, 1000)));
    const memFiles = pick.map((i) => join(mp, `bench/g${i}/memory.stat`));
    const cpuFiles = pick.map((i) => join(mp, `bench/g${i}/cpu.stat`));
    // Interleaved rounds: the peers and cgroupfs see the same machine load; medians are reported.
    const r: Record<string, Result[]> = { lxu: [], lxm: [], mem: [], cpu: [], kc: [], km: [] };
    const ratioRounds: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const lxu = measure([join(lxdir, "proc/uptime")]);
      const mem = measure(memFiles);
      r.lxu!.push(lxu);
      r.mem!.push(mem);
      ratioRounds.push(mem.rate / lxu.rate);
      r.cpu!.push(measure(cpuFiles));
      r.lxm!.push(measure([join(lxdir, "proc/meminfo")]));
      if (kernelCpu) r.kc!.push(measure([kernelCpu]));
      if (kernelMem) r.km!.push(measure([kernelMem]));
    }
    if (kernelCpu) add(`kernel cgroup2 ${kernelCpu}`, med(r.kc!), n);
    if (kernelMem) add(`kernel cgroupfs ${kernelMem}`, med(r.km!), n);
    add("lxcfs /proc/uptime", med(r.lxu!), n);
    add("lxcfs /proc/meminfo", med(r.lxm!), n);
    add("cgroupfs memory.stat (live accounting)", med(r.mem!), n);
    add("cgroupfs cpu.stat (live accounting)", med(r.cpu!), n);
    ratios[`memory.stat/lxcfs-uptime@${n}`] = Number(median(ratioRounds).toFixed(2));
    const rss = rssMb(handle.pid);
    if (n === Math.max(...SIZES)) rssAtMax = rss;
    console.error(`  memory.stat / LXCFS /proc/uptime (median of ${ROUNDS} interleaved rounds): ${median(ratioRounds).toFixed(2)}×; daemon RSS ${rss.rss.toFixed(1)} MB (peak ${rss.hwm.toFixed(1)} MB)`);
  }
  const topRatio = ratios[`memory.stat/lxcfs-uptime@${Math.max(...SIZES)}`]!;
  const summary = {
    seconds: SECONDS,
    rounds: ROUNDS,
    rows,
    ratios,
    rssMbAtMax: Number(rssAtMax.rss.toFixed(1)),
    goals: { readRate: topRatio >= 1.2 ? "met" : "NOT met", rss: rssAtMax.rss <= 80 ? "met" : "NOT met" },
  };
  console.error(`goals at ${Math.max(...SIZES)} groups: memory.stat ${topRatio}× LXCFS /proc/uptime (≥1.2×: ${summary.goals.readRate}); RSS ${rssAtMax.rss.toFixed(1)} MB (≤80 MB: ${summary.goals.rss})`);
  process.stdout.write(JSON.stringify(summary) + "\n");
}

async function cleanup(): Promise<void> {
  for (const s of sleepers) s.kill("SIGKILL");
  if (handle) await unmountCgroupfs({ mountpoint: handle.mountpoint, pid: handle.pid }).catch((e: Error) => console.error(e.message));
  if (lxcfs?.pid) {
    lxcfs.kill("SIGTERM");
    await new Promise((r) => lxcfs!.once("exit", r)).catch(() => undefined);
    try {
      execFileSync("fusermount", ["-u", lxdir], { stdio: "ignore" });
    } catch {
      /* already gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

main()
  .catch((e: unknown) => {
    console.error((e as Error).stack ?? e);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
