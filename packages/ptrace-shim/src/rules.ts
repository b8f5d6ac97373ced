/**
 * The tracer's rules: one JSON document (schema below, also in README.md) validated here with zod
 * and again by the C tracer when it loads the file.
 */
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";

/**
 * Filesystem magic numbers (`statfs().f_type`), from the kernel's include/uapi/linux/magic.h
 * (see shared/facts/cgroup-v2-and-magic.md).
 */
export const FS_MAGIC = {
  ext2: 0xef53,
  ext3: 0xef53,
  ext4: 0xef53,
  xfs: 0x58465342,
  btrfs: 0x9123683e,
  tmpfs: 0x01021994,
  v9fs: 0x01021997,
  "9p": 0x01021997,
  fuse: 0x65735546,
  overlayfs: 0x794c7630,
  overlay: 0x794c7630,
  cgroup2: 0x63677270,
  cgroup: 0x0027e0eb,
  proc: 0x9fa0,
  sysfs: 0x62656572,
} as const;

/** A filesystem named in {@link FS_MAGIC}. */
export type FsName = keyof typeof FS_MAGIC;
const FS_NAMES = Object.keys(FS_MAGIC) as [FsName, ...FsName[]];

/** A filesystem type: a 32-bit magic number or a name from {@link FS_MAGIC}. */
export const FsTypeSchema = z.union([z.number().int().min(0).max(0xffffffff), z.enum(FS_NAMES)]);
export type FsType = z.infer<typeof FsTypeSchema>;

const AbsPath = z.string().min(1).startsWith("/", { message: "must be an absolute path" });
const MountPoint = AbsPath.refine((p) => !/[\s]/.test(p), { message: "must not contain blanks" });

/**
 * One statfs/fstatfs rewrite. The first rule whose given conditions all hold sets `f_type`:
 * - `pathPrefix`: the path passed to statfs (made absolute; or the path it was redirected to),
 *   or the path of the fd given to fstatfs (`/proc/<tid>/fd/<fd>`), lies under this prefix;
 * - `mount`: the file lies on the filesystem mounted at this directory (same `st_dev`; a directory
 *   that is not a mount point never matches);
 * - `fromType`: the real `f_type` equals this.
 */
export const StatfsRuleSchema = z
  .strictObject({ pathPrefix: AbsPath.optional(), mount: AbsPath.optional(), fromType: FsTypeSchema.optional(), type: FsTypeSchema })
  .refine((r) => r.pathPrefix !== undefined || r.mount !== undefined || r.fromType !== undefined, {
    message: "a statfs rule needs at least one of pathPrefix, mount, fromType",
  });
export type StatfsRule = z.infer<typeof StatfsRuleSchema>;

/** A path prefix redirection: `from` and every path under it map to `to` + the rest. */
export const RedirectSchema = z.strictObject({
  from: AbsPath.refine((p) => p.replace(/\/+$/, "") !== "", { message: "must not be / (that would redirect everything)" }),
  to: AbsPath,
});
export type Redirect = z.infer<typeof RedirectSchema>;

/** A mountinfo line to change (`rewrite`: only if that mount point exists). */
export const MountRewriteSchema = z.strictObject({
  mountPoint: MountPoint,
  fsType: z.string().min(1).optional(),
  source: z.string().min(1).optional(),
  options: z.string().min(1).optional(),
  superOptions: z.string().min(1).optional(),
});
/** A mountinfo line to show (`add`: replaces the line of that mount point, or is appended; `like`
 * copies major:minor and root from the real mount at that path, so stat and mountinfo agree). */
export const MountAddSchema = z.strictObject({
  mountPoint: MountPoint,
  fsType: z.string().min(1),
  source: z.string().min(1),
  options: z.string().min(1).optional(),
  superOptions: z.string().min(1).optional(),
  like: AbsPath.optional(),
});

