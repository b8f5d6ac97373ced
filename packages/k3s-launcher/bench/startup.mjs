// Time-to-ready of the runtime layer on the host and inside gVisor (9p root, no cgroups), through
// the launcher's API (test/scenarios/runtime.mjs). Prints a table and the gVisor/host ratios.
// usage: node bench/startup.mjs [rounds=3]   (needs `pnpm build` first, root and runsc)
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const rounds = Number(process.argv[2] ?? 3);
const pkg = fileURLToPath(new URL("..", import.meta.url));
const scenario = join(pkg, "test/scenarios/runtime.mjs");
const runsc = ["--network=none", "--overlay2=none", "do", "-force-overlay=false", "-cwd", pkg, "--"];

function once(target, mode, port) {
  const dir = mkdtempSync(join(tmpdir(), "k3sl-bench-"));
  try {
    const argv = [process.execPath, scenario, mode, dir, String(port)];
    const t0 = process.hrtime.bigint();
    const out = target === "host" ? execFileSync(argv[0], argv.slice(1), { cwd: pkg }) : execFileSync("runsc", [...runsc, ...argv], { cwd: pkg });
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const j = JSON.parse(out.toString().trim().split("\n").at(-1));
    return { readyMs: j.readyMs ?? null, wallMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const mode of ["containerd", "k3s"]) {
  const r = {};
  for (const target of ["host", "gvisor"]) {
    const samples = Array.from({ length: rounds }, (_, k) => once(target, mode, 18000 + k));
    r[target] = { wall: median(samples.map((s) => s.wallMs)), ready: mode === "k3s" ? median(samples.map((s) => s.readyMs)) : null };
  }
  rows.push({ mode, ...r });
}
for (const row of rows) {
  const readyPart = row.mode === "k3s" ? `  stand-in start→/readyz: host ${row.host.ready} ms, gvisor ${row.gvisor.ready} ms (x${(row.gvisor.ready / row.host.ready).toFixed(2)})` : "";
  console.log(`${row.mode.padEnd(10)} whole scenario (start, probe, stop): host ${row.host.wall.toFixed(0)} ms, gvisor ${row.gvisor.wall.toFixed(0)} ms (x${(row.gvisor.wall / row.host.wall).toFixed(2)})${readyPart}`);
}
console.log(JSON.stringify({ rounds, rows }));
