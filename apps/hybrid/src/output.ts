/** Output helpers: live progress on a terminal, plain lines under CI or when piped. */

/** True when progress should be plain lines: not a TTY, or `CI` set. */
export function plainOutput(): boolean {
  return !process.stdout.isTTY || Boolean(process.env.CI);
}

/** A failure the CLI reports as one line (no stack) with an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CliError";
  }
}

/** Parses `90s`, `2m`, `1h`, `1h30m` or bare seconds into seconds. @throws CliError on bad input. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const re = /(\d+(?:\.\d+)?)(h|m|s|ms)/g;
  let total = 0;
  let consumed = 0;
  for (const m of t.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === "h" ? n * 3600 : m[2] === "m" ? n * 60 : m[2] === "s" ? n : n / 1000;
    consumed += m[0].length;
  }
  if (consumed !== t.length || consumed === 0) throw new CliError(`invalid duration "${text}": use e.g. 90s, 2m, 1h30m`, 2);
  return total;
}
