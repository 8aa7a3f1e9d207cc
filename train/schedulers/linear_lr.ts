/**
 * `LinearLR`: the lr factor goes linearly from `startFactor` to `endFactor` over `totalIters`
 * epochs, then stays (PyTorch 1.13's `LinearLR`, often a warm-up).
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

/** Options of `LinearLR`. */
export interface LinearLROptions {
  /** The factor of epoch 0, in [0, 1] (default 1/3). */
  startFactor?: number;
  /** The factor from epoch `totalIters` on, in [0, 1] (default 1). */
  endFactor?: number;
  /** Epochs from the start factor to the end factor (default 5). */
  totalIters?: number;
}

function checkFactor(value: unknown, which: "Starting" | "Ending"): number {
  const factor = checkFinite(value, `LinearLR ${which === "Starting" ? "start" : "end"}Factor`);
  if (factor > 1 || factor < 0) {
    throw new Error(
      `LinearLR: ${which} multiplicative factor expected to be between 0 and 1, got ${factor}`,
    );
  }
  return factor;
}

/**
 * `lr(e) = base · (start + (end - start) · min(e, totalIters) / totalIters)`: PyTorch's closed
 * form (its chainable form gives the same values to rounding, but divides by zero when
 * `startFactor` is 0; this one does not).
 */
export class LinearLR extends LRScheduler {
  #startFactor: number;
  #endFactor: number;
  #totalIters: number;

  /** Starts the schedule: the lr becomes `base · startFactor`. */
  constructor(optimizer: LrTarget, options: LinearLROptions = {}) {
    super(optimizer);
    this.#startFactor = checkFactor(options.startFactor ?? 1 / 3, "Starting");
    this.#endFactor = checkFactor(options.endFactor ?? 1, "Ending");
    this.#totalIters = checkPositiveInteger(options.totalIters ?? 5, "LinearLR totalIters");
    this.initialStep();
  }

  /** `"LinearLR"`. */
  get name(): string {
    return "LinearLR";
  }

  /** The factor of epoch 0. */
  get startFactor(): number {
    return this.#startFactor;
  }

  /** The factor from epoch `totalIters` on. */
  get endFactor(): number {
    return this.#endFactor;
  }

  /** Epochs of the ramp. */
  get totalIters(): number {
    return this.#totalIters;
  }

  /** `base · (start + (end - start) · min(epoch, totalIters) / totalIters)`. */
  lrAt(epoch: number, group = 0): number {
    const start = this.#startFactor, end = this.#endFactor, total = this.#totalIters;
    return this.baseLrs[group] * (start + (end - start) * Math.min(total, epoch) / total);
  }

  /**
   * PyTorch's chainable form: `lr · startFactor` at epoch 0, then `lr · (1 + (end - start) /
   * (totalIters · start + (epoch - 1) · (end - start)))` up to totalIters. With startFactor 0 that
   * divides 0 by 0 (PyTorch raises ZeroDivisionError); the closed form is used instead.
   */
  protected override chainedLr(epoch: number, group: number, lr: number): number {
    const start = this.#startFactor, end = this.#endFactor, total = this.#totalIters;
    if (epoch === 0) return lr * start;
    if (epoch > total) return lr;
    const denominator = total * start + (epoch - 1) * (end - start);
    if (denominator === 0) return this.lrAt(epoch, group);
    return lr * (1 + (end - start) / denominator);
  }

  /** startFactor, endFactor and totalIters. */
  protected hyperparameters(): Record<string, SchedulerSetting> {
    return {
      startFactor: this.#startFactor,
      endFactor: this.#endFactor,
      totalIters: this.#totalIters,
    };
  }

  /** Validates, then applies, startFactor, endFactor and totalIters. */
  protected setHyperparameters(saved: Record<string, SchedulerSetting>): void {
    const startFactor = checkFactor(savedNumber(saved, "startFactor", "LinearLR"), "Starting");
    const endFactor = checkFactor(savedNumber(saved, "endFactor", "LinearLR"), "Ending");
    this.#totalIters = checkPositiveInteger(saved.totalIters, "LinearLR totalIters");
    this.#startFactor = startFactor;
    this.#endFactor = endFactor;
  }
}
