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
export * from "./tune/mod.ts";
