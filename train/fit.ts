/**
 * The training loop: `trainEpoch` (one pass over a loader), `evaluate` (loss and metrics under
 * `noGrad`) and `fit` (epochs of both, with an LR schedule, a history, progress, per-epoch hooks,
 * callbacks such as `earlyStopping`, gradient clipping and Ctrl-C). The loss (default `nllLoss`)
 * and the metrics (default: accuracy; `mse`, `mae`, `topKAccuracy(k)`, ...) are options.
 *
 * A step is `tidy(() => { zeroGrad; forward; loss; backward; accumulate; step })`: nothing is
 * read back and nothing is awaited per step. The loss sum and the correct count accumulate on the
 * GPU (`MetricsAccumulator`) and are read once per epoch, plus every `ReadPacer` tick (about every
 * half second of GPU work) for the progress bar, NaN detection and interrupts. While it trains,
 * the optimizer's update kernels flag parameters that stop being finite and one small kernel
 * per step checks the model's buffers (batch-norm running statistics), into the same sums.
 *
 * ```ts ignore
 * const result = await fit(model, { train, val, optimizer, scheduler, epochs: 10 });
 * await fit(model, {
 *   train, val, optimizer, epochs: 50, loss: mseLoss, metrics: { mse, mae }, clipGradNorm: 1,
 *   callbacks: [earlyStopping({ patience: 3, restoreBestWeights: true })],
 * });
 * console.log(result.history.at(-1));
 * const test = await evaluate(model, testLoader);
 * ```
 *
 * @module
 */

import type { Module } from "../nn/modules/module.ts";
import { nllLoss } from "../nn/ops/softmax.ts";
import { tidy } from "../nn/scope.ts";
import { type BatchLoader, BatchMeasure, forwardBatch } from "./batch_measure.ts";
import { evaluate } from "./evaluate.ts";
import type { EpochRecord } from "./history.ts";
import { LRScheduler, ReduceLROnPlateau } from "./lr_scheduler.ts";
import { type AccumulatorSnapshot, MetricsAccumulator } from "./metrics_accumulator.ts";
import type { LossFunction, Metric } from "./metrics.ts";
import { checkFinite } from "./non_finite.ts";
import { clipGradNorm, clipGradValue } from "./optim/clip_grad.ts";
import type { Optimizer } from "./optim/optimizer.ts";
import { NonFiniteLossError } from "./non_finite.ts";
import { ReadPacer } from "./read_pacer.ts";

export { evaluate, type EvaluateOptions, type EvaluateResult } from "./evaluate.ts";
export type { BatchLoader, TrainingBatch } from "./batch_measure.ts";
export {
  accuracy,
  type LossFunction,
  mae,
  meanLoss,
  type Metric,
  mse,
  topKAccuracy,
} from "./metrics.ts";
export {
  checkFinite,
  type LossPhase,
  NonFiniteLossError,
  type NonFiniteValues,
  type WatchedNames,
} from "./non_finite.ts";

/** Progress within an epoch, at a read. */
export interface StepProgress {
  /** The epoch, from 1. */
  epoch: number;
  /** Steps done in the epoch (all of them finished on the GPU). */
  step: number;
  /** Steps in the epoch. */
  steps: number;
  /** Images trained on so far in the epoch. */
  images: number;
  /** Seconds since the epoch started. */
  seconds: number;
  /** Mean loss per sample so far in the epoch (NLL by default). */
  loss: number;
  /** Accuracy so far in the epoch (NaN when the output is not classification scores). */
  accuracy: number;
}

/** What one training pass measured. */
export interface TrainEpochResult {
  /** Mean loss per sample (NLL by default). */
  loss: number;
  /** Fraction classified correctly (NaN when the output is not classification scores). */
  accuracy: number;
  /** Every metric of `metrics` as a mean per sample (only when `metrics` was given). */
  metrics?: Record<string, number>;
  /** Images trained on. */
  images: number;
  /** Steps (batches) taken. */
  steps: number;
  /** Wall seconds, from the first step encoded to the last finished on the GPU. */
  seconds: number;
  /** True when the signal stopped the pass early (the numbers cover the steps taken). */
  interrupted: boolean;
}

