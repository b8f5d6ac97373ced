/**
 * Fuzz: random and truncated stdin, random environments. The plugin must never crash: every run
 * exits 0 (a valid answer) or non-zero with the spec's error object on stdout.
 */
import { afterAll, describe, expect, it } from "vitest";
import { netConf, pool, runVia, stopServers, tempDir, VIAS, serveUnder } from "./helpers.js";

const T = tempDir("fuzz");
serveUnder(T.dir);
afterAll(async () => {
  await stopServers();
  T.cleanup();
});

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMMANDS = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC", "", "add", "BOGUS"];
const VALUES = ["", "x", "eth0", "a/b", "..", "/proc/1/ns/net", "c1", "IP=10.123.0.9", "K;=", "IP=300.1.1.1", "é", "a".repeat(300)];

function mutateJson(r: () => number): string {
  const base = JSON.stringify(netConf(T.dir, { prevResult: r() < 0.3 ? { ips: [{ address: "10.123.0.9/24" }] } : undefined }));
  const kind = Math.floor(r() * 5);
  if (kind === 0) return base.slice(0, Math.floor(r() * base.length)); // truncated
  if (kind === 1) {
    // random bytes
    return Buffer.from(Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256))).toString("latin1");
  }
  if (kind === 2) {
    // flip characters, but not in the `dataDir` key or its path: a mangled one would make the
    // plugin create IPAM dirs outside the test's temp dir (or in the default /var/lib/cni/networks) (a real outcome, but litter on the machine).
    const chars = base.split("");
    const key = `"dataDir":${JSON.stringify(T.dir)}`;
    const from = base.indexOf(key);
    const protectedAt = (i: number) => from >= 0 && i >= from && i < from + key.length;
    for (let i = 0; i < 1 + r() * 5; i++) {
      const at = Math.floor(r() * chars.length);
      if (!protectedAt(at)) chars[at] = String.fromCharCode(32 + Math.floor(r() * 90));
    }
    return chars.join("");
  }
  if (kind === 3) {
    // wrong types in fields
    const o = JSON.parse(base) as Record<string, unknown>;
    const keys = ["cniVersion", "name", "mode", "mtu", "ipam", "prevResult", "dns", "cni.dev/valid-attachments"];
    const vals: unknown[] = [null, 1, -1, "x", [], {}, [1], { ranges: 5 }, { ranges: [[{ subnet: 3 }]] }, true, 1e309 as unknown];
    o[keys[Math.floor(r() * keys.length)]!] = vals[Math.floor(r() * vals.length)];
    return JSON.stringify(o);
  }
  return base;
}

// Each via runs the same seeds; the state dir is shared (the runs are independent). Through the
// client, configs naming T.dir go to the server (client+server) or to the Node fallback (client);
// garbage goes wherever the client's socket rule sends it, and must still give a spec answer.
describe.each(VIAS)("fuzz via %s", (via) => {
  it("300 random runs (seeded): never a crash, always a result or a spec error object", async () => {
    const seeds = Array.from({ length: 300 }, (_, i) => 1000 + i);
    const bad = (
      await pool(seeds, 8, async (seed) => {
        const r = rng(seed);
        const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
        const env: Record<string, string | undefined> = {
          CNI_COMMAND: pick(COMMANDS),
          CNI_CONTAINERID: r() < 0.8 ? pick(["c1", "c2", ...VALUES]) : undefined,
          CNI_IFNAME: r() < 0.8 ? pick(["eth0", ...VALUES]) : undefined,
          CNI_NETNS: r() < 0.8 ? pick(["/proc/1/ns/net", ...VALUES]) : undefined,
          CNI_ARGS: r() < 0.3 ? pick(VALUES) : undefined,
        };
        const stdin = mutateJson(r);
        const res = await runVia(via, env, stdin);
        const okExit = res.code === 0;
        const okError =
          res.code !== 0 &&
          res.code !== null &&
          typeof res.json?.code === "number" &&
          typeof res.json?.msg === "string" &&
          res.stderr === "";
        return okExit || okError ? undefined : { seed, env, stdin, res };
      })
    ).filter((x) => x !== undefined);
    expect(bad).toEqual([]);
  });
});
