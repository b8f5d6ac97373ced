/**
 * The state file (`<stateDir>/state.json`): what `up` brought up, read by `status`, `exec`,
 * `soak` and `down` (possibly from other processes). Written atomically (temp file + rename).
 */
import { readFileSync } from "node:fs";
import { release as osRelease } from "node:os";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isPidAlive } from "@hybrid/k3s-launcher/process";
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
  /**
   * Where those pids mean something: the pid namespace and boot id of the `up` process
   * ({@link processDomain}). A state written inside a gVisor sandbox and read on the host (the
   * 9p root shares the state dir) names pids of another world, which must not be judged dead.
   */
  domain: string;
  startedAt: string;
  plan: Plan;
  layers: LayerRecord[];
}

export const DEFAULT_STATE_DIR = "/var/lib/hybrid";

/** The state dir (absolute) from the flag, `HYBRID_STATE_DIR`, the config, or the default. */
export function resolveStateDir(flag?: string, config?: string): string {
  return resolve(flag ?? process.env.HYBRID_STATE_DIR ?? config ?? DEFAULT_STATE_DIR);
}

export function stateFilePath(stateDir: string): string {
  return join(stateDir, "state.json");
}

/**
 * Where pids are comparable: the kernel release, the boot id and the start time of this pid
 * namespace's init (pid 1). Differs between the host and a gVisor sandbox (4.4.0, no boot id),
 * between containers, and across reboots; the same for every process of one namespace.
 * (`/proc/self/ns/pid` is not used: gVisor gives each process its own inode number there.)
 */
export function processDomain(): string {
  const read = (f: string) => {
    try {
      return readFileSync(f, "utf8").trim();
    } catch {
      return "-";
    }
  };
  const init = read("/proc/1/stat");
  const initStart = init === "-" ? "-" : (init.slice(init.lastIndexOf(")") + 2).split(" ")[19] ?? "-");
  return `kernel ${read("/proc/sys/kernel/osrelease") === "-" ? osRelease() : read("/proc/sys/kernel/osrelease")} boot ${read("/proc/sys/kernel/random/boot_id")} init ${initStart}`;
}

/** A state file that cannot be parsed. */
export class CorruptStateError extends Error {
  constructor(
    readonly file: string,
    options: { cause: unknown },
  ) {
    super(`${file}: corrupt state file (${(options.cause as Error).message}); \`hybrid down\` removes what it can find of the stack by its state dir`, options);
    this.name = "CorruptStateError";
  }
}

/** Reads the state file; undefined when there is none. @throws CorruptStateError on a corrupt file. */
export async function readState(stateDir: string): Promise<StackState | undefined> {
  let text: string;
  const file = stateFilePath(stateDir);
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  let s: StackState;
  try {
    s = JSON.parse(text) as StackState;
  } catch (cause) {
    throw new CorruptStateError(file, { cause });
  }
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

/**
 * Whether a pid names a live process: signal 0 reaches it and it is not a zombie (state Z/X in
 * /proc/<pid>/stat: it has exited and only waits to be reaped, e.g. by a pid-1 that never reaps).
 * The launcher's `isPidAlive`, imported from its light `./process` entry so the CLI's start-up
 * does not load the launcher's index (and dockerode) for every command.
 */
export function pidAlive(pid: number | undefined): boolean {
  return pid !== undefined && pid > 0 && isPidAlive(pid);
}
