/**
 * `hybrid doctor`: what this environment lacks for a Kubernetes node, and which layers fill it.
 */
import type { HybridConfig } from "../config.js";
import {
  probeCgroup,
  probeDevKmsg,
  probeOverlay,
  probeProcSysWritable,
  probeRootfs,
  probeSandbox,
  readMountinfo,
  type SandboxKind,
} from "./probes.js";

export type LayerName = "cgroupfs" | "fake-cni" | "ptrace-shim" | "runtime";
/** Bring-up order; teardown is the reverse. */
export const LAYER_ORDER: readonly LayerName[] = ["cgroupfs", "fake-cni", "ptrace-shim", "runtime"];

/** Whether a layer is needed here, and why. */
export interface LayerNeed {
  needed: boolean;
  reason: string;
}

/** The controllers the kubelet, runc and k3s require in a cgroup v2 root. */
export const REQUIRED_CONTROLLERS = ["cpu", "cpuset", "memory", "pids"] as const;

/** Everything `doctor` found. The JSON form of `hybrid doctor --json`. */
export interface Findings {
  sandbox: SandboxKind;
  sandboxEvidence: string;
  kernelRelease: string;
  rootfs: { fsType: string; magic: string; cadvisorAccepts: boolean };
  cgroup: { version: "v1" | "v2" | "hybrid" | "none"; controllers: string[]; v2Mount?: string };
  procSysWritable: boolean;
  procSysDetail: string;
  devKmsg: boolean;
  fuse: boolean;
  fuseDetail: string;
  ptrace: boolean;
  seccompTrace: boolean;
  ptraceDetail: string;
  overlay: boolean;
  overlayDetail: string;
  cniMode: "veth" | "noop";
  cniDetail: string;
  isRoot: boolean;
  layers: Record<LayerName, LayerNeed>;
}

async function guarded<T>(fn: () => Promise<T>, fallback: (e: Error) => T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    return fallback(e as Error);
  }
}

/** Kernel release below 4.11 (containerd's CRI then refuses unprivileged ports/ICMP). */
export function kernelBelow(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a < major || (a === major && b < minor);
}

/**
 * Decides which layers are needed from the findings and the config (`enabled: true|false`
 * overrides `auto`).
 */
export function layerNeeds(f: Omit<Findings, "layers">, config: HybridConfig): Record<LayerName, LayerNeed> {
  const missing = REQUIRED_CONTROLLERS.filter((c) => !f.cgroup.controllers.includes(c));
  const cgroupOk = f.cgroup.version === "v2" && missing.length === 0;
  const cg: LayerNeed = cgroupOk
    ? { needed: false, reason: `cgroup v2 at ${f.cgroup.v2Mount} with ${REQUIRED_CONTROLLERS.join(",")}` }
    : {
        needed: true,
        reason:
          f.cgroup.version === "v2"
            ? `cgroup v2 lacks controllers: ${missing.join(",")}`
            : `no usable cgroup v2 hierarchy at /sys/fs/cgroup (found: ${f.cgroup.version}${f.cgroup.controllers.length ? " " + f.cgroup.controllers.join(",") : ""})`,
      };
  const cni: LayerNeed = {
    needed: true,
    reason:
      f.cniMode === "noop"
        ? "no veth/bridge can be made here: reference CNI plugins and flannel fail; fake-cni in noop mode"
        : "the kubelet needs a CNI config and plugin (flannel is disabled); fake-cni in veth mode",
  };
  const shimReasons: string[] = [];
  if (!f.rootfs.cadvisorAccepts) shimReasons.push(`root fs ${f.rootfs.fsType} is not a type cAdvisor accepts (statfs rewrite to ext4)`);
  if (cg.needed || config.cgroupfs.enabled === true) shimReasons.push("statfs of /sys/fs/cgroup must report cgroup2 on the cgroupfs mount (redirect + magic)");
  if (!f.procSysWritable) shimReasons.push("/proc/sys is not writable (shadow store)");
  if (!f.devKmsg) shimReasons.push("/dev/kmsg is missing (stand-in)");
  if (kernelBelow(f.kernelRelease, 4, 11)) shimReasons.push(`kernel release ${f.kernelRelease} reads below 4.11 (uname override)`);
  const shim: LayerNeed = shimReasons.length
    ? { needed: true, reason: shimReasons.join("; ") }
    : { needed: false, reason: "filesystem types, cgroups, /proc/sys and /dev/kmsg are all usable as they are" };
  if (shim.needed && !f.ptrace) {
    shim.reason += "; but ptrace is not available here: " + f.ptraceDetail;
  }
  const override = (need: LayerNeed, enabled: "auto" | boolean, what: string): LayerNeed =>
    enabled === "auto" ? need : { needed: enabled, reason: `${what}.enabled is ${enabled} in the config (auto would say: ${need.reason})` };
  return {
    cgroupfs: override(cg, config.cgroupfs.enabled, "cgroupfs"),
    "fake-cni": override(cni, config.cni.enabled, "cni"),
    "ptrace-shim": override(shim, config.shim.enabled, "shim"),
    runtime: { needed: true, reason: "k3s when a binary is found, otherwise the OS's containerd (the runtime k3s embeds)" },
  };
}

