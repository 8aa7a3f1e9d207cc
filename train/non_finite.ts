/**
 * The error that stops training when the loss becomes NaN or infinite, and the check that
 * raises it from the GPU sums.
 *
 * @module
 */

import type { EpochRecord } from "./history.ts";
import type { AccumulatorSnapshot } from "./metrics_accumulator.ts";

/** Where a non-finite loss was seen. */
export type LossPhase = "training" | "validation" | "evaluation";

/** The loss became NaN or infinite: the run stops. Carries the epochs finished before. */
export class NonFiniteLossError extends Error {
  /** The epoch (from 1) in which it happened. */
  readonly epoch: number;
  /** The batch (from 1) of that epoch's pass whose loss was first non-finite. */
  readonly batch: number;
  /** The pass: training, validation, or a plain evaluation. */
  readonly phase: LossPhase;
  /** The epochs finished before it (filled in by `fit`). */
  history: EpochRecord[];

  /** Describes the failure; the message names the epoch and batch. */
  constructor(init: { epoch: number; batch: number; phase: LossPhase; history?: EpochRecord[] }) {
    super(
      `the ${init.phase} loss became NaN or infinite in epoch ${init.epoch} ` +
        `(batch ${init.batch}); training diverged — try a lower learning rate`,
    );
    this.name = "NonFiniteLossError";
    this.epoch = init.epoch;
    this.batch = init.batch;
    this.phase = init.phase;
    this.history = init.history ?? [];
  }
}

/** Throws `NonFiniteLossError` when the snapshot saw a non-finite loss. */
export function checkFinite(snapshot: AccumulatorSnapshot, epoch: number, phase: LossPhase): void {
  if (snapshot.nonFinite > 0) {
    throw new NonFiniteLossError({ epoch, batch: snapshot.firstNonFinite + 1, phase });
  }
}