/** The rules file (version 1). Every section is optional; absent sections cost nothing. */
export const ShimRulesSchema = z.strictObject({
  version: z.literal(1),
  statfs: z.array(StatfsRuleSchema).optional(),
  redirects: z.array(RedirectSchema).optional(),
  procSys: z.strictObject({ shadowDir: AbsPath, createOnWrite: z.boolean().optional() }).optional(),
  kmsg: AbsPath.optional(),
  mountinfo: z
    .strictObject({
      rewrite: z.array(MountRewriteSchema).optional(),
      add: z.array(MountAddSchema).optional(),
      hide: z.array(AbsPath).optional(),
    })
    .optional(),
  cgroup: z.strictObject({ procsDir: AbsPath.optional() }).optional(),
  uname: z
    .strictObject({
      release: z.string().min(1).max(64),
      ifBelow: z.string().regex(/^\d+\.\d+/, { message: "must look like MAJOR.MINOR" }).optional(),
    })
    .optional(),
  runtimeDir: AbsPath.optional(),
  checkDirfdPaths: z.boolean().optional(),
  bpfCgroupDevice: z.enum(["emulate", "passthrough"]).optional(),
  mountPropagation: z.enum(["ignore-unsupported", "passthrough"]).optional(),
});

/**
 * The tracer's rules. Sections:
 * - `statfs`: f_type rewrites ({@link StatfsRule}), first match wins.
 * - `redirects`: prefix map applied to the path arguments of the path-taking syscalls
 *   (open/openat/openat2/creat, stat family, statx, access/faccessat(2), readlink(at), mkdir(at),
 *   unlink(at), rmdir, rename(at/2), link(at), symlink(at) link path, chdir, execve(at), truncate,
 *   chmod/chown family, utimensat, mknod(at), xattr family, inotify_add_watch, statfs);
 *   the longest matching `from` wins.
 * - `procSys.shadowDir`: `/proc/sys/<key>` is served from `<shadowDir>/<key>` when that file exists;
 *   opening a key for writing creates it there (unless `createOnWrite: false`) and truncates it.
 * - `kmsg`: `/dev/kmsg` is redirected to this file.
 * - `mountinfo`: `/proc/{self,thread-self,<pid>}/mountinfo`, `/proc/mounts`, `/proc/<pid>/mounts`
 *   are generated from the real one: `hide` drops mounts at or under those paths, then `rewrite`
 *   and `add` apply.
 * - `cgroup`: `/proc/{self,thread-self,<pid>}/cgroup` read `<procsDir>/<tgid>` (cgroup v2 content
 *   `0::/path\n`, written by the cgroupfs daemon), or `0::/\n` when there is none.
 * - `uname`: `uname(2)` reports `release` (only when the real release is below `ifBelow`, if given).
 * - `runtimeDir`: where the tracer keeps synthesized files while they are opened (default `$TMPDIR`);
 *   when set, dirs of killed tracers there are swept (do not share it across pid namespaces).
 * - `checkDirfdPaths`: also stop `*at` syscalls whose dirfd is a real descriptor (default false: the
 *   seccomp filter stops them only for AT_FDCWD, so an absolute path passed with a real dirfd is not
 *   rewritten; relative ones never need to be).
 * - `bpfCgroupDevice`: `"emulate"` makes runc's cgroup v2 device controller work on the emulated
 *   cgroupfs (and in gVisor, which has no bpf): `bpf(BPF_PROG_LOAD)` of a
 *   `BPF_PROG_TYPE_CGROUP_DEVICE` program returns a memfd named `hybrid-shim-bpf-cgroup-device`
 *   instead of a program, `BPF_PROG_ATTACH`/`BPF_PROG_DETACH` of such an fd succeed, and
 *   `BPF_PROG_QUERY` (`BPF_CGROUP_DEVICE`) on a directory reported as cgroup2 returns zero programs;
 *   other bpf calls run untouched. Device rules are then not enforced. Default `"passthrough"`.
 * - `mountPropagation`: `"ignore-unsupported"` makes a propagation-only `mount(2)` (flags: one of
 *   `MS_SHARED`/`MS_PRIVATE`/`MS_SLAVE`/`MS_UNBINDABLE`, optionally `MS_REC`/`MS_SILENT`) that fails
 *   with EINVAL return 0. gVisor refuses these (runc's `mount("", "/", MS_SLAVE|MS_REC)`); it has no
 *   mount propagation between namespaces to change anyway. Default `"passthrough"`.
 */
