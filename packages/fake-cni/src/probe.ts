/** Doctor probe: can this machine make a network namespace and a veth pair (veth mode)? */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const pexec = promisify(execFile);

async function tryRun(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await pexec(cmd, args, { timeout: 15_000 });
    return { ok: true, out: `${r.stdout}${r.stderr}`.trim() };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return { ok: false, out: (err.stderr || err.message).trim() };
  }
}

/**
 * Tries to make a netns (bind-mounted by `unshare --net=FILE`) and a veth pair with one end in
 * it, then removes both. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN), iproute2 and util-linux.
 * @returns `veth` when both work; else `noop` with the step that failed (gVisor: `ip link add`
 *   answers `Command "add" is unknown` — no rtnetlink link creation). Never throws.
 */
export async function probeCniMode(): Promise<{ mode: "veth" | "noop"; reason: string }> {
  const dir = await mkdtemp(join(tmpdir(), "fake-cni-probe-"));
  const nsFile = join(dir, "ns");
  const hostIf = `fcp${process.pid.toString(16).slice(-6)}${Math.floor(Math.random() * 256).toString(16)}`.slice(0, 15);
  let mounted = false;
  try {
    await writeFile(nsFile, "");
    const ns = await tryRun("unshare", [`--net=${nsFile}`, "true"]);
    if (!ns.ok) return { mode: "noop", reason: `cannot create a network namespace: ${ns.out}` };
    mounted = true;
    const link = await tryRun("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", nsFile]);
    if (!link.ok) return { mode: "noop", reason: `cannot create a veth pair: ${link.out}` };
    const inside = await tryRun("nsenter", [`--net=${nsFile}`, "ip", "link", "show", "eth0"]);
    if (!inside.ok) return { mode: "noop", reason: `cannot enter the network namespace: ${inside.out}` };
    return { mode: "veth", reason: "network namespace and veth pair created and removed" };
  } finally {
    await tryRun("ip", ["link", "del", hostIf]).catch(() => undefined);
    if (mounted) await tryRun("umount", [nsFile]);
    await rm(dir, { recursive: true, force: true });
  }
}
