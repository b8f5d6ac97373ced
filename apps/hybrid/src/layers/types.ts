import type { LayerName } from "../doctor/index.js";
import type { Plan } from "../plan.js";

/** One probe of a layer (status, soak). `ms`: how long the probe took, milliseconds. */
export interface ProbeResult {
  layer: LayerName;
  probe: string;
  ok: boolean;
  ms: number;
  detail: string;
}

/** Lets a layer report progress lines while it comes up. */
export interface LayerContext {
  log(message: string): void;
}

/**
 * A layer of the stack. Each owns its bring-up, its teardown and its probes.
 * `up` returns the record saved in the state file; `down` must work from another process
 * given only that record, be idempotent, and leave no mount, process or file behind.
 */
export interface Layer {
  name: LayerName;
  title: string;
  up(plan: Plan, ctx: LayerContext, state: { layers: { name: LayerName; data: Record<string, unknown> }[] }): Promise<Record<string, unknown>>;
  down(data: Record<string, unknown>, plan: Plan): Promise<void>;
  check(data: Record<string, unknown>, plan: Plan): Promise<ProbeResult[]>;
}

/** Times an async probe; a throw becomes `ok: false` with the message. */
export async function probe(layer: LayerName, name: string, fn: () => Promise<string>): Promise<ProbeResult> {
  const t0 = performance.now();
  try {
    const detail = await fn();
    return { layer, probe: name, ok: true, ms: Math.round(performance.now() - t0), detail };
  } catch (e) {
    return { layer, probe: name, ok: false, ms: Math.round(performance.now() - t0), detail: (e as Error).message };
  }
}
