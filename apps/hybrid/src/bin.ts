#!/usr/bin/env node
/**
 * Entry point of the `hybrid` CLI. The only place that calls `process.exit`; each command is a
 * lazily imported module exporting one async function that returns an exit code.
 */
import { Command, CommanderError, Option } from "commander";
import { ConfigError } from "./config.js";
import { CliError } from "./output.js";

const program = new Command("hybrid")
  .description("Run a Kubernetes (k3s) node inside restrictive sandboxes such as gVisor")
  .option("--state-dir <dir>", "stack state directory (default $HYBRID_STATE_DIR or /var/lib/hybrid)")
  .option("-c, --config <file>", "YAML or JSON config file")
  .enablePositionalOptions()
  .showHelpAfterError();

type Global = { stateDir?: string; config?: string };
const globals = (): Global => program.opts<Global>();
let exitCode = 0;

// Usage errors exit 2 (not commander's 1, which `status` and `soak` use for a failed probe).
program.exitOverride();
/** A subcommand; each also takes --state-dir and --config after its name (winning over the global ones). */
const sub = (name: string): Command =>
  program
    .command(name)
    .option("--state-dir <dir>", "stack state directory")
    .option("-c, --config <file>", "YAML or JSON config file")
    .exitOverride();

sub("doctor")
  .description("probe the environment and say which layers are needed")
  .option("--json", "print the findings as JSON")
  .option("--log <file>", "also diagnose failure lines in a k3s/kubelet/containerd/runc log")
  .action(async (o: { json?: boolean; log?: string } & Global) => {
    exitCode = await (await import("./commands/doctor.js")).default({ ...globals(), ...defined(o) });
  });

sub("up")
  .description("bring the needed layers up in order (rolls back on failure or Ctrl-C)")
  .option("--k3s-bin <path>", "k3s binary (default $K3S_BIN or k3s on PATH; without one, containerd runs)")
  .option("--dry-run", "print the findings and the plan, change nothing")
  .action(async (o: { k3sBin?: string; dryRun?: boolean } & Global) => {
    exitCode = await (await import("./commands/up.js")).default({ ...globals(), ...defined(o) });
  });

sub("status")
  .description("show what is up and probe each layer")
  .option("--json", "print as JSON")
  .action(async (o: { json?: boolean } & Global) => {
    exitCode = await (await import("./commands/status.js")).default({ ...globals(), ...defined(o) });
  });

sub("exec")
  .description("run a command under the shim with the stack's rules")
  .argument("<command...>", "the command and its arguments (after --)")
  .passThroughOptions()
  .action(async (command: string[], o: Global) => {
    const outcome = await (await import("./commands/exec.js")).default(command, { ...globals(), ...defined(o) });
    if (outcome.signal) {
      // Die of the same signal, as a shell would report it.
      process.removeAllListeners(outcome.signal);
      process.kill(process.pid, outcome.signal);
      await new Promise((r) => setTimeout(r, 1000));
      exitCode = 128;
    } else exitCode = outcome.exitCode ?? 0;
  });

sub("soak")
  .description("probe every layer periodically and write a JSON report")
  .addOption(new Option("--duration <d>", "how long, e.g. 2m, 60m, 1h").default("60m"))
  .option("--interval <d>", "time between probe rounds (default 10s)")
  .option("--report <file>", "JSON report path (default <state-dir>/soak-report.json)")
  .option("--json", "also print the report as JSON")
  .action(async (o: { duration?: string; interval?: string; report?: string; json?: boolean } & Global) => {
    exitCode = await (await import("./commands/soak.js")).default({ ...globals(), ...defined(o) });
  });

sub("down")
  .description("take the stack down in reverse order; leaves nothing behind")
  .action(async (o: Global) => {
    exitCode = await (await import("./commands/down.js")).default({ ...globals(), ...defined(o) });
  });

/** The options that were given (commander leaves absent ones undefined). */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

try {
  await program.parseAsync(process.argv);
  process.exit(exitCode);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are not errors; anything else commander reports is a usage error.
    process.exit(e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help" ? 0 : 2);
  }
  if (e instanceof CliError || e instanceof ConfigError) {
    process.stderr.write(`hybrid: ${e.message}\n`);
    process.exit(e instanceof CliError ? e.exitCode : 2);
  }
  const err = e as Error;
  process.stderr.write(`hybrid: ${err.message}\n`);
  if (err.cause) process.stderr.write(`  cause: ${String((err.cause as Error).message ?? err.cause)}\n`);
  if (process.env.HYBRID_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}
