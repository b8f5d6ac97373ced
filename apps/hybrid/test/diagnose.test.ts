/**
 * Every line of shared/cases/log-signatures.jsonl is recognised, its cause named and its fix
 * pointed at; unseen lines of the same kinds of failure are recognised too.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { diagnoseLine, diagnoseLog, type FixLayer } from "../src/diagnose.js";

const CASES_FILE = join(import.meta.dirname, "..", "..", "..", "..", "shared", "cases", "log-signatures.jsonl");
interface Case {
  id: string;
  component: string;
  line: string;
  cause: string;
  fix: string[];
}
const cases = readFileSync(CASES_FILE, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as Case);

/** Which of our layers a case's fix text names. */
function fixLayers(fix: string[]): Set<FixLayer> {
  const out = new Set<FixLayer>();
  for (const f of fix) {
    if (/cgroupfs/.test(f)) out.add("cgroupfs");
    if (/ptrace-shim|statfs|mountinfo/.test(f)) out.add("ptrace-shim");
    if (/fake-cni/.test(f)) out.add("fake-cni");
    if (/^(k3s|kubelet-arg|kube-proxy) /.test(f)) out.add("runtime-flags");
  }
  return out;
}

describe("log signatures from public bug reports", () => {
  it("has the cases file", () => {
    expect(cases.length).toBeGreaterThanOrEqual(13);
  });
  it.each(cases.map((c) => [c.id, c] as const))("%s is recognised with its cause and fix", (_id, c) => {
    const sig = diagnoseLine(c.line);
    expect(sig, c.line).toBeDefined();
    expect(sig!.cause).toBe(c.cause);
    const wanted = fixLayers(c.fix);
    expect(wanted.size).toBeGreaterThan(0);
    for (const layer of wanted) expect(sig!.layers).toContain(layer);
  });
});

describe("unseen lines of the same kinds of failure", () => {
  const variants: [string, string][] = [
    ['E0101 kubelet.go:1500] "Failed to start ContainerManager" err="failed to get rootfs info: unable to find data in memory cache"', "cadvisor-root-stats-missing"],
    ['failed to get device for dir "/var/lib/rancher/k3s/agent/kubelet": could not find device with major: 0, minor: 52 in cached partitions map', "kubelet-dir-device-unknown"],
    ["open /proc/sys/vm/panic_on_oom: read-only file system", "proc-sys-not-writable"],
    ["write /proc/sys/kernel/keys/root_maxkeys: input/output error", "proc-sys-not-writable"],
    ["invalid kernel flag: vm/overcommit_memory, expected value: 1, actual value: 0", "proc-sys-not-writable"],
    ["open /proc/sys/kernel/keys/root_maxbytes: no such file or directory", "proc-sys-file-missing"],
    ["Failed to create OOM watcher: open /dev/kmsg: operation not permitted", "dev-kmsg-missing"],
    ['level=fatal msg="\\"overlayfs\\" snapshotter cannot be enabled for \\"/var/lib/containerd\\": failed to mount overlay: operation not permitted"', "overlay-unsupported"],
    ["network plugin is not ready: cni config uninitialized", "cni-not-initialized"],
    ['failed to find host-local: exec: "host-local": executable file not found in $PATH', "cni-not-initialized"],
    ["plugin type=\"bridge\" failed (add): could not set promiscuous mode on \"cni0\": invalid argument", "cni-not-initialized"],
    ['level=fatal msg="failed to find memory cgroup (v2)"', "cgroup-controller-missing"],
    ["system validation failed - Following Cgroup subsystem not mounted: [memory pids]", "cgroup-controller-missing"],
    ["runc create failed: mountpoint for devices not found", "cgroup-mount-missing"],
    ["cgroup namespaces aren't enabled in the kernel", "cgroup-mount-missing"],
    ["openat2 /sys/fs/cgroup/kubepods/cpu.max: not a cgroup file", "cgroup-file-not-on-cgroupfs"],
    ["F0101 server.go:495] open /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established: permission denied", "conntrack-sysctl-denied"],
    ["Image garbage collection failed multiple times in a row: invalid capacity 0 on image filesystem", "image-fs-capacity-zero"],
    ['level=fatal msg="flannel exited: failed to register flannel network: operation not permitted"', "flannel-unsupported"],
    ['PostStartHook "rbac/bootstrap-roles" failed: unable to initialize roles: timed out waiting for the condition', "startup-too-slow-under-tracing"],
    ["Slow SQL (started: 2026-01-01) (total time: 13.2s): INSERT INTO kine", "startup-too-slow-under-tracing"],
  ];
  it.each(variants)("%s", (line, cause) => {
    expect(diagnoseLine(line)?.cause).toBe(cause);
  });
  it("leaves ordinary lines alone", () => {
    expect(diagnoseLog('I0101 kubelet.go:100] "Started kubelet"\nlevel=info msg="containerd successfully booted"')).toEqual([]);
  });
  it("reports line numbers in a log", () => {
    const d = diagnoseLog(`ok\n${cases[0]!.line}\nok`);
    expect(d).toHaveLength(1);
    expect(d[0]!.lineNumber).toBe(2);
  });
});
