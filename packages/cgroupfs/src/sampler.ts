/**
 * The sampler: one scan of /proc gives the live pids (with parent and start time), the members'
 * accounting and the system-wide figures. The scan yields to the event loop every few processes, so
 * FUSE requests served by the same thread wait at most one chunk (about a millisecond), never a scan.
 */
import { listPids, readStat, sampleProcess, sampleSystem, statOnlySample } from "./proc.js";
import type { ProcSample, SystemSample } from "./stats.js";

/** A scan request: the member pids whose full accounting is wanted. */
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

/**
 * Runs one scan, yielding to the event loop (setImmediate) after every `chunk` processes.
 * @param req.members pids whose full accounting (status, io) is read; others get stat (and io) only.
 */
export async function scan(req: SamplerRequest, chunk = 16): Promise<SamplerResult> {
  const t0 = Date.now();
  const members = new Set(req.members);
  const system = sampleSystem();
  // Without /proc/diskstats (gVisor) the root's io.stat is the sum of every process's /proc/<pid>/io,
  // and since gVisor reports read_bytes/write_bytes as 0 there, rchar/wchar are used instead.
  const ioAll = system.disks.length === 0;
  const procs: SamplerResult["procs"] = [];
  const samples: ProcSample[] = [];
  let n = 0;
  for (const pid of listPids()) {
    if (++n % chunk === 0) await new Promise((r) => setImmediate(r));
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
