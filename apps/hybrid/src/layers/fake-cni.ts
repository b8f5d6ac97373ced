import type { CniConfList } from "@hybrid/fake-cni";
import { execa } from "execa";
import { mkdir, readFile, readlink, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { probe, type Layer } from "./types.js";

/** Waits until `unshare` has entered its new netns (the link differs from ours). */
async function waitForNetns(nsPath: string): Promise<void> {
  const ours = await readlink(`/proc/${process.pid}/ns/net`);
  for (let i = 0; i < 100; i++) {
    if ((await readlink(nsPath).catch(() => ours)) !== ours) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no new network namespace at ${nsPath}`);
}

/**
 * The fake CNI plugin and its conflist, installed where the runtime reads them, and the resident
 * fake-cni server its native client hands calls to (the plugin falls back to Node without it).
 */
export const fakeCniLayer: Layer = {
  name: "fake-cni",
  title: "fake-cni: install the CNI plugin and conflist",
  async up(plan, ctx) {
    const p = plan.fakeCni!;
    const { installFakeCni, startCniServer } = await import("@hybrid/fake-cni");
    const inst = await installFakeCni({ binDir: p.binDir, confDir: p.confDir, network: { ...p.network }, hostLocalAlias: true });
    const logFile = join(plan.stateDir, "logs", "fake-cni-server.log");
    await mkdir(dirname(logFile), { recursive: true });
    try {
      const srv = await startCniServer({ dataDir: p.network.dataDir, detached: true, logFile });
      ctx.log(`installed ${inst.confFile} (${p.network.mode} mode, ${p.network.subnet}, ${inst.executable} executable); server pid ${srv.pid}`);
      return {
        files: inst.files,
        confFile: inst.confFile,
        binDir: p.binDir,
        confDir: p.confDir,
        mode: p.network.mode,
        dataDir: p.network.dataDir,
        pid: srv.pid,
        socketPath: srv.socketPath,
      };
    } catch (e) {
      await inst.uninstall();
      throw e;
    }
  },
  async down(data) {
    const { stopCniServer, uninstallFakeCni } = await import("@hybrid/fake-cni");
    if (data.socketPath) await stopCniServer({ socketPath: String(data.socketPath), pid: Number(data.pid) || undefined });
    await uninstallFakeCni((data.files as string[]) ?? []);
    await rm(String(data.dataDir), { recursive: true, force: true });
    await rm(dirname(String(data.binDir)), { recursive: true, force: true });
  },
  async check(data) {
    return [
      await probe("fake-cni", "server", async () => {
        const { pingCniServer } = await import("@hybrid/fake-cni");
        const pong = await pingCniServer({ socketPath: String(data.socketPath) });
        if (!pong) throw new Error(`no fake-cni server answers on ${String(data.socketPath)}`);
        return `server pid ${pong.pid} answering (${pong.served} calls served)`;
      }),
      await probe("fake-cni", "ADD/DEL", async () => {
        const { invokeCni } = await import("@hybrid/fake-cni");
        const conflist = JSON.parse(await readFile(String(data.confFile), "utf8")) as CniConfList;
        const containerId = `hybrid-probe-${process.pid}-${Date.now()}`;
        const veth = data.mode === "veth";
        // A netns held by a sleeping process, not `ip netns add`: that would leave iproute2's
        // /run/netns bind mount on the machine.
        const holder = veth ? execa("unshare", ["--net", "sleep", "600"], { reject: false, stdin: "ignore" }) : undefined;
        const netns = holder ? `/proc/${holder.pid}/ns/net` : `/proc/${process.pid}/ns/net`;
        if (holder) await waitForNetns(netns);
        try {
          const common = { conflist, containerId, netns, ifname: "eth0", binDirs: [String(data.binDir)] };
          const result = (await invokeCni({ command: "ADD", ...common })) as { ips?: { address: string }[] };
          const address = result.ips?.[0]?.address;
          if (!address) throw new Error(`ADD returned no address: ${JSON.stringify(result)}`);
          await invokeCni({ command: "DEL", ...common, prevResult: result });
          return `ADD gave ${address}; DEL freed it`;
        } finally {
          if (holder) {
            holder.kill("SIGKILL");
            await holder;
          }
        }
      }),
    ];
  },
};
