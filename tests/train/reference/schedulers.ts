/**
 * Float64 references for the LR schedulers: PyTorch 1.13's `lr_scheduler.py` written out
 * literally (chainable `get_lr()` forms reading the groups' current lrs, `_get_closed_form_lr()`
 * for `step(epoch)`, `initial_lr` set by `setdefault` on the groups, SequentialLR's reset and
 * `step(0)` at milestones), independently of the closed forms in `train/schedulers/`.
 *
 * @module
 */

/** A parameter group as PyTorch keeps it. */
export interface RefGroup {
  /** Current lr. */
  lr: number;
  /** Set by the first scheduler. */
  initial_lr?: number;
  /** SGD momentum. */
  momentum: number;
}

/** An optimizer: its groups. */
export interface RefOptimizer {
  /** The groups. */
  groups: RefGroup[];
}

/** A fresh optimizer with one group per lr (momentum 0.9, as the oracle's SGD). */
export function refOptimizer(lrs: readonly number[]): RefOptimizer {
  return { groups: lrs.map((lr) => ({ lr, momentum: 0.9 })) };
}

/** PyTorch's `_LRScheduler`. */
export abstract class RefScheduler {
  /** The optimizer. */
  optimizer: RefOptimizer;
  /** `base_lrs`. */
  baseLrs: number[];
  /** `last_epoch`. */
  lastEpoch = -1;
  /** `_last_lr`. */
  lastLr: number[] = [];

  /** `setdefault('initial_lr', lr)` on every group. The subclass calls `initialStep()`. */
  constructor(optimizer: RefOptimizer) {
    this.optimizer = optimizer;
    for (const g of optimizer.groups) g.initial_lr ??= g.lr;
    this.baseLrs = optimizer.groups.map((g) => g.initial_lr!);
  }

  /** The chainable form. */
  abstract getLr(): number[];

  /** The closed form (used by `step(epoch)`), if the scheduler has one. */
  closedForm(): number[] | null {
    return null;
  }

  /** `_initial_step`. */
  initialStep(): void {
    this.step();
  }

  /** `step(epoch=None)`. */
  step(epoch?: number): void {
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch += 1;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedForm() ?? this.getLr();
    }
    this.optimizer.groups.forEach((g, i) => g.lr = values[i]);
    this.lastLr = this.optimizer.groups.map((g) => g.lr);
  }
}

const lrs = (s: RefScheduler) => s.optimizer.groups.map((g) => g.lr);

/** `StepLR`. */
export class RefStepLR extends RefScheduler {
  /** Settings. */
  constructor(o: RefOptimizer, public stepSize: number, public gamma = 0.1) {
    super(o);
    this.initialStep();
  }
  /** Chainable. */
  getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return lrs(this);
    return lrs(this).map((lr) => lr * this.gamma);
  }
  /** Closed. */
  override closedForm(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }
}

/** `MultiStepLR` (a Counter of milestones). */
export class RefMultiStepLR extends RefScheduler {
  /** Settings. */
  constructor(o: RefOptimizer, public milestones: number[], public gamma = 0.1) {
    super(o);
    this.initialStep();
  }
  /** Chainable. */
  getLr(): number[] {
    const count = this.milestones.filter((m) => m === this.lastEpoch).length;
    if (count === 0) return lrs(this);
    return lrs(this).map((lr) => lr * this.gamma ** count);
  }
  /** Closed (bisect_right). */
  override closedForm(): number[] {
    const k = this.milestones.filter((m) => m <= this.lastEpoch).length;
    return this.baseLrs.map((b) => b * this.gamma ** k);
  }
}

/** `ExponentialLR`. */
export class RefExponentialLR extends RefScheduler {
  /** Settings. */
  constructor(o: RefOptimizer, public gamma: number) {
    super(o);
    this.initialStep();
  }
  /** Chainable. */
  getLr(): number[] {
    if (this.lastEpoch === 0) return lrs(this);
    return lrs(this).map((lr) => lr * this.gamma);
  }
  /** Closed. */
  override closedForm(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** this.lastEpoch);
  }
}

