import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_CONFIG, loadConfig } from "../src/config.js";
import { parseDuration } from "../src/output.js";

const dir = mkdtempSync(join(tmpdir(), "hybrid-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe("config", () => {
  it("needs no file", async () => {
    expect(await loadConfig()).toEqual(DEFAULT_CONFIG);
    expect(DEFAULT_CONFIG.cni).toMatchObject({ network: "hybrid", subnet: "10.42.0.0/24", mode: "auto" });
  });
  it("reads YAML and JSON", async () => {
    expect((await loadConfig(file("a.yaml", "cni:\n  subnet: 10.50.0.0/24\n  mode: noop\n"))).cni).toMatchObject({ subnet: "10.50.0.0/24", mode: "noop" });
    expect((await loadConfig(file("a.json", '{"runtime": {"kind": "containerd"}}'))).runtime.kind).toBe("containerd");
  });
  it("names the field and the file of an invalid value", async () => {
    const f = file("bad.yaml", "cni:\n  subnet: not-a-cidr\n");
    const err = await loadConfig(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe("cni.subnet");
    expect((err as ConfigError).message).toContain(f);
    expect((err as ConfigError).message).toContain("cni.subnet");
  });
  it("rejects unknown fields by name", async () => {
    const err = (await loadConfig(file("typo.yaml", "cgroupfs:\n  mountpiont: /x\n")).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/cgroupfs/);
    expect(err.message).toMatch(/mountpiont/);
  });
  it("names an unknown nested field by its dotted path", async () => {
    const err = (await loadConfig(file("typo2.yaml", "cni:\n  subnett: 10.1.0.0/24\n")).catch((e: unknown) => e)) as ConfigError;
    expect(err.field).toBe("cni.subnett");
  });
  it("rejects a subnet with no room for pods", async () => {
    const err = (await loadConfig(file("slash31.yaml", "cni:\n  subnet: 10.42.0.0/31\n")).catch((e: unknown) => e)) as ConfigError;
    expect(err.field).toBe("cni.subnet");
    expect(err.message).toMatch(/prefix length/);
  });
  it("reports unparsable YAML and missing files", async () => {
    await expect(loadConfig(file("broken.yaml", "cni: [\n"))).rejects.toThrow(/not valid YAML/);
    await expect(loadConfig(join(dir, "missing.yaml"))).rejects.toThrow(/cannot read config file/);
  });
});

describe("durations", () => {
  it.each([
    ["90s", 90],
    ["2m", 120],
    ["1h30m", 5400],
    ["45", 45],
  ])("%s is %d seconds", (text, s) => expect(parseDuration(text)).toBe(s));
  it("rejects nonsense", () => expect(() => parseDuration("2 weeks")).toThrow(/invalid duration/));
});
