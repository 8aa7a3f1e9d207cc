/**
 * The schedulers against their float64 references (PyTorch 1.13's chainable forms written out,
 * `tests/train/reference/schedulers.ts`) with one group (a plain `{ lr }`, and one
 * `paramGroups` entry) and two groups of different lrs; OneCycleLR's momentum and betas; state
 * dicts round-tripped mid-curve (JSON) and old states; real SGD and Adam; bad input.
 */

import assert from "node:assert/strict";
import { tensor } from "../../nn/tensor.ts";
import { Adam } from "../../train/optim/adam.ts";
import { SGD } from "../../train/optim/sgd.ts";
import {
  CosineAnnealingLR,
  ExponentialLR,
  LambdaLR,
  LinearLR,
  type LRSchedulerStateDict,
  type LrTarget,
  MultiStepLR,
  OneCycleLR,
  ReduceLROnPlateau,
  SequentialLR,
  StepLR,
} from "../../train/lr_scheduler.ts";
import { assertClose, gpuReady } from "../testing.ts";
import { CASES, curveOf, GROUP_LRS, momentumCurveOf, targetOf } from "./scheduler_cases.ts";

await gpuReady();

const TIGHT = { atol: 1e-15, rtol: 1e-9 };

for (const c of CASES) {
  Deno.test(`${c.label}: equals the reference with 1 and 2 parameter groups`, () => {
    for (const [lrs, grouped] of [[[0.1], false], [[0.1], true], [[0.05, 0.3], true]] as const) {
      const target = targetOf([...lrs], grouped);
      const ours = curveOf(target, c.make(target), c.steps, c.metrics);
      const expected = c.reference([...lrs]);
      assert.equal(ours.length, c.steps + 1);
      assertClose(ours.flat(), expected.flat(), TIGHT, `${c.label}, lrs ${lrs}`);
      // The groups hold the lrs the scheduler reports.
      const groups = target.paramGroups ?? [target];
      assert.deepEqual(groups.map((g) => g.lr), ours.at(-1));
      if (c.referenceMomentum) {
        const fresh = targetOf([...lrs], grouped);
        const momentum = momentumCurveOf(fresh, c.make(fresh), c.steps);
        assertClose(momentum.flat(), c.referenceMomentum([...lrs]).flat(), TIGHT, "momentum");
      }
    }
  });

  Deno.test(`${c.label}: restored from its state dict mid-curve, continues the same curve`, () => {
    for (const lrs of GROUP_LRS) {
      const straight = targetOf(lrs);
      const full = curveOf(straight, c.make(straight), c.steps, c.metrics);
      const half = Math.floor(c.steps / 2);
      const first = targetOf(lrs);
      const before = c.make(first);
      const head = curveOf(first, before, half, c.metrics);
      const saved = JSON.parse(JSON.stringify(before.stateDict())) as LRSchedulerStateDict;
      const resumed = targetOf(lrs.map(() => 999)); // a fresh optimizer with other lrs
      const after = c.make(resumed);
      after.loadStateDict(saved);
      assert.equal(after.lastEpoch, half);
      assert.deepEqual(after.getLastLr(), head.at(-1));
      const tail = curveOf(resumed, after, c.steps - half, c.metrics?.slice(half));
      assert.deepEqual([...head, ...tail.slice(1)], full, c.label);
    }
  });
}

Deno.test("a state saved before parameter groups (no baseLrs) still loads and continues", () => {
  const old = {
    scheduler: "StepLR",
    lastEpoch: 13,
    baseLr: 0.05,
    lastLr: 0.05 * 0.3 ** 3,
    hyperparameters: { stepSize: 4, gamma: 0.3 },
  };
  const target = { lr: 1 };
  const scheduler = new StepLR(target, { stepSize: 4, gamma: 0.3 });
  scheduler.loadStateDict(old);
  assert.equal(target.lr, 0.05 * 0.3 ** 3);
  scheduler.step();
  scheduler.step();
  scheduler.step();
  assertClose([target.lr], [0.05 * 0.3 ** 4], TIGHT);
  assert.deepEqual(scheduler.baseLrs, [0.05]);
  const twoGroups = { lr: 1, paramGroups: [{ lr: 1 }, { lr: 2 }] };
  assert.throws(
    () => new StepLR(twoGroups, { stepSize: 4 }).loadStateDict(old),
    /StepLR.loadStateDict: the state has 1 parameter group\(s\), the optimizer 2/,
  );
});