/** Options of `trainEpoch`. */
export interface TrainEpochOptions {
  /** The batches (a `DataLoader`, or any `BatchLoader`). */
  loader: BatchLoader;
  /** Updates the parameters after each batch. */
  optimizer: Optimizer;
  /** The epoch number, from 1 (epoch `e` uses the loader's shuffle `e - 1`). */
  epoch: number;
  /** Stops the pass at the next read when aborted. */
  signal?: AbortSignal;
  /** Read timing; pass the same one every epoch. */
  pacer?: ReadPacer;
  /** The sums to use (reset here); a fresh one is made and freed otherwise. */
  accumulator?: MetricsAccumulator;
  /** Called at every read within the epoch. */
  onStep?: (progress: StepProgress) => void;
  /** Called after every optimizer step (e.g. a per-batch LR scheduler's `step()`). */
  onOptimizerStep?: () => void;
  /** The loss, `(output, target) => batch mean`, differentiable (default `nllLoss`). */
  loss?: LossFunction;
  /**
   * Named metrics, each `(output, target) => batch sum` accumulated on the GPU (default: the
   * accuracy, measured when the output is [N, C] scores with [N] i32 targets).
   */
  metrics?: Readonly<Record<string, Metric>>;
  /**
   * Clips the gradients' total 2-norm to this after every backward pass, before the optimizer
   * step (`clipGradNorm` over the optimizer's parameters; on the GPU, nothing read back).
   */
  clipGradNorm?: number;
  /**
   * Clamps every gradient element to [-clipGradValue, clipGradValue] after every backward pass,
   * before the optimizer step (`clipGradValue`). Not with `clipGradNorm`.
   */
  clipGradValue?: number;
}

/** Checks the clipping options (`where` names the caller); returns the clip to run per step. */
function gradientClip(
  where: string,
  optimizer: Optimizer,
  norm: number | undefined,
  value: number | undefined,
): (() => void) | null {
  if (norm !== undefined && value !== undefined) {
    throw new RangeError(
      `${where}: give clipGradNorm (${norm}) or clipGradValue (${value}), not both`,
    );
  }
  for (const [name, v] of [["clipGradNorm", norm], ["clipGradValue", value]] as const) {
    if (v !== undefined && (typeof v !== "number" || !(v >= 0))) {
      throw new RangeError(`${where}: ${name} must be a number >= 0, got ${v}`);
    }
  }
  if (norm !== undefined) return () => void clipGradNorm(optimizer.params, norm).dispose();
  if (value !== undefined) return () => clipGradValue(optimizer.params, value);
  return null;
}

interface Fence {
  step: number;
  read: Promise<AccumulatorSnapshot>;
}

function fence(accumulator: MetricsAccumulator, step: number): Fence {
  const read = accumulator.read();
  read.catch(() => {}); // awaited later, or abandoned when the epoch throws
  return { step, read };
}

function stepProgress(
  snapshot: AccumulatorSnapshot,
  measure: BatchMeasure,
  epoch: number,
  steps: number,
  seconds: number,
): StepProgress {
  return {
    epoch,
    step: snapshot.batches,
    steps,
    images: snapshot.samples,
    seconds,
    loss: snapshot.lossSum / snapshot.samples,
    accuracy: measure.accuracy(snapshot),
  };
}

/**
 * One pass over `loader` in training mode, minimising `loss` (default `nllLoss`). Throws
 * `NonFiniteLossError` when a loss, a parameter or a buffer (running statistics) is NaN or
 * infinite (noticed at the next read, within about two ticks).
 */
