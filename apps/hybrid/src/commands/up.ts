import { constants, existsSync, statSync } from "node:fs";
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { loadConfig } from "../config.js";
import { formatFindings, runDoctor } from "../doctor/index.js";
import { CliError } from "../output.js";
import { buildPlan } from "../plan.js";
import { bringUp, removeCreatedStateDir, stackCondition, tearDown } from "../stack.js";
import { pidAlive, readState, resolveStateDir } from "../state.js";

export interface UpOptions {
  config?: string;
  stateDir?: string;
  k3sBin?: string;
  dryRun?: boolean;
}

/**
 * Takes `<stateDir>/up.lock` (exclusive create, holding our pid) so two `up`s cannot interleave.
 * A lock whose pid is dead is taken over.
 * @returns a release function.
 * @throws CliError when another live `hybrid up` holds it.
 */
async function lockStateDir(stateDir: string): Promise<() => Promise<void>> {
  const file = join(stateDir, "up.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await fh.write(`${process.pid}\n`);
      await fh.close();
      return () => rm(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const holder = Number((await readFile(file, "utf8").catch(() => "")).trim());
      if (holder && holder !== process.pid && pidAlive(holder)) {
        throw new CliError(`another \`hybrid up\` (pid ${holder}) is running on ${stateDir}; nothing changed`);
      }
      await rm(file, { force: true });
    }
  }
  throw new CliError(`cannot take ${file}`);
}

/**
 * `hybrid up [--config FILE] [--k3s-bin PATH]`: doctor → plan → layers up in order.
 * A second `up` while up says so and changes nothing (exit 0); a concurrent one is refused.
 * A stale or interrupted state (its `up` killed, or its processes gone) is cleaned up first.
 * @returns exit code 0 when the stack is up.
 * @throws the original error of the failing layer, after rolling back the ones already up.
 */
export default async function up(opts: UpOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const stateDir = resolveStateDir(opts.stateDir, config.stateDir);
  if (existsSync(stateDir) && !statSync(stateDir).isDirectory()) {
    throw new CliError(`--state-dir ${stateDir} exists and is not a directory`, 2);
  }
  if (process.getuid?.() !== 0) throw new CliError("hybrid up needs root (it mounts FUSE, traces processes and starts the runtime)");
  // the first directory mkdir -p made (the state dir or an ancestor): down removes what up made
  const createdFrom = await mkdir(stateDir, { recursive: true });
  const createdStateDir = createdFrom !== undefined;
  let release: (() => Promise<void>) | undefined;
  try {
    release = await lockStateDir(stateDir);
  } catch (e) {
    if (createdStateDir) await removeCreatedStateDir(stateDir, createdFrom).catch(() => undefined);
    throw e;
  }
  try {
    const existing = await readState(stateDir);
    if (existing) {
      const condition = stackCondition(existing);
      if (condition === "up" || condition === "starting") {
        process.stdout.write(`hybrid is already up (state ${stateDir}/state.json, since ${existing.startedAt}); nothing changed. Run \`hybrid down\` first to restart it.\n`);
        return 0;
      }
      if (condition === "foreign") {
        throw new CliError(
          `${stateDir}/state.json belongs to a stack started in another pid namespace or boot (${existing.domain}), e.g. inside or outside a gVisor sandbox sharing this directory; nothing changed. Use another --state-dir, or run \`hybrid down\` where it was started.`,
        );
      }
      process.stdout.write(`found ${condition === "interrupted" ? "an interrupted" : "a stale"} stack in ${stateDir}; cleaning it up first\n`);
      const problems = await tearDown(existing, { keepStateDir: true });
      if (problems.length) throw new CliError(`could not clean up the previous stack:\n  ${problems.join("\n  ")}`);
    }
    const findings = await runDoctor(config);
    const { findK3sBinary } = await import("@hybrid/k3s-launcher");
    let k3sBin: string | undefined;
    try {
      k3sBin = config.runtime.kind === "containerd" ? undefined : findK3sBinary({ explicit: opts.k3sBin ?? config.runtime.k3sBin, env: process.env });
    } catch (e) {
      throw new CliError((e as Error).message, 2, { cause: e });
    }
    const plan = buildPlan(findings, config, stateDir, k3sBin);
    if (findings.layers.cgroupfs.needed && !findings.fuse) throw new CliError(`the cgroupfs layer is needed but FUSE is not usable here: ${findings.fuseDetail}`);
    if (findings.layers["ptrace-shim"].needed && !findings.ptrace) throw new CliError(`the ptrace-shim layer is needed but ptrace is not usable here: ${findings.ptraceDetail}`);
    if (opts.dryRun) {
      process.stdout.write(formatFindings(findings) + "\n\nplan:\n" + JSON.stringify({ ...plan, findings: undefined }, null, 2) + "\n");
      return 0;
    }
    process.stdout.write(`hybrid up: ${findings.sandbox} sandbox, root ${findings.rootfs.fsType}, cgroup ${findings.cgroup.version}; layers: ${plan.order.join(" → ")}\n`);
    const t0 = performance.now();
    const state = await bringUp(plan, createdFrom);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    process.stdout.write(`hybrid is up in ${secs}s (${state.layers.map((l) => `${l.name} ${(l.upMs / 1000).toFixed(1)}s`).join(", ")}). State: ${stateDir}/state.json\n`);
    return 0;
  } finally {
    await release();
    // A dry run or a refused/failed start leaves no directory it created behind.
    if (createdStateDir && !existsSync(join(stateDir, "state.json"))) await removeCreatedStateDir(stateDir, createdFrom).catch(() => undefined);
  }
}
