/**
 * Scenario run on the host and inside gVisor (one process, one sandbox): the native client with a
 * resident server. 200 concurrent ADDs through the server across 2 networks, the server killed
 * (SIGKILL, socket left stale) so the next calls fall back to Node, a new server replacing the
 * stale socket, 200 DELs through it, stop. Prints one JSON line with what it saw.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientPath, nodeBundlePath, pingCniServer, startCniServer, type CniServerHandle } from "../../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "fake-cni-fast-"));
const out: Record<string, unknown> = {};
const servers: CniServerHandle[] = [];

interface Run {
  code: number | null;
  stdout: string;
  route: string;
}
function call(cmd: string, id: string, conf: object): Promise<Run> {
  return new Promise((resolve) => {
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", FAKE_CNI_DEBUG: "1", CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_IFNAME: "eth0", CNI_NETNS: "/proc/self/ns/net" };
    const child = spawn(join(dir, "bin", "fake-cni"), [], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("close", (code) => resolve({ code, stdout, route: /: server /.test(stderr) ? "server" : /: fallback /.test(stderr) ? "fallback" : stderr }));
    child.stdin.end(JSON.stringify(conf));
  });
}
async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const res: R[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    for (let i = next++; i < items.length; i = next++) res[i] = await fn(items[i]!);
  }));
  return res;
}

try {
  const dataDir = join(dir, "ipam");
  const binDir = join(dir, "bin");
  mkdirSync(binDir);
  copyFileSync(clientPath(), join(binDir, "fake-cni"));
  copyFileSync(nodeBundlePath(), join(binDir, "fake-cni.cjs"));
  const net = (name: string, subnet: string) => ({ cniVersion: "1.1.0", name, type: "fake-cni", mode: "noop", ipam: { type: "fake-cni", subnet, dataDir } });
  const nets = [net("fa", "10.81.0.0/24"), net("fb", "10.82.0.0/24")];
  const s1 = await startCniServer({ dataDir });
  servers.push(s1);
  const jobs = Array.from({ length: 200 }, (_, i) => ({ id: `f${i}`, conf: nets[i % 2]! }));
  const adds = await pool(jobs, 50, (j) => call("ADD", j.id, j.conf));
  const ips = adds.map((r) => (JSON.parse(r.stdout || "{}") as { ips?: { address: string }[] }).ips?.[0]?.address);
  out.adds = { ok: adds.filter((r) => r.code === 0).length, viaServer: adds.filter((r) => r.route === "server").length, unique: new Set(ips).size };
  out.served1 = (await pingCniServer({ socketPath: s1.socketPath }))?.served;
  process.kill(s1.pid, "SIGKILL");
  servers.pop();
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(s1.pid, 0);
      await new Promise((r) => setTimeout(r, 20));
    } catch {
      break;
    }
  }
  out.staleSocket = existsSync(s1.socketPath) && statSync(s1.socketPath).isSocket();
  const fb = await call("ADD", "late", nets[0]!);
  out.afterCrash = { code: fb.code, route: fb.route, address: (JSON.parse(fb.stdout || "{}") as { ips?: { address: string }[] }).ips?.[0]?.address };
  const s2 = await startCniServer({ dataDir });
  servers.push(s2);
  const dels = await pool([...jobs, { id: "late", conf: nets[0]! }], 50, (j) => call("DEL", j.id, j.conf));
  out.dels = { ok: dels.filter((r) => r.code === 0).length, viaServer: dels.filter((r) => r.route === "server").length };
  await s2.stop();
  servers.pop();
  out.socketAfterStop = existsSync(s2.socketPath);
  out.left = ["fa", "fb"].flatMap((n) => readdirSync(join(dataDir, n)).filter((f) => !f.startsWith("last_reserved_ip.")));
} catch (e) {
  out.error = String((e as Error).stack ?? e);
} finally {
  for (const s of servers) await s.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
