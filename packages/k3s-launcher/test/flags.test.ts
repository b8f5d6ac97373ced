import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { K3S_AGENT_FLAGS, K3S_SERVER_FLAGS, parseK3sArgs, standinPath } from "../src/index.js";

describe("parseK3sArgs (urfave/cli v1 semantics over k3s's flag table)", () => {
  it("accepts --k=v, --k v, -k v, short aliases, bools and repeated slices", () => {
    const p = parseK3sArgs(["server", "--data-dir", "/d", "-o", "/k.yaml", "--disable=traefik", "--disable", "servicelb", "-debug", "--disable-agent=false", "--https-listen-port=7443"]);
    expect(p.flags).toEqual({ "data-dir": "/d", "write-kubeconfig": "/k.yaml", disable: ["traefik", "servicelb"], debug: true, "disable-agent": false, "https-listen-port": "7443" });
  });
  it("rejects flags k3s does not have", () => expect(() => parseK3sArgs(["server", "--kubelet-args=x"])).toThrow("flag provided but not defined: -kubelet-args"));
  it("rejects a server-only flag on agent", () => expect(() => parseK3sArgs(["agent", "--disable-agent"])).toThrow(/not defined: -disable-agent/));
  it("rejects a missing value", () => expect(() => parseK3sArgs(["server", "--data-dir"])).toThrow(/needs an argument: -data-dir/));
  it("rejects a non-integer port", () => expect(() => parseK3sArgs(["server", "--https-listen-port=abc"])).toThrow(/invalid value "abc"/));
  it("rejects positional arguments and unknown subcommands", () => {
    expect(() => parseK3sArgs(["server", "extra"])).toThrow(/unexpected arguments/);
    expect(() => parseK3sArgs(["serve"])).toThrow(/expected subcommand/);
  });
  it("has the flags the sandbox needs, with their arities (k3s pkg/cli/cmds)", () => {
    expect(K3S_SERVER_FLAGS["disable-agent"]).toMatchObject({ arity: "bool", hidden: true });
    expect(K3S_SERVER_FLAGS["kubelet-arg"]?.arity).toBe("slice");
    expect(K3S_SERVER_FLAGS["disable"]?.arity).toBe("slice");
    expect(K3S_SERVER_FLAGS["write-kubeconfig"]).toMatchObject({ arity: "value", aliases: ["o"] });
    expect(K3S_SERVER_FLAGS["https-listen-port"]).toMatchObject({ arity: "value", int: true });
    expect(K3S_AGENT_FLAGS["disable-kube-proxy"]).toBeUndefined();
    expect(K3S_AGENT_FLAGS["snapshotter"]?.arity).toBe("value");
  });
});

describe("the k3s stand-in rejects what k3s rejects (before touching anything)", () => {
  const run = (args: string[]) => execa(standinPath(), args, { reject: false, timeout: 20_000 });
  it("an unknown flag: exit 1, urfave/cli's message", async () => {
    const r = await run(["server", "--data-dir=/nonexistent-k3sl", "--no-such-flag"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("Incorrect Usage: flag provided but not defined: -no-such-flag");
  });
  it("a kubelet flag given as a k3s flag", async () => {
    const r = await run(["server", "--fail-swap-on=false"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("flag provided but not defined: -fail-swap-on");
  });
  it("a bad --disable item, flannel backend, snapshotter, kubelet-arg, mode", async () => {
    for (const [arg, msg] of [
      ["--disable=traefik,nginx", /invalid --disable item .{0,2}nginx/],
      ["--flannel-backend=calico", /invalid flannel backend: calico/],
      ["--snapshotter=aufs", /unknown snapshotter .{0,2}aufs/],
      ["--kubelet-arg=fail-swap-on", /invalid --kubelet-arg/],
      ["--write-kubeconfig-mode=rw", /invalid --write-kubeconfig-mode/],
    ] as const) {
      const r = await run(["server", "--data-dir=/nonexistent-k3sl", arg]);
      expect(r.exitCode, arg).toBe(1);
      expect(r.stderr, arg).toMatch(msg);
    }
  });
  it("`k3s agent` is not emulated and says so", async () => {
    const r = await run(["agent", "--server=https://h:6443"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/implements only `k3s server`/);
  });
  it("--version names itself a stand-in", async () => {
    const r = await run(["--version"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^k3s version v\S+standin/);
  });
});
