/**
 * The study's tuning trainable: the tuning CNN with a sampled l1, lr and batch size, trained one
 * epoch per report; each report carries the validation loss (`loss`, the true mean NLL, which
 * ASHA minimises), `accuracy`, `loss_study` (the study's scaling), the training numbers, and a
 * checkpoint (model + optimizer) so that `tune --resume` continues exactly.
 *
 * @module
 */

import { join } from "node:path";
import { DataLoader } from "../data/loader.ts";
import { tuningCnn } from "../nn/models.ts";
import { Rng } from "../nn/random.ts";
import { loadCheckpoint, restoreCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import { evaluate, trainEpoch } from "../train/fit.ts";
import { MetricsAccumulator } from "../train/metrics_accumulator.ts";
import { ReadPacer } from "../train/read_pacer.ts";
import { type Trainable, TrialStopped } from "../train/tune/session.ts";
import type { Metrics } from "../train/tune/types.ts";
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
    const accumulator = new MetricsAccumulator();
    const pacer = new ReadPacer();
    const progress = options.progress?.(session.trialId);
    try {
      if (session.checkpoint) {
        const saved = await loadCheckpoint(join(session.checkpoint.dir, CHECKPOINT_FILE));
        restoreCheckpoint(saved, { model, optimizer });
      }
      for (let epoch = session.iteration + 1; epoch <= options.maxEpochs; epoch++) {
        const trained = await trainEpoch(model, {
          loader: train,
          optimizer,
          epoch,
          signal: session.signal,
          pacer,
          accumulator,
          onStep: progress ? (p) => progress.step({ ...p, epochs: options.maxEpochs }) : undefined,
        });
        progress?.clear();
        if (trained.interrupted) throw session.signal.reason ?? new TrialStopped("aborted");
        const checked = await evaluate(model, val, { epoch, phase: "validation" });
        const metrics: Metrics = {
          loss: checked.loss,
          accuracy: checked.accuracy,
          loss_study: checked.loss / batchSize,
          train_loss: trained.loss,
          train_accuracy: trained.accuracy,
          images_per_second: trained.images / trained.seconds,
        };
        options.onMetrics?.(session.trialId, metrics);
        const go = await session.report(metrics, {
          checkpoint: {
            data: { epoch },
            save: (dir) =>
              saveCheckpoint(join(dir, CHECKPOINT_FILE), { model, optimizer }, { epoch }),
          },
        });
        if (!go) return;
      }
    } finally {
      progress?.clear();
      accumulator.dispose();
      train.dispose();
      val.dispose();
      optimizer.dispose();
      model.dispose();
    }
  };
}
