/**
 * statfs/fstatfs rewrite on a FUSE mount and runc getting past "no cgroup mount found in
 * mountinfo" (case c08). A tiny FUSE fixture (test/fixtures/cgroupfs-fixture.cjs, its own
 * process) stands in for @hybrid/cgroupfs; all steps run in one shell on the target so they
 * share the mount (each `runsc do` is a fresh sandbox).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TARGETS, writeBusyboxBundle } from "@hybrid/testbed";
import { sandboxRules } from "../src/index.js";
import { THREADS64, q, rulesFile, sh, tempDir } from "./helpers.js";
import { SHIM } from "./helpers.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/cgroupfs-fixture.cjs", import.meta.url));
const SCRIPT = fileURLToPath(new URL("./scenarios/fuse-runc.sh", import.meta.url));

describe.each(TARGETS)("statfs on a FUSE cgroup mount and runc under the shim on $name", (target) => {
  let tmp: ReturnType<typeof tempDir>;
  const out: Record<string, string> = {};
  beforeAll(async () => {
    tmp = tempDir("shim-fuse-");
    const dir = tmp.dir;
    const mnt = join(dir, "cgroup");
    const rules = rulesFile(dir, sandboxRules({ cgroupfsMount: mnt, shadowDir: join(dir, "proc-sys"), procsDir: join(dir, "procs") }));
    const bundle = writeBusyboxBundle(dir, { args: ["/bin/busybox", "true"], hostname: "shimtest" });
    const args = [SHIM, rules, FIXTURE, mnt, bundle, join(dir, "runc-root"), THREADS64, target.kind === "gvisor" ? "1" : "0"];
    const r = await sh(target, `${q(SCRIPT)} ${args.map(q).join(" ")}`, { timeoutMs: 120_000 });
    for (const line of r.stdout.split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    if (process.env.SHIM_TEST_DEBUG) console.log(target.name, out);
    if (!out["mounted-after"]) throw new Error(`scenario failed (exit ${r.exitCode})\n${r.stdout}\n${r.stderr}`);
  });
  afterAll(() => tmp.cleanup());

  it("the fixture is a real FUSE mount (f_type 0x65735546)", () => {
    expect(out.fixture).toContain("ready");
    expect(out["plain-type"]).toBe("65735546");
  });

  it("c07/c08: statfs(/sys/fs/cgroup) reads CGROUP2_SUPER_MAGIC through the redirect", () => {
    expect(out["shim-type"]).toBe("63677270");
    expect(out["shim-controllers"]).toBe("cpuset cpu io memory pids");
  });

  it("fstatfs on files opened inside the FUSE mount reads cgroup2 (runc's cgroup file check), 4 threads", () => {
    expect(JSON.parse(out["shim-threads-redirected"] ?? "")).toEqual({ threads: 4, calls: 160, bad: 0 });
    expect(JSON.parse(out["shim-threads-mount"] ?? "")).toEqual({ threads: 4, calls: 160, bad: 0 });
  });

  it("c08: synthesized mountinfo has one cgroup2 mount at /sys/fs/cgroup", () => {
    expect(out["shim-mountinfo-cgroup2"]).toBe("1");
  });

  it("c08: runc under the shim gets past `no cgroup mount found in mountinfo`", () => {
    if (target.kind === "gvisor") expect(out["plain-runc"]).toContain("no cgroup mount found in mountinfo");
    expect(out["shim-runc"]).toBeDefined();
    expect(out["shim-runc"]).not.toContain("no cgroup mount found in mountinfo");
  });

  it("the FUSE fixture is unmounted afterwards", () => {
    expect(out["mounted-after"]).toBe("no");
  });
});
