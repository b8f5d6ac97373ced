/**
 * The native fast path: the C client (dist/bin/fake-cni-client) with and without a resident
 * server, the server lifecycle (startCniServer / stopCniServer from another process), fallback
 * on a crashed server, a stale socket and a foreign socket, server and fallback calls racing on
 * one dataDir, and a valgrind run of the client.
 */
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { clientPath, installFakeCni, linkHelperPath, invokeCni, pingCniServer, pluginPath, socketPathFor, startCniServer, stopCniServer } from "../src/index.js";
import { CLIENT, netConf, runPlugin, runVia, tempDir, serveUnder } from "./helpers.js";

const execFileAsync = promisify(execFile);
const T = tempDir("srv");
serveUnder(T.dir);
const started: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  for (const s of started) await s.stop();
  T.cleanup();
});

const env = (cmd: string, id: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_IFNAME: "eth0", CNI_NETNS: "/proc/1/ns/net" });
const addr = (r: { json?: Record<string, unknown> }) => (r.json?.ips as { address: string }[] | undefined)?.[0]?.address;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const records = (d: string, net = "testnet") => readdirSync(join(d, net)).filter((n) => /^[0-9a-f.:]+$/.test(n)).sort();

describe("server lifecycle", () => {
  it("starts on <dataDir>/fake-cni.sock (0600), refuses a second server, is stopped from another process and removes its socket", async () => {
    const dataDir = join(T.dir, "life");
    const srv = await startCniServer({ dataDir, detached: true, logFile: join(T.dir, "life.log") });
    started.push(srv);
    expect(srv.socketPath).toBe(join(dataDir, "fake-cni.sock"));
    expect(statSync(srv.socketPath).isSocket()).toBe(true);
    expect(statSync(srv.socketPath).mode & 0o777).toBe(0o600);
    expect(await pingCniServer({ socketPath: srv.socketPath })).toEqual({ pid: srv.pid, served: 0 });
    await expect(startCniServer({ dataDir })).rejects.toThrow(/already listens/);
    const r = await runVia("client+server", env("ADD", "a"), JSON.stringify(netConf(dataDir)));
    expect(r.route).toBe("server");
    expect((await pingCniServer({ socketPath: srv.socketPath }))?.served).toBe(1);
    // another process stops it through the package's built API
    const dist = resolve(pluginPath(), "..", "..", "index.js");
    const { stdout: out } = await execFileAsync(process.execPath, ["--input-type=module", "-e", `import { stopCniServer } from ${JSON.stringify(dist)}; console.log(JSON.stringify(await stopCniServer({ socketPath: ${JSON.stringify(srv.socketPath)} })));`]);
    expect(JSON.parse(out)).toEqual({ pid: srv.pid });
    for (let i = 0; i < 100 && alive(srv.pid); i++) await new Promise((r) => setTimeout(r, 20)); // reaped by our loop
    expect(alive(srv.pid)).toBe(false);
    expect(existsSync(srv.socketPath)).toBe(false);
    expect(readFileSync(join(T.dir, "life.log"), "utf8")).toMatch(/listening on .*stopping \(stop request\).*stopped/s);
    expect(await stopCniServer({ socketPath: srv.socketPath })).toEqual({}); // idempotent
  });

  it("a non-detached server stops when its starter process exits", async () => {
    const dataDir = join(T.dir, "owned");
    const dist = resolve(pluginPath(), "..", "..", "index.js");
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", `import { startCniServer } from ${JSON.stringify(dist)}; const s = await startCniServer({ dataDir: ${JSON.stringify(dataDir)} }); console.log(s.pid);`], { encoding: "utf8" });
    const pid = Number(out.trim());
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
    expect(existsSync(socketPathFor(dataDir))).toBe(false);
  });

  it("rejects bad socket paths and files in the way", async () => {
    await expect(startCniServer({ socketPath: `/tmp/${"x".repeat(120)}` })).rejects.toThrow(/longer than 107/);
    const d = join(T.dir, "inway");
    mkdirSync(d, { recursive: true });
    writeFileSync(socketPathFor(d), "not a socket");
    await expect(startCniServer({ dataDir: d })).rejects.toThrow(/not a socket/);
  });
});