export async function trainEpoch(
  model: Module,
  options: TrainEpochOptions,
): Promise<TrainEpochResult> {
  const { loader, optimizer, epoch, signal } = options;
  const lossFn = options.loss ?? nllLoss;
  const clip = gradientClip("trainEpoch", optimizer, options.clipGradNorm, options.clipGradValue);
  const pacer = options.pacer ?? new ReadPacer();
  const accumulator = options.accumulator ?? new MetricsAccumulator();
  const fences: Fence[] = [];
  const parameterNames = new Map(model.namedParameters().map(([name, t]) => [t, name]));
  const buffers = model.namedBuffers().filter(([, t]) => t.dtype === "f32");
  const names = {
    parameters: optimizer.params.map((p, i) => parameterNames.get(p) ?? `parameter ${i}`),
    buffers: buffers.map(([name]) => name),
  };
  const bufferTensors = buffers.map(([, t]) => t);
  let measure: BatchMeasure | null = null;
  try {
    measure = new BatchMeasure(accumulator, options.metrics, "trainEpoch");
    const measuring = measure;
    accumulator.reset();
    optimizer.watchFinite(accumulator.parameterWatch());
    model.train();
    const steps = loader.length;
    const start = performance.now();
    pacer.startEpoch(start);
    let step = 0;
    let interrupted = false;
    for (const batch of loader.batches(epoch - 1)) {
      try {
        tidy(() => {
          optimizer.zeroGrad();
          const output = forwardBatch(model, batch);
          const loss = lossFn(output, batch.y);
          measuring.checkLoss(loss);
          loss.backward();
          clip?.();
          measuring.add(loss, output, batch.y);
          optimizer.step();
          accumulator.checkBuffers(bufferTensors);
        });
        options.onOptimizerStep?.();
      } finally {
        batch.dispose();
      }
      step++;
      if (step >= steps || !pacer.due(step)) continue;
      fences.push(fence(accumulator, step));
      if (fences.length < 2) continue;
      const done = fences.shift()!;
      const snapshot = await done.read; // the GPU is still busy with the next tick's steps
      const now = performance.now();
      pacer.observe(done.step, now);
      checkFinite(snapshot, epoch, "training", names);
      options.onStep?.(stepProgress(snapshot, measure, epoch, steps, (now - start) / 1000));
      if (signal?.aborted) {
        interrupted = true;
        break;
      }
    }
    const snapshot = await accumulator.read();
    const seconds = (performance.now() - start) / 1000;
    checkFinite(snapshot, epoch, "training", names);
    const images = snapshot.samples;
    const numbers = await measure.numbers(snapshot);
    return {
      loss: numbers.loss,
      accuracy: numbers.accuracy,
      ...(numbers.metrics ? { metrics: numbers.metrics } : {}),
      images,
      steps: snapshot.batches,
      seconds,
      interrupted,
    };
  } finally {
    optimizer.watchFinite(null);
    measure?.dispose();
    if (!options.accumulator) accumulator.dispose();
  }
}

/** What `fit` tells its progress display. */
export interface FitProgress {
  /** An epoch begins. */
  epochStart?(info: { epoch: number; epochs: number; steps: number; images: number }): void;
  /** A read within the epoch (every ~0.5 s of GPU work). */
  step?(progress: StepProgress & { epochs: number }): void;
  /** An epoch ended (validation included). */
  epochEnd?(record: EpochRecord, epochs: number): void;
}

/** What `onEpochEnd` gets besides the epoch's record. */
export interface EpochEndContext {
  /** The epoch just finished, from 1. */
  epoch: number;
  /** The total number of epochs `fit` was asked for. */
  epochs: number;
  /** The model being trained. */
  model: Module;
  /** Every finished epoch so far (resumed ones and this one included). */
  history: readonly EpochRecord[];
  /** Ends training after this epoch: `fit` resolves with `stopped: true` (e.g. early stopping). */
  stop(): void;
}

/** What `onTrainBegin` gets. */
export interface TrainBeginContext {
  /** The model to be trained. */
  model: Module;
  /** The total number of epochs `fit` was asked for. */
  epochs: number;
  /** Epochs already done (resume), possibly empty. */
  history: readonly EpochRecord[];
}

