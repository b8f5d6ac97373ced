/**
 * startK3sInDocker against a real Docker Engine: the test starts its OWN dockerd (own data-root,
 * exec-root, pidfile and socket; no iptables, no bridge, vfs storage), imports a stand-in image
 * (busybox-static + the host's node and openssl + the k3s stand-in, entrypoint /bin/k3s), runs it
 * through the API, checks /readyz, stops it, and removes dockerd and every mount it made.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Dockerode from "dockerode";
import { execa } from "execa";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync, chmodSync, openSync, closeSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { boundingCapabilities, buildK3sServerArgs, kubeGet, LINUX_CAPABILITIES, probeK3s, startK3sInDocker, stopPid } from "../src/index.js";
import { cleanupDir, freePort, mountsUnder, processesMentioning, tempDir } from "./helpers.js";

const pkg = fileURLToPath(new URL("..", import.meta.url));
const IMAGE = "hybrid/k3s-standin:test";

/** Copies an executable and the shared libraries `ldd` lists into a rootfs. */
async function copyWithLibs(root: string, bin: string, dest: string): Promise<void> {
  mkdirSync(join(root, dirname(dest)), { recursive: true });
  copyFileSync(realpathSync(bin), join(root, dest));
  chmodSync(join(root, dest), 0o755);
  const ldd = await execa("ldd", [bin], { reject: false });
  for (const m of String(ldd.stdout).matchAll(/(\/\S+\.so[^\s]*)/g)) {
    const lib = m[1]!;
    const target = join(root, lib);
    if (existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(realpathSync(lib), target);
  }
}

async function buildStandinRootfs(root: string): Promise<void> {
  for (const d of ["bin", "usr/bin", "tmp", "etc", "run", "var/lib/rancher/k3s", "opt/k3s-launcher/standin", "opt/k3s-launcher/dist", "usr/lib/ssl"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  copyFileSync("/bin/busybox", join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  for (const app of ["sh", "mv", "cat", "ls", "env", "sleep", "mkdir", "rm"]) symlinkSync("busybox", join(root, "bin", app));
  symlinkSync("/bin/busybox", join(root, "usr/bin/env"));
  await copyWithLibs(root, process.execPath, "/usr/local/bin/node");
  await copyWithLibs(root, "/usr/bin/openssl", "/usr/bin/openssl");
  copyFileSync(realpathSync("/usr/lib/ssl/openssl.cnf"), join(root, "usr/lib/ssl/openssl.cnf"));
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(join(root, "opt/k3s-launcher/package.json"), '{"type":"module"}\n');
  copyFileSync(join(pkg, "standin/k3s-standin.mjs"), join(root, "opt/k3s-launcher/standin/k3s-standin.mjs"));
  for (const f of ["k3s-flags.js", "containerd-config.js"]) copyFileSync(join(pkg, "dist", f), join(root, "opt/k3s-launcher/dist", f));
  writeFileSync(join(root, "bin/k3s"), '#!/bin/sh\nexec /usr/local/bin/node /opt/k3s-launcher/standin/k3s-standin.mjs "$@"\n', { mode: 0o755 });
}

describe("startK3sInDocker (own dockerd, stand-in image)", () => {
  let dir = "";
  let dockerd: ChildProcess | undefined;
  let docker: Dockerode;
  let sock = "";
  const env = () => ({ ...process.env, DOCKER_HOST: `unix://${sock}` });

  beforeAll(async () => {
    dir = tempDir("k3sl-d-");
    sock = join(dir, "docker.sock");
    const log = openSync(join(dir, "dockerd.log"), "a");
    dockerd = spawn(
      "dockerd",
      [
        "--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"), "--pidfile", join(dir, "dockerd.pid"),
        "-H", `unix://${sock}`, "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
      ],
      { stdio: ["ignore", log, log], detached: true },
    );
    closeSync(log);
    docker = new Dockerode({ socketPath: sock });
    const end = Date.now() + 60_000;
    for (;;) {
      try {
        await docker.ping();
        break;
      } catch (e) {
        if (Date.now() > end || dockerd.exitCode !== null) {
          throw new Error(`dockerd did not come up: ${(e as Error).message}\n${readFileSync(join(dir, "dockerd.log"), "utf8").slice(-3000)}`);
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    const rootfs = join(dir, "rootfs");
    await buildStandinRootfs(rootfs);
    const tar = execa("tar", ["-C", rootfs, "-c", "."], { buffer: false, encoding: "buffer" });
    const imp = execa("docker", ["import", "--change", 'ENTRYPOINT ["/bin/k3s"]', "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", "-", IMAGE], { env: env(), stdin: "pipe" });
    tar.stdout!.pipe(imp.stdin!);
    await Promise.all([tar, imp]);
    cleanupDir(rootfs);
  }, 180_000);

  afterAll(async () => {
    if (dockerd?.pid) await stopPid(dockerd.pid, { graceMs: 20_000 });
    // dockerd leaves its netns bind mount (exec-root/netns/default); remove every mount under our dir
    for (const m of mountsUnder(dir).reverse()) await execa("umount", ["-l", m], { reject: false });
    expect(mountsUnder(dir)).toEqual([]);
    expect(processesMentioning(dir)).toEqual([]);
    cleanupDir(dir);
    expect(existsSync(dir)).toBe(false);
  }, 60_000);

  it("runs the seed's variant (host network, tmpfs /run and /var/lib/kubelet, /dev/kmsg) and /readyz answers", async () => {
    const port = await freePort();
    const args = buildK3sServerArgs("container", { dataDir: "/var/lib/rancher/k3s", kubeconfig: "/output/kubeconfig.yaml", httpsPort: port, disableAgent: true });
    const h = await startK3sInDocker({ docker, image: IMAGE, args, kubeconfigDir: join(dir, "out"), name: "k3sl-test", readyTimeoutMs: 60_000, stopTimeoutSec: 5 });
    try {
      expect(h.kind).toBe("k3s-docker");
      expect(h.kubeconfig).toBe(join(dir, "out", "kubeconfig.yaml"));
      // --privileged needs every capability in our bounding set; this machine's lacks CAP_SYS_RESOURCE
      expect(h.privileged).toBe(boundingCapabilities().length === LINUX_CAPABILITIES.length);
      const info = await docker.getContainer(h.containerId).inspect();
      expect(info.HostConfig.NetworkMode).toBe("host");
      expect(Object.keys(info.HostConfig.Tmpfs ?? {}).sort()).toEqual(["/run", "/var/lib/kubelet"]);
      if (existsSync("/dev/kmsg")) expect(info.HostConfig.Binds).toContain("/dev/kmsg:/dev/kmsg");
      expect(info.Config.Cmd).toEqual(args);
      expect(await probeK3s(h.kubeconfig)).toEqual({ ok: true, detail: "GET /readyz: 200 ok" });
      expect(JSON.parse((await kubeGet(h.kubeconfig, "/version")).body).gitVersion).toContain("standin");
    } finally {
      await h.stop();
    }
    expect(await docker.listContainers({ all: true })).toEqual([]);
    expect((await probeK3s(h.kubeconfig)).ok).toBe(false);
  });

  it("--privileged as the seed ran it: works with a full bounding set, else fails with runc's caps error and leaves no container", async () => {
    const port = await freePort();
    const args = buildK3sServerArgs("container", { dataDir: "/var/lib/rancher/k3s", kubeconfig: "/output/kubeconfig.yaml", httpsPort: port, disableAgent: true });
    const run = startK3sInDocker({ docker, image: IMAGE, args, kubeconfigDir: join(dir, "out2"), privileged: true, readyTimeoutMs: 60_000, stopTimeoutSec: 5 });
    if (boundingCapabilities().length === LINUX_CAPABILITIES.length) {
      const h = await run;
      expect(h.privileged).toBe(true);
      await h.stop();
    } else {
      await expect(run).rejects.toThrow(/unable to apply caps: operation not permitted/);
    }
    expect(await docker.listContainers({ all: true })).toEqual([]);
  });

  it("a k3s that exits early: the readiness error carries its log and the container is removed", async () => {
    const args = ["server", "--disable-agent", "--https-listen-port=1", "--flannel-backend=calico"];
    await expect(startK3sInDocker({ docker, image: IMAGE, args, kubeconfigDir: join(dir, "out3"), readyTimeoutMs: 30_000, stopTimeoutSec: 2 })).rejects.toThrow(
      /exited[\s\S]*invalid flannel backend: calico/,
    );
    expect(await docker.listContainers({ all: true })).toEqual([]);
  });

  it("refuses a kubeconfig path outside /output and a flag k3s does not have, before creating anything", async () => {
    await expect(startK3sInDocker({ docker, image: IMAGE, args: ["server", "--write-kubeconfig=/etc/k.yaml"], kubeconfigDir: join(dir, "o") })).rejects.toThrow(/must be under \/output/);
    await expect(startK3sInDocker({ docker, image: IMAGE, args: ["server", "--bogus"], kubeconfigDir: join(dir, "o") })).rejects.toThrow(/not defined: -bogus/);
    expect(await docker.listContainers({ all: true })).toEqual([]);
  });
});
