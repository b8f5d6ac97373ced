/**
 * The test settings every package shares (astro-style: one base, per-package configs extend it).
 * Files run one at a time: tests mount FUSE filesystems, trace processes and start sandboxes.
 * Each package writes vitest's JSON report for the closing summary of `pnpm test`.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    reporters: ["default", "json"],
    outputFile: { json: ".vitest-report.json" },
  },
});