Deno.test("OneCycleLR cycles betas[0] on Adam-like groups and keeps betas[1]", () => {
  const target: LrTarget = {
    lr: 0.1,
    paramGroups: [{ lr: 0.1, betas: [0.9, 0.999] }, { lr: 0.2, betas: [0.8, 0.99] }],
  };
  const scheduler = new OneCycleLR(target, { maxLr: [1, 2], totalSteps: 10 });
  const groups = target.paramGroups!;
  assert.deepEqual(groups.map((g) => g.betas), [[0.95, 0.999], [0.95, 0.99]]);
  assertClose(scheduler.getLastLr(), [0.04, 0.08], TIGHT);
  scheduler.step();
  scheduler.step(); // the peak: step pctStart · 10 - 1 = 2
  assertClose(groups.map((g) => g.betas![0]), [0.85, 0.85], TIGHT);
  assert.deepEqual(groups.map((g) => g.betas![1]), [0.999, 0.99]);
  assertClose(scheduler.getLastLr(), [1, 2], TIGHT);
  scheduler.step(); // then a cosine down to maxLr / 25 / 1e4 over steps 2..9
  const low = [0.04 / 1e4, 0.08 / 1e4];
  const cos = (Math.cos(Math.PI / 7) + 1) / 2;
  assertClose(
    scheduler.getLastLr(),
    [low[0] + (1 - low[0]) * cos, low[1] + (2 - low[1]) * cos],
    TIGHT,
  );
  for (let i = 3; i < 9; i++) scheduler.step();
  assertClose(scheduler.getLastLr(), [0.04 / 1e4, 0.08 / 1e4], TIGHT); // step 9: the end
  scheduler.step(); // step 10 = totalSteps is allowed (the cosine rises again), as in PyTorch
  assert.throws(
    () => scheduler.step(),
    /OneCycleLR: tried to step 12 times. The specified number of total steps is 10/,
  );
  assert.equal(scheduler.lastEpoch, 10);
});

Deno.test("schedulers on real SGD and Adam: lr, and OneCycleLR's momentum and betas[0]", () => {
  const p = tensor([1, 2, 3], [3], { requiresGrad: true });
  try {
    const sgd = new SGD([p], { lr: 0.1, momentum: 0.9 });
    const linear = new LinearLR(sgd, { startFactor: 0.5, totalIters: 2 });
    assert.equal(sgd.lr, 0.05);
    linear.step();
    assertClose([sgd.lr], [0.075], TIGHT);
    assert.deepEqual(linear.getLastLr(), [sgd.lr]);
    const sgd2 = new SGD([p], { lr: 0.1, momentum: 0.9 });
    // Momentum cycles from maxMomentum (0.95) down to baseMomentum (0.85) while lr rises.
    const oneCycle = new OneCycleLR(sgd2, { maxLr: 1, totalSteps: 10 });
    assertClose([sgd2.lr, sgd2.paramGroups[0].momentum], [0.04, 0.95], TIGHT);
    oneCycle.step();
    assertClose([sgd2.lr, sgd2.paramGroups[0].momentum], [0.52, 0.9], TIGHT);
    const adamCycled = new Adam([p], { lr: 0.01, betas: [0.9, 0.99] });
    const adamCycle = new OneCycleLR(adamCycled, { maxLr: 1, totalSteps: 10 });
    adamCycle.step();
    assertClose([...adamCycled.paramGroups[0].betas], [0.9, 0.99], TIGHT);
    const adam = new Adam([p], { lr: 0.01 });
    const plateau = new ReduceLROnPlateau(adam, { patience: 0 });
    plateau.step(1);
    plateau.step(1);
    assertClose([adam.lr], [0.001], TIGHT);
    const exponential = new ExponentialLR(adam, { gamma: 0.5 });
    exponential.step();
    // Chainable, as PyTorch: from the lr ReduceLROnPlateau left; the base is the initial lr.
    assertClose([adam.lr], [0.0005], TIGHT);
    assert.deepEqual(exponential.baseLrs, [0.01]);
  } finally {
    p.dispose();
  }
});