/** Runs every probe. Never throws: a probe that fails reports its reason. */
export async function runDoctor(config: HybridConfig): Promise<Findings> {
  const mounts = await readMountinfo();
  const [sandbox, rootfs, cgroup, procSys, devKmsg, overlay] = await Promise.all([
    probeSandbox(mounts),
    probeRootfs(),
    probeCgroup(mounts),
    probeProcSysWritable(),
    probeDevKmsg(),
    probeOverlay(),
  ]);
  const fuse = await guarded(
    async () => (await import("@hybrid/cgroupfs")).probeFuse(),
    (e) => ({ available: false, detail: `probe failed: ${e.message}` }),
  );
  const ptrace = await guarded(
    async () => (await import("@hybrid/ptrace-shim")).probePtrace(),
    (e) => ({ ptrace: false, seccompTrace: false, detail: `probe failed: ${e.message}` }),
  );
  const cni = await guarded(
    async () => (await import("@hybrid/fake-cni")).probeCniMode(),
    (e) => ({ mode: "noop" as const, reason: `probe failed: ${e.message}` }),
  );
  const base: Omit<Findings, "layers"> = {
    sandbox: sandbox.kind,
    sandboxEvidence: sandbox.evidence,
    kernelRelease: sandbox.kernelRelease,
    rootfs,
    cgroup,
    procSysWritable: procSys.writable,
    procSysDetail: procSys.detail,
    devKmsg,
    fuse: fuse.available,
    fuseDetail: fuse.detail,
    ptrace: ptrace.ptrace,
    seccompTrace: ptrace.seccompTrace,
    ptraceDetail: ptrace.detail,
    overlay: overlay.available,
    overlayDetail: overlay.detail,
    cniMode: cni.mode,
    cniDetail: cni.reason,
    isRoot: process.getuid?.() === 0,
  };
  return { ...base, layers: layerNeeds(base, config) };
}

/** Human-readable doctor report. */
export function formatFindings(f: Findings): string {
  const yn = (b: boolean) => (b ? "yes" : "no");
  const lines = [
    `sandbox:          ${f.sandbox} (${f.sandboxEvidence}); kernel ${f.kernelRelease}`,
    `root filesystem:  ${f.rootfs.fsType} (${f.rootfs.magic})${f.rootfs.cadvisorAccepts ? "" : " — not accepted by cAdvisor"}`,
    `cgroup:           ${f.cgroup.version}${f.cgroup.controllers.length ? " [" + f.cgroup.controllers.join(" ") + "]" : ""}`,
    `/proc/sys write:  ${yn(f.procSysWritable)} (${f.procSysDetail})`,
    `/dev/kmsg:        ${yn(f.devKmsg)}`,
    `FUSE:             ${yn(f.fuse)} (${f.fuseDetail})`,
    `ptrace:           ${yn(f.ptrace)}; seccomp RET_TRACE: ${yn(f.seccompTrace)} (${f.ptraceDetail})`,
    `overlay mount:    ${yn(f.overlay)}${f.overlay ? "" : " (" + f.overlayDetail + ")"}`,
    `CNI mode:         ${f.cniMode} (${f.cniDetail})`,
    ``,
    `layers:`,
    ...LAYER_ORDER.map((l) => `  ${f.layers[l].needed ? "needed    " : "not needed"} ${l.padEnd(12)} ${f.layers[l].reason}`),
  ];
  return lines.join("\n");
}
