/**
 * Bringing the stack up and down: the layers in plan order, rollback in reverse on failure or
 * on SIGINT/SIGTERM, and teardown from the state file (from any process).
 */
import { Listr, type ListrTask } from "listr2";
import { existsSync } from "node:fs";
import { execa } from "execa";
import { readdir, readFile, rm, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { LayerName } from "./doctor/index.js";
import { readMountinfo } from "./doctor/probes.js";
import { LAYERS } from "./layers/index.js";
import type { Plan } from "./plan.js";
import { pidAlive, processDomain, removeState, writeState, type LayerRecord, type StackState } from "./state.js";
import { CliError, plainOutput } from "./output.js";

/** Files and dirs under the state dir that the stack creates (all removed by `down`). */
const STACK_ENTRIES = ["cgroup", "cgroupfs", "cni", "shim", "runtime", "logs", "state.json", "soak-report.json", "up.lock"];

/**
 * Removes the stack's own entries from a state dir that is not ours to delete whole.
 * `keepLock`: leave `up.lock` (held by the `up` that is cleaning an old stack).
 */
export async function removeStackFiles(stateDir: string, opts: { keepLock?: boolean } = {}): Promise<void> {
  for (const e of STACK_ENTRIES) if (!(opts.keepLock && e === "up.lock")) await rm(join(stateDir, e), { recursive: true, force: true });
}

function renderer() {
  return plainOutput() ? ("simple" as const) : ("default" as const);
}

/** The pids a state records (daemons the stack started). */
export function statePids(state: StackState): number[] {
  return state.layers.map((l) => Number(l.data.pid)).filter((p) => Number.isInteger(p) && p > 0);
}

/**
 * What a recorded stack is now:
 * - `foreign`: written in another pid namespace or boot (e.g. inside a gVisor sandbox sharing this
 *   state dir over 9p, or outside it): its pids cannot be judged from here;
 * - `starting`: an `up` is still running;
 * - `interrupted`: the `up` that wrote it died before finishing (e.g. SIGKILL);
 * - `up`: finished and some recorded daemon is alive;
 * - `stale`: finished but every recorded daemon is gone.
 */
export function stackCondition(state: StackState): "foreign" | "starting" | "interrupted" | "up" | "stale" {
  if (state.domain !== undefined && state.domain !== processDomain()) return "foreign";
  if (state.status === "starting") return pidAlive(state.upPid) ? "starting" : "interrupted";
  return statePids(state).some(pidAlive) ? "up" : "stale";
}

/** Pids of this process and its ancestors (never swept). */
async function selfAndAncestors(): Promise<Set<number>> {
  const out = new Set<number>();
  let pid = process.pid;
  while (pid > 0 && !out.has(pid)) {
    out.add(pid);
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? 0);
  }
  return out;
}

/**
 * The catch-all of teardown, like k3s-killall.sh: stops every process whose command line names a
 * path under the state dir (each daemon of the stack does: mount point, rules file, config,
 * socket) and unmounts whatever is still mounted below it, deepest first. Covers what no record
 * names: a layer whose `up` was killed before it was recorded, or a corrupt state file.
 * @returns what it had to stop or unmount.
 */