Deno.test("LambdaLR's state dict holds no function; a restored one keeps its own", () => {
  const target = { lr: 1 };
  const scheduler = new LambdaLR(target, { lrLambda: (e) => 0.5 ** e });
  scheduler.step();
  scheduler.step();
  const saved = scheduler.stateDict();
  assert.deepEqual(saved.hyperparameters, {});
  const again = { lr: 3 };
  const restored = new LambdaLR(again, { lrLambda: (e) => 0.5 ** e });
  restored.loadStateDict(JSON.parse(JSON.stringify(saved)));
  assert.equal(again.lr, 0.25);
  const perGroup = { lr: 1, paramGroups: [{ lr: 1 }, { lr: 2 }] };
  const two = new LambdaLR(perGroup, { lrLambda: [(e) => e + 1, (e) => 1 / (e + 1)] });
  two.step();
  assert.deepEqual(two.getLastLr(), [2, 1]);
  assert.throws(
    () => new LambdaLR(perGroup, { lrLambda: [(e) => e] }),
    /LambdaLR: expected 2 lrLambdas, but got 1/,
  );
  assert.throws(
    () => new LambdaLR({ lr: 1 }, { lrLambda: () => NaN }),
    /LambdaLR: lrLambda\(0\) must return a finite number, got NaN/,
  );
});

Deno.test("ReduceLROnPlateau's state dict is JSON-safe (best ±Infinity as strings)", () => {
  const target = { lr: 1 };
  const fresh = new ReduceLROnPlateau(target, { mode: "max" });
  const saved = JSON.parse(JSON.stringify(fresh.stateDict()));
  assert.equal(saved.state.best, "-Infinity");
  const other = new ReduceLROnPlateau({ lr: 1 });
  other.loadStateDict(saved);
  assert.equal(other.best, -Infinity);
  other.step(0.5);
  assert.equal(other.best, 0.5);
  assert.throws(() => other.loadStateDict(new StepLR({ lr: 1 }, { stepSize: 1 }).stateDict()), {
    message:
      "ReduceLROnPlateau.loadStateDict: the state dict is from StepLR, not ReduceLROnPlateau",
  });
});

Deno.test("bad input: messages name the scheduler, what was given and what is right", () => {
  const t = { lr: 0.1 };
  const two = { lr: 0.1, paramGroups: [{ lr: 0.1 }, { lr: 0.2 }] };
  const cases: [() => unknown, RegExp][] = [
    [
      () => new MultiStepLR(t, { milestones: [5, 3] }),
      /MultiStepLR milestones must be increasing, got \[5, 3\]/,
    ],
    [() => new MultiStepLR(t, { milestones: [2, 2] }), /must be increasing, got \[2, 2\]/],
    [() => new MultiStepLR(t, { milestones: [1.5] }), /integers >= 0, got 1.5 at index 0/],
    [
      () => new ExponentialLR(t, {} as { gamma: number }),
      /ExponentialLR gamma must be a finite number, got undefined/,
    ],
    [
      () => new LinearLR(t, { startFactor: 1.5 }),
      /LinearLR: Starting multiplicative factor expected to be between 0 and 1, got 1.5/,
    ],
    [
      () => new LinearLR(t, { endFactor: -1 }),
      /Ending multiplicative factor expected to be between 0 and 1/,
    ],
    [
      () => new LinearLR(t, { totalIters: 0 }),
      /LinearLR totalIters must be an integer >= 1, got 0/,
    ],
    [
      () => new OneCycleLR(t, { maxLr: 1 }),
      /OneCycleLR: you must define either totalSteps OR \(epochs AND stepsPerEpoch\)/,
    ],
    [() => new OneCycleLR(t, { maxLr: 1, epochs: 3 }), /either totalSteps OR/],
    [
      () => new OneCycleLR(t, { maxLr: 1, totalSteps: 0 }),
      /expected positive integer totalSteps, but got 0/,
    ],
    [
      () => new OneCycleLR(t, { maxLr: 1, epochs: 2, stepsPerEpoch: 2.5 }),
      /expected positive integer stepsPerEpoch, but got 2.5/,
    ],
    [
      () => new OneCycleLR(t, { maxLr: 1, totalSteps: 9, pctStart: 1.2 }),
      /expected pctStart between 0 and 1, but got 1.2/,
    ],
    [
      () => new OneCycleLR(t, { maxLr: 1, totalSteps: 9, annealStrategy: "exp" as "cos" }),
      /annealStrategy must be one of 'cos' or 'linear', instead got exp/,
    ],
    [
      () => new OneCycleLR(two, { maxLr: [1, 2, 3], totalSteps: 9, cycleMomentum: false }),
      /OneCycleLR maxLr: expected 2 values \(one per parameter group\), got 3/,
    ],
    [
      () => new OneCycleLR(t, { maxLr: 1, totalSteps: 9 }),
      /OneCycleLR: optimizer must support momentum or beta1 with the cycleMomentum option enabled, but Object has neither/,
    ],
    [
      () => new OneCycleLR(two, { maxLr: 1, totalSteps: 9 }),
      /Object's parameter group 0 has neither/,
    ],
    [
      () => new ReduceLROnPlateau(t, { factor: 1 }),
      /ReduceLROnPlateau: factor should be < 1.0, got 1/,
    ],
    [
      () => new ReduceLROnPlateau(t, { mode: "up" as "min" }),
      /mode up is unknown! \(expected "min" or "max"\)/,
    ],
    [
      () => new ReduceLROnPlateau(t, { thresholdMode: "x" as "rel" }),
      /threshold mode x is unknown!/,
    ],
    [() => new ReduceLROnPlateau(t, { patience: -1 }), /patience must be an integer >= 0, got -1/],
    [
      () => new ReduceLROnPlateau(two, { minLr: [0] }),
      /ReduceLROnPlateau minLr: expected 2 values/,
    ],
    [
      () => new ReduceLROnPlateau(t).step(undefined as unknown as number),
      /ReduceLROnPlateau.step: needs the epoch's metric/,
    ],
    [
      () => new SequentialLR(t, { schedulers: [new StepLR(t, { stepSize: 2 })], milestones: [3] }),
      /expects number of schedulers provided to be one more than the number of milestone points, but got number of schedulers 1 and the number of milestones to be equal to 1/,
    ],
    [
      () =>
        new SequentialLR(t, {
          schedulers: [new StepLR({ lr: 1 }, { stepSize: 2 }), new StepLR(t, { stepSize: 2 })],
          milestones: [3],
        }),
      /belong to the same optimizer, but got schedulers at index 0 to be different than the optimizer passed in/,
    ],
    [
      () =>
        new SequentialLR(t, {
          schedulers: [
            new StepLR(t, { stepSize: 2 }),
            new StepLR(t, { stepSize: 2 }),
            new StepLR(t, { stepSize: 2 }),
          ],
          milestones: [3, 3],
        }),
      /SequentialLR milestones must be increasing, got \[3, 3\]/,
    ],
    [
      () =>
        new SequentialLR(t, {
          schedulers: [
            new StepLR(t, { stepSize: 2 }),
            new ReduceLROnPlateau(t) as unknown as StepLR,
          ],
          milestones: [3],
        }),
      /schedulers\[1\] \(ReduceLROnPlateau\) is not an epoch schedule/,
    ],
    [
      () => new StepLR({ lr: 0.1, paramGroups: [] }, { stepSize: 1 }),
      /the optimizer has no parameter groups/,
    ],
    [
      () => new CosineAnnealingLR({ lr: NaN }, { tMax: 2 }),
      /the lr of parameter group 0 must be a finite number, got NaN/,
    ],
  ];
  for (const [make, message] of cases) assert.throws(make, message);
});