describe("fallback to Node", () => {
  it("a server killed mid-run: the next call falls back (stale socket), state continues; a new server replaces the stale socket", async () => {
    const dataDir = join(T.dir, "crash");
    const conf = JSON.stringify(netConf(dataDir));
    const srv = await startCniServer({ dataDir, workers: 2 });
    const a = await runVia("client+server", env("ADD", "a"), conf);
    expect([a.route, addr(a)]).toEqual(["server", "10.123.0.2/24"]);
    // kill it while calls are in flight
    const inflight = Array.from({ length: 10 }, (_, i) => runPlugin(env("ADD", `k${i}`), conf, CLIENT));
    process.kill(srv.pid, "SIGKILL");
    const during = await Promise.all(inflight);
    for (const r of during) expect(r?.code, r?.stdout).toBe(0);
    expect(statSync(srv.socketPath).isSocket()).toBe(true); // left behind: stale
    const b = await runVia("client", env("ADD", "b"), conf);
    expect(b.route).toBe("fallback");
    expect(b.code, b.stdout).toBe(0);
    const all = [a, ...during, b].map((r) => addr(r!));
    expect(new Set(all).size).toBe(12);
    expect(records(dataDir)).toHaveLength(12);
    const srv2 = await startCniServer({ dataDir });
    started.push(srv2);
    const c = await runVia("client+server", env("DEL", "b"), conf);
    expect([c.route, c.code]).toEqual(["server", 0]);
    await srv2.stop();
    expect(existsSync(srv2.socketPath)).toBe(false);
  });

  it("a stale socket file (bound, nobody listening) and a foreign server that hangs up: both fall back", async () => {
    const dataDir = join(T.dir, "stale");
    mkdirSync(dataDir, { recursive: true });
    const sock = socketPathFor(dataDir);
    spawnSync("python3", ["-c", `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(sock)})`]);
    expect(statSync(sock).isSocket()).toBe(true);
    const r = await runVia("client", env("ADD", "a"), JSON.stringify(netConf(dataDir)));
    expect([r.route, r.code, addr(r)]).toEqual(["fallback", 0, "10.123.0.2/24"]);
    const d2 = join(T.dir, "foreign");
    mkdirSync(d2, { recursive: true });
    const foreign = createServer({ allowHalfOpen: true }, (s) => {
      s.resume();
      s.end("garbage without status");
    });
    await new Promise<void>((res) => foreign.listen(socketPathFor(d2), res));
    try {
      const f = await runVia("client", env("ADD", "a"), JSON.stringify(netConf(d2)));
      expect([f.route, f.code, addr(f)]).toEqual(["fallback", 0, "10.123.0.2/24"]);
    } finally {
      await new Promise((res) => foreign.close(res));
    }
  });

  it("a server that takes the call but does not answer (stopped): error 11 after FAKE_CNI_TIMEOUT_MS, no fallback; resumed, it finishes the call", async () => {
    const dataDir = join(T.dir, "stopped");
    const srv = await startCniServer({ dataDir });
    started.push(srv);
    const conf = JSON.stringify(netConf(dataDir));
    process.kill(srv.pid, "SIGSTOP");
    try {
      const t0 = Date.now();
      const r = spawnSync(CLIENT, [], { input: conf, env: { ...env("ADD", "held"), PATH: process.env.PATH ?? "/usr/bin:/bin", FAKE_CNI_TIMEOUT_MS: "700", FAKE_CNI_DEBUG: "1" }, encoding: "utf8" });
      const took = Date.now() - t0;
      expect(r.status).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 11, details: "ETIMEDOUT", msg: expect.stringContaining("did not answer within 700 ms") });
      expect(r.stderr).toContain("timed out");
      expect(r.stderr).not.toContain("fallback");
      expect(took).toBeGreaterThanOrEqual(700);
      expect(existsSync(join(dataDir, "testnet")) ? records(dataDir) : []).toEqual([]); // nobody ran it yet
    } finally {
      process.kill(srv.pid, "SIGCONT");
    }
    // the resumed server runs the queued call; the runtime's retry gets the same address
    const again = await runVia("client+server", env("ADD", "held"), conf);
    expect([again.route, again.code, addr(again)]).toEqual(["server", 0, "10.123.0.2/24"]);
    expect(records(dataDir)).toEqual(["10.123.0.2"]);
    await srv.stop();
  });

  it("client errors are spec error objects: unreadable stdin, missing Node bundle", async () => {
    const d = join(T.dir, "lonely");
    mkdirSync(d, { recursive: true });
    execFileSync("cp", [clientPath(), join(d, "fake-cni")]);
    const r = spawnSync(join(d, "fake-cni"), [], { input: JSON.stringify(netConf(join(d, "ipam"))), env: env("ADD", "a"), encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: "1.1.0", code: 5, msg: expect.stringMatching(/fake-cni\.cjs cannot be run/) });
    const dirIn = spawnSync("sh", ["-c", `${CLIENT} < ${T.dir}`], { env: env("ADD", "a"), encoding: "utf8" });
    expect(dirIn.status).toBe(1);
    expect(JSON.parse(dirIn.stdout)).toMatchObject({ code: 5, msg: "fake-cni-client: cannot read stdin", details: "Is a directory" });
  });
});

