/**
 * The scheduler cases shared by `lr_schedulers_test.ts` (against the float64 references) and
 * `scheduler_torch_test.ts` (against PyTorch): each builds our scheduler on an `LrTarget`, the
 * reference on a `RefOptimizer`, and says how to ask PyTorch for the same curve.
 *
 * @module
 */

import {
  CosineAnnealingLR,
  ExponentialLR,
  LambdaLR,
  LinearLR,
  type LrGroup,
  type LRScheduler,
  type LrTarget,
  MultiStepLR,
  OneCycleLR,
  ReduceLROnPlateau,
  SequentialLR,
  StepLR,
} from "../../train/lr_scheduler.ts";
import {
  RefCosineAnnealingLR,
  refCurve,
  RefExponentialLR,
  RefLambdaLR,
  RefLinearLR,
  RefMultiStepLR,
  RefOneCycleLR,
  refOptimizer,
  refPlateau,
  type RefScheduler,
  RefSequentialLR,
  RefStepLR,
} from "./reference/schedulers.ts";

/** Our scheduler, either kind. */
export type AnyScheduler = LRScheduler | ReduceLROnPlateau;

/** One curve to compare. */
export interface SchedulerCase {
  /** What the case is. */
  label: string;
  /** Steps after construction. */
  steps: number;
  /** Metrics fed to `ReduceLROnPlateau`, one per step. */
  metrics?: number[];
  /** Our scheduler on `target`. */
  make(target: LrTarget): AnyScheduler;
  /** The reference's lrs (after construction, then after each step) from these start lrs. */
  reference(lrs: number[]): number[][];
  /** The reference's momentum per group at the same points (OneCycleLR). */
  referenceMomentum?(lrs: number[]): number[][];
  /** The case for `tests/pytorch/schedulers.py` (without lrs, steps, metrics). */
  torch: Record<string, unknown>;
}

function refOf(build: (o: ReturnType<typeof refOptimizer>) => RefScheduler | RefSequentialLR) {
  return (steps: number) => (lrs: number[]) => refCurve(build(refOptimizer(lrs)), steps);
}

const inverse = (e: number) => 1 / (1 + 0.5 * e);
const INVERSE_PY = "lambda e: 1.0 / (1 + 0.5 * e)";
const wavy = (e: number) => 0.9 ** e * (e % 4 === 3 ? 0.5 : 1);
const WAVY_PY = "lambda e: 0.9 ** e * (0.5 if e % 4 == 3 else 1)";

/** A decreasing, noisy loss with plateaus (40 values). */
export const PLATEAU_METRICS: number[] = Array.from(
  { length: 40 },
  (_, i) =>
    i < 8
      ? 1 - i * 0.05
      : i < 20
      ? 0.6 + 0.001 * Math.sin(i)
      : i < 26
      ? 0.5 - 0.02 * (i - 20)
      : 0.39,
);

/** An accuracy that rises then stalls (30 values). */
export const PLATEAU_ACCURACY: number[] = Array.from(
  { length: 30 },
  (_, i) => Math.min(0.9, 0.5 + 0.05 * i) + (i % 2 ? 0.001 : 0),
);

function oneCycleCase(
  label: string,
  steps: number,
  options: Record<string, unknown>,
  ref: ConstructorParameters<typeof RefOneCycleLR>[3],
  total: number,
): SchedulerCase {
  const maxLrs = (lrs: number[]) => lrs.map((lr) => lr * 5);
  return {
    label,
    steps,
    make: (t) =>
      new OneCycleLR(
        t,
        {
          ...options,
          maxLr: (t.paramGroups ?? [t]).map((g) => g.lr * 5),
        } as ConstructorParameters<typeof OneCycleLR>[1],
      ),
    reference: (lrs) => {
      const o = refOptimizer(lrs);
      return refCurve(new RefOneCycleLR(o, maxLrs(lrs), total, ref), steps);
    },
    referenceMomentum: (lrs) => {
      const o = refOptimizer(lrs);
      const s = new RefOneCycleLR(o, maxLrs(lrs), total, ref);
      const out = [o.groups.map((g) => g.momentum)];
      for (let i = 0; i < steps; i++) {
        s.step();
        out.push(o.groups.map((g) => g.momentum));
      }
      return out;
    },
    torch: { kind: "OneCycleLR", options, maxLrFactor: 5 },
  };
}

