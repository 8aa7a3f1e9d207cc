/**
 * `experiment.json`: everything a run fixes up front (metric, mode, scheduler settings, the
 * search space, and every trial's sampled config), written once, atomically, before any trial
 * starts. Resume reads it back, so a resumed run uses the very same configs and settings.
 *
 * @module
 */

import { join } from "node:path";
import { readJsonIfExists, writeJsonAtomic } from "./fs_atomic.ts";
import type { Config, Json, Mode } from "./types.ts";

/** The file name inside the run directory. */
export const EXPERIMENT_FILE = "experiment.json";

/** How reports of concurrent trials are ordered (see `TuneOptions.ordering`). */
export type Ordering = "deterministic" | "arrival";

/** The contents of `experiment.json`. */
export interface ExperimentSpec {
  /** Format version (1). */
  version: 1;
  /** The metric optimised. */
  metric: string;
  /** Its mode. */
  mode: Mode;
  /** The search space as JSON (domains as `{ $domain: ... }`). */
  paramSpace: Json;
  /** Samples per grid point. */
  numSamples: number;
  /** The sampling seed. */
  seed: number;
  /** Trials run at once. */
  maxConcurrent: number;
  /** How concurrent reports are ordered. */
  ordering: Ordering;
  /** The scheduler's settings (`scheduler.toJSON()`). */
  scheduler: { kind: string; [key: string]: Json };
  /** Every trial, in order. */
  trials: { id: string; config: Config }[];
  /** Free JSON from the caller (e.g. the CLI's own options, to rebuild the trainable). */
  meta: Json;
}

/** Writes `experiment.json` into `dir`. */
export async function writeExperiment(dir: string, spec: ExperimentSpec): Promise<void> {
  await writeJsonAtomic(join(dir, EXPERIMENT_FILE), spec);
}

/** Reads `experiment.json` from a run directory, or undefined if there is none. */
export async function readExperiment(dir: string): Promise<ExperimentSpec | undefined> {
  const spec = await readJsonIfExists<ExperimentSpec>(join(dir, EXPERIMENT_FILE));
  if (spec !== undefined && spec.version !== 1) {
    throw new Error(`${join(dir, EXPERIMENT_FILE)}: unknown version ${spec.version}`);
  }
  return spec;
}

/** `trial_00007` for index 7. */
export function trialId(index: number): string {
  return `trial_${String(index).padStart(5, "0")}`;
}
