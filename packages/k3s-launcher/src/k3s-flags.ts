/**
 * The command-line flags of `k3s server` and `k3s agent`, with their arities, and a parser with
 * urfave/cli v1 (Go `flag` package) semantics. Used by the args builder (to refuse flags k3s does
 * not have before a real k3s does), by the k3s stand-in (which rejects what k3s would reject) and
 * by the tests.
 *
 * Source: k3s-io/k3s `pkg/cli/cmds/server.go` (`ServerFlags`), `pkg/cli/cmds/agent.go`
 * (`NewAgentCommand` flags and the shared `NodeNameFlag`, `SnapshotterFlag`, `ExtraKubeletArgs`, ...),
 * `pkg/cli/cmds/log.go` / `config.go` (`ConfigFlag`, `DebugFlag`, `VLevel`, `VModule`, `LogFile`,
 * `AlsoLogToStderr`), cross-checked with https://docs.k3s.io/cli/server and
 * https://docs.k3s.io/cli/agent (releases v1.27–v1.31). Hidden flags (`--disable-agent`,
 * `--disable-apiserver`, ...) are marked `hidden`.
 *
 * This file must stay free of imports other than Node built-ins: the stand-in loads it from
 * `dist/` inside a minimal container image.
 */

/** `bool`: takes no value (`--flag` or `--flag=true|false`); `value`: one value; `slice`: repeatable, values accumulate. */
export type K3sFlagArity = "bool" | "value" | "slice";

/** One flag of the k3s CLI. */
export interface K3sFlagSpec {
  arity: K3sFlagArity;
  /** Short aliases without dashes (`o` for `--write-kubeconfig`). */
  aliases?: readonly string[];
  /** Not shown by `k3s server --help` (meant for tests or deprecated). */
  hidden?: boolean;
  /** Value must parse as an integer (urfave/cli `IntFlag`). */
  int?: boolean;
}

const b: K3sFlagSpec = { arity: "bool" };
const v: K3sFlagSpec = { arity: "value" };
const s: K3sFlagSpec = { arity: "slice" };
const i: K3sFlagSpec = { arity: "value", int: true };
const hb: K3sFlagSpec = { arity: "bool", hidden: true };

/** Flags shared by `server` and `agent` (log.go, config.go and the agent flags the server embeds). */
const COMMON: Record<string, K3sFlagSpec> = {
  config: { arity: "value", aliases: ["c"] },
  debug: b,
  v: i,
  vmodule: v,
  log: { arity: "value", aliases: ["l"] },
  alsologtostderr: b,
  token: { arity: "value", aliases: ["t"] },
  "token-file": v,
  server: { arity: "value", aliases: ["s"] },
  "data-dir": { arity: "value", aliases: ["d"] },
  "node-name": v,
  "with-node-id": b,
  "node-label": s,
  "node-taint": s,
  "image-credential-provider-bin-dir": v,
  "image-credential-provider-config": v,
  docker: b,
  "container-runtime-endpoint": v,
  "default-runtime": v,
  "image-service-endpoint": v,
  "disable-default-registry-endpoint": b,
  "pause-image": v,
  snapshotter: v,
  "private-registry": v,
  "airgap-extra-registry": { arity: "slice", hidden: true },
  "node-ip": { arity: "slice", aliases: ["i"] },
  "node-external-ip": s,
  "node-internal-dns": s,
  "node-external-dns": s,
  "resolv-conf": v,
  "flannel-iface": v,
  "flannel-conf": v,
  "flannel-cni-conf": v,
  "vpn-auth": v,
  "vpn-auth-file": v,
  "kubelet-arg": s,
  "kube-proxy-arg": s,
  "protect-kernel-defaults": b,
  selinux: b,
  "lb-server-port": i,
  rootless: b,
  "prefer-bundled-bin": b,
  "disable-selinux": hb,
};

/**
 * `k3s server` flags (name without dashes → spec). Source: k3s `pkg/cli/cmds/server.go` `ServerFlags`.
 */
