/**
 * The losses of `nn/ops/losses.ts` passed to `fit` as `loss` (a `LossFunction`): `mseLoss`
 * learns a small linear regression, `binaryCrossEntropyWithLogits` a linearly separable binary
 * classifier (f32 0/1 targets [N, 1]).
 */

import { equal, ok } from "node:assert/strict";
import { Module } from "../../nn/modules/module.ts";
import { binaryCrossEntropyWithLogits, mseLoss } from "../../nn/ops/losses.ts";
import { linear } from "../../nn/ops/matmul.ts";
import { Rng } from "../../nn/random.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { type BatchLoader, fit, type LossFunction, type TrainingBatch } from "../../train/fit.ts";
import { SGD } from "../../train/optim/sgd.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

const FEATURES = 3;

/** `count` samples x in [-1, 1]^3 with a target from `label(x)`. */
function dataset(
  count: number,
  seed: number,
  label: (x: Float32Array) => number,
): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: count * FEATURES }, () => rng.next() * 2 - 1);
  const y = Float32Array.from(
    { length: count },
    (_, n) => label(x.subarray(n * FEATURES, (n + 1) * FEATURES)),
  );
  return { x, y };
}

/** Batches in a fixed order: x [B, 3] and f32 targets y [B, 1]. */
class Loader implements BatchLoader {
  readonly count: number;
  constructor(readonly data: { x: Float32Array; y: Float32Array }, readonly batchSize: number) {
    this.count = data.y.length;
  }
  get length(): number {
    return Math.ceil(this.count / this.batchSize);
  }
  *batches(_epoch: number): Generator<TrainingBatch> {
    for (let start = 0; start < this.count; start += this.batchSize) {
      const end = Math.min(start + this.batchSize, this.count);
      const x = tensor(this.data.x.subarray(start * FEATURES, end * FEATURES), [
        end - start,
        FEATURES,
      ]);
      const y = tensor(this.data.y.subarray(start, end), [end - start, 1]);
      yield { x, y, dispose: () => (x.dispose(), y.dispose()) };
    }
  }
}

/** One linear output. */
class Linear1 extends Module {
  readonly weight: Tensor = this.registerParameter("weight", tensor([0, 0, 0], [1, FEATURES]));
  readonly bias: Tensor = this.registerParameter("bias", tensor([0], [1]));
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

Deno.test("fit with loss: mseLoss learns a linear regression", async () => {
  const line = (x: Float32Array) => 2 * x[0] - x[1] + 0.5 * x[2] + 0.25;
  const model = new Linear1();
  const loss: LossFunction = mseLoss;
  const result = await fit(model, {
    train: new Loader(dataset(200, 1, line), 25),
    val: new Loader(dataset(50, 2, line), 25),
    optimizer: new SGD(model.parameters(), { lr: 0.1 }),
    epochs: 12,
    loss,
  });
  equal(result.history.length, 12);
  const first = result.history[0], last = result.history.at(-1)!;
  ok(last.valLoss! < 1e-3, `validation MSE ${last.valLoss}`);
  ok(last.trainLoss < first.trainLoss / 50, `${first.trainLoss} -> ${last.trainLoss}`);
  const weight = await model.weight.toArray();
  ok(Math.abs(weight[0] - 2) < 0.05 && Math.abs(weight[1] + 1) < 0.05, `weight ${weight}`);
});

Deno.test("fit with loss: binaryCrossEntropyWithLogits learns a binary classifier", async () => {
  const side = (x: Float32Array) => x[0] + 2 * x[1] - x[2] > 0 ? 1 : 0;
  const model = new Linear1();
  const result = await fit(model, {
    train: new Loader(dataset(200, 3, side), 25),
    val: new Loader(dataset(100, 4, side), 25),
    optimizer: new SGD(model.parameters(), { lr: 1 }),
    epochs: 12,
    // Options travel in a closure: fit calls loss(output, target).
    loss: (output, target) => binaryCrossEntropyWithLogits(output, target, { reduction: "mean" }),
  });
  const first = result.history[0], last = result.history.at(-1)!;
  ok(first.trainLoss < Math.log(2) + 1e-3, `epoch 1 loss ${first.trainLoss} (starts at ln 2)`);
  ok(last.valLoss! < 0.25, `validation loss ${last.valLoss}`);
  ok(last.trainLoss < first.trainLoss * 0.6, `${first.trainLoss} -> ${last.trainLoss}`);
  // The learned direction separates the classes: the sign of w·x + b agrees with the labels.
  const test = dataset(100, 5, side);
  const w = await model.weight.toArray(), [b] = await model.bias.toArray();
  let correct = 0;
  for (let n = 0; n < 100; n++) {
    const x = test.x.subarray(n * FEATURES, (n + 1) * FEATURES);
    const score = w[0] * x[0] + w[1] * x[1] + w[2] * x[2] + b;
    if ((score > 0 ? 1 : 0) === test.y[n]) correct++;
  }
  ok(correct >= 90, `${correct} of 100 test points on the right side`);
});
