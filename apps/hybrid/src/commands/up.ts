import { existsSync } from "node:fs";
import { loadConfig } from "../config.js";
import { formatFindings, runDoctor } from "../doctor/index.js";
import { CliError } from "../output.js";
import { buildPlan } from "../plan.js";
import { bringUp, stackAlive, tearDown } from "../stack.js";
import { readState, resolveStateDir } from "../state.js";

export interface UpOptions {
  config?: string;
  stateDir?: string;
  k3sBin?: string;
  dryRun?: boolean;
}

/**
 * `hybrid up [--config FILE] [--k3s-bin PATH]`: doctor → plan → layers up in order.
 * A second `up` while up says so and changes nothing (exit 0). A stale state (its processes gone)
 * is cleaned up first.
 * @returns exit code 0 when the stack is up.
 * @throws the original error of the failing layer, after rolling back the ones already up.
 */
export default async function up(opts: UpOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const stateDir = resolveStateDir(opts.stateDir, config.stateDir);
  const existing = await readState(stateDir);
  if (existing && stackAlive(existing)) {
    process.stdout.write(`hybrid is already up (state ${stateDir}/state.json, since ${existing.startedAt}); nothing changed. Run \`hybrid down\` first to restart it.\n`);
    return 0;
  }
  if (existing) {
    process.stdout.write(`found a stale state in ${stateDir} whose processes are gone; cleaning it up first\n`);
    await tearDown(existing);
  }
  if (process.getuid?.() !== 0) throw new CliError("hybrid up needs root (it mounts FUSE, traces processes and starts the runtime)");
  const findings = await runDoctor(config);
  const { findK3sBinary } = await import("@hybrid/k3s-launcher");
  const k3sBin = config.runtime.kind === "containerd" ? undefined : findK3sBinary({ explicit: opts.k3sBin ?? config.runtime.k3sBin, env: process.env });
  if (opts.k3sBin && !k3sBin) throw new CliError(`--k3s-bin ${opts.k3sBin}: not an executable file`);
  const plan = buildPlan(findings, config, stateDir, k3sBin);
  if (findings.layers.cgroupfs.needed && !findings.fuse) throw new CliError(`the cgroupfs layer is needed but FUSE is not usable here: ${findings.fuseDetail}`);
  if (findings.layers["ptrace-shim"].needed && !findings.ptrace) throw new CliError(`the ptrace-shim layer is needed but ptrace is not usable here: ${findings.ptraceDetail}`);
  if (opts.dryRun) {
    process.stdout.write(formatFindings(findings) + "\n\nplan:\n" + JSON.stringify({ ...plan, findings: undefined }, null, 2) + "\n");
    return 0;
  }
  process.stdout.write(`hybrid up: ${findings.sandbox} sandbox, root ${findings.rootfs.fsType}, cgroup ${findings.cgroup.version}; layers: ${plan.order.join(" → ")}\n`);
  const t0 = performance.now();
  const state = await bringUp(plan, !existsSync(stateDir));
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  process.stdout.write(`hybrid is up in ${secs}s (${state.layers.map((l) => `${l.name} ${(l.upMs / 1000).toFixed(1)}s`).join(", ")}). State: ${stateDir}/state.json\n`);
  return 0;
}
