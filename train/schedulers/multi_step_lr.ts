/**
 * `MultiStepLR`: the lr times `gamma` at each milestone epoch (PyTorch 1.13's `MultiStepLR`).
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

/** Options of `MultiStepLR`. */
export interface MultiStepLROptions {
  /** The epochs at which the lr decays: increasing integers >= 0. */
  milestones: readonly number[];
  /** Factor applied at every milestone (default 0.1). */
  gamma?: number;
}

/** Throws unless `milestones` is a list of increasing integers >= `from`. */
export function checkMilestones(milestones: unknown, what: string, from = 0): number[] {
  if (!Array.isArray(milestones)) {
    throw new Error(`${what} must be a list of epochs, got ${milestones}`);
  }
  milestones.forEach((m, i) => {
    if (typeof m !== "number" || !Number.isSafeInteger(m) || m < from) {
      throw new Error(`${what} must be integers >= ${from}, got ${m} at index ${i}`);
    }
    if (i > 0 && m <= milestones[i - 1]) {
      throw new Error(`${what} must be increasing, got [${milestones.join(", ")}]`);
    }
  });
  return [...milestones];
}

/** Multiplies the lr by `gamma` at each milestone: `lr(e) = base · gamma^(milestones <= e)`. */
export class MultiStepLR extends LRScheduler {
  #milestones: number[];
  #gamma: number;

  /** Starts the schedule at the optimizer's current lr. */
  constructor(optimizer: LrTarget, options: MultiStepLROptions) {
    super(optimizer);
    this.#milestones = checkMilestones(options.milestones, "MultiStepLR milestones");
    this.#gamma = checkFinite(options.gamma ?? 0.1, "MultiStepLR gamma");
    this.initialStep();
  }

  /** `"MultiStepLR"`. */
  get name(): string {
    return "MultiStepLR";
  }

  /** The milestone epochs. */
  get milestones(): number[] {
    return [...this.#milestones];
  }

  /** The decay factor. */
  get gamma(): number {
    return this.#gamma;
  }

  /** `base · gamma^k`, k the number of milestones <= `epoch` (PyTorch's `bisect_right`). */
  lrAt(epoch: number, group = 0): number {
    const passed = this.#milestones.filter((m) => m <= epoch).length;
    return this.baseLrs[group] * this.#gamma ** passed;
  }

  /** PyTorch's chainable form: `lr · gamma` at a milestone, else `lr`. */
  protected override chainedLr(epoch: number, _group: number, lr: number): number {
    return this.#milestones.includes(epoch) ? lr * this.#gamma : lr;
  }

  /** milestones and gamma. */
  protected hyperparameters(): Record<string, SchedulerSetting> {
    return { milestones: [...this.#milestones], gamma: this.#gamma };
  }

  /** Validates, then applies, milestones and gamma. */
  protected setHyperparameters(saved: Record<string, SchedulerSetting>): void {
    const milestones = checkMilestones(saved.milestones, "MultiStepLR milestones");
    this.#gamma = savedNumber(saved, "gamma", "MultiStepLR");
    this.#milestones = milestones;
  }
}
