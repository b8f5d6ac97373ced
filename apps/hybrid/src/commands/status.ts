import { loadConfig } from "../config.js";
import type { LayerName } from "../doctor/index.js";
import { LAYERS, type ProbeResult } from "../layers/index.js";
import type { Plan } from "../plan.js";
import { readState, resolveStateDir, type StackState } from "../state.js";

export interface StatusOptions {
  json?: boolean;
  config?: string;
  stateDir?: string;
}

/** Runs every layer's probes against a recorded stack. */
export async function checkStack(state: StackState): Promise<ProbeResult[]> {
  const out: ProbeResult[] = [];
  for (const rec of state.layers) out.push(...(await LAYERS[rec.name as LayerName].check(rec.data, state.plan as Plan)));
  return out;
}

/**
 * `hybrid status [--json]`: what is up and whether each layer answers its probes.
 * @returns 0 when up and healthy, 1 when a probe fails, 3 when not up (systemctl's "inactive").
 */
export default async function status(opts: StatusOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const stateDir = resolveStateDir(opts.stateDir, config.stateDir);
  const state = await readState(stateDir);
  if (!state) {
    if (opts.json) process.stdout.write(JSON.stringify({ up: false, stateDir }, null, 2) + "\n");
    else process.stdout.write(`hybrid is not up (no state in ${stateDir})\n`);
    return 3;
  }
  const { stackCondition } = await import("../stack.js");
  if (stackCondition(state) === "foreign") {
    const msg = `hybrid: the state in ${stateDir} was written in another pid namespace or boot (${state.domain}), e.g. inside or outside a gVisor sandbox sharing this directory; its processes cannot be probed from here`;
    if (opts.json) process.stdout.write(JSON.stringify({ up: state.status === "up", healthy: false, foreign: true, domain: state.domain, stateDir }, null, 2) + "\n");
    else process.stdout.write(msg + "\n");
    return 1;
  }
  const probes = await checkStack(state);
  const healthy = state.status === "up" && probes.every((p) => p.ok);
  if (opts.json) {
    process.stdout.write(
      JSON.stringify(
        {
          up: state.status === "up",
          healthy,
          stateDir,
          startedAt: state.startedAt,
          profile: state.plan.profile,
          layers: state.layers.map((l) => ({ name: l.name, readyAt: l.readyAt, upMs: l.upMs, data: l.data, probes: probes.filter((p) => p.layer === l.name) })),
        },
        null,
        2,
      ) + "\n",
    );
  } else {
    process.stdout.write(`hybrid: ${state.status}${healthy ? ", healthy" : ", UNHEALTHY"} (${state.plan.profile}; since ${state.startedAt}; state ${stateDir})\n`);
    for (const l of state.layers) {
      process.stdout.write(`  ${l.name}\n`);
      for (const p of probes.filter((x) => x.layer === l.name)) process.stdout.write(`    ${p.ok ? "ok  " : "FAIL"} ${p.probe.padEnd(16)} ${p.detail} (${p.ms} ms)\n`);
    }
  }
  return healthy ? 0 : 1;
}
