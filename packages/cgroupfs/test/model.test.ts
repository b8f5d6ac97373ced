/**
 * Unit tests of the emulation model (no FUSE): rules, errors with unchanged state, formats,
 * accounting rollup and persistence. Processes are real (`sleep`), read through the real /proc.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { CgroupError } from "../src/errors.js";
import { CgroupModel, MEMORY_STAT_KEYS } from "../src/model.js";
import { formatList, niceToWeight, parseCpuMax, parseList, parseMemory, parsePidsMax, weightToNice } from "../src/parse.js";
import { realHostEnv, sampleProcess } from "../src/proc.js";
import type { ProcSample } from "../src/stats.js";
import { emptySystem } from "../src/stats.js";

const env = realHostEnv();
const kids: ChildProcess[] = [];
function sleeper(): number {
  const c = spawn("sleep", ["600"], { stdio: "ignore" });
  kids.push(c);
  return c.pid!;
}
afterAll(() => {
  for (const k of kids) k.kill("SIGKILL");
});

function errCode(f: () => unknown): string {
  try {
    f();
    return "OK";
  } catch (e) {
    if (e instanceof CgroupError) return e.code;
    throw e;
  }
}

describe("parsers (kernel formats)", () => {
  it("memparse: max, suffixes, page rounding, EINVAL on garbage", () => {
    expect(parseMemory("max\n", "m")).toBeNull();
    expect(parseMemory("1G", "m")).toBe(1 << 30);
    expect(parseMemory("4k", "m")).toBe(4096);
    expect(parseMemory("1000", "m")).toBe(0);
    expect(parseMemory("0x2000", "m")).toBe(8192);
    for (const bad of ["abc", "-1", "1 G", "", "1.5G", "1X"]) expect(errCode(() => parseMemory(bad, "m"))).toBe("EINVAL");
  });
  it("cpu.max: quota/period bounds, 'max', and EINVAL on '1 2 3'", () => {
    expect(parseCpuMax("max", 100000)).toEqual({ quota: null, period: 100000 });
    expect(parseCpuMax("50000 200000", 100000)).toEqual({ quota: 50000, period: 200000 });
    expect(parseCpuMax("20000", 50000)).toEqual({ quota: 20000, period: 50000 });
    for (const bad of ["1 2 3", "999 100000", "max 999", "max 1000001", "abc", ""]) expect(errCode(() => parseCpuMax(bad, 100000))).toBe("EINVAL");
  });
  it("pids.max and cpu lists", () => {
    expect(parsePidsMax("max")).toBeNull();
    expect(parsePidsMax("10\n")).toBe(10);
    expect(errCode(() => parsePidsMax("-1"))).toBe("EINVAL");
    expect(parseList("0-3,5,7-8", "c")).toEqual([0, 1, 2, 3, 5, 7, 8]);
    expect(formatList([0, 1, 2, 3, 5, 7, 8])).toBe("0-3,5,7-8");
    expect(errCode(() => parseList("3-1", "c"))).toBe("EINVAL");
    expect(errCode(() => parseList("a", "c"))).toBe("EINVAL");
  });
  it("cpu.weight.nice converts like the kernel (nice 0 = weight 100)", () => {
    expect(niceToWeight(0)).toBe(100);
    expect(weightToNice(100)).toBe(0);
    expect(weightToNice(niceToWeight(-5))).toBe(-5);
  });
});

describe("model rules", () => {
  it("subtree_control: ENOENT when the parent lacks it, children list it, EBUSY disabling under a child", () => {
    const m = new CgroupModel(env);
    m.mkdir("/a");
    m.mkdir("/a/b");
    expect(errCode(() => m.write("/a/cgroup.subtree_control", "+memory"))).toBe("ENOENT");
    expect(m.read("/a/cgroup.subtree_control")).toBe("\n");
    m.write("/cgroup.subtree_control", "+memory +cpu");
    expect(m.read("/a/cgroup.controllers")).toBe("cpu memory\n");
    m.write("/a/cgroup.subtree_control", "+memory");
    expect(m.read("/a/b/cgroup.controllers")).toBe("memory\n");
    expect(m.list("/a/b")).toContain("memory.max");
    expect(m.list("/a/b")).not.toContain("cpu.max");
    expect(errCode(() => m.write("/cgroup.subtree_control", "-memory"))).toBe("EBUSY");
    expect(m.read("/cgroup.subtree_control")).toBe("cpu memory\n");
    expect(errCode(() => m.write("/a/cgroup.subtree_control", "+memory +bogus"))).toBe("EINVAL");
    expect(errCode(() => m.write("/a/cgroup.subtree_control", "memory"))).toBe("EINVAL");
  });

  it("no internal processes, moves, ESRCH, rmdir EBUSY, membership listener", () => {
    const m = new CgroupModel(env);
    const seen: Array<[number, string | null]> = [];
    m.onMembership((pid, path) => seen.push([pid, path]));
    m.write("/cgroup.subtree_control", "+pids");
    m.mkdir("/p");
    m.mkdir("/p/q");
    const pid = sleeper();
    m.write("/p/cgroup.procs", `${pid}\n`);
    expect(m.groupOf(pid)).toBe("/p");
    expect(errCode(() => m.write("/p/cgroup.subtree_control", "+pids"))).toBe("EBUSY");
    m.write("/p/q/cgroup.procs", String(pid));
    m.write("/p/cgroup.subtree_control", "+pids");
    expect(errCode(() => m.write("/p/cgroup.procs", String(pid)))).toBe("EBUSY");
    expect(m.groupOf(pid)).toBe("/p/q");
    expect(errCode(() => m.rmdir("/p/q"))).toBe("EBUSY");
    expect(errCode(() => m.rmdir("/p"))).toBe("EBUSY");
    expect(errCode(() => m.rmdir("/"))).toBe("EBUSY");
    expect(errCode(() => m.write("/p/q/cgroup.procs", "4194303"))).toBe("ESRCH");
    expect(errCode(() => m.write("/p/q/cgroup.procs", "0"))).toBe("EINVAL");
    expect(m.read("/p/cgroup.events")).toBe("populated 1\nfrozen 0\n");
    m.write("/cgroup.procs", String(pid));
    expect(m.groupOf(pid)).toBe("/");
    expect(m.read("/p/cgroup.events")).toBe("populated 0\nfrozen 0\n");
    m.rmdir("/p/q");
    expect(seen).toEqual([
      [pid, "/p"],
      [pid, "/p/q"],
      [pid, null],
    ]);
  });

  it("cgroup.max.depth / max.descendants refuse mkdir with EAGAIN", () => {
    const m = new CgroupModel(env);
    m.mkdir("/d");
    m.write("/d/cgroup.max.depth", "1");
    m.mkdir("/d/x");
    expect(errCode(() => m.mkdir("/d/x/y"))).toBe("EAGAIN");
    m.write("/d/cgroup.max.descendants", "2");
    m.mkdir("/d/z");
    expect(errCode(() => m.mkdir("/d/w"))).toBe("EAGAIN");
    expect(errCode(() => m.mkdir("/d/x"))).toBe("EEXIST");
    expect(errCode(() => m.mkdir("/d/cgroup.procs"))).toBe("EEXIST");
    expect(errCode(() => m.mkdir("/nope/x"))).toBe("ENOENT");
    expect(m.read("/d/cgroup.stat")).toBe("nr_descendants 2\nnr_dying_descendants 0\n");
  });

  it("reads refuse write-only and unknown files; writes refuse read-only ones", () => {
    const m = new CgroupModel(env);
    m.mkdir("/r");
    expect(errCode(() => m.read("/r/cgroup.kill"))).toBe("EINVAL");
    expect(errCode(() => m.read("/r/memory.max"))).toBe("ENOENT");
    expect(errCode(() => m.write("/r/cgroup.events", "1"))).toBe("EACCES");
    expect(errCode(() => m.write("/r/cgroup.type", "threaded"))).toBe("EOPNOTSUPP");
    expect(errCode(() => m.write("/r/cgroup.threads", "1"))).toBe("EOPNOTSUPP");
    expect(errCode(() => m.read("/r"))).toBe("EISDIR");
  });

  it("accounting rolls up from real /proc samples to parents and the root; memory.stat in kernel key order", () => {
    const m = new CgroupModel(env);
    m.write("/cgroup.subtree_control", "+memory +pids +cpu");
    m.mkdir("/acc");
    m.write("/acc/cgroup.subtree_control", "+memory +pids");
    m.mkdir("/acc/one");
    m.mkdir("/acc/two");
    const a = sleeper();
    const b = sleeper();
    m.write("/acc/one/cgroup.procs", String(a));
    m.write("/acc/two/cgroup.procs", String(b));
    const samples = new Map<number, ProcSample>();
    for (const p of [a, b, process.pid]) samples.set(p, sampleProcess(p)!);
    m.applySample(samples, emptySystem(), [a, b, process.pid]);
    const one = Number(m.read("/acc/one/memory.current"));
    const two = Number(m.read("/acc/two/memory.current"));
    expect(one).toBeGreaterThan(0);
    expect(Number(m.read("/acc/memory.current"))).toBe(one + two);
    expect(m.read("/acc/pids.current")).toBe("2\n");
    expect(Number(m.read("/acc/memory.peak"))).toBeGreaterThanOrEqual(one + two);
    const stat = m.read("/acc/memory.stat").trim().split("\n").map((l) => l.split(" ")[0]);
    expect(stat).toEqual([...MEMORY_STAT_KEYS]);
    expect(m.read("/acc/cpu.stat")).toMatch(/^usage_usec \d+\nuser_usec \d+\nsystem_usec \d+\nnice_usec 0\nnr_periods 0\nnr_throttled 0\n/);
    expect(m.read("/cgroup.procs")).toBe(`${process.pid}\n`);
    // the root without system figures sums every sampled process
    expect(Number(/usage_usec (\d+)/.exec(m.read("/cpu.stat"))![1])).toBeGreaterThan(0);
  });

  it("persistence round trip keeps hierarchy, controllers, limits and live members; drops dead ones", async () => {
    const m = new CgroupModel(env);
    m.write("/cgroup.subtree_control", "+memory +cpu +pids");
    m.mkdir("/k");
    m.mkdir("/k/v");
    m.write("/k/memory.max", "512M");
    m.write("/k/cpu.max", "20000 100000");
    m.write("/k/pids.max", "7");
    const live = sleeper();
    const dying = spawn("sleep", ["600"], { stdio: "ignore" });
    m.write("/k/cgroup.procs", String(live));
    m.write("/k/v/cgroup.procs", String(dying.pid));
    dying.kill("SIGKILL");
    await new Promise((r) => dying.on("exit", r));
    const state = JSON.parse(JSON.stringify(m.toState()));
    const r = CgroupModel.fromState(state, env);
    expect(r.paths()).toEqual(["/", "/k", "/k/v"]);
    expect(r.read("/k/memory.max")).toBe("536870912\n");
    expect(r.read("/k/cpu.max")).toBe("20000 100000\n");
    expect(r.read("/k/pids.max")).toBe("7\n");
    expect(r.read("/cgroup.subtree_control")).toBe("cpu memory pids\n");
    expect(r.groupOf(live)).toBe("/k");
    expect(r.groupOf(dying.pid!)).toBe("/");
    expect(() => CgroupModel.fromState({ version: 2 } as never, env)).toThrow(/version 1/);
  });
});