export type ShimRules = z.infer<typeof ShimRulesSchema>;

/** Thrown when rules do not match the schema; `issues` lists every problem with its path. */
export class ShimRulesError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid ptrace-shim rules:\n  ${issues.join("\n  ")}`);
    this.name = "ShimRulesError";
  }
}

/**
 * Validates rules against the schema.
 * @returns the rules (as parsed, unknown keys rejected).
 * @throws ShimRulesError naming each offending field.
 */
export function validateRules(rules: unknown): ShimRules {
  const r = ShimRulesSchema.safeParse(rules);
  if (!r.success) {
    throw new ShimRulesError(r.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(top level)"}: ${i.message}`));
  }
  return r.data;
}

/** The real last capability (`/proc/sys/kernel/cap_last_cap`), 40 (CAP_CHECKPOINT_RESTORE) when unreadable (gVisor). */
export function realCapLastCap(): number {
  try {
    const n = Number.parseInt(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8").trim(), 10);
    return Number.isFinite(n) && n > 0 ? n : 40;
  } catch {
    return 40;
  }
}

/**
 * Default `/proc/sys` shadow values (key relative to /proc/sys → value, newline added on write).
 * Sources: kubelet `setupKernelTunables` (vm/overcommit_memory=1, vm/panic_on_oom=0, kernel/panic=10,
 * kernel/panic_on_oops=1, kernel/keys/root_maxkeys=1000000, kernel/keys/root_maxbytes=25000000),
 * runc init (kernel/cap_last_cap), kube-proxy (conntrack, route_localnet, bridge-nf-call-*, ip_forward),
 * kubelet/containerd inotify and pid limits.
 */
export function defaultProcSys(): Record<string, string> {
  return {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
    "kernel/cap_last_cap": String(realCapLastCap()),
    "kernel/pid_max": "4194304",
    "net/netfilter/nf_conntrack_max": "131072",
    "net/netfilter/nf_conntrack_tcp_timeout_established": "86400",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait": "3600",
    "net/ipv4/ip_forward": "1",
    "net/ipv4/conf/all/route_localnet": "1",
    "net/ipv6/conf/all/forwarding": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
    "net/bridge/bridge-nf-call-ip6tables": "1",
    "fs/inotify/max_user_watches": "524288",
    "fs/inotify/max_user_instances": "8192",
  };
}

/** Options of {@link sandboxRules}. */
export interface SandboxRulesOptions {
  /** Where the cgroupfs FUSE filesystem is mounted; `/sys/fs/cgroup` is redirected there unless equal. */
  cgroupfsMount?: string;
  /** The cgroupfs daemon's membership dir (`<procsDir>/<tgid>` = `0::/path\n`). */
  procsDir?: string;
  /** The `/proc/sys` shadow store directory. */
  shadowDir: string;
  /** File that stands in for `/dev/kmsg`. */
  kmsgPath?: string;
  /** What the root filesystem reports in statfs and mountinfo (default ext4). */
  rootFsType?: "ext4";
  /** Release uname reports (default `5.15.0`). */
  unameRelease?: string;
  /** Only override uname when the real release is below this (default `4.11`, containerd CRI's limit; `null` = always). */
  unameIfBelow?: string | null;
  /** More path redirections, applied after the built-in ones (longest `from` wins). */
  extraRedirects?: Redirect[];
  /** Where the tracer writes synthesized files while they are opened (default `$TMPDIR`); the
   * stack should pass `<stateDir>/shim/run` so leftovers of killed tracers are swept. */
  runtimeDir?: string;
  /** runc's cgroup v2 device programs (see {@link ShimRules} `bpfCgroupDevice`; default `"emulate"`). */
  bpfCgroupDevice?: "emulate" | "passthrough";
  /** Propagation-only mounts refused with EINVAL (gVisor) succeed (see {@link ShimRules} `mountPropagation`; default `"passthrough"`). */
  mountPropagation?: "ignore-unsupported" | "passthrough";
}

/**
 * The preset the stack runs k3s/containerd/runc under:
 * - statfs: `/sys/fs/cgroup` (and files on the cgroupfs mount, by path and by fd) → cgroup2
 *   (runc/containerd/kubelet detect v2 by `statfs("/sys/fs/cgroup")`, runc checks opened cgroup
 *   files with fstatfs); files on the root mount (9p in gVisor) → ext4 (cAdvisor's accepted types);
 * - redirects: `/sys/fs/cgroup` → `cgroupfsMount`, plus `extraRedirects`;
 * - `/proc/sys` shadow, `/dev/kmsg` stand-in, `/proc/*\/cgroup` from `procsDir`;
 * - mountinfo: root shown as ext4 on `/dev/root`, the host's `/sys/fs/cgroup` tree and the real
 *   cgroupfs mount hidden, one cgroup2 mount at `/sys/fs/cgroup` (device of the cgroupfs mount);
 * - uname release `5.15.0` when the kernel reads below 4.11 (gVisor says 4.4.0);
 * - bpf: runc's `BPF_PROG_TYPE_CGROUP_DEVICE` program load/attach/detach/query emulated
 *   (`bpfCgroupDevice: "emulate"`; devices are not enforced).
 */
export function sandboxRules(opts: SandboxRulesOptions): ShimRules {
  const root = opts.rootFsType ?? "ext4";
  const cg = opts.cgroupfsMount?.replace(/\/+$/, "") || undefined;
  const statfs: StatfsRule[] = [{ pathPrefix: "/sys/fs/cgroup", type: "cgroup2" }];
  if (cg && cg !== "/sys/fs/cgroup") statfs.push({ pathPrefix: cg, type: "cgroup2" }, { mount: cg, type: "cgroup2" });
  statfs.push({ mount: "/", type: root });
  const redirects: Redirect[] = [];
  if (cg && cg !== "/sys/fs/cgroup") redirects.push({ from: "/sys/fs/cgroup", to: cg });
  redirects.push(...(opts.extraRedirects ?? []));
  const hide = ["/sys/fs/cgroup", ...(cg && cg !== "/sys/fs/cgroup" ? [cg] : [])];
  const ifBelow = opts.unameIfBelow === undefined ? "4.11" : opts.unameIfBelow;
  return validateRules({
    version: 1,
    statfs,
    ...(redirects.length ? { redirects } : {}),
    procSys: { shadowDir: opts.shadowDir },
    ...(opts.kmsgPath ? { kmsg: opts.kmsgPath } : {}),
    mountinfo: {
      rewrite: [{ mountPoint: "/", fsType: root, source: "/dev/root", superOptions: "rw" }],
      add: [
        {
          mountPoint: "/sys/fs/cgroup",
          fsType: "cgroup2",
          source: "cgroup2",
          options: "rw,nosuid,nodev,noexec,relatime",
          superOptions: "rw,nsdelegate",
          ...(cg ? { like: cg } : {}),
        },
      ],
      hide,
    },
    cgroup: opts.procsDir ? { procsDir: opts.procsDir } : {},
    uname: { release: opts.unameRelease ?? "5.15.0", ...(ifBelow ? { ifBelow } : {}) },
    ...(opts.runtimeDir ? { runtimeDir: opts.runtimeDir } : {}),
    bpfCgroupDevice: opts.bpfCgroupDevice ?? "emulate",
    ...(opts.mountPropagation === "ignore-unsupported" ? { mountPropagation: "ignore-unsupported" as const } : {}),
  });
}

/**
 * Writes the shadow store's default keys that are not there yet (values already present, e.g.
 * written by the kubelet earlier, are kept).
 * @returns the keys written.
 */
export async function seedShadowDir(shadowDir: string, values: Record<string, string> = defaultProcSys()): Promise<string[]> {
  const written: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (key.startsWith("/") || key.split("/").includes("..")) throw new Error(`bad /proc/sys key ${JSON.stringify(key)}`);
    const file = join(shadowDir, key);
    try {
      await stat(file);
      continue;
    } catch {
      /* missing: seed it */
    }
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, value.endsWith("\n") ? value : `${value}\n`, { flag: "wx" }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
    written.push(key);
  }
  return written;
}

