import { execa } from "execa";
import { mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ShimPlan } from "../plan.js";
import { probe, type Layer } from "./types.js";

/** Runs `cmd args` under the shim with the stack's rules; resolves to stdout (trimmed). */
export async function runUnderShim(shim: { rulesFile: string }, cmd: string, args: string[]): Promise<string> {
  const { tracedArgv } = await import("@hybrid/ptrace-shim");
  const [file, argv] = tracedArgv(cmd, args, { rulesFile: shim.rulesFile });
  const r = await execa(file, argv, { reject: false, timeout: 30_000 });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(" ")} under the shim exited ${r.exitCode ?? r.signal}: ${r.stderr}`);
  return r.stdout.trim();
}

async function verify(p: { rulesFile: string; cgroupfsMount?: string }): Promise<string> {
  const root = await runUnderShim(p, "stat", ["-f", "-c", "%t", "/"]);
  if (root !== "ef53") throw new Error(`statfs("/") under the shim reads 0x${root}, not EXT4_SUPER_MAGIC 0xef53`);
  if (!p.cgroupfsMount) return "statfs(/) reads ext4";
  const cg = await runUnderShim(p, "stat", ["-f", "-c", "%t", "/sys/fs/cgroup"]);
  if (cg !== "63677270") throw new Error(`statfs("/sys/fs/cgroup") under the shim reads 0x${cg}, not CGROUP2_SUPER_MAGIC 0x63677270`);
  return "statfs(/) reads ext4, statfs(/sys/fs/cgroup) reads cgroup2";
}

/** The tracer and its rules, generated from the plan; programs run under it later. */
export const ptraceShimLayer: Layer = {
  name: "ptrace-shim",
  title: "ptrace-shim: generate the rules and check the tracer",
  async up(plan, ctx) {
    const p: ShimPlan = plan.shim!;
    const { sandboxRules, writeRules, tracerPath } = await import("@hybrid/ptrace-shim");
    const runtimeDir = join(dirname(p.rulesFile), "run");
    await mkdir(runtimeDir, { recursive: true });
    const rules = sandboxRules({
      cgroupfsMount: p.cgroupfsMount,
      procsDir: p.procsDir,
      shadowDir: p.shadowDir,
      kmsgPath: p.kmsgPath,
      unameRelease: p.unameRelease,
      // Where the tracer keeps synthesized files; a later tracer sweeps what a killed one left.
      runtimeDir,
    });
    await writeRules(p.rulesFile, rules);
    const detail = await verify(p);
    ctx.log(`${tracerPath()} with ${p.rulesFile}: ${detail}`);
    return { rulesFile: p.rulesFile, tracer: tracerPath(), shadowDir: p.shadowDir, kmsgPath: p.kmsgPath, cgroupfsMount: p.cgroupfsMount ?? null, traceLog: p.traceLog ?? null };
  },
  async down(data) {
    await rm(dirname(String(data.rulesFile)), { recursive: true, force: true });
  },
  async check(data) {
    return [
      await probe("ptrace-shim", "statfs rewrite", () =>
        verify({ rulesFile: String(data.rulesFile), cgroupfsMount: (data.cgroupfsMount as string | null) ?? undefined }),
      ),
    ];
  },
};