/** `LinearLR`. */
export class RefLinearLR extends RefScheduler {
  /** Settings. */
  constructor(
    o: RefOptimizer,
    public start = 1 / 3,
    public end = 1,
    public total = 5,
  ) {
    super(o);
    this.initialStep();
  }
  /** Chainable. */
  getLr(): number[] {
    const { start, end, total } = this;
    if (this.lastEpoch === 0) return lrs(this).map((lr) => lr * start);
    if (this.lastEpoch > total) return lrs(this);
    return lrs(this).map((lr) =>
      lr * (1 + (end - start) / (total * start + (this.lastEpoch - 1) * (end - start)))
    );
  }
  /** Closed. */
  override closedForm(): number[] {
    const { start, end, total } = this;
    return this.baseLrs.map((b) =>
      b * (start + (end - start) * Math.min(total, this.lastEpoch) / total)
    );
  }
}

/** `CosineAnnealingLR`. */
export class RefCosineAnnealingLR extends RefScheduler {
  /** Settings. */
  constructor(o: RefOptimizer, public tMax: number, public etaMin = 0) {
    super(o);
    this.initialStep();
  }
  /** Chainable. */
  getLr(): number[] {
    const { tMax, etaMin, lastEpoch: e } = this;
    if (e === 0) return lrs(this);
    if ((e - 1 - tMax) % (2 * tMax) === 0) {
      return lrs(this).map((lr, i) =>
        lr + (this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / tMax)) / 2
      );
    }
    return lrs(this).map((lr) =>
      (1 + Math.cos(Math.PI * e / tMax)) / (1 + Math.cos(Math.PI * (e - 1) / tMax)) *
        (lr - etaMin) + etaMin
    );
  }
  /** Closed. */
  override closedForm(): number[] {
    return this.baseLrs.map((b) =>
      this.etaMin + (b - this.etaMin) * (1 + Math.cos(Math.PI * this.lastEpoch / this.tMax)) / 2
    );
  }
}

/** `LambdaLR`. */
export class RefLambdaLR extends RefScheduler {
  /** Settings. */
  constructor(o: RefOptimizer, public fn: (epoch: number) => number) {
    super(o);
    this.initialStep();
  }
  /** Not chainable: base · fn(epoch). */
  getLr(): number[] {
    return this.baseLrs.map((b) => b * this.fn(this.lastEpoch));
  }
}

/** `OneCycleLR` (SGD momentum cycled when `cycleMomentum`). */
export class RefOneCycleLR extends RefScheduler {
  phases: { end: number; lr: [string, string]; mom: [string, string] }[];
  extra: { max_lr: number; min_lr: number; max_momentum: number; base_momentum: number }[];

  /** Settings, PyTorch's defaults. */
  constructor(
    o: RefOptimizer,
    maxLr: number[],
    public total: number,
    public o1: {
      pctStart?: number;
      anneal?: "cos" | "linear";
      cycleMomentum?: boolean;
      div?: number;
      finalDiv?: number;
      threePhase?: boolean;
    } = {},
  ) {
    const pct = o1.pctStart ?? 0.3, div = o1.div ?? 25, finalDiv = o1.finalDiv ?? 1e4;
    for (const [i, g] of o.groups.entries()) g.initial_lr = maxLr[i] / div;
    const extra = o.groups.map((g, i) => ({
      max_lr: maxLr[i],
      min_lr: g.initial_lr! / finalDiv,
      max_momentum: 0.95,
      base_momentum: 0.85,
    }));
    if (o1.cycleMomentum ?? true) { for (const g of o.groups) g.momentum = 0.95; }
    super(o);
    this.extra = extra;
    this.phases = o1.threePhase
      ? [
        { end: pct * total - 1, lr: ["initial_lr", "max_lr"], mom: ["max", "base"] },
        { end: 2 * pct * total - 2, lr: ["max_lr", "initial_lr"], mom: ["base", "max"] },
        { end: total - 1, lr: ["initial_lr", "min_lr"], mom: ["max", "max"] },
      ]
      : [
        { end: pct * total - 1, lr: ["initial_lr", "max_lr"], mom: ["max", "base"] },
        { end: total - 1, lr: ["max_lr", "min_lr"], mom: ["base", "max"] },
      ];
    this.initialStep();
  }

