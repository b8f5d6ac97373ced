/**
 * veth mode's rtnetlink helper (native/fake-cni-link.c, dist/bin/fake-cni-link) on its own: each
 * request against a real netns (bind-mounted by `unshare --net=FILE`, as runtimes make them),
 * checked by an independent observer (iproute2's `ip -j` inside the netns); its errors and that
 * they leave nothing behind; the line protocol; valgrind; inside gVisor, the errno that makes
 * `auto` mode answer as noop. Then the plugin's use of it: one helper per server worker, replaced
 * when killed, gone with the server; none left by the one-shot executable.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GVISOR, run } from "@hybrid/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { linkHelperPath, startCniServer } from "../src/index.js";
import { CLIENT, netConf, PLUGIN, runPlugin, tempDir } from "./helpers.js";

const HELPER = linkHelperPath();
const T = tempDir("link");
const NS = join(T.dir, "cni-test");
const FIFO = join(T.dir, "fifo");

beforeAll(() => {
  execFileSync("mkfifo", [FIFO]);
  writeFileSync(NS, "");
  execFileSync("unshare", [`--net=${NS}`, "true"]);
});
afterAll(() => {
  spawnSync("ip", ["link", "del", "fclinktest"], { stdio: "ignore" });
  spawnSync("umount", [NS]);
  T.cleanup();
});

/** One request from argv: [exit status, answer line]. */
function helper(...args: string[]): [number | null, string] {
  const r = spawnSync(HELPER, args, { encoding: "utf8" });
  return [r.status, r.stdout.trimEnd()];
}
/** `ip -j ARGS` inside the test netns, parsed. */
function inside<T = Record<string, unknown>[]>(...args: string[]): T {
  return JSON.parse(execFileSync("nsenter", [`--net=${NS}`, "ip", "-j", ...args], { encoding: "utf8" }) || "[]") as T;
}
const hostLinkExists = (name: string) => existsSync(`/sys/class/net/${name}`);
const CMAC = "0a:58:0a:7b:00:02";
const HMAC = "02:58:0a:7b:00:01";
const add = (...tail: string[]) => helper("add", NS, "eth0", "fclinktest", "1400", CMAC, HMAC, ...tail);

