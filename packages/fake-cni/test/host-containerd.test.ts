/**
 * Real runtime on the plain host: our own containerd instance (own root/state/socket under a temp
 * dir) and Debian's `ctr run --rm --cni`, which runs the first config of /etc/cni/net.d with the
 * plugins of /opt/cni/bin through libcni (ADD at start, DEL at exit). /etc/cni/net.d and
 * /opt/cni/bin are restored exactly as found (checked in afterAll).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cniDirsFromContainerdConfig,
  effectiveVersion,
  type CniInstallation,
  installFakeCni,
  invokeCni,
  pingCniServer,
  probeCniMode,
  startCniServer,
  uninstallFakeCni,
} from "../src/index.js";
import { hostVethName } from "../src/plugin/link.js";
import { REF_DIR, tempDir } from "./helpers.js";

const T = tempDir("ctd");
const SOCK = join(T.dir, "containerd.sock");
const CONFIG = `version = 2
root = "${T.dir}/root"
state = "${T.dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${SOCK}"
[ttrpc]
  address = "${SOCK}.ttrpc"
[debug]
  address = "${T.dir}/debug.sock"
`;
/** What the runtime reads, taken from its config (no cni section: containerd's defaults, as ctr uses). */
const DIRS = cniDirsFromContainerdConfig(CONFIG);
const ROOTFS = join(T.dir, "rootfs");
let containerd: ChildProcess | undefined;

/** Snapshot of a dir tree: path -> file content (or "<dir>"), to prove it is restored exactly. */
function snapshot(paths: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string): void => {
    if (!existsSync(p)) return;
    const st = statSync(p);
    if (st.isDirectory()) {
      out[p] = `<dir ${st.mode.toString(8)}>`;
      for (const n of readdirSync(p)) walk(join(p, n));
    } else out[p] = readFileSync(p).toString("base64");
  };
  for (const p of paths) walk(p);
  return out;
}
// /var/lib/cni: libcni's result cache (`results/`), created by `ctr run --cni` when missing.
const WATCHED = ["/etc/cni", "/opt/cni", "/var/lib/cni", ...DIRS.binDirs, DIRS.confDir];
const hadVarLibCni = existsSync("/var/lib/cni");
let before: Record<string, string> = {};
let iptablesBefore = "";
const extraFiles: string[] = [];

function ctr(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync("ctr", ["-a", SOCK, ...args], { encoding: "utf8", timeout: 90_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** `ctr` without blocking the event loop, so the test can watch the host while the container runs. */
function ctrAsync(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn("ctr", ["-a", SOCK, ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: 90_000 });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    child.on("close", (code) => resolve({ code, out }));
  });
}

function records(dataDir: string, net: string): string[] {
  const d = join(dataDir, net);
  return existsSync(d) ? readdirSync(d).filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n)) : [];
}

/**
 * Host ends of this file's fake-cni pairs still present. Only our own names (derived from network,
 * container id and ifname as the plugin does) are looked at: other sessions on this machine may run
 * fake-cni in veth mode at the same time.
 */
const OUR_ATTACHMENTS: [string, string, string][] = [
  ...["c12net", "chainnet"].flatMap((n): [string, string, string][] => [
    [n, `default-fcni-${n === "c12net" ? "c12" : "chain"}`, "eth0"],
    [n, `fcni-${n === "c12net" ? "c12" : "chain"}`, "eth0"],
  ]),
  ["invnet", "inv1", "net1"],
  ["invnet", "inv2", "net1"],
];
function hostVeths(): string[] {
  const ours = new Set(OUR_ATTACHMENTS.map(([n, id, ifn]) => hostVethName(n, id, ifn)));
  return execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(": ")[1]?.split("@")[0] ?? "")
    .filter((n) => ours.has(n));
}

/** Adds a reference plugin to the runtime's bin dir (unless one is there), remembering it for removal. */
function addReference(name: string): void {
  const target = join(DIRS.binDirs[0]!, name);
  if (existsSync(target)) return;
  copyFileSync(join(REF_DIR, name), target);
  extraFiles.push(target);
}