  #anneal(start: number, end: number, pct: number): number {
    if ((this.o1.anneal ?? "cos") === "cos") {
      return end + (start - end) / 2.0 * (Math.cos(Math.PI * pct) + 1);
    }
    return (end - start) * pct + start;
  }

  /** get_lr, which also sets the momentum. */
  getLr(): number[] {
    const step = this.lastEpoch;
    if (step > this.total) throw new Error(`Tried to step ${step + 1} times`);
    return this.optimizer.groups.map((g, gi) => {
      const values: Record<string, number> = {
        initial_lr: g.initial_lr!,
        ...this.extra[gi],
        max: this.extra[gi].max_momentum,
        base: this.extra[gi].base_momentum,
      };
      let start = 0;
      for (let i = 0; i < this.phases.length; i++) {
        const p = this.phases[i];
        if (step <= p.end || i === this.phases.length - 1) {
          const pct = (step - start) / (p.end - start);
          if (this.o1.cycleMomentum ?? true) {
            g.momentum = this.#anneal(values[p.mom[0]], values[p.mom[1]], pct);
          }
          return this.#anneal(values[p.lr[0]], values[p.lr[1]], pct);
        }
        start = p.end;
      }
      throw new Error("unreachable");
    });
  }
}

/** `SequentialLR`. */
export class RefSequentialLR {
  lastEpoch: number;
  lastLr: number[];

  /** The reset, the undo and the first scheduler's initial step. */
  constructor(
    public optimizer: RefOptimizer,
    public schedulers: RefScheduler[],
    public milestones: number[],
  ) {
    this.lastEpoch = 0;
    for (const g of optimizer.groups) g.lr = g.initial_lr!;
    for (const s of schedulers) s.lastEpoch -= 1;
    schedulers[0].initialStep();
    this.lastLr = schedulers[0].lastLr;
  }

  /** bisect_right, and `step(0)` at a milestone. */
  step(): void {
    this.lastEpoch += 1;
    const idx = this.milestones.filter((m) => m <= this.lastEpoch).length;
    const s = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.step(0);
    else s.step();
    this.lastLr = s.lastLr;
  }
}

/** `ReduceLROnPlateau`'s lrs after each metric (PyTorch's code, defaults included). */
export function refPlateau(
  startLrs: readonly number[],
  metrics: readonly number[],
  o: {
    mode?: "min" | "max";
    factor?: number;
    patience?: number;
    threshold?: number;
    thresholdMode?: "rel" | "abs";
    cooldown?: number;
    minLr?: number;
    eps?: number;
  } = {},
): number[][] {
  const mode = o.mode ?? "min", factor = o.factor ?? 0.1, patience = o.patience ?? 10;
  const threshold = o.threshold ?? 1e-4, thresholdMode = o.thresholdMode ?? "rel";
  const cooldown = o.cooldown ?? 0, minLr = o.minLr ?? 0, eps = o.eps ?? 1e-8;
  const groups = [...startLrs];
  let best = mode === "min" ? Infinity : -Infinity, bad = 0, cooling = 0;
  const better = (a: number) =>
    mode === "min"
      ? (thresholdMode === "rel" ? a < best * (1 - threshold) : a < best - threshold)
      : (thresholdMode === "rel" ? a > best * (threshold + 1) : a > best + threshold);
  const out = [[...groups]];
  for (const current of metrics) {
    if (better(current)) {
      best = current;
      bad = 0;
    } else bad += 1;
    if (cooling > 0) {
      cooling -= 1;
      bad = 0;
    }
    if (bad > patience) {
      for (let i = 0; i < groups.length; i++) {
        const next = Math.max(groups[i] * factor, minLr);
        if (groups[i] - next > eps) groups[i] = next;
      }
      cooling = cooldown;
      bad = 0;
    }
    out.push([...groups]);
  }
  return out;
}

/** `lastLr` after construction and after each of `steps` steps. */
export function refCurve(scheduler: { lastLr: number[]; step(): void }, steps: number): number[][] {
  const out = [[...scheduler.lastLr]];
  for (let i = 0; i < steps; i++) {
    scheduler.step();
    out.push([...scheduler.lastLr]);
  }
  return out;
}
