/**
 * The trainable contract: Ray Tune's function API, adapted to async TypeScript.
 *
 * ```ts
 * const trainable: Trainable = async (config, session) => {
 *   const model = makeModel(config);
 *   if (session.checkpoint) await model.load(session.checkpoint.dir); // resumed
 *   for (let epoch = session.iteration; epoch < 10; epoch++) {
 *     const valLoss = await trainOneEpoch(model, config, session.signal);
 *     const go = await session.report({ val_loss: valLoss }, {
 *       checkpoint: { data: { epoch: epoch + 1 }, save: (dir) => model.save(dir) },
 *     });
 *     if (!go) return; // stopped by the scheduler (ASHA rung or max_t)
 *   }
 * };
 * ```
 *
 * @module
 */

import type { Config, Json, Metrics } from "./types.ts";

/**
 * Thrown by `session.report()` when the trial may not go on: the whole run was aborted, or the
 * trainable reported again after being told to stop. Let it propagate: the runner catches it and
 * does not count the trial as failed.
 */
export class TrialStopped extends Error {
  /** Why: `"aborted"` (the run's signal fired) or `"stopped"` (the scheduler stopped the trial). */
  readonly reason: "aborted" | "stopped";
  /** A stop signal with its reason. */
  constructor(reason: "aborted" | "stopped") {
    super(reason === "aborted" ? "the tuning run was aborted" : "the trial was stopped");
    this.name = "TrialStopped";
    this.reason = reason;
  }
}

/** What to save with a result; the checkpoint is committed together with it. */
export interface CheckpointSpec {
  /** Small JSON state (epoch, RNG state, LR-schedule step...). */
  data?: Json;
  /**
   * Writes the trial's files (weights, optimizer state) into `dir`, a fresh private directory.
   * The runner then renames it into place atomically, so a crash never leaves half a checkpoint.
   */
  save?: (dir: string) => Promise<void>;
}

/** Options of `session.report()`. */
export interface ReportOptions {
  /** A checkpoint for this iteration, to resume from after a crash. */
  checkpoint?: CheckpointSpec;
}

/** A committed checkpoint, handed back to a resumed trial. */
export interface TrialCheckpoint {
  /** The iteration it was saved at (`training_iteration` of that report). */
  iteration: number;
  /** The `data` saved with it (null if none). */
  data: Json;
  /** Its directory, holding the files `save` wrote. */
  dir: string;
}

/** What a trainable gets besides its config. */
export interface TrialSession {
  /** The trial's id, e.g. `trial_00003`. */
  readonly trialId: string;
  /** The trial's own directory, `<dir>/<trialId>/` (checkpoints live inside). */
  readonly trialDir: string;
  /** The trial's config (same object as the trainable's first argument). */
  readonly config: Config;
  /**
   * Iterations done so far: at start, 0 for a fresh trial and the checkpoint's iteration for a
   * resumed one (start the epoch loop here); one more after each answered report.
   */
  readonly iteration: number;
  /** The checkpoint to resume from (the latest committed one), or undefined for a fresh start. */
  readonly checkpoint: TrialCheckpoint | undefined;
  /**
   * Aborted when the trial must end: the scheduler stopped it, or the run was aborted. Long epochs
   * may check it between batches and throw `signal.reason` (a {@linkcode TrialStopped}).
   */
  readonly signal: AbortSignal;
  /**
   * Records one iteration's metrics (`training_iteration` becomes `iteration + 1`) and, if given,
   * its checkpoint. Resolves to true to go on, false when the scheduler stopped the trial (then
   * return). Rejects with {@linkcode TrialStopped} when the run was aborted or after a false, and
   * with the error of `checkpoint.save` if that failed. Await it before training further.
   */
  report(metrics: Metrics, options?: ReportOptions): Promise<boolean>;
}

/** A trainable: trains one config, reporting once per epoch; resolves when done. */
export type Trainable = (config: Config, session: TrialSession) => Promise<void>;
