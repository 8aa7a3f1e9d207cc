import assert from "node:assert/strict";
import { tensor } from "../../nn/tensor.ts";
import { SGD } from "../../mod.ts";
import { CosineAnnealingLR, type LrTarget, StepLR } from "../../train/lr_scheduler.ts";
import { assertClose, gpuReady } from "../testing.ts";

await gpuReady();

/** The lr in use during each of `epochs` epochs, stepping the scheduler after each. */
function lrPerEpoch(optimizer: LrTarget, scheduler: { step(): void }, epochs: number): number[] {
  const seen: number[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    seen.push(optimizer.lr); // the epoch's optimizer steps use this lr
    scheduler.step();
  }
  return seen;
}

Deno.test("StepLR(10, 0.1) from 0.01 over 30 epochs: 0.01, then 0.001, then 0.0001", () => {
  const optimizer = { lr: 0.01 };
  const scheduler = new StepLR(optimizer, { stepSize: 10, gamma: 0.1 });
  assert.deepEqual(scheduler.getLastLr(), [0.01]);
  const lrs = lrPerEpoch(optimizer, scheduler, 30);
  const expected = [
    ...new Array(10).fill(0.01),
    ...new Array(10).fill(0.001),
    ...new Array(10).fill(0.0001),
  ];
  assertClose(lrs, expected, { atol: 0, rtol: 1e-12 });
  assert.equal(scheduler.lastEpoch, 30);
  assertClose([scheduler.lastLr], [0.00001], { atol: 0, rtol: 1e-12 });
});

Deno.test("the study's SGD schedule: StepLR(35, 0.1) over 60 epochs on a real SGD", () => {
  const p = tensor([1], [1], { requiresGrad: true });
  const sgd = new SGD([p], { lr: 0.01 });
  const scheduler = new StepLR(sgd, { stepSize: 35 });
  assert.equal(scheduler.gamma, 0.1);
  const lrs = lrPerEpoch(sgd, scheduler, 60);
  assertClose(lrs, [...new Array(35).fill(0.01), ...new Array(25).fill(0.001)], {
    atol: 0,
    rtol: 1e-12,
  });
  p.dispose();
});

Deno.test("StepLR agrees with PyTorch's recursive form", () => {
  const optimizer = { lr: 0.3 };
  const scheduler = new StepLR(optimizer, { stepSize: 3, gamma: 0.5 });
  let recursive = 0.3;
  for (let epoch = 1; epoch <= 20; epoch++) {
    scheduler.step();
    if (epoch % 3 === 0) recursive *= 0.5;
    assertClose([optimizer.lr], [recursive], { atol: 0, rtol: 1e-12 }, `epoch ${epoch}`);
  }
});

Deno.test("CosineAnnealingLR values: known points and PyTorch's recursive form", () => {
  const optimizer = { lr: 0.1 };
  const scheduler = new CosineAnnealingLR(optimizer, { tMax: 10 });
  const lrs = lrPerEpoch(optimizer, scheduler, 31);
  assertClose(
    [lrs[0], lrs[2], lrs[5], lrs[8], lrs[10], lrs[15], lrs[20]],
    [
      0.1,
      0.1 * (1 + Math.cos(Math.PI / 5)) / 2,
      0.05,
      0.1 * (1 - Math.cos(Math.PI / 5)) / 2,
      0,
      0.05,
      0.1,
    ],
    { atol: 1e-15, rtol: 1e-12 },
  );
  assertClose([lrs[2]], [0.09045084971874737], { atol: 1e-15, rtol: 0 });
  // PyTorch's chainable get_lr(), written out independently.
  const base = 0.1, etaMin = 0.01, tMax = 7;
  const withFloor = { lr: base };
  const cosine = new CosineAnnealingLR(withFloor, { tMax, etaMin });
  let lr = base;
  for (let epoch = 1; epoch <= 3 * tMax; epoch++) {
    cosine.step();
    if ((epoch - 1 - tMax) % (2 * tMax) === 0) {
      lr = lr + (base - etaMin) * (1 - Math.cos(Math.PI / tMax)) / 2;
    } else {
      lr = (1 + Math.cos(Math.PI * epoch / tMax)) / (1 + Math.cos(Math.PI * (epoch - 1) / tMax)) *
          (lr - etaMin) + etaMin;
    }
    assertClose([withFloor.lr], [lr], { atol: 1e-12, rtol: 1e-9 }, `epoch ${epoch}`);
    assert.deepEqual(cosine.getLastLr(), [withFloor.lr]);
  }
  assertClose([cosine.lrAt(tMax)], [etaMin], { atol: 1e-15, rtol: 0 });
});

Deno.test("a scheduler restored from its state dict continues the same sequence", () => {
  for (
    const make of [
      (o: LrTarget) => new StepLR(o, { stepSize: 4, gamma: 0.3 }),
      (o: LrTarget) => new CosineAnnealingLR(o, { tMax: 9, etaMin: 0.001 }),
    ]
  ) {
    const straight = { lr: 0.05 };
    const full = lrPerEpoch(straight, make(straight), 25);
    const first = { lr: 0.05 };
    const before = make(first);
    const head = lrPerEpoch(first, before, 13);
    const saved = JSON.parse(JSON.stringify(before.stateDict()));
    const resumed = { lr: 999 }; // a fresh optimizer with another lr
    const after = make(resumed);
    after.loadStateDict(saved);
    assert.equal(after.lastEpoch, 13);
    assert.equal(after.baseLr, 0.05);
    assert.deepEqual([...head, ...lrPerEpoch(resumed, after, 12)], full);
  }
});

Deno.test("schedulers validate their options and state dicts", () => {
  const optimizer = { lr: 0.1 };
  assert.throws(() => new StepLR(optimizer, { stepSize: 0 }), /stepSize must be an integer >= 1/);
  assert.throws(() => new StepLR(optimizer, { stepSize: 2.5 }), /stepSize/);
  assert.throws(() => new CosineAnnealingLR(optimizer, { tMax: 0 }), /tMax must be/);
  assert.throws(
    () => new CosineAnnealingLR(optimizer, { tMax: 3, etaMin: Number.NaN }),
    /etaMin must be a finite number/,
  );
  const step = new StepLR(optimizer, { stepSize: 2 });
  const cosine = new CosineAnnealingLR(optimizer, { tMax: 2 });
  assert.throws(() => step.loadStateDict(cosine.stateDict()), /from CosineAnnealingLR, not StepLR/);
  assert.throws(
    () => step.loadStateDict({ ...step.stateDict(), lastEpoch: -1 }),
    /invalid lastEpoch -1/,
  );
  assert.deepEqual(step.stateDict(), {
    scheduler: "StepLR",
    lastEpoch: 0,
    baseLr: 0.1,
    lastLr: 0.1,
    baseLrs: [0.1],
    lastLrs: [0.1],
    hyperparameters: { stepSize: 2, gamma: 0.1 },
  });
});
