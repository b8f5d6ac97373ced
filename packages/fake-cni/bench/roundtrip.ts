/**
 * ADD+DEL round trips, same run, same netns:
 *   reference  = Debian's loopback ADD + host-local ADD, host-local DEL + loopback DEL (4 execs)
 *   ref-ipam   = host-local ADD + DEL alone (2 execs)
 *   fake-noop  = fake-cni ADD + DEL, noop mode (2 execs)
 *   fake-veth  = fake-cni ADD + DEL, veth mode (2 execs, each starting its fake-cni-link helper)
 *   node-floor = `node empty.js` twice: the cost of starting Node, for context
 *   client-srv-noop / client-srv-veth = the native client (dist/bin/fake-cni-client) answered by a
 *                resident server (startCniServer on the configs' dataDir): the fast path
 *   client-fb-noop = the native client with no server for its dataDir: falls back to Node
 *   ref-ptp    = Debian's loopback + ptp (host-local IPAM) ADD, DEL: the reference plugin that makes a
 *                veth pair, the peer of veth mode's kernel work (context; not the goal's reference)
 *   kernel-veth = the veth helper (fake-cni-link, resident) alone: add (pair, address, route, up)
 *                + del, the kernel's floor for veth mode (RTM_DELLINK waits on an RCU barrier)
 * The goal (issue 3) is <= 2x reference for both modes, as the runtime sees them with the stack:
 * `client-srv-noop` and `client-srv-veth` (native client + resident server). Stops its server at the end.
 * Prints the median and p90 per round trip and the ratios against `reference`. Needs root
 * (netns, veth). Rounds: BENCH_ROUNDS (default 40). Run with `pnpm bench`.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientPath, linkHelperPath, pluginPath, startCniServer } from "../src/index.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40);
const REF = "/usr/lib/cni";
const dir = mkdtempSync(join(tmpdir(), "fake-cni-bench-"));
const ns = join(dir, "ns");
writeFileSync(ns, "");
writeFileSync(join(dir, "empty.js"), "");
execFileSync("unshare", [`--net=${ns}`, "true"]);

const ipam = (sub: string, data = "ipam") => ({ type: "host-local", ranges: [[{ subnet: sub }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: join(dir, data) });
const confs = {
  loopback: { cniVersion: "1.0.0", name: "lo", type: "loopback" },
  hostLocal: { cniVersion: "1.0.0", name: "ref", type: "host-local", ipam: ipam("10.200.0.0/16") },
  noop: { cniVersion: "1.0.0", name: "fnoop", type: "fake-cni", mode: "noop", ipam: ipam("10.201.0.0/16") },
  veth: { cniVersion: "1.0.0", name: "fveth", type: "fake-cni", mode: "veth", ipam: ipam("10.202.0.0/16") },
  srvNoop: { cniVersion: "1.0.0", name: "snoop", type: "fake-cni", mode: "noop", ipam: ipam("10.203.0.0/16", "ipam-srv") },
  srvVeth: { cniVersion: "1.0.0", name: "sveth", type: "fake-cni", mode: "veth", ipam: ipam("10.204.0.0/16", "ipam-srv") },
  fbNoop: { cniVersion: "1.0.0", name: "fbnoop", type: "fake-cni", mode: "noop", ipam: ipam("10.205.0.0/16", "ipam-fb") },
  ptp: { cniVersion: "1.0.0", name: "rptp", type: "ptp", ipam: ipam("10.206.0.0/16", "ipam-ptp") },
};
// One resident helper, asked a line at a time, as each server worker does.
const helper = spawn(linkHelperPath(), [], { stdio: ["pipe", "pipe", "inherit"] });
helper.stdout.setEncoding("utf8");
let helperBuf = "";
const helperWaiting: ((line: string) => void)[] = [];
helper.stdout.on("data", (d: string) => {
  helperBuf += d;
  for (let i = helperBuf.indexOf("\n"); i >= 0; i = helperBuf.indexOf("\n")) {
    helperWaiting.shift()?.(helperBuf.slice(0, i));
    helperBuf = helperBuf.slice(i + 1);
  }
});
const ask = (fields: string[]): Promise<void> =>
  new Promise((resolve, reject) => {
    helperWaiting.push((line) => (line.startsWith("ok") ? resolve() : reject(new Error(`fake-cni-link ${fields[0]}: ${line}`))));
    helper.stdin.write(`${fields.join("\t")}\n`);
  });
const client = clientPath();
const server = await startCniServer({ dataDir: join(dir, "ipam-srv") });

function exec(file: string, args: string[], command: string, conf: object, id: string): void {
  const r = spawnSync(file, args, {
    input: JSON.stringify(conf),
    env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: ns, CNI_IFNAME: "eth0", CNI_PATH: REF },
  });
  if (r.status !== 0) throw new Error(`${file} ${command} failed: ${r.stdout}${r.stderr}`);
}

const plugin = pluginPath();
const variants: Record<string, (id: string) => void | Promise<void>> = {
  reference: (id) => {
    exec(join(REF, "loopback"), [], "ADD", confs.loopback, id);
    exec(join(REF, "host-local"), [], "ADD", confs.hostLocal, id);
    exec(join(REF, "host-local"), [], "DEL", confs.hostLocal, id);
    exec(join(REF, "loopback"), [], "DEL", confs.loopback, id);
  },
  "ref-ipam": (id) => {
    exec(join(REF, "host-local"), [], "ADD", confs.hostLocal, id);
    exec(join(REF, "host-local"), [], "DEL", confs.hostLocal, id);
  },
  "fake-noop": (id) => {
    exec(plugin, [], "ADD", confs.noop, id);
    exec(plugin, [], "DEL", confs.noop, id);
  },
  "fake-veth": (id) => {
    exec(plugin, [], "ADD", confs.veth, id);
    exec(plugin, [], "DEL", confs.veth, id);
  },
  "client-srv-noop": (id) => {
    exec(client, [], "ADD", confs.srvNoop, id);
    exec(client, [], "DEL", confs.srvNoop, id);
  },
  "client-srv-veth": (id) => {
    exec(client, [], "ADD", confs.srvVeth, id);
    exec(client, [], "DEL", confs.srvVeth, id);
  },
  "client-fb-noop": (id) => {
    exec(client, [], "ADD", confs.fbNoop, id);
    exec(client, [], "DEL", confs.fbNoop, id);
  },
  "ref-ptp": (id) => {
    exec(join(REF, "loopback"), [], "ADD", confs.loopback, id);
    exec(join(REF, "ptp"), [], "ADD", confs.ptp, id);
    exec(join(REF, "ptp"), [], "DEL", confs.ptp, id);
    exec(join(REF, "loopback"), [], "DEL", confs.loopback, id);
  },
  "kernel-veth": async () => {
    await ask(["add", ns, "eth1", "fcbenchk", "1500", "0a:58:0a:cf:00:02", "02:58:0a:cf:00:01", "10.207.0.2/16", "0.0.0.0/0@10.207.0.1"]);
    await ask(["del", "fcbenchk"]);
  },
  "node-floor": () => {
    for (let i = 0; i < 2; i++) execFileSync(process.execPath, [join(dir, "empty.js")], { env: { PATH: process.env.PATH } });
  },
};

const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
try {
  for (const v of Object.values(variants)) await v("warmup"); // warm caches
  for (let i = 0; i < ROUNDS; i++) {
    // rotate the order each round so load changes hit every variant alike
    const names = Object.keys(variants);
    const order = [...names.slice(i % names.length), ...names.slice(0, i % names.length)];
    for (const name of order) {
      const t0 = process.hrtime.bigint();
      await variants[name]!(`bench${i}`);
      times[name]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
} finally {
  await server.stop();
  helper.stdin.end();
  spawnSync("umount", [ns]);
  rmSync(dir, { recursive: true, force: true });
}

const stat = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return { median: s[Math.floor(s.length / 2)]!, p90: s[Math.floor(s.length * 0.9)]! };
};
const ref = stat(times.reference!).median;
console.log(`fake-cni ADD+DEL round trips, ${ROUNDS} rounds, node ${process.version}, load ${(await import("node:os")).loadavg()[0]!.toFixed(2)}`);
console.log("variant           median ms   p90 ms   ratio vs reference (loopback + host-local)");
for (const [name, t] of Object.entries(times)) {
  const s = stat(t);
  console.log(`${name.padEnd(17)} ${s.median.toFixed(1).padStart(9)} ${s.p90.toFixed(1).padStart(8)}   ${(s.median / ref).toFixed(2)}x`);
}
const ratio = (v: string) => stat(times[v]!).median / ref;
for (const v of ["client-srv-noop", "client-srv-veth"]) {
  const r = ratio(v);
  console.log(`goal <= 2.00x reference: ${v} (native client + server) is ${r.toFixed(2)}x: ${r <= 2 ? "met" : "NOT met"}`);
}
console.log(`  without the fast path: fake-noop (Node per call) ${ratio("fake-noop").toFixed(2)}x, client-fb-noop (client, no server) ${ratio("client-fb-noop").toFixed(2)}x, fake-veth ${ratio("fake-veth").toFixed(2)}x`);
const kernel = stat(times["kernel-veth"]!).median;
console.log(`  veth: the kernel's part (kernel-veth) is ${kernel.toFixed(1)} ms of client-srv-veth's ${stat(times["client-srv-veth"]!).median.toFixed(1)} ms; Debian's ptp (ref-ptp) ${ratio("ref-ptp").toFixed(2)}x`);
