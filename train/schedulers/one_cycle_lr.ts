/**
 * `OneCycleLR`: the 1cycle policy (PyTorch 1.13's `OneCycleLR`), stepped after every batch: the
 * lr rises from `maxLr / divFactor` to `maxLr`, then falls to `maxLr / divFactor /
 * finalDivFactor`, while the momentum (or Adam's `betas[0]`) moves the opposite way.
 *
 * @module
 */

import {
  checkFinite,
  groupsOf,
  type LrGroup,
  LRScheduler,
  type LrTarget,
  optimizerName,
  perGroup,
  savedNumber,
  type SchedulerSetting,
  setInitialLrs,
} from "./base.ts";

/** Options of `OneCycleLR`: `totalSteps`, or `epochs` and `stepsPerEpoch`. */
export interface OneCycleLROptions {
  /** The highest lr: one, or one per parameter group. */
  maxLr: number | readonly number[];
  /** Steps (batches) of the whole cycle; else `epochs · stepsPerEpoch`. */
  totalSteps?: number;
  /** Epochs of the cycle (with `stepsPerEpoch`, when `totalSteps` is not given). */
  epochs?: number;
  /** Steps per epoch (with `epochs`). */
  stepsPerEpoch?: number;
  /** The share of the cycle spent raising the lr, in [0, 1] (default 0.3). */
  pctStart?: number;
  /** `"cos"` (default) or `"linear"` annealing. */
  annealStrategy?: "cos" | "linear";
  /** Cycle the momentum (or `betas[0]`) inversely to the lr (default true). */
  cycleMomentum?: boolean;
  /** The lowest momentum, reached at the peak lr (default 0.85). */
  baseMomentum?: number | readonly number[];
  /** The highest momentum, at the start and end (default 0.95). */
  maxMomentum?: number | readonly number[];
  /** The initial lr is `maxLr / divFactor` (default 25). */
  divFactor?: number;
  /** The final lr is `maxLr / divFactor / finalDivFactor` (default 1e4). */
  finalDivFactor?: number;
  /** Three phases (up, back down to the initial lr, then annihilation) instead of two. */
  threePhase?: boolean;
}

type Anchor = "initial" | "max" | "min";
type MomentumAnchor = "base" | "max";

interface Phase {
  endStep: number;
  startLr: Anchor;
  endLr: Anchor;
  startMomentum: MomentumAnchor;
  endMomentum: MomentumAnchor;
}

function phasesOf(totalSteps: number, pctStart: number, threePhase: boolean): Phase[] {
  if (threePhase) {
    return [
      {
        endStep: pctStart * totalSteps - 1,
        startLr: "initial",
        endLr: "max",
        startMomentum: "max",
        endMomentum: "base",
      },
      {
        endStep: 2 * pctStart * totalSteps - 2,
        startLr: "max",
        endLr: "initial",
        startMomentum: "base",
        endMomentum: "max",
      },
      {
        endStep: totalSteps - 1,
        startLr: "initial",
        endLr: "min",
        startMomentum: "max",
        endMomentum: "max",
      },
    ];
  }
  return [
    {
      endStep: pctStart * totalSteps - 1,
      startLr: "initial",
      endLr: "max",
      startMomentum: "max",
      endMomentum: "base",
    },
    {
      endStep: totalSteps - 1,
      startLr: "max",
      endLr: "min",
      startMomentum: "base",
      endMomentum: "max",
    },
  ];
}

/** Whether `object.key` can be assigned (a writable data property, or an accessor with a setter). */
function isWritable(object: object, key: string): boolean {
  for (let o: object | null = object; o !== null; o = Object.getPrototypeOf(o)) {
    const descriptor = Object.getOwnPropertyDescriptor(o, key);
    if (descriptor) return descriptor.set !== undefined || descriptor.writable === true;
  }
  return Object.isExtensible(object);
}

function momentumKind(optimizer: LrTarget, group: LrGroup, index: number): "momentum" | "betas" {
  const name = optimizerName(optimizer);
  const which = optimizer.paramGroups ? `${name}'s parameter group ${index}` : name;
  let kind: "momentum" | "betas";
  if (typeof group.momentum === "number") kind = "momentum";
  else if (Array.isArray(group.betas) && group.betas.length === 2) kind = "betas";
  else {
    throw new Error(
      `OneCycleLR: optimizer must support momentum or beta1 with the cycleMomentum option ` +
        `enabled, but ${which} has neither a momentum nor betas; pass cycleMomentum: false`,
    );
  }
  if (!isWritable(group, kind)) {
    throw new Error(
      `OneCycleLR: cycleMomentum sets ${which}'s ${kind}, which is read-only; pass ` +
        `cycleMomentum: false`,
    );
  }
  return kind;
}

