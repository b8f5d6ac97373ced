/**
 * The fake-cni plugin executable (bundled to dist/bin/fake-cni and dist/bin/fake-cni.cjs).
 * - No arguments (how runtimes call CNI plugins): one CNI command, env + stdin → stdout + exit
 *   status, through {@link handleCni}.
 * - `serve --socket <path> [--log <file>]`: the resident server (server.ts) answering the native
 *   client (native/fake-cni-client.c) with the same handler.
 * - Inside a worker thread of the server: a handler worker.
 * The name it was run as decides IPAM-only (`host-local`) mode; the native client passes it in
 * `FAKE_CNI_PROGRAM` when it falls back to this file.
 */
import { readFileSync, writeSync } from "node:fs";
import { isMainThread } from "node:worker_threads";
import { CniErrorCode, PluginError } from "./errors.js";
import { handleCni } from "./handler.js";
import { closeLinkHelper } from "./link.js";
import { runServerFromArgv, runWorker } from "./server.js";

function readStdin(): string {
  try {
    return readFileSync(0, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EAGAIN" || code === "EOF") return "";
    throw new PluginError(CniErrorCode.IoFailure, `cannot read stdin: ${code ?? String(e)}`);
  }
}

function writeAll(text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") break;
    }
  }
}

if (!isMainThread) {
  runWorker();
} else if (process.argv[2] === "serve") {
  runServerFromArgv(process.argv.slice(3));
} else {
  const program = process.env.FAKE_CNI_PROGRAM || (process.argv[1] ?? "");
  void handleCni(process.env, readStdin, program).then(async (r) => {
    if (r.stdout) writeAll(r.stdout);
    process.exitCode = r.exitCode;
    await closeLinkHelper();
  });
}
