/** Finding and downloading the k3s binary (sha256-verified). */
import { createHash } from "node:crypto";
import { accessSync, constants, statSync } from "node:fs";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** Where k3s publishes releases (`<base>/<version>/<asset>`). */
export const K3S_RELEASES_URL = "https://github.com/k3s-io/k3s/releases/download";

/** CPU architectures k3s publishes a Linux binary for (and this launcher supports). */
export type K3sArch = "amd64" | "arm64";

/**
 * Release asset names per architecture (k3s GitHub releases: `k3s` is the amd64 binary,
 * `k3s-arm64` the arm64 one; checksums in `sha256sum-<arch>.txt`, lines `<hex>  <asset>`).
 */
export function k3sAssetNames(arch: K3sArch): { binary: string; checksums: string } {
  if (arch === "amd64") return { binary: "k3s", checksums: "sha256sum-amd64.txt" };
  if (arch === "arm64") return { binary: "k3s-arm64", checksums: "sha256sum-arm64.txt" };
  throw new TypeError(`unsupported k3s architecture ${JSON.stringify(arch)}: expected amd64 or arm64`);
}

/** The host's k3s architecture from `process.arch`. @throws TypeError on other CPUs. */
export function hostK3sArch(): K3sArch {
  if (process.arch === "x64") return "amd64";
  if (process.arch === "arm64") return "arm64";
  throw new TypeError(`no k3s release for process.arch ${process.arch}`);
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the k3s binary: `explicit` (e.g. `--k3s-bin`), then `K3S_BIN`, then `k3s` on `PATH`.
 * @returns the path, or undefined when none is set and PATH has no `k3s`.
 * @throws Error when `explicit` or `K3S_BIN` is set but is not an executable file (a typo must
 *   not silently fall back to containerd).
 */
export function findK3sBinary(opts: { explicit?: string; env?: NodeJS.ProcessEnv } = {}): string | undefined {
  const env = opts.env ?? process.env;
  for (const [what, p] of [["explicit k3s binary", opts.explicit], ["K3S_BIN", env.K3S_BIN]] as const) {
    if (p === undefined || p === "") continue;
    if (!isExecutableFile(p)) throw new Error(`${what} ${JSON.stringify(p)} is not an executable file`);
    return p;
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const c = join(dir, "k3s");
    if (isExecutableFile(c)) return c;
  }
  return undefined;
}

/** Options of {@link downloadK3s}. */
export interface DownloadK3sOptions {
  /** Release tag, e.g. `v1.31.4+k3s1` (URL-encoded in the path: `v1.31.4%2Bk3s1`). */
  version: string;
  /** Default: the host's ({@link hostK3sArch}). */
  arch?: K3sArch;
  /** Directory for the binary; created if missing. The result is `<destDir>/k3s`. */
  destDir: string;
  /** Default {@link K3S_RELEASES_URL}. */
  baseUrl?: string;
  /** Default `globalThis.fetch`. */
  fetchImpl?: typeof fetch;
}

/** Parses a `sha256sum` file (`<hex>  <name>` or `<hex> *<name>`) into name → lowercase hex. */
export function parseSha256Sums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$/.exec(line.trim());
    if (m) out.set(m[2]!, m[1]!.toLowerCase());
  }
  return out;
}

async function fetchOk(fetchImpl: typeof fetch, url: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetchImpl(url, { redirect: "follow" });
  } catch (cause) {
    throw new Error(`downloadK3s: cannot fetch ${url}: ${(cause as Error).message}`, { cause });
  }
  if (!res.ok) throw new Error(`downloadK3s: GET ${url} answered HTTP ${res.status} ${res.statusText}`);
  return res;
}

/**
 * Downloads the k3s binary of `version` for `arch` and its `sha256sum-<arch>.txt`, verifies the
 * binary's SHA-256 against the entry for its asset name, and installs it as `<destDir>/k3s` (0755).
 * When `<destDir>/k3s` already has the published checksum, nothing is downloaded but the checksum file.
 * @returns the binary's path.
 * @throws Error on HTTP errors (the URL and status are named), a checksum file without an entry
 *   for the asset, or a checksum mismatch (expected and actual digests named; the downloaded file
 *   is deleted and an existing good `<destDir>/k3s` is left untouched).
 */
export async function downloadK3s(opts: DownloadK3sOptions): Promise<string> {
  if (!opts.version || /[/\s]/.test(opts.version)) throw new TypeError(`downloadK3s: bad version ${JSON.stringify(opts.version)}`);
  const arch = opts.arch ?? hostK3sArch();
  const { binary, checksums } = k3sAssetNames(arch);
  const base = (opts.baseUrl ?? K3S_RELEASES_URL).replace(/\/+$/, "");
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch;
  const dir = `${base}/${encodeURIComponent(opts.version)}`;
  const sumsUrl = `${dir}/${checksums}`;
  const sums = parseSha256Sums(await (await fetchOk(fetchImpl, sumsUrl)).text());
  const expected = sums.get(binary);
  if (!expected) throw new Error(`downloadK3s: ${sumsUrl} has no entry for ${binary} (entries: ${[...sums.keys()].join(", ") || "none"})`);
  await mkdir(opts.destDir, { recursive: true });
  const dest = join(opts.destDir, "k3s");
  try {
    const existing = createHash("sha256").update(await readFile(dest)).digest("hex");
    if (existing === expected) {
      await chmod(dest, 0o755);
      return dest;
    }
  } catch {
    /* not there yet */
  }
  const binUrl = `${dir}/${binary}`;
  const body = Buffer.from(await (await fetchOk(fetchImpl, binUrl)).arrayBuffer());
  const partial = join(opts.destDir, `.k3s-${arch}-${process.pid}.partial`);
  await writeFile(partial, body, { mode: 0o600 });
  const actual = createHash("sha256").update(body).digest("hex");
  if (actual !== expected) {
    await rm(partial, { force: true });
    throw new Error(`downloadK3s: checksum mismatch for ${binUrl}: expected sha256 ${expected} (from ${checksums}), got ${actual}; the download was deleted`);
  }
  await chmod(partial, 0o755);
  await rename(partial, dest);
  return dest;
}
