/**
 * `ReduceLROnPlateau`: divides the lr when a metric stops improving (PyTorch 1.13's
 * `ReduceLROnPlateau`), fed the metric after every epoch: `scheduler.step(valLoss)`.
 *
 * @module
 */

import {
  checkFinite,
  groupsOf,
  initialLrsOf,
  type LRSchedulerStateDict,
  type LrTarget,
  perGroup,
  type SchedulerSetting,
} from "./base.ts";

/** Options of `ReduceLROnPlateau`. */
export interface ReduceLROnPlateauOptions {
  /** `"min"` (default): the metric should fall (a loss); `"max"`: rise (an accuracy). */
  mode?: "min" | "max";
  /** The lr is multiplied by this on a plateau; < 1 (default 0.1). */
  factor?: number;
  /** Epochs without improvement tolerated before reducing (default 10). */
  patience?: number;
  /** The least change that counts as an improvement (default 1e-4). */
  threshold?: number;
  /** `"rel"` (default): relative to the best, `"abs"`: absolute. */
  thresholdMode?: "rel" | "abs";
  /** Epochs to wait after a reduction before counting bad epochs again (default 0). */
  cooldown?: number;
  /** The lowest lr: one, or one per parameter group (default 0). */
  minLr?: number | readonly number[];
  /** Reductions smaller than this are skipped (default 1e-8). */
  eps?: number;
}

function checkNonNegativeInteger(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`ReduceLROnPlateau: ${what} must be an integer >= 0, got ${value}`);
  }
  return value;
}

interface Settings {
  mode: "min" | "max";
  factor: number;
  patience: number;
  threshold: number;
  thresholdMode: "rel" | "abs";
  cooldown: number;
  minLrs: number[];
  eps: number;
}

function validate(options: ReduceLROnPlateauOptions, groups: number): Settings {
  const factor = checkFinite(options.factor ?? 0.1, "ReduceLROnPlateau factor");
  if (factor >= 1) throw new Error(`ReduceLROnPlateau: factor should be < 1.0, got ${factor}`);
  const mode = options.mode ?? "min";
  if (mode !== "min" && mode !== "max") {
    throw new Error(`ReduceLROnPlateau: mode ${mode} is unknown! (expected "min" or "max")`);
  }
  const thresholdMode = options.thresholdMode ?? "rel";
  if (thresholdMode !== "rel" && thresholdMode !== "abs") {
    throw new Error(
      `ReduceLROnPlateau: threshold mode ${thresholdMode} is unknown! (expected "rel" or "abs")`,
    );
  }
  return {
    mode,
    factor,
    patience: checkNonNegativeInteger(options.patience ?? 10, "patience"),
    threshold: checkFinite(options.threshold ?? 1e-4, "ReduceLROnPlateau threshold"),
    thresholdMode,
    cooldown: checkNonNegativeInteger(options.cooldown ?? 0, "cooldown"),
    minLrs: perGroup(options.minLr ?? 0, groups, "ReduceLROnPlateau minLr").map((lr) =>
      checkFinite(lr, "ReduceLROnPlateau minLr")
    ),
    eps: checkFinite(options.eps ?? 1e-8, "ReduceLROnPlateau eps"),
  };
}

function encodeNumber(value: number): number | string {
  return Number.isFinite(value) ? value : String(value);
}

function decodeNumber(value: SchedulerSetting | undefined, what: string): number {
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  return checkFinite(value, what);
}

/**
 * Reduces every group's lr by `factor` when the metric given to `step(metric)` has not improved
 * for more than `patience` epochs, then waits `cooldown` epochs (PyTorch's semantics, values
 * included). Not an epoch schedule: it has no `lrAt`, and `SequentialLR` cannot run it.
 */
export class ReduceLROnPlateau {
  /** The optimizer whose lr this sets. */
  readonly optimizer: LrTarget;
  #settings: Settings;
  #baseLrs: number[];
  #lastEpoch = 0;
  #best: number;
  #numBadEpochs = 0;
  #cooldownCounter = 0;

  /** Validates the options as PyTorch does. */
  constructor(optimizer: LrTarget, options: ReduceLROnPlateauOptions = {}) {
    this.optimizer = optimizer;
    const groups = groupsOf(optimizer);
    this.#settings = validate(options, groups.length);
    this.#baseLrs = initialLrsOf(groups);
    this.#best = this.#worst;
  }

  /** `"ReduceLROnPlateau"`. */
  get name(): string {
    return "ReduceLROnPlateau";
  }

