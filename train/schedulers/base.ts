/**
 * The base of the learning-rate schedulers (PyTorch 1.13's `_LRScheduler`): parameter groups,
 * base lrs (PyTorch's `initial_lr`, shared by the schedulers of one optimizer), epoch counting,
 * lr updates and state dicts. `step()` applies each scheduler's chainable form (PyTorch's
 * `get_lr()`, from the groups' current lrs), `lrAt` is its closed form (PyTorch's
 * `_get_closed_form_lr()`, used at `SequentialLR`'s milestones); the state dict holds the last
 * lrs, so a restored scheduler continues the same sequence. The tests compare every curve with
 * PyTorch's `get_last_lr()`.
 *
 * @module
 */

/** One parameter group as a scheduler sees it: its lr, and its momentum or betas if any. */
export interface LrGroup {
  /** The group's learning rate. */
  lr: number;
  /** SGD-style momentum (cycled by `OneCycleLR`). */
  momentum?: number;
  /** Adam-style betas (`OneCycleLR` cycles `betas[0]`). */
  betas?: [number, number];
}

/**
 * What a scheduler drives: anything with a settable `lr`, such as an `Optimizer`. With
 * `paramGroups`, each group is scheduled from its own initial lr; without, `lr` is one group
 * (the object itself is the group).
 */
export interface LrTarget {
  /** The learning rate (of the only group when there are no `paramGroups`). */
  lr: number;
  /** Parameter groups, each with its own lr (and momentum or betas). */
  paramGroups?: readonly LrGroup[];
}

/** A scheduler setting as saved in a state dict. */
export type SchedulerSetting = number | string | boolean | number[] | null;

/** A scheduler's state: save it with the optimizer's to resume a schedule. */
export interface LRSchedulerStateDict {
  /** The scheduler's kind, e.g. `StepLR`. */
  scheduler: string;
  /** Epochs completed (`step()` calls); the lr in use is that of this epoch. */
  lastEpoch: number;
  /** The first group's base lr (its lr when the first scheduler on it was made). */
  baseLr: number;
  /** The first group's lr at `lastEpoch`. */
  lastLr: number;
  /** Every group's base lr (absent in states saved before parameter groups: `[baseLr]`). */
  baseLrs?: number[];
  /** Every group's lr at `lastEpoch` (absent in older states). */
  lastLrs?: number[];
  /** The schedule's own settings. */
  hyperparameters: Record<string, SchedulerSetting>;
  /** Running state beyond the epoch (`ReduceLROnPlateau`'s best, counters). */
  state?: Record<string, SchedulerSetting>;
  /** The states of the schedulers a `SequentialLR` runs, in order. */
  schedulers?: LRSchedulerStateDict[];
}

/** Throws unless `value` is a finite number. */
export function checkFinite(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new Error(`${what} must be a finite number, got ${value}`);
  }
  return value;
}

