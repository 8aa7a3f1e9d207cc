/**
 * The training loop: `trainEpoch` (one pass over a loader), `evaluate` (loss and accuracy under
 * `noGrad`) and `fit` (epochs of both, with an LR schedule, a history, progress and Ctrl-C).
 *
 * A step is `tidy(() => { zeroGrad; forward; nllLoss; backward; accumulate; step })`: nothing is
 * read back and nothing is awaited per step. The loss sum and the correct count accumulate on the
 * GPU (`MetricsAccumulator`) and are read once per epoch, plus every `ReadPacer` tick (about every
 * half second of GPU work) for the progress bar, NaN detection and interrupts. While it trains,
 * the optimizer's update kernels flag parameters that stop being finite and one small kernel
 * per step checks the model's buffers (batch-norm running statistics), into the same sums.
 *
 * ```ts ignore
 * const result = await fit(model, { train, val, optimizer, scheduler, epochs: 10 });
 * console.log(result.history.at(-1));
 * const test = await evaluate(model, testLoader);
 * ```
 *
 * @module
 */

import type { DataLoader } from "../data/loader.ts";
import type { Module } from "../nn/modules/module.ts";
import { nllLoss } from "../nn/ops/softmax.ts";
import { tidy } from "../nn/scope.ts";
import { evaluate } from "./evaluate.ts";
import type { EpochRecord } from "./history.ts";
import type { LRScheduler } from "./lr_scheduler.ts";
import { type AccumulatorSnapshot, MetricsAccumulator } from "./metrics_accumulator.ts";
import { checkFinite } from "./non_finite.ts";
import type { Optimizer } from "./optim/optimizer.ts";
import { NonFiniteLossError } from "./non_finite.ts";
import { ReadPacer } from "./read_pacer.ts";

export { evaluate, type EvaluateOptions, type EvaluateResult } from "./evaluate.ts";
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
  /** Mean NLL per sample so far in the epoch. */
  loss: number;
  /** Accuracy so far in the epoch. */
  accuracy: number;
}

/** What one training pass measured. */
export interface TrainEpochResult {
  /** Mean NLL per sample. */
  loss: number;
  /** Fraction classified correctly. */
  accuracy: number;
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
  /** The batches. */
  loader: DataLoader;
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
    accuracy: snapshot.correct / snapshot.samples,
  };
}

/**
 * One pass over `loader` in training mode. Throws `NonFiniteLossError` when a loss, a parameter
 * or a buffer (running statistics) is NaN or infinite (noticed at the next read, within about
 * two ticks).
 */
export async function trainEpoch(
  model: Module,
  options: TrainEpochOptions,
): Promise<TrainEpochResult> {
  const { loader, optimizer, epoch, signal } = options;
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
  try {
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
          const logProbs = model.forward(batch.x);
          const loss = nllLoss(logProbs, batch.y);
          loss.backward();
          accumulator.add(loss, logProbs, batch.y);
          optimizer.step();
          accumulator.checkBuffers(bufferTensors);
        });
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
      options.onStep?.(stepProgress(snapshot, epoch, steps, (now - start) / 1000));
      if (signal?.aborted) {
        interrupted = true;
        break;
      }
    }
    const snapshot = await accumulator.read();
    const seconds = (performance.now() - start) / 1000;
    checkFinite(snapshot, epoch, "training", names);
    const images = snapshot.samples;
    return {
      loss: images > 0 ? snapshot.lossSum / images : NaN,
      accuracy: images > 0 ? snapshot.correct / images : NaN,
      images,
      steps: snapshot.batches,
      seconds,
      interrupted,
    };
  } finally {
    optimizer.watchFinite(null);
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

/** Options of `fit`. */
export interface FitOptions {
  /** Training batches (shuffled per epoch by the loader's seed). */
  train: DataLoader;
  /** Validation batches, evaluated after every epoch (optional). */
  val?: DataLoader;
  /** The optimizer over the model's parameters. */
  optimizer: Optimizer;
  /** Stepped once after every epoch (optional). */
  scheduler?: LRScheduler;
  /** The total number of epochs. */
  epochs: number;
  /**
   * Epochs already done (resume): training continues at epoch `history.length + 1`; the model,
   * optimizer and scheduler must already hold that point's state.
   */
  history?: readonly EpochRecord[];
  /** Stops training at the next read when aborted; `fit` then resolves with `interrupted`. */
  signal?: AbortSignal;
  /** Progress display. */
  progress?: FitProgress;
  /** Called (and awaited) after every finished epoch: write files, save a checkpoint. */
  onEpoch?: (record: EpochRecord, history: readonly EpochRecord[]) => Promise<void> | void;
  /** Read timing (default: a fresh `ReadPacer`). */
  pacer?: ReadPacer;
}

/** What `fit` returns. */
export interface FitResult {
  /** Every finished epoch (resumed ones included). */
  history: EpochRecord[];
  /** True when the signal stopped training before `epochs`. */
  interrupted: boolean;
}

/**
 * Trains `model` for `epochs` epochs (minus those in `history`), validating after each, and
 * returns the per-epoch history. Rejects with `NonFiniteLossError` (its `history` holds the
 * finished epochs) when a loss becomes NaN or infinite.
 */
export async function fit(model: Module, options: FitOptions): Promise<FitResult> {
  const { train, val, optimizer, scheduler, epochs, signal, progress } = options;
  if (!Number.isInteger(epochs) || epochs < 0) {
    throw new RangeError(`fit: epochs must be an integer >= 0, got ${epochs}`);
  }
  const history = [...(options.history ?? [])];
  const pacer = options.pacer ?? new ReadPacer();
  const accumulator = new MetricsAccumulator();
  try {
    for (let epoch = history.length + 1; epoch <= epochs; epoch++) {
      if (signal?.aborted) return { history, interrupted: true };
      const lr = optimizer.lr;
      progress?.epochStart?.({ epoch, epochs, steps: train.length, images: train.count });
      const trained = await trainEpoch(model, {
        loader: train,
        optimizer,
        epoch,
        signal,
        pacer,
        accumulator,
        onStep: progress?.step ? (p) => progress.step!({ ...p, epochs }) : undefined,
      });
      if (trained.interrupted) return { history, interrupted: true };
      const checked = val ? await evaluate(model, val, { epoch, phase: "validation" }) : null;
      scheduler?.step();
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
      };
      history.push(record);
      progress?.epochEnd?.(record, epochs);
      await options.onEpoch?.(record, history);
    }
    return { history, interrupted: false };
  } catch (error) {
    if (error instanceof NonFiniteLossError) error.history = history;
    throw error;
  } finally {
    accumulator.dispose();
  }
}