function checkPctStart(value: unknown): number {
  if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
    throw new Error(`OneCycleLR: expected pctStart between 0 and 1, but got ${value}`);
  }
  return value;
}

function checkAnneal(value: unknown): "cos" | "linear" {
  if (value !== "cos" && value !== "linear") {
    throw new Error(
      `OneCycleLR: annealStrategy must be one of 'cos' or 'linear', instead got ${value}`,
    );
  }
  return value;
}

function totalStepsOf(options: OneCycleLROptions): number {
  const { totalSteps, epochs, stepsPerEpoch } = options;
  if (totalSteps !== undefined) {
    if (typeof totalSteps !== "number" || !Number.isSafeInteger(totalSteps) || totalSteps <= 0) {
      throw new Error(`OneCycleLR: expected positive integer totalSteps, but got ${totalSteps}`);
    }
    return totalSteps;
  }
  if (epochs === undefined || stepsPerEpoch === undefined) {
    throw new Error(
      "OneCycleLR: you must define either totalSteps OR (epochs AND stepsPerEpoch)",
    );
  }
  for (const [name, value] of [["epochs", epochs], ["stepsPerEpoch", stepsPerEpoch]] as const) {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
      throw new Error(`OneCycleLR: expected positive integer ${name}, but got ${value}`);
    }
  }
  return epochs * stepsPerEpoch;
}

function anneal(strategy: "cos" | "linear", start: number, end: number, pct: number): number {
  if (strategy === "cos") return end + (start - end) / 2 * (Math.cos(Math.PI * pct) + 1);
  return (end - start) * pct + start;
}

/**
 * The 1cycle policy of Smith & Topin, stepped after every optimizer step (batch), at most
 * `totalSteps` times. The base lr of each group becomes `maxLr / divFactor` (PyTorch's
 * `initial_lr`), whatever the optimizer's lr was. With `cycleMomentum` (default), a group's
 * `momentum` is set when it has a number `momentum`, else `betas[0]` when it has `betas`;
 * optimizers with neither, or with read-only ones, are refused (pass `cycleMomentum: false`).
 */
export class OneCycleLR extends LRScheduler {
  #maxLrs: number[];
  #totalSteps: number;
  #pctStart: number;
  #annealStrategy: "cos" | "linear";
  #cycleMomentum: boolean;
  #baseMomentums: number[];
  #maxMomentums: number[];
  #divFactor: number;
  #finalDivFactor: number;
  #threePhase: boolean;
  #phases: Phase[];
  #momentumKinds: ("momentum" | "betas")[] = [];