describe("fake-cni-link on the host", () => {
  it("add: a veth pair, the host end up with its MAC and MTU, the container end in the netns with addresses (IPv6 nodad), up, and routes", () => {
    expect(add("10.123.0.2/24,fd00:7b::2/64", "0.0.0.0/0@10.123.0.1,10.200.0.0/16,::/0@fd00:7b::1")).toEqual([0, "ok"]);
    const host = JSON.parse(execFileSync("ip", ["-j", "link", "show", "fclinktest"], { encoding: "utf8" }))[0];
    expect(host).toMatchObject({ ifname: "fclinktest", mtu: 1400, address: HMAC, link_type: "ether" });
    expect(host.flags).toContain("UP");
    const link = inside("link", "show", "eth0")[0]!;
    expect(link).toMatchObject({ ifname: "eth0", mtu: 1400, address: CMAC });
    expect(link.flags).toContain("UP");
    const addrs = (inside("addr", "show", "dev", "eth0")[0]!.addr_info as { local: string; prefixlen: number; nodad?: boolean }[]).filter((a) => !a.local.startsWith("fe80"));
    expect(addrs.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(["10.123.0.2/24", "fd00:7b::2/64"]);
    expect(addrs[1]!.nodad).toBe(true);
    const routes = inside<{ dst: string; gateway?: string; dev: string; scope?: string }[]>("route", "show");
    expect(routes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: "default", gateway: "10.123.0.1", dev: "eth0" }),
        expect.objectContaining({ dst: "10.200.0.0/16", dev: "eth0", scope: "link" }),
      ]),
    );
    expect(inside<{ dst: string; gateway?: string }[]>("-6", "route", "show")).toEqual(expect.arrayContaining([expect.objectContaining({ dst: "default", gateway: "fd00:7b::1" })]));
  });

  it("addrs: the container interface's addresses; a missing interface is ENODEV", () => {
    const [code, line] = helper("addrs", NS, "eth0");
    expect(code).toBe(0);
    const [status, list] = line.split("\t");
    expect(status).toBe("ok");
    expect(list!.split(",").filter((a) => !a.startsWith("fe80"))).toEqual(["10.123.0.2/24", "fd00:7b::2/64"]);
    expect(helper("addrs", NS, "eth9")).toEqual([1, `err\tENODEV\tfind eth9 in ${NS}: No such device`]);
  });

  it("a second add of the same name is EEXIST and leaves the first pair as it was", () => {
    expect(add("10.123.0.9/24", "-")).toEqual([1, `err\tEEXIST\tRTM_NEWLINK veth fclinktest peer eth0 netns ${NS}: File exists`]);
    expect(hostLinkExists("fclinktest")).toBe(true);
    expect(helper("addrs", NS, "eth0")[1]).toContain("10.123.0.2/24");
    expect(helper("addrs", NS, "eth0")[1]).not.toContain("10.123.0.9");
  });

  it("del: removes both ends; a missing link is ok (missing)", () => {
    expect(helper("del", "fclinktest")).toEqual([0, "ok"]);
    expect(hostLinkExists("fclinktest")).toBe(false);
    expect(inside("link", "show").map((l) => l.ifname)).toEqual(["lo"]);
    expect(helper("del", "fclinktest")).toEqual([0, "ok\tmissing"]);
  });

  it("a failure after the pair exists (unreachable gateway) removes the pair again; a missing netns makes none", () => {
    expect(add("10.123.0.2/24", "10.9.0.0/16@192.0.2.1")).toEqual([1, "err\tENETUNREACH\tRTM_NEWROUTE 10.9.0.0/16 via 192.0.2.1 dev eth0: Network is unreachable"]);
    expect(hostLinkExists("fclinktest")).toBe(false);
    expect(inside("link", "show").map((l) => l.ifname)).toEqual(["lo"]);
    expect(helper("add", join(T.dir, "nope"), "eth0", "fclinktest", "1500", CMAC, HMAC, "-", "-")).toEqual([1, `err\tENOENT\topen netns ${join(T.dir, "nope")}: No such file or directory`]);
    expect(hostLinkExists("fclinktest")).toBe(false);
  });

  it("malformed fields are EINVAL before anything is made", () => {
    const bad: [string[], RegExp][] = [
      [["add", NS, "eth0", "fclinktest", "60", CMAC, HMAC, "-", "-"], /^err\tEINVAL\tmtu 60:/],
      [["add", NS, "eth0", "fclinktest", "1500x", CMAC, HMAC, "-", "-"], /^err\tEINVAL\tmtu 1500x:/],
      [["add", NS, "eth0", "fclinktest", "1500", "0a:58:zz:00:00:01", HMAC, "-", "-"], /^err\tEINVAL\tcontainer mac/],
      [["add", NS, "eth0", "fclinktest", "1500", CMAC, "02:58", "-", "-"], /^err\tEINVAL\thost mac/],
      [["add", NS, "eth0-much-too-long", "fclinktest", "1500", CMAC, HMAC, "-", "-"], /^err\tEINVAL\tinterface name too long/],
      [["add", NS, "eth0", "fclinktest", "1500", CMAC, HMAC, "10.0.0.300/24", "-"], /^err\tEINVAL\taddress 10\.0\.0\.300\/24/],
      [["add", NS, "eth0", "fclinktest", "1500", CMAC, HMAC, "10.0.0.2/33", "-"], /^err\tEINVAL\taddress 10\.0\.0\.2\/33/],
      [["add", NS, "eth0", "fclinktest", "1500", CMAC, HMAC, "10.0.0.2/24", "0.0.0.0/0@nothing"], /^err\tEINVAL\troute 0\.0\.0\.0\/0 via nothing/],
      [["add", NS, "eth0"], /^err\tEINVAL\trequest add with 3 field\(s\)/],
      [["frobnicate"], /^err\tEINVAL\trequest frobnicate with 1 field\(s\)/],
      // a FIFO or a directory as the netns: refused at once, never blocking the helper
      [["add", FIFO, "eth0", "fclinktest", "1500", CMAC, HMAC, "-", "-"], /^err\tEINVAL\topen netns .*: not a namespace file/],
      [["addrs", FIFO, "eth0"], /^err\tEINVAL\topen netns .*: not a namespace file/],
      [["addrs", T.dir, "eth0"], /^err\tEINVAL\topen netns .*: not a namespace file/],
    ];
    for (const [args, want] of bad) {
      const [code, line] = helper(...args);
      expect([code, line]).toEqual([1, expect.stringMatching(want)]);
      expect(hostLinkExists("fclinktest")).toBe(false);
    }
    expect(inside("link", "show").map((l) => l.ifname)).toEqual(["lo"]);
  });

  it("resident mode: requests on stdin, one answer line each, in order; an over-long line is refused and the next one still answered", () => {
    const lines = [
      ["add", NS, "eth0", "fclinktest", "1500", CMAC, HMAC, "10.123.0.2/24", "-"],
      ["addrs", NS, "eth0"],
      ["del", "x".repeat((1 << 20) + 1)],
      ["del", "fclinktest"],
      ["del", "fclinktest"],
      ["bogus"],
    ].map((f) => f.join("\t"));
    const r = spawnSync(HELPER, [], { input: `${lines.join("\n")}\n`, encoding: "utf8" });
    expect(r.status).toBe(0);
    const out = r.stdout.trimEnd().split("\n");
    expect(out.length).toBe(6);
    expect(out[0]).toBe("ok");
    expect(out[1]).toMatch(/^ok\t10\.123\.0\.2\/24/);
    expect(out[2]).toMatch(/^err\tEINVAL\trequest longer than 1048576 bytes/);
    expect(out.slice(3, 5)).toEqual(["ok", "ok\tmissing"]);
    expect(out[5]).toMatch(/^err\tEINVAL\trequest bogus/);
    expect(hostLinkExists("fclinktest")).toBe(false);
  });

  it("valgrind: no memory errors or leaks over add, addrs, an error and del", () => {
    const input = [
      ["add", NS, "eth0", "fclinktest", "1500", CMAC, HMAC, "10.123.0.2/24,fd00:7b::2/64", "0.0.0.0/0@10.123.0.1"],
      ["addrs", NS, "eth0"],
      ["add", NS, "eth0", "fclinktest", "1500", CMAC, HMAC, "-", "-"],
      ["del", "fclinktest"],
    ]
      .map((f) => f.join("\t"))
      .join("\n");
    const r = spawnSync("valgrind", ["-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect", HELPER], { input: `${input}\n`, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.split("\n").map((l) => l.split("\t")[0])).toEqual(["ok", "ok", "err", "ok", ""]);
    expect(hostLinkExists("fclinktest")).toBe(false);
  });
});

