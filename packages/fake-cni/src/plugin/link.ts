/**
 * veth mode: a real veth pair, the container end (`CNI_IFNAME`) inside the netns at `CNI_NETNS`
 * with the allocated addresses and routes, the host end up in the plugin's netns — the steps of
 * the reference `ptp` plugin. The kernel work is done over rtnetlink by `fake-cni-link`
 * (native/fake-cni-link.c, installed beside the plugin), one helper process per thread kept for
 * the thread's life and asked a line at a time, so a call spawns no `ip`/`nsenter`: in the resident
 * server a veth ADD+DEL costs the kernel's own work and no process start.
 */
import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import type * as ChildProcess from "node:child_process";
import { PluginError, CniErrorCode } from "./errors.js";

/** 32-bit FNV-1a of a string: names and MACs derived from the attachment key, stable across calls. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Host-side veth name for an attachment: `fc` + 8 hex digits (<= 15 chars, IFNAMSIZ). */
export function hostVethName(network: string, containerId: string, ifname: string): string {
  return `fc${fnv1a(`${network}\0${containerId}\0${ifname}`).toString(16).padStart(8, "0")}`;
}

/** A locally administered unicast MAC derived from `seed`. */
export function macFor(seed: string, prefix = 0x0a): string {
  const h1 = fnv1a(seed);
  const h2 = fnv1a(`${seed}#`);
  const bytes = [prefix & 0xfe, 0x58, (h1 >>> 24) & 255, (h1 >>> 16) & 255, (h1 >>> 8) & 255, h2 & 255];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** The answer to one helper request: `ok` with its payload, or the errno name and message. */
type Answer = { ok: true; payload: string } | { ok: false; errno: string; msg: string };

/** Longest a helper request may take before the helper is killed (ms). */
const REQUEST_TIMEOUT_MS = 15_000;

/**
 * The `fake-cni-link` executable beside the running plugin bundle (`process.argv[1]`, symlinks
 * resolved): `<binDir>/fake-cni-link` when installed, `dist/bin/fake-cni-link` in the tree.
 */
export function helperBesidePlugin(): string {
  let self = process.argv[1] ?? "";
  try {
    self = realpathSync(self);
  } catch {
    /* keep as given */
  }
  return join(dirname(self), "fake-cni-link");
}

/** One running helper and what belongs to it alone: its unread output and its waiting callers. */
interface HelperProc {
  child: ChildProcess.ChildProcess;
  buffered: string;
  waiting: ((a: Answer) => void)[];
  /** Set once it answered a line: a helper that dies before that could not run here at all. */
  answered: boolean;
  /** Set on its first sign of death (spawn error, stdin error, stdout end, exit): never written to again. */
  dead: boolean;
  exited: Promise<void>;
}

/**
 * One `fake-cni-link` child, started on the first request and kept; requests go one line each
 * and are answered in order (protocol in native/fake-cni-link.c). A child that dies or times out
 * fails its own pending requests and is replaced on the next request. A child that could not be
 * started, or died before its first answer, answers `ENOEXEC` (the helper cannot run here, e.g. a
 * missing libmnl). After {@link close} no child is started again (`ESHUTDOWN`).
 */
class LinkHelper {
  private proc: HelperProc | undefined;
  private closed = false;

  private start(): HelperProc | Answer {
    const path = helperBesidePlugin();
    if (!existsSync(path)) return { ok: false, errno: "ENOENT", msg: `veth mode needs ${path} (built from native/fake-cni-link.c by pnpm build; libmnl)` };
    // node:child_process loaded only when a link is touched: noop mode never pays for it.
    const cp = (process.getBuiltinModule?.("node:child_process") as typeof ChildProcess | undefined) ?? (require("node:child_process") as typeof ChildProcess);
    const child = cp.spawn(path, [], { stdio: ["pipe", "pipe", "ignore"] });
    let exited!: () => void;
    const proc: HelperProc = { child, buffered: "", waiting: [], answered: false, dead: false, exited: new Promise((r) => (exited = r)) };
    const die = (why: string): void => {
      proc.dead = true;
      if (this.proc === proc) this.proc = undefined;
      const errno = proc.answered ? "EIO" : "ENOEXEC";
      const msg = proc.answered ? `fake-cni-link ${why}` : `fake-cni-link cannot run here (${path}): ${why}`;
      for (const w of proc.waiting.splice(0)) w({ ok: false, errno, msg });
    };
    child.on("error", (e) => {
      die(e.message);
      exited(); // a spawn failure has no exit event
    });
    child.on("exit", (code, sig) => {
      die(`exited (${sig ?? code})`);
      exited();
    });
    child.stdin!.on("error", (e) => die(`stdin: ${e.message}`));
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (text: string) => {
      proc.buffered += text;
      for (let nl = proc.buffered.indexOf("\n"); nl >= 0; nl = proc.buffered.indexOf("\n")) {
        const line = proc.buffered.slice(0, nl);
        proc.buffered = proc.buffered.slice(nl + 1);
        proc.answered = true;
        const [status, a = "", b = ""] = line.split("\t");
        proc.waiting.shift()?.(status === "ok" ? { ok: true, payload: a } : { ok: false, errno: a || "EIO", msg: b || line });
      }
    });
    child.stdout!.on("end", () => die("closed its output"));
    this.proc = proc;
    return proc;
  }

  /** Sends one request (its fields; none may hold a TAB or newline) and waits for its answer. */
  request(fields: string[]): Promise<Answer> {
    const bad = fields.find((f) => /[\t\n\r\0]/.test(f));
    if (bad !== undefined) return Promise.resolve({ ok: false, errno: "EINVAL", msg: `control character in ${JSON.stringify(bad)}` });
    if (this.closed) return Promise.resolve({ ok: false, errno: "ESHUTDOWN", msg: "fake-cni-link: closed (the server is stopping)" });
    const proc = this.proc && !this.proc.dead ? this.proc : this.start();
    if ("ok" in proc) return Promise.resolve(proc);
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => {
        proc.child.kill("SIGKILL"); // its death fails this and every later waiter of this child
      }, REQUEST_TIMEOUT_MS);
      proc.waiting.push((a) => {
        clearTimeout(timer);
        resolve(a);
      });
      proc.child.stdin!.write(`${fields.join("\t")}\n`);
    });
  }

  /**
   * Closes the child's stdin (it exits on EOF) and resolves once it has exited and been reaped, so
   * no zombie is left for init; SIGKILL after `graceMs`. No child is started afterwards.
   */
  close(graceMs = 2_000): Promise<void> {
    this.closed = true;
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return Promise.resolve();
    const timer = setTimeout(() => proc.child.kill("SIGKILL"), graceMs);
    proc.child.stdin?.end();
    return proc.exited.then(() => clearTimeout(timer));
  }
}

