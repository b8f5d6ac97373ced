/** Shared test helpers: temp dirs under os.tmpdir(), rules files, shell scripts on a target. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, type RunResult, type Target } from "@hybrid/testbed";
import { helperPath, tracerPath, writeRulesSync, type ShimRules } from "../src/index.js";

export const SHIM = tracerPath();
export const THREADS64 = helperPath("threads64");
export const THREADS64_STATIC = helperPath("threads64-static");
export const RAWSYS = helperPath("rawsys");
export const SYSLOOP = helperPath("sysloop");

/** A fresh temp dir; call cleanup() in afterAll/afterEach. */
export function tempDir(prefix = "shim-test-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes rules into dir/name and returns the file. */
export function rulesFile(dir: string, rules: ShimRules, name = "rules.json"): string {
  const f = join(dir, name);
  writeRulesSync(f, rules);
  return f;
}

/** Shell-quotes one word. */
export const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** `hybrid-shim --rules R [--trace-log L] --` as a shell prefix. */
export function shimPrefix(rules: string, opts: { log?: string; noSeccomp?: boolean } = {}): string {
  return [q(SHIM), "--rules", q(rules), ...(opts.log ? ["--trace-log", q(opts.log)] : []), ...(opts.noSeccomp ? ["--no-seccomp"] : []), "--"].join(" ");
}

/** Runs a POSIX shell script on the target (host or a fresh gVisor sandbox). */
export function sh(target: Target, script: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(target, "/bin/sh", ["-c", script], { cwd: opts.cwd ?? tmpdir(), timeoutMs: opts.timeoutMs ?? 90_000 });
}

/** Fails with the whole output when the result is not exit 0. */
export function ok(r: RunResult): RunResult {
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}
