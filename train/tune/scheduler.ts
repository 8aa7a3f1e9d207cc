/**
 * The contract between the runner and a trial scheduler (Ray Tune's `TrialScheduler` hooks,
 * reduced to what FIFO and ASHA use). A scheduler must be deterministic given its settings and
 * the sequence of calls: resume replays the journal through a fresh scheduler and expects the
 * very same decisions.
 *
 * @module
 */

import type { Decision, Json, Metrics, Mode } from "./types.ts";

/**
 * A trial scheduler. The runner calls, in this order per trial:
 * `onTrialAdd` (for every trial, in trial order, before anything runs), then `onTrialResult` per
 * reported result; after a `STOP` decision, or when the trainable returns on its own,
 * `onTrialComplete` with the trial's last result; `onTrialError` when it throws.
 */
export interface TrialScheduler {
  /** Settings as JSON (kind included), stored in `experiment.json` and compared on resume. */
  toJSON(): { kind: string; [key: string]: Json };
  /**
   * The time after which the scheduler stops every trial, if any (ASHA's `max_t` when
   * `stopLastTrials`): a `STOP` at or past it counts as `TERMINATED`, earlier as `STOPPED`.
   */
  readonly maxT?: number;
  /** The result key that measures progress (`training_iteration` by default). */
  readonly timeAttr: string;
  /**
   * Sets the metric and mode from `tune()` when the scheduler was built without them; throws
   * when it was built with different ones (Ray's `set_search_properties`).
   */
  setSearchProperties(metric: string, mode: Mode): void;
  /** A trial joins the experiment. */
  onTrialAdd(trialId: string): void;
  /** A trial reported `result` (with `training_iteration` set): continue or stop it? */
  onTrialResult(trialId: string, result: Metrics): Decision;
  /** A trial finished (stopped by this scheduler, or returned); `result` is its last one. */
  onTrialComplete(trialId: string, result: Metrics | undefined): void;
  /** A trial's trainable threw. */
  onTrialError(trialId: string): void;
  /** A one-line-per-bracket summary, for logs. */
  debugString(): string;
}

/** Checks a metric/mode pair set twice (on the scheduler and on `tune()`) and merges them. */
export function mergeSearchProperties(
  current: { metric?: string; mode?: Mode },
  wanted: { metric: string; mode: Mode },
): { metric: string; mode: Mode } {
  const { metric, mode } = wanted;
  if (current.metric !== undefined && current.metric !== metric) {
    throw new Error(`scheduler metric "${current.metric}" differs from tune's "${metric}"`);
  }
  if (current.mode !== undefined && current.mode !== mode) {
    throw new Error(`scheduler mode "${current.mode}" differs from tune's "${mode}"`);
  }
  if (mode !== "min" && mode !== "max") throw new Error(`mode must be "min" or "max", got ${mode}`);
  return { metric, mode };
}
