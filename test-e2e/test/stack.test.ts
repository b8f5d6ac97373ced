/**
 * Issue 2, point 6: the whole CLI end to end, on the host and inside runsc ("9p root, no cgroups").
 */
import { GVISOR, HOST, runScenario, type Target } from "@hybrid/testbed";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const SCENARIO = join(import.meta.dirname, "..", "scenarios", "stack.ts");
type Outcome = Record<string, any>;

describe.each([GVISOR, HOST] as Target[])("hybrid stack on $name", (target) => {
  let o: Outcome;
  let base: string;
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), "hybrid-e2e-"));
    o = await runScenario<Outcome>(target, SCENARIO, [join(base, "made-by-up", "state"), "1m"], { cwd: join(import.meta.dirname, ".."), timeoutMs: 600_000 });
    if (o.up?.exitCode !== 0) console.error(`up failed on ${target.name}:\n${o.up?.stdout}\n${o.up?.stderr}`);
  }, 660_000);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it("doctor reports the environment", () => {
    expect(o.doctor.exitCode).toBe(0);
    const f = o.doctor.findings;
    for (const k of ["sandbox", "rootfs", "cgroup", "procSysWritable", "devKmsg", "fuse", "ptrace", "seccompTrace", "overlay", "layers"]) expect(f).toHaveProperty(k);
    expect(f.rootfs.magic).toMatch(/^0x[0-9a-f]+$/);
    expect(f.fuse).toBe(true);
    expect(f.ptrace).toBe(true);
    if (target.kind === "gvisor") {
      expect(o.gvisor).toBe(true);
      expect(f.sandbox).toBe("gvisor");
      expect(f.rootfs).toMatchObject({ fsType: "v9fs", magic: "0x1021997" });
      expect(f.cgroup.version).toBe("none");
      expect(f.procSysWritable).toBe(false);
      expect(f.devKmsg).toBe(false);
      expect(f.layers.cgroupfs.needed).toBe(true);
      expect(f.layers["ptrace-shim"].needed).toBe(true);
    } else {
      expect(f.sandbox).not.toBe("gvisor");
      expect(f.rootfs.fsType).not.toBe("v9fs");
    }
  });

  it("up brings the layers up in order", () => {
    expect(o.up.exitCode, o.up.stderr).toBe(0);
    expect(o.status.json.layers.map((l: { name: string }) => l.name)).toEqual(["cgroupfs", "fake-cni", "ptrace-shim", "runtime"]);
  });

  it("a second up says so and changes nothing", () => {
    expect(o.secondUp.exitCode).toBe(0);
    expect(o.secondUp.stdout).toMatch(/already up/);
    expect(o.secondUp.unchanged).toBe(true);
  });

  it("under hybrid exec the root reads ext2/ext3 and /sys/fs/cgroup reads the cgroup2 magic", () => {
    expect(o.execRootType).toMatchObject({ exitCode: 0, stdout: "ext2/ext3" });
    expect(o.execCgroupMagic).toMatchObject({ exitCode: 0, stdout: "63677270" });
    if (target.kind === "gvisor") expect(o.plainRootType).toBe("v9fs");
  });

  it("hybrid exec passes the exit code through", () => {
    expect(o.execExitCode.exitCode).toBe(42);
  });

  it("a CNI ADD through the installed plugin returns an address and DEL frees it", () => {
    expect(o.cni.addExit, o.cni.addStderr + JSON.stringify(o.cni.addResult)).toBe(0);
    expect(o.cni.mode).toBe(target.kind === "gvisor" ? "noop" : "veth");
    const ip = o.cni.addResult.ips[0].address as string;
    expect(ip).toMatch(/^10\.42\.0\.\d+\/24$/);
    expect(o.cni.recordsAfterAdd.some((r: string) => r.endsWith(ip.split("/")[0]!))).toBe(true);
    expect(o.cni.delExit).toBe(0);
    expect(o.cni.recordsAfterDel.some((r: string) => r.endsWith(ip.split("/")[0]!))).toBe(false);
  });

  it("the runtime answers its API", () => {
    expect(o.runtime.kind).toBe("containerd");
    expect(o.runtime.exitCode, o.runtime.stderr).toBe(0);
    expect(o.runtime.stdout).toMatch(/Server:\s+Version:/);
  });

  it("status reports every layer healthy", () => {
    expect(o.status.exitCode).toBe(0);
    expect(o.status.json.healthy).toBe(true);
  });

  it("a one-minute soak passes", () => {
    expect(o.soak.exitCode, o.soak.stdout).toBe(0);
    expect(o.soak.report.passed).toBe(true);
    expect(o.soak.report.rounds).toBeGreaterThanOrEqual(6);
    expect(Object.keys(o.soak.report.layers).sort()).toEqual(["cgroupfs", "fake-cni", "ptrace-shim", "runtime"]);
  });

  it("down leaves mounts, processes and files as they were", () => {
    expect(o.down.exitCode, o.down.stderr).toBe(0);
    expect(o.mountsAdded).toEqual([]);
    expect(o.mountsRemoved).toEqual([]);
    expect(o.stackProcessesLeft).toEqual([]);
    expect(o.recordedPids.length).toBeGreaterThanOrEqual(2);
    expect(o.recordedPidsAlive).toEqual([]);
    if (target.kind === "gvisor") expect(o.processesLeft).toEqual([]);
    expect(o.stateDirLeft).toBe(false);
    expect(o.stateParentLeft).toBe(false); // up made base/made-by-up for the state dir; down removes it too
    console.log(`${target.name}: up ${o.up.ms} ms, down ${o.down.ms} ms`);
  });
});