describe("fake-cni-link when it cannot work", () => {
  it("addrs of a fresh link with 3,000 addresses: the whole list although the first dumps are interrupted (DAD work); over 64 KiB: ERANGE, not a cut list", () => {
    expect(add("10.123.0.2/24", "-")).toEqual([0, "ok"]);
    const addAddrs = (from: number, to: number) => {
      const lines = Array.from({ length: to - from }, (_, i) => `addr add fd00:7c::${(from + i + 1).toString(16)}/64 dev eth0 nodad`).join("\n");
      execFileSync("nsenter", [`--net=${NS}`, "ip", "-batch", "-"], { input: `${lines}\n` });
    };
    try {
      // right after 3,000 IPv6 addresses were added the kernel is still finishing their DAD work:
      // a long dump spans those changes and is flagged NLM_F_DUMP_INTR (EINTR); the helper dumps again
      addAddrs(0, 3000);
      const [code, line] = helper("addrs", NS, "eth0");
      expect([code, line.slice(0, 33)]).toEqual([0, "ok\t10.123.0.2/24,fd00:7c::bb8/64,"]);
      expect(line.split(",").filter((a) => a.includes("fd00:7c::")).length).toBe(3000);
      addAddrs(3000, 4200);
      expect(helper("addrs", NS, "eth0")).toEqual([1, expect.stringMatching(/^err\tERANGE\taddresses of eth0 in .* longer than 65536 bytes/)]);
    } finally {
      expect(helper("del", "fclinktest")).toEqual([0, "ok"]);
    }
  });

  it("no netlink at start-up (socket(AF_NETLINK) refused): every request gets that error, the helper stays until EOF", () => {
    const shim = join(T.dir, "nonetlink.so");
    const src = join(T.dir, "nonetlink.c");
    writeFileSync(
      src,
      `#define _GNU_SOURCE\n#include <errno.h>\n#include <dlfcn.h>\n#include <sys/socket.h>\n` +
        `int socket(int d, int t, int p) { if (d == AF_NETLINK) { errno = EAFNOSUPPORT; return -1; }\n` +
        `  int (*real)(int, int, int) = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket"); return real(d, t, p); }\n`,
    );
    execFileSync("cc", ["-shared", "-fPIC", "-o", shim, src, "-ldl"]);
    const r = spawnSync(HELPER, [], { input: "del\tfcx\naddrs\t/proc/self/ns/net\tlo\nbogus\n", encoding: "utf8", env: { LD_PRELOAD: shim } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("err\tEAFNOSUPPORT\tnetlink socket: Address family not supported by protocol\n".repeat(3));
  });
});

describe("the plugin's helpers", () => {
  const env = (cmd: string, id: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_IFNAME: "eth0", CNI_NETNS: NS });
  it("auto mode answers as noop when the helper is there but cannot run (not executable, or dies before answering); veth mode says so (102)", async () => {
    const dir = join(T.dir, "broken-helper");
    mkdirSync(dir);
    copyFileSync(PLUGIN, join(dir, "fake-cni"));
    chmodSync(join(dir, "fake-cni"), 0o755);
    const cases: [string, string, number][] = [
      ["not executable", readFileSync(HELPER, "latin1"), 0o644],
      ["dies before answering (as with a missing libmnl.so.0: exit 127)", "#!/bin/sh\nexit 127\n", 0o755],
    ];
    for (const [what, body, mode] of cases) {
      writeFileSync(join(dir, "fake-cni-link"), body, "latin1");
      chmodSync(join(dir, "fake-cni-link"), mode);
      const dataDir = join(dir, "ipam");
      const auto = await runPlugin(env("ADD", "broken"), JSON.stringify(netConf(dataDir, { mode: "auto" })), join(dir, "fake-cni"));
      expect([what, auto.code, (auto.json?.interfaces as { name: string }[] | undefined)?.map((i) => i.name)]).toEqual([what, 0, ["eth0"]]);
      expect((await runPlugin(env("DEL", "broken"), JSON.stringify(netConf(dataDir, { mode: "auto" })), join(dir, "fake-cni"))).code).toBe(0);
      const veth = await runPlugin(env("ADD", "broken"), JSON.stringify(netConf(dataDir, { mode: "veth" })), join(dir, "fake-cni"));
      expect([what, veth.code, veth.json]).toEqual([what, 1, expect.objectContaining({ code: 102, details: expect.stringMatching(/^ENOEXEC: fake-cni-link cannot run here/) })]);
    }
    expect(inside("link", "show").map((l) => l.ifname)).toEqual(["lo"]);
  });

  const pids = (ppid?: number): number[] => {
    const r = spawnSync("pgrep", [...(ppid ? ["-P", String(ppid)] : []), "-x", "fake-cni-link"], { encoding: "utf8" });
    return r.stdout.split("\n").filter(Boolean).map(Number);
  };

  it("one-shot executable: veth ADD and DEL work and leave no helper process behind", async () => {
    const before = pids();
    const conf = JSON.stringify(netConf(join(T.dir, "ipam-node"), { mode: "veth" }));
    const a = await runPlugin(env("ADD", "oneshot"), conf, PLUGIN);
    expect([a.code, a.stderr]).toEqual([0, ""]);
    expect((a.json?.interfaces as { name: string }[]).map((i) => i.name)).toEqual([expect.stringMatching(/^fc[0-9a-f]{8}$/), "eth0"]);
    expect(inside("link", "show").map((l) => l.ifname)).toEqual(["lo", "eth0"]);
    const d = await runPlugin(env("DEL", "oneshot"), conf, PLUGIN);
    expect([d.code, d.stdout]).toEqual([0, ""]);
    expect(inside("link", "show").map((l) => l.ifname)).toEqual(["lo"]);
    await new Promise((r) => setTimeout(r, 200));
    expect(pids()).toEqual(before);
  });

  it("server: one helper per busy worker, a killed helper is replaced on the next call, none left after stop", async () => {
    const dataDir = join(T.dir, "ipam-srv");
    const srv = await startCniServer({ dataDir });
    let live: number[] = [];
    try {
      const conf = JSON.stringify(netConf(dataDir, { mode: "veth" }));
      const a = await runPlugin(env("ADD", "srv1"), conf, CLIENT);
      expect([a.code, a.stderr]).toEqual([0, ""]);
      const helpers = pids(srv.pid);
      expect(helpers.length).toBeGreaterThanOrEqual(1);
      for (const p of helpers) process.kill(p, "SIGKILL");
      await new Promise((r) => setTimeout(r, 200));
      const d = await runPlugin(env("DEL", "srv1"), conf, CLIENT);
      expect([d.code, d.stdout]).toEqual([0, ""]);
      expect(inside("link", "show").map((l) => l.ifname)).toEqual(["lo"]);
      const again = await runPlugin(env("ADD", "srv2"), conf, CLIENT);
      expect(again.code).toBe(0);
      expect(inside("link", "show").map((l) => l.ifname)).toEqual(["lo", "eth0"]);
      expect((await runPlugin(env("DEL", "srv2"), conf, CLIENT)).code).toBe(0);
      expect(pids(srv.pid).every((p) => !helpers.includes(p))).toBe(true);
      live = pids(srv.pid);
      expect(live.length).toBeGreaterThanOrEqual(1);
    } finally {
      await srv.stop();
    }
    // the server ended and reaped its helpers: not even a zombie is left for init
    expect(live.filter((p) => existsSync(`/proc/${p}`))).toEqual([]);
  });
});

describe("veth mode under concurrency", () => {
  it("24 parallel veth ADDs through a server into 24 netns: each eth0 has its own address and route; parallel DELs leave no link, record or helper", async () => {
    const dataDir = join(T.dir, "ipam-par");
    const files = Array.from({ length: 24 }, (_, i) => join(T.dir, `par-${i}`));
    for (const f of files) {
      writeFileSync(f, "");
      execFileSync("unshare", [`--net=${f}`, "true"]);
    }
    const srv = await startCniServer({ dataDir });
    const helpers: number[] = [];
    try {
      const conf = JSON.stringify(netConf(dataDir, { mode: "veth" }));
      const e = (cmd: string, i: number) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: `par${i}`, CNI_IFNAME: "eth0", CNI_NETNS: files[i]! });
      const adds = await Promise.all(files.map((_, i) => runPlugin(e("ADD", i), conf, CLIENT)));
      expect(adds.map((a) => [a.code, a.stderr])).toEqual(files.map(() => [0, ""]));
      const got = adds.map((a) => (a.json?.ips as { address: string }[])[0]!.address);
      expect(new Set(got).size).toBe(24);
      for (const [i, f] of files.entries()) {
        const info = JSON.parse(execFileSync("nsenter", [`--net=${f}`, "ip", "-j", "-4", "addr", "show", "dev", "eth0"], { encoding: "utf8" }))[0];
        expect(`${info.addr_info[0].local}/${info.addr_info[0].prefixlen}`).toBe(got[i]);
        expect(execFileSync("nsenter", [`--net=${f}`, "ip", "route", "show", "default"], { encoding: "utf8" })).toContain("via 10.123.0.1 dev eth0");
      }
      helpers.push(...spawnSync("pgrep", ["-P", String(srv.pid), "-x", "fake-cni-link"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean).map(Number));
      expect(helpers.length).toBeGreaterThanOrEqual(2); // the workers ran in parallel, each with its helper
      const dels = await Promise.all(files.map((_, i) => runPlugin(e("DEL", i), conf, CLIENT)));
      expect(dels.map((d) => [d.code, d.stdout])).toEqual(files.map(() => [0, ""]));
      expect(execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })).not.toMatch(/^\d+: fc[0-9a-f]{8}[@:]/m);
      expect(readdirSync(join(dataDir, "testnet")).filter((n) => n.startsWith("10."))).toEqual([]);
    } finally {
      await srv.stop();
      for (const f of files) spawnSync("umount", [f]);
    }
    expect(helpers.filter((p) => existsSync(`/proc/${p}`))).toEqual([]);
  });
});

