/**
 * k3s command lines for a sandbox profile. Every flag carries the reason it is there
 * (shared/facts/k3s-kubelet.md: what k3s, the kubelet and cAdvisor need from a sandbox).
 */
import { readFileSync } from "node:fs";
import { parseK3sArgs } from "./k3s-flags.js";

/**
 * Where k3s runs. `gvisor`: 9p root, no cgroups, read-only /proc/sys, no overlay, no conntrack;
 * `container`: a Docker/kind-like container (nested overlay and conntrack sysctls unavailable,
 * /proc/sys read-only, cgroups present); `vm` and `host`: a full kernel.
 */
export type SandboxProfile = "gvisor" | "container" | "vm" | "host";

/**
 * What the environment offers; each field switches flags on or off. Defaults come from the
 * profile ({@link PROFILE_CAPABILITIES}); doctor's findings override them.
 */
export interface SandboxCapabilities {
  /** A kernel overlay mount works (else `--snapshotter=native`). */
  overlayAvailable: boolean;
  /** `/proc/sys/net/netfilter/nf_conntrack_max` is writable (else `--disable-kube-proxy`). */
  conntrackWritable: boolean;
  /** A usable cgroup hierarchy (real or emulated) is mounted (else no QoS cgroups, no allocatable enforcement). */
  cgroupsAvailable: boolean;
  /** The kubelet can write its kernel tunables under /proc/sys (else `protect-kernel-defaults=false`). */
  procSysWritable: boolean;
  /** cAdvisor can size the root/image filesystem (ext*, xfs, overlay, tmpfs...; not 9p or FUSE). */
  rootfsSizable: boolean;
  /** The kubelet can see and act on swap state (else `fail-swap-on=false`). */
  swapControllable: boolean;
  /** The process runs in a user namespace (then `feature-gates=KubeletInUserNamespace=true`). */
  inUserNamespace: boolean;
}

/** Profile defaults. A `gvisor` sandbox offers none of the above (shared/facts/testbed-gvisor.md). */
export const PROFILE_CAPABILITIES: Readonly<Record<SandboxProfile, Readonly<SandboxCapabilities>>> = {
  gvisor: {
    overlayAvailable: false,
    conntrackWritable: false,
    cgroupsAvailable: false,
    procSysWritable: false,
    rootfsSizable: false,
    swapControllable: false,
    inUserNamespace: false,
  },
  container: {
    overlayAvailable: false,
    conntrackWritable: false,
    cgroupsAvailable: true,
    procSysWritable: false,
    rootfsSizable: false,
    swapControllable: false,
    inUserNamespace: false,
  },
  vm: {
    overlayAvailable: true,
    conntrackWritable: true,
    cgroupsAvailable: true,
    procSysWritable: true,
    rootfsSizable: true,
    swapControllable: true,
    inUserNamespace: false,
  },
  host: {
    overlayAvailable: true,
    conntrackWritable: true,
    cgroupsAvailable: true,
    procSysWritable: true,
    rootfsSizable: true,
    swapControllable: true,
    inUserNamespace: false,
  },
};

/** Options of {@link buildK3sServerArgs}. Capability fields override the profile's defaults. */
export interface K3sServerOptions extends Partial<SandboxCapabilities> {
  /** `--data-dir` (k3s default `/var/lib/rancher/k3s`); the stack uses `<stateDir>/runtime/k3s`. */
  dataDir: string;
  /** `--write-kubeconfig` (k3s default `/etc/rancher/k3s/k3s.yaml`). */
  kubeconfig: string;
  /** `--write-kubeconfig-mode`, octal string; default `0600` (admin credentials). */
  kubeconfigMode?: string;
  /** `--https-listen-port` (k3s default 6443). */
  httpsPort?: number;
  /** `--disable-agent`: control plane only (no kubelet, no containerd); agent-only flags are then left out. */
  disableAgent?: boolean;
  /** `--node-name`. */
  nodeName?: string;
  /** `--bind-address`. */
  bindAddress?: string;
  /**
   * The stack installs its own CNI (fake-cni) where k3s's containerd reads it, so flannel and the
   * network policy controller are off. `flannel` keeps k3s's defaults. Default `external`.
   */
  cni?: "external" | "flannel";
  /** More `--kubelet-arg` values, `KEY=VALUE` without dashes (k3s prepends `--`). Appended after the profile's. */
  extraKubeletArgs?: readonly string[];
  /** More k3s flags, e.g. `["--debug"]`; validated against k3s's flag table. */
  extraArgs?: readonly string[];
}

