/**
 * `evaluate(model, loader)`: mean loss per sample (NLL by default, or `loss`), accuracy and any
 * `metrics` in eval mode under `noGrad`, with
 * the sums (and optionally a confusion matrix) accumulated on the GPU and read back once.
 *
 * @module
 */

import { noGrad } from "../nn/autograd.ts";
import type { Module } from "../nn/modules/module.ts";
import { nllLoss } from "../nn/ops/softmax.ts";
import { tidy } from "../nn/scope.ts";
import { type BatchLoader, BatchMeasure, forwardBatch } from "./batch_measure.ts";
import { ConfusionAccumulator } from "./confusion.ts";
import { MetricsAccumulator } from "./metrics_accumulator.ts";
import type { LossFunction, Metric } from "./metrics.ts";
import { checkFinite, type LossPhase } from "./non_finite.ts";

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Also count (true class, prediction) pairs (default false). */
  confusion?: boolean;
  /** For error messages: the epoch being validated (default 0). */
  epoch?: number;
  /** For error messages: what this pass is (default `evaluation`). */
  phase?: LossPhase;
  /** The loss, `(output, target) => batch mean` (default `nllLoss`). */
  loss?: LossFunction;
  /**
   * Named metrics, each `(output, target) => batch sum` accumulated on the GPU (default: the
   * accuracy, measured when the output is [N, C] scores with [N] i32 targets).
   */
  metrics?: Readonly<Record<string, Metric>>;
}

/** What `evaluate` measured. */
export interface EvaluateResult {
  /** Mean loss per sample (the true loss; NLL by default). */
  loss: number;
  /** Fraction classified correctly (NaN when the output is not classification scores). */
  accuracy: number;
  /** Every metric of `metrics` as a mean per sample (only when `metrics` was given). */
  metrics?: Record<string, number>;
  /** Samples evaluated. */
  samples: number;
  /** Wall seconds. */
  seconds: number;
  /** `confusion[label][prediction]` counts, when asked for. */
  confusion?: number[][];
}

/**
 * Evaluates `model` on every batch of `loader` in eval mode (running batch-norm statistics, no
 * dropout) without recording a graph, and restores the model's mode. Throws
 * `NonFiniteLossError` when a batch's loss is NaN or infinite.
 */
export async function evaluate(
  model: Module,
  loader: BatchLoader,
  options: EvaluateOptions = {},
): Promise<EvaluateResult> {
  const wasTraining = model.training;
  const start = performance.now();
  const lossFn = options.loss ?? nllLoss;
  const sums = new MetricsAccumulator();
  let measure: BatchMeasure | null = null;
  let confusion: ConfusionAccumulator | null = null;
  model.eval();
  try {
    measure = new BatchMeasure(sums, options.metrics, "evaluate");
    const measuring = measure;
    noGrad(() => {
      for (const batch of loader.batches(0)) {
        try {
          tidy(() => {
            const logProbs = forwardBatch(model, batch);
            measuring.add(lossFn(logProbs, batch.y), logProbs, batch.y);
            if (options.confusion) {
              confusion ??= new ConfusionAccumulator(logProbs.shape[1]);
              confusion.add(logProbs, batch.y);
            }
          });
        } finally {
          batch.dispose();
        }
      }
    });
    const snapshot = await sums.read();
    checkFinite(snapshot, options.epoch ?? 0, options.phase ?? "evaluation");
    const matrix = confusion ? await (confusion as ConfusionAccumulator).read() : undefined;
    const numbers = await measure.numbers(snapshot);
    return {
      loss: numbers.loss,
      accuracy: numbers.accuracy,
      ...(numbers.metrics ? { metrics: numbers.metrics } : {}),
      samples: snapshot.samples,
      seconds: (performance.now() - start) / 1000,
      ...(matrix ? { confusion: matrix } : {}),
    };
  } finally {
    model.train(wasTraining);
    sums.dispose();
    measure?.dispose();
    (confusion as ConfusionAccumulator | null)?.dispose();
  }
}
