import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { readMountinfo } from "../doctor/probes.js";
import { dirname, join } from "node:path";
import type { Plan } from "../plan.js";
import { pidAlive } from "../state.js";
import { probe, type Layer } from "./types.js";

/** The argv prefix that runs a program under the shim, when the shim layer is up. */
async function shimWrap(plan: Plan, state: { layers: { name: string; data: Record<string, unknown> }[] }): Promise<string[] | undefined> {
  const shim = state.layers.find((l) => l.name === "ptrace-shim");
  if (!shim) return undefined;
  const { tracedWrap } = await import("@hybrid/ptrace-shim");
  return tracedWrap({ rulesFile: String(shim.data.rulesFile), traceLog: plan.shim?.traceLog });
}

/**
 * Paths k3s (and its kubelet and embedded containerd) use outside its --data-dir, as k3s's own
 * k3s-killall.sh cleans them: containerd state, kubelet root, pod logs, CNI state, netns.
 * `down` unmounts what is mounted below them and removes the ones that did not exist before `up`.
 */
export const K3S_HOST_PATHS = ["/run/k3s", "/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/var/lib/cni", "/run/flannel"];

async function cleanHostPaths(paths: string[]): Promise<void> {
  const mounts = (await readMountinfo())
    .map((m) => m.mountPoint)
    .filter((mp) => paths.some((p) => mp === p || mp.startsWith(p + "/")))
    .sort((a, b) => b.length - a.length);
  for (const mp of mounts) await execa("umount", ["-l", mp], { reject: false });
  for (const p of paths) await rm(p, { recursive: true, force: true });
}

/**
 * The container runtime: k3s when a binary is given, otherwise the OS's containerd (the runtime
 * k3s embeds), started detached under the shim.
 */
export const runtimeLayer: Layer = {
  name: "runtime",
  title: "runtime: start the container runtime under the shim",
  async up(plan, ctx, state) {
    const p = plan.runtime;
    const launcher = await import("@hybrid/k3s-launcher");
    const wrap = await shimWrap(plan, state);
    await mkdir(p.dir, { recursive: true });
    await mkdir(dirname(p.logFile), { recursive: true });
    if (p.kind === "containerd") {
      const h = await launcher.startContainerd({
        stateDir: p.dir,
        cniBinDir: p.cniBinDir ?? join(p.dir, "cni", "bin"),
        cniConfDir: p.cniConfDir ?? join(p.dir, "cni", "net.d"),
        wrap,
        detached: true,
        logFile: p.logFile,
        readyTimeoutMs: p.readyTimeoutMs,
      });
      ctx.log(`containerd pid ${h.pid} answering on ${h.socket}${wrap ? " (under the shim)" : ""}`);
      return { kind: "containerd", pid: h.pid, socket: h.socket, dir: p.dir, wrapped: Boolean(wrap) };
    }
    const dataDir = join(p.dir, "k3s");
    const kubeconfig = join(p.dir, "kubeconfig.yaml");
    const f = plan.findings;
    const args = [
      ...launcher.buildK3sServerArgs(f.sandbox, {
        dataDir,
        kubeconfig,
        httpsPort: p.httpsPort,
        cgroupsAvailable: f.cgroup.version === "v2" || Boolean(plan.cgroupfs),
        procSysWritable: f.procSysWritable || Boolean(plan.shim),
        // gVisor mounts overlay itself, but containerd's overlayfs snapshotter over its 9p root is
        // what k3s users saw fail (case c05): use the native snapshotter there.
        overlayAvailable: f.overlay && f.sandbox !== "gvisor",
        conntrackWritable: f.procSysWritable,
      }),
      ...(p.k3sArgs ?? []),
    ];
    const createdHostPaths = K3S_HOST_PATHS.filter((p) => !existsSync(p));
    const h = await launcher
      .startK3s({ binary: p.k3sBin!, args, wrap, detached: true, logFile: p.logFile, kubeconfig, readyTimeoutMs: p.readyTimeoutMs })
      .catch(async (e: unknown) => {
        await cleanHostPaths(createdHostPaths);
        throw e;
      });
    const record: Record<string, unknown> = { kind: "k3s", pid: h.pid, kubeconfig, dataDir, dir: p.dir, wrapped: Boolean(wrap), cniFiles: [] as string[], createdHostPaths };
    // k3s generates its containerd config; read the CNI dirs from it instead of guessing, and put
    // the fake-cni plugin and conflist there too.
    const fake = state.layers.find((l) => l.name === "fake-cni");
    if (fake && plan.fakeCni) {
      try {
        const { cniDirsFromContainerdConfig, installFakeCni } = await import("@hybrid/fake-cni");
        const toml = await readFile(join(dataDir, "agent", "etc", "containerd", "config.toml"), "utf8");
        const dirs = cniDirsFromContainerdConfig(toml);
        const inst = await installFakeCni({ binDir: dirs.binDirs, confDir: dirs.confDir, network: { ...plan.fakeCni.network }, hostLocalAlias: true });
        record.cniFiles = inst.files;
        ctx.log(`fake-cni also installed where k3s's containerd reads: ${dirs.confDir}, ${dirs.binDirs.join(":")}`);
      } catch (e) {
        await launcher.stopPid(h.pid!, { graceMs: 10_000 });
        await cleanHostPaths(createdHostPaths);
        throw e;
      }
    }
    ctx.log(`k3s pid ${h.pid} ready (kubeconfig ${kubeconfig})`);
    return record;
  },
  async down(data) {
    const launcher = await import("@hybrid/k3s-launcher");
    if (data.pid) await launcher.stopPid(Number(data.pid), { graceMs: 15_000 });
    const cniFiles = (data.cniFiles as string[] | undefined) ?? [];
    if (cniFiles.length) {
      const { uninstallFakeCni } = await import("@hybrid/fake-cni");
      await uninstallFakeCni(cniFiles);
    }
    await cleanHostPaths((data.createdHostPaths as string[] | undefined) ?? []);
    await rm(String(data.dir), { recursive: true, force: true });
  },
  async check(data) {
    const launcher = await import("@hybrid/k3s-launcher");
    return [
      await probe("runtime", "process", async () => {
        if (!pidAlive(Number(data.pid))) throw new Error(`${String(data.kind)} pid ${String(data.pid)} is gone`);
        return `${String(data.kind)} pid ${String(data.pid)} alive`;
      }),
      await probe("runtime", "api", async () => {
        const r = data.kind === "k3s" ? await launcher.probeK3s(String(data.kubeconfig)) : await launcher.probeContainerd(String(data.socket));
        if (!r.ok) throw new Error(r.detail);
        return r.detail;
      }),
    ];
  },
};
