/**
 * The options of `tune()` and the progress it reports.
 *
 * @module
 */

import type { Ordering } from "./experiment.ts";
import type { TrialScheduler } from "./scheduler.ts";
import type { Trainable } from "./session.ts";
import type { Config, Decision, Json, Mode, TrialStatus } from "./types.ts";
import type { ParamSpace } from "./variants.ts";

/** Live progress, passed to `onProgress` after every processed event. */
export interface TuneProgress {
  /** Trials in the run. */
  total: number;
  /** Trials per status. */
  counts: Record<TrialStatus, number>;
  /** The best trial so far (by last reported value), if any. */
  best?: { trialId: string; value: number; config: Config };
  /** What just happened. */
  event: {
    /** The trial concerned. */
    trialId: string;
    /** A result was processed, or a trial ended (returned or threw). */
    kind: "result" | "end";
    /** The result's `training_iteration`. */
    iteration?: number;
    /** The scheduler's decision on the result. */
    decision?: Decision;
    /** The trial's status after the event. */
    status: TrialStatus;
    /** The error message, when the trial just failed. */
    error?: string;
  };
  /** Seconds since `tune()` was called. */
  elapsedSeconds: number;
}

/** What a worker of a shared study reports to `onStorage` (diagnostics and measurements). */
export type StorageEvent =
  | {
    /** A transaction holding the study's lock committed, `heldMs` after taking the lock. */
    kind: "lock";
    /** What it did: `claim`, `report` or `end`. */
    what: string;
    /** Milliseconds between `SELECT ... FOR UPDATE` returning and COMMIT. */
    heldMs: number;
  }
  | {
    /** The database was unreachable; retrying after `waitMs`. */
    kind: "retry";
    /** What was tried. */
    what: string;
    /** Milliseconds until the next try. */
    waitMs: number;
    /** The error. */
    error: string;
  }
  | {
    /** This worker lost a trial's lease (another worker took it over); its trainable is aborted. */
    kind: "lost";
    /** The trial. */
    trialId: string;
    /** The attempt that lost it. */
    attempt: number;
  }
  | {
    /** This worker claimed a trial. */
    kind: "claim";
    /** The trial. */
    trialId: string;
    /** Its attempt (1 for a fresh start). */
    attempt: number;
    /** The iteration it resumes from (0: from scratch). */
    from: number;
  };

/** Options of {@linkcode tune}. */
export interface TuneOptions {
  /** The function that trains one config (see `TrialSession`). */
  trainable: Trainable;
  /** The run directory (created if needed; must not hold another run unless resuming). */
  dir: string;
  /** The search space (required for a fresh run; on resume, must match if given). */
  paramSpace?: ParamSpace;
  /** Samples per grid point (Ray's `num_samples`). Default 1. */
  numSamples?: number;
  /** The metric to optimise (required for a fresh run). */
  metric?: string;
  /** `min` or `max` (required for a fresh run). */
  mode?: Mode;
  /** The scheduler. Default: FIFO. On resume, default: the one saved in `experiment.json`. */
  scheduler?: TrialScheduler;
  /**
   * Trials run at once. Default 1: one trial saturates a software adapter, and JavaScript runs
   * every trial on one thread anyway; see `suggestMaxConcurrent` for hardware GPUs.
   */
  maxConcurrent?: number;
  /** How concurrent trials' reports are ordered. Default `deterministic` (see the module notes). */
  ordering?: Ordering;
  /** Seed of the config sampling. Default 0. */
  seed?: number;
  /** Continue the run in `dir` where it stopped. */
  resume?: boolean;
  /** Aborting stops the run: running trials' reports throw `TrialStopped`, `tune()` rejects. */
  signal?: AbortSignal;
  /** Called after every processed event. */
  onProgress?: (progress: TuneProgress) => void;
  /** Free JSON saved in `experiment.json` (e.g. what the CLI needs to rebuild the trainable). */
  meta?: Json;
  /**
   * Shared storage of a study run by several workers (machines or processes): a
   * `postgres://user:password@host:port/database` URL. Every worker runs `tune()` with the same
   * settings; the first creates the study, the others join it (different settings are refused),
   * and each claims trials until none is left. `dir` then only holds this worker's scratch files
   * (checkpoints live in the database). Without it, the run lives in `dir` (journal.jsonl).
   * Needs `npm:postgres`, loaded only when this is set.
   */
  storage?: string;
  /** The study's name in `storage` (required with it). */
  study?: string;
  /** With `storage`: seconds a claimed trial's lease lasts without a heartbeat. Default 30. */
  leaseSeconds?: number;
  /** With `storage`: how many times a trial may lose its worker before it counts as ERROR. Default 3. */
  maxFailures?: number;
  /** With `storage`: how long to keep retrying while the database is unreachable. Default 600 s. */
  retrySeconds?: number;
  /** With `storage`: this worker's name in the trials table. Default `host:pid`. */
  workerId?: string;
  /** With `storage`: called on lock-holding commits, retries, claims and lost leases. */
  onStorage?: (event: StorageEvent) => void;
}
