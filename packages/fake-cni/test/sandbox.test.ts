/**
 * The same executable and API on the plain host and inside a real gVisor sandbox (runsc, 9p root,
 * no network): in gVisor no veth can be made, so `auto` falls back to noop and the probe says so.
 * The installed executable is the native client; each target runs once with a resident server
 * (every call goes through it) and once without (every call falls back to the Node bundle).
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
  executable: string;
  served?: number;
}

describe.each(TARGETS)("on $name", (target) => {
  const mode = target.kind === "gvisor" ? "auto" : "noop";
  it.each([
    ["the native client, Node fallback", "no-server"],
    ["the native client and a server", "server"],
  ])(`c06: the installed config answers STATUS ready; c12: without flannel its conflist serves ADD (${mode} mode), CHECK, GC, DEL and 20 parallel ADDs, through %s`, async (_how, server) => {
    const seen = await runScenario<Seen>(target, SCRIPT, [mode, server], { cwd: join(import.meta.dirname, ".."), timeoutMs: 240_000 });
    expect(seen.error).toBeUndefined();
    expect(seen.executable).toBe("native");
    // STATUS, 2 ADD, CHECK, GC, 2 DEL, 20 ADD, 20 DEL: 47 requests through the server
    expect(seen.served).toBe(server === "server" ? 47 : undefined);
    expect(seen.probe.mode).toBe(target.kind === "gvisor" ? "noop" : "veth");
    // gVisor: opening the bind-mounted netns file gives ELOOP (RTM_NEWLINK veth: EOPNOTSUPP)
    if (target.kind === "gvisor") expect(seen.probe.reason).toMatch(/cannot create a veth pair: (ELOOP|EOPNOTSUPP)/);
    expect(seen.installed).toEqual(["/bin/", "/bin/fake-cni", "/bin/fake-cni.cjs", "/bin/fake-cni-link", "/bin/host-local", "/net.d/", "/net.d/10-fake-cni.conflist", "/ipam/"]);
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

const FAST = join(import.meta.dirname, "scenarios", "fast-path.ts");

describe.each(TARGETS)("fast path on $name", (target) => {
  it("200 concurrent ADDs through the server (2 networks, no duplicate); killed server: the next call falls back; a new server replaces the stale socket; DELs leave nothing", async () => {
    const seen = await runScenario<Record<string, unknown>>(target, FAST, [], { cwd: join(import.meta.dirname, ".."), timeoutMs: 240_000 });
    expect(seen.error).toBeUndefined();
    expect(seen.adds).toEqual({ ok: 200, viaServer: 200, unique: 200 });
    expect(seen.served1).toBe(200);
    expect(seen.staleSocket).toBe(true);
    expect(seen.afterCrash).toEqual({ code: 0, route: "fallback", address: "10.81.0.102/24" });
    expect(seen.dels).toEqual({ ok: 201, viaServer: 201 });
    expect(seen.socketAfterStop).toBe(false);
    expect(seen.left).toEqual([]);
  }, 300_000);
});