export const K3S_SERVER_FLAGS: Readonly<Record<string, K3sFlagSpec>> = {
  ...COMMON,
  "bind-address": v,
  "https-listen-port": i,
  "supervisor-port": { arity: "value", int: true, hidden: true },
  "apiserver-port": { arity: "value", int: true, hidden: true },
  "apiserver-bind-address": { arity: "value", hidden: true },
  "advertise-address": v,
  "advertise-port": i,
  "tls-san": s,
  "tls-san-security": b,
  "cluster-cidr": s,
  "service-cidr": s,
  "service-node-port-range": v,
  "cluster-dns": s,
  "cluster-domain": v,
  "flannel-backend": v,
  "flannel-ipv6-masq": b,
  "flannel-external-ip": b,
  "egress-selector-mode": v,
  "servicelb-namespace": v,
  "write-kubeconfig": { arity: "value", aliases: ["o"] },
  "write-kubeconfig-mode": v,
  "write-kubeconfig-group": v,
  "helm-job-image": v,
  "agent-token": v,
  "agent-token-file": v,
  "cluster-init": b,
  "cluster-reset": b,
  "cluster-reset-restore-path": v,
  "kube-apiserver-arg": s,
  "etcd-arg": s,
  "kube-controller-manager-arg": s,
  "kube-scheduler-arg": s,
  "kube-cloud-controller-manager-arg": s,
  "kine-tls": b,
  "datastore-endpoint": v,
  "datastore-cafile": v,
  "datastore-certfile": v,
  "datastore-keyfile": v,
  "etcd-expose-metrics": b,
  "etcd-disable-snapshots": b,
  "etcd-snapshot-name": v,
  "etcd-snapshot-schedule-cron": v,
  "etcd-snapshot-retention": i,
  "etcd-snapshot-dir": v,
  "etcd-snapshot-compress": b,
  "etcd-s3": b,
  "etcd-s3-endpoint": v,
  "etcd-s3-endpoint-ca": v,
  "etcd-s3-skip-ssl-verify": b,
  "etcd-s3-access-key": v,
  "etcd-s3-secret-key": v,
  "etcd-s3-session-token": v,
  "etcd-s3-bucket": v,
  "etcd-s3-bucket-lookup-type": v,
  "etcd-s3-region": v,
  "etcd-s3-folder": v,
  "etcd-s3-proxy": v,
  "etcd-s3-config-secret": v,
  "etcd-s3-insecure": b,
  "etcd-s3-timeout": v,
  "default-local-storage-path": v,
  disable: s,
  "disable-scheduler": b,
  "disable-cloud-controller": b,
  "disable-kube-proxy": b,
  "disable-network-policy": b,
  "disable-helm-controller": b,
  "disable-apiserver": hb,
  "disable-controller-manager": hb,
  "disable-etcd": hb,
  "embedded-registry": b,
  "supervisor-metrics": b,
  "system-default-registry": v,
  "secrets-encryption": b,
  "secrets-encryption-provider": v,
  "enable-pprof": b,
  // Hidden/deprecated (server.go, bottom of ServerFlags)
  "disable-agent": hb,
  "kube-controller-arg": { arity: "slice", hidden: true },
  "kube-cloud-controller-arg": { arity: "slice", hidden: true },
};

/** `k3s agent` flags. Source: k3s `pkg/cli/cmds/agent.go` `NewAgentCommand`. */
export const K3S_AGENT_FLAGS: Readonly<Record<string, K3sFlagSpec>> = {
  ...COMMON,
  "bind-address": v,
  "no-flannel": hb,
  "cluster-secret": { arity: "value", hidden: true },
};

/** Items `--disable` accepts (k3s `DisableItems`: the packaged manifests). */
export const K3S_DISABLE_ITEMS = ["coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"] as const;
/** Values `--flannel-backend` accepts (server.go usage string; `ipsec`/`wireguard` were removed in v1.26+). */
export const K3S_FLANNEL_BACKENDS = ["none", "vxlan", "host-gw", "wireguard-native"] as const;
/** Snapshotters k3s's embedded containerd carries (agent `--snapshotter`; default `overlayfs`). */
export const K3S_SNAPSHOTTERS = ["overlayfs", "fuse-overlayfs", "native", "stargz", "btrfs", "zfs"] as const;

