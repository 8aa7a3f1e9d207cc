/**
 * FIFO: no early stopping (Ray Tune's `FIFOScheduler`), for comparison with ASHA. Every trial
 * runs until its trainable returns, or, with `maxT`, until `timeAttr` reaches `maxT` (what Ray
 * expresses as `stop={"training_iteration": maxT}`).
 *
 * @module
 */

import { mergeSearchProperties, type TrialScheduler } from "./scheduler.ts";
import type { Decision, Json, Metrics, Mode } from "./types.ts";

/** Options of {@linkcode FifoScheduler}. */
export interface FifoOptions {
  /** Stop every trial when `timeAttr` reaches this; unset: trials decide when to end. */
  maxT?: number;
  /** The result key measuring progress. Default `training_iteration`. */
  timeAttr?: string;
}

/** Runs every trial to its end; never stops one early. */
export class FifoScheduler implements TrialScheduler {
  /** Trials stop (TERMINATED) when `timeAttr` reaches this, if set. */
  readonly maxT: number | undefined;
  /** The result key measuring progress. */
  readonly timeAttr: string;
  #metric: string | undefined;
  #mode: Mode | undefined;

  /** A FIFO scheduler, optionally stopping trials at `maxT`. */
  constructor(options: FifoOptions = {}) {
    if (options.maxT !== undefined && !(options.maxT > 0)) {
      throw new RangeError("FIFO: maxT must be positive");
    }
    this.maxT = options.maxT;
    this.timeAttr = options.timeAttr ?? "training_iteration";
  }

  /** The settings, with `kind: "fifo"`. */
  toJSON(): { kind: string; [key: string]: Json } {
    return { kind: "fifo", maxT: this.maxT ?? null, timeAttr: this.timeAttr };
  }

  /** Records the metric and mode (unused by FIFO). */
  setSearchProperties(metric: string, mode: Mode): void {
    ({ metric: this.#metric, mode: this.#mode } = mergeSearchProperties(
      { metric: this.#metric, mode: this.#mode },
      { metric, mode },
    ));
  }

  /** Nothing to do. */
  onTrialAdd(_trialId: string): void {}

  /** CONTINUE, or STOP once `timeAttr` reaches `maxT`. */
  onTrialResult(_trialId: string, result: Metrics): Decision {
    const time = result[this.timeAttr];
    return this.maxT !== undefined && time !== undefined && time >= this.maxT ? "STOP" : "CONTINUE";
  }

  /** Nothing to do. */
  onTrialComplete(_trialId: string, _result: Metrics | undefined): void {}

  /** Nothing to do. */
  onTrialError(_trialId: string): void {}

  /** `Using FIFO scheduling`. */
  debugString(): string {
    return "Using FIFO scheduling";
  }
}
