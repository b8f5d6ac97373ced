import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh temp dir under os.tmpdir(); remove it with {@link cleanupDir}. */
export function tempDir(prefix = "k3sl-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A TCP port free on the host right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** Pids of host processes whose command line mentions `needle` (leftover check). */
export function processesMentioning(needle: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ");
      const state = readFileSync(`/proc/${d}/stat`, "utf8").split(") ")[1]?.[0];
      if (cmd.includes(needle) && state !== "Z") out.push({ pid: Number(d), cmd });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Mount points under `prefix` (leftover check). */
export function mountsUnder(prefix: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(prefix));
}

export function cleanupDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