export async function sweepStateDir(stateDir: string): Promise<string[]> {
  const done: string[] = [];
  const spared = await selfAndAncestors();
  const victims: number[] = [];
  for (const e of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(e) || spared.has(Number(e))) continue;
    const cmd = (await readFile(`/proc/${e}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (cmd.some((a) => a.includes(stateDir + "/"))) victims.push(Number(e));
  }
  for (const sig of ["SIGTERM", "SIGKILL"] as const) {
    for (const pid of victims) {
      try {
        process.kill(pid, sig);
        if (sig === "SIGTERM") done.push(`stopped pid ${pid}`);
      } catch {
        /* gone */
      }
    }
    const until = Date.now() + 5000;
    while (victims.some(pidAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  }
  const mounts = (await readMountinfo())
    .map((m) => m.mountPoint)
    .filter((mp) => mp === stateDir || mp.startsWith(stateDir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const mp of mounts) {
    const r = await execa("fusermount", ["-uz", mp], { reject: false });
    if (r.exitCode !== 0) await execa("umount", ["-l", mp], { reject: false });
    done.push(`unmounted ${mp}`);
  }
  return done;
}

/**
 * Brings the layers up in plan order, recording each in the state file as it becomes ready.
 * On a failure, or when SIGINT/SIGTERM arrives, the layers already up are taken down in reverse
 * and the original error is rethrown.
 * @returns the final state.
 */
export async function bringUp(plan: Plan, createdFrom: string | undefined): Promise<StackState> {
  const state: StackState = {
    version: 1,
    status: "starting",
    upPid: process.pid,
    domain: processDomain(),
    startedAt: new Date().toISOString(),
    plan: { ...plan },
    layers: [],
  };
  const recorded = state.plan as Plan & { createdStateDir?: boolean; createdFrom?: string };
  recorded.createdStateDir = createdFrom !== undefined;
  if (createdFrom !== undefined) recorded.createdFrom = createdFrom;
  await writeState(plan.stateDir, state);

  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (!interrupted) process.stderr.write(`\nhybrid up: ${sig} received; finishing the current step, then taking down what is up\n`);
    interrupted = sig;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const tasks: ListrTask[] = plan.order.map((name) => ({
      title: LAYERS[name].title,
      task: async (_ctx, task) => {
        if (interrupted) throw new Error(`interrupted by ${interrupted} before ${name}`);
        const t0 = performance.now();
        const data = await LAYERS[name].up(plan, { log: (m) => (task.output = m) }, state);
        const rec: LayerRecord = { name, readyAt: new Date().toISOString(), upMs: Math.round(performance.now() - t0), data };
        state.layers.push(rec);
        await writeState(plan.stateDir, state);
        task.title = `${LAYERS[name].title} (${(rec.upMs / 1000).toFixed(1)}s)`;
        if (interrupted) throw new Error(`interrupted by ${interrupted} after ${name}`);
      },
      rendererOptions: { persistentOutput: true },
    }));
    await new Listr(tasks, {
      concurrent: false,
      exitOnError: true,
      registerSignalListeners: false,
      renderer: renderer(),
      rendererOptions: { collapseErrors: false },
    }).run();
    state.status = "up";
    await writeState(plan.stateDir, state);
    return state;
  } catch (error) {
    process.stderr.write(`hybrid up failed: ${(error as Error).message}\nrolling back ${state.layers.length} layer(s) in reverse\n`);
    const problems = await tearDown(state);
    for (const p of problems) process.stderr.write(`rollback: ${p}\n`);
    if (interrupted) {
      // Exit as a shell reports death by that signal (130 for SIGINT, 143 for SIGTERM).
      throw new CliError((error as Error).message, 128 + (interrupted === "SIGINT" ? 2 : 15), { cause: error });
    }
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * Removes a state dir that `up` created, and the parent dirs `up` created for it (from
 * `createdFrom`, what `mkdir -p` made first, down to the state dir) while they are empty.
 */
export async function removeCreatedStateDir(stateDir: string, createdFrom: string | undefined): Promise<void> {
  await rm(stateDir, { recursive: true, force: true });
  if (!createdFrom || createdFrom === stateDir) return;
  for (let d = dirname(stateDir); d === createdFrom || d.startsWith(`${createdFrom}/`); d = dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return; // not empty (someone else's files): leave it and what is above it
    }
  }
}

/**
 * Takes every recorded layer down in reverse order, then removes the state file and the stack's
 * files (the whole state dir when `up` created it). Keeps going past a failing layer.
 * @returns the problems met (empty when all went well).
 */
export async function tearDown(state: StackState, opts: { quiet?: boolean; keepStateDir?: boolean } = {}): Promise<string[]> {
  const problems: string[] = [];
  const plan = state.plan as Plan & { createdStateDir?: boolean; createdFrom?: string };
  const reversed = [...state.layers].reverse();
  const tasks: ListrTask[] = reversed.map((rec) => ({
    title: `${rec.name}: down`,
    task: async () => {
      try {
        await LAYERS[rec.name as LayerName].down(rec.data, plan);
      } catch (e) {
        problems.push(`${rec.name}: ${(e as Error).message}`);
        throw e;
      }
    },
  }));
  if (tasks.length) {
    await new Listr(tasks, { concurrent: false, exitOnError: false, registerSignalListeners: false, renderer: opts.quiet ? "silent" : renderer() })
      .run()
      .catch(() => undefined);
  }
  for (const d of await sweepStateDir(plan.stateDir)) if (!opts.quiet) process.stderr.write(`down: swept: ${d}\n`);
  await removeState(plan.stateDir);
  // Never delete through a mount that is still there (rm -r would walk into the FUSE tree).
  const stillMounted = (await readMountinfo()).filter((m) => m.mountPoint === plan.stateDir || m.mountPoint.startsWith(plan.stateDir + "/"));
  if (stillMounted.length) {
    problems.push(`still mounted: ${stillMounted.map((m) => m.mountPoint).join(", ")}; files under ${plan.stateDir} left in place`);
    return problems;
  }
  if (plan.createdStateDir && !opts.keepStateDir) {
    await removeCreatedStateDir(plan.stateDir, plan.createdFrom);
  } else {
    await removeStackFiles(plan.stateDir, { keepLock: opts.keepStateDir });
  }
  if (existsSync(join(plan.stateDir, "state.json"))) problems.push("state file still present");
  return problems;
}
