/**
 * Inside gVisor only (mounts there are sandbox-wide, and the sandbox ends with this script):
 * a tmpfs at /sys/fs, the cgroupfs at /sys/fs/cgroup (where runc, containerd and the kubelet look),
 * then everything undone. Prints one JSON line.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCgroupfsMounted, mountCgroupfs, readModel } from "../../src/index.js";

const obs: Record<string, unknown> = {};
const dir = mkdtempSync(join(tmpdir(), "cgfs-sysfs-"));
try {
  execFileSync("mount", ["-t", "tmpfs", "tmpfs", "/sys/fs"]);
  mkdirSync("/sys/fs/cgroup");
  const h = await mountCgroupfs({ mountpoint: "/sys/fs/cgroup", stateFile: join(dir, "state.json"), procsDir: join(dir, "procs") });
  obs.controllers = readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8");
  writeFileSync("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids");
  mkdirSync("/sys/fs/cgroup/kubepods/burstable", { recursive: true });
  writeFileSync("/sys/fs/cgroup/kubepods/burstable/cgroup.procs", String(process.pid));
  obs.selfCgroup = readFileSync(join(dir, "procs", String(process.pid)), "utf8");
  obs.memoryMax = readFileSync("/sys/fs/cgroup/kubepods/memory.max", "utf8");
  obs.model = (await readModel(join(dir, "state.json"))).groups.map((g) => g.path);
  writeFileSync("/sys/fs/cgroup/cgroup.procs", String(process.pid));
  await h.unmount();
  obs.unmounted = !(await isCgroupfsMounted("/sys/fs/cgroup"));
} catch (e) {
  obs.error = (e as Error).stack ?? String(e);
} finally {
  try {
    execFileSync("umount", ["/sys/fs"]);
    obs.sysfsRestored = !readFileSync("/proc/mounts", "utf8").includes(" /sys/fs tmpfs");
  } catch (e) {
    obs.umountError = (e as Error).message;
  }
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(obs) + "\n");
  process.exit(0);
}
