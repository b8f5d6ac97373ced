/** Doctor probe: can this machine make a network namespace and a veth pair (veth mode)? */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { linkHelperPath } from "./install.js";

const pexec = promisify(execFile);

async function tryRun(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await pexec(cmd, args, { timeout: 15_000 });
    return { ok: true, out: `${r.stdout}${r.stderr}`.trim() };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: (err.stdout || err.stderr || err.message).trim() };
  }
}

/**
 * Makes a netns (bind-mounted by util-linux `unshare --net=FILE`) and, through veth mode's own
 * helper ({@link linkHelperPath}, rtnetlink), a veth pair with one end in it, addressed and up,
 * then removes both: exactly what a veth ADD and DEL do. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN).
 * @returns `veth` when every step works; else `noop` with the step that failed (gVisor: `ELOOP`
 *   opening the bind-mounted netns file; with /proc/self/ns/net RTM_NEWLINK veth is `EOPNOTSUPP`).
 *   Never throws.
 */
export async function probeCniMode(): Promise<{ mode: "veth" | "noop"; reason: string }> {
  const helper = linkHelperPath();
  if (!existsSync(helper)) return { mode: "noop", reason: `veth helper not built: ${helper} is missing (pnpm build; libmnl)` };
  const dir = await mkdtemp(join(tmpdir(), "fake-cni-probe-"));
  const nsFile = join(dir, "ns");
  const hostIf = `fcp${process.pid.toString(16).slice(-6)}${Math.floor(Math.random() * 256).toString(16)}`.slice(0, 15);
  let mounted = false;
  let made = false;
  try {
    await writeFile(nsFile, "");
    const ns = await tryRun("unshare", [`--net=${nsFile}`, "true"]);
    if (!ns.ok) return { mode: "noop", reason: `cannot create a network namespace: ${ns.out}` };
    mounted = true;
    const add = await tryRun(helper, ["add", nsFile, "eth0", hostIf, "1500", "0a:58:0a:ff:ff:02", "02:58:0a:ff:ff:01", "169.254.255.2/30", "-"]);
    if (!add.ok) return { mode: "noop", reason: `cannot create a veth pair: ${add.out.replace(/^err\t/, "").replace(/\t/g, " ")}` };
    made = true;
    return { mode: "veth", reason: "network namespace and an addressed veth pair created and removed" };
  } finally {
    if (made) await tryRun(helper, ["del", hostIf]);
    if (mounted) await tryRun("umount", [nsFile]);
    await rm(dir, { recursive: true, force: true });
  }
}
