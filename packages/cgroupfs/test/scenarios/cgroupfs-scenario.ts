/**
 * One end-to-end scenario against a real cgroupfs mount, runnable on the host and inside gVisor
 * (each `runsc do` is a fresh sandbox, so everything happens in this one process tree).
 * It records what it observes; test/cgroupfs.test.ts asserts on it. Prints one JSON line last.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync, constants } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCgroupfsMounted, mountCgroupfs, readModel, unmountCgroupfs, type CgroupfsHandle } from "../../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "cgfs-scn-"));
const mp = join(dir, "cg");
const stateFile = join(dir, "state.json");
const procsDir = join(dir, "procs");
const logFile = join(dir, "daemon.log");
const obs: Record<string, unknown> = {};
const children: ChildProcess[] = [];
let handle: CgroupfsHandle | undefined;

const P = (p: string): string => join(mp, p);
const read = (p: string): string => readFileSync(P(p), "utf8");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** errno name of a failing fs call, or "OK". */
const code = (f: () => unknown): string => {
  try {
    f();
    return "OK";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
};
const write = (p: string, v: string): string => code(() => writeFileSync(P(p), v));
const sh = (script: string): { status: number | null; out: string; err: string } => {
  const r = spawnSync("/bin/sh", ["-c", script], { cwd: mp, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
};
const sleeper = (): number => {
  const c = spawn("sleep", ["600"], { stdio: "ignore" });
  children.push(c);
  return c.pid!;
};
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return false;
  }
};
async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if (cond()) return true;
    } catch {
      /* retry */
    }
    await sleep(50);
  }
  return cond();
}
const kv = (text: string): Record<string, number> => Object.fromEntries(text.trim().split("\n").map((l) => [l.split(" ")[0]!, Number(l.split(" ")[1])]));
const ALL = "+cpuset +cpu +io +memory +hugetlb +pids";

