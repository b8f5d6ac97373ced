/**
 * The seed's Docker variant of k3s: `docker run --privileged --network host --tmpfs /run
 * --tmpfs /var/lib/kubelet -v /dev/kmsg:/dev/kmsg rancher/k3s:<version> server ...`, through dockerode.
 */
import Dockerode from "dockerode";
import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, posix } from "node:path";
import { parseK3sArgs } from "./k3s-flags.js";
import { waitUntilReady, type ProbeResult } from "./process.js";
import { probeK3s, type RuntimeHandle } from "./runtime.js";

/** Capability names Docker grants a `--privileged` container (all of them, CAP_CHOWN=0 .. CAP_CHECKPOINT_RESTORE=40). */
export const LINUX_CAPABILITIES = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
  "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
  "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
  "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
  "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
  "CHECKPOINT_RESTORE",
] as const;

/**
 * The capabilities in this process's bounding set (`CapBnd` of /proc/self/status), by name.
 * When it lacks any (a container or sandbox that dropped some), `--privileged` containers cannot
 * start: runc fails with `unable to apply caps: operation not permitted`.
 */
export function boundingCapabilities(statusFile = "/proc/self/status"): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)/m.exec(readFileSync(statusFile, "utf8"));
  const mask = BigInt(`0x${m?.[1] ?? "0"}`);
  return LINUX_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** Options of {@link startK3sInDocker}. */
export interface StartK3sInDockerOptions {
  /** Default `new Dockerode()` (DOCKER_HOST or /var/run/docker.sock). */
  docker?: Dockerode;
  /** e.g. `rancher/k3s:v1.31.4-k3s1`; must be local or pullable. Its entrypoint must be k3s. */
  image: string;
  /** argv after the entrypoint, starting with `server` ({@link buildK3sServerArgs} with container paths). */
  args: readonly string[];
  /** Container name; default `hybrid-k3s-<random>`. */
  name?: string;
  /** Host directory or named volume for `/var/lib/rancher/k3s`; default: an anonymous volume removed on stop. */
  dataVolume?: string;
  /**
   * Host directory bound at `/output`; k3s writes `kubeconfig.yaml` there (via `K3S_KUBECONFIG_OUTPUT`
   * unless args carry `--write-kubeconfig=/output/...`). Created if missing.
   */
  kubeconfigDir: string;
  /**
   * `true`: `--privileged` (the seed's variant). `"auto"` (default): privileged when this process holds
   * every capability, else the nearest runnable equivalent: the capabilities of our bounding set,
   * seccomp, AppArmor and masked/read-only /proc and /sys paths off (`systempaths=unconfined`); unlike
   * `--privileged`, host devices are not all exposed (/dev/kmsg is bound) and /sys/fs/cgroup stays read-only. `false`: that equivalent always.
   */
  privileged?: boolean | "auto";
  env?: Record<string, string>;
  /** Default 120 000. */
  readyTimeoutMs?: number;
  /** Seconds `docker stop` waits before SIGKILL; default 15. */
  stopTimeoutSec?: number;
}

/** The handle's extra facts for Docker. */
export interface DockerRuntimeHandle extends RuntimeHandle {
  kind: "k3s-docker";
  containerId: string;
  kubeconfig: string;
  /** Whether `--privileged` was used or the capability-list equivalent (see {@link StartK3sInDockerOptions.privileged}). */
  privileged: boolean;
}

async function containerLogs(c: Dockerode.Container): Promise<string> {
  try {
    const buf = (await c.logs({ stdout: true, stderr: true, tail: 60 })) as unknown as Buffer;
    // demultiplex Docker's 8-byte frame headers when present
    const out: string[] = [];
    let off = 0;
    while (off + 8 <= buf.length && (buf[off] === 1 || buf[off] === 2) && buf[off + 1] === 0) {
      const len = buf.readUInt32BE(off + 4);
      out.push(buf.subarray(off + 8, off + 8 + len).toString());
      off += 8 + len;
    }
    return off > 0 ? out.join("") : buf.toString();
  } catch (e) {
    return `(no logs: ${(e as Error).message})`;
  }
}

/**
 * Runs k3s in Docker the way the seed's control-plane solution did: host network, tmpfs at
 * `/run` and `/var/lib/kubelet`, `/dev/kmsg` bound when the host has it, privileged (see
 * `privileged`), the data dir on a volume, the kubeconfig written to a bound host directory;
 * then waits until `/readyz` answers with that kubeconfig. On a readiness failure the container
 * is stopped and removed and the readiness error (with the container's log tail) is rethrown.
 * @throws Error when the image is missing and cannot be pulled, the container cannot be created
 *   or started (Docker's message), exits early, or is not ready in time.
 */
