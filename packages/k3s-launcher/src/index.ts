/**
 * @hybrid/k3s-launcher: builds k3s's command line for a sandbox profile, finds or downloads
 * (checksum-verified) the binary, starts it natively or in Docker (dockerode), supervises it;
 * or, without k3s, starts the OS's containerd (the runtime k3s embeds) with a k3s-shaped config.
 */
export {
  buildK3sServerArgs,
  buildK3sAgentArgs,
  planK3sServerArgs,
  planK3sAgentArgs,
  detectUserNamespace,
  KUBELET_ARG_REASONS,
  PROFILE_CAPABILITIES,
  type SandboxProfile,
  type SandboxCapabilities,
  type K3sServerOptions,
  type K3sAgentOptions,
  type K3sArg,
} from "./args.js";
export {
  K3S_SERVER_FLAGS,
  K3S_AGENT_FLAGS,
  K3S_DISABLE_ITEMS,
  K3S_FLANNEL_BACKENDS,
  K3S_SNAPSHOTTERS,
  K3sUsageError,
  parseK3sArgs,
  type K3sFlagSpec,
  type K3sFlagArity,
  type ParsedK3sArgs,
} from "./k3s-flags.js";
export {
  findK3sBinary,
  downloadK3s,
  k3sAssetNames,
  hostK3sArch,
  parseSha256Sums,
  K3S_RELEASES_URL,
  type K3sArch,
  type DownloadK3sOptions,
} from "./binary.js";
export {
  generateContainerdConfig,
  readContainerdConfigDirs,
  kernelAtLeast,
  type ContainerdConfigOptions,
  type ContainerdConfigDirs,
} from "./containerd-config.js";
export {
  startContainerd,
  startK3s,
  probeContainerd,
  probeK3s,
  readKubeconfig,
  kubeGet,
  readK3sContainerdConfig,
  type RuntimeHandle,
  type StartContainerdOptions,
  type StartK3sOptions,
  type KubeconfigCredentials,
} from "./runtime.js";
export {
  startK3sInDocker,
  boundingCapabilities,
  LINUX_CAPABILITIES,
  type StartK3sInDockerOptions,
  type DockerRuntimeHandle,
} from "./docker.js";
export { stopPid, isPidAlive, isGroupLeader, processGroupMembers, spawnDaemon, waitUntilReady, type Daemon, type ProbeResult, type SpawnDaemonOptions } from "./process.js";
export { supervise, type Supervisor, type SuperviseOptions } from "./supervisor.js";
export { standinPath } from "./standin.js";