Deno.test("SequentialLR resets to the initial lrs and checks saved scheduler states", () => {
  const target = { lr: 1 };
  const warm = new LinearLR(target, { startFactor: 0.25, totalIters: 2 });
  const decay = new ExponentialLR(target, { gamma: 0.5 });
  assert.equal(target.lr, 0.25); // ExponentialLR's epoch 0 keeps LinearLR's lr, as in PyTorch
  assert.deepEqual(decay.baseLrs, [1]); // the shared initial lr, not 0.25
  const sequential = new SequentialLR(target, { schedulers: [warm, decay], milestones: [2] });
  assert.equal(target.lr, 0.25);
  const seen = [target.lr];
  for (let i = 0; i < 4; i++) {
    sequential.step();
    seen.push(target.lr);
  }
  assert.deepEqual(seen, [0.25, 0.625, 1, 0.5, 0.25]);
  const saved = sequential.stateDict();
  assert.equal(saved.schedulers?.length, 2);
  assert.throws(
    () => sequential.loadStateDict({ ...saved, schedulers: [saved.schedulers![0]] }),
    /SequentialLR.loadStateDict: the state holds 1 scheduler states, for 2 schedulers/,
  );
});

Deno.test("LinearLR from startFactor 0 follows the closed form (PyTorch divides by zero)", () => {
  const target = { lr: 1, paramGroups: [{ lr: 1 }, { lr: 0.5 }] };
  const scheduler = new LinearLR(target, { startFactor: 0, totalIters: 4 });
  const seen = [scheduler.getLastLr()];
  for (let i = 0; i < 5; i++) {
    scheduler.step();
    seen.push(scheduler.getLastLr());
  }
  assertClose(seen.flat(), [0, 0, 0.25, 0.125, 0.5, 0.25, 0.75, 0.375, 1, 0.5, 1, 0.5], TIGHT);
});
