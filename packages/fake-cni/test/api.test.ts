/**
 * The TypeScript API: containerd config parsing, install/uninstall, the libcni-like invoker.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  buildConflist,
  cniDirsFromContainerdConfig,
  CniInvokeError,
  installFakeCni,
  invokeCni,
  pluginPath,
  uninstallFakeCni,
} from "../src/index.js";
import { REF_DIR, tempDir } from "./helpers.js";

const T = tempDir("api");
afterAll(() => T.cleanup());

/** k3s's generated agent/etc/containerd/config.toml (v2 schema, containerd 1.x based k3s releases). */
const K3S_V2 = `version = 2

root = "/var/lib/rancher/k3s/agent/containerd"
state = "/run/k3s/containerd"

[grpc]
  address = "/run/k3s/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/rancher/k3s/agent/containerd"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "10010"
  enable_selinux = false
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  sandbox_image = "rancher/mirrored-pause:3.6"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "native"
  disable_snapshot_annotations = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/var/lib/rancher/k3s/data/current/bin"
  conf_dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
`;

/** k3s releases on containerd 2.x write the v3 schema. */
const K3S_V3 = `version = 3
root = "/var/lib/rancher/k3s/agent/containerd"
state = "/run/k3s/containerd"

[grpc]
  address = "/run/k3s/containerd/containerd.sock"

[plugins.'io.containerd.internal.v1.opt']
  path = "/var/lib/rancher/k3s/agent/containerd"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "10010"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/var/lib/rancher/k3s/data/cni"]
  conf_dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
`;

describe("cniDirsFromContainerdConfig", () => {
  it("reads k3s's generated v2 config (containerd 1.x)", () => {
    expect(cniDirsFromContainerdConfig(K3S_V2)).toEqual({
      binDirs: ["/var/lib/rancher/k3s/data/current/bin"],
      confDir: "/var/lib/rancher/k3s/agent/etc/cni/net.d",
    });
  });
  it("reads the v3 schema (containerd 2.x) with bin_dirs", () => {
    expect(cniDirsFromContainerdConfig(K3S_V3)).toEqual({ binDirs: ["/var/lib/rancher/k3s/data/cni"], confDir: "/var/lib/rancher/k3s/agent/etc/cni/net.d" });
  });
  it("reads the v1 schema ([plugins.cri.cni])", () => {
    expect(cniDirsFromContainerdConfig(`[plugins.cri.cni]\nbin_dir = "/a"\nconf_dir = "/b"\n`)).toEqual({ binDirs: ["/a"], confDir: "/b" });
  });
  it("falls back to containerd's defaults when no cni section is written (k3s with flannel off, empty config)", () => {
    expect(cniDirsFromContainerdConfig("")).toEqual({ binDirs: ["/opt/cni/bin"], confDir: "/etc/cni/net.d" });
    expect(cniDirsFromContainerdConfig(`version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "x"\n`)).toEqual({
      binDirs: ["/opt/cni/bin"],
      confDir: "/etc/cni/net.d",
    });
  });
  it("rejects malformed TOML and wrong types with a clear error", () => {
    expect(() => cniDirsFromContainerdConfig(`[plugins."io.containerd.grpc.v1.cri".cni\nbin_dir = `)).toThrow(/invalid containerd config/);
    expect(() => cniDirsFromContainerdConfig(`[plugins."io.containerd.grpc.v1.cri".cni]\nbin_dir = 5\n`)).toThrow(/bin_dir must be a string/);
  });
});

