/**
 * Training: optimizers, learning-rate schedules, the training loop and the tuner.
 *
 * @module
 */

export * from "./optim/mod.ts";
export {
  CosineAnnealingLR,
  type CosineAnnealingLROptions,
  LRScheduler,
  type LRSchedulerStateDict,
  type LrTarget,
  StepLR,
  type StepLROptions,
} from "./lr_scheduler.ts";
export {
  checkFinite,
  evaluate,
  type EvaluateOptions,
  type EvaluateResult,
  fit,
  type FitOptions,
  type FitProgress,
  type FitResult,
  type LossPhase,
  NonFiniteLossError,
  type NonFiniteValues,
  type StepProgress,
  trainEpoch,
  type TrainEpochOptions,
  type TrainEpochResult,
  type WatchedNames,
} from "./fit.ts";
export { type EpochRecord, HISTORY_COLUMNS, historyToCsv } from "./history.ts";
export {
  type AccumulatorSnapshot,
  MetricsAccumulator,
  type NonFiniteTensor,
} from "./metrics_accumulator.ts";
export { ConfusionAccumulator, perClassAccuracy } from "./confusion.ts";
export { ReadPacer, type ReadPacerOptions } from "./read_pacer.ts";
export {
  type CheckpointInfo,
  type CpuTensor,
  type DescribedModel,
  loadCheckpoint,
  type LoadedCheckpoint,
  type LoadedWeights,
  loadWeights,
  readTensors,
  restoreCheckpoint,
  saveCheckpoint,
  saveWeights,
  type TrainingState,
} from "./checkpoint.ts";
export * from "./tune/mod.ts";
