/**
 * `fit` with the LR schedulers: `schedulerInterval: "batch"` steps OneCycleLR after every
 * optimizer step; ReduceLROnPlateau is fed the validation loss (the training loss without
 * `val`); bad combinations are refused with messages.
 */

import { deepEqual, equal, rejects } from "node:assert/strict";
import { Module } from "../../nn/modules/module.ts";
import { mul, sub } from "../../nn/ops/elementwise.ts";
import { linear } from "../../nn/ops/matmul.ts";
import { mean } from "../../nn/ops/reduce.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { type BatchLoader, fit, type LossFunction, type TrainingBatch } from "../../train/fit.ts";
import { OneCycleLR, ReduceLROnPlateau, StepLR } from "../../train/lr_scheduler.ts";
import { SGD } from "../../train/optim/sgd.ts";
import { assertClose, gpuReady } from "../testing.ts";

await gpuReady();

/** `batches` batches of 5 samples of y = x0 - 2·x1 + 0.5 (3 features, the third unused). */
class Loader implements BatchLoader {
  constructor(readonly length: number, readonly seed: number) {}
  get count(): number {
    return this.length * 5;
  }
  *batches(_epoch: number): Generator<TrainingBatch> {
    for (let b = 0; b < this.length; b++) {
      const xs = Array.from({ length: 15 }, (_, i) => Math.sin(this.seed + b * 15 + i));
      const ys = Array.from({ length: 5 }, (_, n) => xs[3 * n] - 2 * xs[3 * n + 1] + 0.5);
      const x = tensor(xs, [5, 3]), y = tensor(ys, [5, 1]);
      yield { x, y, dispose: () => (x.dispose(), y.dispose()) };
    }
  }
}

class Line extends Module {
  weight: Tensor = this.registerParameter("weight", tensor([0, 0, 0], [1, 3]));
  bias: Tensor = this.registerParameter("bias", tensor([0], [1]));
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

const mse: LossFunction = (output, target) => {
  const d = sub(output, target);
  return mean(mul(d, d));
};

Deno.test('fit steps OneCycleLR after every optimizer step with schedulerInterval "batch"', async () => {
  const model = new Line();
  try {
    const optimizer = new SGD(model.parameters(), { lr: 0.01 });
    const scheduler = new OneCycleLR(optimizer, {
      maxLr: 0.2,
      epochs: 3,
      stepsPerEpoch: 4,
      cycleMomentum: false, // today's SGD bakes its momentum into its kernel
    });
    const { history } = await fit(model, {
      train: new Loader(4, 1),
      optimizer,
      scheduler,
      schedulerInterval: "batch",
      epochs: 3,
      loss: mse,
    });
    equal(scheduler.lastEpoch, 12);
    // Each record's lr is the one its epoch started with: steps 0, 4 and 8 of the cycle.
    assertClose(history.map((r) => r.lr), [0, 4, 8].map((s) => scheduler.lrAt(s)), {
      atol: 0,
      rtol: 1e-12,
    });
    assertClose([optimizer.lr], [scheduler.lrAt(12)], { atol: 0, rtol: 1e-12 });
  } finally {
    model.dispose();
  }
});

Deno.test("fit feeds ReduceLROnPlateau the validation loss, else the training loss", async () => {
  for (const withVal of [true, false]) {
    const model = new Line();
    try {
      // An lr so small that the loss stays put: every epoch after the first is a plateau.
      const optimizer = new SGD(model.parameters(), { lr: 1e-6 });
      const scheduler = new ReduceLROnPlateau(optimizer, { patience: 0 });
      const { history } = await fit(model, {
        train: new Loader(2, 1),
        val: withVal ? new Loader(1, 7) : undefined,
        optimizer,
        scheduler,
        epochs: 3,
        loss: mse,
      });
      equal(scheduler.lastEpoch, 3);
      equal(scheduler.best, withVal ? history[0].valLoss : history[0].trainLoss);
      assertClose(history.map((r) => r.lr), [1e-6, 1e-6, 1e-7], { atol: 0, rtol: 1e-12 });
      assertClose([optimizer.lr], [1e-8], { atol: 0, rtol: 1e-12 });
    } finally {
      model.dispose();
    }
  }
});

Deno.test("fit refuses a per-batch ReduceLROnPlateau and unknown intervals", async () => {
  const model = new Line();
  try {
    const optimizer = new SGD(model.parameters(), { lr: 0.1 });
    const train = new Loader(1, 1);
    await rejects(
      fit(model, {
        train,
        optimizer,
        scheduler: new ReduceLROnPlateau(optimizer),
        schedulerInterval: "batch",
        epochs: 1,
        loss: mse,
      }),
      { message: /fit: ReduceLROnPlateau needs an epoch's loss, so it steps per epoch/ },
    );
    await rejects(
      fit(model, {
        train,
        optimizer,
        scheduler: new StepLR(optimizer, { stepSize: 1 }),
        schedulerInterval: "step" as "batch",
        epochs: 1,
        loss: mse,
      }),
      { message: 'fit: schedulerInterval must be "epoch" or "batch", got step' },
    );
    deepEqual(optimizer.lr, 0.1);
  } finally {
    model.dispose();
  }
});
