/**
 * @hybrid/fake-cni: a CNI 1.1.0 plugin (veth and noop modes, host-local-style locked IPAM) and
 * the API the hybrid CLI uses to install it, find a runtime's CNI dirs, probe the mode and run
 * plugin chains like libcni.
 */
export { pluginPath, clientPath, linkHelperPath, installFakeCni, uninstallFakeCni, buildConflist } from "./install.js";
export { startCniServer, stopCniServer, pingCniServer, socketPathFor, nodeBundlePath, DEFAULT_DATA_DIR, SOCKET_NAME } from "./server-control.js";
export type { StartCniServerOptions, CniServerHandle, CniServerInfo } from "./server-control.js";
export type { FakeCniNetwork, CniInstallation, InstallFakeCniOptions } from "./install.js";
export { cniDirsFromContainerdConfig, CONTAINERD_DEFAULT_CNI } from "./containerd.js";
export { probeCniMode } from "./probe.js";
export { invokeCni, CniInvokeError, findPlugin, effectiveVersion, pluginConfig } from "./invoke.js";
export type { CniResult, CniErrorObject, CniConfList, CniCommand, InvokeCniOptions } from "./invoke.js";
export { CniErrorCode } from "./plugin/errors.js";
export { SUPPORTED_VERSIONS } from "./plugin/config.js";
