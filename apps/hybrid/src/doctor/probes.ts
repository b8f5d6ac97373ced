/**
 * Environment probes for `hybrid doctor`. Each probe returns a plain, JSON-serialisable finding;
 * a probe that cannot run reports the reason instead of throwing. Layer-specific probes (FUSE,
 * ptrace/seccomp, netns/veth) belong to the layer packages and are called from here.
 */
import { execa } from "execa";
import { constants as fsc } from "node:fs";
import { access, mkdtemp, mkdir, open, readFile, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cadvisorAccepts, magicHex, magicName } from "./magic.js";

export type SandboxKind = "gvisor" | "container" | "vm" | "host";

/** One line of /proc/self/mountinfo (proc(5)). */
export interface MountInfo {
  mountPoint: string;
  root: string;
  fsType: string;
  source: string;
  options: string;
  superOptions: string;
}

/** Parses /proc/self/mountinfo text (proc(5) format; octal escapes such as `\040` decoded). */
export function parseMountinfo(text: string): MountInfo[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const [left, right] = line.split(" - ");
    if (!left || right === undefined) continue;
    const l = left.split(" ");
    const r = right.split(" ");
    out.push({
      root: unescape(l[3] ?? ""),
      mountPoint: unescape(l[4] ?? ""),
      options: l[5] ?? "",
      fsType: r[0] ?? "",
      source: unescape(r[1] ?? ""),
      superOptions: r[2] ?? "",
    });
  }
  return out;
}

export async function readMountinfo(): Promise<MountInfo[]> {
  return parseMountinfo(await readFile("/proc/self/mountinfo", "utf8"));
}

/** statfs of `/`: the type name and its magic in hex; whether cAdvisor accepts it. */
export async function probeRootfs(): Promise<{ fsType: string; magic: string; cadvisorAccepts: boolean }> {
  const s = await statfs("/");
  return { fsType: magicName(s.type), magic: magicHex(s.type), cadvisorAccepts: cadvisorAccepts(s.type) };
}

const V1_CONTROLLERS = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"];

/**
 * The cgroup setup as the kubelet/runc would see it: `v2` when /sys/fs/cgroup is a cgroup2
 * mount, `v1` for only v1 hierarchies, `hybrid` for v1 hierarchies plus a cgroup2 mount
 * elsewhere (systemd's "unified" layout), `none` when nothing is mounted.
 * `controllers`: v2 → the root `cgroup.controllers`; v1/hybrid → the v1 controllers mounted.
 */
export async function probeCgroup(mounts?: MountInfo[]): Promise<{ version: "v1" | "v2" | "hybrid" | "none"; controllers: string[]; v2Mount?: string }> {
  const m = mounts ?? (await readMountinfo());
  const v2 = m.filter((x) => x.fsType === "cgroup2");
  const v1 = m.filter((x) => x.fsType === "cgroup");
  const v1Controllers = [...new Set(v1.flatMap((x) => x.superOptions.split(",").filter((o) => V1_CONTROLLERS.includes(o))))].sort();
  const v2AtRoot = v2.find((x) => x.mountPoint === "/sys/fs/cgroup");
  if (v2AtRoot) {
    const controllers = (await readFile("/sys/fs/cgroup/cgroup.controllers", "utf8").catch(() => "")).trim().split(/\s+/).filter(Boolean);
    return { version: "v2", controllers, v2Mount: v2AtRoot.mountPoint };
  }
  if (v1.length && v2.length) return { version: "hybrid", controllers: v1Controllers, v2Mount: v2[0]!.mountPoint };
  if (v1.length) return { version: "v1", controllers: v1Controllers };
  if (v2.length) {
    const controllers = (await readFile(join(v2[0]!.mountPoint, "cgroup.controllers"), "utf8").catch(() => "")).trim().split(/\s+/).filter(Boolean);
    return { version: "v2", controllers, v2Mount: v2[0]!.mountPoint };
  }
  return { version: "none", controllers: [] };
}

