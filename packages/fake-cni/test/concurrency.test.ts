/**
 * The IPAM lock under load: 200 plugin calls started at once (as processes, or through the server), ADDs across 2 networks sharing
 * one dataDir, then 200 DELs at once. No address may be handed out twice, no record may remain.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { netConf, runVia, stopServers, tempDir, VIAS, serveUnder } from "./helpers.js";

// Through the server (client+server) the 200 calls run in its worker pool under the in-process
// mutex plus the lock file; with `client` every call falls back to its own Node process.
describe.each(VIAS)("concurrency via %s", (via) => {
  const T = tempDir(`conc-${via.replace("+", "-")}`);
  serveUnder(T.dir);
  afterAll(async () => {
    await stopServers();
    T.cleanup();
  });
  it("200 parallel ADDs then DELs across 2 networks: no duplicate address, no record left", async () => {
    const runPlugin = (e: Record<string, string>, s: string) => runVia(via, e, s);
    const nets = [
      netConf(T.dir, { name: "neta", cniVersion: "1.0.0" }, { ranges: [[{ subnet: "10.50.0.0/24" }]] }),
      netConf(T.dir, { name: "netb", cniVersion: "1.1.0" }, { ranges: [[{ subnet: "10.51.0.0/25" }], [{ subnet: "fd00:51::/120" }]] }),
    ];
    const jobs = Array.from({ length: 200 }, (_, i) => ({ id: `ctr${i}`, conf: nets[i % 2]! }));
    const env = (cmd: string, id: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_IFNAME: "eth0", CNI_NETNS: `/proc/1/ns/net` });
    const adds = await Promise.all(jobs.map((j) => runPlugin(env("ADD", j.id), JSON.stringify(j.conf))));
    const failures = adds.filter((r) => r.code !== 0);
    expect(failures.map((f) => `${f.code} ${f.stdout} ${f.stderr}`)).toEqual([]);
    for (const net of ["neta", "netb"]) {
      const addrs = adds
        .filter((_, i) => jobs[i]!.conf.name === net)
        .flatMap((r) => (r.json?.ips as { address: string }[]).map((ip) => ip.address));
      expect(addrs.length).toBe(net === "neta" ? 100 : 200);
      expect(new Set(addrs).size).toBe(addrs.length);
      const files = readdirSync(join(T.dir, net)).filter((n) => /^[0-9a-f.:]+$/.test(n));
      expect(files.length).toBe(addrs.length);
    }
    const dels = await Promise.all(jobs.map((j) => runPlugin(env("DEL", j.id), JSON.stringify(j.conf))));
    expect(dels.filter((r) => r.code !== 0).map((r) => r.stdout)).toEqual([]);
    for (const net of ["neta", "netb"]) {
      const left = readdirSync(join(T.dir, net)).filter((n) => !n.startsWith("last_reserved_ip."));
      expect(left).toEqual([]);
    }
    expect(existsSync(join(T.dir, "neta", "fake-cni.lock"))).toBe(false);
  });
});
