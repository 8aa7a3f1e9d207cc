/**
 * Internal to the training loop: what one pass (`trainEpoch`, `evaluate`) measures per batch on
 * the GPU. The loss (any `LossFunction`), samples, batches and non-finite flags go into the fused
 * `MetricsAccumulator`, which also counts correct rows when the output is classification-shaped
 * ([N, C] scores, [N] i32 target); other metrics go into `MetricSums`. Nothing is read back per
 * batch.
 *
 * @module
 */

import { noGrad } from "../nn/autograd.ts";
import type { Module } from "../nn/modules/module.ts";
import { keep } from "../nn/scope.ts";
import { formatShape, type Tensor, zeros } from "../nn/tensor.ts";
import type { AccumulatorSnapshot, MetricsAccumulator } from "./metrics_accumulator.ts";
import { accuracy, type Metric, MetricSums } from "./metrics.ts";

/**
 * One batch as the loop sees it: the model's input (or inputs), the target, and a way to free
 * them. A `DataLoader`'s batches are such; a regression loader may give f32 targets.
 */
export interface TrainingBatch {
  /** The model's input (the first of `inputs`, when given). */
  x: Tensor;
  /** The target passed to the loss and the metrics. */
  y: Tensor;
  /**
   * The model's inputs, when it takes several: the loop calls `model.forward(...inputs)`
   * (default: `model.forward(x)`).
   */
  inputs?: readonly Tensor[];
  /** Frees `x`, `y` and `inputs` (called when the loop is done with the batch). */
  dispose(): void;
}

/** The model's output for `batch`: `model.forward(...batch.inputs)`, or `model.forward(batch.x)`. */
export function forwardBatch(model: Module, batch: TrainingBatch): Tensor {
  const inputs = batch.inputs;
  if (!inputs || (inputs.length === 1 && inputs[0] === batch.x)) return model.forward(batch.x);
  return Reflect.apply(model.forward, model, inputs) as Tensor;
}

/**
 * What `fit`, `trainEpoch` and `evaluate` iterate: a `DataLoader`, or any object with its
 * `length`, `count` and `batches(epoch)`.
 */
export interface BatchLoader {
  /** Batches per epoch. */
  readonly length: number;
  /** Samples per epoch. */
  readonly count: number;
  /** The batches of `epoch` (from 0; the loader may shuffle by it). */
  batches(epoch: number): Iterable<TrainingBatch>;
}

/** What a pass measured, from its sums. */
export interface PassNumbers {
  /** Mean loss per sample (NaN without samples). */
  loss: number;
  /** Fraction classified correctly (NaN when not measured or without samples). */
  accuracy: number;
  /** Every metric asked for, as a mean per sample (undefined when `metrics` was not given). */
  metrics?: Record<string, number>;
}

function classificationShaped(output: Tensor, target: Tensor): boolean {
  return output.rank === 2 && output.dtype === "f32" && output.shape[1] > 0 &&
    target.rank === 1 && target.dtype === "i32" && target.shape[0] === output.shape[0];
}

/** Per-batch measuring of one pass (see the module notes). */
export class BatchMeasure {
  readonly #accumulator: MetricsAccumulator;
  readonly #where: string;
  /** Metrics computed by their function (every metric but the built-in `accuracy`). */
  readonly #computed: [string, Metric][];
  readonly #sums: MetricSums | null;
  /** Whether `accuracy` was asked for explicitly (else it is measured when it can be). */
  readonly #explicit: boolean;
  readonly #accuracyNames: string[];
  readonly #names: string[];
  readonly #dummies = new Map<number, [Tensor, Tensor]>();
  #scored = true;

  /**
   * Measures one pass into `accumulator` (reset by the caller) and, for `metrics` other than `accuracy`,
   * into sums of its own. `where` names the caller in error messages.
   */
  constructor(
    accumulator: MetricsAccumulator,
    metrics: Readonly<Record<string, Metric>> | undefined,
    where: string,
  ) {
    this.#accumulator = accumulator;
    this.#where = where;
    this.#explicit = metrics !== undefined;
    const entries = Object.entries(metrics ?? {});
    for (const [name, metric] of entries) {
      if (typeof metric !== "function") {
        throw new TypeError(
          `${where}: metrics.${name} must be a function (output, target) => Tensor, got ` +
            typeof metric,
        );
      }
    }
    this.#names = entries.map(([name]) => name);
    this.#accuracyNames = entries.filter(([, m]) => m === accuracy).map(([name]) => name);
    this.#computed = entries.filter(([, m]) => m !== accuracy);
    this.#sums = this.#computed.length > 0
      ? new MetricSums(this.#computed.map(([name]) => name))
      : null;
  }

  /** Throws unless `loss` (what the loss function returned) is an f32 scalar. */
  checkLoss(loss: Tensor): void {
    if (loss.size !== 1 || loss.dtype !== "f32") {
      throw new Error(
        `${this.#where}: the loss function must return the batch's mean loss as an f32 scalar ` +
          `tensor [], got ${loss.dtype} ${formatShape(loss.shape)}`,
      );
    }
  }

  /** Encodes the batch's sums: `loss` is its mean loss, `output` the model's output. */
  add(loss: Tensor, output: Tensor, target: Tensor): void {
    this.checkLoss(loss);
    if (output.rank === 0) {
      throw new Error(
        `${this.#where}: the model's output must have a batch dimension [N, ...], got shape []`,
      );
    }
    if (classificationShaped(output, target)) {
      this.#accumulator.add(loss, output, target);
    } else {
      if (this.#accuracyNames.length > 0) accuracy(output, target); // throws, naming the shapes
      this.#scored = false;
      const [scores, labels] = this.#dummy(output.shape[0]);
      this.#accumulator.add(loss, scores, labels); // loss, samples, batches and NaN flags
    }
    if (this.#sums) {
      const values = noGrad(() => this.#computed.map(([, metric]) => metric(output, target)));
      this.#sums.add(values, this.#where);
    }
  }

  /** One-class scores and zero labels of `rows` rows: the accumulator's correct count is unused. */
  #dummy(rows: number): [Tensor, Tensor] {
    let pair = this.#dummies.get(rows);
    if (!pair) {
      pair = [keep(zeros([rows, 1])), keep(zeros([rows], { dtype: "i32" }))];
      this.#dummies.set(rows, pair);
    }
    return pair;
  }

  /** Mean accuracy so far from an accumulator snapshot (NaN when it was not measured). */
  accuracy(snapshot: AccumulatorSnapshot): number {
    return this.#scored && snapshot.samples > 0 ? snapshot.correct / snapshot.samples : NaN;
  }

  /** The pass's numbers (reads the metric sums back once, when there are any). */
  async numbers(snapshot: AccumulatorSnapshot): Promise<PassNumbers> {
    const samples = snapshot.samples;
    const loss = samples > 0 ? snapshot.lossSum / samples : NaN;
    const accuracyValue = this.accuracy(snapshot);
    if (!this.#explicit) return { loss, accuracy: accuracyValue };
    const sums = this.#sums ? await this.#sums.read() : {};
    const metrics: Record<string, number> = {};
    for (const name of this.#names) {
      metrics[name] = this.#accuracyNames.includes(name)
        ? accuracyValue
        : samples > 0
        ? sums[name] / samples
        : NaN;
    }
    return { loss, accuracy: accuracyValue, metrics };
  }

  /** Frees the metric sums and scratch tensors. */
  dispose(): void {
    this.#sums?.dispose();
    for (const [scores, labels] of this.#dummies.values()) {
      scores.dispose();
      labels.dispose();
    }
    this.#dummies.clear();
  }
}