beforeAll(async () => {
  before = snapshot(WATCHED);
  iptablesBefore = execFileSync("iptables-save", { encoding: "utf8" }).replace(/^#.*\n/gm, "").replace(/\[\d+:\d+\]/g, "");
  for (const d of ["bin", "proc", "sys", "dev", "etc", "tmp"]) mkdirSync(join(ROOTFS, d), { recursive: true });
  copyFileSync("/bin/busybox", join(ROOTFS, "bin", "busybox"));
  for (const c of ["sh", "ip", "cat", "sleep"]) symlinkSync("busybox", join(ROOTFS, "bin", c));
  writeFileSync(join(T.dir, "config.toml"), CONFIG);
  containerd = spawn("containerd", ["--config", join(T.dir, "config.toml")], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  containerd.stderr?.on("data", (b: Buffer) => (log += b.toString()));
  for (let i = 0; i < 100; i++) {
    if (existsSync(SOCK) && ctr("version").code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`containerd did not start:\n${log}`);
}, 60_000);

afterAll(async () => {
  await uninstallFakeCni(extraFiles);
  if (containerd && containerd.exitCode === null) {
    const exited = new Promise((r) => containerd!.once("exit", r));
    containerd.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (containerd.exitCode === null) containerd.kill("SIGKILL");
  }
  T.cleanup();
  // libcni's cache dir is made on first use; DEL removed its entries, the empty dirs are ours to remove.
  if (!hadVarLibCni) rmSync("/var/lib/cni", { recursive: true, force: true });
  // Left exactly as found.
  expect(snapshot(WATCHED)).toEqual(before);
  const ipt = execFileSync("iptables-save", { encoding: "utf8" }).replace(/^#.*\n/gm, "").replace(/\[\d+:\d+\]/g, "");
  expect(ipt).toEqual(iptablesBefore);
  expect(hostVeths()).toEqual([]);
}, 60_000);

describe("host: containerd + ctr run --cni (libcni) with fake-cni in veth mode", () => {
  it("probeCniMode says veth on the plain host", async () => {
    expect(await probeCniMode()).toMatchObject({ mode: "veth" });
  });

  it("c06: after install, a CNI config and the plugin exist where the runtime reads them and STATUS answers ready", async () => {
    const dataDir = join(T.dir, "ipam");
    const inst = await installFakeCni({
      binDir: DIRS.binDirs,
      confDir: DIRS.confDir,
      confFileName: "00-fake-cni-test.conflist",
      network: { name: "c06net", subnet: "10.61.0.0/24", mode: "veth", dataDir, routes: [{ dst: "0.0.0.0/0" }] },
    });
    try {
      // libcni/containerd load the first config file of conf_dir, by name.
      const confs = readdirSync(DIRS.confDir).filter((n) => /\.(conf|conflist|json)$/.test(n)).sort();
      expect(join(DIRS.confDir, confs[0]!)).toBe(inst.confFile);
      expect(statSync(join(DIRS.binDirs[0]!, "fake-cni")).mode & 0o111).toBe(0o111);
      const list = JSON.parse(readFileSync(inst.confFile, "utf8"));
      expect(effectiveVersion(list)).toBe("1.1.0"); // so STATUS really reaches the plugin
      await expect(invokeCni({ command: "STATUS", conflist: list, binDirs: DIRS.binDirs })).resolves.toEqual({});
      // and STATUS is a real check: with the IPAM dir unusable it answers 50 (not available)
      const broken = { ...list, plugins: [{ ...list.plugins[0], ipam: { ...list.plugins[0].ipam, dataDir: join(inst.confFile, "x") } }] };
      const err = await invokeCni({ command: "STATUS", conflist: broken, binDirs: DIRS.binDirs }).catch((e: unknown) => e);
      expect((err as { cniError: { code: number } }).cniError.code).toBe(50);
    } finally {
      await inst.uninstall();
    }
  });

  it.each([
    ["the native client falling back to Node (no server)", false],
    ["the native client and a resident server", true],
  ])("c12: with flannel disabled the fake-cni conflist serves the runtime's ADD through %s: the busybox container's eth0 has the plugin's address, DEL frees it", async (_how, withServer) => {
    const dataDir = join(T.dir, withServer ? "ipam-srv" : "ipam");
    const server = withServer ? await startCniServer({ dataDir, logFile: join(T.dir, "server.log") }) : undefined;
    const inst: CniInstallation = await installFakeCni({
      binDir: DIRS.binDirs,
      confDir: DIRS.confDir,
      confFileName: "00-fake-cni-test.conflist",
      network: { name: "c12net", subnet: "10.62.0.0/24", mode: "veth", dataDir, routes: [{ dst: "0.0.0.0/0" }], mtu: 1400 },
    });
    try {
      const running = ctrAsync("run", "--rm", "--cni", "--rootfs", ROOTFS, "fcni-c12", "/bin/sh", "-c", "ip -o addr show dev eth0; ip route; cat /sys/class/net/eth0/mtu; sleep 3");
      // While it runs, the host end of the pair is there under the name the plugin derives.
      let seen: string[] = [];
      for (let i = 0; i < 100 && seen.length === 0; i++) {
        seen = hostVeths();
        if (seen.length === 0) await new Promise((res) => setTimeout(res, 50));
      }
      expect(seen).toHaveLength(1);
      const r = await running;
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/eth0\s+inet 10\.62\.0\.2\/24/);
      expect(r.out).toMatch(/default via 10\.62\.0\.1 dev eth0/);
      expect(r.out).toMatch(/^1400$/m);
      expect(records(dataDir, "c12net")).toEqual([]);
      expect(hostVeths()).toEqual([]);
      expect(inst.executable).toBe("native");
      // ADD and DEL went through the server, or (no server) each through its own Node fallback
      if (server) expect((await pingCniServer({ socketPath: server.socketPath }))?.served).toBeGreaterThanOrEqual(2);
    } finally {
      await server?.stop();
      await inst.uninstall();
    }
  });

  it("chained after loopback and before portmap and bandwidth in one conflist", async () => {
    const dataDir = join(T.dir, "ipam");
    const inst = await installFakeCni({
      binDir: DIRS.binDirs,
      confDir: DIRS.confDir,
      confFileName: "00-fake-cni-test.conflist",
      network: { name: "chainnet", subnet: "10.63.0.0/24", mode: "veth", dataDir },
      chain: {
        before: [{ type: "loopback" }],
        after: [
          { type: "portmap", capabilities: { portMappings: true }, snat: true },
          { type: "bandwidth", capabilities: { bandwidth: true } },
        ],
      },
    });
    try {
      for (const p of ["loopback", "portmap", "bandwidth"]) addReference(p);
      const r = ctr("run", "--rm", "--cni", "--rootfs", ROOTFS, "fcni-chain", "/bin/sh", "-c", "ip -o addr show; ip -o link show lo");
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/eth0\s+inet 10\.63\.0\.2\/24/);
      expect(r.out).toMatch(/lo\s+inet 127\.0\.0\.1\/8/);
      expect(r.out).toMatch(/lo: <LOOPBACK,UP/);
      expect(records(dataDir, "chainnet")).toEqual([]);
      expect(hostVeths()).toEqual([]);
    } finally {
      await uninstallFakeCni(extraFiles.splice(0));
      await inst.uninstall();
    }
  });

  it("the host-local alias serves as IPAM delegate of Debian's reference ptp plugin", async () => {
    const dataDir = join(T.dir, "ipam-hl");
    const ns = join(T.dir, "ns-hl");
    writeFileSync(ns, "");
    execFileSync("unshare", [`--net=${ns}`, "true"]);
    const aliasDir = join(T.dir, "alias-bin");
    const inst = await installFakeCni({ binDir: aliasDir, confDir: join(T.dir, "conf-hl"), network: { name: "unused", subnet: "10.98.0.0/24", dataDir }, hostLocalAlias: true });
    try {
      expect(inst.binFiles).toContain(join(aliasDir, "host-local"));
      const binDirs = [aliasDir, REF_DIR]; // the alias is found first, as on k3s's PATH
      const conflist = { cniVersion: "1.0.0", name: "ptpnet", plugins: [{ type: "ptp", ipMasq: false, ipam: { type: "host-local", subnet: "10.65.0.0/24", dataDir } }] };
      const res = await invokeCni({ command: "ADD", conflist, binDirs, containerId: "hl1", netns: ns });
      expect(res.ips?.[0]?.address).toBe("10.65.0.2/24");
      expect(readFileSync(join(dataDir, "ptpnet", "10.65.0.2"), "utf8")).toBe("hl1\r\neth0");
      const inside = execFileSync("nsenter", [`--net=${ns}`, "ip", "-o", "addr", "show", "dev", "eth0"], { encoding: "utf8" });
      expect(inside).toMatch(/inet 10\.65\.0\.2\/24/);
      await invokeCni({ command: "DEL", conflist, binDirs, containerId: "hl1", netns: ns, prevResult: res });
      expect(records(dataDir, "ptpnet")).toEqual([]);
    } finally {
      await inst.uninstall();
      spawnSync("umount", [ns]);
    }
  });

  it("veth mode through invokeCni in a bind-mounted netns: ADD, CHECK (interface and record), GC removes pair and record", async () => {
    const dataDir = join(T.dir, "ipam");
    const ns = join(T.dir, "ns-inv");
    writeFileSync(ns, "");
    execFileSync("unshare", [`--net=${ns}`, "true"]);
    try {
      const conflist = { cniVersion: "1.1.0", name: "invnet", plugins: [{ type: "fake-cni", mode: "veth", ipam: { ranges: [[{ subnet: "10.64.0.0/24" }]], dataDir } }] };
      const binDirs = [join(T.dir, "bin")];
      const inst = await installFakeCni({ binDir: binDirs, confDir: join(T.dir, "conf"), network: { name: "unused", subnet: "10.99.0.0/24", dataDir } });
      try {
        const res = await invokeCni({ command: "ADD", conflist, binDirs, containerId: "inv1", netns: ns, ifname: "net1" });
        expect(res.interfaces?.map((i) => i.name)).toEqual([expect.stringMatching(/^fc[0-9a-f]{8}$/), "net1"]);
        expect(res.ips).toEqual([{ address: "10.64.0.2/24", gateway: "10.64.0.1", interface: 1 }]);
        const inside = execFileSync("nsenter", [`--net=${ns}`, "ip", "-o", "addr", "show", "dev", "net1"], { encoding: "utf8" });
        expect(inside).toMatch(/inet 10\.64\.0\.2\/24/);
        await invokeCni({ command: "CHECK", conflist, binDirs, containerId: "inv1", netns: ns, ifname: "net1", prevResult: res });
        // A repeated ADD of the same attachment gives the same address and rebuilds the pair.
        const again = await invokeCni({ command: "ADD", conflist, binDirs, containerId: "inv1", netns: ns, ifname: "net1" });
        expect(again.ips).toEqual(res.ips);
        expect(hostVeths().length).toBe(1);
        // veth mode with a netns that does not exist: error 102, nothing allocated, no link.
        const missing = await invokeCni({ command: "ADD", conflist, binDirs, containerId: "inv2", netns: join(T.dir, "no-such-ns"), ifname: "net1" }).catch((e: unknown) => e);
        expect((missing as { cniError: { code: number } }).cniError.code).toBe(102);
        expect(records(dataDir, "invnet")).toEqual(["10.64.0.2"]);
        execFileSync("nsenter", [`--net=${ns}`, "ip", "addr", "flush", "dev", "net1"]);
        const bad = await invokeCni({ command: "CHECK", conflist, binDirs, containerId: "inv1", netns: ns, ifname: "net1", prevResult: res }).catch((e: unknown) => e);
        expect((bad as { cniError: { code: number } }).cniError.code).toBe(103);
        expect(hostVeths().length).toBe(1);
        await invokeCni({ command: "GC", conflist, binDirs, validAttachments: [] });
        expect(records(dataDir, "invnet")).toEqual([]);
        expect(hostVeths()).toEqual([]);
      } finally {
        await inst.uninstall();
      }
    } finally {
      spawnSync("umount", [ns]);
    }
  });
});
