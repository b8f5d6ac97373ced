/**
 * End-to-end: a real cgroupfs FUSE mount on the host and inside gVisor (runsc), driven by
 * test/scenarios/cgroupfs-scenario.ts (shell reads/writes of every file, the kernel's errors with
 * errno, events, kill, pids.max, concurrent writers, restart persistence, stale-mount replacement).
 */
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { GVISOR, runScenario, TARGETS } from "@hybrid/testbed";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const script = join(pkg, "test/scenarios/cgroupfs-scenario.ts");

type Obs = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe.each(TARGETS)("cgroupfs on $name", (target) => {
  let o: Obs;
  beforeAll(async () => {
    o = await runScenario<Obs>(target, script, [], { cwd: pkg, timeoutMs: 180_000 });
    if (o.error) throw new Error(`scenario failed: ${o.error}\n${o.log ?? ""}`);
  }, 200_000);

  it("mounts through a separate daemon process and reports the mount", () => {
    expect(o.mounted).toBe(true);
    expect(o.daemonIsSeparate).toBe(true);
  });

  it("c07: the cpuset controller is present (root cgroup.controllers, child cpuset.* files)", () => {
    expect(o.rootControllers).toBe("cpuset cpu io memory hugetlb pids");
    expect(o.cpusetInChild).toEqual(["cpuset.cpus", "cpuset.cpus.effective", "cpuset.cpus.partition", "cpuset.mems", "cpuset.mems.effective"]);
  });

  it("c01: cAdvisor root stats: root cpu.stat, memory.stat and io.stat carry real numbers", () => {
    expect(o.rootCpuStat.usage_usec).toBeGreaterThan(0);
    expect(o.rootCpuStat.usage_usec).toBe(o.rootCpuStat.user_usec + o.rootCpuStat.system_usec);
    expect(o.rootMemoryStat.anon).toBeGreaterThan(0);
    expect(o.rootMemoryStat.file).toBeGreaterThan(0);
    expect(Object.keys(o.rootMemoryStat).slice(0, 4)).toEqual(["anon", "file", "kernel", "kernel_stack"]);
    expect(o.rootIoStat).toMatch(/^\d+:\d+ rbytes=\d+ wbytes=\d+ rios=\d+ wios=\d+ dbytes=\d+ dios=\d+\n/);
    const [, wbytes, rios] = /wbytes=(\d+) rios=(\d+)/.exec(o.rootIoStat)!;
    expect(Number(wbytes) + Number(rios)).toBeGreaterThan(0);
    expect(o.rootFiles).toEqual([
      "cgroup.controllers",
      "cgroup.max.depth",
      "cgroup.max.descendants",
      "cgroup.procs",
      "cgroup.stat",
      "cgroup.subtree_control",
      "cgroup.threads",
      "cpu.stat",
      "cpuset.cpus.effective",
      "cpuset.mems.effective",
      "io.stat",
      "memory.stat",
    ]);
  });

  it("shell reads every file of the root, a parent and a leaf with all controllers", () => {
    expect(o.enableAll).toBe("OK");
    expect(o.enableAllChild).toBe("OK");
    expect(o.shellReads.files).toBeGreaterThan(100);
    expect(o.shellReads.failures).toEqual([]);
    expect(o.writeOnly).toEqual(["all/cgroup.kill", "all/leaf/cgroup.kill"]);
    for (const f of ["memory.current", "memory.peak", "memory.stat", "pids.current", "io.stat", "cpu.stat", "cgroup.events", "hugetlb.2MB.max"]) {
      expect(o.leafFiles).toContain(f);
    }
  });

  it("shell writes every writable file of a leaf and reads the kernel's canonical value back", () => {
    const tested = new Set(o.shellWrites.map((w: Obs) => w.file));
    const untested = o.writableLeafFiles.filter((f: string) => !tested.has(f));
    // the rest are covered by their own tests: cgroup.kill, cgroup.threads/cgroup.type (EOPNOTSUPP), 1GB hugetlb like 2MB
    expect(untested.sort()).toEqual(["cgroup.kill", "cgroup.threads", "cgroup.type", "hugetlb.1GB.max", "hugetlb.1GB.rsvd.max"].filter((f) => o.writableLeafFiles.includes(f)));
    for (const w of o.shellWrites) expect({ file: w.file, rc: w.rc, got: w.got }).toEqual({ file: w.file, rc: 0, got: w.want });
    expect(o.frozenEvent).toBe("populated 1\nfrozen 1\n");
  });

  it("ENOENT: enabling a controller the parent's subtree_control lacks, state unchanged", () => {
    expect(o.enoentSubtree).toBe("ENOENT");
    expect(o.enoentSubtreeAfter).toBe("\n");
  });

  it("EBUSY: no internal processes (enable with members; move into a group with subtree_control)", () => {
    expect(o.ebusyEnableWithProcs).toBe("EBUSY");
    expect(o.ebusyEnableAfter).toBe("\n");
    expect(o.ebusyMoveIntoInner).toBe("EBUSY");
    expect(o.ebusyMoveAfter.e2).toMatch(/^\d+$/);
    expect(o.ebusyMoveAfter.e3).toBe("");
  });

  it("EBUSY: rmdir of a populated group and of a group with children; empty rmdir works", () => {
    expect(o.ebusyRmdirPopulated).toBe("EBUSY");
    expect(o.ebusyRmdirChildren).toBe("EBUSY");
    expect(o.rmdirEmpty).toBe("OK");
  });

  it("EINVAL: malformed values, state unchanged", () => {
    expect(o.einval).toEqual({
      memoryMax: "EINVAL",
      cpuMax: "EINVAL",
      subtreeNoSign: "EINVAL",
      subtreeUnknown: "EINVAL",
      pidsMax: "EINVAL",
      cpusetCpus: "EINVAL",
      procsText: "EINVAL",
    });
    expect(o.einvalAfter).toEqual({ memoryMax: "1073741824", cpuMax: "max 100000", subtree: "", pidsMax: "max" });
  });

  it("no regular files can be created (EACCES), files cannot be unlinked (EPERM), read-only files refuse writes", () => {
    expect(o.createFile).toBe("EACCES");
    expect(o.createRoot).toBe("EACCES");
    expect(o.createExcl).toBe("EACCES");
    expect(o.unlinkFile).toBe("EPERM");
    expect(o.writeReadOnly).toBe("EACCES");
    expect(o.noCreateAfter).toEqual([]);
  });

  it("ESRCH: writing a dead pid to cgroup.procs", () => {
    expect(o.esrch).toBe("ESRCH");
  });

  it("cgroup.events populated follows members; an exited member leaves its group and procsDir", () => {
    expect(o.procsFile).toBe("0::/all/leaf\n");
    expect(o.eventsPopulated).toBe("populated 1\nfrozen 0\n");
    expect(o.eventsAfterExit).toBe("populated 0\nfrozen 0\n");
    expect(o.procsAfterExit).toBe("");
    expect(o.procsFileAfterExit).toBe("ENOENT");
  });

  it("cgroup.kill kills the subtree's members (only 1 accepted, write-only)", () => {
    expect(o.killBefore).toBe("populated 1\nfrozen 0\n");
    expect(o.killWrite).toBe("OK");
    expect(o.killBadValue).toBe("ERANGE");
    expect(o.killDead).toBe(true);
    expect(o.killEventsAfter).toBe("populated 0\nfrozen 0\n");
    expect(o.killReadIsError).toBe("EINVAL");
  });

  it("pids.max is honoured on cgroup.procs writes (EAGAIN, pids.events max counted)", () => {
    expect(o.pidsMoves).toEqual(["OK", "OK", "EAGAIN"]);
    expect(o.pidsCurrent).toBe("2");
    expect(o.pidsEvents).toBe("max 1");
    expect(o.pidsProcs).toBe(2);
  });

  it("concurrent writers: 6 shells building subtrees, limits and moves at once lose nothing", () => {
    expect(o.concurrentExit).toEqual([0, 0, 0, 0, 0, 0]);
    expect(o.concurrentMismatches).toEqual([]);
    expect(o.concurrentDescendants).toBe("nr_descendants 54\nnr_dying_descendants 0\n");
  });

  it("restart persistence and stale-mount replacement: kill -9 the daemon, remount, same hierarchy/limits/membership", () => {
    expect(o.staleErrno).toBe("ENOTCONN");
    expect(o.staleMounted).toBe(true);
    expect(o.newDaemon).toBe(true);
    expect(o.restartSameModel).toBe(true);
    expect(o.restartReads).toBe(true);
    expect(o.restartGroups).toBe(66);
    expect(o.restartProcsFile).toBe("0::/all/leaf\n");
  });

  it("moving a process to the root removes its procsDir file; unmount is complete and idempotent", () => {
    expect(o.procsFileAfterRoot).toBe("ENOENT");
    expect(o.rootListsMoved).toBe(true);
    expect(o.unmounted).toBe(true);
    expect(o.unmountAgain).toBe("OK");
    expect(o.cleanupError).toBeUndefined();
  });
});

describe("cgroupfs at /sys/fs/cgroup inside gVisor (tmpfs over /sys/fs, undone after)", () => {
  it("serves the hierarchy where runc, containerd and the kubelet look, and unmounts cleanly", async () => {
    const o = await runScenario<Obs>(GVISOR, join(pkg, "test/scenarios/sysfs-scenario.ts"), [], { cwd: pkg, timeoutMs: 120_000 });
    expect(o.error).toBeUndefined();
    expect(o.controllers).toBe("cpuset cpu io memory hugetlb pids\n");
    expect(o.selfCgroup).toBe("0::/kubepods/burstable\n");
    expect(o.memoryMax).toBe("max\n");
    expect(o.model).toEqual(["/", "/kubepods", "/kubepods/burstable"]);
    expect(o.unmounted).toBe(true);
    expect(o.sysfsRestored).toBe(true);
  });
});
