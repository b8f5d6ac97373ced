// Builds the native client (native/fake-cni-client.c → dist/bin/fake-cni-client) with the
// machine's C compiler through `make -C native`. Without make or a compiler the build goes on
// without it (installFakeCni then installs the Node bundle alone) and says so.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cc = process.env.CC ?? "cc";
const have = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
if (!have("make") || !have(cc.split(" ")[0])) {
  rmSync(join(root, "dist", "bin", "fake-cni-client"), { force: true });
  console.warn(`fake-cni: no make or C compiler (${cc}): native client not built; the Node plugin is installed alone`);
} else {
  const r = spawnSync("make", ["-s", "-C", join(root, "native")], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