  /** Sets the groups' lrs to `maxLr / divFactor` (and momentum to `maxMomentum`). */
  constructor(optimizer: LrTarget, options: OneCycleLROptions) {
    super(optimizer);
    const groups = groupsOf(optimizer);
    this.#totalSteps = totalStepsOf(options);
    this.#pctStart = checkPctStart(options.pctStart ?? 0.3);
    this.#annealStrategy = checkAnneal(options.annealStrategy ?? "cos");
    this.#threePhase = options.threePhase ?? false;
    this.#divFactor = checkFinite(options.divFactor ?? 25, "OneCycleLR divFactor");
    this.#finalDivFactor = checkFinite(options.finalDivFactor ?? 1e4, "OneCycleLR finalDivFactor");
    this.#maxLrs = perGroup(options.maxLr, groups.length, "OneCycleLR maxLr").map((lr) =>
      checkFinite(lr, "OneCycleLR maxLr")
    );
    this.#cycleMomentum = options.cycleMomentum ?? true;
    this.#maxMomentums = perGroup(
      options.maxMomentum ?? 0.95,
      groups.length,
      "OneCycleLR maxMomentum",
    )
      .map((m) => checkFinite(m, "OneCycleLR maxMomentum"));
    this.#baseMomentums = perGroup(
      options.baseMomentum ?? 0.85,
      groups.length,
      "OneCycleLR baseMomentum",
    )
      .map((m) => checkFinite(m, "OneCycleLR baseMomentum"));
    this.#phases = phasesOf(this.#totalSteps, this.#pctStart, this.#threePhase);
    if (this.#cycleMomentum) {
      this.#momentumKinds = groups.map((group, i) => momentumKind(optimizer, group, i));
    }
    const initial = this.#maxLrs.map((lr) => lr / this.#divFactor);
    setInitialLrs(groups, initial);
    this.setBaseLrs(initial);
    this.initialStep();
  }

  /** `"OneCycleLR"`. */
  get name(): string {
    return "OneCycleLR";
  }

  /** Steps of the whole cycle. */
  get totalSteps(): number {
    return this.#totalSteps;
  }

  /** The highest lr of each group. */
  get maxLrs(): number[] {
    return [...this.#maxLrs];
  }

  #at(step: number, group: number): { lr: number; momentum: number } {
    const initial = this.baseLrs[group], max = this.#maxLrs[group];
    const lrs = { initial, max, min: initial / this.#finalDivFactor };
    const momentums = { base: this.#baseMomentums[group], max: this.#maxMomentums[group] };
    let start = 0;
    const phases = this.#phases;
    for (let i = 0; i < phases.length; i++) {
      const phase = phases[i];
      if (step <= phase.endStep || i === phases.length - 1) {
        const pct = (step - start) / (phase.endStep - start);
        const s = this.#annealStrategy;
        return {
          lr: anneal(s, lrs[phase.startLr], lrs[phase.endLr], pct),
          momentum: anneal(s, momentums[phase.startMomentum], momentums[phase.endMomentum], pct),
        };
      }
      start = phase.endStep;
    }
    throw new Error("OneCycleLR: no phase"); // unreachable: the last phase takes every step
  }

  /** The lr of `group` after `step` steps (PyTorch's `get_lr()` at `last_epoch = step`). */
  lrAt(step: number, group = 0): number {
    return this.#at(step, group).lr;
  }

  /** The momentum (or beta1) of `group` after `step` steps. */
  momentumAt(step: number, group = 0): number {
    return this.#at(step, group).momentum;
  }

  /** Sets the momentums of `lastEpoch` when cycling them (PyTorch sets them in `get_lr()`). */
  protected override afterUpdate(): void {
    if (!this.#cycleMomentum) return;
    this.groups.forEach((group, i) => {
      const momentum = this.momentumAt(this.lastEpoch, i);
      if (this.#momentumKinds[i] === "momentum") group.momentum = momentum;
      else group.betas = [momentum, group.betas![1]];
    });
  }

  /** Ends a step (batch); throws past `totalSteps`, as PyTorch. */
  override step(): void {
    const next = this.lastEpoch + 1;
    if (next > this.#totalSteps) {
      throw new Error(
        `OneCycleLR: tried to step ${next + 1} times. The specified number of total steps is ` +
          `${this.#totalSteps}`,
      );
    }
    super.step();
  }

  /** Every setting. */
  protected hyperparameters(): Record<string, SchedulerSetting> {
    return {
      maxLrs: [...this.#maxLrs],
      totalSteps: this.#totalSteps,
      pctStart: this.#pctStart,
      annealStrategy: this.#annealStrategy,
      cycleMomentum: this.#cycleMomentum,
      baseMomentums: [...this.#baseMomentums],
      maxMomentums: [...this.#maxMomentums],
      divFactor: this.#divFactor,
      finalDivFactor: this.#finalDivFactor,
      threePhase: this.#threePhase,
    };
  }

  /** Validates, then applies, every setting (the momentum kind must still fit the optimizer). */
  protected setHyperparameters(saved: Record<string, SchedulerSetting>): void {
    const groups = groupsOf(this.optimizer);
    const list = (key: string) =>
      perGroup(saved[key] as number[], groups.length, `OneCycleLR.loadStateDict: ${key}`).map((v) =>
        checkFinite(v, `OneCycleLR.loadStateDict: ${key}`)
      );
    const maxLrs = list("maxLrs");
    const baseMomentums = list("baseMomentums");
    const maxMomentums = list("maxMomentums");
    const totalSteps = totalStepsOf({ maxLr: 0, totalSteps: saved.totalSteps as number });
    const pctStart = checkPctStart(saved.pctStart);
    const annealStrategy = checkAnneal(saved.annealStrategy);
    const divFactor = savedNumber(saved, "divFactor", "OneCycleLR");
    const finalDivFactor = savedNumber(saved, "finalDivFactor", "OneCycleLR");
    const cycleMomentum = saved.cycleMomentum === true;
    const threePhase = saved.threePhase === true;
    const kinds = cycleMomentum
      ? groups.map((group, i) => momentumKind(this.optimizer, group, i))
      : [];
    this.#maxLrs = maxLrs;
    this.#baseMomentums = baseMomentums;
    this.#maxMomentums = maxMomentums;
    this.#totalSteps = totalSteps;
    this.#pctStart = pctStart;
    this.#annealStrategy = annealStrategy;
    this.#divFactor = divFactor;
    this.#finalDivFactor = finalDivFactor;
    this.#cycleMomentum = cycleMomentum;
    this.#threePhase = threePhase;
    this.#momentumKinds = kinds;
    this.#phases = phasesOf(totalSteps, pctStart, threePhase);
  }
}
