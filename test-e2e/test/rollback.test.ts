/** Issue 2, point 4: rollback in reverse on failure and on SIGINT; config errors; idle commands. */
import { GVISOR, HOST, runScenario, type Target } from "@hybrid/testbed";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const SCENARIO = join(import.meta.dirname, "..", "scenarios", "rollback.ts");
type Outcome = Record<string, any>;

describe.each([GVISOR, HOST] as Target[])("hybrid up failure paths on $name", (target) => {
  let o: Outcome;
  let base: string;
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), "hybrid-rollback-"));
    o = await runScenario<Outcome>(target, SCENARIO, [base], { cwd: join(import.meta.dirname, ".."), timeoutMs: 400_000 });
  }, 420_000);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it("a runtime that fails to start: exit non-zero, the original error, the layers rolled back in reverse", () => {
    const f = o.failingRuntime;
    expect(f.exitCode).not.toBe(0);
    expect(f.stderr).toMatch(/\/bin\/false|k3s/);
    expect(f.stderr).toMatch(/rolling back 3 layer\(s\) in reverse/);
    // Progress lines name each layer when its teardown starts and again when it ends.
    const downs = [...(f.stdout + f.stderr).matchAll(/(cgroupfs|fake-cni|ptrace-shim): down/g)]
      .map((m) => m[1])
      .filter((name, i, all) => name !== all[i - 1]);
    expect(downs).toEqual(["ptrace-shim", "fake-cni", "cgroupfs"]);
    expect(f.mountsAdded).toEqual([]);
    expect(f.stateDirLeft).toBe(false);
  });

  it("SIGINT during up takes down what was up and exits non-zero", () => {
    const s = o.sigint;
    expect(s.layersAtSignal).toBeGreaterThanOrEqual(1);
    expect(s.exitCode).not.toBe(0);
    expect(s.stderr).toMatch(/SIGINT/);
    expect(s.mountsAdded).toEqual([]);
    expect(s.stateDirLeft).toBe(false);
  });

  it("an invalid config names the field and the file and creates nothing", () => {
    expect(o.badConfig.exitCode).toBe(2);
    expect(o.badConfig.stderr).toContain(o.badConfig.file);
    expect(o.badConfig.stderr).toContain("cni.subnet");
    expect(o.badConfig.stateDirLeft).toBe(false);
  });

  it("after up is SIGKILLed mid-way, down still leaves no process, mount or file of the stack", () => {
    const k = o.sigkill;
    expect(k.layersAtKill).toBeGreaterThanOrEqual(3);
    expect(k.downExit, k.downStderr).toBe(0);
    expect(k.processesLeft).toEqual([]);
    expect(k.mountsAdded).toEqual([]);
    expect(k.stateDirLeft).toBe(false);
  });

  it("of two concurrent ups one brings the stack up and the other is refused", () => {
    const c = o.concurrentUp;
    expect(c.exits, c.messages).toEqual([0, 1]);
    expect(c.messages).toMatch(/another `hybrid up` \(pid \d+\) is running/);
    expect(c.statusExit).toBe(0);
    expect(c.downExit).toBe(0);
    expect(c.stateDirLeft).toBe(false);
  });

  it("down and status with nothing up", () => {
    expect(o.downNothing).toBe(0);
    expect(o.statusNothing).toBe(3);
  });
});