export async function startK3sInDocker(opts: StartK3sInDockerOptions): Promise<DockerRuntimeHandle> {
  const docker = opts.docker ?? new Dockerode();
  if (!opts.kubeconfigDir?.startsWith("/")) throw new TypeError(`startK3sInDocker: kubeconfigDir must be absolute, got ${JSON.stringify(opts.kubeconfigDir)}`);
  const parsed = parseK3sArgs(opts.args);
  const env: Record<string, string> = { ...opts.env };
  let inContainerKubeconfig = parsed.flags["write-kubeconfig"];
  if (typeof inContainerKubeconfig === "string") {
    if (posix.dirname(inContainerKubeconfig) !== "/output") {
      throw new TypeError(`startK3sInDocker: --write-kubeconfig must be under /output (bound to kubeconfigDir), got ${inContainerKubeconfig}`);
    }
  } else {
    inContainerKubeconfig = "/output/kubeconfig.yaml";
    env.K3S_KUBECONFIG_OUTPUT = inContainerKubeconfig;
    env.K3S_KUBECONFIG_MODE ??= "600";
  }
  await mkdir(opts.kubeconfigDir, { recursive: true });
  const kubeconfig = join(opts.kubeconfigDir, posix.basename(inContainerKubeconfig));

  try {
    await docker.getImage(opts.image).inspect();
  } catch {
    try {
      await new Promise<void>((resolve, reject) => {
        docker.pull(opts.image, (err: Error | null, stream: NodeJS.ReadableStream) => {
          if (err) return reject(err);
          docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve()));
        });
      });
    } catch (e) {
      throw new Error(`startK3sInDocker: image ${opts.image} is not present and cannot be pulled: ${(e as Error).message}`, { cause: e });
    }
  }

  const want = opts.privileged ?? "auto";
  const caps = boundingCapabilities();
  const privileged = want === true || (want === "auto" && caps.length === LINUX_CAPABILITIES.length);
  const binds = [`${opts.kubeconfigDir}:/output`];
  if (opts.dataVolume) binds.push(`${opts.dataVolume}:/var/lib/rancher/k3s`);
  if (existsSync("/dev/kmsg")) binds.push("/dev/kmsg:/dev/kmsg");
  const hostConfig: Dockerode.HostConfig = {
    NetworkMode: "host",
    Tmpfs: { "/run": "", "/var/lib/kubelet": "" },
    Binds: binds,
    Privileged: privileged,
  };
  if (!privileged) {
    hostConfig.CapAdd = caps;
    hostConfig.SecurityOpt = ["seccomp=unconfined", "apparmor=unconfined"];
    // `--security-opt systempaths=unconfined` in the API: nothing masked or read-only under /proc and /sys
    hostConfig.MaskedPaths = [];
    hostConfig.ReadonlyPaths = [];
  }
  const name = opts.name ?? `hybrid-k3s-${Math.random().toString(36).slice(2, 10)}`;
  const create = () =>
    docker.createContainer({
      name,
      Image: opts.image,
      Cmd: [...opts.args],
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Volumes: opts.dataVolume ? undefined : { "/var/lib/rancher/k3s": {} },
      HostConfig: hostConfig,
      Labels: { "io.hybrid.k3s-launcher": "1" },
    });
  let container: Dockerode.Container;
  for (let attempt = 0; ; attempt++) {
    try {
      container = await create();
      break;
    } catch (e) {
      // Older daemons do not know the newest capabilities (Docker 20.10: PERFMON, BPF, CHECKPOINT_RESTORE):
      // "invalid CapAdd: unknown capability: \"CAP_PERFMON\"". Drop the one named and retry.
      const m = /unknown capability: \W*(?:CAP_)?([A-Z_]+)/.exec((e as Error).message);
      if (!m || !hostConfig.CapAdd || attempt > LINUX_CAPABILITIES.length) throw e;
      const before = hostConfig.CapAdd.length;
      hostConfig.CapAdd = hostConfig.CapAdd.filter((c: string) => c !== m[1]);
      if (hostConfig.CapAdd.length === before) throw e;
    }
  }
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      try {
        await container.stop({ t: opts.stopTimeoutSec ?? 15 });
      } catch (e) {
        const code = (e as { statusCode?: number }).statusCode;
        if (code !== 304 && code !== 404) throw e; // 304: already stopped
      }
      try {
        await container.remove({ v: true, force: true });
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode !== 404) throw e;
      }
    })());
  const handle: DockerRuntimeHandle = { kind: "k3s-docker", containerId: container.id, kubeconfig, privileged, stop };
  try {
    await container.start();
    let exited = false;
    await waitUntilReady(
      "k3s in docker",
      {
        hasExited: () => exited,
        exited: (async () => ({ code: null, signal: null }))(),
        logTail: () => containerLogs(container),
      },
      async (): Promise<ProbeResult> => {
        const info = await container.inspect();
        if (!info.State.Running) {
          exited = true;
          return { ok: false, detail: `container ${info.State.Status}, exit code ${info.State.ExitCode}` };
        }
        return probeK3s(kubeconfig);
      },
      opts.readyTimeoutMs ?? 120_000,
      500,
    );
  } catch (e) {
    if (!(e as Error).message.includes("log tail")) (e as Error).message += `\n--- container log tail\n${await containerLogs(container)}`;
    try {
      await stop();
    } catch (stopErr) {
      (e as Error).message += `\n(also failed to remove the container: ${(stopErr as Error).message})`;
    }
    throw e;
  }
  return handle;
}
