import { mkdir, readFile, rm, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pidAlive } from "../state.js";
import { probe, type Layer } from "./types.js";

/** The FUSE cgroup v2 emulation, mounted at the plan's mount point by a detached daemon. */
export const cgroupfsLayer: Layer = {
  name: "cgroupfs",
  title: "cgroupfs: mount the FUSE cgroup v2 hierarchy",
  async up(plan, ctx) {
    const p = plan.cgroupfs!;
    const { mountCgroupfs } = await import("@hybrid/cgroupfs");
    await mkdir(dirname(p.logFile), { recursive: true });
    await mkdir(p.procsDir, { recursive: true });
    const handle = await mountCgroupfs({
      mountpoint: p.mountpoint,
      stateFile: p.stateFile,
      procsDir: p.procsDir,
      logFile: p.logFile,
      detached: true,
      readyTimeoutMs: p.readyTimeoutMs,
    });
    const controllers = (await readFile(join(p.mountpoint, "cgroup.controllers"), "utf8")).trim();
    ctx.log(`mounted at ${p.mountpoint} (daemon pid ${handle.pid}; controllers: ${controllers})`);
    return { mountpoint: p.mountpoint, pid: handle.pid, stateFile: p.stateFile, procsDir: p.procsDir };
  },
  async down(data) {
    const { unmountCgroupfs } = await import("@hybrid/cgroupfs");
    await unmountCgroupfs({ mountpoint: String(data.mountpoint), pid: Number(data.pid) || undefined, timeoutMs: 10_000 });
    await rm(dirname(String(data.stateFile)), { recursive: true, force: true });
    await rmdir(String(data.mountpoint)).catch(() => undefined);
  },
  async check(data) {
    const mountpoint = String(data.mountpoint);
    const { isCgroupfsMounted } = await import("@hybrid/cgroupfs");
    return [
      await probe("cgroupfs", "daemon", async () => {
        if (!pidAlive(Number(data.pid))) throw new Error(`daemon pid ${String(data.pid)} is gone`);
        if (!(await isCgroupfsMounted(mountpoint))) throw new Error(`${mountpoint} is not mounted`);
        return `pid ${String(data.pid)} serving ${mountpoint}`;
      }),
      await probe("cgroupfs", "read root", async () => {
        const controllers = (await readFile(join(mountpoint, "cgroup.controllers"), "utf8")).trim();
        const stat = await readFile(join(mountpoint, "cpu.stat"), "utf8");
        if (!/usage_usec \d+/.test(stat)) throw new Error(`root cpu.stat has no usage_usec: ${stat.slice(0, 80)}`);
        return `controllers: ${controllers}`;
      }),
      await probe("cgroupfs", "mkdir/rmdir", async () => {
        const g = join(mountpoint, `hybrid-probe-${process.pid}`);
        await mkdir(g);
        try {
          await readFile(join(g, "cgroup.events"), "utf8");
        } finally {
          await rmdir(g);
        }
        return "child group created and removed";
      }),
    ];
  },
};
