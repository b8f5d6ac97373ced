import { afterEach, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isGroupLeader, isPidAlive, probeContainerd, processGroupMembers, spawnDaemon, standinPath, startContainerd, startK3s, stopPid, supervise, type RuntimeHandle } from "../src/index.js";
import { cleanupDir, processesMentioning, tempDir } from "./helpers.js";

const dirs: string[] = [];
const dir = (): string => {
  const d = tempDir();
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) {
    expect(processesMentioning(d)).toEqual([]);
    cleanupDir(d);
  }
});

describe("stopPid", () => {
  it("is safe for a pid that is gone, refuses pid 1", async () => {
    const c = spawn("true");
    await new Promise((r) => c.once("exit", r));
    await expect(stopPid(c.pid!)).resolves.toBeUndefined();
    await expect(stopPid(1)).rejects.toThrow(/refusing pid 1/);
  });
  it("SIGTERM first; SIGKILL after graceMs for a process that ignores SIGTERM", async () => {
    const d = dir();
    const marker = join(d, "term");
    const script = join(d, "stubborn.sh");
    writeFileSync(script, `trap 'touch ${marker}' TERM\ntouch ${marker}.ready\nwhile :; do sleep 0.1; done\n`);
    const daemon = await spawnDaemon({ file: "sh", args: [script], detached: true });
    while (!existsSync(`${marker}.ready`)) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await stopPid(daemon.pid, { graceMs: 700 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(650);
    expect(existsSync(marker)).toBe(true); // it got SIGTERM first
    expect(isPidAlive(daemon.pid)).toBe(false);
  });
  it("group (the default for a group leader, as our daemons are): reaches the children of a wrapper", async () => {
    const d = dir();
    const daemon = await spawnDaemon({ file: "sh", args: ["-c", `sleep 300 & sleep 301 & wait # ${d}`], detached: true });
    for (let k = 0; k < 100 && processGroupMembers(daemon.pid).length < 3; k++) await new Promise((r) => setTimeout(r, 20));
    expect(processesMentioning(d).length).toBeGreaterThanOrEqual(1);
    expect(isGroupLeader(daemon.pid)).toBe(true);
    const members = processGroupMembers(daemon.pid);
    expect(members.length).toBe(3); // sh and its two sleeps
    await stopPid(daemon.pid, { graceMs: 2000 }); // from "another process": only the pid is known
    expect(processGroupMembers(daemon.pid)).toEqual([]);
    for (const m of members) expect(isPidAlive(m)).toBe(false);
  });
});

describe("wrap: the runtime runs under a ptrace wrapper (strace standing in for the shim's tracer)", () => {
  it("startContainerd under strace -f: answers, the handle's pid is the wrapper's, stop() ends both", async () => {
    const d = dir();
    const trace = join(d, "trace");
    const h = await startContainerd({
      stateDir: join(d, "c"), cniBinDir: join(d, "bin"), cniConfDir: join(d, "net.d"), logFile: join(d, "log"),
      wrap: ["strace", "-f", "-qq", "-e", "trace=execve", "-o", trace, "--"], readyTimeoutMs: 60_000,
    });
    expect(readFileSync(`/proc/${h.pid}/cmdline`, "utf8").split("\0")[0]).toBe("strace");
    expect(readFileSync(trace, "utf8")).toMatch(/execve\("[^"]*containerd"/);
    expect((await probeContainerd(h.socket!)).ok).toBe(true);
    await h.stop();
    expect(isPidAlive(h.pid!)).toBe(false);
    expect(existsSync(h.socket!)).toBe(false);
  });
});

describe("start failures: stop what was started, rethrow the original error", () => {
  it("startContainerd with a config containerd rejects: the exit and its log are reported", async () => {
    const d = dir();
    writeFileSync(join(d, "bad.toml"), "version = 2\n[grpc\n");
    await expect(
      startContainerd({ stateDir: join(d, "c"), configPath: join(d, "bad.toml"), cniBinDir: "/x", cniConfDir: "/y", logFile: join(d, "log"), readyTimeoutMs: 20_000 }),
    ).rejects.toThrow(/containerd exited \(code 1\) before it was ready[\s\S]*--- log tail[\s\S]*toml/i);
  });
  it("startK3s with a flag k3s does not have: the stand-in's usage error comes back", async () => {
    const d = dir();
    await expect(
      startK3s({ binary: standinPath(), args: ["server", `--data-dir=${d}/k3s`, "--kubelet-args=x"], kubeconfig: join(d, "k.yaml"), readyTimeoutMs: 20_000 }),
    ).rejects.toThrow(/k3s exited \(code 1\)[\s\S]*flag provided but not defined: -kubelet-args/);
  });
  it("startK3s that never becomes ready: timeout error, and the process is stopped", async () => {
    const d = dir();
    const fake = join(d, "fake-k3s");
    writeFileSync(fake, `#!/bin/sh\necho "fake k3s starting"\nexec sleep 300 # ${d}\n`, { mode: 0o755 });
    const t0 = Date.now();
    await expect(startK3s({ binary: fake, args: ["server"], kubeconfig: join(d, "never.yaml"), readyTimeoutMs: 1500 })).rejects.toThrow(
      /k3s not ready after 1500 ms; last probe: kubeconfig .* not written yet[\s\S]*fake k3s starting/,
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
  it("a missing executable is named", async () => {
    await expect(startK3s({ binary: "/nonexistent/k3s", args: ["server"], kubeconfig: "/tmp/x.yaml" })).rejects.toThrow(/cannot start \/nonexistent\/k3s: .*ENOENT/);
  });
});

describe("supervise: restart on crash with bounded backoff", () => {
  it("restarts a crashing runtime, doubling the backoff, and gives up after maxRestarts", async () => {
    const d = dir();
    const starts: number[] = [];
    const start = async (): Promise<RuntimeHandle> => {
      starts.push(Date.now());
      const dm = await spawnDaemon({ file: "sh", args: ["-c", `sleep 0.1; exit 3 # ${d}`] });
      return { kind: "k3s", pid: dm.pid, exited: dm.exited, stop: () => stopPid(dm.pid, { group: true }) };
    };
    const events: string[] = [];
    const delays: number[] = [];
    const sup = await supervise(start, {
      maxRestarts: 3,
      backoffMs: 100,
      onEvent: (e) => {
        events.push(e.type);
        if (e.delayMs !== undefined) delays.push(e.delayMs);
      },
    });
    const done = await sup.done;
    expect(done.reason).toBe("gave-up");
    expect(done.detail).toMatch(/exited \(code 3\)/);
    expect(sup.restarts()).toBe(3);
    expect(starts.length).toBe(4);
    expect(delays).toEqual([100, 200, 400]); // doubling
    const gaps = starts.slice(1).map((t, k) => t - starts[k]!);
    for (const [k, g] of gaps.entries()) expect(g).toBeGreaterThanOrEqual(delays[k]! + 90); // the delay plus the ~100 ms run
    expect(events).toEqual(["crashed", "restarted", "crashed", "restarted", "crashed", "restarted", "crashed", "gave-up"]);
  });
  it("stop() ends supervision and stops the current run", async () => {
    const d = dir();
    const sup = await supervise(async () => {
      const dm = await spawnDaemon({ file: "sh", args: ["-c", `exec sleep 300 # ${d}`] });
      return { kind: "k3s", pid: dm.pid, exited: dm.exited, stop: () => stopPid(dm.pid, { group: true }) };
    });
    const pid = sup.current().pid!;
    expect(isPidAlive(pid)).toBe(true);
    await sup.stop();
    expect(await sup.done).toEqual({ reason: "stopped", detail: "stopped by caller" });
    expect(isPidAlive(pid)).toBe(false);
    expect(sup.restarts()).toBe(0);
  });
});
