// Builds the native parts (native/Makefile → dist/bin) with the machine's C compiler:
//   fake-cni-client  the fast path; without it installFakeCni installs the Node bundle alone
//   fake-cni-link    veth mode's rtnetlink helper (libmnl); without it veth mode is unavailable
//                    (`auto` answers as noop, `veth` fails with error 102)
// Without make or a compiler, or without libmnl's headers for the helper, the build goes on
// without that part and says so.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "dist", "bin");
const cc = process.env.CC ?? "cc";
const have = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
if (!have("make") || !have(cc.split(" ")[0])) {
  rmSync(join(bin, "fake-cni-client"), { force: true });
  rmSync(join(bin, "fake-cni-link"), { force: true });
  console.warn(`fake-cni: no make or C compiler (${cc}): native client and veth helper not built; the Node plugin is installed alone, noop mode only`);
} else {
  const make = (target) => spawnSync("make", ["-s", "-C", join(root, "native"), target], { stdio: "inherit" }).status;
  const client = make("../dist/bin/fake-cni-client");
  if (client !== 0) process.exit(client ?? 1);
  if (make("../dist/bin/fake-cni-link") !== 0) {
    rmSync(join(bin, "fake-cni-link"), { force: true });
    console.warn("fake-cni: veth helper (native/fake-cni-link.c) not built: install libmnl's headers (Debian: libmnl-dev); veth mode is unavailable until then");
  }
}