describe("lock semantics", () => {
  it("server and Node plugin racing on one dataDir: 200 ADDs across 2 networks, no duplicate, nothing left", async () => {
    const dataDir = join(T.dir, "race");
    const srv = await startCniServer({ dataDir, workers: 4 });
    started.push(srv);
    const nets = [
      netConf(dataDir, { name: "neta" }, { ranges: [[{ subnet: "10.52.0.0/24" }]] }),
      netConf(dataDir, { name: "netb", cniVersion: "1.0.0" }, { ranges: [[{ subnet: "10.53.0.0/24" }], [{ subnet: "fd00:53::/120" }]] }),
    ];
    // half the calls through the server, half through the Node plugin directly (same lock files)
    const jobs = Array.from({ length: 200 }, (_, i) => ({ id: `r${i}`, conf: JSON.stringify(nets[i % 2]), via: i % 4 < 2 ? ("client+server" as const) : ("node" as const) }));
    const adds = await Promise.all(jobs.map((j) => runVia(j.via, env("ADD", j.id), j.conf)));
    expect(adds.filter((r) => r.code !== 0).map((r) => r.stdout)).toEqual([]);
    const ips = adds.flatMap((r) => (r.json?.ips as { address: string }[]).map((i) => i.address));
    expect(ips).toHaveLength(300);
    expect(new Set(ips).size).toBe(300);
    expect((await pingCniServer({ socketPath: srv.socketPath }))?.served).toBe(100);
    const dels = await Promise.all(jobs.map((j) => runVia(j.via, env("DEL", j.id), j.conf)));
    expect(dels.filter((r) => r.code !== 0)).toEqual([]);
    for (const n of ["neta", "netb"]) expect(readdirSync(join(dataDir, n)).filter((f) => !f.startsWith("last_reserved_ip."))).toEqual([]);
  });
});

