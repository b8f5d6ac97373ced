/**
 * The package API the CLI uses (host): detached daemons that outlive their caller and are stopped
 * from another process, failure cleanup, refusing a live mount, probeFuse, readModel.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import { readFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { run, TARGETS } from "@hybrid/testbed";
import { isCgroupfsMounted, mountCgroupfs, probeFuse, readModel, unmountCgroupfs, cgroupOfPid } from "../src/index.js";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "cgfs-api-"));
const mounts: string[] = [];
afterAll(async () => {
  for (const m of mounts) await unmountCgroupfs({ mountpoint: m }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return false;
  }
};

describe("cgroupfs API (host)", () => {
  it("a detached daemon outlives the process that mounted it; unmountCgroupfs from another process stops it", async () => {
    const mp = join(dir, "detached");
    mounts.push(mp);
    const state = join(dir, "detached.json");
    const code = `import { mountCgroupfs } from ${JSON.stringify(join(pkg, "src/index.ts"))};
      const h = await mountCgroupfs({ mountpoint: ${JSON.stringify(mp)}, stateFile: ${JSON.stringify(state)}, logFile: ${JSON.stringify(join(dir, "detached.log"))}, detached: true });
      console.log(JSON.stringify({ pid: h.pid }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx/esm", "--input-type=module", "-e", code], { cwd: pkg });
    const { pid } = JSON.parse(stdout.trim().split("\n").pop()!) as { pid: number };
    expect(alive(pid)).toBe(true);
    expect(await readFile(join(mp, "cgroup.controllers"), "utf8")).toBe("cpuset cpu io memory hugetlb pids\n");
    await mkdir(join(mp, "kept"));
    expect(await isCgroupfsMounted(mp)).toBe(true);
    await unmountCgroupfs({ mountpoint: mp }); // no pid: found by its command line
    expect(await isCgroupfsMounted(mp)).toBe(false);
    expect(alive(pid)).toBe(false);
    expect((await readModel(state)).groups.map((g) => g.path)).toEqual(["/", "/kept"]);
    expect(readFileSync(join(dir, "detached.log"), "utf8")).toMatch(/SIGTERM: persisting and unmounting/);
    await unmountCgroupfs({ mountpoint: mp, pid }); // idempotent
  });

  it("a corrupt state file fails the mount with the daemon's error, leaves no mount and keeps the file", async () => {
    const mp = join(dir, "corrupt");
    mounts.push(mp);
    const state = join(dir, "corrupt.json");
    writeFileSync(state, "{ not json");
    await expect(mountCgroupfs({ mountpoint: mp, stateFile: state, readyTimeoutMs: 10_000 })).rejects.toThrow(/daemon exited[\s\S]*JSON/);
    expect(await isCgroupfsMounted(mp)).toBe(false);
    expect(readFileSync(state, "utf8")).toBe("{ not json");
  });

  it("refuses to mount over a live cgroupfs; the live one keeps serving", async () => {
    const mp = join(dir, "live");
    mounts.push(mp);
    const procs = join(dir, "live-procs");
    const h = await mountCgroupfs({ mountpoint: mp, stateFile: join(dir, "live.json"), procsDir: procs });
    await expect(mountCgroupfs({ mountpoint: mp, stateFile: join(dir, "live2.json") })).rejects.toThrow(/already served by a live FUSE daemon/);
    await mkdir(join(mp, "g"));
    writeFileSync(join(mp, "g/cgroup.procs"), String(process.pid));
    expect(await cgroupOfPid(procs, process.pid)).toBe("/g");
    expect(readFileSync(join(procs, String(process.pid)), "utf8")).toBe("0::/g\n");
    writeFileSync(join(mp, "cgroup.procs"), String(process.pid));
    expect(existsSync(join(procs, String(process.pid)))).toBe(false);
    expect(await cgroupOfPid(procs, process.pid)).toBe("/");
    await h.unmount();
    await h.unmount();
    expect(await isCgroupfsMounted(mp)).toBe(false);
  });

  it("a mount point that is a file fails cleanly", async () => {
    const f = join(dir, "afile");
    mkdirSync(dir, { recursive: true });
    writeFileSync(f, "x");
    await expect(mountCgroupfs({ mountpoint: f, stateFile: join(dir, "f.json") })).rejects.toThrow();
    expect(await isCgroupfsMounted(f)).toBe(false);
  });

  it("probeFuse reports a working test mount", async () => {
    const p = await probeFuse();
    expect(p).toEqual({ available: true, detail: expect.stringContaining("cpuset cpu io memory hugetlb pids") });
  });
});

describe.each(TARGETS)("probeFuse on $name", (target) => {
  it("reports a working test mount and leaves nothing behind", async () => {
    const code = `import { probeFuse } from ${JSON.stringify(join(pkg, "src/index.ts"))};
      import { readdirSync, readFileSync } from "node:fs";
      import { tmpdir } from "node:os";
      const before = readdirSync(tmpdir());
      const r = await probeFuse();
      const left = readdirSync(tmpdir()).filter((n) => n.startsWith("cgroupfs-probe-") && !before.includes(n));
      console.log(JSON.stringify({ ...r, left, mounts: readFileSync("/proc/mounts", "utf8").includes("cgroupfs-probe-") }));`;
    const r = await run(target, process.execPath, ["--import", "tsx/esm", "--input-type=module", "-e", code], { cwd: pkg, timeoutMs: 60_000 });
    const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { available: boolean; detail: string; left: string[]; mounts: boolean };
    expect(out.available, r.stderr).toBe(true);
    expect(out.detail).toContain("cpuset cpu io memory hugetlb pids");
    expect(out.left).toEqual([]);
    expect(out.mounts).toBe(false);
  });
});
