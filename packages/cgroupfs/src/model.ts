/**
 * The cgroup v2 emulation model: the hierarchy, controllers, limits and membership, the kernel's
 * rules and errors (Documentation/admin-guide/cgroup-v2.rst, kernel/cgroup/cgroup.c), the
 * interface files in the kernel's formats, and persistence. Pure TypeScript: the host is reached
 * only through {@link HostEnv}, so the rules are unit-testable without FUSE.
 *
 * Every mutating method either succeeds or throws {@link CgroupError} having changed nothing.
 */
import { CgroupError } from "./errors.js";
import {
  formatLimit,
  formatList,
  niceToWeight,
  parseCpuMax,
  parseDevice,
  parseInt10,
  parseList,
  parseMemory,
  parsePidsMax,
  strip,
  weightToNice,
  type Limit,
} from "./parse.js";
import { addAgg, emptyAgg, emptySystem, memoryCurrent, THREAD_STACK_BYTES, type Agg, type ProcSample, type SystemSample } from "./stats.js";

/** Controllers in the kernel's order (cgroup_subsys.h) as listed by `cgroup.controllers`. */
export const CONTROLLERS = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"] as const;
export type Controller = (typeof CONTROLLERS)[number];

/** What the model needs from the host. The daemon passes the real `/proc`; tests may pass their own. */
export interface HostEnv {
  /** The live process `pid` (a tid resolves to its process): its tgid and start time (stat field 22), or undefined if none or a zombie. */
  processInfo(pid: number): { tgid: number; starttime: number } | undefined;
  /** Sends a signal (used by `cgroup.kill`). Errors (process gone) are ignored. */
  kill(pid: number, signal: NodeJS.Signals): void;
  /** Online CPUs and memory nodes of the host (root `cpuset.*.effective`). */
  cpus: number[];
  mems: number[];
  /** Huge page sizes in the kernel's names (`2MB`, `1GB`). */
  hugepageSizes: string[];
  /** `MAJ:MIN` that per-process I/O from /proc/<pid>/io is attributed to (the root filesystem's device). */
  ioDevice: string;
}

interface IoMaxEntry {
  rbps: Limit;
  wbps: Limit;
  riops: Limit;
  wiops: Limit;
}

/** Limits and settings of one group: everything a user can write. Persisted as is. */
export interface GroupSettings {
  maxDepth: Limit;
  maxDescendants: Limit;
  freeze: 0 | 1;
  cpuMax: { quota: number | null; period: number };
  cpuMaxBurst: number;
  cpuWeight: number;
  cpuIdle: number;
  cpusetCpus: number[];
  cpusetMems: number[];
  cpusetPartition: string;
  memoryMin: Limit;
  memoryLow: Limit;
  memoryHigh: Limit;
  memoryMax: Limit;
  memorySwapHigh: Limit;
  memorySwapMax: Limit;
  memoryOomGroup: 0 | 1;
  pidsMax: Limit;
  ioMax: Record<string, IoMaxEntry>;
  ioWeight: { default: number; devices: Record<string, number> };
  hugetlbMax: Record<string, Limit>;
  hugetlbRsvdMax: Record<string, Limit>;
}

function defaultSettings(): GroupSettings {
  return {
    maxDepth: null,
    maxDescendants: null,
    freeze: 0,
    cpuMax: { quota: null, period: 100000 },
    cpuMaxBurst: 0,
    cpuWeight: 100,
    cpuIdle: 0,
    cpusetCpus: [],
    cpusetMems: [],
    cpusetPartition: "member",
    memoryMin: 0,
    memoryLow: 0,
    memoryHigh: null,
    memoryMax: null,
    memorySwapHigh: null,
    memorySwapMax: null,
    memoryOomGroup: 0,
    pidsMax: null,
    ioMax: {},
    ioWeight: { default: 100, devices: {} },
    hugetlbMax: {},
    hugetlbRsvdMax: {},
  };
}

/** Each default setting as JSON, to persist only what differs. */
const DEFAULT_JSON: Record<string, string> = Object.fromEntries(Object.entries(defaultSettings()).map(([k, v]) => [k, JSON.stringify(v)]));

interface Group {
  /** The settings that differ from the defaults, as last persisted (undefined: recompute). */
  persisted?: Partial<GroupSettings>;
  path: string;
  name: string;
  parent: Group | undefined;
  children: Map<string, Group>;
  subtreeControl: Set<Controller>;
  settings: GroupSettings;
  procs: Set<number>;
  /** Highest memory.current / pids.current seen at a sample (bytes / tasks). */
  memoryPeak: number;
  pidsPeak: number;
  /** pids.events `max`: refused moves because of pids.max. */
  pidsEventsMax: number;
  createdMs: number;
}

/** The persisted form (the daemon's `stateFile`), format version 1. */
export interface PersistedState {
  version: 1;
  /** Groups by path (`/` first, parents before children). */
  /** `settings` holds only the values that differ from the kernel's defaults. */
  groups: Array<{ path: string; subtreeControl: Controller[]; settings: Partial<GroupSettings>; memoryPeak?: number; pidsPeak?: number }>;
  /** Members of non-root groups: pid → group path and the process's start time (to detect pid reuse). */
  procs: Record<string, { path: string; starttime: number }>;
}

/** What a path in the mount is. */
export type Entry = { kind: "dir"; path: string } | { kind: "file"; group: string; file: string; mode: number };

interface FileSpec {
  /** Owning controller, or undefined for core files. */
  ctrl?: Controller;
  /** `root` only on the root, `nonroot` only below it, else both. */
  where?: "root" | "nonroot";
  /** Permission bits as the kernel shows them (0644 writable, 0444 read-only, 0200 write-only). */
  mode: number;
  read?: (g: Group) => string;
  write?: (g: Group, value: string) => void;
}

/** Notified after membership changes: `path` null means the process left for the root or exited. */
export type MembershipListener = (pid: number, path: string | null) => void;

const ROOT = "/";

/** Normalises a mount-relative path: leading `/`, no trailing `/`, no empty or `.`/`..` parts. */
export function normalizePath(p: string): string {
  const parts = p.split("/").filter((x) => x !== "" && x !== ".");
  if (parts.includes("..")) throw new CgroupError("EINVAL", `path "${p}" contains ".."`);
  return "/" + parts.join("/");
}

