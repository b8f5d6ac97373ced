import { afterEach, describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { TARGETS, runScenario } from "@hybrid/testbed";
import { cleanupDir, freePort, processesMentioning, tempDir } from "./helpers.js";

const scenario = fileURLToPath(new URL("./scenarios/runtime.mjs", import.meta.url));
const cwd = fileURLToPath(new URL("..", import.meta.url));

interface Out {
  mode: string;
  kernel: string;
  rootMagic: string;
  kind: string;
  [k: string]: any;
}

describe.each(TARGETS)("runtime on $name", (target) => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) {
      expect(processesMentioning(d)).toEqual([]);
      cleanupDir(d);
      expect(existsSync(d)).toBe(false);
    }
  });
  const gvisor = target.kind === "gvisor";

  it("startContainerd: the OS's containerd serves its API (ctr version) and stop() leaves nothing", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const out = await runScenario<Out>(target, scenario, ["containerd", dir, "0"], { cwd, timeoutMs: 100_000 });
    expect(out.rootMagic).toBe(gvisor ? "1021997" : out.rootMagic);
    expect(out.kind).toBe("containerd");
    expect(out.pidAliveWhileUp).toBe(true);
    expect(out.ctr).toMatch(/Server:\s*\n\s*Version:\s*1\.6\./);
    expect(out.probe).toMatchObject({ ok: true });
    expect(out.probe.version).toMatch(/^1\.6\./);
    expect(out.config).toContain('snapshotter = "native"');
    expect(out.config).toContain(`bin_dir = "${dir}/cni/bin"`);
    // the CRI plugin loaded with that config (gVisor: kernel reads 4.4.0, so unprivileged ports/ICMP are off)
    expect(out.plugins).toMatch(/io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/);
    expect(out.config).toContain(`enable_unprivileged_ports = ${gvisor ? "false" : "true"}`);
    expect(out.pidAliveAfterStop).toBe(false);
    expect(out.socketAfterStop).toBe(false);
    expect(out.probeAfterStop.ok).toBe(false);
  });

  it("startK3s with the stand-in: /readyz answers with the kubeconfig's client cert, k3s's files are written, containerd runs", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const out = await runScenario<Out>(target, scenario, ["k3s", dir, String(await freePort())], { cwd, timeoutMs: 100_000 });
    expect(out.kind).toBe("k3s");
    expect(out.probe).toEqual({ ok: true, detail: "GET /readyz: 200 ok" });
    expect(out.livez).toEqual({ status: 200, body: "ok" });
    expect(out.version.gitVersion).toContain("standin");
    expect(out.kubeconfigMode).toBe("600");
    expect(out.token).toMatch(/^K10[0-9a-f]{64}::server:[0-9a-f]{32}\n$/);
    expect(out.ctr).toMatch(/Server:\s*\n\s*Version:\s*1\.6\./);
    expect(out.k3sContainerd).toMatchObject({
      cniBinDir: `${dir}/k3s/data/current/bin`,
      cniConfDir: `${dir}/k3s/agent/etc/cni/net.d`,
      snapshotter: "native",
      address: `${dir}/run/containerd/containerd.sock`,
    });
    expect(out.config).toContain(`enable_unprivileged_icmp = ${gvisor ? "false" : "true"}`);
    expect(out.tree.length).toBeGreaterThanOrEqual(2); // the stand-in and its containerd
    expect(out.aliveAfterStop).toEqual([]);
    expect(out.probeAfterStop.ok).toBe(false);
  });

  it("startK3s detached: stopPid from another process stops k3s and its containerd", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const out = await runScenario<Out>(target, scenario, ["k3s-detached", dir, String(await freePort())], { cwd, timeoutMs: 100_000 });
    expect(out.probe.ok).toBe(true);
    expect(out.tree.length).toBeGreaterThanOrEqual(2);
    expect(out.aliveAfterStop).toEqual([]);
  });

  it("startK3s --disable-agent: API only, no containerd", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const out = await runScenario<Out>(target, scenario, ["k3s-agentless", dir, String(await freePort())], { cwd, timeoutMs: 100_000 });
    expect(out.args).toContain("--disable-agent");
    expect(out.probe.ok).toBe(true);
    expect(out.ctr).toBeUndefined();
    expect(existsSync(`${dir}/k3s/agent`)).toBe(false);
    expect(out.aliveAfterStop).toEqual([]);
  });
});
