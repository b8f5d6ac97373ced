/** Helpers shared by the end-to-end scenarios (they run on the host or inside runsc). */
import { execa } from "execa";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const HYBRID_BIN = join(REPO, "apps", "hybrid", "dist", "bin.js");

/** Runs `hybrid ARGS` with the given state dir; never throws on non-zero. Times in milliseconds. */
export async function hybrid(stateDir: string, args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}) {
  const t0 = performance.now();
  const r = await execa(process.execPath, [HYBRID_BIN, "--state-dir", stateDir, ...args], {
    reject: false,
    timeout: opts.timeoutMs ?? 300_000,
    env: { CI: "1", ...opts.env },
    stdin: "ignore",
  });
  return { exitCode: r.exitCode, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr), ms: Math.round(performance.now() - t0) };
}

/** Mount points now (from /proc/self/mountinfo), sorted. */
export function mountPoints(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => `${l.split(" ")[4]} ${l.split(" - ")[1]?.split(" ")[0] ?? ""}`)
    .sort();
}

/**
 * Live processes: pid → command line. Zombies (state Z: exited, waiting to be reaped by their
 * parent — inside runsc the scenario itself is pid 1 and inherits orphans) are not counted.
 */
export function processes(): Map<number, string> {
  const out = new Map<number, string>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") continue;
      out.set(Number(e), readFileSync(`/proc/${e}/cmdline`, "utf8").replace(/\0/g, " ").trim());
    } catch {
      /* exited */
    }
  }
  return out;
}

/** Whether we run inside gVisor (kernel log). */
export async function inGvisor(): Promise<boolean> {
  const r = await execa("dmesg", [], { reject: false });
  return /gVisor/.test(String(r.stdout));
}

/**
 * A new network namespace held by a sleeping process (`unshare --net sleep`), for a CNI ADD in
 * veth mode. Not `ip netns add`: iproute2's /run/netns bind mount would outlive the test.
 */
export async function newNetns(): Promise<{ path: string; release(): Promise<void> }> {
  const holder = execa("unshare", ["--net", "sleep", "600"], { reject: false, stdin: "ignore" });
  const path = `/proc/${holder.pid}/ns/net`;
  const ours = readlinkSync("/proc/self/ns/net");
  const current = () => {
    try {
      return readlinkSync(path);
    } catch {
      return ours;
    }
  };
  for (let i = 0; i < 200 && current() === ours; i++) await new Promise((r) => setTimeout(r, 20));
  return {
    path,
    async release() {
      holder.kill("SIGKILL");
      await holder;
    },
  };
}