/** One k3s argument and why it is there. */
export interface K3sArg {
  arg: string;
  reason: string;
}

/** Default image GC thresholds for an unsizable image filesystem (kind's `imageGCHighThresholdPercent: 100`). */
const KUBELET_ARGS_REASONS = {
  "fail-swap-on=false":
    "the kubelet refuses to start when swap is on and it cannot manage it; a sandbox hides or fixes swap state (kind: failSwapOn: false)",
  "cgroups-per-qos=false":
    "without a real cgroup hierarchy the kubelet cannot create the kubepods/burstable/besteffort QoS cgroups (ContainerManager fails)",
  "enforce-node-allocatable=":
    "node-allocatable enforcement writes limits into the kubepods cgroup, which does not exist with cgroups-per-qos=false; must be empty then",
  "local-storage-capacity-isolation=false":
    "cAdvisor cannot size the root filesystem (9p/FUSE are not in its allow-list): 'failed to get rootfs info' / 'could not find device with major: 0' stop the ContainerManager (kind rootless, usernetes)",
  "image-gc-high-threshold=100":
    "image GC on a filesystem cAdvisor reports with capacity 0 fails ('invalid capacity 0 on image filesystem'); 100 turns it off (kind)",
  "image-gc-low-threshold=99":
    "must stay below image-gc-high-threshold, which is 100 here (the kubelet validates low < high)",
  "protect-kernel-defaults=false":
    "with /proc/sys read-only the kubelet's setupKernelTunables cannot fix vm/overcommit_memory, kernel/panic, ...; with protection on a mismatch is fatal ('invalid kernel flag')",
  "feature-gates=KubeletInUserNamespace=true":
    "in a user namespace, sysctl write errors and missing devices are then warnings, not fatal (kind rootless, usernetes, sysbox)",
} as const;

/** The reason text for each `--kubelet-arg` the builder may emit (for docs and tests). */
export const KUBELET_ARG_REASONS: Readonly<Record<keyof typeof KUBELET_ARGS_REASONS, string>> = KUBELET_ARGS_REASONS;

const KUBELET_ARG_RE = /^[a-z0-9][a-z0-9-]*=.*$/;

