// k3s-standin: a STAND-IN for `k3s server`, NOT k3s. It exists because no k3s binary can be
// obtained on the machines this project is developed and tested on. It accepts k3s's command line
// (and rejects what k3s rejects: flags k3s does not have, bad values), writes the files k3s writes,
// starts the OS's containerd with a k3s-shaped config (k3s embeds containerd), and serves the
// API server's health endpoints over TLS until SIGTERM. What it does NOT prove: see README.md.
//
// Environment (stand-in only, k3s has no such variables):
//   K3S_STANDIN_RUN_DIR     replaces k3s's fixed /run/k3s (containerd state and socket), for tests
//   K3S_STANDIN_CONTAINERD  containerd executable (default: `containerd` on PATH)
//   K3S_STANDIN_CTR         ctr executable (default: `ctr` on PATH)
// k3s's own variables honoured: K3S_TOKEN, K3S_KUBECONFIG_OUTPUT, K3S_KUBECONFIG_MODE, K3S_NODE_NAME.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:https";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { K3sUsageError, K3S_DISABLE_ITEMS, K3S_FLANNEL_BACKENDS, K3S_SNAPSHOTTERS, parseK3sArgs } from "../dist/k3s-flags.js";
import { generateContainerdConfig } from "../dist/containerd-config.js";