async function main(): Promise<void> {
  handle = await mountCgroupfs({ mountpoint: mp, stateFile, procsDir, logFile, sampleIntervalMs: 200 });
  obs.mounted = await isCgroupfsMounted(mp);
  obs.daemonIsSeparate = handle.pid !== process.pid;

  // c07: cpuset is a controller of the root; c01: root stats carry real numbers.
  obs.rootControllers = read("cgroup.controllers").trim();
  obs.rootCpuStat = kv(read("cpu.stat"));
  obs.rootMemoryStat = kv(read("memory.stat"));
  obs.rootIoStat = read("io.stat");
  obs.rootFiles = readdirSync(mp).sort();

  // every file: enable all controllers two levels down and read each readable file with the shell
  obs.enableAll = write("cgroup.subtree_control", ALL);
  mkdirSync(P("all/leaf"), { recursive: true });
  obs.enableAllChild = write("all/cgroup.subtree_control", ALL);
  obs.cpusetInChild = readdirSync(P("all")).filter((f) => f.startsWith("cpuset.")).sort();
  const readable: string[] = [];
  const writeOnly: string[] = [];
  for (const d of ["", "all", "all/leaf"]) {
    for (const f of readdirSync(P(d))) {
      const rel = d ? `${d}/${f}` : f;
      const st = statSync(P(rel));
      if (st.isDirectory()) continue;
      if (st.mode & 0o444) readable.push(rel);
      else writeOnly.push(rel);
    }
  }
  const catAll = sh(readable.map((f) => `cat '${f}' >/dev/null || echo "FAIL ${f}"`).join("\n"));
  obs.shellReads = { files: readable.length, failures: catAll.out.split("\n").filter((l) => l.startsWith("FAIL")), stderr: catAll.err };
  obs.writeOnly = writeOnly;
  obs.leafFiles = readdirSync(P("all/leaf")).sort();

  // shell writes of every writable file of a leaf, with a valid value, read back
  const s1 = sleeper();
  const writes: Array<[string, string, string]> = [
    ["cgroup.subtree_control", "+memory", "memory"],
    ["cgroup.subtree_control", "-memory", ""],
    ["cgroup.procs", String(s1), String(s1)],
    ["cgroup.max.depth", "3", "3"],
    ["cgroup.max.descendants", "10", "10"],
    ["cgroup.freeze", "1", "1"],
    ["cgroup.freeze", "0", "0"],
    ["cpu.max", "50000 100000", "50000 100000"],
    ["cpu.max.burst", "1000", "1000"],
    ["cpu.weight", "200", "200"],
    ["cpu.weight.nice", "0", "0"],
    ["cpu.idle", "1", "1"],
    ["cpuset.cpus", "0", "0"],
    ["cpuset.mems", "0", "0"],
    ["cpuset.cpus.partition", "member", "member"],
    ["memory.min", "1M", "1048576"],
    ["memory.low", "2M", "2097152"],
    ["memory.high", "100M", "104857600"],
    ["memory.max", "1G", "1073741824"],
    ["memory.swap.high", "max", "max"],
    ["memory.swap.max", "0", "0"],
    ["memory.oom.group", "1", "1"],
    ["pids.max", "100", "100"],
    ["io.max", "8:0 rbps=1048576 wiops=100", "8:0 rbps=1048576 wbps=max riops=max wiops=100"],
    ["io.weight", "default 50", "default 50"],
    ["hugetlb.2MB.max", "4M", "4194304"],
    ["hugetlb.2MB.rsvd.max", "max", "max"],
  ];
  const script = writes
    .map(([f, v], i) => `echo '${v}' > 'all/leaf/${f}'; echo "@@${i} rc=$?"; cat 'all/leaf/${f}'`)
    .join("\n");
  const wr = sh(script);
  const parts = wr.out.split(/^@@/m).slice(1);
  obs.shellWrites = writes.map(([f, v, want], i) => {
    const part = parts[i] ?? "";
    const rc = /^\d+ rc=(\d+)/.exec(part)?.[1];
    const got = part.split("\n").slice(1).join("\n").trim();
    return { file: f, value: v, rc: rc === undefined ? -1 : Number(rc), got, want };
  });
  obs.writableLeafFiles = (obs.leafFiles as string[]).filter((f) => statSync(P(`all/leaf/${f}`)).mode & 0o200);
  obs.frozenEvent = (() => {
    writeFileSync(P("all/leaf/cgroup.freeze"), "1");
    const e = read("all/leaf/cgroup.events");
    writeFileSync(P("all/leaf/cgroup.freeze"), "0");
    return e;
  })();
  obs.procsFile = readFileSync(join(procsDir, String(s1)), "utf8");

  // errors, each with errno and unchanged state
  mkdirSync(P("e1/c"), { recursive: true });
  obs.enoentSubtree = write("e1/c/cgroup.subtree_control", "+memory");
  obs.enoentSubtreeAfter = read("e1/c/cgroup.subtree_control");

  mkdirSync(P("e2"));
  const s2 = sleeper();
  writeFileSync(P("e2/cgroup.procs"), String(s2));
  obs.ebusyEnableWithProcs = write("e2/cgroup.subtree_control", "+memory");
  obs.ebusyEnableAfter = read("e2/cgroup.subtree_control");
  mkdirSync(P("e3"));
  writeFileSync(P("e3/cgroup.subtree_control"), "+memory");
  obs.ebusyMoveIntoInner = write("e3/cgroup.procs", String(s2));
  obs.ebusyMoveAfter = { e2: read("e2/cgroup.procs").trim(), e3: read("e3/cgroup.procs").trim() };
  obs.ebusyRmdirPopulated = code(() => rmdirSync(P("e2")));
  mkdirSync(P("e3/k"));
  obs.ebusyRmdirChildren = code(() => rmdirSync(P("e3")));
  obs.rmdirEmpty = code(() => rmdirSync(P("e3/k")));

  writeFileSync(P("e1/memory.max"), "1G");
  obs.einval = {
    memoryMax: write("e1/memory.max", "abc"),
    cpuMax: write("e1/cpu.max", "1 2 3"),
    subtreeNoSign: write("e1/cgroup.subtree_control", "memory"),
    subtreeUnknown: write("e1/cgroup.subtree_control", "+bogus"),
    pidsMax: write("e1/pids.max", "-1"),
    cpusetCpus: write("all/leaf/cpuset.cpus", "99999"),
    procsText: write("e1/c/cgroup.procs", "abc"),
  };
  obs.einvalAfter = { memoryMax: read("e1/memory.max").trim(), cpuMax: read("e1/cpu.max").trim(), subtree: read("e1/cgroup.subtree_control").trim(), pidsMax: read("e1/pids.max").trim() };

  obs.createFile = code(() => writeFileSync(P("e1/newfile"), "x"));
  obs.createRoot = code(() => writeFileSync(P("newfile"), "x"));
  obs.createExcl = code(() => openSync(P("e1/other"), constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY));
  obs.unlinkFile = code(() => unlinkSync(P("e1/memory.max")));
  obs.writeReadOnly = write("e1/memory.current", "1");
  obs.noCreateAfter = readdirSync(P("e1")).filter((f) => f === "newfile" || f === "other");

  const dead = spawn("true");
  await new Promise((r) => dead.on("exit", r));
  await sleep(50);
  obs.esrch = write("e1/c/cgroup.procs", String(dead.pid));

  // cgroup.events populated follows members that exit
  mkdirSync(P("ev"));
  const evc = spawn("sleep", ["600"], { stdio: "ignore" });
  children.push(evc);
  writeFileSync(P("ev/cgroup.procs"), String(evc.pid));
  obs.eventsPopulated = read("ev/cgroup.events");
  evc.kill("SIGKILL");
  await new Promise((r) => evc.on("exit", r));
  obs.eventsAfterExit = (await waitFor(() => read("ev/cgroup.events").startsWith("populated 0"))) ? read("ev/cgroup.events") : read("ev/cgroup.events");
  obs.procsAfterExit = read("ev/cgroup.procs");
  obs.procsFileAfterExit = code(() => statSync(join(procsDir, String(evc.pid))));

  // cgroup.kill kills the subtree's members
  mkdirSync(P("kl/sub"), { recursive: true });
  const k1 = sleeper();
  const k2 = sleeper();
  writeFileSync(P("kl/cgroup.procs"), String(k1));
  writeFileSync(P("kl/sub/cgroup.procs"), String(k2));
  obs.killBefore = read("kl/cgroup.events");
  obs.killWrite = write("kl/cgroup.kill", "1");
  obs.killBadValue = write("kl/cgroup.kill", "2");
  obs.killDead = await waitFor(() => !alive(k1) && !alive(k2));
  obs.killEventsAfter = (await waitFor(() => read("kl/cgroup.events").startsWith("populated 0"))) ? read("kl/cgroup.events") : read("kl/cgroup.events");
  obs.killReadIsError = code(() => read("kl/cgroup.kill"));

  // pids.max honoured on cgroup.procs writes
  mkdirSync(P("pm"));
  writeFileSync(P("pm/pids.max"), "2");
  const pm = [sleeper(), sleeper(), sleeper()];
  obs.pidsMoves = pm.map((p) => write("pm/cgroup.procs", String(p)));
  obs.pidsCurrent = read("pm/pids.current").trim();
  obs.pidsEvents = read("pm/pids.events").trim();
  obs.pidsProcs = read("pm/cgroup.procs").trim().split("\n").length;

  // concurrent writers: 6 shell processes each build a subtree, set limits and move a process
  mkdirSync(P("cw"));
  writeFileSync(P("cw/cgroup.subtree_control"), "+memory +pids");
  const cwPids = Array.from({ length: 6 }, () => sleeper());
  const writers = cwPids.map((pid, i) => {
    const s = [`mkdir cw/w${i}`, `echo +memory > cw/w${i}/cgroup.subtree_control`];
    for (let j = 0; j < 8; j++) s.push(`mkdir cw/w${i}/g${j}`, `echo ${(i * 8 + j + 1) * 4096} > cw/w${i}/g${j}/memory.max`);
    s.push(`echo ${pid} > cw/w${i}/g7/cgroup.procs`);
    const c = spawn("/bin/sh", ["-ec", s.join("\n")], { cwd: mp, stdio: "ignore" });
    return new Promise<number | null>((r) => c.on("exit", (code) => r(code)));
  });
  obs.concurrentExit = await Promise.all(writers);
  const cwExpect: string[] = [];
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 8; j++) {
      const got = read(`cw/w${i}/g${j}/memory.max`).trim();
      if (got !== String((i * 8 + j + 1) * 4096)) cwExpect.push(`w${i}/g${j}=${got}`);
    }
    if (read(`cw/w${i}/g7/cgroup.procs`).trim() !== String(cwPids[i])) cwExpect.push(`w${i} procs`);
  }
  obs.concurrentMismatches = cwExpect;
  obs.concurrentDescendants = read("cw/cgroup.stat");

  // restart persistence: kill -9 the daemon (stale mount), remount, same hierarchy/limits/membership
  const before = await readModel(stateFile);
  const beforeReads = { leafMax: read("all/leaf/memory.max"), leafProcs: read("all/leaf/cgroup.procs"), cw: read("cw/w3/g5/memory.max"), pm: read("pm/pids.max") };
  process.kill(handle.pid, "SIGKILL");
  await sleep(300);
  obs.staleErrno = await readFile(P("cgroup.controllers")).then(
    () => "OK",
    (e: NodeJS.ErrnoException) => e.code,
  );
  obs.staleMounted = await isCgroupfsMounted(mp);
  const oldPid = handle.pid;
  handle = await mountCgroupfs({ mountpoint: mp, stateFile, procsDir, logFile, sampleIntervalMs: 200 });
  obs.newDaemon = handle.pid !== oldPid;
  const after = await readModel(stateFile);
  const strip = (s: typeof before) => ({ groups: s.groups.map((g) => ({ path: g.path, sc: g.subtreeControl, settings: g.settings })), procs: s.procs });
  obs.restartSameModel = JSON.stringify(strip(before)) === JSON.stringify(strip(after));
  obs.restartReads = JSON.stringify(beforeReads) === JSON.stringify({ leafMax: read("all/leaf/memory.max"), leafProcs: read("all/leaf/cgroup.procs"), cw: read("cw/w3/g5/memory.max"), pm: read("pm/pids.max") });
  obs.restartGroups = after.groups.length;
  obs.restartProcsFile = readFileSync(join(procsDir, String(s1)), "utf8");

  // moving to the root removes the procsDir file
  writeFileSync(P("cgroup.procs"), String(s1));
  obs.procsFileAfterRoot = code(() => statSync(join(procsDir, String(s1))));
  obs.rootListsMoved = read("cgroup.procs").split("\n").includes(String(s1));

  await handle.unmount();
  obs.unmounted = !(await isCgroupfsMounted(mp));
  obs.unmountAgain = await unmountCgroupfs({ mountpoint: mp }).then(
    () => "OK",
    (e: Error) => e.message,
  );
}

main()
  .catch((e: unknown) => {
    obs.error = (e as Error).stack ?? String(e);
    try {
      obs.log = readFileSync(logFile, "utf8").slice(-3000);
    } catch {
      /* none */
    }
  })
  .finally(async () => {
    for (const c of children) c.kill("SIGKILL");
    try {
      await unmountCgroupfs({ mountpoint: mp });
    } catch (e) {
      obs.cleanupError = (e as Error).message;
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      obs.cleanupError = `${String(obs.cleanupError ?? "")} rm: ${(e as Error).message}`;
    }
    process.stdout.write(JSON.stringify(obs) + "\n");
    process.exit(0);
  });
