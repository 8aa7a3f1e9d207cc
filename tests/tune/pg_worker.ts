/**
 * One worker of a shared study, for `distributed_test.ts`: a fast fake trainable (no GPU) whose
 * loss depends on its config and epoch, with a checkpoint file per report (checked on resume).
 * Prints `CLAIM`, `LOCK`, `LOST` and `RETRY` lines as they happen and `RESULT <json>` at the end;
 * a storage error is one line on stderr and exit code 2.
 *
 * Usage: `deno run -A pg_worker.ts '<json settings>'`
 */

import { join } from "node:path";
import { AshaScheduler, tune, uniform } from "../../train/tune/mod.ts";
import { StorageError } from "../../train/tune/distributed.ts";
import { encodeMetrics } from "../../train/tune/metrics.ts";

interface Settings {
  url: string;
  study: string;
  dir: string;
  samples: number;
  epochMs: number;
  lease: number;
  concurrency?: number;
  seed?: number;
  maxT?: number;
  maxFailures?: number;
  worker: string;
  /** Milliseconds each epoch blocks the thread (synchronously) after sleeping. */
  blockMs?: number;
}

const s: Settings = JSON.parse(Deno.args[0]);
const maxT = s.maxT ?? 4;
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });

try {
  const grid = await tune({
    trainable: async (config, session) => {
      const x = Number(config.x);
      if (session.checkpoint) {
        const saved = JSON.parse(
          await Deno.readTextFile(join(session.checkpoint.dir, "state.json")),
        );
        if (saved.epoch !== session.iteration || saved.x !== x) {
          throw new Error(`bad checkpoint ${JSON.stringify(saved)} at ${session.iteration}`);
        }
      }
      for (let epoch = session.iteration; epoch < maxT; epoch++) {
        await sleep(s.epochMs, session.signal);
        const until = performance.now() + (s.blockMs ?? 0);
        while (performance.now() < until) { /* a long synchronous step */ }
        const go = await session.report(
          { loss: (x - 0.3) ** 2 + 1 / (epoch + 1), odd: epoch === 0 ? NaN : -Infinity },
          {
            checkpoint: {
              data: { epoch: epoch + 1 },
              save: (dir) =>
                Deno.writeTextFile(
                  join(dir, "state.json"),
                  JSON.stringify({ epoch: epoch + 1, x }),
                ),
            },
          },
        );
        if (!go) return;
      }
    },
    paramSpace: { x: uniform(0, 1) },
    numSamples: s.samples,
    metric: "loss",
    mode: "min",
    seed: s.seed ?? 0,
    scheduler: new AshaScheduler({ maxT, gracePeriod: 1, reductionFactor: 2 }),
    maxConcurrent: s.concurrency ?? 1,
    dir: s.dir,
    storage: s.url,
    study: s.study,
    leaseSeconds: s.lease,
    maxFailures: s.maxFailures,
    retrySeconds: 60,
    workerId: s.worker,
    onStorage: (e) => {
      if (e.kind === "lock") console.log(`LOCK ${e.what} ${e.heldMs.toFixed(2)}`);
      else if (e.kind === "claim") console.log(`CLAIM ${e.trialId} ${e.attempt} ${e.from}`);
      else if (e.kind === "lost") console.log(`LOST ${e.trialId} ${e.attempt}`);
      else console.log(`RETRY ${e.what} ${e.waitMs} ${e.error}`);
    },
  });
  const trials = grid.trials.map((t) => ({
    id: t.id,
    status: t.status,
    iterations: t.iterations,
    history: t.history.map(encodeMetrics),
  }));
  console.log(`RESULT ${JSON.stringify(trials)}`);
} catch (error) {
  if (error instanceof StorageError || (error instanceof Error && /storage/.test(error.message))) {
    console.error(error.message);
    Deno.exit(2);
  }
  throw error;
}