/** Throws unless `value` is an integer >= 1. */
export function checkPositiveInteger(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${what} must be an integer >= 1, got ${value}`);
  }
  return value;
}

/** The groups of `optimizer`: its `paramGroups`, or the optimizer itself as the only group. */
export function groupsOf(optimizer: LrTarget): readonly LrGroup[] {
  const groups = optimizer.paramGroups;
  if (groups === undefined) return [optimizer];
  if (groups.length === 0) throw new Error("LR scheduler: the optimizer has no parameter groups");
  return groups;
}

/** The optimizer's name for messages (`optimizer.name`, else its class). */
export function optimizerName(optimizer: LrTarget): string {
  const name = (optimizer as { name?: unknown }).name;
  return typeof name === "string" ? name : optimizer.constructor?.name ?? "the optimizer";
}

/**
 * PyTorch's `group['initial_lr']`: the lr a group had when the first scheduler on it was made
 * (`setdefault`), so that schedulers made later on the same optimizer (e.g. for `SequentialLR`)
 * share it. Kept beside the groups, which stay plain.
 */
const initialLrs = new WeakMap<object, number>();

/** The groups' initial lrs, recording their current lrs for groups that have none yet. */
export function initialLrsOf(groups: readonly LrGroup[]): number[] {
  return groups.map((group, i) => {
    const known = initialLrs.get(group);
    if (known !== undefined) return known;
    const lr = checkFinite(group.lr, `the lr of parameter group ${i}`);
    initialLrs.set(group, lr);
    return lr;
  });
}

/** Overwrites the groups' initial lrs (`OneCycleLR`, as PyTorch's does). */
export function setInitialLrs(groups: readonly LrGroup[], lrs: readonly number[]): void {
  groups.forEach((group, i) => initialLrs.set(group, lrs[i]));
}

/** A number per group: `value` repeated, or a list of exactly one per group. */
export function perGroup(
  value: number | readonly number[],
  groups: number,
  what: string,
): number[] {
  if (typeof value === "number") return new Array(groups).fill(value);
  if (!Array.isArray(value) || value.length !== groups) {
    throw new Error(
      `${what}: expected ${groups} values (one per parameter group), got ${
        Array.isArray(value) ? value.length : value
      }`,
    );
  }
  return [...value];
}

/** Reads a saved number setting. */
export function savedNumber(
  saved: Record<string, SchedulerSetting>,
  key: string,
  scheduler: string,
): number {
  return checkFinite(saved[key], `${scheduler}.loadStateDict: ${key}`);
}

let seek: (scheduler: LRScheduler, epoch: number) => void;
let restart: (scheduler: LRScheduler) => void;

/**
 * Moves `scheduler` to `epoch` and sets the groups' lrs to that epoch's closed form (PyTorch's
 * deprecated `step(epoch)`; `SequentialLR` uses it at its milestones, with epoch 0).
 */
export function seekEpoch(scheduler: LRScheduler, epoch: number): void {
  seek(scheduler, epoch);
}

/** Runs `scheduler`'s initial step again (PyTorch's `_initial_step()`; `SequentialLR`). */
export function initialStepOf(scheduler: LRScheduler): void {
  restart(scheduler);
}

/**
 * Base class of the epoch-driven schedulers: epoch counting, lr updates and state dicts. As in
 * PyTorch, `step()` applies the chainable form (`chainedLr`: from each group's current lr, so
 * schedulers made on the same optimizer compose, and a scheduler made after another starts from
 * the lr that one set), and `lrAt` is the closed form (PyTorch's `_get_closed_form_lr`).
 */
export abstract class LRScheduler {
  static {
    seek = (scheduler, epoch) => {
      scheduler.#lastEpoch = epoch;
      scheduler.#apply(scheduler.#baseLrs.map((_, i) => scheduler.lrAt(epoch, i)));
    };
    restart = (scheduler) => scheduler.initialStep();
  }

  /** The optimizer whose lr this sets. */
  readonly optimizer: LrTarget;
  #baseLrs: number[];
  #lastEpoch = 0;
  #lastLrs: number[];

  /**
   * Records every group's initial lr as its base lr (epoch 0). Subclasses call `initialStep()`
   * at the end of their constructor, which sets the lrs of epoch 0 (PyTorch's `_initial_step`).
   */
  constructor(optimizer: LrTarget) {
    this.optimizer = optimizer;
    this.#baseLrs = initialLrsOf(groupsOf(optimizer));
    this.#lastLrs = groupsOf(optimizer).map((group) => group.lr);
  }

  /** The scheduler's kind, as saved in state dicts. */
  abstract get name(): string;

  /** The lr of parameter group `group` (default 0) at `epoch`: the closed form, from its base lr. */
  abstract lrAt(epoch: number, group?: number): number;

  /**
   * The lr of `group` at `epoch` given its current lr `lr` (PyTorch's chainable `get_lr()`).
   * Default: the closed form (schedulers whose `get_lr()` is not chainable: LambdaLR, OneCycleLR).
   */
  protected chainedLr(epoch: number, group: number, _lr: number): number {
    return this.lrAt(epoch, group);
  }

  /** The schedule's own settings, for `stateDict()`. */
  protected abstract hyperparameters(): Record<string, SchedulerSetting>;

  /** Validates, then applies, saved settings: `loadStateDict()`. */
  protected abstract setHyperparameters(saved: Record<string, SchedulerSetting>): void;

  /** The parameter groups scheduled (the optimizer itself when it has no `paramGroups`). */
  protected get groups(): readonly LrGroup[] {
    return groupsOf(this.optimizer);
  }

  /** Sets the lrs of epoch 0: the end of a subclass's constructor. */
  protected initialStep(): void {
    this.#lastEpoch = 0;
    this.#chain();
  }

  #chain(): void {
    const epoch = this.#lastEpoch;
    this.beforeUpdate(epoch);
    this.#apply(this.groups.map((group, i) => this.chainedLr(epoch, i, group.lr)));
  }

  #apply(lrs: readonly number[]): void {
    this.groups.forEach((group, i) => {
      group.lr = lrs[i];
    });
    this.#lastLrs = this.groups.map((group) => group.lr);
    this.afterUpdate();
  }

  /** Called before the chainable update of `epoch` (`SequentialLR` steps its scheduler). */
  protected beforeUpdate(_epoch: number): void {}

  /** Called after every lr update (e.g. `OneCycleLR` sets the momentum of `lastEpoch`). */
  protected afterUpdate(): void {}

  /** Replaces the base lrs (`OneCycleLR` derives them from `maxLr`). */
  protected setBaseLrs(lrs: readonly number[]): void {
    this.#baseLrs = [...lrs];
  }

  /** The first group's base lr (PyTorch's `initial_lr`). */
  get baseLr(): number {
    return this.#baseLrs[0];
  }

  /** Every group's base lr (PyTorch's `base_lrs`). */
  get baseLrs(): number[] {
    return [...this.#baseLrs];
  }

  /** Epochs completed: `step()` calls so far (PyTorch's `last_epoch`). */
  get lastEpoch(): number {
    return this.#lastEpoch;
  }

  /** The first group's lr as this scheduler set it last (the only group's without groups). */
  get lastLr(): number {
    return this.#lastLrs[0];
  }

  /** Every group's lr as this scheduler set it last: PyTorch's `get_last_lr()`, one per group. */
  getLastLr(): number[] {
    return [...this.#lastLrs];
  }

  /** Ends an epoch: moves to the next one and updates the groups' lrs (the chainable form). */
  step(): void {
    this.#lastEpoch++;
    this.#chain();
  }

  /** The epoch counter, base lrs, last lrs and settings. */
  stateDict(): LRSchedulerStateDict {
    return {
      scheduler: this.name,
      lastEpoch: this.#lastEpoch,
      baseLr: this.#baseLrs[0],
      lastLr: this.#lastLrs[0],
      baseLrs: [...this.#baseLrs],
      lastLrs: [...this.#lastLrs],
      hyperparameters: this.hyperparameters(),
    };
  }

  /**
   * Restores a state saved by `stateDict()` of the same kind of scheduler (states saved before
   * parameter groups included), and sets the groups' lrs to the saved last lrs (PyTorch keeps
   * them in the optimizer's state dict), from which the next `step()` continues.
   */
  loadStateDict(saved: LRSchedulerStateDict): void {
    if (saved.scheduler !== this.name) {
      throw new Error(
        `${this.name}.loadStateDict: the state dict is from ${saved.scheduler}, not ${this.name}`,
      );
    }
    if (!Number.isSafeInteger(saved.lastEpoch) || saved.lastEpoch < 0) {
      throw new Error(`${this.name}.loadStateDict: invalid lastEpoch ${saved.lastEpoch}`);
    }
    const list = (values: number[], what: string) =>
      values.map((lr, i) => checkFinite(lr, `${this.name}.loadStateDict: ${what}[${i}]`));
    const baseLrs = list(saved.baseLrs ?? [saved.baseLr], "baseLrs");
    const lastLrs = list(saved.lastLrs ?? [saved.lastLr], "lastLrs");
    const groups = this.groups.length;
    if (baseLrs.length !== groups || lastLrs.length !== groups) {
      throw new Error(
        `${this.name}.loadStateDict: the state has ${baseLrs.length} parameter group(s), the ` +
          `optimizer ${groups}`,
      );
    }
    this.setHyperparameters(saved.hyperparameters);
    this.#baseLrs = baseLrs;
    this.#lastEpoch = saved.lastEpoch;
    this.#apply(lastLrs);
  }
}
