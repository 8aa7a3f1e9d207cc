/**
 * `StepLR`: the lr times `gamma` every `stepSize` epochs (PyTorch 1.13's `StepLR`).
 *
 * @module
 */

import {
  checkFinite,
  checkPositiveInteger,
  LRScheduler,
  type LrTarget,
  savedNumber,
  type SchedulerSetting,
} from "./base.ts";

/** Options of `StepLR`. */
export interface StepLROptions {
  /** Epochs between decays. */
  stepSize: number;
  /** Factor applied every `stepSize` epochs (default 0.1). */
  gamma?: number;
}

/** Multiplies the lr by `gamma` every `stepSize` epochs: `lr(e) = base · gamma^⌊e / stepSize⌋`. */
export class StepLR extends LRScheduler {
  #stepSize: number;
  #gamma: number;

  /** Starts the schedule at the optimizer's current lr. */
  constructor(optimizer: LrTarget, options: StepLROptions) {
    super(optimizer);
    this.#stepSize = checkPositiveInteger(options.stepSize, "StepLR stepSize");
    this.#gamma = checkFinite(options.gamma ?? 0.1, "StepLR gamma");
    this.initialStep();
  }

  /** `"StepLR"`. */
  get name(): string {
    return "StepLR";
  }

  /** Epochs between decays. */
  get stepSize(): number {
    return this.#stepSize;
  }

  /** The decay factor. */
  get gamma(): number {
    return this.#gamma;
  }

  /** `base · gamma^⌊epoch / stepSize⌋`. */
  lrAt(epoch: number, group = 0): number {
    return this.baseLrs[group] * this.#gamma ** Math.floor(epoch / this.#stepSize);
  }

  /** PyTorch's chainable form: `lr · gamma` at multiples of stepSize, else `lr`. */
  protected override chainedLr(epoch: number, _group: number, lr: number): number {
    return epoch === 0 || epoch % this.#stepSize !== 0 ? lr : lr * this.#gamma;
  }

  /** stepSize and gamma. */
  protected hyperparameters(): Record<string, SchedulerSetting> {
    return { stepSize: this.#stepSize, gamma: this.#gamma };
  }

  /** Validates, then applies, stepSize and gamma. */
  protected setHyperparameters(saved: Record<string, SchedulerSetting>): void {
    const stepSize = checkPositiveInteger(saved.stepSize, "StepLR stepSize");
    this.#gamma = savedNumber(saved, "gamma", "StepLR");
    this.#stepSize = stepSize;
  }
}
