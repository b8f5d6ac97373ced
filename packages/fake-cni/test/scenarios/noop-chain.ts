/**
 * Scenario run on the host and inside gVisor (one process, one sandbox): install fake-cni into
 * temp dirs, STATUS, ADD, CHECK, GC, DEL through the built executable and the invoker, plus 20
 * parallel ADDs. Prints one JSON line with what it saw. argv[2]: the mode to configure; argv[3]:
 * `server` to start a fake-cni server for the dataDir first (the installed native client then
 * goes through it), anything else to run without one (the client falls back to Node).
 * The container netns is a file bind-mounted by `unshare --net=FILE`, the shape containerd and k3s
 * hand to plugins (gVisor refuses to open such a file: ELOOP; auto mode must answer as noop).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CniServerHandle, installFakeCni, invokeCni, pingCniServer, probeCniMode, startCniServer, type CniResult } from "../../src/index.js";

const mode = (process.argv[2] ?? "noop") as "noop" | "auto" | "veth";
const dir = mkdtempSync(join(tmpdir(), "fake-cni-scn-"));
const withServer = process.argv[3] === "server";
const nsDir = mkdtempSync(join(tmpdir(), "fake-cni-scn-ns-"));
const netns = join(nsDir, "cni-scn");
const out: Record<string, unknown> = {};
let server: CniServerHandle | undefined;
try {
  out.probe = await probeCniMode();
  writeFileSync(netns, "");
  const made = spawnSync("unshare", [`--net=${netns}`, "true"], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`unshare --net=${netns}: ${made.stderr}`);
  const dataDir = join(dir, "ipam");
  const binDirs = [join(dir, "bin")];
  const inst = await installFakeCni({
    binDir: binDirs,
    confDir: join(dir, "net.d"),
    network: { name: "scn", subnet: "10.70.0.0/24", mode, dataDir, routes: [{ dst: "0.0.0.0/0" }] },
    hostLocalAlias: true,
  });
  out.installed = inst.files.map((f) => f.slice(dir.length));
  out.executable = inst.executable;
  if (withServer) server = await startCniServer({ dataDir });
  const conflist = inst.conflist;
  const recs = (): string[] => readdirSync(join(dataDir, "scn")).filter((n) => n.startsWith("10.")).sort();
  out.status = await invokeCni({ command: "STATUS", conflist, binDirs });
  const a = await invokeCni({ command: "ADD", conflist, binDirs, containerId: "ctr-a", netns });
  const b = await invokeCni({ command: "ADD", conflist, binDirs, containerId: "ctr-b", netns });
  out.add = [a, b].map((r: CniResult) => ({ ips: r.ips, interfaces: r.interfaces?.map((i) => i.name), cniVersion: r.cniVersion }));
  await invokeCni({ command: "CHECK", conflist, binDirs, containerId: "ctr-a", netns, prevResult: a });
  out.check = "ok";
  await invokeCni({ command: "GC", conflist, binDirs, validAttachments: [{ containerID: "ctr-a", ifname: "eth0" }] });
  out.afterGc = recs();
  await invokeCni({ command: "DEL", conflist, binDirs, containerId: "ctr-a", netns, prevResult: a });
  await invokeCni({ command: "DEL", conflist, binDirs, containerId: "ctr-a", netns }); // idempotent
  out.afterDel = recs();
  const par = await Promise.all(
    Array.from({ length: 20 }, (_, i) => invokeCni({ command: "ADD", conflist, binDirs, containerId: `p${i}`, netns })),
  );
  const addrs = par.map((r) => r.ips?.[0]?.address);
  out.parallel = { count: addrs.length, unique: new Set(addrs).size };
  await Promise.all(Array.from({ length: 20 }, (_, i) => invokeCni({ command: "DEL", conflist, binDirs, containerId: `p${i}`, netns })));
  out.afterParallelDel = recs();
  if (server) {
    out.served = (await pingCniServer({ socketPath: server.socketPath }))?.served;
    await server.stop();
    server = undefined;
  }
  await inst.uninstall();
  out.leftAfterUninstall = readdirSync(dir);
} catch (e) {
  out.error = String((e as Error).stack ?? e);
} finally {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
  spawnSync("umount", [netns]);
  rmSync(nsDir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