/** Every case: each scheduler, defaults and awkward settings, 30-50 steps. */
export const CASES: SchedulerCase[] = [
  {
    label: "StepLR(7, 0.5)",
    steps: 40,
    make: (t) => new StepLR(t, { stepSize: 7, gamma: 0.5 }),
    reference: refOf((o) => new RefStepLR(o, 7, 0.5))(40),
    torch: { kind: "StepLR", options: { stepSize: 7, gamma: 0.5 } },
  },
  {
    label: "MultiStepLR([3, 10, 25], 0.3)",
    steps: 40,
    make: (t) => new MultiStepLR(t, { milestones: [3, 10, 25], gamma: 0.3 }),
    reference: refOf((o) => new RefMultiStepLR(o, [3, 10, 25], 0.3))(40),
    torch: { kind: "MultiStepLR", options: { milestones: [3, 10, 25], gamma: 0.3 } },
  },
  {
    label: "MultiStepLR([0, 1]) default gamma",
    steps: 5,
    make: (t) => new MultiStepLR(t, { milestones: [0, 1] }),
    reference: refOf((o) => new RefMultiStepLR(o, [0, 1]))(5),
    torch: { kind: "MultiStepLR", options: { milestones: [0, 1] } },
  },
  {
    label: "ExponentialLR(0.93)",
    steps: 50,
    make: (t) => new ExponentialLR(t, { gamma: 0.93 }),
    reference: refOf((o) => new RefExponentialLR(o, 0.93))(50),
    torch: { kind: "ExponentialLR", options: { gamma: 0.93 } },
  },
  {
    label: "LinearLR defaults",
    steps: 30,
    make: (t) => new LinearLR(t),
    reference: refOf((o) => new RefLinearLR(o))(30),
    torch: { kind: "LinearLR", options: {} },
  },
  {
    label: "LinearLR(0.1 → 0.9 over 13)",
    steps: 30,
    make: (t) => new LinearLR(t, { startFactor: 0.1, endFactor: 0.9, totalIters: 13 }),
    reference: refOf((o) => new RefLinearLR(o, 0.1, 0.9, 13))(30),
    torch: { kind: "LinearLR", options: { startFactor: 0.1, endFactor: 0.9, totalIters: 13 } },
  },
  {
    label: "CosineAnnealingLR(9, 0.001) past tMax",
    steps: 40,
    make: (t) => new CosineAnnealingLR(t, { tMax: 9, etaMin: 0.001 }),
    reference: refOf((o) => new RefCosineAnnealingLR(o, 9, 0.001))(40),
    torch: { kind: "CosineAnnealingLR", options: { tMax: 9, etaMin: 0.001 } },
  },
  {
    label: "LambdaLR(1 / (1 + e/2))",
    steps: 30,
    make: (t) => new LambdaLR(t, { lrLambda: inverse }),
    reference: refOf((o) => new RefLambdaLR(o, inverse))(30),
    torch: { kind: "LambdaLR", lambda: INVERSE_PY },
  },
  {
    label: "LambdaLR(wavy)",
    steps: 30,
    make: (t) => new LambdaLR(t, { lrLambda: wavy }),
    reference: refOf((o) => new RefLambdaLR(o, wavy))(30),
    torch: { kind: "LambdaLR", lambda: WAVY_PY },
  },
  oneCycleCase("OneCycleLR(totalSteps 40) defaults", 40, { totalSteps: 40 }, {}, 40),
  oneCycleCase(
    "OneCycleLR(5 epochs × 7 steps, linear, three phases, pctStart 0.25)",
    35,
    { epochs: 5, stepsPerEpoch: 7, annealStrategy: "linear", threePhase: true, pctStart: 0.25 },
    { anneal: "linear", threePhase: true, pctStart: 0.25 },
    35,
  ),
  oneCycleCase(
    "OneCycleLR(33 steps, divFactor 10, finalDivFactor 100, no momentum)",
    33,
    { totalSteps: 33, divFactor: 10, finalDivFactor: 100, cycleMomentum: false },
    { div: 10, finalDiv: 100, cycleMomentum: false },
    33,
  ),
  {
    label: "ReduceLROnPlateau(patience 3, cooldown 2, factor 0.5, threshold 0.01)",
    steps: PLATEAU_METRICS.length,
    metrics: PLATEAU_METRICS,
    make: (t) =>
      new ReduceLROnPlateau(t, { patience: 3, cooldown: 2, factor: 0.5, threshold: 0.01 }),
    reference: (lrs) =>
      refPlateau(lrs, PLATEAU_METRICS, { patience: 3, cooldown: 2, factor: 0.5, threshold: 0.01 }),
    torch: {
      kind: "ReduceLROnPlateau",
      options: { patience: 3, cooldown: 2, factor: 0.5, threshold: 0.01 },
    },
  },
  {
    label: "ReduceLROnPlateau(max, abs, patience 1, minLr 1e-3)",
    steps: PLATEAU_ACCURACY.length,
    metrics: PLATEAU_ACCURACY,
    make: (t) =>
      new ReduceLROnPlateau(t, {
        mode: "max",
        thresholdMode: "abs",
        patience: 1,
        minLr: 1e-3,
        threshold: 0.002,
      }),
    reference: (lrs) =>
      refPlateau(lrs, PLATEAU_ACCURACY, {
        mode: "max",
        thresholdMode: "abs",
        patience: 1,
        minLr: 1e-3,
        threshold: 0.002,
      }),
    torch: {
      kind: "ReduceLROnPlateau",
      options: { mode: "max", thresholdMode: "abs", patience: 1, minLr: 1e-3, threshold: 0.002 },
    },
  },
  {
    label: "SequentialLR(LinearLR(0.1, 1, 5) warm-up, CosineAnnealingLR(30)) at 5",
    steps: 40,
    make: (t) =>
      new SequentialLR(t, {
        schedulers: [
          new LinearLR(t, { startFactor: 0.1, totalIters: 5 }),
          new CosineAnnealingLR(t, { tMax: 30 }),
        ],
        milestones: [5],
      }),
    reference: refOf((o) =>
      new RefSequentialLR(o, [new RefLinearLR(o, 0.1, 1, 5), new RefCosineAnnealingLR(o, 30)], [
        5,
      ])
    )(40),
    torch: {
      kind: "SequentialLR",
      schedulers: [
        { kind: "LinearLR", options: { startFactor: 0.1, totalIters: 5 } },
        { kind: "CosineAnnealingLR", options: { tMax: 30 } },
      ],
      milestones: [5],
    },
  },
  {
    label: "SequentialLR(ExponentialLR(0.9), StepLR(3, 0.5), MultiStepLR([2, 6])) at 4, 12",
    steps: 30,
    make: (t) =>
      new SequentialLR(t, {
        schedulers: [
          new ExponentialLR(t, { gamma: 0.9 }),
          new StepLR(t, { stepSize: 3, gamma: 0.5 }),
          new MultiStepLR(t, { milestones: [2, 6] }),
        ],
        milestones: [4, 12],
      }),
    reference: refOf((o) =>
      new RefSequentialLR(o, [
        new RefExponentialLR(o, 0.9),
        new RefStepLR(o, 3, 0.5),
        new RefMultiStepLR(o, [2, 6]),
      ], [4, 12])
    )(30),
    torch: {
      kind: "SequentialLR",
      schedulers: [
        { kind: "ExponentialLR", options: { gamma: 0.9 } },
        { kind: "StepLR", options: { stepSize: 3, gamma: 0.5 } },
        { kind: "MultiStepLR", options: { milestones: [2, 6] } },
      ],
      milestones: [4, 12],
    },
  },
  {
    label: "SequentialLR(LinearLR warm-up, OneCycleLR(20)) at 3",
    steps: 23,
    make: (t) =>
      new SequentialLR(t, {
        schedulers: [
          new LinearLR(t, { startFactor: 0.5, totalIters: 3 }),
          new OneCycleLR(t, {
            maxLr: (t.paramGroups ?? [t]).map((g) => g.lr * 2),
            totalSteps: 20,
            cycleMomentum: false,
          }),
        ],
        milestones: [3],
      }),
    reference: refOf((o) =>
      new RefSequentialLR(o, [
        new RefLinearLR(o, 0.5, 1, 3),
        new RefOneCycleLR(o, o.groups.map((g) => g.lr * 2), 20, { cycleMomentum: false }),
      ], [3])
    )(23),
    torch: {
      kind: "SequentialLR",
      schedulers: [
        { kind: "LinearLR", options: { startFactor: 0.5, totalIters: 3 } },
        { kind: "OneCycleLR", options: { totalSteps: 20, cycleMomentum: false }, maxLrFactor: 2 },
      ],
      milestones: [3],
    },
  },
];

