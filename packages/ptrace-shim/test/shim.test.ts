/**
 * The tracer on real programs, on the host and inside gVisor (runsc, 9p root, no cgroups).
 * Case ids from shared/cases/log-signatures.jsonl are named where a test covers them.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TARGETS, run } from "@hybrid/testbed";
import { sandboxRules, type ShimRules } from "../src/index.js";
import { RAWSYS, SHIM, SYSLOOP, THREADS64, THREADS64_STATIC, ok, q, rulesFile, sh, shimPrefix, tempDir } from "./helpers.js";

describe.each(TARGETS)("ptrace-shim on $name", (target) => {
  // made in beforeAll, not at collection time, so a filtered run (-t) leaves nothing behind
  let tmp: ReturnType<typeof tempDir>;
  let dir = "";
  let sandbox: string; // sandboxRules preset
  let custom: string; // statfs/uname/redirect rules that differ from the real system on both targets
  let runtimeDir: string;
  beforeAll(() => {
    tmp = tempDir();
    dir = tmp.dir;
    runtimeDir = join(dir, "run");
    sandbox = rulesFile(
      dir,
      sandboxRules({ shadowDir: join(dir, "proc-sys"), kmsgPath: join(dir, "kmsg"), procsDir: join(dir, "procs"), runtimeDir }),
      "sandbox.json",
    );
    const rules: ShimRules = {
      version: 1,
      statfs: [
        { pathPrefix: "/dev/shm", type: "xfs" },
        { mount: "/", type: "btrfs" },
      ],
      redirects: [{ from: join(dir, "from"), to: join(dir, "to") }],
      uname: { release: "9.8.7-shim" },
      runtimeDir,
    };
    custom = rulesFile(dir, rules, "custom.json");
    rulesFile(dir, { version: 1, statfs: [{ mount: "/", type: "ext4" }], uname: { release: "5.15.0", ifBelow: "4.11" } }, "statfs-only.json");
    mkdirSync(runtimeDir, { recursive: true });
    mkdirSync(join(dir, "to", "sub"), { recursive: true });
    mkdirSync(join(dir, "procs"), { recursive: true });
    writeFileSync(join(dir, "to", "sub", "file"), "redirected content\n");
  });
  afterAll(() => tmp.cleanup());

  it("c02: stat -f / reports ext2/ext3 under the shim while plain stat reads the real type", async () => {
    const plain = ok(await sh(target, "stat -f -c %T /")).stdout.trim();
    const shimmed = ok(await sh(target, `${shimPrefix(sandbox)} stat -f -c %T /`)).stdout.trim();
    expect(shimmed).toBe("ext2/ext3");
    if (target.kind === "gvisor") expect(plain).toBe("v9fs");
    // a rewrite that differs from the real type on both targets, by path prefix and by mount
    const r = ok(await sh(target, `${shimPrefix(custom)} sh -c 'stat -f -c %T /dev/shm; stat -f -c %T /; stat -f -c %T /proc'`)).stdout.trim().split("\n");
    expect(r).toEqual(["xfs", "btrfs", "proc"]);
  });

  it("c13: only the syscalls the rules need stop the tracee (seccomp filter), none for rules without path rewrites", async () => {
    const log = join(dir, "c13.log");
    const nr = { statfs: 137, fstatfs: 138, uname: 63 }; // x86_64
    const script = `find /usr/share/doc -maxdepth 2 > /dev/null; ${q(SYSLOOP)} 50 > /dev/null; cat /etc/hostname > /dev/null`;
    ok(await run(target, SHIM, ["--rules", custom.replace("custom.json", "statfs-only.json"), "--trace-log", log, "--", "sh", "-c", script], {
      env: { HYBRID_SHIM_DEBUG: "1" }, cwd: dir, timeoutMs: 90_000 }));
    const stops = readFileSync(log, "utf8").split("\n").filter((l) => / event 7 nr /.test(l)).map((l) => Number(/ nr (\d+)/.exec(l)?.[1]));
    // uname is trapped only where the kernel reads below ifBelow (4.11): gVisor says 4.4.0
    expect(stops).toContain(nr.statfs);
    expect(stops.includes(nr.uname)).toBe(target.kind === "gvisor");
    for (const n of stops) expect([nr.statfs, nr.fstatfs, nr.uname]).toContain(n);
    expect(stops.filter((n) => n === nr.statfs).length).toBeGreaterThanOrEqual(50); // sysloop's 50 (+ find's own)
    expect(stops.length).toBeLessThan(120); // 50 statfs (+ 50 uname) + a few: nothing else stopped
    // with path rules every path-taking syscall relative to AT_FDCWD stops, still never read/getpid/fstat/getdents
    const log2 = join(dir, "c13-b.log");
    ok(await run(target, SHIM, ["--rules", sandbox, "--trace-log", log2, "--", "sh", "-c", script], { env: { HYBRID_SHIM_DEBUG: "1" }, cwd: dir, timeoutMs: 90_000 }));
    const stops2 = new Set(readFileSync(log2, "utf8").split("\n").filter((l) => / event 7 nr /.test(l)).map((l) => Number(/ nr (\d+)/.exec(l)?.[1])));
    for (const never of [0, 1, 3, 5, 39, 217]) expect(stops2.has(never)).toBe(false); // read write close fstat getpid getdents64
    expect(stops2.has(257)).toBe(true); // openat
  });

  it("c08: cat /proc/self/mountinfo shows the root as ext4 and a cgroup2 mount at /sys/fs/cgroup", async () => {
    const plain = ok(await sh(target, "cat /proc/self/mountinfo")).stdout;
    const out = ok(await sh(target, `${shimPrefix(sandbox)} cat /proc/self/mountinfo`)).stdout;
    const lines = out.trim().split("\n").map((l) => l.split(" - "));
    const root = lines.find(([l]) => l?.split(" ")[4] === "/");
    expect(root?.[1]?.split(" ")[0]).toBe("ext4");
    const cg = lines.filter(([l]) => l?.split(" ")[4]?.startsWith("/sys/fs/cgroup"));
    expect(cg).toHaveLength(1);
    expect(cg[0]?.[1]).toMatch(/^cgroup2 cgroup2 /);
    // the other mounts are the real ones
    expect(out).toContain(" /proc ");
    if (target.kind === "gvisor") expect(plain).toMatch(/ - 9p /);
    const mounts = ok(await sh(target, `${shimPrefix(sandbox)} sh -c 'cat /proc/mounts; cat /proc/$$/mountinfo | grep -c " - cgroup2 "'`)).stdout;
    expect(mounts).toMatch(/^\/dev\/root \/ ext4 /m);
    expect(mounts).toMatch(/^cgroup2 \/sys\/fs\/cgroup cgroup2 /m);
    expect(mounts.trim().split("\n").pop()).toBe("1");
    expect(readdirSync(runtimeDir)).toEqual([]); // synthesized files are removed once opened
  });

  it("c03/c09/c11: /proc/sys reads listed keys from the shadow store and keeps writes (truncating)", async () => {
    const script = [
      "cat /proc/sys/kernel/panic /proc/sys/kernel/cap_last_cap /proc/sys/vm/panic_on_oom /proc/sys/kernel/keys/root_maxkeys",
      "echo 0 > /proc/sys/vm/overcommit_memory && cat /proc/sys/vm/overcommit_memory",
      "echo 123456 > /proc/sys/kernel/panic && echo 7 > /proc/sys/kernel/panic && cat /proc/sys/kernel/panic",
      "echo 262144 > /proc/sys/net/netfilter/nf_conntrack_max && cat /proc/sys/net/netfilter/nf_conntrack_max",
      "echo 5 > /proc/sys/net/core/somaxconn_newkey && cat /proc/sys/net/core/somaxconn_newkey",
      "test -e /proc/sys/kernel/panic && echo exists",
    ].join("; ");
    const out = ok(await sh(target, `${shimPrefix(sandbox)} sh -c ${q(script)}`)).stdout.trim().split("\n");
    expect(out).toEqual(["10", expect.stringMatching(/^\d+$/), "0", "1000000", "0", "7", "262144", "5", "exists"]);
    expect(readFileSync(join(dir, "proc-sys", "kernel", "panic"), "utf8")).toBe("7\n");
    // the real kernel value was not touched (host) / the key does not exist (gVisor)
    const real = await sh(target, "cat /proc/sys/kernel/panic");
    expect(real.stdout.trim()).not.toBe("7");
  });

  it("c04: /dev/kmsg is served by the stand-in file", async () => {
    const out = ok(await sh(target, `${shimPrefix(sandbox)} sh -c 'echo hello-kmsg > /dev/kmsg; cat /dev/kmsg'`)).stdout;
    expect(out.trim()).toBe("hello-kmsg");
    expect(readFileSync(join(dir, "kmsg"), "utf8")).toContain("hello-kmsg");
  });

  it("uname release override: always with no ifBelow, only below 4.11 in the preset", async () => {
    const real = ok(await sh(target, "uname -r")).stdout.trim();
    expect(ok(await sh(target, `${shimPrefix(custom)} uname -r`)).stdout.trim()).toBe("9.8.7-shim");
    const preset = ok(await sh(target, `${shimPrefix(sandbox)} uname -r`)).stdout.trim();
    const [maj = 0, min = 0] = real.split(".").map((n) => Number.parseInt(n, 10));
    expect(preset).toBe(maj < 4 || (maj === 4 && min < 11) ? "5.15.0" : real);
  });

  it("/proc/self/cgroup and /proc/<pid>/cgroup come from the procs dir (0::/ when missing)", async () => {
    const procs = join(dir, "procs");
    const script = `echo 0::/kubepods/pod1 > ${q(procs)}/$$; cat /proc/$$/cgroup; cat /proc/self/cgroup; exec cat /proc/self/cgroup`;
    const out = ok(await sh(target, `${shimPrefix(sandbox)} sh -c ${q(script)}`)).stdout.trim().split("\n");
    expect(out).toEqual(["0::/kubepods/pod1", "0::/", "0::/kubepods/pod1"]);
  });

  it("redirects paths into fresh tracee memory: the caller's buffer and registers are kept", async () => {
    const from = join(dir, "from", "sub", "file");
    const r = ok(await sh(target, `${shimPrefix(custom)} ${q(RAWSYS)} ${q(from)}`));
    expect(JSON.parse(r.stdout)).toMatchObject({ registerKept: true, bufferKept: true, firstLine: "redirected content" });
    const cmds = `cat ${q(from)}; cd ${q(join(dir, "from", "sub"))} && cat file && test -d ${q(join(dir, "from"))} && echo dir-ok; exec 3< ${q(from)}; readlink /proc/self/fd/3`;
    // readlink of /proc/<pid>/fd/N maps the redirected target back (runc compares it with what it opened)
    expect(ok(await sh(target, `${shimPrefix(custom)} sh -c ${q(cmds)}`)).stdout).toBe(`redirected content\nredirected content\ndir-ok\n${from}`);
  });

  it("bash pipelines and fork/exec chains keep every rewrite", async () => {
    const script = "for i in $(seq 1 30); do cat /proc/sys/kernel/panic_on_oops | tr 1 x | (read v; echo $v); done | sort | uniq -c | awk '{print $1, $2}'; stat -f -c %T / | cat";
    const out = ok(await sh(target, `${shimPrefix(sandbox)} bash -c ${q(script)}`)).stdout;
    expect(out).toBe("30 x\next2/ext3");
  });

  it("Node with a busy thread pool: 400 concurrent statfs and /proc/sys reads all rewritten", async () => {
    const js = `
      const fs = require("node:fs/promises");
      (async () => {
        const jobs = [];
        for (let i = 0; i < 200; i++) {
          jobs.push(fs.statfs("/").then((s) => s.type));
          jobs.push(fs.readFile("/proc/sys/vm/overcommit_memory", "utf8").then((v) => v.trim()));
        }
        const r = await Promise.all(jobs);
        const types = new Set(r.filter((_, i) => i % 2 === 0)), vals = new Set(r.filter((_, i) => i % 2 === 1));
        console.log(JSON.stringify({ types: [...types], vals: [...vals] }));
      })();`;
    const r = ok(await sh(target, `UV_THREADPOOL_SIZE=16 ${shimPrefix(sandbox)} ${q(process.execPath)} -e ${q(js)}`));
    const overcommit = readFileSync(join(dir, "proc-sys", "vm", "overcommit_memory"), "utf8").trim();
    expect(JSON.parse(r.stdout)).toEqual({ types: [0xef53], vals: [overcommit] });
  });

  it("a 64-thread C program calling statfs/fstatfs in a loop sees the rewrite on every call", async () => {
    const r = ok(await sh(target, `${shimPrefix(custom)} ${q(THREADS64)} / 9123683e 300`));
    expect(JSON.parse(r.stdout)).toEqual({ threads: 64, calls: 64 * 600, bad: 0 });
  });

  it("a static binary exec'd from a shell (busybox, static threads64) is traced too", async () => {
    const script = `exec /bin/busybox sh -c 'busybox stat -f -c %T /; busybox cat /proc/sys/kernel/panic_on_oops; ${THREADS64_STATIC} / ef53 50 8'`;
    const out = ok(await sh(target, `${shimPrefix(sandbox)} sh -c ${q(script)}`)).stdout.trim().split("\n");
    expect(out[0]).toBe("ext2/ext3");
    expect(out[1]).toBe("1");
    expect(JSON.parse(out[2] ?? "")).toEqual({ threads: 8, calls: 800, bad: 0 });
  });

  it("exit codes and death signals become the tracer's own", async () => {
    const script = [
      `${shimPrefix(sandbox)} sh -c 'exit 42'; echo "rc=$?"`,
      `${shimPrefix(sandbox)} sh -c 'kill -TERM $$'; echo "rc=$?"`,
      `${shimPrefix(sandbox)} sh -c 'kill -KILL $$'; echo "rc=$?"`,
      `${shimPrefix(sandbox)} /nonexistent/cmd 2>/dev/null; echo "rc=$?"`,
      `${shimPrefix(sandbox)} true; echo "rc=$?"`,
    ].join("\n");
    expect(ok(await sh(target, script)).stdout).toBe("rc=42\nrc=143\nrc=137\nrc=127\nrc=0");
  });

  it("SIGTERM to the tracer reaches the command; SIGSTOP/SIGCONT stop and resume it", async () => {
    const pidfile = join(dir, "child.pid");
    const script = `
      ${shimPrefix(sandbox)} sh -c 'trap "echo got-term; exit 3" TERM; while :; do sleep 0.1; done' & tp=$!
      sleep 1; kill -TERM $tp; wait $tp; echo "rc=$?"
      ${shimPrefix(sandbox)} sh -c 'echo $$ > ${pidfile}; kill -STOP $$; echo resumed' & tp=$!
      for i in $(seq 1 50); do [ -s ${pidfile} ] && break; sleep 0.1; done
      cp=$(cat ${pidfile}); sleep 0.5
      state=$(grep State /proc/$cp/status | awk '{print $2}'); echo "state=$state"
      kill -CONT $cp; wait $tp; echo "rc=$?"
      rm -f ${pidfile}
      ${shimPrefix(sandbox)} sh -c 'echo $$ > ${pidfile}; sleep 0.6; echo after-stop' & tp=$!
      for i in $(seq 1 50); do [ -s ${pidfile} ] && break; sleep 0.1; done
      cp=$(cat ${pidfile})
      kill -STOP $cp; sleep 0.8; grep State /proc/$cp/status | awk '{print "ext=" $2}'; kill -CONT $cp; wait $tp; echo "rc=$?"`;
    const out = ok(await sh(target, script)).stdout.trim().split("\n");
    expect(out[0]).toBe("got-term");
    expect(out[1]).toBe("rc=3");
    expect(out[2]).toMatch(/^state=[Tt]$/);
    expect(out.slice(3, 5)).toEqual(["resumed", "rc=0"]);
    expect(out[5]).toMatch(/^ext=[Tt]$/);
    expect(out.slice(6)).toEqual(["after-stop", "rc=0"]);
  });

  it("--trace-log records each rewrite (syscall, tid, before -> after)", async () => {
    const log = join(dir, "trace.log");
    ok(await sh(target, `${shimPrefix(sandbox, { log })} sh -c 'cat /proc/sys/kernel/panic /proc/self/mountinfo >/dev/null'`));
    ok(await sh(target, `${shimPrefix(custom, { log })} sh -c 'stat -f / >/dev/null; uname -r >/dev/null'`));
    const text = readFileSync(log, "utf8");
    expect(text).toMatch(/^\d+ statfs: \/ f_type 0x[0-9a-f]+ -> 0x9123683e$/m);
    expect(text).toMatch(/^\d+ uname: release \S+ -> 9\.8\.7-shim$/m);
    expect(text).toMatch(/^\d+ openat redirect: \/proc\/sys\/kernel\/panic -> .*proc-sys\/kernel\/panic$/m);
    expect(text).toMatch(/^\d+ openat synthesize: \/proc\/self\/mountinfo -> /m);
  });

  it("the PTRACE_SYSCALL fallback (no seccomp filter) gives the same results", async () => {
    const script = "stat -f -c %T /; cat /proc/sys/kernel/panic; grep -c ' - cgroup2 ' /proc/self/mountinfo";
    const out = ok(await sh(target, `${shimPrefix(sandbox, { noSeccomp: true })} sh -c ${q(script)}`)).stdout;
    expect(out).toBe(`ext2/ext3\n${readFileSync(join(dir, "proc-sys", "kernel", "panic"), "utf8").trim()}\n1`);
  });

  it("the runtime dir is removed at exit, and dirs of killed tracers in the configured runtimeDir are swept", async () => {
    const script = `mkdir -p ${q(runtimeDir)}/hybrid-shim.999999.stale ${q(runtimeDir)}/hybrid-shim.1.alive
      touch ${q(runtimeDir)}/hybrid-shim.999999.stale/leftover
      ${shimPrefix(sandbox)} cat /proc/self/mountinfo > /dev/null && echo ok`;
    expect(ok(await sh(target, script)).stdout).toBe("ok");
    expect(readdirSync(runtimeDir)).toEqual(["hybrid-shim.1.alive"]); // pid 1 lives: kept
    rmSync(join(runtimeDir, "hybrid-shim.1.alive"), { recursive: true });
  });

  it("if the tracer is killed, its tracees die with it (PTRACE_O_EXITKILL)", async () => {
    const pidfile = join(dir, "exitkill.pid");
    const script = `
      ${shimPrefix(sandbox)} sh -c 'echo $$ > ${pidfile}; exec sleep 60' & tp=$!
      for i in $(seq 1 50); do [ -s ${pidfile} ] && break; sleep 0.1; done
      sleep 0.3; cp=$(cat ${pidfile}); [ -n "$cp" ] || echo "no-pid"
      kill -KILL $tp; wait $tp; echo "rc=$?"; sleep 0.5
      if [ -e /proc/$cp ] && ! grep -q zombie /proc/$cp/status 2>/dev/null; then echo "alive"; else echo "gone"; fi`;
    expect(ok(await sh(target, script)).stdout.trim().split("\n")).toEqual(["rc=137", "gone"]);
  });
});
