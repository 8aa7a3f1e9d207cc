/**
 * `CosineAnnealingLR`: the lr along a half cosine from the base lr down to `etaMin` over `tMax`
 * epochs (PyTorch 1.13's `CosineAnnealingLR`).
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

/** Options of `CosineAnnealingLR`. */
export interface CosineAnnealingLROptions {
  /** Epochs of the half cosine, from the base lr down to `etaMin`. */
  tMax: number;
  /** The lowest lr (default 0). */
  etaMin?: number;
}

/**
 * Anneals the lr along a cosine: `lr(e) = etaMin + (base - etaMin) · (1 + cos(π·e / tMax)) / 2`
 * (PyTorch's closed form; past `tMax` it rises again, as in PyTorch).
 */
export class CosineAnnealingLR extends LRScheduler {
  #tMax: number;
  #etaMin: number;

  /** Starts the schedule at the optimizer's current lr. */
  constructor(optimizer: LrTarget, options: CosineAnnealingLROptions) {
    super(optimizer);
    this.#tMax = checkPositiveInteger(options.tMax, "CosineAnnealingLR tMax");
    this.#etaMin = checkFinite(options.etaMin ?? 0, "CosineAnnealingLR etaMin");
    this.initialStep();
  }

  /** `"CosineAnnealingLR"`. */
  get name(): string {
    return "CosineAnnealingLR";
  }

  /** Epochs of the half cosine. */
  get tMax(): number {
    return this.#tMax;
  }

  /** The lowest lr. */
  get etaMin(): number {
    return this.#etaMin;
  }

  /** `etaMin + (base - etaMin) · (1 + cos(π·epoch / tMax)) / 2`. */
  lrAt(epoch: number, group = 0): number {
    const base = this.baseLrs[group], low = this.#etaMin;
    return low + (base - low) * (1 + Math.cos(Math.PI * epoch / this.#tMax)) / 2;
  }

  /** PyTorch's chainable form (a ratio of cosines, and the restart step past each cycle). */
  protected override chainedLr(epoch: number, group: number, lr: number): number {
    const tMax = this.#tMax, low = this.#etaMin;
    if (epoch === 0) return lr;
    if ((epoch - 1 - tMax) % (2 * tMax) === 0) {
      return lr + (this.baseLrs[group] - low) * (1 - Math.cos(Math.PI / tMax)) / 2;
    }
    return (1 + Math.cos(Math.PI * epoch / tMax)) / (1 + Math.cos(Math.PI * (epoch - 1) / tMax)) *
        (lr - low) + low;
  }

  /** tMax and etaMin. */
  protected hyperparameters(): Record<string, SchedulerSetting> {
    return { tMax: this.#tMax, etaMin: this.#etaMin };
  }

  /** Validates, then applies, tMax and etaMin. */
  protected setHyperparameters(saved: Record<string, SchedulerSetting>): void {
    const tMax = checkPositiveInteger(saved.tMax, "CosineAnnealingLR tMax");
    this.#etaMin = savedNumber(saved, "etaMin", "CosineAnnealingLR");
    this.#tMax = tMax;
  }
}