  get #worst(): number {
    return this.#settings.mode === "min" ? Infinity : -Infinity;
  }

  /** Metrics given so far (PyTorch's `last_epoch`). */
  get lastEpoch(): number {
    return this.#lastEpoch;
  }

  /** The best metric so far (±Infinity before the first). */
  get best(): number {
    return this.#best;
  }

  /** Bad epochs counted since the last improvement or reduction. */
  get numBadEpochs(): number {
    return this.#numBadEpochs;
  }

  /** Every group's lr when the scheduler was made. */
  get baseLrs(): number[] {
    return [...this.#baseLrs];
  }

  /** The first group's base lr. */
  get baseLr(): number {
    return this.#baseLrs[0];
  }

  /** The first group's current lr. */
  get lastLr(): number {
    return groupsOf(this.optimizer)[0].lr;
  }

  /** Every group's current lr (PyTorch's `get_last_lr()`). */
  getLastLr(): number[] {
    return groupsOf(this.optimizer).map((group) => group.lr);
  }

  #isBetter(a: number, best: number): boolean {
    const { mode, thresholdMode, threshold } = this.#settings;
    if (mode === "min" && thresholdMode === "rel") return a < best * (1 - threshold);
    if (mode === "min") return a < best - threshold;
    if (thresholdMode === "rel") return a > best * (threshold + 1);
    return a > best + threshold;
  }

  /** Ends an epoch whose metric (e.g. the validation loss) is `metric`. */
  step(metric: number): void {
    if (typeof metric !== "number") {
      throw new Error(
        `ReduceLROnPlateau.step: needs the epoch's metric (a number), got ${metric}`,
      );
    }
    this.#lastEpoch++;
    if (this.#isBetter(metric, this.#best)) {
      this.#best = metric;
      this.#numBadEpochs = 0;
    } else {
      this.#numBadEpochs++;
    }
    if (this.#cooldownCounter > 0) {
      this.#cooldownCounter--;
      this.#numBadEpochs = 0; // bad epochs in cooldown do not count
    }
    if (this.#numBadEpochs > this.#settings.patience) {
      this.#reduce();
      this.#cooldownCounter = this.#settings.cooldown;
      this.#numBadEpochs = 0;
    }
  }

  #reduce(): void {
    const { factor, minLrs, eps } = this.#settings;
    groupsOf(this.optimizer).forEach((group, i) => {
      const old = group.lr;
      const lr = Math.max(old * factor, minLrs[i]);
      if (old - lr > eps) group.lr = lr;
    });
  }

  /** Settings, counters and the best metric (±Infinity saved as strings, JSON-safe). */
  stateDict(): LRSchedulerStateDict {
    const { minLrs, ...rest } = this.#settings;
    const lastLrs = this.getLastLr();
    return {
      scheduler: this.name,
      lastEpoch: this.#lastEpoch,
      baseLr: this.#baseLrs[0],
      lastLr: lastLrs[0],
      baseLrs: [...this.#baseLrs],
      lastLrs,
      hyperparameters: { ...rest, minLrs: [...minLrs] },
      state: {
        best: encodeNumber(this.#best),
        numBadEpochs: this.#numBadEpochs,
        cooldownCounter: this.#cooldownCounter,
      },
    };
  }

  /** Restores a state saved by `stateDict()`, and sets the groups' lrs to the saved ones. */
  loadStateDict(saved: LRSchedulerStateDict): void {
    const name = this.name;
    if (saved.scheduler !== name) {
      throw new Error(
        `${name}.loadStateDict: the state dict is from ${saved.scheduler}, not ${name}`,
      );
    }
    const groups = groupsOf(this.optimizer);
    const h = saved.hyperparameters;
    const settings = validate({
      mode: h.mode as "min" | "max",
      factor: h.factor as number,
      patience: h.patience as number,
      threshold: h.threshold as number,
      thresholdMode: h.thresholdMode as "rel" | "abs",
      cooldown: h.cooldown as number,
      minLr: h.minLrs as number[],
      eps: h.eps as number,
    }, groups.length);
    const state = saved.state ?? {};
    const best = decodeNumber(state.best, `${name}.loadStateDict: best`);
    const numBadEpochs = checkNonNegativeInteger(state.numBadEpochs, "numBadEpochs");
    const cooldownCounter = checkNonNegativeInteger(state.cooldownCounter, "cooldownCounter");
    const lastEpoch = checkNonNegativeInteger(saved.lastEpoch, "lastEpoch");
    const lastLrs = (saved.lastLrs ?? [saved.lastLr]).map((lr) =>
      checkFinite(lr, `${name}.loadStateDict: lastLrs`)
    );
    const baseLrs = (saved.baseLrs ?? [saved.baseLr]).map((lr) =>
      checkFinite(lr, `${name}.loadStateDict: baseLrs`)
    );
    if (lastLrs.length !== groups.length || baseLrs.length !== groups.length) {
      throw new Error(
        `${name}.loadStateDict: the state has ${lastLrs.length} parameter group(s), the ` +
          `optimizer ${groups.length}`,
      );
    }
    this.#settings = settings;
    this.#best = best;
    this.#numBadEpochs = numBadEpochs;
    this.#cooldownCounter = cooldownCounter;
    this.#lastEpoch = lastEpoch;
    this.#baseLrs = baseLrs;
    groups.forEach((group, i) => {
      group.lr = lastLrs[i];
    });
  }
}
