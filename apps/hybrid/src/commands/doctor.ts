import { readFile } from "node:fs/promises";
import { loadConfig } from "../config.js";
import { CliError } from "../output.js";
import { diagnoseLog } from "../diagnose.js";
import { formatFindings, runDoctor } from "../doctor/index.js";

export interface DoctorOptions {
  json?: boolean;
  config?: string;
  /** A log file to diagnose (k3s, kubelet, containerd, runc, CNI output). */
  log?: string;
}

/**
 * `hybrid doctor [--json] [--log FILE]`: probes the environment and says which layers are needed;
 * with `--log`, also names the cause and fix of each recognised failure line.
 * @returns exit code: 0, or 1 when `--log` found failures.
 */
export default async function doctor(opts: DoctorOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const findings = await runDoctor(config);
  let diagnoses;
  if (opts.log) {
    const text = await readFile(opts.log, "utf8").catch((e: Error) => {
      throw new CliError(`--log ${opts.log}: ${e.message}`, 2, { cause: e });
    });
    diagnoses = diagnoseLog(text);
  }
  if (opts.json) {
    process.stdout.write(JSON.stringify(diagnoses ? { ...findings, diagnoses } : findings, null, 2) + "\n");
  } else {
    process.stdout.write(formatFindings(findings) + "\n");
    if (diagnoses) {
      process.stdout.write(`\n${opts.log}: ${diagnoses.length} recognised failure line(s)\n`);
      for (const d of diagnoses) {
        process.stdout.write(`  line ${d.lineNumber}: ${d.cause} (${d.component})\n    fix: ${d.fix} [${d.layers.join(", ")}]\n`);
      }
    }
  }
  return diagnoses && diagnoses.length ? 1 : 0;
}