function resolveCaps(profile: SandboxProfile, opts: Partial<SandboxCapabilities>): SandboxCapabilities {
  const base = PROFILE_CAPABILITIES[profile];
  if (!base) throw new TypeError(`unknown sandbox profile ${JSON.stringify(profile)}: expected gvisor, container, vm or host`);
  const out = { ...base };
  for (const key of Object.keys(base) as (keyof SandboxCapabilities)[]) {
    const value = opts[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function kubeletArgs(caps: SandboxCapabilities, extra: readonly string[] | undefined): K3sArg[] {
  const out: K3sArg[] = [];
  const add = (kv: keyof typeof KUBELET_ARGS_REASONS): void => {
    out.push({ arg: `--kubelet-arg=${kv}`, reason: KUBELET_ARGS_REASONS[kv] });
  };
  if (!caps.swapControllable) add("fail-swap-on=false");
  if (!caps.cgroupsAvailable) {
    add("cgroups-per-qos=false");
    add("enforce-node-allocatable=");
  }
  if (!caps.rootfsSizable) {
    add("local-storage-capacity-isolation=false");
    add("image-gc-high-threshold=100");
    add("image-gc-low-threshold=99");
  }
  if (!caps.procSysWritable) add("protect-kernel-defaults=false");
  if (caps.inUserNamespace) add("feature-gates=KubeletInUserNamespace=true");
  for (const kv of extra ?? []) {
    if (!KUBELET_ARG_RE.test(kv)) {
      throw new TypeError(`extraKubeletArgs: ${JSON.stringify(kv)} is not KEY=VALUE without leading dashes (k3s passes it as --KEY=VALUE to the kubelet)`);
    }
    out.push({ arg: `--kubelet-arg=${kv}`, reason: "requested by the caller (extraKubeletArgs)" });
  }
  return out;
}

/**
 * The `k3s server` argv for a profile, each argument with its reason.
 * @returns `[{arg: "server", ...}, {arg: "--data-dir=...", reason}, ...]`.
 * @throws TypeError on an unknown profile, a bad `extraKubeletArgs` item, a relative path, a
 *   port outside 1..65535, a non-octal mode, or extra args k3s would reject (K3sUsageError's text).
 */
export function planK3sServerArgs(profile: SandboxProfile, opts: K3sServerOptions): K3sArg[] {
  const caps = resolveCaps(profile, opts);
  for (const [name, p] of [["dataDir", opts.dataDir], ["kubeconfig", opts.kubeconfig]] as const) {
    if (typeof p !== "string" || !p.startsWith("/")) throw new TypeError(`buildK3sServerArgs: ${name} must be an absolute path, got ${JSON.stringify(p)}`);
  }
  const mode = opts.kubeconfigMode ?? "0600";
  if (!/^0?[0-7]{3}$/.test(mode)) throw new TypeError(`buildK3sServerArgs: kubeconfigMode must be octal like 0600, got ${JSON.stringify(mode)}`);
  const out: K3sArg[] = [
    { arg: "server", reason: "run the control plane (and, unless --disable-agent, the kubelet and embedded containerd)" },
    { arg: `--data-dir=${opts.dataDir}`, reason: "keep k3s state under the stack's state dir (runtime/), not /var/lib/rancher/k3s" },
    { arg: `--write-kubeconfig=${opts.kubeconfig}`, reason: "the launcher's readiness probe and the user read the admin kubeconfig here" },
    { arg: `--write-kubeconfig-mode=${mode}`, reason: "the kubeconfig holds the admin client key: owner-only by default" },
  ];
  if (opts.httpsPort !== undefined) {
    if (!Number.isInteger(opts.httpsPort) || opts.httpsPort < 1 || opts.httpsPort > 65535) {
      throw new TypeError(`buildK3sServerArgs: httpsPort must be an integer in 1..65535, got ${opts.httpsPort}`);
    }
    out.push({ arg: `--https-listen-port=${opts.httpsPort}`, reason: "API server port (default 6443), set when 6443 is taken" });
  }
  if (opts.bindAddress) out.push({ arg: `--bind-address=${opts.bindAddress}`, reason: "listen address requested by the caller" });
  if (opts.nodeName) out.push({ arg: `--node-name=${opts.nodeName}`, reason: "stable node name (sandbox hostnames are often random)" });
  if (opts.disableAgent) {
    out.push({
      arg: "--disable-agent",
      reason: "control plane only (hidden k3s flag): no kubelet or containerd, so no cgroup, /proc/sys or CNI needs; agent-only flags are left out",
    });
  }
  out.push({
    arg: "--disable=traefik,servicelb,metrics-server",
    reason: "packaged add-ons a sandbox cannot serve: servicelb needs iptables/hostPorts, traefik and metrics-server pull images and add start-up load",
  });
  if ((opts.cni ?? "external") === "external") {
    out.push({
      arg: "--flannel-backend=none",
      reason: "flannel fails in sandboxes ('failed to register flannel network: operation not supported'); the stack's fake-cni conflist is used instead",
    });
    out.push({
      arg: "--disable-network-policy",
      reason: "the network policy controller programs iptables/ipset, which sandboxes do not offer",
    });
  }
  if (!caps.conntrackWritable) {
    out.push({
      arg: "--disable-kube-proxy",
      reason: "kube-proxy writes conntrack sysctls ('open /proc/sys/net/netfilter/nf_conntrack_max: permission denied') and needs iptables",
    });
  }
  if (!opts.disableAgent) {
    if (!caps.overlayAvailable) {
      out.push({
        arg: "--snapshotter=native",
        reason: "the overlayfs snapshotter cannot mount here ('\"overlayfs\" snapshotter cannot be enabled ... try using \"fuse-overlayfs\" or \"native\"'); native copies layers on any filesystem",
      });
    }
    out.push(...kubeletArgs(caps, opts.extraKubeletArgs));
  } else if (opts.extraKubeletArgs?.length) {
    throw new TypeError("buildK3sServerArgs: extraKubeletArgs given with disableAgent (there is no kubelet to pass them to)");
  }
  for (const a of opts.extraArgs ?? []) out.push({ arg: a, reason: "requested by the caller (extraArgs)" });
  validate(out.map((a) => a.arg));
  return out;
}

function validate(argv: string[]): void {
  try {
    parseK3sArgs(argv);
  } catch (e) {
    throw new TypeError(`k3s would reject this command line: ${(e as Error).message}`);
  }
}

/**
 * The `k3s server` argv (starting with `server`) for `profile`: exactly the sandbox flags of
 * shared/facts/k3s-kubelet.md that the profile and capability overrides call for.
 * Hand it to {@link startK3s} as `args` (or to {@link startK3sInDocker}).
 * See {@link planK3sServerArgs} for each flag's reason and the errors thrown.
 */
export function buildK3sServerArgs(profile: SandboxProfile, opts: K3sServerOptions): string[] {
  return planK3sServerArgs(profile, opts).map((a) => a.arg);
}

/** Options of {@link buildK3sAgentArgs}. */
export interface K3sAgentOptions extends Partial<SandboxCapabilities> {
  /** `--server https://HOST:6443` (or K3S_URL). */
  serverUrl: string;
  /** `--token` (or K3S_TOKEN): the server's `<data-dir>/server/token`. Exactly one of token/tokenFile. */
  token?: string;
  /** `--token-file`. */
  tokenFile?: string;
  dataDir: string;
  nodeName?: string;
  extraKubeletArgs?: readonly string[];
  extraArgs?: readonly string[];
}

/**
 * The `k3s agent` argv (starting with `agent`) joining a server: the agent-side sandbox flags
 * (`--snapshotter=native`, the kubelet args) with the same reasons as the server's.
 * @throws TypeError on a non-https server URL, missing/duplicate token, or flags k3s would reject.
 */
export function planK3sAgentArgs(profile: SandboxProfile, opts: K3sAgentOptions): K3sArg[] {
  const caps = resolveCaps(profile, opts);
  if (!/^https:\/\/[^/]+/.test(opts.serverUrl ?? "")) throw new TypeError(`buildK3sAgentArgs: serverUrl must be https://HOST:PORT, got ${JSON.stringify(opts.serverUrl)}`);
  if ((opts.token === undefined) === (opts.tokenFile === undefined)) throw new TypeError("buildK3sAgentArgs: give exactly one of token or tokenFile");
  if (!opts.dataDir?.startsWith("/")) throw new TypeError(`buildK3sAgentArgs: dataDir must be an absolute path, got ${JSON.stringify(opts.dataDir)}`);
  const out: K3sArg[] = [
    { arg: "agent", reason: "run a worker node (kubelet + embedded containerd) joining a server" },
    { arg: `--server=${opts.serverUrl}`, reason: "the server's supervisor/API URL" },
    opts.token !== undefined
      ? { arg: `--token=${opts.token}`, reason: "join secret from the server's <data-dir>/server/token" }
      : { arg: `--token-file=${opts.tokenFile}`, reason: "join secret read from a file" },
    { arg: `--data-dir=${opts.dataDir}`, reason: "keep agent state under the stack's state dir" },
  ];
  if (opts.nodeName) out.push({ arg: `--node-name=${opts.nodeName}`, reason: "stable node name (sandbox hostnames are often random)" });
  if (!caps.overlayAvailable) {
    out.push({ arg: "--snapshotter=native", reason: "the overlayfs snapshotter cannot mount here; native copies layers on any filesystem" });
  }
  out.push(...kubeletArgs(caps, opts.extraKubeletArgs));
  for (const a of opts.extraArgs ?? []) out.push({ arg: a, reason: "requested by the caller (extraArgs)" });
  validate(out.map((a) => a.arg));
  return out;
}

/** The `k3s agent` argv (starting with `agent`). See {@link planK3sAgentArgs}. */
export function buildK3sAgentArgs(profile: SandboxProfile, opts: K3sAgentOptions): string[] {
  return planK3sAgentArgs(profile, opts).map((a) => a.arg);
}

/**
 * True when this process runs in a user namespace that does not map the full uid range
 * (`/proc/self/uid_map` other than `0 0 4294967295`): then the kubelet's
 * `KubeletInUserNamespace` gate is relevant. False when the file cannot be read.
 */
export function detectUserNamespace(uidMapFile = "/proc/self/uid_map"): boolean {
  try {
    const lines = readFileSync(uidMapFile, "utf8").trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    return !(lines.length === 1 && lines[0] === "0 0 4294967295");
  } catch {
    return false;
  }
}