/** The start lrs of one- and two-group runs. */
export const GROUP_LRS: number[][] = [[0.1], [0.05, 0.3]];

/** An `LrTarget`: a plain one-group object, or one with `paramGroups` (momentum 0.9 each). */
export function targetOf(lrs: readonly number[], grouped = lrs.length > 1): LrTarget {
  if (!grouped) return { lr: lrs[0], momentum: 0.9 } as LrTarget;
  return { lr: lrs[0], paramGroups: lrs.map((lr) => ({ lr, momentum: 0.9 })) };
}

/** `getLastLr()` after construction and after each step. */
export function curveOf(
  target: LrTarget,
  scheduler: AnyScheduler,
  steps: number,
  metrics?: readonly number[],
): number[][] {
  const out = [scheduler.getLastLr()];
  for (let i = 0; i < steps; i++) {
    if (scheduler instanceof ReduceLROnPlateau) scheduler.step(metrics![i]);
    else scheduler.step();
    out.push(scheduler.getLastLr());
  }
  void target;
  return out;
}

/** The momentum of each group after construction and after each step. */
export function momentumCurveOf(
  target: LrTarget,
  scheduler: AnyScheduler,
  steps: number,
): number[][] {
  const groups = (target.paramGroups ?? [target]) as readonly LrGroup[];
  const read = () => groups.map((g) => g.momentum ?? g.betas![0]);
  const out = [read()];
  for (let i = 0; i < steps; i++) {
    (scheduler as LRScheduler).step();
    out.push(read());
  }
  return out;
}
