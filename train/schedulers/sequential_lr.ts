/**
 * `SequentialLR`: runs schedulers one after another, switching at milestone epochs (PyTorch
 * 1.13's `SequentialLR`), e.g. a `LinearLR` warm-up then a decay.
 *
 * @module
 */

import {
  groupsOf,
  initialStepOf,
  LRScheduler,
  type LRSchedulerStateDict,
  type LrTarget,
  type SchedulerSetting,
  seekEpoch,
} from "./base.ts";
import { checkMilestones } from "./multi_step_lr.ts";

/** Options of `SequentialLR`. */
export interface SequentialLROptions {
  /** The schedulers, made on the same optimizer, in the order they run. */
  schedulers: readonly LRScheduler[];
  /** The epochs at which the next scheduler takes over: one fewer than the schedulers. */
  milestones: readonly number[];
}

/**
 * Runs `schedulers[0]` from epoch 0, then `schedulers[i]` from epoch `milestones[i - 1]`, which
 * restarts at its own epoch 0 there (PyTorch's `scheduler.step(0)`, its closed form): the lr of
 * epoch `e >= milestones[i - 1]` is `schedulers[i].lrAt(e - milestones[i - 1])`. On
 * construction the groups' lrs go back to their initial lrs, then to the first scheduler's
 * epoch 0 (as PyTorch, which undoes the other schedulers' initial steps).
 */
export class SequentialLR extends LRScheduler {
  #schedulers: LRScheduler[];
  #milestones: number[];

  /** Checks the schedulers and milestones, then starts the first scheduler. */
  constructor(optimizer: LrTarget, options: SequentialLROptions) {
    super(optimizer);
    const { schedulers, milestones } = options;
    if (!Array.isArray(schedulers) || schedulers.length === 0) {
      throw new Error(`SequentialLR: schedulers must be a non-empty list, got ${schedulers}`);
    }
    schedulers.forEach((scheduler, i) => {
      if (!(scheduler instanceof LRScheduler)) {
        const what = (scheduler as { name?: string })?.name ?? String(scheduler);
        throw new Error(
          `SequentialLR: schedulers[${i}] (${what}) is not an epoch schedule (LRScheduler)`,
        );
      }
      if (scheduler.optimizer !== optimizer) {
        throw new Error(
          "SequentialLR: Sequential Schedulers expects all schedulers to belong to the same " +
            `optimizer, but got schedulers at index ${i} to be different than the optimizer ` +
            "passed in.",
        );
      }
    });
    if (!Array.isArray(milestones) || milestones.length !== schedulers.length - 1) {
      throw new Error(
        "SequentialLR: Sequential Schedulers expects number of schedulers provided to be one " +
          "more than the number of milestone points, but got number of schedulers " +
          `${schedulers.length} and the number of milestones to be equal to ${
            Array.isArray(milestones) ? milestones.length : milestones
          }`,
      );
    }
    this.#milestones = checkMilestones(milestones, "SequentialLR milestones", 1);
    this.#schedulers = [...schedulers];
    // Back to the initial lrs (PyTorch resets group["lr"] = group["initial_lr"]).
    groupsOf(optimizer).forEach((group, i) => {
      group.lr = this.baseLrs[i];
    });
    this.initialStep();
  }

  /** `"SequentialLR"`. */
  get name(): string {
    return "SequentialLR";
  }

  /** The schedulers, in order. */
  get schedulers(): LRScheduler[] {
    return [...this.#schedulers];
  }

  /** The milestone epochs. */
  get milestones(): number[] {
    return [...this.#milestones];
  }

  #locate(epoch: number): { scheduler: LRScheduler; epoch: number } {
    const index = this.#milestones.filter((m) => m <= epoch).length;
    const from = index === 0 ? 0 : this.#milestones[index - 1];
    return { scheduler: this.#schedulers[index], epoch: epoch - from };
  }

  /** The lr of the scheduler running at `epoch`, at its own epoch. */
  lrAt(epoch: number, group = 0): number {
    const here = this.#locate(epoch);
    return here.scheduler.lrAt(here.epoch, group);
  }

  /** The lrs the running scheduler set (in `beforeUpdate`). */
  protected override chainedLr(epoch: number, group: number, _lr: number): number {
    return this.#locate(epoch).scheduler.getLastLr()[group];
  }

  /**
   * Moves the scheduler running at `epoch`: the first one's initial step at epoch 0 (PyTorch's
   * constructor undoes the others' initial steps and redoes the first's), `step(0)` (the closed
   * form of its epoch 0) at its milestone, else its `step()`.
   */
  protected override beforeUpdate(epoch: number): void {
    const index = this.#milestones.filter((m) => m <= epoch).length;
    const scheduler = this.#schedulers[index];
    if (epoch === 0) initialStepOf(scheduler);
    else if (index > 0 && this.#milestones[index - 1] === epoch) seekEpoch(scheduler, 0);
    else scheduler.step();
  }

  /** milestones. */
  protected hyperparameters(): Record<string, SchedulerSetting> {
    return { milestones: [...this.#milestones] };
  }

  /** Validates, then applies, milestones. */
  protected setHyperparameters(saved: Record<string, SchedulerSetting>): void {
    const milestones = checkMilestones(saved.milestones, "SequentialLR milestones", 1);
    if (milestones.length !== this.#schedulers.length - 1) {
      throw new Error(
        `SequentialLR.loadStateDict: ${milestones.length} milestones saved, for ` +
          `${this.#schedulers.length} schedulers`,
      );
    }
    this.#milestones = milestones;
  }

  /** Its own state and the states of its schedulers. */
  override stateDict(): LRSchedulerStateDict {
    return { ...super.stateDict(), schedulers: this.#schedulers.map((s) => s.stateDict()) };
  }

  /** Restores its schedulers' states, then its own. */
  override loadStateDict(saved: LRSchedulerStateDict): void {
    const inner = saved.schedulers;
    if (!Array.isArray(inner) || inner.length !== this.#schedulers.length) {
      throw new Error(
        `SequentialLR.loadStateDict: the state holds ${
          Array.isArray(inner) ? inner.length : "no"
        } scheduler states, for ${this.#schedulers.length} schedulers`,
      );
    }
    if (saved.scheduler === this.name) {
      this.#schedulers.forEach((scheduler, i) => scheduler.loadStateDict(inner[i]));
    }
    super.loadStateDict(saved);
  }
}