describe("installFakeCni with the native client", () => {
  it("installs fake-cni (client), fake-cni.cjs (bundle) and host-local (client); serves through a server and without one", async () => {
    const root = join(T.dir, "inst");
    const dataDir = join(root, "ipam");
    const inst = await installFakeCni({
      binDir: join(root, "bin"),
      confDir: join(root, "net.d"),
      network: { name: "nat", subnet: "10.44.0.0/24", mode: "noop", dataDir },
      hostLocalAlias: true,
    });
    expect(inst.executable).toBe("native");
    expect(inst.binFiles.map((f) => f.slice(root.length))).toEqual(["/bin/fake-cni", "/bin/fake-cni.cjs", "/bin/fake-cni-link", "/bin/host-local"]);
    expect(readFileSync(join(root, "bin", "fake-cni")).equals(readFileSync(clientPath()))).toBe(true);
    expect(readFileSync(join(root, "bin", "fake-cni.cjs")).equals(readFileSync(pluginPath()))).toBe(true);
    expect(readFileSync(join(root, "bin", "fake-cni-link")).equals(readFileSync(linkHelperPath()))).toBe(true);
    const binDirs = [join(root, "bin")];
    const a = await invokeCni({ command: "ADD", conflist: inst.conflist, binDirs, containerId: "x", netns: "/proc/self/ns/net" });
    const srv = await startCniServer({ dataDir });
    const b = await invokeCni({ command: "ADD", conflist: inst.conflist, binDirs, containerId: "y", netns: "/proc/self/ns/net" });
    expect([a.ips?.[0]?.address, b.ips?.[0]?.address]).toEqual(["10.44.0.2/24", "10.44.0.3/24"]);
    expect((await pingCniServer({ socketPath: srv.socketPath }))?.served).toBe(1);
    await srv.stop();
    await inst.uninstall();
    expect(existsSync(root)).toBe(false);
    await expect(installFakeCni({ binDir: join(root, "b"), confDir: join(root, "n"), network: { name: "n", subnet: "10.0.0.0/24", dataDir }, executable: "rust" as "node" })).rejects.toThrow(/executable must be/);
    const node = await installFakeCni({ binDir: join(root, "b"), confDir: join(root, "n"), network: { name: "n", subnet: "10.0.0.0/24", dataDir }, executable: "node" });
    expect([node.executable, node.binFiles.map((f) => f.slice(root.length))]).toEqual(["node", ["/b/fake-cni", "/b/fake-cni-link"]]);
    await node.uninstall();
    expect(existsSync(root)).toBe(false);
  });
});

describe("valgrind", () => {
  it("the client has no memory errors or leaks: through a server, on the fallback path, on bad input", async () => {
    const dataDir = join(T.dir, "vg");
    const srv = await startCniServer({ dataDir });
    started.push(srv);
    const vg = (e: Record<string, string>, input: string) =>
      spawnSync("valgrind", ["-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect", CLIENT], {
        input,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...e },
        encoding: "utf8",
      });
    const conf = JSON.stringify(netConf(dataDir, { dns: { nameservers: ["10.0.0.1"] } }, { dataDir: `${dataDir}//` }));
    const add = vg(env("ADD", "v1"), conf);
    expect(add.stderr).toBe("");
    expect([add.status, JSON.parse(add.stdout).ips[0].address]).toEqual([0, "10.123.0.2/24"]);
    const del = vg(env("DEL", "v1"), conf);
    expect([del.status, del.stdout, del.stderr]).toEqual([0, "", ""]);
    // weird but valid JSON: escapes, unicode, nesting, duplicate keys (the last dataDir wins, as JSON.parse)
    const weird = `{"cniVersion":"1.1.0","x":[1,{"y":[true,null,-1.5e3]}],"name":"t\\u00e9st","ipam":{"dataDir":"/nowhere","dataDir":"${dataDir.replace(/\//g, "\\/")}","type":"fake-cni","subnet":"10.9.0.0/24"},"type":"fake-cni","mode":"noop"}`;
    const w = vg(env("ADD", "v2"), weird);
    expect([w.status, w.stderr]).toEqual([1, ""]); // the server answers: name is invalid (7)
    expect(JSON.parse(w.stdout)).toMatchObject({ code: 7 });
    expect((await pingCniServer({ socketPath: srv.socketPath }))?.served).toBe(3);
    for (const bad of ["", "{", '{"ipam":{"dataDir":"\\ud800"}}', '{"ipam":', "[1,2,3]", "\u0000\u0001", `{"ipam":{"dataDir":"/${"x".repeat(5000)}"}}`]) {
      // no server for these: the client falls back to Node (not traced by valgrind) after a clean run
      const r = vg({ CNI_COMMAND: "ADD" }, bad);
      expect(r.stderr, JSON.stringify(bad)).toBe("");
      expect(r.status).toBe(1);
      expect(typeof JSON.parse(r.stdout).code).toBe("number");
    }
  }, 120_000);
});
