/** spawnTraced / stop / probePtrace on the host and inside gVisor, and the tracer under valgrind. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOST, TARGETS, run, runScenario } from "@hybrid/testbed";
import { sandboxRules } from "../src/index.js";
import { THREADS64, q, rulesFile, tempDir } from "./helpers.js";
import { SHIM } from "./helpers.js";

const PKG = fileURLToPath(new URL("..", import.meta.url));
const SCENARIO = fileURLToPath(new URL("./scenarios/api.ts", import.meta.url));

interface ApiResult {
  aExit: { exitCode?: number; signal?: string };
  out: string;
  bExit: { exitCode?: number; signal?: string };
  bMs: number;
  cExit: { exitCode?: number; signal?: string };
  childAlive: boolean;
  probe: { ptrace: boolean; seccompTrace: boolean; detail: string };
  pids: boolean;
}

describe.each(TARGETS)("TypeScript API on $name", (target) => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir("shim-api-");
  });
  afterAll(() => tmp.cleanup());
  it("spawnTraced passes exit codes and output, stop() ends commands (SIGTERM, then SIGKILL + EXITKILL), probePtrace sees seccomp", async () => {
    const r = await runScenario<ApiResult>(target, SCENARIO, [tmp.dir], { cwd: PKG, timeoutMs: 120_000 });
    expect(r.pids).toBe(true);
    expect(r.aExit).toEqual({ exitCode: 7 });
    expect(r.out).toBe("ext2/ext3\n10\n");
    expect(r.bExit).toEqual({ signal: "SIGTERM" });
    expect(r.bMs).toBeLessThan(4000);
    expect(r.cExit).toEqual({ signal: "SIGKILL" });
    expect(r.childAlive).toBe(false);
    expect(r.probe).toMatchObject({ ptrace: true, seccompTrace: true });
  });
});

describe("the tracer under valgrind (host)", () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir("shim-valgrind-");
  });
  afterAll(() => tmp.cleanup());
  it("runs every handler (redirect, synthesize, shadow write, statfs, uname, threads) with no memory errors or leaks", async () => {
    const dir = tmp.dir;
    const rules = rulesFile(dir, {
      ...sandboxRules({ shadowDir: join(dir, "proc-sys"), kmsgPath: join(dir, "kmsg"), procsDir: join(dir, "procs"), runtimeDir: dir, unameIfBelow: null }),
      redirects: [{ from: join(dir, "from"), to: "/etc" }],
    });
    const script = `stat -f -c %T /; uname -r; cat ${q(join(dir, "from", "hostname"))} >/dev/null; grep -c ' - cgroup2 ' /proc/self/mountinfo; cat /proc/self/cgroup; echo 3 > /proc/sys/kernel/panic; cat /proc/sys/kernel/panic; readlink /proc/self/cwd >/dev/null; ${q(THREADS64)} / ef53 20 8`;
    const r = await run(HOST, "valgrind", ["--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "-q", SHIM, "--rules", rules, "--", "sh", "-c", script], { cwd: dir, timeoutMs: 120_000 });
    expect(r.stdout.trim().split("\n")).toEqual(["ext2/ext3", "5.15.0", "1", "0::/", "3", JSON.stringify({ threads: 8, calls: 320, bad: 0 })]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).not.toMatch(/Invalid (read|write)|uninitialised|definitely lost/);
  });
});
