/**
 * The resident fake-cni server: `node fake-cni.cjs serve --socket <path> [--workers n] [--exit-with-stdin]`.
 * It answers the native client (native/fake-cni-client.c) on a unix stream socket with the very
 * handler the executable runs ({@link handleCni}), so a CNI call costs a small C exec and one
 * round trip instead of a Node start.
 *
 * Wire protocol (one request per connection, version 1):
 *   request  = "FCNI1\n" { "KEY=VALUE" NUL } NUL stdin-bytes…   (client then shuts down its write side)
 *   response = exit-status-decimal "\n" stdout-bytes…           (server then closes)
 * The env entries are the caller's `CNI_*` variables plus `FAKE_CNI_PROGRAM=<name run as>`
 * (`host-local` → IPAM-only). `FAKE_CNI_CONTROL=ping|stop` makes a control request, answered
 * `0\n{"pid":n,"served":requests so far}`; `stop` then shuts the server down.
 *
 * Concurrency: requests run in a pool of worker threads (each a copy of this bundle, with its own
 * fake-cni-link helper for veth mode), so a veth DEL waiting on the kernel does not hold up the
 * others. IPAM changes stay serialised: the workers share an in-process mutex per state dir
 * ({@link setInProcessMutex}, an Int32 slot per
 * dir hash in a SharedArrayBuffer holding the owner's threadId), taken before the cross-process
 * lock file, which still orders them against the Node fallback and other servers. A worker that
 * dies releases its slots and is replaced; its request's connection is closed unanswered, and the
 * client then falls back to Node (ADD and DEL are idempotent, so the retry is safe).
 *
 * Start-up prints one JSON line on stdout — `{"ready":true,"pid":n,"socketPath":p}` or
 * `{"error":msg}` — for startCniServer(). SIGTERM/SIGINT (or a `stop` request, or the end of stdin
 * with `--exit-with-stdin`) stop accepting, let running requests finish (≤ 10 s), remove the
 * socket if it is still ours, end each worker's veth helper (waiting for it), and exit 0.
 */
