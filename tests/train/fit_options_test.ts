/**
 * `fit`'s options beyond classification: an MSE loss passed as `loss` learns a linear regression
 * from generated data; custom metrics summed on the GPU equal CPU computations (in training and
 * validation passes); the built-in `accuracy` and `meanLoss` agree with the default numbers;
 * `onEpochEnd` stops training early; `initialEpoch` resumes; custom losses and metrics read back
 * once per pass, never per step; wrong metrics fail with messages naming them.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import type { ImageSet } from "../../data/dataset.ts";
import { DataLoader, GpuDataset } from "../../data/loader.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { createModel } from "../../nn/models.ts";
import { Module } from "../../nn/modules/module.ts";
import { mul, sub } from "../../nn/ops/elementwise.ts";
import { linear } from "../../nn/ops/matmul.ts";
import { correctCount, mean, sum } from "../../nn/ops/reduce.ts";
import { nllLoss } from "../../nn/ops/softmax.ts";
import { Rng } from "../../nn/random.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import {
  accuracy,
  type BatchLoader,
  evaluate,
  fit,
  type LossFunction,
  meanLoss,
  type Metric,
  type TrainingBatch,
} from "../../train/fit.ts";
import { SGD } from "../../train/optim/sgd.ts";
import { ReadPacer } from "../../train/read_pacer.ts";
import { blobImages } from "../synthetic.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

/** Asserts |actual - expected| <= tolerance · max(1, |expected|). */
function assertClose(actual: number, expected: number, tolerance: number, what: string): void {
  ok(
    Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} vs expected ${expected} (tolerance ${tolerance})`,
  );
}

const FEATURES = 4;
const TRUE_WEIGHT = [1, -2, 0.5, 3];
const TRUE_BIAS = 0.25;

/** `count` samples x in [-1, 1]^4 with y = x·w + b (exactly linear). */
function regressionData(count: number, seed: number): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: count * FEATURES }, () => rng.next() * 2 - 1);
  const y = Float32Array.from({ length: count }, (_, n) => {
    let v = TRUE_BIAS;
    for (let j = 0; j < FEATURES; j++) v += x[n * FEATURES + j] * TRUE_WEIGHT[j];
    return v;
  });
  return { x, y };
}

/** Batches of a regression set in a fixed order: x [B, 4] and f32 targets y [B, 1]. */
class RegressionLoader implements BatchLoader {
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

/** y = x·w + b with one output. */
class LinearRegression extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(weight: number[] = [0, 0, 0, 0], bias = 0) {
    super();
    this.weight = this.registerParameter("weight", tensor(weight, [1, FEATURES]));
    this.bias = this.registerParameter("bias", tensor([bias], [1]));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

const mse: LossFunction = (output, target) => {
  const d = sub(output, target);
  return mean(mul(d, d));
};
/** Sum of squared errors of the batch. */
const sse: Metric = (output, target) => {
  const d = sub(output, target);
  return sum(mul(d, d));
};

const trainData = regressionData(256, 1);
const valData = regressionData(96, 2);

/** Mean squared error of w·x + b on `data`, in float64. */
function cpuMse(data: { x: Float32Array; y: Float32Array }, w: number[], b: number): number {
  let total = 0;
  for (let n = 0; n < data.y.length; n++) {
    let p = b;
    for (let j = 0; j < FEATURES; j++) p += Math.fround(data.x[n * FEATURES + j]) * w[j];
    total += (p - data.y[n]) ** 2;
  }
  return total / data.y.length;
}

Deno.test("an MSE loss passed as `loss` learns a linear regression from generated data", async () => {
  const model = new LinearRegression();
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const train = new RegressionLoader(trainData, 32);
  const val = new RegressionLoader(valData, 32);
  try {
    const result = await fit(model, { train, val, optimizer, epochs: 15, loss: mse });
    equal(result.history.length, 15);
    const first = result.history[0], last = result.history.at(-1)!;
    ok(first.valLoss! > 0.05, `epoch 1 validation MSE ${first.valLoss}`);
    ok(last.valLoss! < 1e-4, `epoch 15 validation MSE ${last.valLoss}`);
    ok(last.trainLoss < first.trainLoss / 100, `${first.trainLoss} -> ${last.trainLoss}`);
    ok(Number.isNaN(last.trainAccuracy) && Number.isNaN(last.valAccuracy!), "no accuracy");
    equal(last.trainMetrics, undefined, "no metrics asked for: none recorded");
    const w = Array.from(await model.weight.toArray());
    const [b] = await model.bias.toArray();
    for (let j = 0; j < FEATURES; j++) assertClose(w[j], TRUE_WEIGHT[j], 0.02, `weight ${j}`);
    assertClose(b, TRUE_BIAS, 0.02, "bias");
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

Deno.test("custom metrics summed on the GPU equal a CPU computation (training and validation)", async () => {
  const w = [0.5, 0.25, -1, 2], b = -0.5;
  const model = new LinearRegression(w, b);
  const optimizer = new SGD(model.parameters(), { lr: 0 }); // the weights stay put
  const train = new RegressionLoader(trainData, 40); // 7 batches, the last one of 16
  const val = new RegressionLoader(valData, 32);
  try {
    const { history } = await fit(model, {
      train,
      val,
      optimizer,
      epochs: 1,
      loss: mse,
      metrics: { sse, mse: meanLoss(mse) },
    });
    const [record] = history;
    const trainMse = cpuMse(trainData, w, b), valMse = cpuMse(valData, w, b);
    ok(trainMse > 0.5, `a real error to measure: ${trainMse}`);
    deepEqual(Object.keys(record.trainMetrics!), ["sse", "mse"], "in the order given");
    assertClose(record.trainMetrics!.sse, trainMse, 1e-5, "training SSE / samples");
    assertClose(record.trainMetrics!.mse, trainMse, 1e-5, "training meanLoss(mse)");
    assertClose(record.trainLoss, trainMse, 1e-5, "training loss");
    assertClose(record.valMetrics!.sse, valMse, 1e-5, "validation SSE / samples");
    assertClose(record.valLoss!, valMse, 1e-5, "validation loss");
    const evaluated = await evaluate(model, val, { loss: mse, metrics: { sse } });
    assertClose(evaluated.metrics!.sse, valMse, 1e-5, "evaluate's SSE / samples");
    equal(evaluated.samples, 96);
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

function blobSet(count: number, seed: number): ImageSet {
  const { images, labels } = blobImages(count, seed);
  return {
    images: Uint8Array.from(images, (v) => Math.round(v * 255)),
    labels: Uint8Array.from(labels),
    count,
    rows: 28,
    cols: 28,
  };
}

Deno.test("built-in accuracy and meanLoss agree with the default numbers and a computed count", async () => {
  const data = new GpuDataset(blobSet(150, 3));
  const loader = new DataLoader(data, { batchSize: 64, shuffle: false });
  const model = createModel("mlp", { rng: new Rng(4) });
  const hits: Metric = (output, target) => correctCount(output, target);
  try {
    const plain = await evaluate(model, loader);
    equal(plain.metrics, undefined);
    const measured = await evaluate(model, loader, {
      metrics: { acc: accuracy, hits, nll: meanLoss(nllLoss) },
    });
    equal(measured.accuracy, plain.accuracy);
    equal(measured.metrics!.acc, plain.accuracy, "the fused count");
    equal(measured.metrics!.hits, plain.accuracy, "the same count by a metric function");
    assertClose(measured.metrics!.nll, plain.loss, 1e-6, "meanLoss(nllLoss) is the loss");
    ok(plain.accuracy > 0 && plain.accuracy < 1);
  } finally {
    model.dispose();
    loader.dispose();
    data.dispose();
  }
});

Deno.test("fit's defaults are unchanged: an explicit { accuracy } gives the same numbers, bit for bit", async () => {
  const data = new GpuDataset(blobSet(192, 5));
  const valData = new GpuDataset(blobSet(100, 6));
  const histories = [];
  try {
    for (const metrics of [undefined, { accuracy }]) {
      const model = createModel("mlp", { rng: new Rng(7) });
      const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const train = new DataLoader(data, { batchSize: 64, seed: 7 });
      const val = new DataLoader(valData, { batchSize: 64, shuffle: false });
      try {
        histories.push((await fit(model, { train, val, optimizer, epochs: 2, metrics })).history);
      } finally {
        train.dispose();
        val.dispose();
        optimizer.dispose();
        model.dispose();
      }
    }
    const [plain, explicit] = histories;
    const numbers = (h: typeof plain) =>
      h.map((r) => [r.trainLoss, r.trainAccuracy, r.valLoss, r.valAccuracy, r.lr]);
    deepEqual(numbers(explicit), numbers(plain));
    ok(plain.every((r) => !("trainMetrics" in r) && !("valMetrics" in r)), "records as before");
    deepEqual(
      explicit.map((r) => r.trainMetrics),
      plain.map((r) => ({ accuracy: r.trainAccuracy })),
    );
    deepEqual(explicit.map((r) => r.valMetrics), plain.map((r) => ({ accuracy: r.valAccuracy })));
    ok(plain[1].trainLoss < plain[0].trainLoss, "it learns");
  } finally {
    data.dispose();
    valData.dispose();
  }
});

Deno.test("onEpochEnd stops training early after N epochs, and stop() in the last epoch is no stop", async () => {
  const model = new LinearRegression();
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const train = new RegressionLoader(trainData, 64);
  try {
    const seen: number[] = [];
    const result = await fit(model, {
      train,
      optimizer,
      epochs: 10,
      loss: mse,
      onEpochEnd: (record, context) => {
        seen.push(record.epoch);
        equal(context.epoch, record.epoch);
        equal(context.epochs, 10);
        equal(context.model, model);
        equal(context.history.at(-1), record);
        if (record.epoch === 3) context.stop();
      },
    });
    deepEqual(seen, [1, 2, 3]);
    equal(result.history.length, 3);
    equal(result.stopped, true);
    equal(result.interrupted, false);
    const last = await fit(model, {
      train,
      optimizer,
      epochs: 2,
      loss: mse,
      onEpochEnd: (record, { stop }) => void (record.epoch === 2 && stop()),
    });
    equal(last.history.length, 2);
    equal(last.stopped, false, "every epoch ran");
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

Deno.test("initialEpoch resumes at the next epoch without the earlier records", async () => {
  const model = new LinearRegression();
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const train = new RegressionLoader(trainData, 64);
  try {
    const result = await fit(model, { train, optimizer, epochs: 4, initialEpoch: 2, loss: mse });
    deepEqual(result.history.map((r) => r.epoch), [3, 4]);
    await rejects(
      fit(model, { train, optimizer, epochs: 4, initialEpoch: 1.5, loss: mse }),
      /fit: initialEpoch must be an integer >= history.length \(0\), got 1.5/,
    );
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

Deno.test("a custom loss and metrics read back once per pass, never per step; memory stays flat", async () => {
  const model = new LinearRegression();
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const train = new RegressionLoader(trainData, 16); // 16 steps per epoch
  const val = new RegressionLoader(valData, 16);
  const pacer = () => new ReadPacer({ initialTick: 1e9, maxTick: 1e9, targetSeconds: 1e9 });
  try {
    for (
      const [metrics, perEpoch] of [
        [undefined, 2], // training sums, validation sums
        [{ sse }, 4], // and each pass's metric sums
      ] as const
    ) {
      const counts: number[] = [];
      const live: number[] = [];
      let before = streamStats().readbacks;
      await fit(model, {
        train,
        val,
        optimizer,
        epochs: 3,
        loss: mse,
        metrics,
        pacer: pacer(),
        onEpochEnd: () => {
          const now = streamStats().readbacks;
          counts.push(now - before);
          before = now;
          live.push(memoryStats().liveBytes);
        },
      });
      deepEqual(counts, [perEpoch, perEpoch, perEpoch], `metrics ${JSON.stringify(metrics)}`);
      equal(live[1], live[2], `live bytes after epochs 2 and 3: ${live.join(", ")}`);
    }
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

Deno.test("wrong metrics and losses fail with messages that name them", async () => {
  const model = new LinearRegression();
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const train = new RegressionLoader(trainData, 32);
  try {
    await rejects(
      fit(model, { train, optimizer, epochs: 1, loss: mse, metrics: { accuracy } }),
      /correctCount: scores must have shape \[N, C\]|correctCount: target/,
    );
    await rejects(
      fit(model, {
        train,
        optimizer,
        epochs: 1,
        loss: mse,
        metrics: { bad: (output) => output },
      }),
      /trainEpoch: metric "bad" must return the batch's sum as an f32 scalar tensor \[\], got f32 \[32, 1\]/,
    );
    await rejects(
      fit(model, { train, optimizer, epochs: 1, loss: (output) => output }),
      /trainEpoch: the loss function must return the batch's mean loss as an f32 scalar tensor \[\], got f32 \[32, 1\]/,
    );
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});