describe("installFakeCni / uninstallFakeCni", () => {
  it("installs the executable (0755, identical to the bundle), the host-local alias and the conflist; uninstall removes exactly those", async () => {
    const root = join(T.dir, "inst");
    mkdirSync(join(root, "bin2"), { recursive: true });
    writeFileSync(join(root, "bin2", "host-local"), "#!/bin/sh\n# someone else's\n");
    writeFileSync(join(root, "keep.txt"), "mine");
    const inst = await installFakeCni({
      binDir: [join(root, "bin1"), join(root, "bin2")],
      confDir: join(root, "etc", "net.d"),
      network: { name: "hybrid", subnet: "10.42.0.0/24", mode: "noop", dataDir: join(root, "ipam"), routes: [{ dst: "0.0.0.0/0" }] },
      hostLocalAlias: true,
      executable: "node", // the native client's install is tested in server.test.ts
    });
    // the veth helper goes beside each plugin (the plugin runs it from its own directory)
    expect(inst.binFiles).toEqual([
      join(root, "bin1", "fake-cni"),
      join(root, "bin1", "fake-cni-link"),
      join(root, "bin1", "host-local"),
      join(root, "bin2", "fake-cni"),
      join(root, "bin2", "fake-cni-link"),
    ]);
    for (const f of inst.binFiles.filter((f) => !f.endsWith("fake-cni-link"))) {
      expect(statSync(f).mode & 0o777).toBe(0o755);
      expect(readFileSync(f).equals(readFileSync(pluginPath()))).toBe(true);
    }
    expect(readFileSync(join(root, "bin2", "host-local"), "utf8")).toContain("someone else's");
    expect(inst.confFile).toBe(join(root, "etc", "net.d", "10-fake-cni.conflist"));
    const list = JSON.parse(readFileSync(inst.confFile, "utf8")) as Record<string, unknown>;
    expect(list).toMatchObject({ cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"], name: "hybrid", plugins: [{ type: "fake-cni", mode: "noop" }] });
    // The installation serves: STATUS ready, ADD, DEL through the installed files.
    const binDirs = [join(root, "bin1"), join(root, "bin2")];
    await invokeCni({ command: "STATUS", conflist: inst.conflist, binDirs });
    const res = await invokeCni({ command: "ADD", conflist: inst.conflist, binDirs, containerId: "x1", netns: "/proc/self/ns/net" });
    expect(res.ips?.[0]?.address).toBe("10.42.0.2/24");
    // a second install of the same thing is idempotent, a conflicting one is refused
    await expect(
      installFakeCni({ binDir: join(root, "bin1"), confDir: join(root, "etc", "net.d"), network: { name: "other", subnet: "10.43.0.0/24", dataDir: join(root, "ipam") }, executable: "node" }),
    ).rejects.toThrow(/exists with other content/);
    // the native client over the Node bundle is a different fake-cni: refused
    await expect(
      installFakeCni({ binDir: join(root, "bin1"), confDir: join(root, "etc", "net.d"), network: { name: "hybrid", subnet: "10.42.0.0/24", dataDir: join(root, "ipam") }, executable: "native" }),
    ).rejects.toThrow(/exists and is not this plugin/);
    await inst.uninstall();
    expect(readdirSync(root).sort()).toEqual(["bin2", "keep.txt"]);
    expect(readdirSync(join(root, "bin2"))).toEqual(["host-local"]);
    await uninstallFakeCni(inst.files); // idempotent
  });

  it("refuses a foreign fake-cni and bad input without writing anything", async () => {
    const root = join(T.dir, "foreign");
    mkdirSync(join(root, "bin"), { recursive: true });
    writeFileSync(join(root, "bin", "fake-cni"), "other");
    const net = { name: "n", subnet: "10.1.0.0/24", dataDir: join(root, "ipam") };
    await expect(installFakeCni({ binDir: join(root, "bin"), confDir: join(root, "conf"), network: net })).rejects.toThrow(/not this plugin/);
    await expect(installFakeCni({ binDir: join(root, "bin"), confDir: join(root, "conf"), network: { ...net, subnet: "nope" } })).rejects.toThrow(/CIDR/);
    await expect(installFakeCni({ binDir: join(root, "bin"), confDir: join(root, "conf"), network: { ...net, name: "bad name" } })).rejects.toThrow(/name/);
    await expect(
      installFakeCni({ binDir: join(root, "bin"), confDir: join(root, "conf"), network: { ...net, rangeStart: "10.2.0.1" } }),
    ).rejects.toThrow(/invalid network: .*rangeStart.*outside subnet/);
    await expect(installFakeCni({ binDir: join(root, "bin"), confDir: join(root, "conf"), network: { ...net, mtu: 5 } })).rejects.toThrow(/mtu/);
    expect(existsSync(join(root, "conf"))).toBe(false);
    expect(existsSync(join(root, "ipam"))).toBe(false);
  });

  it("buildConflist chains reference plugins before and after", () => {
    const l = buildConflist({ name: "n", subnet: "10.1.0.0/24", dataDir: "/x", cniVersion: "1.1.0" }, { before: [{ type: "loopback" }], after: [{ type: "portmap" }] });
    expect(l.plugins.map((p) => p.type)).toEqual(["loopback", "fake-cni", "portmap"]);
    expect(l.cniVersions).toBeUndefined();
  });
});

describe("invokeCni", () => {
  it("runs a chain with Debian's reference plugins like libcni and throws a typed error carrying the CNI error", async () => {
    const root = join(T.dir, "inv");
    const binDirs = [join(root, "bin"), REF_DIR];
    const inst = await installFakeCni({
      binDir: join(root, "bin"),
      confDir: join(root, "conf"),
      network: { name: "chain", subnet: "10.44.0.0/24", mode: "noop", dataDir: join(root, "ipam"), cniVersion: "1.0.0" },
      chain: { after: [{ type: "portmap", capabilities: { portMappings: true } }] },
    });
    try {
      const v = await invokeCni({ command: "VERSION", conflist: inst.conflist, binDirs });
      expect(v.supportedVersions).toContain("1.1.0");
      const res = await invokeCni({ command: "ADD", conflist: inst.conflist, binDirs, containerId: "abc", netns: "/proc/self/ns/net" });
      expect(res.cniVersion).toBe("1.0.0"); // chained: no cniVersions, the reference plugins stop at 1.0.0
      expect(inst.conflist.cniVersions).toBeUndefined();
      expect(res.ips?.[0]?.address).toBe("10.44.0.2/24");
      await invokeCni({ command: "CHECK", conflist: inst.conflist, binDirs, containerId: "abc", netns: "/proc/self/ns/net", prevResult: res });
      await invokeCni({ command: "DEL", conflist: inst.conflist, binDirs, containerId: "abc", netns: "/proc/self/ns/net", prevResult: res });
      expect(readdirSync(join(root, "ipam", "chain")).filter((n) => n.startsWith("10."))).toEqual([]);
      const err = await invokeCni({ command: "ADD", config: { cniVersion: "1.0.0", name: "x", type: "fake-cni" }, binDirs, containerId: "abc", netns: "/x" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CniInvokeError);
      expect((err as CniInvokeError).cniError.code).toBe(7);
      expect((err as CniInvokeError).plugin).toBe("fake-cni");
      await expect(invokeCni({ command: "ADD", config: { cniVersion: "1.0.0", name: "x", type: "nosuch" }, binDirs, containerId: "a" })).rejects.toThrow(/failed to find plugin "nosuch"/);
    } finally {
      await inst.uninstall();
    }
  });
});
