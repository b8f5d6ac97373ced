import { describe, expect, it } from "vitest";
import { GVISOR, HOST, run } from "../src/index.js";

describe("testbed", () => {
  it("runs on the host, whose root is not 9p", async () => {
    const r = await run(HOST, "stat", ["-f", "-c", "%t", "/"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).not.toBe("1021997");
  });
  it("runs inside gVisor with a 9p root and no cgroup filesystem", async () => {
    // /sys/fs/cgroup is an empty sysfs directory in this gVisor release; no cgroup is mounted.
    const r = await run(GVISOR, "sh", ["-c", "stat -f -c %t /; grep -c cgroup /proc/self/mountinfo; stat -f -c %T /sys/fs/cgroup"]);
    expect(r.stdout.trim().split("\n")).toEqual(["1021997", "0", "sysfs"]);
  });
  it("reports a failing command's exit code", async () => {
    const r = await run(GVISOR, "sh", ["-c", "exit 7"]);
    expect(r.exitCode).toBe(7);
  });
});
