/**
 * The stack's configuration: defaults need no file; a YAML or JSON file (`--config FILE`) is
 * validated with zod and any error names the field and the file.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

const tristate = z.union([z.literal("auto"), z.boolean()]);

/** Schema of the config file. Every field is optional; see {@link DEFAULT_CONFIG}. */
export const ConfigSchema = z
  .object({
    /** Directory holding the state file, mounts, logs (default `/var/lib/hybrid`). */
    stateDir: z.string().min(1).optional(),
    cgroupfs: z
      .object({
        /** `auto`: mount when doctor finds no usable cgroup v2 hierarchy. */
        enabled: tristate.default("auto"),
        /** FUSE mount point; default `<stateDir>/cgroup`. */
        mountpoint: z.string().min(1).optional(),
        /** Time to wait for the mount to serve, seconds. */
        readyTimeout: z.number().positive().default(20),
      })
      .strict()
      .default({ enabled: "auto", readyTimeout: 20 }),
    cni: z
      .object({
        enabled: tristate.default("auto"),
        /** CNI network name (the conflist `name`). */
        network: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "a CNI network name: letters, digits, _ . -").default("hybrid"),
        /** Pod subnet in CIDR form. */
        subnet: z
          .string()
          .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, "an IPv4 CIDR such as 10.42.0.0/24")
          .refine((c) => c.split("/")[0]!.split(".").every((o) => Number(o) <= 255), "each octet must be 0-255")
          .refine((c) => Number(c.split("/")[1]) >= 8 && Number(c.split("/")[1]) <= 30, "the prefix length must be 8..30 (a /31 or /32 leaves no address for pods)")
          .default("10.42.0.0/24"),
        /** `auto`: `veth` where a netns and veth pair can be made, else `noop`. */
        mode: z.enum(["auto", "veth", "noop"]).default("auto"),
      })
      .strict()
      .default({ enabled: "auto", network: "hybrid", subnet: "10.42.0.0/24", mode: "auto" }),
    shim: z
      .object({
        enabled: tristate.default("auto"),
        /** Kernel release reported by uname to traced programs when the real one reads below 4.11. */
        unameRelease: z.string().min(1).default("5.15.0-hybrid"),
        /** Write each rewrite to `<stateDir>/logs/shim-trace.log`. */
        traceLog: z.boolean().default(false),
      })
      .strict()
      .default({ enabled: "auto", unameRelease: "5.15.0-hybrid", traceLog: false }),
    runtime: z
      .object({
        /** `auto`: k3s when a binary is found (`--k3s-bin`, `K3S_BIN`, PATH), else containerd. */
        kind: z.enum(["auto", "k3s", "containerd"]).default("auto"),
        /** Path of the k3s binary. */
        k3sBin: z.string().min(1).optional(),
        /** Extra arguments appended to `k3s server`. */
        k3sArgs: z.array(z.string()).default([]),
        /** HTTPS port of the k3s API server. */
        httpsPort: z.number().int().min(1).max(65535).default(6443),
        /** Seconds to wait for the runtime to answer. */
        readyTimeout: z.number().positive().default(60),
      })
      .strict()
      .default({ kind: "auto", k3sArgs: [], httpsPort: 6443, readyTimeout: 60 }),
    soak: z
      .object({
        /** Seconds between probe rounds. */
        interval: z.number().positive().default(10),
      })
      .strict()
      .default({ interval: 10 }),
  })
  .strict();

export type HybridConfig = z.infer<typeof ConfigSchema>;

/** The configuration used when no file is given. */
export const DEFAULT_CONFIG: HybridConfig = ConfigSchema.parse({});

/** A config file that could not be read, parsed or validated. `field` is a dotted path. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ConfigError";
  }
}

/**
 * Validates an already-parsed config object.
 * @throws ConfigError naming the first invalid field (`cni.subnet`, ...) and `file`.
 */
export function validateConfig(raw: unknown, file = "<inline>"): HybridConfig {
  const result = ConfigSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.map(String);
  // An unknown key is named by its own dotted path (`cni.subnett`), not its section's.
  if (issue.code === "unrecognized_keys") path.push(issue.keys[0]!);
  const field = path.join(".") || "(top level)";
  const message = issue.code === "unrecognized_keys" ? `unknown field${issue.keys.length > 1 ? "s " + issue.keys.join(", ") : ""}` : issue.message;
  throw new ConfigError(`${file}: invalid config at field "${field}": ${message}`, file, field);
}

/**
 * Reads and validates a YAML or JSON config file (JSON is YAML).
 * @throws ConfigError when the file is missing, unparsable or invalid.
 */
export async function loadConfig(file?: string): Promise<HybridConfig> {
  if (!file) return DEFAULT_CONFIG;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new ConfigError(`${file}: cannot read config file: ${(cause as Error).message}`, file, undefined, { cause });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new ConfigError(`${file}: not valid YAML/JSON: ${(cause as Error).message}`, file, undefined, { cause });
  }
  return validateConfig(raw, file);
}
