import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { downloadK3s, findK3sBinary, k3sAssetNames, parseSha256Sums } from "../src/index.js";
import { cleanupDir, tempDir } from "./helpers.js";

describe("findK3sBinary: explicit, then K3S_BIN, then PATH", () => {
  const dir = tempDir();
  const a = join(dir, "a", "k3s");
  const b = join(dir, "b", "k3s");
  const c = join(dir, "c", "k3s");
  for (const p of [a, b, c]) {
    mkdirSync(join(p, ".."), { recursive: true });
    writeFileSync(p, "#!/bin/sh\n");
    chmodSync(p, 0o755);
  }
  const notExec = join(dir, "plain");
  writeFileSync(notExec, "x");
  afterAll(() => cleanupDir(dir));
  const PATH = `${join(dir, "none")}:${join(dir, "c")}`;
  it("explicit wins", () => expect(findK3sBinary({ explicit: a, env: { K3S_BIN: b, PATH } })).toBe(a));
  it("then K3S_BIN", () => expect(findK3sBinary({ env: { K3S_BIN: b, PATH } })).toBe(b));
  it("then k3s on PATH", () => expect(findK3sBinary({ env: { PATH } })).toBe(c));
  it("undefined when none", () => expect(findK3sBinary({ env: { PATH: join(dir, "none") } })).toBeUndefined());
  it("a set but unusable path is an error, not a silent fallback", () => {
    expect(() => findK3sBinary({ explicit: notExec, env: { PATH } })).toThrow(/explicit k3s binary .* is not an executable file/);
    expect(() => findK3sBinary({ env: { K3S_BIN: join(dir, "missing"), PATH } })).toThrow(/K3S_BIN .* is not an executable file/);
  });
});

describe("downloadK3s from a local release server (sha256-verified)", () => {
  const version = "v1.31.4+k3s1";
  const good = Buffer.from("#!/bin/sh\necho fake k3s binary for the download test\n");
  const sha = createHash("sha256").update(good).digest("hex");
  const routes = new Map<string, Buffer | string>();
  let server: Server;
  let base = "";
  const requests: string[] = [];
  const dirs: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.url ?? "");
      const body = routes.get(req.url ?? "");
      if (body === undefined) {
        res.writeHead(404).end("Not Found");
        return;
      }
      res.writeHead(200).end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/releases`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    for (const d of dirs) cleanupDir(d);
  });
  const dest = () => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };
  const tag = "/releases/v1.31.4%2Bk3s1";

  it("asset names follow k3s's releases", () => {
    expect(k3sAssetNames("amd64")).toEqual({ binary: "k3s", checksums: "sha256sum-amd64.txt" });
    expect(k3sAssetNames("arm64")).toEqual({ binary: "k3s-arm64", checksums: "sha256sum-arm64.txt" });
    expect(parseSha256Sums(`${sha}  k3s\n${"a".repeat(64)} *k3s-airgap-images-amd64.tar\n`).get("k3s-airgap-images-amd64.tar")).toBe("a".repeat(64));
  });

  it("good file: installed as <destDir>/k3s, 0755, identical bytes; the version's '+' is URL-encoded", async () => {
    routes.set(`${tag}/sha256sum-amd64.txt`, `${"b".repeat(64)}  k3s-airgap-images-amd64.tar\n${sha}  k3s\n`);
    routes.set(`${tag}/k3s`, good);
    const d = dest();
    const p = await downloadK3s({ version, arch: "amd64", destDir: d, baseUrl: base });
    expect(p).toBe(join(d, "k3s"));
    expect(readFileSync(p)).toEqual(good);
    expect(statSync(p).mode & 0o777).toBe(0o755);
    expect(readdirSync(d)).toEqual(["k3s"]);
    expect(requests).toContain(`${tag}/k3s`);
    // a second call finds the good binary and downloads only the checksums
    requests.length = 0;
    await downloadK3s({ version, arch: "amd64", destDir: d, baseUrl: base });
    expect(requests).toEqual([`${tag}/sha256sum-amd64.txt`]);
  });

  it("arm64 uses k3s-arm64 and sha256sum-arm64.txt", async () => {
    routes.set(`${tag}/sha256sum-arm64.txt`, `${sha}  k3s-arm64\n`);
    routes.set(`${tag}/k3s-arm64`, good);
    const d = dest();
    expect(readFileSync(await downloadK3s({ version, arch: "arm64", destDir: d, baseUrl: base }))).toEqual(good);
  });

  it("bad checksum: clear error, the download is deleted, nothing installed", async () => {
    routes.set(`${tag}/sha256sum-amd64.txt`, `${sha}  k3s\n`);
    routes.set(`${tag}/k3s`, Buffer.from("tampered"));
    const d = dest();
    await expect(downloadK3s({ version, arch: "amd64", destDir: d, baseUrl: base })).rejects.toThrow(
      new RegExp(`checksum mismatch .* expected sha256 ${sha} .* got [0-9a-f]{64}; the download was deleted`),
    );
    expect(readdirSync(d)).toEqual([]);
  });

  it("bad checksum does not replace an existing good binary", async () => {
    const d = dest();
    writeFileSync(join(d, "k3s"), "old good one");
    routes.set(`${tag}/k3s`, Buffer.from("tampered"));
    await expect(downloadK3s({ version, arch: "amd64", destDir: d, baseUrl: base })).rejects.toThrow(/checksum mismatch/);
    expect(readFileSync(join(d, "k3s"), "utf8")).toBe("old good one");
  });

  it("missing entry: names the asset and what the file has", async () => {
    routes.set(`${tag}/sha256sum-amd64.txt`, `${sha}  k3s-airgap-images-amd64.tar\n`);
    const d = dest();
    await expect(downloadK3s({ version, arch: "amd64", destDir: d, baseUrl: base })).rejects.toThrow(
      /sha256sum-amd64\.txt has no entry for k3s \(entries: k3s-airgap-images-amd64\.tar\)/,
    );
    expect(existsSync(join(d, "k3s"))).toBe(false);
  });

  it("404: names the URL and the status", async () => {
    const d = dest();
    await expect(downloadK3s({ version: "v9.9.9+k3s1", arch: "amd64", destDir: d, baseUrl: base })).rejects.toThrow(
      /GET http:\/\/127\.0\.0\.1:\d+\/releases\/v9\.9\.9%2Bk3s1\/sha256sum-amd64\.txt answered HTTP 404/,
    );
    routes.set(`${tag}/sha256sum-amd64.txt`, `${sha}  k3s\n`);
    routes.delete(`${tag}/k3s`);
    await expect(downloadK3s({ version, arch: "amd64", destDir: d, baseUrl: base })).rejects.toThrow(/\/k3s answered HTTP 404/);
    expect(readdirSync(d)).toEqual([]);
  });

  it("unreachable server and bad input", async () => {
    const d = dest();
    await expect(downloadK3s({ version, arch: "amd64", destDir: d, baseUrl: "http://127.0.0.1:1/x" })).rejects.toThrow(/cannot fetch http:\/\/127\.0\.0\.1:1/);
    await expect(downloadK3s({ version: "../x y", destDir: d, baseUrl: base })).rejects.toThrow(/bad version/);
    await expect(downloadK3s({ version, arch: "s390x" as never, destDir: d, baseUrl: base })).rejects.toThrow(/unsupported k3s architecture/);
  });
});