function parentPath(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? ROOT : p.slice(0, i);
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/**
 * The emulated cgroup v2 hierarchy.
 *
 * Accounting comes from {@link applySample} (the daemon's sampler); reads render from the last
 * sample, cached per file until the next sample or mutation ({@link generation}).
 */
export class CgroupModel {
  private readonly groups = new Map<string, Group>();
  private readonly members = new Map<number, { group: Group; starttime: number }>();
  private procSamples = new Map<number, ProcSample>();
  private system: SystemSample = emptySystem();
  /** All live pids seen by the last sample (the root lists those that are in no group). */
  private allPids: number[] = [];
  private aggCache = new Map<Group, Agg>();
  private readonly renderCache = new Map<string, { gen: number; text: string }>();
  private listeners: MembershipListener[] = [];
  /** Bumped on every change of state or accounting; cached renderings older than it are stale. */
  generation = 0;
  /** Time of the last applied sample (ms since epoch), 0 before the first. */
  sampledAtMs = 0;

  constructor(private readonly env: HostEnv) {
    this.groups.set(ROOT, this.newGroup(ROOT, undefined));
  }

  private newGroup(path: string, parent: Group | undefined): Group {
    return {
      path,
      name: baseName(path),
      parent,
      children: new Map(),
      subtreeControl: new Set(),
      settings: defaultSettings(),
      procs: new Set(),
      memoryPeak: 0,
      pidsPeak: 0,
      pidsEventsMax: 0,
      createdMs: Date.now(),
    };
  }

  /** Registers a listener for membership changes (the daemon keeps `procsDir` from it). */
  onMembership(l: MembershipListener): void {
    this.listeners.push(l);
  }

  private touch(): void {
    this.generation++;
    this.aggCache.clear();
  }

  private group(path: string): Group {
    const g = this.groups.get(normalizePath(path));
    if (!g) throw new CgroupError("ENOENT", `no cgroup ${path}`);
    return g;
  }

  // ---------------------------------------------------------------- hierarchy

  /** Paths of all groups, parents before children. */
  paths(): string[] {
    return [...this.groups.keys()].sort((a, b) => (a === ROOT ? -1 : b === ROOT ? 1 : a.localeCompare(b)));
  }

  /** True if `path` is a group. */
  isGroup(path: string): boolean {
    return this.groups.has(normalizePath(path));
  }

  /** Controllers available in a group (`cgroup.controllers`): all at the root, else the parent's `subtree_control`. */
  controllers(path: string): Controller[] {
    return this.ctrlsOf(this.group(path));
  }

  private ctrlsOf(g: Group): Controller[] {
    if (!g.parent) return [...CONTROLLERS];
    return CONTROLLERS.filter((c) => g.parent!.subtreeControl.has(c));
  }

  /** `cgroup.subtree_control` of a group, in kernel order. */
  subtreeControl(path: string): Controller[] {
    const g = this.group(path);
    return CONTROLLERS.filter((c) => g.subtreeControl.has(c));
  }

  /**
   * Creates a child group (`mkdir`).
   * @throws CgroupError ENOENT (no parent), EEXIST (a group or file of that name), EINVAL (newline in the name),
   *   EAGAIN (an ancestor's `cgroup.max.depth` / `cgroup.max.descendants` reached, cgroup_check_hierarchy_limits)
   */
  mkdir(path: string): void {
    const p = normalizePath(path);
    if (p === ROOT) throw new CgroupError("EEXIST", "the root exists");
    const parent = this.groups.get(parentPath(p));
    if (!parent) throw new CgroupError("ENOENT", `parent of ${p} does not exist`);
    const name = baseName(p);
    if (name.includes("\n")) throw new CgroupError("EINVAL", "cgroup names cannot contain a newline");
    if (this.groups.has(p) || this.fileSet(parent).set.has(name)) throw new CgroupError("EEXIST", `${p} exists`);
    let level = 0;
    for (let a: Group | undefined = parent; a; a = a.parent, level++) {
      const md = a.settings.maxDescendants;
      if (md !== null && this.descendants(a) >= md) throw new CgroupError("EAGAIN", `${a.path}: cgroup.max.descendants ${md} reached`);
      const depth = a.settings.maxDepth;
      if (depth !== null && level >= depth) throw new CgroupError("EAGAIN", `${a.path}: cgroup.max.depth ${depth} reached`);
    }
    const g = this.newGroup(p, parent);
    parent.children.set(name, g);
    this.groups.set(p, g);
    this.touch();
  }

  /**
   * Removes an empty group (`rmdir`). Members that have exited (dead, zombie or pid reused) are
   * dropped first, without waiting for the sampler: the kernel unlinks a task from its cgroup when it
   * exits (cgroup_exit), so `rmdir` right after the last member died succeeds (runc delete relies on it).
   * @throws CgroupError ENOENT, EBUSY (the root, live members, or child groups: cgroup_destroy_locked)
   */
  rmdir(path: string): void {
    const g = this.group(path);
    if (!g.parent) throw new CgroupError("EBUSY", "cannot remove the root cgroup");
    if (g.children.size > 0) throw new CgroupError("EBUSY", `${g.path} has child cgroups`);
    for (const pid of [...g.procs]) {
      const info = this.env.processInfo(pid);
      if (!info || info.tgid !== pid || info.starttime !== this.members.get(pid)?.starttime) this.drop(pid);
    }
    if (g.procs.size > 0) throw new CgroupError("EBUSY", `${g.path} has live processes`);
    g.parent.children.delete(g.name);
    this.groups.delete(g.path);
    this.touch();
  }

  private descendants(g: Group): number {
    let n = 0;
    for (const c of g.children.values()) n += 1 + this.descendants(c);
    return n;
  }

  // ---------------------------------------------------------------- membership

  /** The group path of a live member pid, or `/` when it is in no group. */
  groupOf(pid: number): string {
    return this.members.get(pid)?.group.path ?? ROOT;
  }

  /** Pids directly in a non-root group (sorted); for `/` the live pids in no group from the last sample. */
  procs(path: string): number[] {
    const g = this.group(path);
    if (!g.parent) return this.allPids.filter((p) => !this.members.has(p));
    return [...g.procs].sort((a, b) => a - b);
  }

  /** Start time (stat field 22) recorded for a member, or undefined if `pid` is in no group. */
  memberStart(pid: number): number | undefined {
    return this.members.get(pid)?.starttime;
  }

  /** All member pids with their group (non-root groups only). */
  membership(): Map<number, string> {
    return new Map([...this.members].map(([pid, m]) => [pid, m.group.path]));
  }

  private populated(g: Group): boolean {
    if (g.procs.size > 0) return true;
    for (const c of g.children.values()) if (this.populated(c)) return true;
    return false;
  }

  private subtreePids(g: Group, out: number[] = []): number[] {
    for (const p of g.procs) out.push(p);
    for (const c of g.children.values()) this.subtreePids(c, out);
    return out;
  }

  /**
   * Moves a whole process into a group (a write to `cgroup.procs`). A tid moves its process.
   * @throws CgroupError EINVAL (not a positive integer; pid 0, "the writer", is not supported through FUSE),
   *   ESRCH (no such live process), ENOENT (no group), EBUSY (target has controllers in subtree_control:
   *   "no internal processes", cgroup_migrate_vet_dst), EAGAIN (would exceed `pids.max` of the target or an
   *   ancestor: honoured here because forks cannot be refused without the kernel)
   */
  move(pidText: string | number, path: string): void {
    const g = this.group(path);
    const pid = typeof pidText === "number" ? pidText : parseInt10(pidText, "cgroup.procs");
    if (pid < 0) throw new CgroupError("EINVAL", `pid ${pid} is negative`);
    if (pid === 0) throw new CgroupError("EINVAL", "pid 0 (the writing process) cannot be resolved through FUSE; write the pid");
    const info = this.env.processInfo(pid);
    if (!info) throw new CgroupError("ESRCH", `no such process ${pid}`);
    const tgid = info.tgid;
    const cur = this.members.get(tgid);
    if (cur && cur.starttime !== info.starttime) this.drop(tgid); // pid reused
    const from = this.members.get(tgid)?.group ?? this.groups.get(ROOT)!;
    if (from === g) return;
    if (g.parent && g.subtreeControl.size > 0) {
      throw new CgroupError("EBUSY", `${g.path} has controllers enabled in cgroup.subtree_control (no internal processes)`);
    }
    const threads = this.procSamples.get(tgid)?.threads ?? 1;
    for (let a: Group | undefined = g; a && a.parent; a = a.parent) {
      if (isAncestorOrSelf(a, from)) continue; // already counted there
      const max = a.settings.pidsMax;
      if (max === null || !this.ctrlsOf(a).includes("pids")) continue;
      const current = this.pidsCurrent(a);
      if (current + threads > max) {
        a.pidsEventsMax++;
        this.touch();
        throw new CgroupError("EAGAIN", `${a.path}: pids.max ${max} would be exceeded (${current} + ${threads})`);
      }
    }
    from.procs.delete(tgid);
    if (g.parent) {
      g.procs.add(tgid);
      this.members.set(tgid, { group: g, starttime: info.starttime });
    } else {
      this.members.delete(tgid);
    }
    this.touch();
    for (const l of this.listeners) l(tgid, g.parent ? g.path : null);
  }

  private drop(pid: number): void {
    const m = this.members.get(pid);
    if (!m) return;
    m.group.procs.delete(pid);
    this.members.delete(pid);
    this.touch();
    for (const l of this.listeners) l(pid, null);
  }

  /**
   * Removes members that exited (or whose pid now names another process). `lookup` defaults to
   * {@link HostEnv.processInfo}; the sampler passes what it has just read.
   * @returns the pids removed.
   */
  reap(lookup: (pid: number) => { tgid: number; starttime: number } | undefined = (pid) => this.env.processInfo(pid)): number[] {
    const gone: number[] = [];
    for (const [pid, m] of this.members) {
      const info = lookup(pid);
      if (!info || info.starttime !== m.starttime || info.tgid !== pid) gone.push(pid);
    }
    for (const pid of gone) this.drop(pid);
    return gone;
  }

  /**
   * Adds a process first seen by the sampler to its parent's group (children of a forked member
   * start in the parent's cgroup). No-op if the parent is in no group or the child is a member.
   */
  inherit(pid: number, ppid: number, starttime: number): void {
    const parent = this.members.get(ppid);
    if (!parent || this.members.has(pid)) return;
    parent.group.procs.add(pid);
    this.members.set(pid, { group: parent.group, starttime });
    this.touch();
    for (const l of this.listeners) l(pid, parent.group.path);
  }

  /** Sends SIGKILL to every process in the subtree (`cgroup.kill`). */
  kill(path: string): number[] {
    const pids = this.subtreePids(this.group(path));
    for (const p of pids) this.env.kill(p, "SIGKILL");
    return pids;
  }

  // ---------------------------------------------------------------- accounting

  /**
   * Installs a sample: per-member accounting, system-wide figures for the root, and the list of
   * all live pids. Updates `memory.peak` / `pids.peak` and invalidates cached renderings.
   */
  applySample(procs: Map<number, ProcSample>, system: SystemSample, allPids: number[]): void {
    this.procSamples = procs;
    this.system = system;
    this.allPids = allPids;
    this.sampledAtMs = Date.now();
    this.touch();
    for (const g of this.groups.values()) {
      if (!g.parent) continue;
      const a = this.agg(g);
      g.memoryPeak = Math.max(g.memoryPeak, memoryCurrent(a));
      g.pidsPeak = Math.max(g.pidsPeak, a.threads);
    }
  }

  /** Accounting of a group's subtree (members' samples summed, children included). */
  aggregate(path: string): Agg {
    return { ...this.agg(this.group(path)) };
  }

  private agg(g: Group): Agg {
    const hit = this.aggCache.get(g);
    if (hit) return hit;
    const a = emptyAgg();
    if (!g.parent) {
      for (const s of this.procSamples.values()) addAgg(a, s);
    } else {
      for (const pid of g.procs) {
        const s = this.procSamples.get(pid);
        if (s) addAgg(a, s);
        else a.threads += 1; // moved in since the last sample
      }
      for (const c of g.children.values()) addAgg(a, this.agg(c));
    }
    this.aggCache.set(g, a);
    return a;
  }

  private pidsCurrent(g: Group): number {
    return this.agg(g).threads;
  }

  // ---------------------------------------------------------------- files

  private namesCache = new Map<string, { list: string[]; set: Set<string> }>();

  /** Interface file names of a group, sorted (cached per root-ness and controller set). */
  fileNames(g: Group): string[] {
    return this.fileSet(g).list;
  }

  private fileSet(g: Group): { list: string[]; set: Set<string> } {
    const ctrlList = this.ctrlsOf(g);
    const key = `${g.parent ? "c" : "r"}:${ctrlList.join(",")}`;
    const hit = this.namesCache.get(key);
    if (hit) return hit;
    const ctrls = new Set(ctrlList);
    const out: string[] = [];
    for (const [name, spec] of this.specsFor(g)) {
      if (spec.where === "root" && g.parent) continue;
      if (spec.where === "nonroot" && !g.parent) continue;
      if (spec.ctrl && g.parent && !ctrls.has(spec.ctrl)) continue;
      out.push(name);
    }
    out.sort();
    const entry = { list: out, set: new Set(out) };
    this.namesCache.set(key, entry);
    return entry;
  }

  /** Names in a directory: child groups and interface files. @throws CgroupError ENOENT, ENOTDIR */
  list(path: string): string[] {
    const p = normalizePath(path);
    const g = this.groups.get(p);
    if (!g) {
      this.lookup(p);
      throw new CgroupError("ENOTDIR", `${p} is a file`);
    }
    return [...g.children.keys(), ...this.fileNames(g)];
  }

  /** What a path names. @throws CgroupError ENOENT */
  lookup(path: string): Entry {
    const p = normalizePath(path);
    if (this.groups.has(p)) return { kind: "dir", path: p };
    const g = this.groups.get(parentPath(p));
    const file = baseName(p);
    if (g && this.fileSet(g).set.has(file)) {
      return { kind: "file", group: g.path, file, mode: this.specsFor(g).get(file)!.mode };
    }
    throw new CgroupError("ENOENT", `no such cgroup file or group ${p}`);
  }

  private fileOf(path: string): { g: Group; spec: FileSpec; key: string } {
    const e = this.lookup(path);
    if (e.kind === "dir") throw new CgroupError("EISDIR", `${path} is a cgroup directory`);
    const g = this.groups.get(e.group)!;
    return { g, spec: this.specsFor(g).get(e.file)!, key: `${e.group}\0${e.file}` };
  }

  /**
   * Contents of an interface file in the kernel's format (cached until the next sample or change).
   * @throws CgroupError ENOENT, EISDIR, EINVAL (write-only file such as `cgroup.kill`)
   */
  read(path: string): string {
    const { g, spec, key } = this.fileOf(path);
    if (!spec.read) throw new CgroupError("EINVAL", `${path} is write-only`);
    const hit = this.renderCache.get(key);
    if (hit && hit.gen === this.generation) return hit.text;
    const text = spec.read(g);
    this.renderCache.set(key, { gen: this.generation, text });
    return text;
  }

  /**
   * Writes one buffer to an interface file, as one write(2) to the kernel's file.
   * @throws CgroupError ENOENT, EISDIR, EACCES (read-only file), and the file's own errors (EINVAL, ERANGE,
   *   ENOENT/EBUSY for subtree_control, ESRCH/EBUSY/EAGAIN for cgroup.procs, EOPNOTSUPP for threaded mode)
   */
  write(path: string, value: string): void {
    const { g, spec } = this.fileOf(path);
    if (!spec.write) throw new CgroupError("EACCES", `${path} is read-only`);
    spec.write(g, value);
    this.touch();
  }

  private specCache = new Map<string, Map<string, FileSpec>>();

  private specsFor(_g: Group): Map<string, FileSpec> {
    const key = this.env.hugepageSizes.join(",");
    let m = this.specCache.get(key);
    if (!m) {
      m = this.buildSpecs();
      this.specCache.set(key, m);
    }
    return m;
  }

  private setting<K extends keyof GroupSettings>(g: Group, k: K, v: GroupSettings[K]): void {
    g.settings[k] = v;
    g.persisted = undefined;
  }

  private buildSpecs(): Map<string, FileSpec> {
    const m = new Map<string, FileSpec>();
    const RW = 0o644;
    const RO = 0o444;
    const limitFile = (ctrl: Controller, k: "memoryMin" | "memoryLow" | "memoryHigh" | "memoryMax" | "memorySwapHigh" | "memorySwapMax", name: string): FileSpec => ({
      ctrl,
      where: "nonroot",
      mode: RW,
      read: (g) => formatLimit(g.settings[k]) + "\n",
      write: (g, v) => this.setting(g, k, parseMemory(v, name)),
    });
    const bool01 = (v: string, name: string): 0 | 1 => {
      const n = parseInt10(v, name);
      if (n !== 0 && n !== 1) throw new CgroupError("ERANGE", `${name}: ${n} is not 0 or 1`);
      return n;
    };
    const limitOrMax = (v: string, name: string): Limit => {
      const t = strip(v);
      if (t === "max") return null;
      const n = parseInt10(t, name);
      if (n < 0) throw new CgroupError("EINVAL", `${name}: negative`);
      return n;
    };

    // core
    m.set("cgroup.controllers", { mode: RO, read: (g) => lineOf(this.ctrlsOf(g).join(" ")) });
    m.set("cgroup.subtree_control", {
      mode: RW,
      read: (g) => lineOf(CONTROLLERS.filter((c) => g.subtreeControl.has(c)).join(" ")),
      write: (g, v) => this.writeSubtreeControl(g, v),
    });
    m.set("cgroup.procs", {
      mode: RW,
      read: (g) => this.procs(g.path).map((p) => `${p}\n`).join(""),
      write: (g, v) => this.move(v, g.path),
    });
    m.set("cgroup.threads", {
      mode: RW,
      read: (g) => this.procs(g.path).map((p) => `${p}\n`).join(""),
      write: () => {
        throw new CgroupError("EOPNOTSUPP", "threaded cgroups are not emulated: write the process to cgroup.procs");
      },
    });
    m.set("cgroup.type", {
      where: "nonroot",
      mode: RW,
      read: () => "domain\n",
      write: (_g, v) => {
        if (strip(v) === "threaded") throw new CgroupError("EOPNOTSUPP", "threaded cgroups are not emulated");
        throw new CgroupError("EINVAL", `cgroup.type accepts only "threaded"`);
      },
    });
    m.set("cgroup.max.depth", {
      mode: RW,
      read: (g) => formatLimit(g.settings.maxDepth) + "\n",
      write: (g, v) => this.setting(g, "maxDepth", limitOrMax(v, "cgroup.max.depth")),
    });
    m.set("cgroup.max.descendants", {
      mode: RW,
      read: (g) => formatLimit(g.settings.maxDescendants) + "\n",
      write: (g, v) => this.setting(g, "maxDescendants", limitOrMax(v, "cgroup.max.descendants")),
    });
    m.set("cgroup.stat", { mode: RO, read: (g) => `nr_descendants ${this.descendants(g)}\nnr_dying_descendants 0\n` });
    m.set("cgroup.events", {
      where: "nonroot",
      mode: RO,
      read: (g) => `populated ${this.populated(g) ? 1 : 0}\nfrozen ${this.frozen(g) ? 1 : 0}\n`,
    });
    m.set("cgroup.freeze", {
      where: "nonroot",
      mode: RW,
      read: (g) => `${g.settings.freeze}\n`,
      write: (g, v) => this.setting(g, "freeze", bool01(v, "cgroup.freeze")),
    });
    m.set("cgroup.kill", {
      where: "nonroot",
      mode: 0o200,
      write: (g, v) => {
        const n = parseInt10(v, "cgroup.kill");
        if (n !== 1) throw new CgroupError("ERANGE", "cgroup.kill accepts only 1");
        this.kill(g.path);
      },
    });
    m.set("cpu.stat", { mode: RO, read: (g) => this.renderCpuStat(g) });

    // cpu
    m.set("cpu.max", {
      ctrl: "cpu",
      where: "nonroot",
      mode: RW,
      read: (g) => `${g.settings.cpuMax.quota ?? "max"} ${g.settings.cpuMax.period}\n`,
      write: (g, v) => this.setting(g, "cpuMax", parseCpuMax(v, g.settings.cpuMax.period)),
    });
    m.set("cpu.max.burst", {
      ctrl: "cpu",
      where: "nonroot",
      mode: RW,
      read: (g) => `${g.settings.cpuMaxBurst}\n`,
      write: (g, v) => {
        const n = parseInt10(v, "cpu.max.burst");
        if (n < 0) throw new CgroupError("EINVAL", "cpu.max.burst: negative");
        const q = g.settings.cpuMax.quota;
        if (n > 0 && (q === null || n > q * 1000)) throw new CgroupError("EINVAL", "cpu.max.burst needs a finite cpu.max quota");
        this.setting(g, "cpuMaxBurst", n);
      },
    });
    m.set("cpu.weight", {
      ctrl: "cpu",
      where: "nonroot",
      mode: RW,
      read: (g) => `${g.settings.cpuWeight}\n`,
      write: (g, v) => {
        const n = parseInt10(v, "cpu.weight");
        if (n < 1 || n > 10000) throw new CgroupError("ERANGE", `cpu.weight ${n} outside 1..10000`);
        this.setting(g, "cpuWeight", n);
      },
    });
    m.set("cpu.weight.nice", {
      ctrl: "cpu",
      where: "nonroot",
      mode: RW,
      read: (g) => `${weightToNice(g.settings.cpuWeight)}\n`,
      write: (g, v) => {
        const n = parseInt10(v, "cpu.weight.nice");
        if (n < -20 || n > 19) throw new CgroupError("ERANGE", `cpu.weight.nice ${n} outside -20..19`);
        this.setting(g, "cpuWeight", niceToWeight(n));
      },
    });
    m.set("cpu.idle", {
      ctrl: "cpu",
      where: "nonroot",
      mode: RW,
      read: (g) => `${g.settings.cpuIdle}\n`,
      write: (g, v) => {
        const n = parseInt10(v, "cpu.idle");
        if (n !== 0 && n !== 1) throw new CgroupError("EINVAL", "cpu.idle accepts 0 or 1");
        this.setting(g, "cpuIdle", n);
      },
    });

    // cpuset
    m.set("cpuset.cpus", {
      ctrl: "cpuset",
      where: "nonroot",
      mode: RW,
      read: (g) => lineOf(formatList(g.settings.cpusetCpus)),
      write: (g, v) => this.setting(g, "cpusetCpus", this.subsetOf(parseList(v, "cpuset.cpus"), this.env.cpus, "cpuset.cpus")),
    });
    m.set("cpuset.mems", {
      ctrl: "cpuset",
      where: "nonroot",
      mode: RW,
      read: (g) => lineOf(formatList(g.settings.cpusetMems)),
      write: (g, v) => this.setting(g, "cpusetMems", this.subsetOf(parseList(v, "cpuset.mems"), this.env.mems, "cpuset.mems")),
    });
    m.set("cpuset.cpus.effective", { ctrl: "cpuset", mode: RO, read: (g) => lineOf(formatList(this.effective(g, "cpusetCpus"))) });
    m.set("cpuset.mems.effective", { ctrl: "cpuset", mode: RO, read: (g) => lineOf(formatList(this.effective(g, "cpusetMems"))) });
    m.set("cpuset.cpus.partition", {
      ctrl: "cpuset",
      where: "nonroot",
      mode: RW,
      read: (g) => `${g.settings.cpusetPartition}\n`,
      write: (g, v) => {
        const t = strip(v);
        if (!["member", "root", "isolated"].includes(t)) throw new CgroupError("EINVAL", `cpuset.cpus.partition: "${t}" is not member, root or isolated`);
        this.setting(g, "cpusetPartition", t);
      },
    });

    // memory
    m.set("memory.current", { ctrl: "memory", where: "nonroot", mode: RO, read: (g) => `${memoryCurrent(this.agg(g))}\n` });
    m.set("memory.peak", { ctrl: "memory", where: "nonroot", mode: RO, read: (g) => `${Math.max(g.memoryPeak, memoryCurrent(this.agg(g)))}\n` });
    m.set("memory.min", limitFile("memory", "memoryMin", "memory.min"));
    m.set("memory.low", limitFile("memory", "memoryLow", "memory.low"));
    m.set("memory.high", limitFile("memory", "memoryHigh", "memory.high"));
    m.set("memory.max", limitFile("memory", "memoryMax", "memory.max"));
    m.set("memory.swap.high", limitFile("memory", "memorySwapHigh", "memory.swap.high"));
    m.set("memory.swap.max", limitFile("memory", "memorySwapMax", "memory.swap.max"));
    m.set("memory.swap.current", { ctrl: "memory", where: "nonroot", mode: RO, read: (g) => `${this.agg(g).swap}\n` });
    m.set("memory.swap.events", { ctrl: "memory", where: "nonroot", mode: RO, read: () => "high 0\nmax 0\nfail 0\n" });
    const memEvents = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n";
    m.set("memory.events", { ctrl: "memory", where: "nonroot", mode: RO, read: () => memEvents });
    m.set("memory.events.local", { ctrl: "memory", where: "nonroot", mode: RO, read: () => memEvents });
    m.set("memory.oom.group", {
      ctrl: "memory",
      where: "nonroot",
      mode: RW,
      read: (g) => `${g.settings.memoryOomGroup}\n`,
      write: (g, v) => {
        const n = parseInt10(v, "memory.oom.group");
        if (n !== 0 && n !== 1) throw new CgroupError("EINVAL", "memory.oom.group accepts 0 or 1");
        this.setting(g, "memoryOomGroup", n);
      },
    });
    m.set("memory.stat", { ctrl: "memory", mode: RO, read: (g) => this.renderMemoryStat(g) });

    // pids
    m.set("pids.current", { ctrl: "pids", where: "nonroot", mode: RO, read: (g) => `${this.agg(g).threads}\n` });
    m.set("pids.peak", { ctrl: "pids", where: "nonroot", mode: RO, read: (g) => `${Math.max(g.pidsPeak, this.agg(g).threads)}\n` });
    m.set("pids.max", {
      ctrl: "pids",
      where: "nonroot",
      mode: RW,
      read: (g) => formatLimit(g.settings.pidsMax) + "\n",
      write: (g, v) => this.setting(g, "pidsMax", parsePidsMax(v)),
    });
    m.set("pids.events", { ctrl: "pids", where: "nonroot", mode: RO, read: (g) => `max ${g.pidsEventsMax}\n` });

    // io
    m.set("io.stat", { ctrl: "io", mode: RO, read: (g) => this.renderIoStat(g) });
    m.set("io.max", {
      ctrl: "io",
      where: "nonroot",
      mode: RW,
      read: (g) =>
        Object.entries(g.settings.ioMax)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([d, e]) => `${d} rbps=${formatLimit(e.rbps)} wbps=${formatLimit(e.wbps)} riops=${formatLimit(e.riops)} wiops=${formatLimit(e.wiops)}\n`)
          .join(""),
      write: (g, v) => this.writeIoMax(g, v),
    });
    m.set("io.weight", {
      ctrl: "io",
      where: "nonroot",
      mode: RW,
      read: (g) =>
        `default ${g.settings.ioWeight.default}\n` +
        Object.entries(g.settings.ioWeight.devices)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([d, w]) => `${d} ${w}\n`)
          .join(""),
      write: (g, v) => this.writeIoWeight(g, v),
    });

    // hugetlb
    for (const size of this.env.hugepageSizes) {
      const pre = `hugetlb.${size}`;
      const hmax = (kind: "hugetlbMax" | "hugetlbRsvdMax", name: string): FileSpec => ({
        ctrl: "hugetlb",
        where: "nonroot",
        mode: RW,
        read: (g) => formatLimit(g.settings[kind][size] ?? null) + "\n",
        write: (g, v) => {
          const lim = parseMemory(v, name);
          this.setting(g, kind, { ...g.settings[kind], [size]: lim === null ? null : roundDown(lim, hugeBytes(size)) });
        },
      });
      m.set(`${pre}.current`, { ctrl: "hugetlb", where: "nonroot", mode: RO, read: () => "0\n" });
      m.set(`${pre}.max`, hmax("hugetlbMax", `${pre}.max`));
      m.set(`${pre}.events`, { ctrl: "hugetlb", where: "nonroot", mode: RO, read: () => "max 0\n" });
      m.set(`${pre}.events.local`, { ctrl: "hugetlb", where: "nonroot", mode: RO, read: () => "max 0\n" });
      m.set(`${pre}.rsvd.current`, { ctrl: "hugetlb", where: "nonroot", mode: RO, read: () => "0\n" });
      m.set(`${pre}.rsvd.max`, hmax("hugetlbRsvdMax", `${pre}.rsvd.max`));
    }
    return m;
  }

  private frozen(g: Group): boolean {
    for (let a: Group | undefined = g; a; a = a.parent) if (a.settings.freeze) return true;
    return false;
  }

  private subsetOf(ids: number[], allowed: number[], name: string): number[] {
    const ok = new Set(allowed);
    for (const i of ids) if (!ok.has(i)) throw new CgroupError("EINVAL", `${name}: ${i} is not available (host has ${formatList(allowed)})`);
    return ids;
  }

  private effective(g: Group, k: "cpusetCpus" | "cpusetMems"): number[] {
    const host = k === "cpusetCpus" ? this.env.cpus : this.env.mems;
    if (!g.parent) return host;
    const parent = this.effective(g.parent, k);
    const own = g.settings[k];
    if (own.length === 0 || !this.ctrlsOf(g).includes("cpuset")) return parent;
    const p = new Set(parent);
    const inter = own.filter((i) => p.has(i));
    return inter.length ? inter : parent;
  }

  private writeSubtreeControl(g: Group, value: string): void {
    const enable = new Set<Controller>();
    const disable = new Set<Controller>();
    for (const tok of strip(value).split(/\s+/).filter(Boolean)) {
      const sign = tok[0];
      const name = tok.slice(1);
      if (sign !== "+" && sign !== "-") throw new CgroupError("EINVAL", `cgroup.subtree_control: "${tok}" must start with + or -`);
      if (!(CONTROLLERS as readonly string[]).includes(name)) throw new CgroupError("EINVAL", `cgroup.subtree_control: unknown controller "${name}"`);
      const c = name as Controller;
      if (sign === "+") {
        enable.add(c);
        disable.delete(c);
      } else {
        disable.add(c);
        enable.delete(c);
      }
    }
    for (const c of [...enable]) if (g.subtreeControl.has(c)) enable.delete(c);
    for (const c of [...disable]) if (!g.subtreeControl.has(c)) disable.delete(c);
    const avail = new Set(this.ctrlsOf(g));
    for (const c of enable) {
      if (!avail.has(c)) throw new CgroupError("ENOENT", `controller ${c} is not in ${g.path}'s cgroup.controllers (the parent's cgroup.subtree_control lacks it)`);
    }
    if (enable.size > 0 && g.parent && g.procs.size > 0) {
      throw new CgroupError("EBUSY", `${g.path} has processes (no internal processes)`);
    }
    for (const c of disable) {
      for (const child of g.children.values()) {
        if (child.subtreeControl.has(c)) throw new CgroupError("EBUSY", `child ${child.path} still enables ${c} in its cgroup.subtree_control`);
      }
    }
    for (const c of enable) g.subtreeControl.add(c);
    for (const c of disable) g.subtreeControl.delete(c);
  }

  private writeIoMax(g: Group, value: string): void {
    const toks = strip(value).split(/\s+/).filter(Boolean);
    if (toks.length < 1) throw new CgroupError("EINVAL", "io.max: expected MAJ:MIN key=value...");
    const dev = parseDevice(toks[0]!, "io.max");
    const cur: IoMaxEntry = { ...(g.settings.ioMax[dev] ?? { rbps: null, wbps: null, riops: null, wiops: null }) };
    for (const kv of toks.slice(1)) {
      const m = /^(rbps|wbps|riops|wiops)=(max|\d+)$/.exec(kv);
      if (!m) throw new CgroupError("EINVAL", `io.max: bad "${kv}" (rbps|wbps|riops|wiops=max|N)`);
      cur[m[1] as keyof IoMaxEntry] = m[2] === "max" ? null : Number(m[2]);
    }
    const next = { ...g.settings.ioMax };
    if (cur.rbps === null && cur.wbps === null && cur.riops === null && cur.wiops === null) delete next[dev];
    else next[dev] = cur;
    this.setting(g, "ioMax", next);
  }

  private writeIoWeight(g: Group, value: string): void {
    const toks = strip(value).split(/\s+/).filter(Boolean);
    const weight = (t: string): number => {
      const n = parseInt10(t, "io.weight");
      if (n < 1 || n > 10000) throw new CgroupError("ERANGE", `io.weight ${n} outside 1..10000`);
      return n;
    };
    const w = { default: g.settings.ioWeight.default, devices: { ...g.settings.ioWeight.devices } };
    if (toks.length === 1) w.default = weight(toks[0]!);
    else if (toks.length === 2 && toks[0] === "default") w.default = weight(toks[1]!);
    else if (toks.length === 2) {
      const dev = parseDevice(toks[0]!, "io.weight");
      if (toks[1] === "default") delete w.devices[dev];
      else w.devices[dev] = weight(toks[1]!);
    } else throw new CgroupError("EINVAL", 'io.weight: expected "[default] N" or "MAJ:MIN N|default"');
    this.setting(g, "ioWeight", w);
  }

  private renderCpuStat(g: Group): string {
    let user: number;
    let system: number;
    let nice = 0;
    if (!g.parent && this.system.cpu && this.system.cpu.userUsec + this.system.cpu.systemUsec > 0) {
      user = this.system.cpu.userUsec + this.system.cpu.niceUsec;
      system = this.system.cpu.systemUsec;
      nice = this.system.cpu.niceUsec;
    } else {
      const a = this.agg(g);
      user = a.userUsec;
      system = a.systemUsec;
    }
    let s = `usage_usec ${user + system}\nuser_usec ${user}\nsystem_usec ${system}\nnice_usec ${nice}\n`;
    if (g.parent && this.ctrlsOf(g).includes("cpu")) s += "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n";
    return s;
  }

  private renderMemoryStat(g: Group): string {
    const mi = this.system.meminfo;
    const vm = this.system.vmstat;
    let v: Record<string, number>;
    if (!g.parent && mi["MemTotal"] !== undefined) {
      const n = (k: string): number => mi[k] ?? 0;
      const slab = n("SReclaimable") + n("SUnreclaim");
      v = {
        anon: n("AnonPages"),
        file: n("Cached") + n("Buffers") + n("SwapCached"),
        kernel: n("KernelStack") + n("PageTables") + slab + n("Percpu"),
        kernel_stack: n("KernelStack"),
        pagetables: n("PageTables"),
        percpu: n("Percpu"),
        shmem: n("Shmem"),
        file_mapped: n("Mapped"),
        file_dirty: n("Dirty"),
        file_writeback: n("Writeback"),
        swapcached: n("SwapCached"),
        anon_thp: n("AnonHugePages"),
        shmem_thp: n("ShmemHugePages"),
        inactive_anon: n("Inactive(anon)"),
        active_anon: n("Active(anon)"),
        inactive_file: n("Inactive(file)"),
        active_file: n("Active(file)"),
        unevictable: n("Unevictable"),
        slab_reclaimable: n("SReclaimable"),
        slab_unreclaimable: n("SUnreclaim"),
        slab,
        pgfault: vm["pgfault"] ?? 0,
        pgmajfault: vm["pgmajfault"] ?? 0,
        pgrefill: vm["pgrefill"] ?? 0,
        pgactivate: vm["pgactivate"] ?? 0,
        pgdeactivate: vm["pgdeactivate"] ?? 0,
      };
      if (v.anon === 0 && v.file === 0) v = this.memFromAgg(this.agg(g)); // /proc/meminfo without the split (some sandboxes)
    } else {
      v = this.memFromAgg(this.agg(g));
    }
    return MEMORY_STAT_KEYS.map((k) => `${k} ${v[k] ?? 0}\n`).join("");
  }

  private memFromAgg(a: Agg): Record<string, number> {
    const stack = a.threads * THREAD_STACK_BYTES;
    return {
      anon: a.anon,
      file: a.file,
      kernel: stack + a.pagetables,
      kernel_stack: stack,
      pagetables: a.pagetables,
      shmem: a.shmem,
      file_mapped: a.file,
      active_anon: a.anon,
      active_file: a.file,
      pgfault: a.pgfault,
      pgmajfault: a.pgmajfault,
    };
  }

  private renderIoStat(g: Group): string {
    const line = (d: { device: string; rbytes: number; wbytes: number; rios: number; wios: number; dbytes: number; dios: number }): string =>
      `${d.device} rbytes=${d.rbytes} wbytes=${d.wbytes} rios=${d.rios} wios=${d.wios} dbytes=${d.dbytes} dios=${d.dios}\n`;
    if (!g.parent && this.system.disks.length > 0) return this.system.disks.map(line).join("");
    const a = this.agg(g);
    if (a.rbytes + a.wbytes + a.rios + a.wios === 0) return "";
    return line({ device: this.env.ioDevice, rbytes: a.rbytes, wbytes: a.wbytes, rios: a.rios, wios: a.wios, dbytes: 0, dios: 0 });
  }

  // ---------------------------------------------------------------- persistence

  /** The persisted state (see {@link PersistedState}). */
  toState(): PersistedState {
    const procs: PersistedState["procs"] = {};
    for (const [pid, m] of this.members) procs[String(pid)] = { path: m.group.path, starttime: m.starttime };
    return {
      version: 1,
      groups: this.paths().map((p) => {
        const g = this.groups.get(p)!;
        // only the settings that differ from the defaults (keeps the file small at thousands of groups);
        // computed once per change of the group's settings
        if (!g.persisted) {
          const diff: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(g.settings)) if (JSON.stringify(v) !== DEFAULT_JSON[k]) diff[k] = v;
          g.persisted = diff as Partial<GroupSettings>;
        }
        const settings = g.persisted;
        const rec: PersistedState["groups"][number] = { path: p, subtreeControl: CONTROLLERS.filter((c) => g.subtreeControl.has(c)), settings };
        if (g.memoryPeak) rec.memoryPeak = g.memoryPeak;
        if (g.pidsPeak) rec.pidsPeak = g.pidsPeak;
        return rec;
      }),
      procs,
    };
  }

  /**
   * Rebuilds a model from {@link toState} output. Members whose process is gone (or whose pid now names
   * another process, by start time) are dropped; everything else is restored as it was.
   * @throws Error on a malformed state (wrong version, group without parent).
   */
  static fromState(state: PersistedState, env: HostEnv): CgroupModel {
    if (!state || state.version !== 1 || !Array.isArray(state.groups)) throw new Error("cgroupfs state: unsupported format (want version 1)");
    const m = new CgroupModel(env);
    for (const gs of state.groups) {
      const p = normalizePath(gs.path);
      let g = m.groups.get(p);
      if (!g) {
        const parent = m.groups.get(parentPath(p));
        if (!parent) throw new Error(`cgroupfs state: ${p} listed before its parent`);
        g = m.newGroup(p, parent);
        parent.children.set(g.name, g);
        m.groups.set(p, g);
      }
      g.subtreeControl = new Set(gs.subtreeControl.filter((c) => (CONTROLLERS as readonly string[]).includes(c)));
      g.settings = { ...defaultSettings(), ...gs.settings };
      g.memoryPeak = gs.memoryPeak ?? 0;
      g.pidsPeak = gs.pidsPeak ?? 0;
    }
    for (const [pidText, rec] of Object.entries(state.procs ?? {})) {
      const pid = Number(pidText);
      const g = m.groups.get(rec.path);
      const info = env.processInfo(pid);
      if (!g || !g.parent || !info || info.tgid !== pid || info.starttime !== rec.starttime) continue;
      g.procs.add(pid);
      m.members.set(pid, { group: g, starttime: rec.starttime });
    }
    return m;
  }
}