/** Result of {@link parseK3sArgs}: every flag by canonical name, slices as arrays. */
export interface ParsedK3sArgs {
  subcommand: "server" | "agent";
  /** bool flags → boolean, value flags → string, slice flags → string[] (in order). */
  flags: Record<string, boolean | string | string[]>;
  /** Positional arguments after the flags (k3s takes none). */
  positionals: string[];
}

/** Thrown by {@link parseK3sArgs}; `message` follows urfave/cli's `Incorrect Usage: ...` wording. */
export class K3sUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "K3sUsageError";
  }
}

function lookup(table: Readonly<Record<string, K3sFlagSpec>>, name: string): [string, K3sFlagSpec] | undefined {
  const direct = table[name];
  if (direct) return [name, direct];
  for (const [canon, spec] of Object.entries(table)) if (spec.aliases?.includes(name)) return [canon, spec];
  return undefined;
}

/**
 * Parses `[server|agent, ...flags]` as k3s would (urfave/cli v1 over Go's `flag` package):
 * `--name value`, `--name=value`, `-name value`, short aliases; bool flags take no separate
 * value (`--flag=false` is allowed); slice flags repeat; `--` ends the flags. k3s also splits
 * slice values on commas for some flags (`--disable a,b`); callers split where k3s does.
 * @throws K3sUsageError `flag provided but not defined: -NAME` for a flag k3s does not have,
 *   `flag needs an argument: -NAME`, `invalid value "X" for flag -NAME` (int/bool), or an unknown subcommand.
 */
export function parseK3sArgs(argv: readonly string[]): ParsedK3sArgs {
  const [sub, ...rest] = argv;
  if (sub !== "server" && sub !== "agent") {
    throw new K3sUsageError(`Incorrect Usage: expected subcommand "server" or "agent", got ${JSON.stringify(sub ?? "")}`);
  }
  const table = sub === "server" ? K3S_SERVER_FLAGS : K3S_AGENT_FLAGS;
  const flags: ParsedK3sArgs["flags"] = {};
  const positionals: string[] = [];
  for (let k = 0; k < rest.length; k++) {
    const arg = rest[k]!;
    if (arg === "--") {
      positionals.push(...rest.slice(k + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(...rest.slice(k));
      break;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    const found = lookup(table, name);
    if (!found) throw new K3sUsageError(`Incorrect Usage: flag provided but not defined: -${name}`);
    const [canon, spec] = found;
    if (spec.arity === "bool") {
      if (value === undefined) flags[canon] = true;
      else if (/^(1|t|T|true|TRUE|True)$/.test(value)) flags[canon] = true;
      else if (/^(0|f|F|false|FALSE|False)$/.test(value)) flags[canon] = false;
      else throw new K3sUsageError(`Incorrect Usage: invalid boolean value ${JSON.stringify(value)} for -${name}`);
      continue;
    }
    if (value === undefined) {
      if (k + 1 >= rest.length) throw new K3sUsageError(`Incorrect Usage: flag needs an argument: -${name}`);
      value = rest[++k]!;
    }
    if (spec.int && !/^-?\d+$/.test(value)) {
      throw new K3sUsageError(`Incorrect Usage: invalid value ${JSON.stringify(value)} for flag -${name}: parse error`);
    }
    if (spec.arity === "slice") {
      const prev = flags[canon];
      flags[canon] = [...(Array.isArray(prev) ? prev : []), value];
    } else {
      flags[canon] = value;
    }
  }
  if (positionals.length > 0) {
    throw new K3sUsageError(`Incorrect Usage: unexpected arguments ${JSON.stringify(positionals)} (k3s ${sub} takes flags only)`);
  }
  return { subcommand: sub, flags, positionals };
}
