/**
 * Where a containerd (and so k3s's embedded containerd) reads CNI plugins and configs, from its
 * config.toml. Schemas handled (containerd docs/cri/config.md, docs/PLUGINS.md):
 * - version 2 (containerd 1.x): `[plugins."io.containerd.grpc.v1.cri".cni] bin_dir, conf_dir`
 *   — also what k3s writes to `<data-dir>/agent/etc/containerd/config.toml`;
 * - version 3 (containerd 2.x): `[plugins."io.containerd.cri.v1.runtime".cni] bin_dirs|bin_dir, conf_dir`;
 * - version 1 (no `version` key, containerd 1.0-1.2): `[plugins.cri.cni] bin_dir, conf_dir`.
 * Unset keys take containerd's defaults `/opt/cni/bin` and `/etc/cni/net.d`.
 */
import { parse } from "smol-toml";

/** containerd's compiled-in defaults (pkg/cri/config/config_unix.go). */
export const CONTAINERD_DEFAULT_CNI = { binDir: "/opt/cni/bin", confDir: "/etc/cni/net.d" } as const;

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * @param tomlText the text of a containerd config.toml (empty text means all defaults).
 * @returns the plugin dirs (in search order) and the config dir.
 * @throws Error `invalid containerd config: ...` with line/column when the TOML does not parse, or
 *   when `bin_dir`/`bin_dirs`/`conf_dir` have the wrong type.
 */
export function cniDirsFromContainerdConfig(tomlText: string): { binDirs: string[]; confDir: string } {
  let doc: Table;
  try {
    doc = parse(tomlText) as Table;
  } catch (e) {
    throw new Error(`invalid containerd config: ${(e as Error).message}`, { cause: e });
  }
  const plugins = isTable(doc.plugins) ? doc.plugins : {};
  const candidates = [
    plugins["io.containerd.cri.v1.runtime"],
    plugins["io.containerd.grpc.v1.cri"],
    plugins.cri,
  ];
  let cni: Table | undefined;
  for (const c of candidates) if (isTable(c) && isTable(c.cni)) {
    cni = c.cni;
    break;
  }
  const binDirs: string[] = [];
  if (cni?.bin_dirs !== undefined) {
    if (!Array.isArray(cni.bin_dirs) || cni.bin_dirs.some((d) => typeof d !== "string")) throw new Error("invalid containerd config: cni.bin_dirs must be an array of strings");
    binDirs.push(...(cni.bin_dirs as string[]));
  }
  if (cni?.bin_dir !== undefined) {
    if (typeof cni.bin_dir !== "string") throw new Error("invalid containerd config: cni.bin_dir must be a string");
    if (!binDirs.includes(cni.bin_dir)) binDirs.push(cni.bin_dir);
  }
  if (binDirs.length === 0) binDirs.push(CONTAINERD_DEFAULT_CNI.binDir);
  if (cni?.conf_dir !== undefined && typeof cni.conf_dir !== "string") throw new Error("invalid containerd config: cni.conf_dir must be a string");
  const confDir = (cni?.conf_dir as string | undefined) || CONTAINERD_DEFAULT_CNI.confDir;
  return { binDirs, confDir };
}