/** memory.stat keys in the kernel's order (mm/memcontrol.c memory_stats[] and vm events), Linux 6.x. */
export const MEMORY_STAT_KEYS = [
  "anon",
  "file",
  "kernel",
  "kernel_stack",
  "pagetables",
  "sec_pagetables",
  "percpu",
  "sock",
  "vmalloc",
  "shmem",
  "zswap",
  "zswapped",
  "file_mapped",
  "file_dirty",
  "file_writeback",
  "swapcached",
  "anon_thp",
  "file_thp",
  "shmem_thp",
  "inactive_anon",
  "active_anon",
  "inactive_file",
  "active_file",
  "unevictable",
  "slab_reclaimable",
  "slab_unreclaimable",
  "slab",
  "workingset_refault_anon",
  "workingset_refault_file",
  "workingset_activate_anon",
  "workingset_activate_file",
  "workingset_restore_anon",
  "workingset_restore_file",
  "workingset_nodereclaim",
  "pgscan",
  "pgsteal",
  "pgscan_kswapd",
  "pgscan_direct",
  "pgsteal_kswapd",
  "pgsteal_direct",
  "pgfault",
  "pgmajfault",
  "pgrefill",
  "pgactivate",
  "pgdeactivate",
  "pglazyfree",
  "pglazyfreed",
  "thp_fault_alloc",
  "thp_collapse_alloc",
] as const;

function lineOf(s: string): string {
  return s + "\n";
}

function isAncestorOrSelf(a: { parent: unknown }, g: { parent: unknown }): boolean {
  for (let x: { parent: unknown } | undefined = g; x; x = x.parent as { parent: unknown } | undefined) if (x === a) return true;
  return false;
}

function hugeBytes(size: string): number {
  const m = /^(\d+)(KB|MB|GB)$/.exec(size);
  if (!m) return 4096;
  return Number(m[1]) * { KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] as "KB"];
}

function roundDown(v: number, unit: number): number {
  return Math.floor(v / unit) * unit;
}