/** What `onTrainEnd` gets. */
export interface TrainEndContext {
  /** The model trained. */
  model: Module;
  /** Every finished epoch (resumed ones included). */
  history: readonly EpochRecord[];
  /** True when a callback or `onEpochEnd` stopped training early. */
  stopped: boolean;
  /** True when the signal stopped training. */
  interrupted: boolean;
  /** What `fit` is about to reject with, when it failed (e.g. `NonFiniteLossError`). */
  error?: unknown;
}

/**
 * An object `fit` calls at points of training (Keras' `Callback`, Lightning's hooks), e.g.
 * `earlyStopping(...)`. Every method is optional and awaited; callbacks run in the order given,
 * after `fit`'s own `onEpochEnd`.
 */
export interface FitCallback {
  /** Before the first epoch (reset state here: a callback may serve several `fit` calls). */
  onTrainBegin?(context: TrainBeginContext): Promise<void> | void;
  /** After every finished epoch, as `fit`'s `onEpochEnd` option (`context.stop()` ends it). */
  onEpochEnd?(record: EpochRecord, context: EpochEndContext): Promise<void> | void;
  /**
   * When training ends, however it ends: the last epoch, `stop()`, the signal, or an error
   * (`context.error`; then `fit` rejects with that error even when this throws). Free what the
   * callback holds here.
   */
  onTrainEnd?(context: TrainEndContext): Promise<void> | void;
}

/** Options of `fit`. */
export interface FitOptions {
  /** Training batches (a `DataLoader`, shuffled per epoch by its seed, or any `BatchLoader`). */
  train: BatchLoader;
  /** Validation batches, evaluated after every epoch (optional). */
  val?: BatchLoader;
  /** The optimizer over the model's parameters. */
  optimizer: Optimizer;
  /**
   * The LR scheduler (optional), stepped after every epoch (after validation), or after every
   * optimizer step with `schedulerInterval: "batch"` (e.g. `OneCycleLR`). A `ReduceLROnPlateau`
   * is fed the epoch's validation loss, or its training loss without `val`.
   */
  scheduler?: LRScheduler | ReduceLROnPlateau;
  /** When `scheduler` steps: `"epoch"` (default) or `"batch"` (not for `ReduceLROnPlateau`). */
  schedulerInterval?: "epoch" | "batch";
  /** The total number of epochs. */
  epochs: number;
  /**
   * The loss minimised, `(output, target) => batch mean` as a scalar tensor, differentiable
   * (default `nllLoss`, for log-probabilities and i32 class targets); also the validation loss.
   */
  loss?: LossFunction;
  /**
   * Named metrics, each `(output, target) => batch sum` as a scalar tensor, accumulated on the
   * GPU and divided by the samples at the epoch's end (e.g. `{ accuracy, mae }`). Default: the
   * accuracy, measured when the output is [N, C] scores with [N] i32 targets. When given, every
   * record carries `trainMetrics` (and `valMetrics`) by name.
   */
  metrics?: Readonly<Record<string, Metric>>;
  /**
   * Epochs already done (resume): training continues at epoch `history.length + 1`; the model,
   * optimizer and scheduler must already hold that point's state.
   */
  history?: readonly EpochRecord[];
  /**
   * Epochs already done when their records are not kept (resume; default `history.length`):
   * training continues at epoch `initialEpoch + 1`.
   */
  initialEpoch?: number;
  /** Stops training at the next read when aborted; `fit` then resolves with `interrupted`. */
  signal?: AbortSignal;
  /** Progress display. */
  progress?: FitProgress;
  /**
   * Called (and awaited) after every finished epoch, validation, LR step and progress included:
   * write files, save a checkpoint, report to a tuner, or `stop()` early.
   */
  onEpochEnd?: (record: EpochRecord, context: EpochEndContext) => Promise<void> | void;
  /**
   * Callback objects (e.g. `earlyStopping({ patience: 3 })`), called in order after
   * `onEpochEnd`.
   */
  callbacks?: readonly FitCallback[];
  /**
   * Clips the gradients' total 2-norm to this after every backward pass, before the optimizer
   * step (`clipGradNorm` over the optimizer's parameters; on the GPU, nothing read back).
   */
  clipGradNorm?: number;
  /**
   * Clamps every gradient element to [-clipGradValue, clipGradValue] after every backward pass,
   * before the optimizer step (`clipGradValue`). Not with `clipGradNorm`.
   */
  clipGradValue?: number;
  /** Read timing (default: a fresh `ReadPacer`). */
  pacer?: ReadPacer;
}

