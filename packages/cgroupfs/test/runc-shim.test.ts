/**
 * Real runc (Debian's runc 1.1) creating, starting, updating, killing and deleting a container's
 * cgroup through @hybrid/ptrace-shim (`sandboxRules`: /sys/fs/cgroup redirected to this cgroupfs,
 * statfs/fstatfs → CGROUP2_SUPER_MAGIC, procsDir, bpf cgroup-device emulation), on the host and inside
 * gVisor. All steps run in one shell per target (test/scenarios/runc-shim.sh): the FUSE mount must
 * be shared, and each `runsc do` is a fresh sandbox.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, TARGETS, writeBusyboxBundle } from "@hybrid/testbed";
import { sandboxRules, tracerPath, writeRulesSync } from "@hybrid/ptrace-shim";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const SCRIPT = join(pkg, "test/scenarios/runc-shim.sh");
const DAEMON = join(pkg, "dist/daemon.js");
const CG = "/hybrid-test/ctr1";
const LIMITS = { memory: 104857600, pids: 64, cpuQuota: 50000, cpuPeriod: 100000 };

describe.each(TARGETS)("runc under the ptrace shim with cgroupfs as /sys/fs/cgroup on $name", (target) => {
  let dir: string;
  const o: Record<string, string> = {};
  let raw = "";
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cgroupfs-runc-"));
    const mnt = join(dir, "cgroup");
    mkdirSync(mnt);
    mkdirSync(join(dir, "shim-run"));
    const rules = join(dir, "rules.json");
    // gVisor refuses runc's mount("", "/", MS_SLAVE|MS_REC): mountPropagation gets runc one step further there
    const mountPropagation = target.kind === "gvisor" ? "ignore-unsupported" : "passthrough";
    writeRulesSync(rules, sandboxRules({ cgroupfsMount: mnt, procsDir: join(dir, "procs"), shadowDir: join(dir, "proc-sys"), runtimeDir: join(dir, "shim-run"), mountPropagation }));
    const bundle = writeBusyboxBundle(dir, {
      args: ["/bin/busybox", "sleep", "300"],
      hostname: "cgtest",
      cgroupsPath: CG,
      resources: { memory: { limit: LIMITS.memory }, pids: { limit: LIMITS.pids }, cpu: { quota: LIMITS.cpuQuota, period: LIMITS.cpuPeriod } },
    });
    // gVisor has no keyrings (keyctl: EPERM): runc's own --no-new-keyring skips the session keyring.
    const createFlags = target.kind === "gvisor" ? "--no-new-keyring" : "";
    const args = [tracerPath(), rules, DAEMON, mnt, join(dir, "state.json"), join(dir, "procs"), bundle, join(dir, "runc-root"), CG, "ctr1", createFlags];
    const r = await run(target, "/usr/bin/env", [`TRACE_LOG=${join(dir, "trace.log")}`, "/bin/sh", SCRIPT, ...args], { cwd: dir, timeoutMs: 150_000 });
    raw = `${r.stdout}\n${r.stderr}`;
    for (const line of r.stdout.split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) o[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    if (process.env.CGROUPFS_TEST_DEBUG) console.log(target.name, o);
    if (o.end !== "1") throw new Error(`scenario failed (exit ${r.exitCode})\n${raw}`);
  }, 170_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const outputs = () => Object.entries(o).filter(([k]) => k.endsWith("-out")).map(([, v]) => v).join("\n");

  it("runc's cgroup files pass its fstatfs check (never `not a cgroup file`) and mountinfo shows cgroup2", () => {
    expect(o.controllers).toBe("cpuset cpu io memory hugetlb pids");
    expect(outputs()).not.toContain("not a cgroup file");
    expect(outputs()).not.toContain("no cgroup mount found in mountinfo");
    expect(raw).not.toContain("not a cgroup file");
    expect(Number(o["trace:openat2 redirect: /sys/fs/cgroup ->"])).toBeGreaterThan(0);
    // host: runc opens files with openat2 relative to its /sys/fs/cgroup fd (fstatfs of that fd);
    // gVisor has no openat2 (ENOSYS): runc falls back to securejoin + openat and fstatfs's every file
    expect(Number(o[`trace:fstatfs: ${join(dir, "cgroup")}.* f_type 0x65735546 -> 0x63677270`])).toBeGreaterThan(0);
    expect(Number(o[`trace:mkdirat redirect: /sys/fs/cgroup${CG} ->`])).toBe(1);
    // runc's nsexec stage-1 and stage-2 (CLONE_PARENT clones) join the group through the shim
    expect(Number(o[`trace:fork cgroup: child [0-9]* -> ${CG}`])).toBeGreaterThanOrEqual(2);
  });

  if (target.kind === "host") {
    it("runc create: the group exists with memory.max, pids.max and cpu.max as set, holding the init pid", () => {
      expect(o["create-rc"]).toBe("0");
      expect(o["create-out"]).toBe("");
      expect(o["group-exists"]).toBe("yes");
      expect(o["created-memory.max"]).toBe(String(LIMITS.memory));
      expect(o["created-pids.max"]).toBe(String(LIMITS.pids));
      expect(o["created-cpu.max"]).toBe(`${LIMITS.cpuQuota} ${LIMITS.cpuPeriod}`);
      expect(o["init-pid"]).toMatch(/^\d+$/);
      expect(o["created-cgroup.procs"]!.split(" ")).toContain(o["init-pid"]);
    });

    it("the procsDir file names the group, so /proc/<init>/cgroup under the shim shows it", () => {
      expect(o["procsdir-file"]).toBe(`0::${CG}`);
      expect(o["shim-proc-cgroup"]).toBe(`0::${CG}`);
    });

    it("the device controller went through the bpf emulation (load, attach, query)", () => {
      expect(Number(o["trace:bpf emulate: PROG_LOAD"])).toBeGreaterThan(0);
      expect(Number(o["trace:bpf emulate: PROG_ATTACH"])).toBeGreaterThan(0);
      expect(Number(o["trace:bpf emulate: PROG_QUERY"])).toBeGreaterThan(0);
    });

    it("runc start runs the container in the group", () => {
      expect(o["start-rc"]).toBe("0");
      expect(o["status-started"]).toBe("running");
      expect(o["started-procs"]!.split(" ")).toContain(o["init-pid"]);
    });

    it("runc update --memory changes memory.max", () => {
      expect(o["update-rc"]).toBe("0");
      expect(o["update-out"]).toBe("");
      expect(o["updated-memory.max"]).toBe("209715200");
    });

    it("runc kill + runc delete remove the group; the create tracer ends with the container", () => {
      expect(o["kill-rc"]).toBe("0");
      expect(o["delete-rc"]).toBe("0");
      expect(o["delete-out"]).toBe("");
      expect(o["group-after-delete"]).toBe("no");
      expect(o["create-tracer-exited"]).toBe("yes");
    });
  } else {
    it("gVisor: runc gets past cgroups (group created, joined, removed again) and stops at the rootfs bind mount", () => {
      // Real outcome with runsc 20221219: the cgroup is set up through cgroupfs (stage-1/2 join it),
      // runc init's mount("", "/", MS_SLAVE|MS_REC) fails with EINVAL and the shim turns it into 0
      // (mountPropagation), then the bind mount of the rootfs onto itself (MS_BIND|MS_REC) fails with
      // EINVAL in gVisor, and runc destroys the group again (rmdir through cgroupfs succeeds: its
      // members died). runc's limits (memory.max...) are written only after the rootfs is prepared.
      expect(o["create-rc"]).toBe("1");
      expect(o["create-out"]).toMatch(/error preparing rootfs: mount \S+\/bundle\/rootfs:\S+\/bundle\/rootfs, flags: 0x5000: invalid argument/);
      expect(o["trace:mount: propagation change 0x84000 refused with EINVAL -> 0"]).toBe("1");
      expect(o["create-out"]).not.toContain("rmdir");
      expect(o["group-exists"]).toBe("no");
    });
  }

  it("cleans up: mount gone", () => {
    expect(o["mounted-after"]).toBe("no");
  });
});
