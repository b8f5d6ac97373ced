/**
 * The state file (`<stateDir>/state.json`): what `up` brought up, read by `status`, `exec`,
 * `soak` and `down` (possibly from other processes). Written atomically (temp file + rename).
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LayerName } from "./doctor/index.js";
import type { Plan } from "./plan.js";

export const STATE_VERSION = 1;

/** What one layer left running or created; `data` is the layer's own record. */
export interface LayerRecord {
  name: LayerName;
  /** ISO time the layer was ready. */
  readyAt: string;
  /** Milliseconds the layer took to come up. */
  upMs: number;
  data: Record<string, unknown>;
}

export interface StackState {
  version: typeof STATE_VERSION;
  /** `starting` while `up` runs, `up` once every layer is ready. */
  status: "starting" | "up";
  /** pid of the `hybrid up` process that wrote it. */
  upPid: number;
  startedAt: string;
  plan: Plan;
  layers: LayerRecord[];
}

export const DEFAULT_STATE_DIR = "/var/lib/hybrid";

/** The state dir from the flag, `HYBRID_STATE_DIR`, or the default. */
export function resolveStateDir(flag?: string, config?: string): string {
  return flag ?? process.env.HYBRID_STATE_DIR ?? config ?? DEFAULT_STATE_DIR;
}

export function stateFilePath(stateDir: string): string {
  return join(stateDir, "state.json");
}

/** Reads the state file; undefined when there is none. @throws on an unreadable or corrupt file. */
export async function readState(stateDir: string): Promise<StackState | undefined> {
  let text: string;
  try {
    text = await readFile(stateFilePath(stateDir), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  const s = JSON.parse(text) as StackState;
  if (s.version !== STATE_VERSION) throw new Error(`${stateFilePath(stateDir)}: state version ${String(s.version)} is not ${STATE_VERSION}`);
  return s;
}

export async function writeState(stateDir: string, state: StackState): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const file = stateFilePath(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + "\n");
  await rename(tmp, file);
}

export async function removeState(stateDir: string): Promise<void> {
  await rm(stateFilePath(stateDir), { force: true });
}

/** Whether a pid names a live process (signal 0). */
export function pidAlive(pid: number | undefined): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