/** What `fit` returns. */
export interface FitResult {
  /** Every finished epoch (resumed ones included). */
  history: EpochRecord[];
  /** True when the signal stopped training before `epochs`. */
  interrupted: boolean;
  /** True when `onEpochEnd` called `stop()` before `epochs`. */
  stopped: boolean;
}

/**
 * Trains `model` for `epochs` epochs (minus those already done), validating after each, and
 * returns the per-epoch history. The loss (default `nllLoss`) and the metrics (default: accuracy)
 * are options; both are summed on the GPU and read back once per epoch. Rejects with
 * `NonFiniteLossError` (its `history` holds the finished epochs) when a loss becomes NaN or
 * infinite.
 *
 * @example A regression with a custom loss (MSE) and early stopping
 * ```ts
 * import {
 *   Adam, fit, init, linear, type LossFunction, mean, meanLoss, Module, mul, sub, type Tensor,
 *   tensor,
 * } from "../mod.ts";
 *
 * await init();
 * class Line extends Module {
 *   weight = this.registerParameter("weight", tensor([0], [1, 1]));
 *   bias = this.registerParameter("bias", tensor([0], [1]));
 *   forward(x: Tensor): Tensor {
 *     return linear(x, this.weight, this.bias);
 *   }
 * }
 * const mse: LossFunction = (output, target) => {
 *   const error = sub(output, target);
 *   return mean(mul(error, error));
 * };
 * // y = 2x - 1 on 64 points, one batch per epoch (a DataLoader fits here too).
 * const xs = Array.from({ length: 64 }, (_, i) => i / 32 - 1);
 * const train = {
 *   length: 1,
 *   count: 64,
 *   *batches() {
 *     const x = tensor(xs, [64, 1]), y = tensor(xs.map((v) => 2 * v - 1), [64, 1]);
 *     yield { x, y, dispose: () => (x.dispose(), y.dispose()) };
 *   },
 * };
 * const model = new Line();
 * let best = Infinity;
 * const { history, stopped } = await fit(model, {
 *   train,
 *   optimizer: new Adam(model.parameters(), { lr: 0.1 }),
 *   epochs: 500,
 *   loss: mse,
 *   metrics: { mse: meanLoss(mse) }, // recorded as `trainMetrics.mse`
 *   onEpochEnd(record, { stop }) {
 *     if (record.trainLoss < best - 1e-6) best = record.trainLoss;
 *     else stop(); // no better than the best epoch: stop early
 *   },
 * });
 * console.log(stopped, history.length, history.at(-1)?.trainMetrics?.mse);
 * ```
 */
export async function fit(model: Module, options: FitOptions): Promise<FitResult> {
  const callbacks = [...(options.callbacks ?? [])];
  for (const [i, callback] of callbacks.entries()) {
    if (typeof callback !== "object" || callback === null) {
      throw new TypeError(
        `fit: callbacks[${i}] must be an object with onTrainBegin / onEpochEnd / onTrainEnd ` +
          `methods, got ${callback === null ? "null" : typeof callback}`,
      );
    }
  }
  const history = [...(options.history ?? [])];
  let result: FitResult;
  try {
    result = await fitEpochs(model, options, callbacks, history);
  } catch (error) {
    for (const callback of callbacks) {
      try {
        await callback.onTrainEnd?.({ model, history, stopped: false, interrupted: false, error });
      } catch {
        // The training error is the one to report.
      }
    }
    throw error;
  }
  for (const callback of callbacks) {
    await callback.onTrainEnd?.({
      model,
      history,
      stopped: result.stopped,
      interrupted: result.interrupted,
    });
  }
  return result;
}

