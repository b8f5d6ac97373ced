import { rmdir } from "node:fs/promises";
import { loadConfig } from "../config.js";
import { CliError } from "../output.js";
import { removeStackFiles, stackCondition, sweepStateDir, tearDown } from "../stack.js";
import { CorruptStateError, pidAlive, readState, resolveStateDir } from "../state.js";

export interface DownOptions {
  config?: string;
  stateDir?: string;
}

/**
 * `hybrid down`: takes the stack down in reverse order from the state file (works from any
 * process); afterwards no mount, process or file of the stack remains. With a corrupt state file
 * it still stops every process and unmounts every mount that names the state dir.
 * @returns 0 when all came down (or nothing was up).
 * @throws CliError when something could not be removed, or the state belongs to another pid
 *   namespace (a stack started inside/outside a gVisor sandbox sharing the directory).
 */
export default async function down(opts: DownOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const stateDir = resolveStateDir(opts.stateDir, config.stateDir);
  let state;
  try {
    state = await readState(stateDir);
  } catch (e) {
    if (!(e instanceof CorruptStateError)) throw e;
    process.stderr.write(`${e.message}\n`);
    const swept = await sweepStateDir(stateDir);
    for (const d of swept) process.stderr.write(`down: swept: ${d}\n`);
    await removeStackFiles(stateDir);
    await rmdir(stateDir).catch(() => undefined); // only if nothing else is in it

    process.stdout.write(`hybrid is down (swept by state dir, ${swept.length} item(s))\n`);
    return 0;
  }
  if (!state) {
    process.stdout.write(`hybrid is not up (no state in ${stateDir}); nothing to do\n`);
    return 0;
  }
  const condition = stackCondition(state);
  if (condition === "foreign") {
    throw new CliError(`${stateDir}/state.json belongs to a stack started in another pid namespace or boot (${state.domain}); run \`hybrid down\` where it was started`);
  }
  if (condition === "starting" && state.upPid !== process.pid) {
    // An `up` is still running: ask it to roll back itself (it handles SIGTERM).
    process.kill(state.upPid, "SIGTERM");
    const until = Date.now() + 120_000;
    while (pidAlive(state.upPid) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    const after = await readState(stateDir).catch(() => undefined);
    if (!after) {
      process.stdout.write("the running `hybrid up` was interrupted and rolled back\n");
      return 0;
    }
    state = after;
  }
  const t0 = performance.now();
  const problems = await tearDown(state);
  if (problems.length) throw new CliError(`hybrid down left problems:\n  ${problems.join("\n  ")}`);
  process.stdout.write(`hybrid is down in ${((performance.now() - t0) / 1000).toFixed(1)}s\n`);
  return 0;
}
