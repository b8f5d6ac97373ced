/**
 * The TypeScript API end to end, run with Node on a target (host or inside one gVisor sandbox).
 * Prints one JSON line with what it saw. usage: api.ts TMPDIR
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { probePtrace, sandboxRules, spawnTraced } from "../../src/index.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: api.ts TMPDIR");
const rules = sandboxRules({ shadowDir: join(dir, "proc-sys"), kmsgPath: join(dir, "kmsg"), runtimeDir: dir });

// exit code and output through a pipe
const a = spawnTraced("sh", ["-c", "stat -f -c %T /; cat /proc/sys/kernel/panic; exit 7"], { rules, stdio: ["ignore", "pipe", "inherit"] });
let out = "";
a.subprocess.stdout?.on("data", (d: Buffer) => (out += d.toString()));
const aExit = await a.exited;

// stop(): SIGTERM reaches the command
const b = spawnTraced("sleep", ["30"], { rules, stdio: "ignore" });
await new Promise((r) => setTimeout(r, 300));
const t0 = Date.now();
await b.stop(5000);
const bExit = await b.exited;
const bMs = Date.now() - t0;

// stop(): a command that ignores SIGTERM is killed after the grace period (tracer SIGKILL, EXITKILL)
const pidFile = join(dir, "ignorer.pid");
const c = spawnTraced("sh", ["-c", `trap '' TERM; echo $$ > ${pidFile}; while :; do sleep 0.1; done`], { rules, stdio: "ignore" });
for (let i = 0; i < 50; i++) {
  try {
    if (readFileSync(pidFile, "utf8").trim()) break;
  } catch {
    /* not yet */
  }
  await new Promise((r) => setTimeout(r, 100));
}
const childPid = Number.parseInt(readFileSync(pidFile, "utf8"), 10);
await c.stop(500);
const cExit = await c.exited;
await new Promise((r) => setTimeout(r, 300));
let childAlive = true;
try {
  childAlive = !/State:\s+Z/.test(readFileSync(`/proc/${childPid}/status`, "utf8"));
} catch {
  childAlive = false;
}
writeFileSync(join(dir, "done"), "1");
const probe = await probePtrace();
console.log(JSON.stringify({ aExit, out, bExit, bMs, cExit, childAlive, probe, pids: [a.pid, b.pid, c.pid].every((p) => p > 0) }));
