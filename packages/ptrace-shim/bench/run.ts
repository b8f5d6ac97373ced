/**
 * Overhead benchmark: the same workloads natively, under hybrid-shim, under
 * `strace -f --seccomp-bpf` trapping the same syscalls, and under PRoot doing the same
 * redirection, on the host and inside gVisor (runsc, 9p root). Prints medians and ratios to native.
 *
 *   pnpm bench                    # host, then gVisor
 *   pnpm bench -- --host-only     # skip gVisor
 *   node --import tsx/esm bench/run.ts --inner   # one target, JSON (what the outer run calls)
 *
 * Workloads: `find ROOT -type f -newer FILE` (ROOT = /usr/share on the host, /usr/share/doc in gVisor,
 * where a walk of /usr/share takes ~10 s natively) and `sysloop N` (statfs, uname, open/read/close,
 * stat, access, getpid, fstat per iteration).
 * Rule sets: (a) statfs/uname only (no path rewrite); (b) a real plan's rules (sandboxRules with a
 * cgroupfs redirect, /proc/sys shadow, kmsg, mountinfo/cgroup synthesis, an extra redirect), with
 * the default filter (dirfd-relative *at calls not stopped) and with `checkDirfdPaths` (every
 * path-taking syscall stopped and checked).
 * Runs are interleaved across configs; wall and CPU (user+sys via GNU time, tracer included) medians
 * are printed: on a shared machine the CPU figures are the steadier ones.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gvisorArgv } from "@hybrid/testbed";
import { helperPath, sandboxRules, tracerPath, writeRulesSync, type ShimRules } from "../src/index.js";

const PATH_SYSCALLS =
  "open,creat,openat,openat2,stat,lstat,newfstatat,statx,access,faccessat,faccessat2,readlink,readlinkat,mkdir,mkdirat,unlink,unlinkat,rmdir,rename,renameat,renameat2,link,linkat,symlink,symlinkat,chdir,execve,execveat,truncate,chmod,fchmodat,chown,lchown,fchownat,utimensat,mknod,mknodat,getxattr,lgetxattr,setxattr,lsetxattr,listxattr,llistxattr,removexattr,lremovexattr,inotify_add_watch";

interface Row {
  workload: string;
  config: string;
  /** median wall time and its ratio to native */
  ms: number;
  ratio: number;
  /** median CPU time (user+sys, tracer included) and its ratio to native */
  cpuMs: number;
  cpuRatio: number;
}

/** One run: wall ms (hrtime around the spawn) and CPU ms (user+sys of the command and all it waited
 * for, tracer included, from GNU time), which is much less disturbed by other load on a shared box. */
