/**
 * Failure paths of `hybrid up` (issue 2, point 4), as one process on the host or inside runsc:
 * a runtime that fails to start (the layers already up come down in reverse and the original
 * error is reported), SIGINT in the middle of `up`, and an invalid config file.
 * Prints one JSON line; the vitest side asserts.  argv: BASE_DIR
 */
import { execa } from "execa";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HYBRID_BIN, hybrid, mountPoints, processes } from "./lib.js";

const base = process.argv[2]!;
const out: Record<string, unknown> = {};

// 1. The runtime layer fails: `/bin/false` as the k3s binary exits at once.
{
  const stateDir = join(base, "fail");
  const before = mountPoints();
  const r = await hybrid(stateDir, ["up", "--k3s-bin", "/bin/false"]);
  out.failingRuntime = {
    exitCode: r.exitCode,
    stderr: r.stderr.slice(-4000),
    stdout: r.stdout.slice(-2000),
    mountsAdded: mountPoints().filter((m) => !before.includes(m)),
    stateDirLeft: existsSync(stateDir),
  };
}

// 2. SIGINT while `up` runs: wait until the first layer is recorded, then interrupt.
{
  const stateDir = join(base, "sigint");
  const before = mountPoints();
  const child = execa(process.execPath, [HYBRID_BIN, "--state-dir", stateDir, "up"], { reject: false, env: { CI: "1" }, stdin: "ignore" });
  let layersAtSignal = 0;
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    try {
      const s = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as { layers: unknown[] };
      if (s.layers.length >= 1) {
        layersAtSignal = s.layers.length;
        break;
      }
    } catch {
      /* not written yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGINT");
  const r = await child;
  out.sigint = {
    layersAtSignal,
    exitCode: r.exitCode,
    signal: r.signal,
    stderr: String(r.stderr).slice(-3000),
    mountsAdded: mountPoints().filter((m) => !before.includes(m)),
    stateDirLeft: existsSync(stateDir),
  };
}

// 3. An invalid config file: the error names the field and the file, and nothing is created.
{
  const stateDir = join(base, "badconfig");
  const file = join(base, "bad.yaml");
  writeFileSync(file, "cni:\n  subnet: 10.42.0.0\n");
  const r = await hybrid(stateDir, ["--config", file, "up"]);
  out.badConfig = { exitCode: r.exitCode, stderr: r.stderr, file, stateDirLeft: existsSync(stateDir) };
}

// 4. `down` and `status` with nothing up.
{
  const stateDir = join(base, "nothing");
  out.downNothing = (await hybrid(stateDir, ["down"])).exitCode;
  out.statusNothing = (await hybrid(stateDir, ["status"])).exitCode;
}
// 5. `up` killed with SIGKILL while the runtime starts (no rollback possible), then `down`:
//    the sweep by state dir must stop and unmount what no record names yet.
{
  const stateDir = join(base, "sigkill");
  const before = mountPoints();
  const child = execa(process.execPath, [HYBRID_BIN, "--state-dir", stateDir, "up"], { reject: false, env: { CI: "1" }, stdin: "ignore" });
  let layersAtKill = 0;
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    try {
      const s = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as { layers: unknown[] };
      if (s.layers.length >= 3) {
        layersAtKill = s.layers.length;
        break;
      }
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await child;
  const down = await hybrid(stateDir, ["down"]);
  out.sigkill = {
    layersAtKill,
    downExit: down.exitCode,
    downStderr: down.stderr.slice(-2000),
    mountsAdded: mountPoints().filter((m) => !before.includes(m)),
    processesLeft: [...processes()].filter(([, cmd]) => cmd.includes(stateDir + "/")).map(([pid, cmd]) => `${pid} ${cmd}`),
    stateDirLeft: existsSync(stateDir),
  };
}

// 6. Two `up`s at once on one state dir: one brings the stack up, the other is refused.
{
  const stateDir = join(base, "twice");
  const [a, b] = await Promise.all([hybrid(stateDir, ["up"]), hybrid(stateDir, ["up"])]);
  const status = await hybrid(stateDir, ["status"]);
  const down = await hybrid(stateDir, ["down"]);
  out.concurrentUp = {
    exits: [a.exitCode, b.exitCode].sort(),
    messages: [a, b].map((r) => r.stderr + r.stdout).join("\n").slice(-3000),
    statusExit: status.exitCode,
    downExit: down.exitCode,
    stateDirLeft: existsSync(stateDir),
  };
}
await execa("true");
process.stdout.write(JSON.stringify(out) + "\n");
