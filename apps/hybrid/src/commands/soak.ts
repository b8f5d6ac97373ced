import { readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadConfig } from "../config.js";
import { diagnoseLog, type Diagnosis } from "../diagnose.js";
import { CliError, parseDuration } from "../output.js";
import { pidAlive, readState, resolveStateDir, type StackState } from "../state.js";
import { checkStack } from "./status.js";

export interface SoakOptions {
  /** e.g. `2m`, `60m` (default 60m). */
  duration?: string;
  /** Seconds between probe rounds (default from the config, 10). */
  interval?: string;
  /** Where to write the JSON report (default `<stateDir>/soak-report.json`). */
  report?: string;
  json?: boolean;
  config?: string;
  stateDir?: string;
}

/** Per-layer probe statistics in the soak report; latencies in milliseconds. */
export interface LayerSoakStats {
  probes: number;
  failures: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

/** Resource use of one daemon and its descendants over the soak: RSS in KiB, open file descriptors. */
export interface ProcessSoakStats {
  layer: string;
  pid: number;
  alive: boolean;
  rssStartKiB: number;
  rssEndKiB: number;
  rssMaxKiB: number;
  fdsStart: number;
  fdsEnd: number;
}

/** The soak's JSON report. */
export interface SoakReport {
  passed: boolean;
  /** The signal that cut the soak short, if one did (the report then covers the rounds run). */
  interrupted?: string;
  startedAt: string;
  endedAt: string;
  /** Seconds asked for and actually run. */
  durationS: number;
  elapsedS: number;
  intervalS: number;
  rounds: number;
  layers: Record<string, LayerSoakStats>;
  failures: { at: string; layer: string; probe: string; detail: string }[];
  processes: ProcessSoakStats[];
  /** Failure lines recognised in the stack's logs during the soak. */
  logDiagnoses: (Diagnosis & { file: string })[];
}

/** `pid` and all its descendants (from the ppid field of /proc/<pid>/stat). */
async function processTree(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const e of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readFile(`/proc/${e}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid) (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(Number(e));
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Resident memory of a daemon and its descendants (e.g. the tracer and the runtime under it), KiB. */
async function rssKiB(pid: number): Promise<number> {
  let total = 0;
  for (const p of await processTree(pid)) {
    const s = await readFile(`/proc/${p}/status`, "utf8").catch(() => "");
    total += Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
  }
  return total;
}

/** Open file descriptors of a daemon and its descendants. */
async function fdCount(pid: number): Promise<number> {
  let total = 0;
  for (const p of await processTree(pid)) total += (await readdir(`/proc/${p}/fd`).catch(() => [])).length;
  return total;
}

function percentile(values: number[], p: number): number {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function logSizes(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const f of await readdir(dir).catch(() => [] as string[])) out.set(f, (await stat(join(dir, f)).catch(() => ({ size: 0 }))).size);
  return out;
}

/**
 * Soaks a running stack: a probe round of every layer each interval for the duration, daemon RSS
 * and fd counts sampled each round, and the stack's logs scanned for known failure lines.
 */
export async function runSoak(
  state: StackState,
  durationS: number,
  intervalS: number,
  onRound?: (round: number, ok: boolean) => void,
  signal?: AbortSignal,
): Promise<SoakReport> {
  const startedAt = new Date();
  const logsDir = join(state.plan.stateDir, "logs");
  const logStart = await logSizes(logsDir);
  const daemons = state.layers.filter((l) => Number(l.data.pid) > 0).map((l) => ({ layer: l.name, pid: Number(l.data.pid) }));
  const procs: ProcessSoakStats[] = [];
  for (const d of daemons) {
    const rss = await rssKiB(d.pid);
    procs.push({ ...d, alive: pidAlive(d.pid), rssStartKiB: rss, rssEndKiB: rss, rssMaxKiB: rss, fdsStart: await fdCount(d.pid), fdsEnd: 0 });
  }
  const latencies = new Map<string, number[]>();
  const stats: Record<string, LayerSoakStats> = {};
  const failures: SoakReport["failures"] = [];
  const deadline = startedAt.getTime() + durationS * 1000;
  let rounds = 0;
  for (;;) {
    const roundStart = Date.now();
    const results = await checkStack(state);
    rounds++;
    for (const r of results) {
      const s = (stats[r.layer] ??= { probes: 0, failures: 0, p50Ms: 0, p95Ms: 0, maxMs: 0 });
      s.probes++;
      (latencies.get(r.layer) ?? latencies.set(r.layer, []).get(r.layer)!).push(r.ms);
      if (!r.ok) {
        s.failures++;
        failures.push({ at: new Date().toISOString(), layer: r.layer, probe: r.probe, detail: r.detail });
      }
    }
    for (const p of procs) {
      const rss = await rssKiB(p.pid);
      p.alive = pidAlive(p.pid);
      p.rssEndKiB = rss;
      p.rssMaxKiB = Math.max(p.rssMaxKiB, rss);
    }
    onRound?.(rounds, results.every((r) => r.ok));
    // Rounds every interval, and a last one at the deadline: the soak lasts the whole duration.
    if (Date.now() >= deadline || signal?.aborted) break;
    const next = Math.min(roundStart + intervalS * 1000, deadline);
    await new Promise<void>((r) => {
      const t = setTimeout(r, Math.max(0, next - Date.now()));
      signal?.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
    });
    if (signal?.aborted) break;
  }
  for (const p of procs) p.fdsEnd = await fdCount(p.pid);
  for (const [layer, ms] of latencies) Object.assign(stats[layer]!, { p50Ms: percentile(ms, 50), p95Ms: percentile(ms, 95), maxMs: Math.max(...ms) });
  const logDiagnoses: SoakReport["logDiagnoses"] = [];
  for (const [file, size] of await logSizes(logsDir)) {
    const from = logStart.get(file) ?? 0;
    if (size <= from) continue;
    const text = (await readFile(join(logsDir, file), "utf8")).slice(from);
    for (const d of diagnoseLog(text)) logDiagnoses.push({ ...d, file });
  }
  const endedAt = new Date();
  return {
    passed: !signal?.aborted && failures.length === 0 && procs.every((p) => p.alive) && logDiagnoses.length === 0,
    interrupted: signal?.aborted ? String(signal.reason) : undefined,
    startedAt: startedAt.toISOString(),
    endedAt: endedAt.toISOString(),
    durationS,
    elapsedS: Math.round((endedAt.getTime() - startedAt.getTime()) / 100) / 10,
    intervalS,
    rounds,
    layers: stats,
    failures,
    processes: procs,
    logDiagnoses,
  };
}

/**
 * `hybrid soak [--duration 60m] [--interval S] [--report FILE]`.
 * @returns 0 when every probe passed, every daemon stayed alive and no failure line appeared in
 *   the logs; 1 otherwise; 3 when the stack is not up.
 */
export default async function soak(opts: SoakOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const stateDir = resolveStateDir(opts.stateDir, config.stateDir);
  const durationS = parseDuration(opts.duration ?? "60m");
  const intervalS = opts.interval ? parseDuration(opts.interval) : config.soak.interval;
  if (durationS <= 0) throw new CliError("--duration must be positive", 2);
  if (intervalS <= 0) throw new CliError("--interval must be positive", 2);
  const state = await readState(stateDir);
  if (!state || state.status !== "up") {
    process.stderr.write(`hybrid is not up (state in ${stateDir}); run \`hybrid up\` first\n`);
    return 3;
  }
  const file = opts.report ?? join(stateDir, "soak-report.json");
  // Fail now, not after an hour, if the report cannot be written.
  await writeFile(file, JSON.stringify({ running: true, startedAt: new Date().toISOString() }) + "\n").catch((e: Error) => {
    throw new CliError(`--report ${file}: ${e.message}`, 2, { cause: e });
  });
  process.stderr.write(`hybrid soak: ${durationS}s, a probe round every ${intervalS}s\n`);
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => abort.abort(sig);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let report: SoakReport;
  try {
    report = await runSoak(state, durationS, intervalS, (n, ok) => process.stderr.write(`  round ${n}: ${ok ? "ok" : "FAILED"}\n`), abort.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  await writeFile(file, JSON.stringify(report, null, 2) + "\n");
  if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  else {
    process.stdout.write(`soak ${report.interrupted ? `INTERRUPTED by ${report.interrupted}` : report.passed ? "PASSED" : "FAILED"}: ${report.rounds} rounds in ${report.elapsedS}s, ${report.failures.length} failed probe(s); report ${file}\n`);
    for (const [layer, s] of Object.entries(report.layers)) process.stdout.write(`  ${layer.padEnd(12)} ${s.probes} probes, ${s.failures} failed, p50 ${s.p50Ms} ms, p95 ${s.p95Ms} ms\n`);
    for (const p of report.processes) process.stdout.write(`  ${p.layer.padEnd(12)} pid ${p.pid} ${p.alive ? "alive" : "DEAD"}, RSS ${p.rssStartKiB}→${p.rssEndKiB} KiB (max ${p.rssMaxKiB}), fds ${p.fdsStart}→${p.fdsEnd}\n`);
    for (const d of report.logDiagnoses) process.stdout.write(`  log ${d.file}:${d.lineNumber}: ${d.cause}: fix: ${d.fix}\n`);
  }
  if (report.interrupted) return report.interrupted === "SIGINT" ? 130 : 143;
  return report.passed ? 0 : 1;
}
