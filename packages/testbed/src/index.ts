/**
 * @hybrid/testbed: run commands on the plain host and inside a real gVisor sandbox (runsc),
 * with the sandbox profiles this project is tested against (see shared/facts/testbed-gvisor.md).
 *
 * Every `runsc do` call starts a fresh sandbox that ends when the command exits, so a test that
 * needs several steps against the same mounts or processes must run them as one scenario script
 * (a single command) inside the sandbox and report what it saw, e.g. as JSON on stdout.
 */
import { execa, type Options as ExecaOptions } from "execa";
import { accessSync, constants, cpSync, mkdirSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";

/** A gVisor profile: the runsc global flags and the `do` subcommand flags. */
export interface GvisorProfile {
  /** Human name used in test titles. */
  name: string;
  /** Flags placed before `do`. */
  globalFlags: string[];
  /** Flags placed after `do`, before `--`. */
  doFlags: string[];
}

/**
 * The profiles tried on these machines (shared/facts/testbed-gvisor.md):
 * - `9p-no-cgroups`: root is the host root over 9p, no cgroup filesystem, no network,
 *   read-only `/proc/sys`, no `/dev/kmsg`. The profile the product is built for.
 * - `gvisor-cgroupfs`: the same with gVisor's own partial cgroup v1 (`cpu`, `memory`).
 * - `overlay-root`: runsc's default memory overlay over the root (statfs of `/` reads overlayfs).
 */
export const GVISOR_PROFILES = {
  "9p-no-cgroups": {
    name: "gvisor 9p root, no cgroups",
    globalFlags: ["--network=none", "--overlay2=none"],
    doFlags: ["-force-overlay=false"],
  },
  "gvisor-cgroupfs": {
    name: "gvisor 9p root, gVisor cgroupfs v1",
    globalFlags: ["--network=none", "--overlay2=none", "--cgroupfs"],
    doFlags: ["-force-overlay=false"],
  },
  "overlay-root": {
    name: "gvisor overlay root",
    globalFlags: ["--network=none"],
    doFlags: [],
  },
} as const satisfies Record<string, GvisorProfile>;

export type GvisorProfileName = keyof typeof GVISOR_PROFILES;

/** Full path of an executable found on PATH, or undefined. */
export function which(name: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** True when the process runs as root (uid 0). Tests that mount, trace or start runsc need it. */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * Path of the runsc binary.
 * @throws Error when runsc is not installed: tests must fail, not skip, where CI is expected to
 *   provide it (`apt-get install runsc`).
 */
export function runscPath(): string {
  const found = which("runsc") ?? which("runsc", "/usr/bin:/usr/sbin:/usr/local/bin");
  if (!found) throw new Error("runsc not found on PATH: install Debian's `runsc` package (apt-get install -y runsc)");
  return found;
}

/**
 * The argv that runs `cmd args` inside a fresh gVisor sandbox with `profile`.
 * @returns `[file, args]` to hand to execa/spawn.
 */
export function gvisorArgv(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; profile?: GvisorProfileName } = {},
): [string, string[]] {
  const profile = GVISOR_PROFILES[opts.profile ?? "9p-no-cgroups"];
  return [
    runscPath(),
    [...profile.globalFlags, "do", ...profile.doFlags, "-cwd", opts.cwd ?? process.cwd(), "--", cmd, ...args],
  ];
}

/** Where a command runs: the plain host or inside a gVisor sandbox of a given profile. */
export interface Target {
  /** `host` or the gVisor profile's name; used in test titles. */
  name: string;
  kind: "host" | "gvisor";
  profile?: GvisorProfileName;
}

export const HOST: Target = { name: "host", kind: "host" };
export const GVISOR: Target = { name: GVISOR_PROFILES["9p-no-cgroups"].name, kind: "gvisor", profile: "9p-no-cgroups" };
/** The two targets every layer is tested on. Use with `describe.each(TARGETS)`. */
export const TARGETS: readonly Target[] = [HOST, GVISOR];

/** Result of {@link run}: exit code (or undefined when killed by a signal), output as text. */
export interface RunResult {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  durationMs: number;
}

/**
 * Runs `cmd args` on `target` and waits for it. Never throws on a non-zero exit: the result says.
 * @param opts.timeoutMs kill (SIGTERM, then SIGKILL after 5 s) after this many milliseconds.
 */
export async function run(
  target: Target,
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const [file, argv] =
    target.kind === "host" ? [cmd, [...args]] : gvisorArgv(cmd, args, { cwd: opts.cwd, profile: target.profile });
  const options: ExecaOptions = {
    cwd: opts.cwd,
    env: opts.env,
    input: opts.input,
    reject: false,
    timeout: opts.timeoutMs,
    forceKillAfterDelay: 5000,
    stdin: opts.input === undefined ? "ignore" : "pipe",
  };
  const started = Date.now();
  const r = await execa(file, argv, options);
  return {
    exitCode: r.exitCode,
    signal: r.signal,
    stdout: String(r.stdout ?? ""),
    stderr: String(r.stderr ?? ""),
    durationMs: Date.now() - started,
  };
}

/**
 * Runs a TypeScript or JavaScript scenario script with Node (through tsx for `.ts`) on `target`
 * and parses the last line of its stdout as JSON.
 * @throws Error with the script's stderr when it exits non-zero or prints no JSON line.
 */
export async function runScenario<T = unknown>(
  target: Target,
  script: string,
  args: readonly string[] = [],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<T> {
  const nodeArgs = script.endsWith(".ts") ? ["--import", "tsx/esm", script, ...args] : [script, ...args];
  const r = await run(target, process.execPath, nodeArgs, opts);
  const lines = r.stdout.trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  if (r.exitCode !== 0) {
    throw new Error(`scenario ${script} on ${target.name} exited ${r.exitCode ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  try {
    return JSON.parse(last) as T;
  } catch (cause) {
    throw new Error(`scenario ${script} on ${target.name} printed no JSON last line\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`, { cause });
  }
}

/**
 * Writes a minimal runc bundle at `<dir>/bundle` for tests that run real runc: a rootfs holding
 * only Debian's busybox-static (`/bin/busybox`, package busybox-static) and a `config.json` (OCI
 * runtime spec 1.0.2) that runs `args` as root without a terminal, with CAP_KILL only, /proc
 * mounted, new pid/ipc/uts/mount namespaces and every device denied. `cgroupsPath` and
 * `resources` (e.g. `{ memory: { limit: 104857600 } }`) are added to `linux`.
 * @returns the bundle directory.
 */
export function writeBusyboxBundle(
  dir: string,
  opts: { args: string[]; hostname: string; cgroupsPath?: string; resources?: Record<string, unknown> },
): string {
  const bundle = join(dir, "bundle");
  mkdirSync(join(bundle, "rootfs", "bin"), { recursive: true });
  cpSync("/bin/busybox", join(bundle, "rootfs", "bin", "busybox"));
  const config = {
    ociVersion: "1.0.2",
    process: {
      terminal: false, user: { uid: 0, gid: 0 }, args: opts.args, env: ["PATH=/bin"], cwd: "/",
      capabilities: { bounding: ["CAP_KILL"], effective: ["CAP_KILL"], permitted: ["CAP_KILL"] }, noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: false },
    hostname: opts.hostname,
    mounts: [{ destination: "/proc", type: "proc", source: "proc" }],
    linux: {
      ...(opts.cgroupsPath ? { cgroupsPath: opts.cgroupsPath } : {}),
      resources: { devices: [{ allow: false, access: "rwm" }], ...opts.resources },
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
    },
  };
  writeFileSync(join(bundle, "config.json"), JSON.stringify(config, null, 1));
  return bundle;
}