describe("fake-cni-link inside gVisor", () => {
  it("RTM_NEWLINK of kind veth is EOPNOTSUPP, a bind-mounted netns file ELOOP: the errnos auto mode reads as 'no veth here'", async () => {
    const r = await run(GVISOR, "sh", [
      "-c",
      `${HELPER} add /proc/self/ns/net eth0 fcg 1500 ${CMAC} ${HMAC} - -; ` +
        `f=$(mktemp) && unshare --net=$f true && ${HELPER} add $f eth0 fcg 1500 ${CMAC} ${HMAC} - -; umount $f; rm -f $f; ${HELPER} del fcg`,
    ]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^err\tEOPNOTSUPP\tRTM_NEWLINK veth fcg peer eth0 netns \/proc\/self\/ns\/net:/);
    expect(lines[1]).toMatch(/^err\tELOOP\topen netns \/tmp\/tmp\.\w+:/);
    expect(lines[2]).toBe("ok\tmissing");
  });

  it("the plugin in explicit veth mode: error 102 naming the refused step, no address kept", async () => {
    const dataDir = join(T.dir, "ipam-gvisor");
    const r = await run(GVISOR, PLUGIN, [], {
      env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "gv", CNI_IFNAME: "eth0", CNI_NETNS: "/proc/self/ns/net" },
      input: JSON.stringify(netConf(dataDir, { mode: "veth" })),
    });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 102, msg: "veth setup failed", details: expect.stringMatching(/^EOPNOTSUPP: RTM_NEWLINK veth fc[0-9a-f]{8} peer eth0/) });
    expect(readdirSync(join(dataDir, "testnet")).filter((n) => n.startsWith("10."))).toEqual([]);
  });
});