/**
 * Validates `rules` and writes them to `file` atomically (temp file + rename), then seeds the
 * `/proc/sys` shadow dir with {@link defaultProcSys} (existing keys kept) and creates the kmsg
 * stand-in file if missing.
 * @throws ShimRulesError on invalid rules (nothing is written then).
 */
export async function writeRules(file: string, rules: ShimRules, opts: { procSysDefaults?: Record<string, string> } = {}): Promise<void> {
  const valid = validateRules(rules);
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(valid, null, 2)}\n`);
  await rename(tmp, file);
  if (valid.procSys) {
    await mkdir(valid.procSys.shadowDir, { recursive: true });
    await seedShadowDir(valid.procSys.shadowDir, opts.procSysDefaults ?? defaultProcSys());
  }
  if (valid.kmsg) {
    await mkdir(dirname(valid.kmsg), { recursive: true });
    await writeFile(valid.kmsg, "", { flag: "a" });
  }
}

/** Synchronous {@link writeRules} (used by spawnTraced, which returns its handle at once). */
export function writeRulesSync(file: string, rules: ShimRules, opts: { procSysDefaults?: Record<string, string> } = {}): void {
  const valid = validateRules(rules);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(valid, null, 2)}\n`);
  renameSync(tmp, file);
  if (valid.procSys) {
    for (const [key, value] of Object.entries(opts.procSysDefaults ?? defaultProcSys())) {
      const f = join(valid.procSys.shadowDir, key);
      if (existsSync(f)) continue;
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, value.endsWith("\n") ? value : `${value}\n`);
    }
  }
  if (valid.kmsg) {
    mkdirSync(dirname(valid.kmsg), { recursive: true });
    writeFileSync(valid.kmsg, "", { flag: "a" });
  }
}

