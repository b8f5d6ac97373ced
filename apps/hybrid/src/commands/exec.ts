import { spawn } from "node:child_process";
import { loadConfig } from "../config.js";
import { CliError } from "../output.js";
import { readState, resolveStateDir } from "../state.js";

export interface ExecOptions {
  config?: string;
  stateDir?: string;
}

/** How a command ended: exit code, or the signal that killed it. */
export interface ExecOutcome {
  exitCode?: number;
  signal?: NodeJS.Signals;
}

/**
 * `hybrid exec -- CMD ARGS`: runs CMD under the shim with the stack's rules, stdio inherited.
 * SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 sent to hybrid are passed to the command.
 * @returns the command's exit code, or its death signal (the entry point re-raises it).
 * @throws CliError when the stack is not up.
 */
export default async function exec(command: string[], opts: ExecOptions): Promise<ExecOutcome> {
  if (!command.length) throw new CliError("usage: hybrid exec -- CMD [ARGS...]", 125);
  const config = await loadConfig(opts.config);
  const stateDir = resolveStateDir(opts.stateDir, config.stateDir);
  const state = await readState(stateDir);
  // Our own failures use 125, as `env`, `timeout` and `docker run` do, so they cannot be taken for
  // the command's exit code; a command that cannot be found or run is 127/126 (the shim's).
  if (!state) throw new CliError(`hybrid is not up (no state in ${stateDir}); run \`hybrid up\` first`, 125);
  const shim = state.layers.find((l) => l.name === "ptrace-shim");
  let file = command[0]!;
  let args = command.slice(1);
  if (shim) {
    const { tracedArgv } = await import("@hybrid/ptrace-shim");
    [file, args] = tracedArgv(file, args, { rulesFile: String(shim.data.rulesFile) });
  } else {
    process.stderr.write("hybrid exec: the ptrace-shim layer is not part of this stack (not needed here); running the command as is\n");
  }
  const child = spawn(file, args, { stdio: "inherit" });
  const forwarded: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  for (const s of forwarded) process.on(s, forward);
  try {
    return await new Promise<ExecOutcome>((resolve, reject) => {
      child.on("error", (e) => reject(new CliError(`cannot run ${command[0]}: ${e.message}`, 127, { cause: e })));
      child.on("exit", (code, signal) => resolve(signal ? { signal } : { exitCode: code ?? 0 }));
    });
  } finally {
    for (const s of forwarded) process.off(s, forward);
  }
}