const VERSION = "v1.31.0+k3s-standin";
const log = (level, msg) => process.stderr.write(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}\n`);
const fatal = (msg, code = 1) => {
  log("fatal", msg);
  process.exit(code);
};

const argv = process.argv.slice(2);
if (argv[0] === "--version" || argv[0] === "-v" || argv[0] === "version") {
  process.stdout.write(`k3s version ${VERSION} (standin)\ngo version none (Node ${process.version} stand-in)\n`);
  process.exit(0);
}
if (argv[0] === "agent") fatal("k3s-standin implements only `k3s server`; `k3s agent` is not emulated");

let parsed;
try {
  parsed = parseK3sArgs(argv);
} catch (e) {
  if (e instanceof K3sUsageError) {
    // urfave/cli prints "Incorrect Usage: <reason>" and the command's help, exit status 1
    process.stderr.write(`${e.message}\n\nNAME:\n   k3s server - Run management server\n\nUSAGE:\n   k3s server [OPTIONS]\n`);
    process.exit(1);
  }
  throw e;
}
const f = parsed.flags;
const str = (name) => (typeof f[name] === "string" ? f[name] : undefined);
const list = (name) => (Array.isArray(f[name]) ? f[name] : []);

// ---- value checks k3s performs (or its components would fail on) ----
if (str("config") !== undefined) fatal("k3s-standin does not read --config files (k3s would merge the YAML into its flags)");
for (const item of list("disable").flatMap((d) => d.split(","))) {
  if (!K3S_DISABLE_ITEMS.includes(item.trim())) fatal(`invalid --disable item ${JSON.stringify(item)}: valid items are ${K3S_DISABLE_ITEMS.join(", ")}`);
}
const flannelBackend = str("flannel-backend") ?? "vxlan";
if (!K3S_FLANNEL_BACKENDS.includes(flannelBackend)) fatal(`invalid flannel backend: ${flannelBackend}`);
const snapshotter = str("snapshotter") ?? "overlayfs";
if (!K3S_SNAPSHOTTERS.includes(snapshotter)) fatal(`unknown snapshotter ${JSON.stringify(snapshotter)}`);
for (const kv of list("kubelet-arg")) {
  if (!/^(--)?[a-z0-9][a-z0-9-]*=.*$/.test(kv)) fatal(`invalid --kubelet-arg ${JSON.stringify(kv)}: expected KEY=VALUE`);
}
const mode = str("write-kubeconfig-mode") ?? process.env.K3S_KUBECONFIG_MODE ?? "0600";
if (!/^0?[0-7]{3}$/.test(mode)) fatal(`invalid --write-kubeconfig-mode ${JSON.stringify(mode)}`);
const port = Number(str("https-listen-port") ?? "6443");
if (!(port > 0 && port < 65536)) fatal(`invalid --https-listen-port ${port}`);
const bindAddress = str("bind-address") ?? "0.0.0.0";
const dataDir = str("data-dir") ?? "/var/lib/rancher/k3s";
const kubeconfigPath = str("write-kubeconfig") ?? process.env.K3S_KUBECONFIG_OUTPUT ?? "/etc/rancher/k3s/k3s.yaml";
const disableAgent = f["disable-agent"] === true;
const nodeName = str("node-name") ?? process.env.K3S_NODE_NAME ?? hostname();
const implemented = new Set([
  "data-dir", "write-kubeconfig", "write-kubeconfig-mode", "https-listen-port", "bind-address", "disable-agent",
  "snapshotter", "pause-image", "token", "node-name", "debug",
]);
for (const name of Object.keys(f)) {
  if (!implemented.has(name)) log("info", `stand-in: --${name} accepted (k3s has it) but has no effect in the stand-in`);
}

log("info", `Starting k3s ${VERSION} (stand-in, not k3s)`);
const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });

// ---- certificates and token, in k3s's layout (<data-dir>/server/tls, <data-dir>/server/token) ----
const serverDir = join(dataDir, "server");
const tls = join(serverDir, "tls");
mkdirSync(tls, { recursive: true, mode: 0o700 });
const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
function makeCA(name, cn) {
  const crt = join(tls, `${name}.crt`);
  const key = join(tls, `${name}.key`);
  if (existsSync(crt) && existsSync(key)) return;
  openssl("req", "-x509", ...ec, "-keyout", key, "-out", crt, "-days", "3650", "-subj", `/CN=${cn}@${Math.floor(Date.now() / 1000)}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature");
  chmodSync(key, 0o600);
}
function makeLeaf(name, ca, subj, ext) {
  const crt = join(tls, `${name}.crt`);
  const key = join(tls, `${name}.key`);
  if (existsSync(crt) && existsSync(key)) return;
  const csr = join(tls, `${name}.csr`);
  const extFile = join(tls, `${name}.ext`);
  writeFileSync(extFile, ext);
  openssl("req", "-new", ...ec, "-keyout", key, "-out", csr, "-subj", subj);
  openssl("x509", "-req", "-in", csr, "-CA", join(tls, `${ca}.crt`), "-CAkey", join(tls, `${ca}.key`),
    "-set_serial", `0x${randomBytes(8).toString("hex")}`, "-days", "365", "-out", crt, "-extfile", extFile);
  rmSync(csr);
  rmSync(extFile);
  chmodSync(key, 0o600);
}
try {
  makeCA("server-ca", "k3s-server-ca");
  makeCA("client-ca", "k3s-client-ca");
  makeLeaf("serving-kube-apiserver", "server-ca", "/CN=kube-apiserver",
    "subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:::1,IP:10.43.0.1\n" +
    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  makeLeaf("client-admin", "client-ca", "/O=system:masters/CN=system:admin",
    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n");
} catch (e) {
  fatal(`generating certificates with openssl failed: ${e.stderr?.toString() || e.message}`);
}
const read = (p) => readFileSync(join(tls, p));
const serverCA = read("server-ca.crt");
const tokenFile = join(serverDir, "token");
let token = str("token") ?? process.env.K3S_TOKEN;
if (!token && existsSync(tokenFile)) token = readFileSync(tokenFile, "utf8").trim();
if (!token) token = randomBytes(16).toString("hex");
// k3s's "secure" token format: K10<sha256 of the server CA bundle>::server:<password>
const fullToken = token.startsWith("K10") ? token : `K10${createHash("sha256").update(serverCA).digest("hex")}::server:${token}`;
writeFileSync(tokenFile, `${fullToken}\n`, { mode: 0o600 });
for (const link of ["node-token", "agent-token"]) {
  rmSync(join(serverDir, link), { force: true });
  symlinkSync(tokenFile, join(serverDir, link));
}

// ---- the agent's embedded containerd (unless --disable-agent) ----
let containerd;
let stopping = false;
const runDir = process.env.K3S_STANDIN_RUN_DIR ?? "/run/k3s";
const socket = join(runDir, "containerd", "containerd.sock");
if (!disableAgent) {
  const agentDir = join(dataDir, "agent");
  const cniBinDir = join(dataDir, "data", "current", "bin");
  const cniConfDir = join(agentDir, "etc", "cni", "net.d");
  const root = join(agentDir, "containerd");
  const state = join(runDir, "containerd");
  for (const d of [cniBinDir, cniConfDir, root, state, join(agentDir, "etc", "containerd")]) mkdirSync(d, { recursive: true });
  const hasCgroups = existsSync("/sys/fs/cgroup/cgroup.controllers") || existsSync("/sys/fs/cgroup/memory");
  const configPath = join(agentDir, "etc", "containerd", "config.toml");
  writeFileSync(
    configPath,
    generateContainerdConfig({
      root, state, address: socket, cniBinDir, cniConfDir,
      snapshotter, sandboxImage: str("pause-image") ?? "rancher/mirrored-pause:3.6", disableCgroup: !hasCgroups,
    }),
  );
  const logPath = join(root, "containerd.log");
  const fd = openSync(logPath, "a");
  containerd = spawn(process.env.K3S_STANDIN_CONTAINERD ?? "containerd", ["-c", configPath, "-a", socket, "--state", state, "--root", root], {
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  containerd.on("error", (e) => fatal(`failed to start containerd: ${e.message}`));
  containerd.on("exit", (code, sig) => {
    // a group-wide SIGTERM reaches containerd and us at once: give our own handler a moment
    setTimeout(() => {
      if (!stopping) fatal(`containerd exited: ${sig ?? `code ${code}`} (see ${logPath})`);
    }, 200);
  });
  log("info", `Running containerd -c ${configPath} -a ${socket} --state ${state} --root ${root}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      execFileSync(process.env.K3S_STANDIN_CTR ?? "ctr", ["--address", socket, "--timeout", "2s", "version"], { stdio: "ignore" });
      break;
    } catch {
      if (Date.now() > deadline) fatal(`containerd did not answer on ${socket} within 30 s (see ${logPath})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  log("info", "containerd is now running");
}

// ---- the API server's health endpoints over TLS ----
const clientCA = read("client-ca.crt");
const server = createServer(
  { key: read("serving-kube-apiserver.key"), cert: Buffer.concat([read("serving-kube-apiserver.crt"), serverCA]), ca: clientCA, requestCert: true, rejectUnauthorized: false },
  (req, res) => {
    const url = new URL(req.url ?? "/", "https://standin");
    const user = req.socket.authorized ? req.socket.getPeerCertificate()?.subject?.CN : undefined;
    const send = (code, type, body) => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (["/readyz", "/livez", "/healthz"].includes(url.pathname)) {
      // kube-apiserver lets anonymous users read these (system:public-info-viewer)
      if (url.searchParams.has("verbose")) return send(200, "text/plain", `[+]ping ok\n[+]containerd ${disableAgent ? "disabled" : "ok"}\n${url.pathname.slice(1)} check passed\n`);
      return send(200, "text/plain; charset=utf-8", "ok");
    }
    if (url.pathname === "/version") {
      return send(200, "application/json", JSON.stringify({ major: "1", minor: "31", gitVersion: VERSION, platform: `linux/${process.arch}`, standin: true }, null, 2));
    }
    const status = (code, reason, message) =>
      send(code, "application/json", JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code }));
    if (!user) return status(401, "Unauthorized", "Unauthorized");
    return status(404, "NotFound", `k3s-standin serves only /readyz, /livez, /healthz and /version (user ${user})`);
  },
);
server.on("error", (e) => fatal(`API server listener: ${e.message}`));
await new Promise((r) => server.listen(port, bindAddress, r));
log("info", `Running kube-apiserver stand-in on https://${bindAddress}:${port} (readyz, livez, version)`);

// ---- the admin kubeconfig, written once the API answers (as k3s does) ----
const b64 = (p) => read(p).toString("base64");
const kubeconfig = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${serverCA.toString("base64")}
    server: https://127.0.0.1:${port}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: ${Buffer.concat([read("client-admin.crt"), clientCA]).toString("base64")}
    client-key-data: ${b64("client-admin.key")}
`;
mkdirSync(dirname(kubeconfigPath), { recursive: true });
const tmp = `${kubeconfigPath}.tmp-${process.pid}`;
writeFileSync(tmp, kubeconfig, { mode: parseInt(mode, 8) });
chmodSync(tmp, parseInt(mode, 8));
execFileSync("mv", ["-f", tmp, kubeconfigPath]);
log("info", `Wrote kubeconfig ${kubeconfigPath}`);
log("info", `k3s is up and running (stand-in), node ${nodeName}`);

const shutdown = async (sig) => {
  if (stopping) return;
  stopping = true;
  log("info", `Received ${sig}, shutting down`);
  server.close();
  server.closeAllConnections?.();
  if (containerd && containerd.exitCode === null && containerd.signalCode === null) {
    const gone = new Promise((r) => containerd.once("exit", r));
    containerd.kill("SIGTERM");
    const t = setTimeout(() => containerd.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(t);
    rmSync(socket, { force: true });
    rmSync(`${socket}.ttrpc`, { force: true });
  }
  process.exit(0);
};
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
