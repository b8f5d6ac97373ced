/**
 * Recognises the log lines k3s, the kubelet, kube-proxy, containerd, runc and CNI plugins print
 * when they fail in a sandbox, names the cause and points at the layer or flag that removes it.
 * Rules match the kind of failure (the shared cases in shared/cases/log-signatures.jsonl are
 * examples), not one exact text. Used by `hybrid doctor --log FILE` and by the soak.
 */

/** The part of the stack that removes a cause. `runtime-flags` = the launcher's k3s/kubelet flags. */
export type FixLayer = "cgroupfs" | "ptrace-shim" | "fake-cni" | "runtime-flags";

export interface Signature {
  /** Short name of the root cause. */
  cause: string;
  /** Who prints it. */
  component: string;
  /** Patterns of this kind of failure; any match counts. */
  patterns: RegExp[];
  /** Layers that remove the cause, most direct first. */
  layers: FixLayer[];
  /** What in the stack fixes it, in words. */
  fix: string;
}

/** Ordered: the first signature whose pattern matches wins (specific before general). */
export const SIGNATURES: readonly Signature[] = [
  {
    cause: "conntrack-sysctl-denied",
    component: "kube-proxy",
    patterns: [/\/proc\/sys\/net\/(netfilter|nf_conntrack)\S*conntrack/i, /conntrack\S*: (permission denied|read-only file system|operation not permitted)/i, /set sysctl.*conntrack/i],
    layers: ["runtime-flags", "ptrace-shim"],
    fix: "kube-proxy conntrack-max-per-core=0 or k3s --disable-kube-proxy; the ptrace-shim /proc/sys shadow store answers conntrack keys",
  },
  {
    cause: "proc-sys-file-missing",
    component: "runc/kubelet",
    patterns: [/\/proc\/sys\/\S+: no such file or directory/i],
    layers: ["ptrace-shim"],
    fix: "ptrace-shim /proc/sys shadow store serves the key (kernel/cap_last_cap with the real last capability)",
  },
  {
    cause: "proc-sys-not-writable",
    component: "kubelet",
    patterns: [/\/proc\/sys\/\S+: (permission denied|read-only file system|input\/output error|operation not permitted)/i, /invalid kernel flag: \S+, expected value/i, /failed to set kernel tunable|setupKernelTunables|kernel tunables/i],
    layers: ["ptrace-shim", "runtime-flags"],
    fix: "ptrace-shim /proc/sys shadow store keeps the written values; kubelet-arg protect-kernel-defaults=false",
  },
  {
    cause: "dev-kmsg-missing",
    component: "kubelet",
    patterns: [/\/dev\/kmsg/i, /Failed to start OOM watcher/i],
    layers: ["ptrace-shim"],
    fix: "ptrace-shim provides a /dev/kmsg stand-in",
  },
  {
    cause: "cadvisor-root-stats-missing",
    component: "kubelet",
    patterns: [/failed to get rootfs info/i, /unable to find data in memory cache/i, /failed to get (root )?container (stats|info) for "?\/"?/i],
    layers: ["cgroupfs", "runtime-flags"],
    fix: "cgroupfs layer gives cAdvisor stats for the root cgroup; kubelet-arg local-storage-capacity-isolation=false",
  },
  {
    cause: "kubelet-dir-device-unknown",
    component: "kubelet",
    patterns: [/could not find device with major/i, /failed to get device for dir/i, /cached partitions map/i],
    layers: ["ptrace-shim", "runtime-flags"],
    fix: "statfs and mountinfo rewrite for the kubelet and containerd directories; kubelet-arg local-storage-capacity-isolation=false",
  },
  {
    cause: "image-fs-capacity-zero",
    component: "kubelet",
    patterns: [/invalid capacity 0 on image filesystem/i, /image ?fs.*capacity/i, /Image garbage collection failed/i],
    layers: ["runtime-flags", "ptrace-shim"],
    fix: "kubelet-arg image-gc-high-threshold=100; the statfs rewrite gives the image filesystem a real size",
  },
  {
    cause: "overlay-unsupported",
    component: "containerd",
    patterns: [/"?overlayfs"? snapshotter cannot be enabled/i, /failed to mount overlay/i, /overlay(fs)?: .*not supported/i],
    layers: ["runtime-flags"],
    fix: "k3s --snapshotter=native (containerd config snapshotter = native)",
  },
  {
    cause: "flannel-unsupported",
    component: "k3s",
    patterns: [/flannel exited/i, /failed to register flannel network/i, /flannel.*(operation not supported|not permitted)/i],
    layers: ["runtime-flags", "fake-cni"],
    fix: "k3s --flannel-backend=none with the fake-cni layer",
  },
  {
    cause: "cni-not-initialized",
    component: "kubelet/containerd",
    patterns: [/cni plugin not initialized/i, /NetworkPluginNotReady/i, /cni config uninitialized/i, /no networks found in/i, /failed to find (plugin|host-local)/i, /could not set promiscuous mode/i, /failed to add route .*operation not supported/i],
    layers: ["fake-cni"],
    fix: "fake-cni layer installs its config and binary where the runtime looks (noop mode where veth/bridge fail)",
  },
  {
    cause: "cgroup-file-not-on-cgroupfs",
    component: "runc",
    patterns: [/not a cgroup file/i],
    layers: ["ptrace-shim", "cgroupfs"],
    fix: "ptrace-shim fstatfs rewrite reports CGROUP2_SUPER_MAGIC on files opened inside the cgroupfs mount",
  },
  {
    cause: "cgroup-controller-missing",
    component: "kubelet/k3s",
    patterns: [/Cgroup subsystem not mounted/i, /failed to find \S+ cgroup/i, /cgroup controller \S+ (is )?not (available|enabled)/i, /missing cgroup (controller|subsystem)/i],
    layers: ["cgroupfs", "ptrace-shim"],
    fix: "cgroupfs layer emulates the controller; ptrace-shim redirects /sys/fs/cgroup",
  },
  {
    cause: "cgroup-mount-missing",
    component: "runc/containerd",
    patterns: [/no cgroup mount found/i, /mountpoint for \S+ not found/i, /cgroup mountpoint does not exist/i, /cgroup namespaces aren't enabled/i, /cgroups?: cannot found cgroup mount/i],
    layers: ["cgroupfs", "ptrace-shim"],
    fix: "cgroupfs layer; ptrace-shim mountinfo synthesis shows cgroup2 at /sys/fs/cgroup",
  },
  {
    cause: "startup-too-slow-under-tracing",
    component: "kube-apiserver",
    patterns: [/PostStartHook "[^"]+" failed/i, /not yet ready to handle request/i, /Slow SQL/i],
    layers: ["ptrace-shim"],
    fix: "ptrace-shim seccomp filter so only intercepted syscalls stop",
  },
  {
    cause: "kernel-release-too-old",
    component: "containerd",
    patterns: [/enable_unprivileged_(icmp|ports)/i, /kernel version.* (<|below|less than) ?4\.11/i],
    layers: ["ptrace-shim", "runtime-flags"],
    fix: "ptrace-shim uname release override; containerd config leaves unprivileged ports/ICMP off",
  },
  {
    cause: "iptables-nft-unsupported",
    component: "k3s/kube-proxy",
    patterns: [/iptables.*Protocol not supported/i, /nf_tables.*(not supported|Protocol)/i],
    layers: ["runtime-flags"],
    fix: "switch iptables to the legacy backend (update-alternatives --set iptables /usr/sbin/iptables-legacy)",
  },
];

/** One recognised line. */
export interface Diagnosis {
  line: string;
  lineNumber: number;
  cause: string;
  component: string;
  layers: FixLayer[];
  fix: string;
}

/** The signature a log line shows, or undefined. */
export function diagnoseLine(line: string): Signature | undefined {
  return SIGNATURES.find((s) => s.patterns.some((p) => p.test(line)));
}

/** Every recognised line of a log text (1-based line numbers). */
export function diagnoseLog(text: string): Diagnosis[] {
  const out: Diagnosis[] = [];
  text.split("\n").forEach((line, i) => {
    const s = diagnoseLine(line);
    if (s) out.push({ line, lineNumber: i + 1, cause: s.cause, component: s.component, layers: s.layers, fix: s.fix });
  });
  return out;
}
