/**
 * The same executable and API on the plain host and inside a real gVisor sandbox (runsc, 9p root,
 * no network): in gVisor no veth can be made, so `auto` falls back to noop and the probe says so.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runScenario, TARGETS } from "@hybrid/testbed";

const SCRIPT = join(import.meta.dirname, "scenarios", "noop-chain.ts");

interface Seen {
  error?: string;
  probe: { mode: string; reason: string };
  installed: string[];
  status: unknown;
  add: { ips: { address: string }[]; interfaces: string[]; cniVersion: string }[];
  check: string;
  afterGc: string[];
  afterDel: string[];
  parallel: { count: number; unique: number };
  afterParallelDel: string[];
  leftAfterUninstall: string[];
}

describe.each(TARGETS)("on $name", (target) => {
  const mode = target.kind === "gvisor" ? "auto" : "noop";
  it(`c06: the installed config answers STATUS ready; c12: without flannel its conflist serves ADD (${mode} mode), CHECK, GC, DEL and 20 parallel ADDs`, async () => {
    const seen = await runScenario<Seen>(target, SCRIPT, [mode], { cwd: join(import.meta.dirname, ".."), timeoutMs: 240_000 });
    expect(seen.error).toBeUndefined();
    expect(seen.probe.mode).toBe(target.kind === "gvisor" ? "noop" : "veth");
    expect(seen.installed).toEqual(["/bin/", "/bin/fake-cni", "/bin/host-local", "/net.d/", "/net.d/10-fake-cni.conflist", "/ipam/"]);
    expect(seen.status).toEqual({});
    expect(seen.add.map((a) => a.ips[0]!.address)).toEqual(["10.70.0.2/24", "10.70.0.3/24"]);
    expect(seen.add.map((a) => a.interfaces)).toEqual([["eth0"], ["eth0"]]); // noop: the container interface only
    expect(seen.add[0]!.cniVersion).toBe("1.1.0");
    expect(seen.check).toBe("ok");
    expect(seen.afterGc).toEqual(["10.70.0.2"]);
    expect(seen.afterDel).toEqual([]);
    expect(seen.parallel).toEqual({ count: 20, unique: 20 });
    expect(seen.afterParallelDel).toEqual([]);
    expect(seen.leftAfterUninstall).toEqual([]);
  }, 300_000);
});
