import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pluginPath } from "../src/index.js";

export const PLUGIN = pluginPath();
export const REF_DIR = "/usr/lib/cni";

export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

/** Runs an executable with exactly `env` (plus PATH) and `stdin`. */
export function runPlugin(env: Record<string, string | undefined>, stdin: string | Buffer, file = PLUGIN): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const clean: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
    const child = spawn(file, [], { env: clean, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => undefined);
    child.on("error", reject);
    child.on("close", (code) => {
      const stdout = Buffer.concat(out).toString();
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr: Buffer.concat(err).toString(), json });
    });
    child.stdin.end(stdin);
  });
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `fake-cni-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A single-plugin config for fake-cni. */
export function netConf(
  dataDir: string,
  over: Record<string, unknown> = {},
  ipam: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    cniVersion: "1.1.0",
    name: "testnet",
    type: "fake-cni",
    mode: "noop",
    ipam: { type: "fake-cni", ranges: [[{ subnet: "10.123.0.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir, ...ipam },
    ...over,
  };
}

/** Limits concurrency of async jobs. */
export async function pool<T, R>(items: T[], n: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= items.length) return;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}
