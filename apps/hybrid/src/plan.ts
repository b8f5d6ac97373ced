/**
 * The plan: doctor's findings + the config → what each layer will do, with every path resolved.
 * Pure: no I/O, so it can be tested and printed (`hybrid up --dry-run`).
 */
import { join } from "node:path";
import type { HybridConfig } from "./config.js";
import type { Findings, LayerName } from "./doctor/index.js";

export interface CgroupfsPlan {
  mountpoint: string;
  stateFile: string;
  procsDir: string;
  logFile: string;
  readyTimeoutMs: number;
}

export interface FakeCniPlan {
  binDir: string;
  confDir: string;
  network: { name: string; subnet: string; mode: "veth" | "noop"; dataDir: string };
}

export interface ShimPlan {
  rulesFile: string;
  shadowDir: string;
  kmsgPath: string;
  unameRelease?: string;
  traceLog?: string;
  /** Where /sys/fs/cgroup is redirected (the cgroupfs mount), if the cgroupfs layer is up. */
  cgroupfsMount?: string;
  procsDir?: string;
}

export interface RuntimePlan {
  kind: "k3s" | "containerd";
  dir: string;
  logFile: string;
  readyTimeoutMs: number;
  /** k3s only. */
  k3sBin?: string;
  k3sArgs?: string[];
  httpsPort?: number;
  /** containerd only: CNI dirs from the fake-cni plan. */
  cniBinDir?: string;
  cniConfDir?: string;
}

export interface Plan {
  stateDir: string;
  profile: Findings["sandbox"];
  findings: Findings;
  order: LayerName[];
  cgroupfs?: CgroupfsPlan;
  fakeCni?: FakeCniPlan;
  shim?: ShimPlan;
  runtime: RuntimePlan;
}

/**
 * Builds the plan.
 * @param k3sBin the k3s binary found (flag, `K3S_BIN`, config, PATH), or undefined for containerd.
 * @throws Error when the config asks for k3s and no binary was found.
 */
export function buildPlan(findings: Findings, config: HybridConfig, stateDir: string, k3sBin: string | undefined): Plan {
  const logs = join(stateDir, "logs");
  const order: LayerName[] = [];
  const plan: Partial<Plan> = { stateDir, profile: findings.sandbox, findings };
  if (findings.layers.cgroupfs.needed) {
    order.push("cgroupfs");
    plan.cgroupfs = {
      mountpoint: config.cgroupfs.mountpoint ?? join(stateDir, "cgroup"),
      stateFile: join(stateDir, "cgroupfs", "state.json"),
      procsDir: join(stateDir, "cgroupfs", "procs"),
      logFile: join(logs, "cgroupfs.log"),
      readyTimeoutMs: config.cgroupfs.readyTimeout * 1000,
    };
  }
  if (findings.layers["fake-cni"].needed) {
    order.push("fake-cni");
    const mode = config.cni.mode === "auto" ? findings.cniMode : config.cni.mode;
    plan.fakeCni = {
      binDir: join(stateDir, "cni", "bin"),
      confDir: join(stateDir, "cni", "net.d"),
      network: { name: config.cni.network, subnet: config.cni.subnet, mode, dataDir: join(stateDir, "cni", "ipam") },
    };
  }
  if (findings.layers["ptrace-shim"].needed) {
    order.push("ptrace-shim");
    plan.shim = {
      rulesFile: join(stateDir, "shim", "rules.json"),
      shadowDir: join(stateDir, "shim", "proc-sys"),
      kmsgPath: join(stateDir, "shim", "kmsg"),
      unameRelease: config.shim.unameRelease,
      traceLog: config.shim.traceLog ? join(logs, "shim-trace.log") : undefined,
      cgroupfsMount: plan.cgroupfs?.mountpoint,
      procsDir: plan.cgroupfs?.procsDir,
    };
  }
  order.push("runtime");
  const kind = config.runtime.kind === "auto" ? (k3sBin ? "k3s" : "containerd") : config.runtime.kind;
  if (kind === "k3s" && !k3sBin) {
    throw new Error("runtime.kind is k3s but no k3s binary was found: pass --k3s-bin, set K3S_BIN or put k3s on PATH");
  }
  const dir = join(stateDir, "runtime");
  plan.runtime = {
    kind,
    dir,
    logFile: join(logs, `${kind}.log`),
    readyTimeoutMs: config.runtime.readyTimeout * 1000,
    ...(kind === "k3s"
      ? { k3sBin, k3sArgs: config.runtime.k3sArgs, httpsPort: config.runtime.httpsPort }
      : { cniBinDir: plan.fakeCni?.binDir, cniConfDir: plan.fakeCni?.confDir }),
  };
  plan.order = order;
  return plan as Plan;
}
