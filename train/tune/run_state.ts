/**
 * The state of a run as a function of its journal: trial records plus the scheduler. The runner
 * applies each event here as it happens (then journals it); resume applies the journal's events
 * in order to a fresh scheduler and checks that every decision comes out the same.
 *
 * @module
 */

import type { ExperimentSpec } from "./experiment.ts";
import type { JournalEvent } from "./journal.ts";
import { bestOf, ResultGrid, type TrialResult } from "./result_grid.ts";
import type { TrialScheduler } from "./scheduler.ts";
import type { Config, Decision, Metrics, Mode, TrialStatus } from "./types.ts";

/** A trial's mutable record. */
export interface TrialRecord {
  /** Trial id. */
  id: string;
  /** Trial index. */
  index: number;
  /** Its config. */
  config: Config;
  /** Its status. */
  status: TrialStatus;
  /** Its journaled results. */
  history: Metrics[];
  /** Seconds run, as of its last event. */
  seconds: number;
  /** Error message, for ERROR. */
  error?: string;
  /** The slot it was started in. */
  slot?: number;
  /** Its latest committed checkpoint directory. */
  checkpointDir?: string;
}

/** Trial records and scheduler, advanced event by event. */
export class RunState {
  /** Every trial, in order. */
  readonly trials: TrialRecord[];
  /** The scheduler (fed every event). */
  readonly scheduler: TrialScheduler;
  /** The slot of the last result or end event (the deterministic ordering continues after it). */
  lastSlot: number | undefined;
  readonly #byId = new Map<string, TrialRecord>();
  readonly #metric: string;
  readonly #mode: Mode;

  /** Records for every trial of `spec`, each added to `scheduler` in order. */
  constructor(spec: ExperimentSpec, scheduler: TrialScheduler) {
    this.scheduler = scheduler;
    this.#metric = spec.metric;
    this.#mode = spec.mode;
    this.trials = spec.trials.map(({ id, config }, index) => ({
      id,
      index,
      config,
      status: "PENDING" as TrialStatus,
      history: [],
      seconds: 0,
    }));
    for (const trial of this.trials) {
      this.#byId.set(trial.id, trial);
      scheduler.onTrialAdd(trial.id);
    }
  }

  /** The record of `id` (throws for an unknown id). */
  get(id: string): TrialRecord {
    const record = this.#byId.get(id);
    if (!record) throw new Error(`unknown trial ${id}`);
    return record;
  }

  /** The first trial not started yet, if any. */
  nextPending(): TrialRecord | undefined {
    return this.trials.find((t) => t.status === "PENDING");
  }

  /** A trial starts in `slot`. */
  start(id: string, slot: number): void {
    const record = this.get(id);
    if (record.status !== "PENDING") throw new Error(`trial ${id} started twice`);
    record.status = "RUNNING";
    record.slot = slot;
  }

  /**
   * A trial reported `result`: the scheduler decides, the record is updated, and a STOP completes
   * the trial (`onTrialComplete`, as Ray's `stop_trial`). With `options.expected` (replay), a different
   * decision throws.
   */
  result(id: string, result: Metrics, options: { expected?: Decision } = {}): Decision {
    const { expected } = options;
    const record = this.get(id);
    if (record.status !== "RUNNING") throw new Error(`result for ${id}, which is ${record.status}`);
    const decision = this.scheduler.onTrialResult(id, result);
    if (expected !== undefined && decision !== expected) {
      throw new Error(
        `resume: the scheduler now decides ${decision} for ${id} at ${
          JSON.stringify(result)
        }, but the journal says ${expected}; the scheduler settings or code differ from the run`,
      );
    }
    record.history.push(result);
    record.seconds = result.time_total_s ?? record.seconds;
    this.lastSlot = record.slot;
    if (decision === "STOP") {
      this.scheduler.onTrialComplete(id, result);
      const { maxT, timeAttr } = this.scheduler;
      const time = result[timeAttr];
      record.status = maxT !== undefined && time !== undefined && time >= maxT
        ? "TERMINATED"
        : "STOPPED";
    }
    return decision;
  }

  /** A trial's trainable returned (TERMINATED) or threw (ERROR) without a STOP. */
  end(
    id: string,
    ending: { status: "TERMINATED" | "ERROR"; error?: string; seconds: number },
  ): void {
    const record = this.get(id);
    if (record.status !== "RUNNING") throw new Error(`end of ${id}, which is ${record.status}`);
    if (ending.status === "TERMINATED") {
      this.scheduler.onTrialComplete(id, record.history.at(-1));
    } else {
      this.scheduler.onTrialError(id);
      record.error = ending.error;
    }
    record.status = ending.status;
    record.seconds = ending.seconds;
    this.lastSlot = record.slot;
  }

  /** Applies a journaled event (replay), checking result decisions. */
  replay(event: JournalEvent): void {
    switch (event.type) {
      case "start":
        this.start(event.trial, event.slot);
        break;
      case "result":
        this.result(event.trial, event.result, { expected: event.decision });
        break;
      case "end":
        this.end(event.trial, event);
        break;
      case "reclaim":
        if (this.get(event.trial).status !== "RUNNING") {
          throw new Error(`journal: reclaim of ${event.trial}, which is not RUNNING`);
        }
        break;
      default:
        throw new Error(`journal: unknown event ${JSON.stringify(event)}`);
    }
  }

  /** The trials as a result grid (a snapshot). */
  grid(): ResultGrid {
    const trials: TrialResult[] = this.trials.map((t) => ({
      id: t.id,
      index: t.index,
      config: t.config,
      status: t.status,
      iterations: t.history.length,
      lastResult: t.history.at(-1),
      history: [...t.history],
      bestMetric: bestOf(t.history, this.#metric, this.#mode),
      seconds: t.seconds,
      ...(t.error !== undefined ? { error: t.error } : {}),
      ...(t.checkpointDir !== undefined ? { checkpointDir: t.checkpointDir } : {}),
    }));
    return new ResultGrid(trials, { metric: this.#metric, mode: this.#mode });
  }
}