/**
 * Whether `/proc/sys` takes writes: writes `vm/overcommit_memory`'s current value back to it
 * (a no-op change). gVisor answers EIO; read-only bind mounts answer EROFS/EACCES.
 */
export async function probeProcSysWritable(): Promise<{ writable: boolean; detail: string }> {
  const key = "/proc/sys/vm/overcommit_memory";
  try {
    const value = await readFile(key, "utf8");
    const fh = await open(key, "w");
    try {
      await fh.write(value);
    } finally {
      await fh.close();
    }
    return { writable: true, detail: `${key} accepted a write` };
  } catch (e) {
    return { writable: false, detail: `${key}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
}

/** Whether `/dev/kmsg` can be opened for reading (the kubelet's OOM watcher opens it). */
export async function probeDevKmsg(): Promise<boolean> {
  try {
    await access("/dev/kmsg", fsc.R_OK);
    const fh = await open("/dev/kmsg", fsc.O_RDONLY | fsc.O_NONBLOCK);
    await fh.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether an overlay filesystem can be mounted here (containerd's overlayfs snapshotter needs it;
 * k3s then needs `--snapshotter=native`). Mounts and unmounts one in a temp dir.
 */
export async function probeOverlay(): Promise<{ available: boolean; detail: string }> {
  const dir = await mkdtemp(join(tmpdir(), "hybrid-overlay-probe-"));
  const [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map((d) => join(dir, d)) as [string, string, string, string];
  try {
    for (const d of [lower, upper, work, merged]) await mkdir(d);
    const r = await execa("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged], { reject: false });
    if (r.exitCode !== 0) return { available: false, detail: (r.stderr || r.stdout).trim() || `mount exited ${r.exitCode}` };
    await execa("umount", [merged], { reject: false });
    return { available: true, detail: "mounted an overlay in a temp dir" };
  } catch (e) {
    return { available: false, detail: (e as Error).message };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The kind of place we run in:
 * - `gvisor`: the kernel log says "Starting gVisor" or the root is gVisor's 9p gofer mount (`trans=fd`);
 * - `container`: /.dockerenv, /run/.containerenv, or a container cgroup path;
 * - `vm`: the CPU reports the `hypervisor` flag;
 * - `host` otherwise.
 */
export async function probeSandbox(mounts?: MountInfo[]): Promise<{ kind: SandboxKind; evidence: string; kernelRelease: string }> {
  const m = mounts ?? (await readMountinfo());
  const kernelRelease = (await readFile("/proc/sys/kernel/osrelease", "utf8").catch(() => "")).trim() || (await execa("uname", ["-r"], { reject: false })).stdout.trim();
  const dmesg = await execa("dmesg", [], { reject: false, timeout: 3000 });
  if (/gVisor/.test(dmesg.stdout)) return { kind: "gvisor", evidence: "kernel log: Starting gVisor", kernelRelease };
  const root = m.find((x) => x.mountPoint === "/");
  if (root?.fsType === "9p" && root.superOptions.includes("trans=fd")) return { kind: "gvisor", evidence: "root is a 9p gofer mount (trans=fd)", kernelRelease };
  for (const f of ["/.dockerenv", "/run/.containerenv"]) {
    try {
      await access(f);
      return { kind: "container", evidence: `${f} exists`, kernelRelease };
    } catch {
      /* absent */
    }
  }
  const cg = await readFile("/proc/1/cgroup", "utf8").catch(() => "");
  if (/docker|kubepods|containerd|lxc|libpod/.test(cg)) return { kind: "container", evidence: "pid 1's cgroup path names a container runtime", kernelRelease };
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  if (/^flags\s*:.*\bhypervisor\b/m.test(cpuinfo)) return { kind: "vm", evidence: "CPU flag hypervisor", kernelRelease };
  return { kind: "host", evidence: "no sandbox, container or hypervisor sign", kernelRelease };
}
