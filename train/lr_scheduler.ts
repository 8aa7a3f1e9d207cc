/**
 * Learning-rate schedulers with PyTorch 1.13's semantics: construct after the optimizer (each
 * parameter group's lr at that moment is its base lr), then call `step()` once per epoch after
 * that epoch's optimizer steps (`OneCycleLR`: once per batch; `ReduceLROnPlateau`:
 * `step(metric)` per epoch). With parameter groups (`paramGroups`), each group is scheduled from
 * its own initial lr and `getLastLr()` has one lr per group. `step()` applies PyTorch's
 * chainable form (from each group's current lr, so values equal PyTorch's to rounding, and
 * schedulers on one optimizer compose as in PyTorch); `lrAt(epoch)` is the closed form. A
 * scheduler restored from its state dict (which holds the last lrs) continues the same sequence.
 * One file each under `train/schedulers/`; this module gathers them.
 *
 * ```ts ignore
 * const scheduler = new StepLR(optimizer, { stepSize: 10, gamma: 0.1 });
 * for (let epoch = 0; epoch < 30; epoch++) {
 *   trainOneEpoch(); // optimizer.step() per batch
 *   scheduler.step();
 * }
 * ```
 *
 * @module
 */

export {
  type LrGroup,
  LRScheduler,
  type LRSchedulerStateDict,
  type LrTarget,
  type SchedulerSetting,
} from "./schedulers/base.ts";
export { StepLR, type StepLROptions } from "./schedulers/step_lr.ts";
export { MultiStepLR, type MultiStepLROptions } from "./schedulers/multi_step_lr.ts";
export {
  CosineAnnealingLR,
  type CosineAnnealingLROptions,
} from "./schedulers/cosine_annealing_lr.ts";
export { ExponentialLR, type ExponentialLROptions } from "./schedulers/exponential_lr.ts";
export { LinearLR, type LinearLROptions } from "./schedulers/linear_lr.ts";
export { LambdaLR, type LambdaLROptions, type LrLambda } from "./schedulers/lambda_lr.ts";
export { OneCycleLR, type OneCycleLROptions } from "./schedulers/one_cycle_lr.ts";
export {
  ReduceLROnPlateau,
  type ReduceLROnPlateauOptions,
} from "./schedulers/reduce_lr_on_plateau.ts";
export { SequentialLR, type SequentialLROptions } from "./schedulers/sequential_lr.ts";
