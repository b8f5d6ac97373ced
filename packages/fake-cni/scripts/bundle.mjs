// Bundles src/plugin/main.ts into one CommonJS file, dist/bin/fake-cni (and a copy fake-cni.cjs), with a node shebang and
// mode 0755. CommonJS so the file runs the same wherever it is copied (no package.json beside it
// in /opt/cni/bin); dist/bin/package.json marks the directory as CommonJS for the in-tree copy.
import { build } from "esbuild";
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "dist", "bin");
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "package.json"), JSON.stringify({ type: "commonjs" }) + "\n");
const outfile = join(outDir, "fake-cni");
await build({
  entryPoints: [join(root, "src", "plugin", "main.ts")],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  minify: true,
  legalComments: "none",
  banner: { js: "#!/usr/bin/env node" },
  logLevel: "warning",
});
chmodSync(outfile, 0o755);
// The same bundle under a .cjs name: what the native client execs from its own directory when no
// server answers, and what the server runs (`fake-cni.cjs serve`). .cjs is CommonJS wherever it lies.
copyFileSync(outfile, join(outDir, "fake-cni.cjs"));
chmodSync(join(outDir, "fake-cni.cjs"), 0o755);
