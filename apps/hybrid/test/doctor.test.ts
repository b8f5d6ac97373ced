import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, validateConfig } from "../src/config.js";
import { kernelBelow, layerNeeds, type Findings } from "../src/doctor/index.js";
import { cadvisorAccepts, magicName } from "../src/doctor/magic.js";
import { parseMountinfo, probeCgroup } from "../src/doctor/probes.js";
import { buildPlan } from "../src/plan.js";

// Real mountinfo lines: gVisor's 9p root (runsc, 2022-12-19) and this host's hybrid cgroup layout.
const GVISOR_MOUNTINFO = `8 8 0:8 / / rw  - 9p none rw,trans=fd,rfdno=3,wfdno=3,aname=/,dfltuid=4294967294,dfltgid=4294967294,cache=fscache
9 8 0:9 / /sys rw  - sysfs none rw,dentry_cache_limit=1000
11 8 0:10 / /proc rw  - proc none rw,dentry_cache_limit=1000`;
const HYBRID_MOUNTINFO = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;

const gvisorFindings: Omit<Findings, "layers"> = {
  sandbox: "gvisor",
  sandboxEvidence: "test",
  kernelRelease: "4.4.0",
  rootfs: { fsType: "v9fs", magic: "0x1021997", cadvisorAccepts: false },
  cgroup: { version: "none", controllers: [] },
  procSysWritable: false,
  procSysDetail: "EIO",
  devKmsg: false,
  fuse: true,
  fuseDetail: "",
  ptrace: true,
  seccompTrace: true,
  ptraceDetail: "",
  overlay: false,
  overlayDetail: "",
  cniMode: "noop",
  cniDetail: "",
  isRoot: true,
};

describe("doctor", () => {
  it("parses mountinfo, octal escapes included", () => {
    const m = parseMountinfo("1 0 0:1 / /a\\040b rw - ext4 /dev/x rw");
    expect(m[0]).toMatchObject({ mountPoint: "/a b", fsType: "ext4" });
  });
  it("finds no cgroups in gVisor and hybrid cgroups on this host", async () => {
    expect(await probeCgroup(parseMountinfo(GVISOR_MOUNTINFO))).toEqual({ version: "none", controllers: [] });
    const h = await probeCgroup(parseMountinfo(HYBRID_MOUNTINFO));
    expect(h.version).toBe("hybrid");
    expect(h.controllers).toEqual(["cpu", "cpuset", "memory"]);
  });
  it("names magics like GNU stat and knows cAdvisor's accepted types", () => {
    expect(magicName(0x01021997)).toBe("v9fs");
    expect(magicName(0xef53)).toBe("ext2/ext3");
    expect(cadvisorAccepts(0x01021997)).toBe(false);
    expect(cadvisorAccepts(0xef53)).toBe(true);
    expect(cadvisorAccepts(0x794c7630)).toBe(true);
  });
  it("needs every layer in gVisor, with reasons", () => {
    const needs = layerNeeds(gvisorFindings, DEFAULT_CONFIG);
    expect(Object.values(needs).every((n) => n.needed)).toBe(true);
    expect(needs["ptrace-shim"].reason).toMatch(/v9fs/);
    expect(needs["ptrace-shim"].reason).toMatch(/\/proc\/sys/);
    expect(needs["ptrace-shim"].reason).toMatch(/kmsg/);
    expect(needs["ptrace-shim"].reason).toMatch(/4\.11/);
    expect(needs.cgroupfs.reason).toMatch(/no usable cgroup v2/);
  });
  it("does not need cgroupfs or the shim on a full cgroup v2 host", () => {
    const f = { ...gvisorFindings, sandbox: "host" as const, kernelRelease: "6.1.0", rootfs: { fsType: "ext2/ext3", magic: "0xef53", cadvisorAccepts: true }, cgroup: { version: "v2" as const, controllers: ["cpuset", "cpu", "io", "memory", "pids"], v2Mount: "/sys/fs/cgroup" }, procSysWritable: true, devKmsg: true };
    const needs = layerNeeds(f, DEFAULT_CONFIG);
    expect(needs.cgroupfs.needed).toBe(false);
    expect(needs["ptrace-shim"].needed).toBe(false);
  });
  it("lets the config force a layer off", () => {
    const needs = layerNeeds(gvisorFindings, validateConfig({ cgroupfs: { enabled: false } }));
    expect(needs.cgroupfs).toMatchObject({ needed: false });
    expect(needs.cgroupfs.reason).toMatch(/enabled is false/);
  });
  it("compares kernel releases", () => {
    expect(kernelBelow("4.4.0", 4, 11)).toBe(true);
    expect(kernelBelow("6.18.44-fc", 4, 11)).toBe(false);
  });
});

describe("plan", () => {
  const findings = { ...gvisorFindings, layers: layerNeeds(gvisorFindings, DEFAULT_CONFIG) };
  it("orders the layers and puts everything under the state dir", () => {
    const p = buildPlan(findings, DEFAULT_CONFIG, "/s", undefined);
    expect(p.order).toEqual(["cgroupfs", "fake-cni", "ptrace-shim", "runtime"]);
    expect(p.cgroupfs!.mountpoint).toBe("/s/cgroup");
    expect(p.shim!.cgroupfsMount).toBe("/s/cgroup");
    expect(p.fakeCni!.network.mode).toBe("noop");
    expect(p.runtime).toMatchObject({ kind: "containerd", cniBinDir: "/s/cni/bin", cniConfDir: "/s/cni/net.d" });
  });
  it("runs k3s when a binary is given", () => {
    expect(buildPlan(findings, DEFAULT_CONFIG, "/s", "/usr/local/bin/k3s").runtime).toMatchObject({ kind: "k3s", k3sBin: "/usr/local/bin/k3s" });
  });
  it("refuses runtime.kind k3s without a binary", () => {
    expect(() => buildPlan(findings, validateConfig({ runtime: { kind: "k3s" } }), "/s", undefined)).toThrow(/no k3s binary/);
  });
});
