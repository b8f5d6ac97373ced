/**
 * The sampler's worker thread: reads /proc off the daemon's main thread (which serves FUSE), so
 * reads of the mount are never queued behind a scan. On each request `{ members }` it lists /proc,
 * reads every process's stat, the members' status and io, and the system-wide files, and posts back
 * a {@link SamplerResult}.
 */
import { parentPort } from "node:worker_threads";
import { listPids, readStat, sampleProcess, sampleSystem, statOnlySample } from "./proc.js";
import type { ProcSample, SystemSample } from "./stats.js";

/** A request: the member pids whose full accounting is wanted. */
export interface SamplerRequest {
  members: number[];
}

/** One scan: [pid, ppid, starttime, zombie?1:0] per live process, samples, system figures. */
export interface SamplerResult {
  procs: Array<[number, number, number, number]>;
  samples: ProcSample[];
  system: SystemSample;
  tookMs: number;
}

/** Runs one scan (also used in-thread when worker threads are unavailable). */
export function scan(req: SamplerRequest): SamplerResult {
  const t0 = Date.now();
  const members = new Set(req.members);
  const system = sampleSystem();
  // Without /proc/diskstats (gVisor) the root's io.stat is the sum of every process's /proc/<pid>/io,
  // and since gVisor reports read_bytes/write_bytes as 0 there, rchar/wchar are used instead.
  const ioAll = system.disks.length === 0;
  const procs: SamplerResult["procs"] = [];
  const samples: ProcSample[] = [];
  for (const pid of listPids()) {
    const s = readStat(pid);
    if (!s) continue;
    const zombie = s.state === "Z" || s.state === "X";
    procs.push([pid, s.ppid, s.starttime, zombie ? 1 : 0]);
    if (zombie) continue;
    const full = members.has(pid) ? sampleProcess(pid, s, ioAll) : statOnlySample(s, ioAll);
    if (full) samples.push(full);
  }
  return { procs, samples, system, tookMs: Date.now() - t0 };
}

if (parentPort) {
  const port = parentPort;
  port.on("message", (req: SamplerRequest) => {
    try {
      port.postMessage(scan(req));
    } catch (e) {
      port.postMessage({ error: (e as Error).message });
    }
  });
}