const helper = new LinkHelper();

/** Ends this thread's helper process and waits for it (the one-shot executable calls it before exiting). */
export function closeLinkHelper(): Promise<void> {
  return helper.close();
}

/** What a veth setup needs. */
export interface VethSpec {
  /** Path of the container's netns file (`CNI_NETNS`). */
  netns: string;
  /** Container-side name (`CNI_IFNAME`). */
  ifname: string;
  /** Host-side name ({@link hostVethName}). */
  hostIf: string;
  /** MTU of both ends, bytes (68..65535). */
  mtu: number;
  containerMac: string;
  hostMac: string;
  /** `addr/prefix` of each address for the container interface. */
  addresses: string[];
  /** Routes in the container's main table; without `gw` a link-scope route. */
  routes: { dst: string; gw?: string }[];
}

/**
 * errnos that mean "this kernel or sandbox cannot make veth pairs here" when the netns file is
 * opened or entered or the pair created: gVisor answers RTM_NEWLINK of kind veth with EOPNOTSUPP
 * and opening a bind-mounted netns file with ELOOP; without CAP_NET_ADMIN/CAP_SYS_ADMIN, EPERM.
 */
const UNSUPPORTED = new Set(["EOPNOTSUPP", "ENOSYS", "EPERM", "EAFNOSUPPORT", "EPROTONOSUPPORT", "ELOOP"]);
const CREATION_STEPS = ["RTM_NEWLINK veth", "open netns", "setns", "netlink socket"];

/**
 * Creates the pair and configures the container end (RTM_NEWLINK veth with the peer in the
 * netns, then RTM_NEWADDR, link up, RTM_NEWROUTE inside it). On failure nothing is left.
 * @returns `unsupported: true` when veth pairs cannot be made here (gVisor, no CAP_NET_ADMIN, no
 *   netlink, the helper not built or unable to run), so `auto` mode can fall back to noop; else the
 *   helper's errno and step.
 */
export async function setupVeth(spec: VethSpec): Promise<{ ok: true } | { ok: false; unsupported: boolean; msg: string }> {
  const list = (xs: string[]): string => (xs.length ? xs.join(",") : "-");
  const a = await helper.request([
    "add",
    spec.netns,
    spec.ifname,
    spec.hostIf,
    String(spec.mtu),
    spec.containerMac,
    spec.hostMac,
    list(spec.addresses),
    list(spec.routes.map((r) => (r.gw ? `${r.dst}@${r.gw}` : r.dst))),
  ]);
  if (a.ok) return { ok: true };
  const noHelper = (a.errno === "ENOENT" && a.msg.startsWith("veth mode needs")) || a.errno === "ENOEXEC";
  const unsupported = noHelper || (UNSUPPORTED.has(a.errno) && CREATION_STEPS.some((s) => a.msg.startsWith(s)));
  return { ok: false, unsupported, msg: `${a.errno}: ${a.msg}` };
}

/** True when the host end of an attachment exists in the plugin's netns. */
export function hostVethExists(hostIf: string): boolean {
  return existsSync(`/sys/class/net/${hostIf}`);
}

/**
 * Deletes the pair through its host end (RTM_DELLINK; the container end goes with it). Missing is
 * fine. The kernel answers after its RCU barrier for the unregistered device (~15-30 ms).
 * @throws PluginError 102 when the link stays (after 3 tries 50/100/150 ms apart: the peer's
 *   netns may be being torn down at that moment).
 */
export async function teardownVeth(hostIf: string): Promise<void> {
  let last = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    if (!hostVethExists(hostIf)) return;
    const a = await helper.request(["del", hostIf]);
    if (a.ok || !hostVethExists(hostIf)) return;
    last = `${a.errno}: ${a.msg}`;
    await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
  }
  throw new PluginError(CniErrorCode.LinkSetupFailed, `cannot delete ${hostIf}: ${last}`);
}

/**
 * Reads the container interface's addresses (CHECK), RTM_GETADDR inside the netns.
 * @returns the `addr/prefix` list (link-local ones included), or undefined when the interface or
 *   netns is missing.
 */
export async function containerAddresses(netns: string, ifname: string): Promise<string[] | undefined> {
  const a = await helper.request(["addrs", netns, ifname]);
  if (!a.ok) return undefined;
  return a.payload ? a.payload.split(",") : [];
}
