/**
 * CNI spec 1.1.0 conformance of the built executable (dist/bin/fake-cni), driven exactly as a
 * runtime drives it: environment variables and the config on stdin (noop mode: no kernel state).
 * Run three ways (helpers VIAS): the Node bundle, the native client falling back to Node (no
 * server), the native client through a resident server.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SUPPORTED_VERSIONS } from "../src/index.js";
import { CLIENT, installExecutable, netConf, PLUGIN, runVia, stopServers, tempDir, VIAS, type ViaRun, serveUnder } from "./helpers.js";


function env(command: string, id = "c1", ifname = "eth0", netns: string | undefined = "/var/run/netns/x"): Record<string, string | undefined> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_IFNAME: ifname, CNI_NETNS: netns, CNI_PATH: "/nonexistent" };
}

function records(dataDir: string, net = "testnet"): string[] {
  const d = join(dataDir, net);
  return existsSync(d) ? readdirSync(d).filter((n) => /^[0-9a-f.:]+$/.test(n)).sort() : [];
}

describe("plugin executable", () => {
  it("is a single bundled file with a node shebang, mode 0755", () => {
    const text = readFileSync(PLUGIN, "utf8");
    expect(text.startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect(text).not.toMatch(/require\("(?!node:|fs|path|child_process)[^"]+"\)/);
  });
});

describe.each(VIAS)("via %s", (via) => {
  const T = tempDir(`spec-${via.replace("+", "-")}`);
  serveUnder(T.dir);
  afterAll(async () => {
    await stopServers();
    T.cleanup();
  });
  const runPlugin = (e: Record<string, string | undefined>, stdin: string, file?: string): Promise<ViaRun> => runVia(via, e, stdin, file);

  describe("VERSION", () => {
    it.each([...SUPPORTED_VERSIONS])("answers for a %s config with that cniVersion and every supported version", async (v) => {
      const r = await runPlugin({ CNI_COMMAND: "VERSION" }, JSON.stringify({ cniVersion: v }));
      expect(r.code).toBe(0);
      expect(r.json).toEqual({ cniVersion: v, supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
    });
    it("answers with empty stdin", async () => {
      const r = await runPlugin({ CNI_COMMAND: "VERSION" }, "");
      expect(r.code).toBe(0);
      expect(r.json?.cniVersion).toBe("1.1.0");
    });
  });

  describe.each([...SUPPORTED_VERSIONS])("config version %s", (v) => {
    const dataDir = join(T.dir, `v${v}`);
    const conf = netConf(dataDir, { cniVersion: v, dns: { nameservers: ["10.123.0.10"] } });
    let added: Record<string, unknown> | undefined;

    it("ADD returns a result of the asked version with the allocated address", async () => {
      const r = await runPlugin(env("ADD"), JSON.stringify(conf));
      expect(r.code, r.stdout).toBe(0);
      added = r.json;
      expect(added?.cniVersion).toBe(v);
      const ip = (added?.ips as Record<string, unknown>[])[0]!;
      expect(ip.address).toBe("10.123.0.2/24");
      expect(ip.gateway).toBe("10.123.0.1");
      expect(ip.interface).toBe(0);
      if (v.startsWith("0.")) expect(ip.version).toBe("4");
      else expect(ip.version).toBeUndefined();
      const ifc = (added?.interfaces as Record<string, unknown>[])[0]!;
      expect(ifc).toMatchObject({ name: "eth0", sandbox: "/var/run/netns/x", mac: "0a:58:0a:7b:00:02" });
      expect(ifc.mtu).toBe(v === "1.1.0" ? 1500 : undefined);
      expect(added?.routes).toEqual([{ dst: "0.0.0.0/0" }]);
      expect(added?.dns).toEqual({ nameservers: ["10.123.0.10"] });
      expect(records(dataDir)).toEqual(["10.123.0.2"]);
      expect(readFileSync(join(dataDir, "testnet", "10.123.0.2"), "utf8")).toBe("c1\r\neth0");
    });

    it("a second attachment gets the next address; ADD of a known attachment returns its address again", async () => {
      const r2 = await runPlugin(env("ADD", "c2"), JSON.stringify(conf));
      expect((r2.json?.ips as { address: string }[])[0]!.address).toBe("10.123.0.3/24");
      const again = await runPlugin(env("ADD"), JSON.stringify(conf));
      expect((again.json?.ips as { address: string }[])[0]!.address).toBe("10.123.0.2/24");
      expect(records(dataDir)).toEqual(["10.123.0.2", "10.123.0.3"]);
    });

    it(v === "0.3.0" || v === "0.3.1" ? "CHECK is refused with code 1 (needs 0.4.0)" : "CHECK succeeds silently with prevResult and fails without a record", async () => {
      const r = await runPlugin(env("CHECK"), JSON.stringify({ ...conf, prevResult: added }));
      if (v === "0.3.0" || v === "0.3.1") {
        expect(r.code).not.toBe(0);
        expect(r.json?.code).toBe(1);
        return;
      }
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toBe("");
      const unknown = await runPlugin(env("CHECK", "nobody"), JSON.stringify({ ...conf, prevResult: added }));
      expect(unknown.json?.code).toBe(3);
      const noPrev = await runPlugin(env("CHECK"), JSON.stringify(conf));
      expect(noPrev.json?.code).toBe(7);
    });

    it(v === "1.1.0" ? "STATUS answers ready (exit 0, no output)" : "STATUS is refused with code 1 (needs 1.1.0)", async () => {
      const r = await runPlugin({ CNI_COMMAND: "STATUS" }, JSON.stringify(conf));
      if (v === "1.1.0") {
        expect(r.code).toBe(0);
        expect(r.stdout).toBe("");
      } else expect(r.json?.code).toBe(1);
    });

    it(v === "1.1.0" ? "GC frees what cni.dev/valid-attachments does not list" : "GC is refused with code 1 (needs 1.1.0)", async () => {
      const r = await runPlugin({ CNI_COMMAND: "GC" }, JSON.stringify({ ...conf, "cni.dev/valid-attachments": [{ containerID: "c2", ifname: "eth0" }] }));
      if (v === "1.1.0") {
        expect(r.code, r.stdout).toBe(0);
        expect(r.stdout).toBe("");
        expect(records(dataDir)).toEqual(["10.123.0.3"]);
      } else {
        expect(r.json?.code).toBe(1);
        expect(records(dataDir)).toEqual(["10.123.0.2", "10.123.0.3"]);
      }
    });

    it("DEL frees the attachment and is idempotent: unknown container, missing netns, no prevResult", async () => {
      for (const id of ["c1", "c2"]) {
        const r = await runPlugin(env("DEL", id, "eth0", undefined), JSON.stringify({ ...conf, prevResult: added }));
        expect(r.code, r.stdout).toBe(0);
        expect(r.stdout).toBe("");
      }
      expect(records(dataDir)).toEqual([]);
      const again = await runPlugin(env("DEL", "c1", "eth0", "/no/such/netns"), JSON.stringify(conf));
      expect(again.code).toBe(0);
      const unknown = await runPlugin(env("DEL", "never-added"), JSON.stringify(conf));
      expect(unknown.code).toBe(0);
    });
  });

  describe("errors are the spec's error object on stdout with a non-zero exit", () => {
    const dataDir = join(T.dir, "errors");
    const conf = netConf(dataDir);
    const cases: [string, Record<string, string | undefined>, string, number][] = [
      ["bad JSON -> 6", env("ADD"), "{not json", 6],
      ["JSON that is not an object -> 6", env("ADD"), "[1,2]", 6],
      ["missing name -> 7", env("ADD"), JSON.stringify({ ...conf, name: undefined }), 7],
      ["bad subnet -> 7", env("ADD"), JSON.stringify(netConf(dataDir, {}, { ranges: [[{ subnet: "10.1.2.3/40" }]] })), 7],
      ["rangeStart outside subnet -> 7", env("ADD"), JSON.stringify(netConf(dataDir, {}, { ranges: [[{ subnet: "10.1.0.0/24", rangeStart: "10.2.0.5" }]] })), 7],
      ["bad mode -> 7", env("ADD"), JSON.stringify({ ...conf, mode: "bridge" }), 7],
      ["no ipam -> 7", env("ADD"), JSON.stringify({ ...conf, ipam: undefined }), 7],
      ["unsupported version -> 1", env("ADD"), JSON.stringify({ ...conf, cniVersion: "0.2.0" }), 1],
      ["unknown version -> 1", env("ADD"), JSON.stringify({ ...conf, cniVersion: "9.9.9" }), 1],
      ["missing CNI_COMMAND -> 4", { ...env("ADD"), CNI_COMMAND: undefined }, JSON.stringify(conf), 4],
      ["unknown CNI_COMMAND -> 4", env("FROB"), JSON.stringify(conf), 4],
      ["ADD without CNI_CONTAINERID -> 4", { ...env("ADD"), CNI_CONTAINERID: undefined }, JSON.stringify(conf), 4],
      ["ADD without CNI_NETNS -> 4", { ...env("ADD"), CNI_NETNS: undefined }, JSON.stringify(conf), 4],
      ["ADD without CNI_IFNAME -> 4", { ...env("ADD"), CNI_IFNAME: undefined }, JSON.stringify(conf), 4],
      ["DEL without CNI_IFNAME -> 4", { ...env("DEL"), CNI_IFNAME: undefined }, JSON.stringify(conf), 4],
      ["bad ifname -> 4", env("ADD", "c1", "a/b"), JSON.stringify(conf), 4],
      ["bad container id -> 4", env("ADD", "-bad id"), JSON.stringify(conf), 4],
      ["bad CNI_ARGS -> 4", { ...env("ADD"), CNI_ARGS: "novalue" }, JSON.stringify(conf), 4],
    ];
    it.each(cases)("%s", async (_title, e, stdin, code) => {
      const r = await runPlugin(e, stdin);
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code });
      expect(typeof r.json?.msg).toBe("string");
      expect(typeof r.json?.cniVersion).toBe("string");
      expect(records(dataDir)).toEqual([]);
    });

    it("I/O failure (dataDir under a regular file) -> 5, and STATUS says not available (50)", async () => {
      const file = join(T.dir, "a-file");
      writeFileSync(file, "x");
      const bad = netConf(join(file, "sub"));
      const r = await runPlugin(env("ADD"), JSON.stringify(bad));
      expect(r.json).toMatchObject({ code: 5 });
      const s = await runPlugin({ CNI_COMMAND: "STATUS" }, JSON.stringify(bad));
      expect(s.json).toMatchObject({ code: 50 });
    });

    it("exhaustion -> 100 with nothing handed out twice; STATUS then says 50; a DEL makes room again", async () => {
      const d = join(T.dir, "exhaust");
      const small = netConf(d, {}, { ranges: [[{ subnet: "10.9.0.0/29", rangeStart: "10.9.0.2", rangeEnd: "10.9.0.4" }]] });
      const got: string[] = [];
      for (const id of ["a", "b", "c"]) {
        const r = await runPlugin(env("ADD", id), JSON.stringify(small));
        expect(r.code, r.stdout).toBe(0);
        got.push((r.json?.ips as { address: string }[])[0]!.address);
      }
      expect(got.sort()).toEqual(["10.9.0.2/29", "10.9.0.3/29", "10.9.0.4/29"]);
      const full = await runPlugin(env("ADD", "d"), JSON.stringify(small));
      expect(full.code).not.toBe(0);
      expect(full.json).toMatchObject({ code: 100 });
      expect((full.json?.msg as string)).toMatch(/no IP addresses available/);
      expect((await runPlugin({ CNI_COMMAND: "STATUS" }, JSON.stringify(small))).json).toMatchObject({ code: 50 });
      await runPlugin(env("DEL", "b"), JSON.stringify(small));
      const after = await runPlugin(env("ADD", "d"), JSON.stringify(small));
      expect((after.json?.ips as { address: string }[])[0]!.address).toBe("10.9.0.3/29");
    });

    it("a network dir that is a regular file gives 5 on ADD and still lets DEL succeed", async () => {
      const d = join(T.dir, "nd");
      const conf2 = netConf(d);
      expect((await runPlugin(env("ADD", "x"), JSON.stringify(netConf(join(d, "other"))))).code).toBe(0);
      writeFileSync(join(d, "testnet"), "not a dir");
      const r = await runPlugin(env("ADD", "y"), JSON.stringify(conf2));
      expect(r.json).toMatchObject({ code: 5 });
      expect((await runPlugin(env("DEL", "y"), JSON.stringify(conf2))).code).toBe(0);
    });
  });

  describe("IPAM behaviour like host-local", () => {
    it("skips the gateway, honours CNI_ARGS IP=, dual-stack range sets, IgnoreUnknown args", async () => {
      const d = join(T.dir, "ipam1");
      const conf = netConf(d, {}, { ranges: [[{ subnet: "10.8.0.0/24", gateway: "10.8.0.2" }], [{ subnet: "fd00:8::/64" }]] });
      const a = await runPlugin({ ...env("ADD", "a"), CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=p" }, JSON.stringify(conf));
      expect(a.code, a.stdout).toBe(0);
      expect((a.json?.ips as { address: string; gateway: string }[]).map((i) => [i.address, i.gateway])).toEqual([
        ["10.8.0.1/24", "10.8.0.2"],
        ["fd00:8::2/64", "fd00:8::1"],
      ]);
      const b = await runPlugin(env("ADD", "b"), JSON.stringify(conf));
      expect((b.json?.ips as { address: string }[])[0]!.address).toBe("10.8.0.3/24");
      const c = await runPlugin({ ...env("ADD", "c"), CNI_ARGS: "IP=10.8.0.77" }, JSON.stringify(conf));
      expect((c.json?.ips as { address: string }[])[0]!.address).toBe("10.8.0.77/24");
      const taken = await runPlugin({ ...env("ADD", "d"), CNI_ARGS: "IP=10.8.0.77" }, JSON.stringify(conf));
      expect(taken.json).toMatchObject({ code: 101 });
      expect(readFileSync(join(d, "testnet", "last_reserved_ip.0"), "utf8")).toBe("10.8.0.3");
    });

    it("as `host-local` (IPAM delegate) returns only ips/routes/dns", async () => {
      const { dir, cleanup } = tempDir("hl");
      try {
        const hl = installExecutable(via, dir, "host-local");
        const conf = {
          cniVersion: "1.0.0",
          name: "br",
          type: "macvlan",
          mode: "bridge", // the delegating plugin's own fields are not ours to judge
          mtu: 9000,
          ipam: { type: "host-local", subnet: "10.6.0.0/24", dataDir: join(dir, "st") },
          // a delegate must not echo the chain's earlier result back
          prevResult: { cniVersion: "1.0.0", ips: [{ address: "192.168.1.5/24" }] },
        };
        const r = await runPlugin(env("ADD"), JSON.stringify(conf), hl);
        expect(r.code, r.stdout).toBe(0);
        expect(r.json).toEqual({ cniVersion: "1.0.0", ips: [{ address: "10.6.0.2/24", gateway: "10.6.0.1" }] });
        expect((await runPlugin(env("DEL"), JSON.stringify(conf), hl)).code).toBe(0);
        expect(readdirSync(join(dir, "st", "br"))).toEqual(["last_reserved_ip.0"]);
      } finally {
        cleanup();
      }
    });

    it("chained after another plugin: keeps prevResult's interfaces and ips and indexes its own", async () => {
      const d = join(T.dir, "chain");
      const prevResult = {
        cniVersion: "1.0.0",
        interfaces: [{ name: "lo", mac: "00:00:00:00:00:00", sandbox: "/x" }],
        ips: [{ address: "127.0.0.1/8", interface: 0 }],
      };
      const r = await runPlugin(env("ADD"), JSON.stringify({ ...netConf(d, { cniVersion: "1.0.0" }), prevResult }));
      expect(r.code, r.stdout).toBe(0);
      expect((r.json?.interfaces as { name: string }[]).map((i) => i.name)).toEqual(["lo", "eth0"]);
      expect(r.json?.ips).toEqual([
        { address: "127.0.0.1/8", interface: 0 },
        { address: "10.123.0.2/24", gateway: "10.123.0.1", interface: 1 },
      ]);
    });

    it("breaks a stale lock left by a dead process", async () => {
      const d = join(T.dir, "stale");
      const conf = netConf(d);
      expect((await runPlugin(env("ADD", "a"), JSON.stringify(conf))).code).toBe(0);
      writeFileSync(join(d, "testnet", "fake-cni.lock"), "999999999\n"); // no such pid
      const r = await runPlugin(env("ADD", "b"), JSON.stringify(conf));
      expect(r.code, r.stdout).toBe(0);
      expect(existsSync(join(d, "testnet", "fake-cni.lock"))).toBe(false);
    });
  });
});

beforeAll(() => {
  expect(existsSync(PLUGIN), "run pnpm build first").toBe(true);
  expect(existsSync(CLIENT), "the native client is built by pnpm build (needs make and cc)").toBe(true);
});
