import { loadConfig } from "../config.js";
import { CliError } from "../output.js";
import { tearDown } from "../stack.js";
import { pidAlive, readState, resolveStateDir } from "../state.js";

export interface DownOptions {
  config?: string;
  stateDir?: string;
}

/**
 * `hybrid down`: takes the stack down in reverse order from the state file (works from any
 * process); afterwards no mount, process or file of the stack remains.
 * @returns 0 when all came down (or nothing was up), 1 when something could not be removed.
 */
export default async function down(opts: DownOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const stateDir = resolveStateDir(opts.stateDir, config.stateDir);
  const state = await readState(stateDir);
  if (!state) {
    process.stdout.write(`hybrid is not up (no state in ${stateDir}); nothing to do\n`);
    return 0;
  }
  if (state.status === "starting" && state.upPid !== process.pid && pidAlive(state.upPid)) {
    // An `up` is still running: ask it to roll back itself (it handles SIGTERM).
    process.kill(state.upPid, "SIGTERM");
    const until = Date.now() + 120_000;
    while (pidAlive(state.upPid) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    if (!(await readState(stateDir))) {
      process.stdout.write("the running `hybrid up` was interrupted and rolled back\n");
      return 0;
    }
  }
  const t0 = performance.now();
  const problems = await tearDown(state);
  if (problems.length) throw new CliError(`hybrid down left problems:\n  ${problems.join("\n  ")}`);
  process.stdout.write(`hybrid is down in ${((performance.now() - t0) / 1000).toFixed(1)}s\n`);
  return 0;
}
