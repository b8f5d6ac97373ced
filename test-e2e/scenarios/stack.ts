/**
 * The walking-skeleton scenario (issue 2, point 6), run as one process on the host or inside a
 * runsc sandbox: doctor, up, a second up, checks under `hybrid exec`, a CNI ADD/DEL through the
 * installed plugin, the runtime's API, status, a soak, down, and what is left afterwards.
 * Prints one JSON line with everything observed; the vitest side asserts.
 *
 * argv: STATE_DIR SOAK_DURATION [K3S_BIN]  (with K3S_BIN, `up --k3s-bin K3S_BIN`)
 */
import { execa } from "execa";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { hybrid, inGvisor, mountPoints, newNetns, processes } from "./lib.js";

const stateDir = process.argv[2]!;
const soakDuration = process.argv[3] ?? "1m";
const k3sBin = process.argv[4];
const out: Record<string, unknown> = { gvisor: await inGvisor() };

const mountsBefore = mountPoints();
const procsBefore = processes();

const doctor = await hybrid(stateDir, ["doctor", "--json"]);
out.doctor = { exitCode: doctor.exitCode, findings: doctor.exitCode === 0 ? JSON.parse(doctor.stdout) : doctor.stderr };

const up = await hybrid(stateDir, ["up", ...(k3sBin ? ["--k3s-bin", k3sBin] : [])]);
out.up = { exitCode: up.exitCode, ms: up.ms, stdout: up.stdout.slice(-3000), stderr: up.stderr.slice(-3000) };

