/**
 * `LambdaLR`: the lr is the base lr times a function of the epoch (PyTorch 1.13's `LambdaLR`).
 *
 * @module
 */

import { LRScheduler, type LrTarget, type SchedulerSetting } from "./base.ts";

/** A factor of the base lr as a function of the epoch. */
export type LrLambda = (epoch: number) => number;

/** Options of `LambdaLR`. */
export interface LambdaLROptions {
  /** The factor of the base lr at each epoch: one function, or one per parameter group. */
  lrLambda: LrLambda | readonly LrLambda[];
}

/**
 * `lr(e) = base · lrLambda(e)`. Its state dict holds the epoch and base lrs but not the
 * functions (as PyTorch's, which saves plain functions as None): a restored `LambdaLR` keeps the
 * functions it was constructed with, so construct it with the same ones.
 */
export class LambdaLR extends LRScheduler {
  #lambdas: LrLambda[];

  /** Starts the schedule: the lr becomes `base · lrLambda(0)`. */
  constructor(optimizer: LrTarget, options: LambdaLROptions) {
    super(optimizer);
    const groups = this.groups.length;
    const given = options?.lrLambda;
    if (Array.isArray(given)) {
      if (given.length !== groups) {
        throw new Error(`LambdaLR: expected ${groups} lrLambdas, but got ${given.length}`);
      }
      this.#lambdas = [...given];
    } else {
      this.#lambdas = new Array(groups).fill(given);
    }
    this.#lambdas.forEach((fn, i) => {
      if (typeof fn !== "function") {
        throw new Error(`LambdaLR: lrLambda must be a function of the epoch, got ${fn} (${i})`);
      }
    });
    this.initialStep();
  }

  /** `"LambdaLR"`. */
  get name(): string {
    return "LambdaLR";
  }

  /** `base · lrLambda(epoch)`; throws when the function gives no finite number. */
  lrAt(epoch: number, group = 0): number {
    const factor = this.#lambdas[group](epoch);
    if (typeof factor !== "number" || !Number.isFinite(factor)) {
      throw new Error(
        `LambdaLR: lrLambda(${epoch}) must return a finite number, got ${factor}`,
      );
    }
    return this.baseLrs[group] * factor;
  }

  /** Nothing: the functions cannot be saved (PyTorch saves plain functions as None too). */
  protected hyperparameters(): Record<string, SchedulerSetting> {
    return {};
  }

  /** Nothing to restore: the functions are those given to the constructor. */
  protected setHyperparameters(_saved: Record<string, SchedulerSetting>): void {}
}
