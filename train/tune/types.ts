/**
 * Value types shared by the tuner: JSON values, metrics, modes and trial statuses.
 *
 * @module
 */

/** Any value that survives `JSON.stringify` / `JSON.parse` unchanged. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A trial's resolved hyperparameters (plain JSON: numbers, strings, nested objects). */
export type Config = { [key: string]: Json };

/**
 * One reported result: metric name → number. The runner adds `training_iteration` (1 for the
 * first report), `time_this_iter_s` and `time_total_s`, as Ray Tune does.
 */
export type Metrics = { [name: string]: number };

/** Whether the tuned metric is minimised or maximised. */
export type Mode = "min" | "max";

/**
 * Where a trial stands.
 * - `PENDING`: not started yet.
 * - `RUNNING`: started, not finished.
 * - `TERMINATED`: ran to its end (the trainable returned, or it reached the scheduler's `maxT`).
 * - `STOPPED`: stopped early by the scheduler (an ASHA rung cut it off).
 * - `ERROR`: the trainable threw; the message is kept, other trials go on.
 */
export type TrialStatus = "PENDING" | "RUNNING" | "TERMINATED" | "STOPPED" | "ERROR";

/** What a scheduler tells the runner after a result. */
export type Decision = "CONTINUE" | "STOP";
