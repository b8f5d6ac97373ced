/**
 * Running programs under the C tracer (`build/hybrid-shim`, built by `make -C native`).
 */
import { execa, type Options as ExecaOptions, type ResultPromise } from "execa";
import { existsSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ShimRules, writeRulesSync } from "./rules.js";

/**
 * Absolute path of the built tracer binary (`<package>/build/hybrid-shim`).
 * @throws Error when it has not been built (run `pnpm build` in packages/ptrace-shim; needs `cc` and libseccomp-dev).
 */
export function tracerPath(): string {
  const p = fileURLToPath(new URL("../build/hybrid-shim", import.meta.url));
  if (!existsSync(p)) throw new Error(`ptrace-shim tracer not built: ${p} is missing (run \`pnpm build\` in packages/ptrace-shim; needs cc and libseccomp-dev)`);
  return p;
}

/** Directory of the C test helpers built next to the tracer (threads64, rawsys). */
export function helperPath(name: string): string {
  return fileURLToPath(new URL(`../build/${name}`, import.meta.url));
}

/** Options of {@link tracedArgv}. */
export interface TracedArgvOptions {
  /** The rules file (written by {@link writeRules}). */
  rulesFile: string;
  /** Append one line per rewrite (syscall, tid, before → after) to this file. */
  traceLog?: string;
  /** Force PTRACE_SYSCALL stepping instead of the seccomp filter (for tests and comparisons). */
  noSeccomp?: boolean;
}

/**
 * The argv that runs `cmd args` under the tracer:
 * `[tracer, ["--rules", FILE, ("--trace-log", LOG,) "--", cmd, ...args]]`. The tracer's exit code
 * (or death signal) is the command's; stdio is passed through; SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/2
 * sent to the tracer are forwarded to the command.
 */
export function tracedArgv(cmd: string, args: readonly string[], opts: TracedArgvOptions): [string, string[]] {
  return [
    tracerPath(),
    [
      "--rules",
      opts.rulesFile,
      ...(opts.traceLog ? ["--trace-log", opts.traceLog] : []),
      ...(opts.noSeccomp ? ["--no-seccomp"] : []),
      "--",
      cmd,
      ...args,
    ],
  ];
}

/**
 * The argv prefix that runs a command under the tracer (`[tracer, "--rules", FILE, ..., "--"]`),
 * for launchers that take a `wrap` prefix (k3s-launcher's startContainerd/startK3s).
 */
export function tracedWrap(opts: TracedArgvOptions): string[] {
  const [file, args] = tracedArgv("", [], opts);
  return [file, ...args.slice(0, -1)];
}

/** Options of {@link spawnTraced}: `rules` (written to a temp file removed at exit) or `rulesFile`. */
export interface SpawnTracedOptions {
  rules?: ShimRules;
  rulesFile?: string;
  /** Extra environment (merged into process.env). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** execa stdio (default `inherit`). */
  stdio?: ExecaOptions["stdio"];
  /** Start in its own process group and do not keep this Node process alive (for daemons). */
  detached?: boolean;
  traceLog?: string;
  noSeccomp?: boolean;
}

/** Outcome of a traced command: `exitCode` when it exited, `signal` (e.g. `SIGTERM`) when killed. */
export interface TracedExit {
  exitCode?: number;
  signal?: string;
}

/** A command running under the tracer. `pid` is the tracer's pid (signals sent to it reach the command). */
export interface TracedProcess {
  pid: number;
  exited: Promise<TracedExit>;
  /** SIGTERM (forwarded to the command), then SIGKILL of the tracer after `graceMs` (default 5000);
   * PTRACE_O_EXITKILL then kills every tracee. Resolves once the tracer is gone. */
  stop(graceMs?: number): Promise<void>;
  /** The underlying execa subprocess (streams when `stdio` is `pipe`). */
  subprocess: ResultPromise;
}

/**
 * Starts `cmd args` under the tracer and returns at once.
 * @throws Error when neither `rules` nor `rulesFile` is given, or the tracer is not built;
 *   ShimRulesError for invalid `rules`. A tracer that cannot start makes `exited` resolve with
 *   `exitCode` undefined and `pid` -1.
 */
export function spawnTraced(cmd: string, args: readonly string[], opts: SpawnTracedOptions): TracedProcess {
  let rulesFile = opts.rulesFile;
  let tmp: string | undefined;
  if (!rulesFile) {
    if (!opts.rules) throw new Error("spawnTraced: give rules or rulesFile");
    tmp = mkdtempSync(join(tmpdir(), "hybrid-shim-rules-"));
    rulesFile = join(tmp, "rules.json");
    writeRulesSync(rulesFile, opts.rules);
  }
  const [file, argv] = tracedArgv(cmd, args, { rulesFile, traceLog: opts.traceLog, noSeccomp: opts.noSeccomp });
  const sub = execa(file, argv, {
    env: opts.env,
    cwd: opts.cwd,
    stdio: opts.stdio ?? "inherit",
    detached: opts.detached ?? false,
    reject: false,
    buffer: false,
  });
  if (opts.detached) sub.unref();
  const exited: Promise<TracedExit> = sub.then(async (r) => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    return r.signal ? { signal: r.signal } : { exitCode: r.exitCode };
  });
  let done = false;
  void exited.then(() => (done = true));
  return {
    pid: sub.pid ?? -1,
    exited,
    subprocess: sub,
    async stop(graceMs = 5000) {
      if (done) return;
      sub.kill("SIGTERM");
      const timer = setTimeout(() => sub.kill("SIGKILL"), graceMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** What {@link probePtrace} found. */
export interface PtraceProbe {
  /** A traced child ran to completion (PTRACE_SEIZE works). */
  ptrace: boolean;
  /** A SECCOMP_RET_TRACE filter produced a stop (the fast mode; otherwise PTRACE_SYSCALL fallback). */
  seccompTrace: boolean;
  detail: string;
}

/** For `hybrid doctor`: runs `hybrid-shim --probe` (traces `true` with a filter). Never throws. */
export async function probePtrace(): Promise<PtraceProbe> {
  let file: string;
  try {
    file = tracerPath();
  } catch (e) {
    return { ptrace: false, seccompTrace: false, detail: (e as Error).message };
  }
  const r = await execa(file, ["--probe"], { reject: false, timeout: 20_000, stdin: "ignore" });
  const last = String(r.stdout ?? "").trim().split("\n").pop() ?? "";
  try {
    const j = JSON.parse(last) as PtraceProbe;
    return { ptrace: j.ptrace === true, seccompTrace: j.seccompTrace === true, detail: j.detail };
  } catch {
    return { ptrace: false, seccompTrace: false, detail: `probe failed (exit ${r.exitCode ?? r.signal}): ${String(r.stderr ?? "").trim()}` };
  }
}
