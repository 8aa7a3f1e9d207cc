/**
 * Learning-rate schedulers with PyTorch's semantics: construct after the optimizer (its lr at
 * that moment is the base lr), then call `step()` once per epoch after that epoch's optimizer
 * steps. The lr of epoch `e` is a closed form of `e`, so a scheduler restored from its state
 * dict continues the same sequence.
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

/** What a scheduler drives: anything with a settable `lr`, such as an `Optimizer`. */
export interface LrTarget {
  /** The learning rate. */
  lr: number;
}

/** A scheduler's state: save it with the optimizer's to resume a schedule. */
export interface LRSchedulerStateDict {
  /** The scheduler's kind, e.g. `StepLR`. */
  scheduler: string;
  /** Epochs completed (`step()` calls); the lr in use is that of this epoch. */
  lastEpoch: number;
  /** The optimizer's lr when the scheduler was made. */
  baseLr: number;
  /** The lr of `lastEpoch`. */
  lastLr: number;
  /** The schedule's own settings. */
  hyperparameters: Record<string, number>;
}

function checkFinite(value: number, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new Error(`${what} must be a finite number, got ${value}`);
  }
  return value;
}

function checkPositiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${what} must be an integer >= 1, got ${value}`);
  }
  return value;
}

/** Base class of the schedulers: epoch counting, lr updates and state dicts. */
export abstract class LRScheduler {
  /** The optimizer whose lr this sets. */
  readonly optimizer: LrTarget;
  #baseLr: number;
  #lastEpoch = 0;

  /** Records the optimizer's current lr as the base lr (epoch 0). */
  constructor(optimizer: LrTarget) {
    this.optimizer = optimizer;
    this.#baseLr = checkFinite(optimizer.lr, "the optimizer's lr");
  }

  /** The scheduler's kind, as saved in state dicts. */
  abstract get name(): string;

  /** The lr of `epoch`, from the base lr (a closed form). */
  abstract lrAt(epoch: number): number;

  /** The schedule's own settings, for `stateDict()`. */
  protected abstract hyperparameters(): Record<string, number>;

  /** Validates, then applies, saved settings: `loadStateDict()`. */
  protected abstract setHyperparameters(saved: Record<string, number>): void;

  /** The optimizer's lr when the scheduler was made (PyTorch's `initial_lr`). */
  get baseLr(): number {
    return this.#baseLr;
  }

  /** Epochs completed: `step()` calls so far (PyTorch's `last_epoch`). */
  get lastEpoch(): number {
    return this.#lastEpoch;
  }

  /** The lr the scheduler set last (that of `lastEpoch`). */
  get lastLr(): number {
    return this.lrAt(this.#lastEpoch);
  }

  /** The lr the scheduler set last, as PyTorch's `get_last_lr()` (one parameter group). */
  getLastLr(): number {
    return this.lastLr;
  }

  /** Ends an epoch: moves to the next one and sets the optimizer's lr to its value. */
  step(): void {
    this.#lastEpoch++;
    this.optimizer.lr = this.lrAt(this.#lastEpoch);
  }

  /** The epoch counter, base lr and settings. */
  stateDict(): LRSchedulerStateDict {
    return {
      scheduler: this.name,
      lastEpoch: this.#lastEpoch,
      baseLr: this.#baseLr,
      lastLr: this.lastLr,
      hyperparameters: this.hyperparameters(),
    };
  }

  /**
   * Restores a state saved by `stateDict()` of the same kind of scheduler, and sets the
   * optimizer's lr to the schedule's value at the restored epoch.
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
    const baseLr = checkFinite(saved.baseLr, `${this.name}.loadStateDict: baseLr`);
    this.setHyperparameters(saved.hyperparameters);
    this.#baseLr = baseLr;
    this.#lastEpoch = saved.lastEpoch;
    this.optimizer.lr = this.lrAt(this.#lastEpoch);
  }
}

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
  lrAt(epoch: number): number {
    return this.baseLr * this.#gamma ** Math.floor(epoch / this.#stepSize);
  }

  /** stepSize and gamma. */
  protected hyperparameters(): Record<string, number> {
    return { stepSize: this.#stepSize, gamma: this.#gamma };
  }

  /** Validates, then applies, stepSize and gamma. */
  protected setHyperparameters(saved: Record<string, number>): void {
    const stepSize = checkPositiveInteger(saved.stepSize, "StepLR stepSize");
    this.#gamma = checkFinite(saved.gamma, "StepLR gamma");
    this.#stepSize = stepSize;
  }
}

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
  lrAt(epoch: number): number {
    const base = this.baseLr, low = this.#etaMin;
    return low + (base - low) * (1 + Math.cos(Math.PI * epoch / this.#tMax)) / 2;
  }

  /** tMax and etaMin. */
  protected hyperparameters(): Record<string, number> {
    return { tMax: this.#tMax, etaMin: this.#etaMin };
  }

  /** Validates, then applies, tMax and etaMin. */
  protected setHyperparameters(saved: Record<string, number>): void {
    const tMax = checkPositiveInteger(saved.tMax, "CosineAnnealingLR tMax");
    this.#etaMin = checkFinite(saved.etaMin, "CosineAnnealingLR etaMin");
    this.#tMax = tMax;
  }
}
