/**
 * `ExponentialLR`: the lr times `gamma` every epoch (PyTorch 1.13's `ExponentialLR`).
 *
 * @module
 */

import {
  checkFinite,
  LRScheduler,
  type LrTarget,
  savedNumber,
  type SchedulerSetting,
} from "./base.ts";

/** Options of `ExponentialLR`. */
export interface ExponentialLROptions {
  /** Factor applied every epoch. */
  gamma: number;
}

/** Multiplies the lr by `gamma` every epoch: `lr(e) = base · gamma^e`. */
export class ExponentialLR extends LRScheduler {
  #gamma: number;

  /** Starts the schedule at the optimizer's current lr. */
  constructor(optimizer: LrTarget, options: ExponentialLROptions) {
    super(optimizer);
    this.#gamma = checkFinite(options?.gamma, "ExponentialLR gamma");
    this.initialStep();
  }

  /** `"ExponentialLR"`. */
  get name(): string {
    return "ExponentialLR";
  }

  /** The decay factor. */
  get gamma(): number {
    return this.#gamma;
  }

  /** `base · gamma^epoch`. */
  lrAt(epoch: number, group = 0): number {
    return this.baseLrs[group] * this.#gamma ** epoch;
  }

  /** PyTorch's chainable form: `lr · gamma`, except at epoch 0. */
  protected override chainedLr(epoch: number, _group: number, lr: number): number {
    return epoch === 0 ? lr : lr * this.#gamma;
  }

  /** gamma. */
  protected hyperparameters(): Record<string, SchedulerSetting> {
    return { gamma: this.#gamma };
  }

  /** Validates, then applies, gamma. */
  protected setHyperparameters(saved: Record<string, SchedulerSetting>): void {
    this.#gamma = savedNumber(saved, "gamma", "ExponentialLR");
  }
}