/** Reads and validates a rules file. @throws ShimRulesError, or the fs/JSON error. */
export async function readRules(file: string): Promise<ShimRules> {
  return validateRules(JSON.parse(await readFile(file, "utf8")));
}

/**
 * Fluent rules builder: `new RulesBuilder().statfs({ mount: "/", type: "ext4" }).redirect("/a", "/b").build()`.
 * `build()` validates and throws {@link ShimRulesError}.
 */
export class RulesBuilder {
  private r: ShimRules = { version: 1 };
  /** Adds a statfs/fstatfs f_type rewrite (first match wins). */
  statfs(rule: StatfsRule): this {
    (this.r.statfs ??= []).push(rule);
    return this;
  }
  /** Adds a path prefix redirection. */
  redirect(from: string, to: string): this {
    (this.r.redirects ??= []).push({ from, to });
    return this;
  }
  /** Serves /proc/sys keys from a shadow dir. */
  procSys(shadowDir: string, createOnWrite = true): this {
    this.r.procSys = { shadowDir, ...(createOnWrite ? {} : { createOnWrite }) };
    return this;
  }
  /** Redirects /dev/kmsg to a file. */
  kmsg(path: string): this {
    this.r.kmsg = path;
    return this;
  }
  /** Synthesizes mountinfo/mounts. */
  mountinfo(m: NonNullable<ShimRules["mountinfo"]>): this {
    this.r.mountinfo = m;
    return this;
  }
  /** Serves /proc/<pid>/cgroup from the cgroupfs membership dir. */
  cgroup(procsDir?: string): this {
    this.r.cgroup = procsDir ? { procsDir } : {};
    return this;
  }
  /** Overrides the uname release (only below `ifBelow` if given). */
  uname(release: string, ifBelow?: string): this {
    this.r.uname = { release, ...(ifBelow ? { ifBelow } : {}) };
    return this;
  }
  /** Where synthesized files are kept while opened. */
  runtimeDir(dir: string): this {
    this.r.runtimeDir = dir;
    return this;
  }
  /** The validated rules. @throws ShimRulesError */
  build(): ShimRules {
    return validateRules(structuredClone(this.r));
  }
}