import type * as Net from "node:net";
import type * as WorkerThreads from "node:worker_threads";
import { chmodSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { handleCni, type CniEnv } from "./handler.js";
import { setInProcessMutex } from "./ipam.js";
import { closeLinkHelper, fnv1a } from "./link.js";

/** Protocol magic of request version 1. */
export const MAGIC = "FCNI1\n";
/** Largest request accepted (env + network config). */
export const MAX_REQUEST = 16 << 20;
const SLOTS = 1024;

function builtin<T>(name: string): T {
  // Lazy, so the one-shot executable does not load net/worker_threads it never uses.
  return ((process.getBuiltinModule?.(name) as T | undefined) ?? (require(name) as T));
}

interface Job {
  id: number;
  env: CniEnv;
  stdin: string;
  program: string;
}
interface Done {
  id: number;
  stdout: string;
  exitCode: number;
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} fake-cni server[${process.pid}]: ${msg}\n`);
}

/** Decodes a request; undefined when malformed. */
export function parseRequest(buf: Buffer): { env: Record<string, string>; stdin: string } | undefined {
  if (buf.length < MAGIC.length || buf.toString("latin1", 0, MAGIC.length) !== MAGIC) return undefined;
  const env: Record<string, string> = {};
  let off = MAGIC.length;
  for (;;) {
    const nul = buf.indexOf(0, off);
    if (nul < 0) return undefined;
    if (nul === off) {
      off++;
      break;
    }
    const entry = buf.toString("utf8", off, nul);
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    off = nul + 1;
  }
  return { env, stdin: buf.toString("utf8", off) };
}

/** Worker thread body: install the shared mutex, answer jobs with {@link handleCni}. */
export function runWorker(): void {
  const { parentPort, workerData, threadId } = builtin<typeof WorkerThreads>("node:worker_threads");
  const slots = new Int32Array(workerData.slots as SharedArrayBuffer);
  const slotOf = (key: string): number => fnv1a(key) % SLOTS;
  setInProcessMutex({
    tag: `.t${threadId}`,
    acquire(key, timeoutMs) {
      const i = slotOf(key);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const cur = Atomics.compareExchange(slots, i, 0, threadId);
        if (cur === 0) return true;
        const left = deadline - Date.now();
        if (left <= 0) return false;
        Atomics.wait(slots, i, cur, Math.min(left, 1000));
      }
    },
    release(key) {
      const i = slotOf(key);
      Atomics.compareExchange(slots, i, threadId, 0);
      Atomics.notify(slots, i, 1);
    },
  });
  parentPort!.on("message", async (job: Job | "close") => {
    if (job === "close") {
      // server shutdown: end this worker's veth helper and reap it before the thread is terminated
      await closeLinkHelper();
      parentPort!.postMessage("closed");
      return;
    }
    const r = await handleCni(job.env, job.stdin, job.program);
    parentPort!.postMessage({ id: job.id, stdout: r.stdout, exitCode: r.exitCode } satisfies Done);
  });
}

/** `serve` argv: `--socket <path>` (required), `--workers <n>`, `--exit-with-stdin`. */
export function runServerFromArgv(argv: string[]): void {
  const opt = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const socketPath = opt("--socket");
  const say = (o: object): void => {
    try {
      process.stdout.write(`${JSON.stringify(o)}\n`);
    } catch {
      /* the starter went away */
    }
  };
  if (!socketPath || !socketPath.startsWith("/")) {
    say({ error: "serve: --socket <absolute path> is required" });
    process.exitCode = 2;
    return;
  }
  const workers = Math.max(1, Math.min(32, Number(opt("--workers") ?? 4) || 4));
  serve(socketPath, workers, argv.includes("--exit-with-stdin"), say).catch((e: unknown) => {
    say({ error: (e as Error).message ?? String(e) });
    log(`start failed: ${(e as Error).message}`);
    process.exit(1);
  });
}

async function serve(socketPath: string, nWorkers: number, exitWithStdin: boolean, say: (o: object) => void): Promise<void> {
  const net = builtin<typeof Net>("node:net");
  const { Worker } = builtin<typeof WorkerThreads>("node:worker_threads");
  if (Buffer.byteLength(socketPath) > 107) throw new Error(`socket path longer than 107 bytes (sun_path): ${socketPath}`);
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  await clearStaleSocket(net, socketPath);

  const slots = new SharedArrayBuffer(SLOTS * 4);
  const slotView = new Int32Array(slots);
  const bundle = process.argv[1]!;
  let nextId = 1;
  const pending = new Map<number, (d: Done | undefined) => void>();
  const queue: Job[] = [];
  const idle: WorkerThreads.Worker[] = [];
  const busy = new Map<WorkerThreads.Worker, number>();
  let stopping = false;
  let ino = -1;

  const pump = (): void => {
    while (queue.length && idle.length) {
      const w = idle.pop()!;
      const job = queue.shift()!;
      busy.set(w, job.id);
      w.postMessage(job);
    }
  };
  const spawnWorker = (): void => {
    const w = new Worker(bundle, { workerData: { slots }, stdout: false, stderr: false });
    w.on("message", (d: Done | "closed") => {
      if (d === "closed") return; // answered by shutdown's own listener
      busy.delete(w);
      pending.get(d.id)?.(d);
      pending.delete(d.id);
      idle.push(w);
      pump();
    });
    w.on("error", (e) => log(`worker ${w.threadId} failed: ${e.message}`));
    w.on("exit", () => {
      const tid = w.threadId;
      for (let i = 0; i < SLOTS; i++)
        if (Atomics.compareExchange(slotView, i, tid, 0) === tid) Atomics.notify(slotView, i);
      const id = busy.get(w);
      busy.delete(w);
      const k = idle.indexOf(w);
      if (k >= 0) idle.splice(k, 1);
      if (id !== undefined) {
        pending.get(id)?.(undefined);
        pending.delete(id);
      }
      if (!stopping) {
        log(`worker ${tid} exited; replacing it`);
        spawnWorker();
      }
    });
    w.once("online", () => {
      idle.push(w);
      pump();
    });
  };
  for (let i = 0; i < nWorkers; i++) spawnWorker();

  const run = (env: CniEnv, stdin: string, program: string): Promise<Done | undefined> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      queue.push({ id, env, stdin, program });
      pump();
    });

  const open = new Set<Net.Socket>();
  let inFlight = 0;
  let served = 0;
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    open.add(sock);
    sock.on("close", () => open.delete(sock));
    sock.on("error", () => undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    sock.on("data", (b: Buffer) => {
      size += b.length;
      if (size > MAX_REQUEST) {
        sock.destroy();
        return;
      }
      chunks.push(b);
    });
    sock.on("end", () => {
      const req = parseRequest(Buffer.concat(chunks));
      if (!req) {
        sock.destroy(); // not our protocol: the client falls back
        return;
      }
      const control = req.env.FAKE_CNI_CONTROL;
      if (control) {
        sock.end(`0\n${JSON.stringify({ pid: process.pid, served })}\n`);
        if (control === "stop") void shutdown("stop request");
        return;
      }
      const program = req.env.FAKE_CNI_PROGRAM ?? "fake-cni";
      const env: CniEnv = {};
      for (const [k, v] of Object.entries(req.env)) if (k.startsWith("CNI_")) env[k] = v;
      inFlight++;
      served++;
      void run(env, req.stdin, program).then((d) => {
        inFlight--;
        if (d) sock.end(`${d.exitCode}\n${d.stdout}`);
        else sock.destroy();
        if (stopping && inFlight === 0) finish();
      });
    });
  });

  let finish: () => void = () => undefined;
  const shutdown = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${why})`);
    server.close();
    await new Promise<void>((resolve) => {
      finish = resolve;
      if (inFlight === 0) resolve();
      setTimeout(resolve, 10_000).unref();
    });
    try {
      if (statSync(socketPath).ino === ino) unlinkSync(socketPath);
    } catch {
      /* gone */
    }
    for (const s of open) s.destroy();
    await Promise.all(
      [...idle, ...busy.keys()].map(async (w) => {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 3_000);
          w.on("message", (m) => {
            if (m === "closed") {
              clearTimeout(t);
              resolve();
            }
          });
          w.postMessage("close");
        });
        await w.terminate();
      }),
    );
    log("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGHUP", () => undefined);
  process.stdout.on("error", () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  ino = statSync(socketPath).ino;
  if (exitWithStdin) {
    process.stdin.on("end", () => void shutdown("starter went away"));
    process.stdin.on("error", () => void shutdown("starter went away"));
    process.stdin.resume();
  }
  log(`listening on ${socketPath} with ${nWorkers} workers`);
  say({ ready: true, pid: process.pid, socketPath });
}

/** Removes a socket file nobody answers on; throws when a server answers or the path is not a socket. */
async function clearStaleSocket(net: typeof Net, socketPath: string): Promise<void> {
  let st;
  try {
    st = statSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
  if (alive) throw new Error(`a server already listens on ${socketPath}`);
  unlinkSync(socketPath);
}