if (up.exitCode === 0) {
  const stateBefore = readFileSync(join(stateDir, "state.json"), "utf8");
  const again = await hybrid(stateDir, ["up"]);
  out.secondUp = { exitCode: again.exitCode, stdout: again.stdout, unchanged: readFileSync(join(stateDir, "state.json"), "utf8") === stateBefore };

  const ex = async (args: string[]) => {
    const r = await hybrid(stateDir, ["exec", "--", ...args]);
    return { exitCode: r.exitCode, stdout: r.stdout.trim(), stderr: r.stderr.trim().slice(-500) };
  };
  out.execRootType = await ex(["stat", "-f", "-c", "%T", "/"]);
  out.plainRootType = (await execa("stat", ["-f", "-c", "%T", "/"], { reject: false })).stdout.trim();
  out.execCgroupMagic = await ex(["stat", "-f", "-c", "%t", "/sys/fs/cgroup"]);
  out.execExitCode = await ex(["sh", "-c", "exit 42"]);

  const state = JSON.parse(stateBefore) as { layers: { name: string; data: Record<string, unknown> }[] };
  const cni = state.layers.find((l) => l.name === "fake-cni");
  if (cni) {
    // A CNI ADD and DEL through the installed plugin executable, as a runtime calls it.
    const conflist = JSON.parse(readFileSync(String(cni.data.confFile), "utf8")) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
    const plugin = conflist.plugins.find((p) => String(p.type).includes("fake")) ?? conflist.plugins[0]!;
    const config = JSON.stringify({ ...plugin, name: conflist.name, cniVersion: conflist.cniVersion });
    const veth = cni.data.mode === "veth";
    const id = `e2e-${process.pid}`;
    const holder = veth ? await newNetns() : undefined;
    const netns = holder ? holder.path : `/proc/${process.pid}/ns/net`;
    const env = { CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: "eth0", CNI_PATH: String(cni.data.binDir) };
    const exe = join(String(cni.data.binDir), String(plugin.type));
    const add = await execa(exe, [], { input: config, env: { ...env, CNI_COMMAND: "ADD" }, reject: false });
    const ipamDir = String(cni.data.dataDir);
    const listRecords = () => (existsSync(ipamDir) ? readdirSync(ipamDir, { recursive: true }).map(String) : []);
    const recordsAfterAdd = listRecords();
    const del = await execa(exe, [], { input: config, env: { ...env, CNI_COMMAND: "DEL" }, reject: false });
    const recordsAfterDel = listRecords();
    await holder?.release();
    let addResult: unknown = add.stdout;
    try {
      addResult = JSON.parse(String(add.stdout));
    } catch {
      /* keep text */
    }
    out.cni = { mode: cni.data.mode, addExit: add.exitCode, addResult, addStderr: String(add.stderr), delExit: del.exitCode, delStdout: String(del.stdout), recordsAfterAdd, recordsAfterDel };
  }

  const rt = state.layers.find((l) => l.name === "runtime");
  if (rt?.data.kind === "containerd") {
    const v = await execa("ctr", ["--address", String(rt.data.socket), "version"], { reject: false });
    out.runtime = { kind: "containerd", exitCode: v.exitCode, stdout: String(v.stdout), stderr: String(v.stderr) };
  } else if (rt) {
    const dataDir = String(rt.data.dataDir);
    const cniConf = join(dataDir, "agent", "etc", "cni", "net.d");
    out.runtime = {
      kind: rt.data.kind,
      kubeconfig: existsSync(String(rt.data.kubeconfig)),
      containerdConfig: existsSync(join(dataDir, "agent", "etc", "containerd", "config.toml")),
      cniConfInK3sDir: existsSync(cniConf) ? readdirSync(cniConf) : [],
      createdHostPaths: rt.data.createdHostPaths,
    };
  }

  const status = await hybrid(stateDir, ["status", "--json"]);
  out.status = { exitCode: status.exitCode, json: status.exitCode === 0 || status.exitCode === 1 ? JSON.parse(status.stdout) : status.stderr };

  const soakReport = join(stateDir, "..", `soak-${process.pid}.json`);
  const { parseDuration } = await import("@hybrid/cli");
  const soak = await hybrid(stateDir, ["soak", "--duration", soakDuration, "--interval", "10s", "--report", soakReport], {
    timeoutMs: (parseDuration(soakDuration) + 300) * 1000,
  });
  out.soak = { exitCode: soak.exitCode, signal: soak.signal, stdout: soak.stdout, report: existsSync(soakReport) ? JSON.parse(readFileSync(soakReport, "utf8")) : null };
  await execa("rm", ["-f", soakReport]);

  const pids = state.layers.map((l) => Number(l.data.pid)).filter((p) => p > 0);
  const down = await hybrid(stateDir, ["down"]);
  out.down = { exitCode: down.exitCode, ms: down.ms, stdout: down.stdout.slice(-2000), stderr: down.stderr.slice(-2000) };
  out.recordedPids = pids;
}

// What is left: mounts and processes compared with before `up`.
await new Promise((r) => setTimeout(r, 500));
const mountsAfter = mountPoints();
const procsAfter = processes();
out.mountsAdded = mountsAfter.filter((m) => !mountsBefore.includes(m));
out.mountsRemoved = mountsBefore.filter((m) => !mountsAfter.includes(m));
out.recordedPidsAlive = ((out.recordedPids as number[] | undefined) ?? []).filter((p) => procsAfter.has(p));
out.processesLeft = [...procsAfter]
  .filter(([pid, cmd]) => !procsBefore.has(pid) && pid !== process.pid && !cmd.includes("dmesg"))
  .map(([pid, cmd]) => `${pid} ${cmd}`);
out.stackProcessesLeft = [...procsAfter].filter(([pid, cmd]) => pid !== process.pid && cmd.includes(stateDir)).map(([pid, cmd]) => `${pid} ${cmd}`);
out.stateDirLeft = existsSync(stateDir);
out.stateParentLeft = existsSync(dirname(stateDir)); // the test passes a state dir whose parent up had to create
out.hostPathsLeft = (((out.runtime as { createdHostPaths?: string[] } | undefined)?.createdHostPaths) ?? []).filter((p) => existsSync(p));
process.stdout.write(JSON.stringify(out) + "\n");
