#!/usr/bin/env node
// `pnpm test`: builds, runs every package's tests one package at a time (they mount, trace and
// start sandboxes), then prints one closing line that totals vitest's JSON reports:
// "N passed, N failed, N skipped". Exits non-zero when anything failed or no test ran.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const pkgs = ["packages/testbed", "packages/fake-cni", "packages/ptrace-shim", "packages/cgroupfs", "packages/k3s-launcher", "apps/hybrid", "test-e2e"];
const report = (p) => join(root, p, ".vitest-report.json");
for (const p of pkgs) rmSync(report(p), { force: true });

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: "1", TURBO_NO_UPDATE_NOTIFIER: "1" };
const turbo = (args) => spawnSync("pnpm", ["exec", "turbo", ...args], { cwd: root, stdio: "inherit", env }).status ?? 1;

let status = turbo(["run", "build"]);
if (status === 0) status = turbo(["run", "test", "--concurrency=1", "--continue", ...process.argv.slice(2)]);

let passed = 0, failed = 0, skipped = 0;
for (const p of pkgs) {
  if (!existsSync(report(p))) continue;
  const r = JSON.parse(readFileSync(report(p), "utf8"));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`${p}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status !== 0 || failed > 0 || passed === 0 ? 1 : 0);