function timeOnce(argv: string[], timeFile: string): { wall: number; cpu: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-f", "%U %S", "-o", timeFile, ...argv], { stdio: "ignore" });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status ?? r.signal}`);
  const [u = "0", sy = "0"] = readFileSync(timeFile, "utf8").trim().split("\n").pop()?.split(" ") ?? [];
  return { wall, cpu: (Number(u) + Number(sy)) * 1000 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function inner(gvisor: boolean): Row[] {
  const dir = mkdtempSync(join(tmpdir(), "shim-bench-"));
  try {
    const runs = Number(process.env.BENCH_RUNS ?? (gvisor ? 3 : 5));
    const newer = join(dir, "newer");
    writeFileSync(newer, "");
    const cg = join(dir, "cgroup");
    const kubelet = join(dir, "kubelet");
    mkdirSync(cg);
    mkdirSync(kubelet);
    const a: ShimRules = {
      version: 1,
      statfs: [{ pathPrefix: "/sys/fs/cgroup", type: "cgroup2" }, { mount: "/", type: "ext4" }],
      uname: { release: "5.15.0", ifBelow: "4.11" },
    };
    const plan = sandboxRules({
      cgroupfsMount: cg,
      shadowDir: join(dir, "proc-sys"),
      kmsgPath: join(dir, "kmsg"),
      procsDir: join(dir, "procs"),
      runtimeDir: dir,
      extraRedirects: [{ from: "/var/lib/kubelet", to: kubelet }],
    });
    const files = { a: join(dir, "a.json"), b: join(dir, "b.json"), strict: join(dir, "b-strict.json") };
    writeRulesSync(files.a, a);
    writeRulesSync(files.b, plan);
    writeRulesSync(files.strict, { ...plan, checkDirfdPaths: true });
    const shim = tracerPath();
    const strace = (set: string) => ["strace", "-f", "--seccomp-bpf", "-e", `trace=${set}`, "-o", "/dev/null", "--"];
    const proot = ["proot", "-b", `${cg}:/sys/fs/cgroup`, "-b", `${kubelet}:/var/lib/kubelet`, "-b", `${join(dir, "kmsg")}:/dev/kmsg`,
      "-b", `${join(dir, "proc-sys", "vm", "overcommit_memory")}:/proc/sys/vm/overcommit_memory`];
    const configs: [string, string[]][] = [
      ["native", []],
      ["(a) shim statfs/uname", [shim, "--rules", files.a, "--"]],
      ["(a) strace same set", strace("statfs,fstatfs,uname")],
      ["(b) shim plan rules", [shim, "--rules", files.b, "--"]],
      ["(b) shim plan, checkDirfdPaths", [shim, "--rules", files.strict, "--"]],
      ["(b) strace same set", strace(`${PATH_SYSCALLS},statfs,fstatfs,uname`)],
      ["(b) proot same binds", proot],
    ];
    const workloads: [string, string[]][] = [
      [`find ${gvisor ? "/usr/share/doc" : "/usr/share"} -type f -newer FILE`, ["find", gvisor ? "/usr/share/doc" : "/usr/share", "-type", "f", "-newer", newer]],
      [`sysloop ${gvisor ? 2000 : 20000}`, [helperPath("sysloop"), String(gvisor ? 2000 : 20000)]],
    ];
    const rows: Row[] = [];
    for (const [wname, w] of workloads) {
      // runs are interleaved (config 1, 2, ..., 1, 2, ...) so load changes on a shared machine hit all alike
      const times = new Map<string, { wall: number; cpu: number }[]>(configs.map(([c]) => [c, []]));
      const tf = join(dir, "time.out");
      for (const [, prefix] of configs) timeOnce([...prefix, ...w], tf); // warm-up (page cache, dentries)
      for (let i = 0; i < runs; i++) {
        for (const [cname, prefix] of configs) {
          if (cname.includes("proot") && i >= Math.max(2, Math.ceil(runs / 2))) continue; // PRoot is slow: fewer runs
          times.get(cname)?.push(timeOnce([...prefix, ...w], tf));
        }
      }
      const med = (c: string, k: "wall" | "cpu") => median((times.get(c) ?? []).map((x) => x[k]));
      for (const [cname] of configs) {
        const ms = med(cname, "wall");
        const cpu = med(cname, "cpu");
        const r2 = (x: number) => Math.round(x * 100) / 100;
        rows.push({ workload: wname, config: cname, ms: Math.round(ms), ratio: r2(ms / med("native", "wall")), cpuMs: Math.round(cpu), cpuRatio: r2(cpu / Math.max(1, med("native", "cpu"))) });
        process.stderr.write(`  ${gvisor ? "gvisor" : "host"} ${wname} ${cname}: ${Math.round(ms)} ms wall, ${Math.round(cpu)} ms cpu\n`);
      }
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function print(title: string, rows: Row[]): void {
  console.log(`\n## ${title}`);
  console.log("| workload | config | wall ms (median) | wall × native | CPU ms (median) | CPU × native |");
  console.log("|---|---|---:|---:|---:|---:|");
  for (const r of rows) console.log(`| ${r.workload} | ${r.config} | ${r.ms} | ${r.ratio.toFixed(2)} | ${r.cpuMs} | ${r.cpuRatio.toFixed(2)} |`);
  for (const w of [...new Set(rows.map((r) => r.workload))]) {
    const get = (c: string) => rows.find((r) => r.workload === w && r.config === c)?.ms ?? NaN;
    const pr = get("(b) proot same binds");
    console.log(
      `- ${w} (wall): (b) shim ${(get("(b) strace same set") / get("(b) shim plan rules")).toFixed(1)}× faster than strace, ${(pr / get("(b) shim plan rules")).toFixed(1)}× faster than PRoot;` +
        ` with checkDirfdPaths ${(get("(b) strace same set") / get("(b) shim plan, checkDirfdPaths")).toFixed(1)}× / ${(pr / get("(b) shim plan, checkDirfdPaths")).toFixed(1)}×`,
    );
  }
}

const args = process.argv.slice(2);
if (args.includes("--inner")) {
  console.log(JSON.stringify(inner(args.includes("--gvisor"))));
} else {
  console.log(`# ptrace-shim overhead (${new Date().toISOString()}, ${process.env.BENCH_RUNS ?? "5 host / 3 gVisor"} runs, median)`);
  print("host", inner(false));
  if (!args.includes("--host-only")) {
    const pkg = fileURLToPath(new URL("..", import.meta.url));
    const [file, argv] = gvisorArgv(process.execPath, ["--import", "tsx/esm", join(pkg, "bench", "run.ts"), "--inner", "--gvisor"], { cwd: pkg });
    const r = spawnSync(file, argv, { cwd: pkg, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
    const last = (r.stdout ?? "").trim().split("\n").pop() ?? "";
    if (r.status !== 0 || !last.startsWith("[")) throw new Error(`gVisor run failed (exit ${r.status}): ${r.stdout}`);
    print("gVisor (runsc, 9p root)", JSON.parse(last) as Row[]);
  }
}
