import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import {
  buildK3sAgentArgs, buildK3sServerArgs, detectUserNamespace, KUBELET_ARG_REASONS, parseK3sArgs, planK3sServerArgs,
} from "../src/index.js";
import { cleanupDir, tempDir } from "./helpers.js";

const base = { dataDir: "/var/lib/hybrid/runtime/k3s", kubeconfig: "/var/lib/hybrid/runtime/kubeconfig.yaml" };
const gv = planK3sServerArgs("gvisor", base);
const reasonOf = (arg: string): string => {
  const found = gv.find((a) => a.arg === arg);
  if (!found) throw new Error(`${arg} not in ${gv.map((a) => a.arg).join(" ")}`);
  return found.reason;
};

describe("buildK3sServerArgs: the gvisor profile gives every sandbox flag of shared/facts/k3s-kubelet.md, each with its reason", () => {
  it("starts with the server subcommand and is accepted by k3s's flag table", () => {
    const args = buildK3sServerArgs("gvisor", base);
    expect(args[0]).toBe("server");
    expect(() => parseK3sArgs(args)).not.toThrow();
  });
  it("--data-dir: state under the stack's dir", () => expect(reasonOf(`--data-dir=${base.dataDir}`)).toMatch(/state dir/));
  it("--write-kubeconfig: where the probe reads it", () => expect(reasonOf(`--write-kubeconfig=${base.kubeconfig}`)).toMatch(/kubeconfig/));
  it("--write-kubeconfig-mode=0600: admin key owner-only", () => expect(reasonOf("--write-kubeconfig-mode=0600")).toMatch(/owner-only/));
  it("--snapshotter=native: overlayfs cannot be enabled", () => expect(reasonOf("--snapshotter=native")).toMatch(/overlayfs.*snapshotter cannot be enabled/));
  it("--flannel-backend=none: flannel 'operation not supported'", () => expect(reasonOf("--flannel-backend=none")).toMatch(/failed to register flannel network: operation not supported/));
  it("--disable-network-policy: needs iptables/ipset", () => expect(reasonOf("--disable-network-policy")).toMatch(/iptables/));
  it("--disable=traefik,servicelb,metrics-server", () => expect(reasonOf("--disable=traefik,servicelb,metrics-server")).toMatch(/servicelb needs iptables/));
  it("--disable-kube-proxy: conntrack not writable", () => expect(reasonOf("--disable-kube-proxy")).toMatch(/nf_conntrack_max: permission denied/));
  it("kubelet fail-swap-on=false", () => expect(reasonOf("--kubelet-arg=fail-swap-on=false")).toMatch(/swap/));
  it("kubelet cgroups-per-qos=false", () => expect(reasonOf("--kubelet-arg=cgroups-per-qos=false")).toMatch(/QoS cgroups/));
  it("kubelet enforce-node-allocatable= (empty)", () => expect(reasonOf("--kubelet-arg=enforce-node-allocatable=")).toMatch(/must be empty/));
  it("kubelet local-storage-capacity-isolation=false", () =>
    expect(reasonOf("--kubelet-arg=local-storage-capacity-isolation=false")).toMatch(/failed to get rootfs info/));
  it("kubelet image-gc-high-threshold=100", () => expect(reasonOf("--kubelet-arg=image-gc-high-threshold=100")).toMatch(/invalid capacity 0 on image filesystem/));
  it("kubelet image-gc-low-threshold=99", () => expect(reasonOf("--kubelet-arg=image-gc-low-threshold=99")).toMatch(/below image-gc-high-threshold/));
  it("kubelet protect-kernel-defaults=false", () => expect(reasonOf("--kubelet-arg=protect-kernel-defaults=false")).toMatch(/invalid kernel flag/));
  it("no KubeletInUserNamespace gate when not in a user namespace", () =>
    expect(gv.map((a) => a.arg)).not.toContain("--kubelet-arg=feature-gates=KubeletInUserNamespace=true"));
  it("every argument carries a non-empty reason", () => {
    for (const a of gv) expect(a.reason.length, a.arg).toBeGreaterThan(10);
  });
  it("every kubelet arg reason in the table is used by some capability", () => {
    const all = planK3sServerArgs("gvisor", { ...base, inUserNamespace: true }).map((a) => a.arg);
    for (const kv of Object.keys(KUBELET_ARG_REASONS)) expect(all).toContain(`--kubelet-arg=${kv}`);
  });
});

