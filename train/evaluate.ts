/**
 * `evaluate(model, loader)`: mean NLL per sample and accuracy in eval mode under `noGrad`, with
 * the sums (and optionally a confusion matrix) accumulated on the GPU and read back once.
 *
 * @module
 */

import type { DataLoader } from "../data/loader.ts";
import { noGrad } from "../nn/autograd.ts";
import type { Module } from "../nn/modules/module.ts";
import { nllLoss } from "../nn/ops/softmax.ts";
import { tidy } from "../nn/scope.ts";
import { ConfusionAccumulator } from "./confusion.ts";
import { MetricsAccumulator } from "./metrics_accumulator.ts";
import { checkFinite, type LossPhase } from "./non_finite.ts";

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Also count (true class, prediction) pairs (default false). */
  confusion?: boolean;
  /** For error messages: the epoch being validated (default 0). */
  epoch?: number;
  /** For error messages: what this pass is (default `evaluation`). */
  phase?: LossPhase;
}

/** What `evaluate` measured. */
export interface EvaluateResult {
  /** Mean NLL per sample (the true loss). */
  loss: number;
  /** Fraction classified correctly. */
  accuracy: number;
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
  loader: DataLoader,
  options: EvaluateOptions = {},
): Promise<EvaluateResult> {
  const wasTraining = model.training;
  const start = performance.now();
  const sums = new MetricsAccumulator();
  let confusion: ConfusionAccumulator | null = null;
  model.eval();
  try {
    noGrad(() => {
      for (const batch of loader.batches(0)) {
        try {
          tidy(() => {
            const logProbs = model.forward(batch.x);
            sums.add(nllLoss(logProbs, batch.y), logProbs, batch.y);
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
    const samples = snapshot.samples;
    return {
      loss: samples > 0 ? snapshot.lossSum / samples : NaN,
      accuracy: samples > 0 ? snapshot.correct / samples : NaN,
      samples,
      seconds: (performance.now() - start) / 1000,
      ...(matrix ? { confusion: matrix } : {}),
    };
  } finally {
    model.train(wasTraining);
    sums.dispose();
    (confusion as ConfusionAccumulator | null)?.dispose();
  }
}
