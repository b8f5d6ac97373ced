// Scenario run on the host and inside gVisor (one sandbox per run): starts a runtime through the
// launcher's API, checks it answers, stops it, checks it is gone. Prints one JSON line.
// usage: node runtime.mjs <containerd|k3s|k3s-detached|k3s-agentless> <tmpdir> <port>
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import {
  buildK3sServerArgs, isPidAlive, kubeGet, probeContainerd, probeK3s, readK3sContainerdConfig, standinPath,
  startContainerd, startK3s, stopPid,
} from "../../dist/index.js";

const [mode, dir, portText] = process.argv.slice(2);
const port = Number(portText);
const out = { mode, kernel: release(), rootMagic: execFileSync("stat", ["-f", "-c", "%t", "/"]).toString().trim() };
const pidsOf = (pid) => {
  // the pid and its descendants, from /proc
  const all = {};
  for (const p of execFileSync("sh", ["-c", "cat /proc/[0-9]*/stat 2>/dev/null || true"]).toString().split("\n")) {
    const m = /^(\d+) \(.*\) \S (\d+)/.exec(p);
    if (m) (all[m[2]] ??= []).push(Number(m[1]));
  }
  const res = [];
  const walk = (q) => { res.push(q); for (const c of all[q] ?? []) walk(c); };
  walk(pid);
  return res;
};

if (mode === "containerd") {
  const stateDir = join(dir, "containerd");
  const h = await startContainerd({
    stateDir, cniBinDir: join(dir, "cni/bin"), cniConfDir: join(dir, "cni/net.d"), logFile: join(dir, "containerd.log"), readyTimeoutMs: 60_000,
  });
  out.kind = h.kind;
  out.socket = h.socket;
  out.pidAliveWhileUp = isPidAlive(h.pid);
  out.ctr = execFileSync("ctr", ["--address", h.socket, "version"]).toString();
  out.probe = await probeContainerd(h.socket);
  out.config = readFileSync(join(stateDir, "config.toml"), "utf8");
  out.plugins = execFileSync("ctr", ["--address", h.socket, "plugins", "ls"]).toString();
  await h.stop();
  out.pidAliveAfterStop = isPidAlive(h.pid);
  out.socketAfterStop = existsSync(h.socket);
  out.probeAfterStop = await probeContainerd(h.socket);
} else if (mode === "k3s" || mode === "k3s-detached" || mode === "k3s-agentless") {
  const kubeconfig = join(dir, "kube", "k3s.yaml");
  const dataDir = join(dir, "k3s");
  const args = buildK3sServerArgs("gvisor", { dataDir, kubeconfig, httpsPort: port, disableAgent: mode === "k3s-agentless", nodeName: "standin-node" });
  const env = { ...process.env, K3S_STANDIN_RUN_DIR: join(dir, "run") };
  const t0 = Date.now();
  const h = await startK3s({ binary: standinPath(), args, kubeconfig, env, logFile: join(dir, "k3s.log"), detached: mode === "k3s-detached", readyTimeoutMs: 60_000 });
  out.readyMs = Date.now() - t0;
  out.kind = h.kind;
  out.args = args;
  out.probe = await probeK3s(kubeconfig);
  out.livez = await kubeGet(kubeconfig, "/livez");
  out.version = JSON.parse((await kubeGet(kubeconfig, "/version")).body);
  out.kubeconfigMode = (statSync(kubeconfig).mode & 0o777).toString(8);
  out.token = readFileSync(join(dataDir, "server", "token"), "utf8");
  out.tree = pidsOf(h.pid);
  if (mode !== "k3s-agentless") {
    const sock = join(dir, "run", "containerd", "containerd.sock");
    out.ctr = execFileSync("ctr", ["--address", sock, "version"]).toString();
    out.k3sContainerd = await readK3sContainerdConfig(dataDir);
    out.config = readFileSync(out.k3sContainerd.path, "utf8");
  }
  if (mode === "k3s-detached") {
    // `down` from another process: only the pid is known there
    execFileSync(process.execPath, ["-e", `import("${new URL("../../dist/index.js", import.meta.url).href}").then(m => m.stopPid(${h.pid}, { graceMs: 15000 }))`]);
  } else {
    await h.stop();
  }
  out.aliveAfterStop = out.tree.filter((p) => isPidAlive(p));
  out.probeAfterStop = await probeK3s(kubeconfig);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
