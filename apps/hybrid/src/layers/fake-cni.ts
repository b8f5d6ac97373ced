import { execa } from "execa";
import type { CniConfList } from "@hybrid/fake-cni";
import { readFile, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { probe, type Layer } from "./types.js";

/** The fake CNI plugin and its conflist, installed where the runtime reads them. */
export const fakeCniLayer: Layer = {
  name: "fake-cni",
  title: "fake-cni: install the CNI plugin and conflist",
  async up(plan, ctx) {
    const p = plan.fakeCni!;
    const { installFakeCni } = await import("@hybrid/fake-cni");
    const inst = await installFakeCni({ binDir: p.binDir, confDir: p.confDir, network: { ...p.network }, hostLocalAlias: true });
    ctx.log(`installed ${inst.confFile} (${p.network.mode} mode, ${p.network.subnet})`);
    return { files: inst.files, confFile: inst.confFile, binDir: p.binDir, confDir: p.confDir, mode: p.network.mode, dataDir: p.network.dataDir };
  },
  async down(data) {
    const { uninstallFakeCni } = await import("@hybrid/fake-cni");
    await uninstallFakeCni((data.files as string[]) ?? []);
    await rm(String(data.dataDir), { recursive: true, force: true });
    await rm(dirname(String(data.binDir)), { recursive: true, force: true });
  },
  async check(data) {
    return [
      await probe("fake-cni", "ADD/DEL", async () => {
        const { invokeCni } = await import("@hybrid/fake-cni");
        const conflist = JSON.parse(await readFile(String(data.confFile), "utf8")) as CniConfList;
        const containerId = `hybrid-probe-${process.pid}-${Date.now()}`;
        let netns = `/var/run/netns/${containerId}`;
        const veth = data.mode === "veth";
        if (veth) await execa("ip", ["netns", "add", containerId]);
        else netns = `/proc/${process.pid}/ns/net`;
        try {
          const common = { conflist, containerId, netns, ifname: "eth0", binDirs: [String(data.binDir)] };
          const result = (await invokeCni({ command: "ADD", ...common })) as { ips?: { address: string }[] };
          const address = result.ips?.[0]?.address;
          if (!address) throw new Error(`ADD returned no address: ${JSON.stringify(result)}`);
          await invokeCni({ command: "DEL", ...common });
          return `ADD gave ${address}; DEL freed it`;
        } finally {
          if (veth) await execa("ip", ["netns", "del", containerId], { reject: false });
        }
      }),
    ];
  },
};
