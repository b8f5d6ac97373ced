/** The rules schema (zod), the preset, writeRules, and the C tracer's own validation. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TARGETS, run } from "@hybrid/testbed";
import {
  FS_MAGIC,
  RulesBuilder,
  ShimRulesError,
  defaultProcSys,
  readRules,
  sandboxRules,
  tracedArgv,
  tracedWrap,
  tracerPath,
  validateRules,
  writeRules,
} from "../src/index.js";
import { tempDir } from "./helpers.js";

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir("shim-rules-");
});
afterAll(() => tmp.cleanup());

describe("rules schema (TypeScript)", () => {
  it("accepts the sandbox preset and the builder's output", () => {
    const r = sandboxRules({ cgroupfsMount: "/var/lib/hybrid/cgroup", procsDir: "/var/lib/hybrid/cgroupfs/procs", shadowDir: "/var/lib/hybrid/shim/proc-sys", kmsgPath: "/var/lib/hybrid/shim/kmsg" });
    expect(r.redirects).toEqual([{ from: "/sys/fs/cgroup", to: "/var/lib/hybrid/cgroup" }]);
    expect(r.statfs?.[0]).toEqual({ pathPrefix: "/sys/fs/cgroup", type: "cgroup2" });
    expect(r.statfs).toContainEqual({ mount: "/var/lib/hybrid/cgroup", type: "cgroup2" });
    expect(r.statfs?.at(-1)).toEqual({ mount: "/", type: "ext4" });
    expect(r.mountinfo?.add?.[0]).toMatchObject({ mountPoint: "/sys/fs/cgroup", fsType: "cgroup2", like: "/var/lib/hybrid/cgroup" });
    expect(r.uname).toEqual({ release: "5.15.0", ifBelow: "4.11" });
    expect(r.kmsg).toBe("/var/lib/hybrid/shim/kmsg");
    expect(r.bpfCgroupDevice).toBe("emulate");
    expect(sandboxRules({ shadowDir: "/s", bpfCgroupDevice: "passthrough" }).bpfCgroupDevice).toBe("passthrough");
    expect(() => validateRules({ version: 1, bpfCgroupDevice: "enforce" })).toThrow(/bpfCgroupDevice/);
    expect(r.mountPropagation).toBeUndefined();
    expect(sandboxRules({ shadowDir: "/s", mountPropagation: "ignore-unsupported" }).mountPropagation).toBe("ignore-unsupported");
    const mounted = sandboxRules({ cgroupfsMount: "/sys/fs/cgroup", shadowDir: "/s" });
    expect(mounted.redirects).toBeUndefined();
    const b = new RulesBuilder().statfs({ mount: "/", type: FS_MAGIC.xfs }).redirect("/a", "/b").procSys("/s").kmsg("/k").cgroup("/p").uname("5.15.0", "4.11").build();
    expect(b).toMatchObject({ version: 1, statfs: [{ mount: "/", type: 0x58465342 }], redirects: [{ from: "/a", to: "/b" }] });
  });

  it("rejects bad rules with every offending field named", () => {
    const bad = { version: 1, redirects: [{ from: "relative", to: "/x" }, { from: "/", to: "/y" }], statfs: [{ type: "zfs-ish" }], bogus: 1 };
    try {
      validateRules(bad);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ShimRulesError);
      const msg = (e as Error).message;
      expect(msg).toContain("redirects.0.from: must be an absolute path");
      expect(msg).toContain("redirects.1.from: must not be /");
      expect(msg).toContain("statfs.0.type");
      expect(msg).toMatch(/bogus/);
    }
    expect(() => new RulesBuilder().statfs({ type: "ext4" }).build()).toThrow(/at least one of pathPrefix, mount, fromType/);
    expect(() => validateRules({ version: 2 })).toThrow(ShimRulesError);
  });

  it("writeRules writes atomically, seeds the shadow defaults, keeps existing values, creates kmsg", async () => {
    const dir = join(tmp.dir, "w");
    const shadow = join(dir, "proc-sys");
    const rules = sandboxRules({ shadowDir: shadow, kmsgPath: join(dir, "kmsg") });
    await writeRules(join(dir, "rules.json"), rules);
    expect(await readRules(join(dir, "rules.json"))).toEqual(rules);
    for (const [k, v] of Object.entries(defaultProcSys())) expect(readFileSync(join(shadow, k), "utf8")).toBe(`${v}\n`);
    expect(defaultProcSys()["kernel/cap_last_cap"]).toMatch(/^\d+$/);
    writeFileSync(join(shadow, "vm", "overcommit_memory"), "0\n");
    await writeRules(join(dir, "rules.json"), rules);
    expect(readFileSync(join(shadow, "vm", "overcommit_memory"), "utf8")).toBe("0\n");
    expect(existsSync(join(dir, "kmsg"))).toBe(true);
    await expect(writeRules(join(dir, "bad.json"), { version: 1, kmsg: "rel" } as never)).rejects.toThrow(ShimRulesError);
    expect(existsSync(join(dir, "bad.json"))).toBe(false);
  });

  it("tracedArgv builds the documented command line", () => {
    expect(tracedArgv("k3s", ["server", "--x"], { rulesFile: "/r.json", traceLog: "/l" })).toEqual([
      tracerPath(),
      ["--rules", "/r.json", "--trace-log", "/l", "--", "k3s", "server", "--x"],
    ]);
    expect(tracedWrap({ rulesFile: "/r.json" })).toEqual([tracerPath(), "--rules", "/r.json", "--"]);
  });
});

describe.each(TARGETS)("the C tracer validates rules too, on $name", (target) => {
  const cases: [string, string, RegExp][] = [
    ["not json", "{ nope", /JSON syntax error at byte 2/],
    ["wrong version", `{"version":2}`, /version must be 1/],
    ["unknown key", `{"version":1,"statfs":[{"mount":"/","type":"ext4","extra":1}]}`, /unknown key "extra" in statfs\[0\]/],
    ["bad fs name", `{"version":1,"statfs":[{"mount":"/","type":"zfs-ish"}]}`, /statfs\[0\]\.type: unknown filesystem name "zfs-ish"/],
    ["relative redirect", `{"version":1,"redirects":[{"from":"a","to":"/b"}]}`, /redirects\[0\]\.from must be an absolute path/],
    ["redirect of /", `{"version":1,"redirects":[{"from":"/","to":"/b"}]}`, /must not be "\/"/],
    ["wrong kind", `{"version":1,"procSys":"x"}`, /procSys must be an object, got string/],
    ["empty statfs rule", `{"version":1,"statfs":[{"type":1}]}`, /needs at least one of pathPrefix, mount, fromType/],
    ["bad mountPropagation", `{"version":1,"mountPropagation":"ignore"}`, /mountPropagation must be "ignore-unsupported" or "passthrough", not "ignore"/],
    ["bad bpfCgroupDevice", `{"version":1,"bpfCgroupDevice":"enforce"}`, /bpfCgroupDevice must be "emulate" or "passthrough", not "enforce"/],
  ];
  it.each(cases)("rejects %s with a clear error and exit 65, running nothing", async (_name, json, message) => {
    const f = join(tmp.dir, `bad-${target.kind}-${_name.replace(/\W/g, "_")}.json`);
    writeFileSync(f, json);
    const marker = join(tmp.dir, `ran-${target.kind}`);
    const r = await run(target, tracerPath(), ["--rules", f, "--", "touch", marker], { cwd: tmp.dir, timeoutMs: 60_000 });
    expect(r.exitCode).toBe(65);
    expect(r.stderr).toMatch(message);
    expect(existsSync(marker)).toBe(false);
  });

  it("reports usage errors (no command, missing rules)", async () => {
    const r1 = await run(target, tracerPath(), ["--", "true"], { cwd: tmp.dir, timeoutMs: 60_000 });
    expect(r1.exitCode).toBe(64);
    expect(r1.stderr).toContain("--rules FILE is required");
    const r2 = await run(target, tracerPath(), ["--rules", "/nonexistent/rules.json", "--", "true"], { cwd: tmp.dir, timeoutMs: 60_000 });
    expect(r2.exitCode).toBe(65);
    expect(r2.stderr).toContain("cannot open: No such file or directory");
  });
});
