/** Restart-on-crash supervision of a native runtime, with bounded exponential backoff. */
import type { RuntimeHandle } from "./runtime.js";

/** Options of {@link supervise}. */
export interface SuperviseOptions {
  /** Restarts allowed in total before giving up; default 5. */
  maxRestarts?: number;
  /** First backoff in ms; doubles each restart up to `maxBackoffMs`. Default 1000. */
  backoffMs?: number;
  /** Default 30 000. */
  maxBackoffMs?: number;
  /** A run that lasted this long (ms) resets the backoff (not the restart budget). Default 60 000. */
  resetAfterMs?: number;
  /** Called on each crash / restart / give-up. */
  onEvent?: (e: { type: "crashed" | "restarted" | "gave-up" | "restart-failed"; restarts: number; detail: string; delayMs?: number }) => void;
}

/** A running supervision. */
export interface Supervisor {
  /** The handle of the current run. */
  current(): RuntimeHandle;
  /** Number of restarts so far. */
  restarts(): number;
  /** Stops supervising and stops the current run. */
  stop(): Promise<void>;
  /** Resolves when supervision ends: stopped (`"stopped"`) or out of restarts (`"gave-up"`, with the last crash). */
  done: Promise<{ reason: "stopped" | "gave-up"; detail: string }>;
}

/**
 * Starts `start()` and restarts it when its process exits by itself (a crash), waiting
 * `backoffMs`, `2·backoffMs`, ... (capped at `maxBackoffMs`) between attempts, at most `maxRestarts` times.
 * @throws the first `start()` error unchanged (nothing is supervised then).
 * @throws TypeError when the handle has no `exited` promise (Docker handles: use Docker's restart policy).
 */
export async function supervise(start: () => Promise<RuntimeHandle>, opts: SuperviseOptions = {}): Promise<Supervisor> {
  const maxRestarts = opts.maxRestarts ?? 5;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  let backoff = opts.backoffMs ?? 1000;
  let current = await start();
  if (!current.exited) throw new TypeError("supervise: the runtime handle has no exited promise");
  let restarts = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  let finish!: (r: { reason: "stopped" | "gave-up"; detail: string }) => void;
  const done = new Promise<{ reason: "stopped" | "gave-up"; detail: string }>((r) => (finish = r));

  const loop = async (): Promise<void> => {
    for (;;) {
      const startedAt = Date.now();
      const ex = await current.exited!;
      if (stopped) return finish({ reason: "stopped", detail: "stopped by caller" });
      const detail = `${current.kind} pid ${current.pid} exited (${ex.signal ?? `code ${ex.code}`})`;
      opts.onEvent?.({ type: "crashed", restarts, detail });
      if (Date.now() - startedAt >= (opts.resetAfterMs ?? 60_000)) backoff = opts.backoffMs ?? 1000;
      for (;;) {
        if (restarts >= maxRestarts) {
          opts.onEvent?.({ type: "gave-up", restarts, detail });
          return finish({ reason: "gave-up", detail });
        }
        const delayMs = backoff;
        await new Promise<void>((r) => {
          const t = setTimeout(r, delayMs);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        wake = undefined;
        if (stopped) return finish({ reason: "stopped", detail: "stopped by caller" });
        backoff = Math.min(backoff * 2, maxBackoff);
        restarts++;
        try {
          current = await start();
          opts.onEvent?.({ type: "restarted", restarts, detail: `${current.kind} pid ${current.pid}`, delayMs });
          break;
        } catch (e) {
          opts.onEvent?.({ type: "restart-failed", restarts, detail: (e as Error).message, delayMs });
        }
      }
    }
  };
  void loop();
  return {
    current: () => current,
    restarts: () => restarts,
    done,
    stop: async () => {
      stopped = true;
      wake?.();
      await current.stop();
      await done;
    },
  };
}
