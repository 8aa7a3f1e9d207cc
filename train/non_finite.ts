/**
 * The error that stops training when the loss, the parameters or the running statistics become
 * NaN or infinite, and the check that raises it from the GPU sums.
 *
 * @module
 */

import type { EpochRecord } from "./history.ts";
import type { AccumulatorSnapshot } from "./metrics_accumulator.ts";

/** Where a non-finite loss was seen. */
export type LossPhase = "training" | "validation" | "evaluation";

/** What became NaN or infinite: the loss, or (after an optimizer step) a model's tensors. */
export type NonFiniteValues = "loss" | "parameters" | "running statistics";

/** The loss (or the model) became NaN or infinite: the run stops. Carries the epochs before. */
export class NonFiniteLossError extends Error {
  /** The epoch (from 1) in which it happened. */
  readonly epoch: number;
  /** The batch (from 1) of that epoch's pass whose loss (or step) was first non-finite. */
  readonly batch: number;
  /** The pass: training, validation, or a plain evaluation. */
  readonly phase: LossPhase;
  /** What became non-finite; default "loss". */
  readonly values: NonFiniteValues;
  /** The first non-finite tensor's name (parameters and running statistics), when known. */
  readonly tensor?: string;
  /** The epochs finished before it (filled in by `fit`). */
  history: EpochRecord[];

  /** Describes the failure; the message names what, the epoch and batch. */
  constructor(init: {
    epoch: number;
    batch: number;
    phase: LossPhase;
    values?: NonFiniteValues;
    tensor?: string;
    history?: EpochRecord[];
  }) {
    const values = init.values ?? "loss";
    const what = values === "loss"
      ? `the ${init.phase} loss`
      : `the ${values}${init.tensor ? ` (first ${init.tensor})` : ""}`;
    super(
      `${what} became NaN or infinite in epoch ${init.epoch} (batch ${init.batch}); ` +
        "training diverged — try a lower learning rate",
    );
    this.name = "NonFiniteLossError";
    this.epoch = init.epoch;
    this.batch = init.batch;
    this.phase = init.phase;
    this.values = values;
    this.tensor = init.tensor;
    this.history = init.history ?? [];
  }
}

/** Names of the tensors `checkFinite` may report, by their index in the flags. */
export interface WatchedNames {
  /** The optimizer's parameters, in its order. */
  parameters?: readonly string[];
  /** The tensors given to `MetricsAccumulator.checkBuffers`, in that order. */
  buffers?: readonly string[];
}

/**
 * Throws `NonFiniteLossError` when the snapshot saw a non-finite loss, parameter or buffer
 * (the earliest batch first; at the same batch, the loss, then parameters, then buffers).
 */
export function checkFinite(
  snapshot: AccumulatorSnapshot,
  epoch: number,
  phase: LossPhase,
  names: WatchedNames = {},
): void {
  const found: { batch: number; values: NonFiniteValues; tensor?: string }[] = [];
  if (snapshot.nonFinite > 0) found.push({ batch: snapshot.firstNonFinite, values: "loss" });
  if (snapshot.parameters) {
    const { batch, index } = snapshot.parameters;
    found.push({ batch, values: "parameters", tensor: names.parameters?.[index] });
  }
  if (snapshot.buffers) {
    const { batch, index } = snapshot.buffers;
    found.push({ batch, values: "running statistics", tensor: names.buffers?.[index] });
  }
  if (found.length === 0) return;
  const first = found.reduce((a, b) => b.batch < a.batch ? b : a);
  throw new NonFiniteLossError({ ...first, epoch, batch: first.batch + 1, phase });
}