describe("buildK3sServerArgs: capabilities switch flags", () => {
  const args = (p: Parameters<typeof buildK3sServerArgs>[0], o: Partial<Parameters<typeof buildK3sServerArgs>[1]> = {}) =>
    buildK3sServerArgs(p, { ...base, ...o });
  it("overlay available → no --snapshotter", () => expect(args("gvisor", { overlayAvailable: true })).not.toContain("--snapshotter=native"));
  it("conntrack writable → kube-proxy kept", () => expect(args("gvisor", { conntrackWritable: true })).not.toContain("--disable-kube-proxy"));
  it("cgroups available (e.g. the cgroupfs layer) → QoS cgroups kept", () => {
    const a = args("gvisor", { cgroupsAvailable: true });
    expect(a).not.toContain("--kubelet-arg=cgroups-per-qos=false");
    expect(a).not.toContain("--kubelet-arg=enforce-node-allocatable=");
  });
  it("/proc/sys writable → no protect-kernel-defaults override", () =>
    expect(args("gvisor", { procSysWritable: true })).not.toContain("--kubelet-arg=protect-kernel-defaults=false"));
  it("user namespace → KubeletInUserNamespace feature gate", () =>
    expect(args("container", { inUserNamespace: true })).toContain("--kubelet-arg=feature-gates=KubeletInUserNamespace=true"));
  it("host profile: only the stack's own flags, no sandbox workarounds", () => {
    expect(args("host")).toEqual([
      "server", `--data-dir=${base.dataDir}`, `--write-kubeconfig=${base.kubeconfig}`, "--write-kubeconfig-mode=0600",
      "--disable=traefik,servicelb,metrics-server", "--flannel-backend=none", "--disable-network-policy",
    ]);
  });
  it("vm equals host", () => expect(args("vm")).toEqual(args("host")));
  it("container profile: native snapshotter, no kube-proxy, cgroups kept", () => {
    const a = args("container");
    expect(a).toContain("--snapshotter=native");
    expect(a).toContain("--disable-kube-proxy");
    expect(a).not.toContain("--kubelet-arg=cgroups-per-qos=false");
  });
  it("cni flannel keeps flannel and the policy controller", () => {
    const a = args("host", { cni: "flannel" });
    expect(a).not.toContain("--flannel-backend=none");
    expect(a).not.toContain("--disable-network-policy");
  });
  it("disableAgent: --disable-agent, no agent-only flags", () => {
    const a = args("gvisor", { disableAgent: true, httpsPort: 7443, nodeName: "n1" });
    expect(a).toContain("--disable-agent");
    expect(a).toContain("--https-listen-port=7443");
    expect(a).toContain("--node-name=n1");
    expect(a.filter((x) => x.startsWith("--kubelet-arg") || x.startsWith("--snapshotter"))).toEqual([]);
  });
  it("extraKubeletArgs appended after the profile's", () =>
    expect(args("gvisor", { extraKubeletArgs: ["max-pods=10"] }).at(-1)).toBe("--kubelet-arg=max-pods=10"));
});

describe("every profile's argv is accepted by k3s's flag table", () => {
  for (const profile of ["gvisor", "container", "vm", "host"] as const) {
    it(profile, () => {
      for (const disableAgent of [false, true]) {
        const a = buildK3sServerArgs(profile, { ...base, disableAgent, httpsPort: 6444, nodeName: "n" });
        expect(parseK3sArgs(a).subcommand).toBe("server");
      }
    });
  }
});

describe("buildK3sServerArgs: bad input gets a clear error", () => {
  it("unknown profile", () => expect(() => buildK3sServerArgs("lxc" as never, base)).toThrow(/unknown sandbox profile "lxc"/));
  it("relative dataDir", () => expect(() => buildK3sServerArgs("gvisor", { ...base, dataDir: "k3s" })).toThrow(/dataDir must be an absolute path/));
  it("bad port", () => expect(() => buildK3sServerArgs("gvisor", { ...base, httpsPort: 70000 })).toThrow(/1\.\.65535/));
  it("bad mode", () => expect(() => buildK3sServerArgs("gvisor", { ...base, kubeconfigMode: "rw" })).toThrow(/octal/));
  it("kubelet arg with dashes", () =>
    expect(() => buildK3sServerArgs("gvisor", { ...base, extraKubeletArgs: ["--max-pods=10"] })).toThrow(/KEY=VALUE without leading dashes/));
  it("extra arg k3s does not have", () =>
    expect(() => buildK3sServerArgs("gvisor", { ...base, extraArgs: ["--no-such-flag"] })).toThrow(/k3s would reject.*flag provided but not defined: -no-such-flag/));
  it("kubelet args with disableAgent", () =>
    expect(() => buildK3sServerArgs("gvisor", { ...base, disableAgent: true, extraKubeletArgs: ["a=b"] })).toThrow(/no kubelet/));
});

describe("buildK3sAgentArgs", () => {
  it("joins a server with the agent-side sandbox flags", () => {
    const a = buildK3sAgentArgs("gvisor", { serverUrl: "https://10.0.0.1:6443", token: "K10abc::server:x", dataDir: "/d" });
    expect(a.slice(0, 4)).toEqual(["agent", "--server=https://10.0.0.1:6443", "--token=K10abc::server:x", "--data-dir=/d"]);
    expect(a).toContain("--snapshotter=native");
    expect(a).toContain("--kubelet-arg=cgroups-per-qos=false");
    expect(a).not.toContain("--disable-kube-proxy"); // a server flag: k3s agent does not have it
    expect(() => parseK3sArgs(a)).not.toThrow();
  });
  it("needs exactly one of token/tokenFile and an https URL", () => {
    expect(() => buildK3sAgentArgs("gvisor", { serverUrl: "https://h:6443", dataDir: "/d" })).toThrow(/exactly one of token or tokenFile/);
    expect(() => buildK3sAgentArgs("gvisor", { serverUrl: "http://h:6443", token: "t", dataDir: "/d" })).toThrow(/https/);
  });
});

describe("detectUserNamespace", () => {
  it("reads uid_map: the full map is no user namespace, a partial one is", () => {
    const d = tempDir();
    try {
      writeFileSync(`${d}/full`, "         0          0 4294967295\n");
      writeFileSync(`${d}/part`, "         0       1000          1\n");
      expect(detectUserNamespace(`${d}/full`)).toBe(false);
      expect(detectUserNamespace(`${d}/part`)).toBe(true);
      expect(detectUserNamespace(`${d}/missing`)).toBe(false);
    } finally {
      cleanupDir(d);
    }
  });
});
