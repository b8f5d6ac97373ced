/**
 * The k3s runtime path of `hybrid up --k3s-bin`, with the k3s stand-in of @hybrid/k3s-launcher
 * (no real k3s binary can be had on these machines; the stand-in accepts only real k3s flags,
 * writes what k3s writes, runs the OS's containerd with the config it generates and serves
 * /readyz — see packages/k3s-launcher/README.md for what it does not prove).
 */
import { standinPath } from "@hybrid/k3s-launcher";
import { GVISOR, HOST, runScenario, type Target } from "@hybrid/testbed";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const SCENARIO = join(import.meta.dirname, "..", "scenarios", "stack.ts");
type Outcome = Record<string, any>;

describe.each([GVISOR, HOST] as Target[])("hybrid up --k3s-bin (stand-in) on $name", (target) => {
  let o: Outcome;
  let base: string;
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), "hybrid-e2e-k3s-"));
    o = await runScenario<Outcome>(target, SCENARIO, [join(base, "state"), "20s", standinPath()], { cwd: join(import.meta.dirname, ".."), timeoutMs: 400_000 });
  }, 420_000);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it("brings k3s up under the shim and its API answers /readyz", () => {
    expect(o.up.exitCode, o.up.stderr).toBe(0);
    expect(o.runtime).toMatchObject({ kind: "k3s", kubeconfig: true, containerdConfig: true });
    const api = o.status.json.layers.find((l: { name: string }) => l.name === "runtime").probes.find((p: { probe: string }) => p.probe === "api");
    expect(api).toMatchObject({ ok: true });
    expect(api.detail).toMatch(/readyz.*200/);
  });

  it("puts the fake-cni conflist where k3s's generated containerd config reads it", () => {
    expect(o.runtime.cniConfInK3sDir).toContain("10-fake-cni.conflist");
  });

  it("soaks and comes down leaving nothing, k3s's host paths included", () => {
    expect(o.soak.exitCode, o.soak.stdout).toBe(0);
    expect(o.down.exitCode, o.down.stderr).toBe(0);
    expect(o.mountsAdded).toEqual([]);
    expect(o.stackProcessesLeft).toEqual([]);
    expect(o.recordedPidsAlive).toEqual([]);
    expect(o.hostPathsLeft).toEqual([]);
    expect(o.stateDirLeft).toBe(false);
  });
});