async function fitEpochs(
  model: Module,
  options: FitOptions,
  callbacks: readonly FitCallback[],
  history: EpochRecord[],
): Promise<FitResult> {
  const { train, val, optimizer, scheduler, epochs, signal, progress } = options;
  if (!Number.isInteger(epochs) || epochs < 0) {
    throw new RangeError(`fit: epochs must be an integer >= 0, got ${epochs}`);
  }
  const initialEpoch = options.initialEpoch ?? history.length;
  if (!Number.isInteger(initialEpoch) || initialEpoch < history.length) {
    throw new RangeError(
      `fit: initialEpoch must be an integer >= history.length (${history.length}), got ` +
        `${initialEpoch}`,
    );
  }
  const interval = options.schedulerInterval ?? "epoch";
  if (interval !== "epoch" && interval !== "batch") {
    throw new RangeError(`fit: schedulerInterval must be "epoch" or "batch", got ${interval}`);
  }
  if (interval === "batch" && scheduler instanceof ReduceLROnPlateau) {
    throw new RangeError(
      "fit: ReduceLROnPlateau needs an epoch's loss, so it steps per epoch; schedulerInterval " +
        '"batch" is for schedulers such as OneCycleLR',
    );
  }
  const batchScheduler = interval === "batch" && scheduler instanceof LRScheduler
    ? scheduler
    : null;
  const perBatch = batchScheduler ? () => batchScheduler.step() : undefined;
  gradientClip("fit", optimizer, options.clipGradNorm, options.clipGradValue); // checks them
  const clipping = { clipGradNorm: options.clipGradNorm, clipGradValue: options.clipGradValue };
  for (const callback of callbacks) await callback.onTrainBegin?.({ model, epochs, history });
  const pacer = options.pacer ?? new ReadPacer();
  const accumulator = new MetricsAccumulator();
  const measured = { loss: options.loss, metrics: options.metrics };
  try {
    for (let epoch = initialEpoch + 1; epoch <= epochs; epoch++) {
      if (signal?.aborted) return { history, interrupted: true, stopped: false };
      const lr = optimizer.lr;
      progress?.epochStart?.({ epoch, epochs, steps: train.length, images: train.count });
      const trained = await trainEpoch(model, {
        loader: train,
        optimizer,
        epoch,
        signal,
        pacer,
        accumulator,
        ...measured,
        ...clipping,
        onStep: progress?.step ? (p) => progress.step!({ ...p, epochs }) : undefined,
        onOptimizerStep: perBatch,
      });
      if (trained.interrupted) return { history, interrupted: true, stopped: false };
      const checked = val
        ? await evaluate(model, val, { epoch, phase: "validation", ...measured })
        : null;
      if (scheduler instanceof ReduceLROnPlateau) scheduler.step(checked?.loss ?? trained.loss);
      else if (interval === "epoch") scheduler?.step();
      const record: EpochRecord = {
        epoch,
        lr,
        trainLoss: trained.loss,
        trainAccuracy: trained.accuracy,
        valLoss: checked?.loss ?? null,
        valAccuracy: checked?.accuracy ?? null,
        trainImages: trained.images,
        trainSeconds: trained.seconds,
        seconds: trained.seconds + (checked?.seconds ?? 0),
        imagesPerSecond: trained.images / trained.seconds,
        ...(trained.metrics ? { trainMetrics: trained.metrics } : {}),
        ...(options.metrics ? { valMetrics: checked?.metrics ?? null } : {}),
      };
      history.push(record);
      progress?.epochEnd?.(record, epochs);
      let stop = false;
      const context: EpochEndContext = {
        epoch,
        epochs,
        model,
        history,
        stop: () => void (stop = true),
      };
      await options.onEpochEnd?.(record, context);
      for (const callback of callbacks) await callback.onEpochEnd?.(record, context);
      if (stop && epoch < epochs) return { history, interrupted: false, stopped: true };
    }
    return { history, interrupted: false, stopped: false };
  } catch (error) {
    if (error instanceof NonFiniteLossError) error.history = history;
    throw error;
  } finally {
    accumulator.dispose();
  }
}
