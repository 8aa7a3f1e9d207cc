/**
 * The study's tuning trainable: the tuning CNN with a sampled l1, lr and batch size, trained one
 * epoch per report; each report carries the validation loss (`loss`, the true mean NLL, which
 * ASHA minimises), `accuracy`, `loss_study` (the study's scaling), the training numbers, and a
 * checkpoint (model + optimizer) so that `tune --resume` continues exactly.
 *
 * @module
 */

import { join } from "node:path";
import { fit, loadCheckpoint, restoreCheckpoint, Rng, saveCheckpoint } from "../mod.ts";
import { DataLoader } from "../data/mod.ts";
import { tuningCnn } from "../models/mod.ts";
import { type Trainable, type TrialMetrics as Metrics, TrialStopped } from "../train/tune/mod.ts";
import type { GpuData } from "./data.ts";
import type { TrainingProgress } from "./progress.ts";
import { makeOptimizer } from "./run_training.ts";

/** What the trainable needs besides each trial's config. */
export interface TuneTrainableOptions {
  /** The data (training and validation sets are used). */
  data: GpuData;
  /** The optimizer of every trial. */
  optimizer: "adam" | "sgd";
  /** Epochs at most (ASHA's max_t stops trials there anyway). */
  maxEpochs: number;
  /** Base seed; trial `i` uses `seed + i`. */
  seed: number;
  /** Validation batch size. */
  evalBatchSize: number;
  /** Shows each trial's epoch progress (optional). */
  progress?: (trialId: string) => TrainingProgress;
  /** Receives every trial's metrics just before they are reported. */
  onMetrics?: (trialId: string, metrics: Metrics) => void;
}

const CHECKPOINT_FILE = "checkpoint.safetensors";

/** The trial's index from its id (`trial_00007` → 7). */
function trialIndex(trialId: string): number {
  const index = Number(trialId.slice(trialId.lastIndexOf("_") + 1));
  return Number.isInteger(index) ? index : 0;
}

/** The trainable of the study's tuning experiment (see the module notes). */
export function tuneTrainable(options: TuneTrainableOptions): Trainable {
  const { data } = options;
  if (!data.val) throw new Error("tune: tuning needs a validation set (--val-split > 0)");
  const valSet = data.val;
  return async (config, session) => {
    const l1 = Number(config.l1), lr = Number(config.lr), batchSize = Number(config.batch_size);
    const seed = options.seed + trialIndex(session.trialId);
    const model = tuningCnn({ l1, rng: new Rng(seed) });
    const optimizer = makeOptimizer({ optimizer: options.optimizer, lr, momentum: 0 }, model);
    const train = new DataLoader(data.train, { batchSize, seed });
    const val = data.evalLoader(valSet, options.evalBatchSize);
    const progress = options.progress?.(session.trialId);
    try {
      if (session.checkpoint) {
        const saved = await loadCheckpoint(join(session.checkpoint.dir, CHECKPOINT_FILE));
        restoreCheckpoint(saved, { model, optimizer });
      }
      const result = await fit(model, {
        train,
        val,
        optimizer,
        epochs: options.maxEpochs,
        initialEpoch: session.iteration,
        signal: session.signal,
        progress: progress && {
          step: (p) => progress.step(p),
          epochEnd: () => progress.clear(),
        },
        onEpochEnd: async (record, { epoch, stop }) => {
          const metrics: Metrics = {
            loss: record.valLoss!,
            accuracy: record.valAccuracy!,
            loss_study: record.valLoss! / batchSize,
            train_loss: record.trainLoss,
            train_accuracy: record.trainAccuracy,
            images_per_second: record.imagesPerSecond,
          };
          options.onMetrics?.(session.trialId, metrics);
          const go = await session.report(metrics, {
            checkpoint: {
              data: { epoch },
              save: (dir) =>
                saveCheckpoint(join(dir, CHECKPOINT_FILE), { model, optimizer }, { epoch }),
            },
          });
          if (!go) stop();
        },
      });
      if (result.interrupted) throw session.signal.reason ?? new TrialStopped("aborted");
    } finally {
      progress?.clear();
      train.dispose();
      val.dispose();
      optimizer.dispose();
      model.dispose();
    }
  };
}
