/**
 * Setting a run up: a fresh run samples every config and writes `experiment.json`; a resumed one
 * reads it back and checks that what the caller passed agrees with it.
 *
 * @module
 */

import { join } from "node:path";
import { type ExperimentSpec, readExperiment, trialId, writeExperiment } from "./experiment.ts";
import { FifoScheduler } from "./fifo.ts";
import { readJournal } from "./journal.ts";
import type { TrialScheduler } from "./scheduler.ts";
import { schedulerFromJSON } from "./scheduler_json.ts";
import type { TuneOptions } from "./tune_options.ts";
import { generateConfigs } from "./variants.ts";

/** The journal's file name inside the run directory. */
export const JOURNAL_FILE = "journal.jsonl";

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The run's spec and scheduler: sampled and saved (fresh run) or loaded and checked (resume). */
export async function prepareSpec(options: TuneOptions): Promise<{
  spec: ExperimentSpec;
  scheduler: TrialScheduler;
}> {
  await Deno.mkdir(options.dir, { recursive: true });
  const existing = await readExperiment(options.dir);
  if (options.resume) {
    if (!existing) throw new Error(`resume: no experiment.json in ${options.dir}`);
    const check = (name: string, given: unknown, saved: unknown) => {
      if (given !== undefined && !sameJson(given, saved)) {
        throw new Error(
          `resume: ${name} ${JSON.stringify(given)} differs from the run's ${
            JSON.stringify(saved)
          }`,
        );
      }
    };
    check("metric", options.metric, existing.metric);
    check("mode", options.mode, existing.mode);
    check("numSamples", options.numSamples, existing.numSamples);
    check("seed", options.seed, existing.seed);
    check("maxConcurrent", options.maxConcurrent, existing.maxConcurrent);
    check("ordering", options.ordering, existing.ordering);
    if (options.paramSpace !== undefined) {
      check("paramSpace", JSON.parse(JSON.stringify(options.paramSpace)), existing.paramSpace);
    }
    const scheduler = options.scheduler ?? schedulerFromJSON(existing.scheduler);
    scheduler.setSearchProperties(existing.metric, existing.mode);
    check("scheduler", scheduler.toJSON(), existing.scheduler);
    return { spec: existing, scheduler };
  }
  if (existing) {
    throw new Error(`${options.dir} already holds a run: pass resume: true, or use another dir`);
  }
  if ((await readJournal(join(options.dir, JOURNAL_FILE))).length > 0) {
    throw new Error(`${options.dir} holds a ${JOURNAL_FILE} but no experiment.json`);
  }
  const built = buildSpec(options);
  await writeExperiment(options.dir, built.spec);
  return built;
}

/**
 * A fresh run's spec and scheduler (configs sampled, nothing written): what `experiment.json`
 * holds, and what a worker of a shared study proposes (see `distributed.ts`).
 */
export function buildSpec(options: TuneOptions): {
  spec: ExperimentSpec;
  scheduler: TrialScheduler;
} {
  const { metric, mode, paramSpace } = options;
  if (metric === undefined || mode === undefined || paramSpace === undefined) {
    throw new Error("tune: metric, mode and paramSpace are required for a new run");
  }
  const numSamples = options.numSamples ?? 1, seed = options.seed ?? 0;
  const maxConcurrent = options.maxConcurrent ?? 1;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
    throw new RangeError(`maxConcurrent must be a positive integer, got ${maxConcurrent}`);
  }
  const ordering = options.ordering ?? (options.storage ? "arrival" : "deterministic");
  if (ordering !== "deterministic" && ordering !== "arrival") {
    throw new Error(`ordering must be "deterministic" or "arrival", got ${ordering}`);
  }
  const scheduler = options.scheduler ?? new FifoScheduler();
  scheduler.setSearchProperties(metric, mode);
  const configs = generateConfigs(paramSpace, { numSamples, seed });
  const spec: ExperimentSpec = {
    version: 1,
    metric,
    mode,
    paramSpace: JSON.parse(JSON.stringify(paramSpace)),
    numSamples,
    seed,
    maxConcurrent,
    ordering,
    scheduler: scheduler.toJSON(),
    trials: configs.map((config, index) => ({ id: trialId(index), config })),
    meta: options.meta ?? null,
  };
  return { spec, scheduler };
}
