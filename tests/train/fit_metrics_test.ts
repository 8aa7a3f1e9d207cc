/**
 * `fit`'s metrics, gradient clipping and early stopping: `mse`, `mae` and `topKAccuracy(k)`
 * against float64 CPU references (directly on awkward shapes, and summed over an epoch with a
 * last partial batch, in training and validation, into the history and its CSV); `clipGradNorm`
 * and `clipGradValue` steps equal a manual clip and SGD step; `earlyStopping` stops at the right
 * epoch on scripted values, restores the best weights exactly, and leaks nothing.
 */

import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { BatchNorm1d } from "../../nn/modules/batch_norm.ts";
import { Sequential } from "../../nn/modules/layers.ts";
import { Linear } from "../../nn/modules/linear.ts";
import { Module } from "../../nn/modules/module.ts";
import { mseLoss } from "../../nn/ops/losses.ts";
import { linear } from "../../nn/ops/matmul.ts";
import { correctCount } from "../../nn/ops/reduce.ts";
import { Rng } from "../../nn/random.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { earlyStopping } from "../../train/early_stopping.ts";
import {
  accuracy,
  type BatchLoader,
  evaluate,
  fit,
  mae,
  mse,
  topKAccuracy,
  type TrainingBatch,
} from "../../train/fit.ts";
import { historyToCsv } from "../../train/history.ts";
import { SGD } from "../../train/optim/sgd.ts";
import { ReadPacer } from "../../train/read_pacer.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

/** Asserts |actual - expected| <= tolerance · max(1, |expected|). */
function close(actual: number, expected: number, tolerance: number, what: string): void {
  ok(
    Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} vs expected ${expected} (tolerance ${tolerance})`,
  );
}

// ---------------------------------------------------------------- float64 references

/** Σ over samples of each sample's mean (o - t)^2 (or |o - t|), as the metrics' batch sums. */
function errorSumReference(
  o: ArrayLike<number>,
  t: ArrayLike<number>,
  rows: number,
  squared: boolean,
) {
  let total = 0;
  for (let i = 0; i < o.length; i++) {
    const d = o[i] - t[i];
    total += squared ? d * d : Math.abs(d);
  }
  return rows > 0 ? total / Math.max(1, o.length / rows) : 0;
}

/**
 * Rows whose label is among the k best: rank = NaNs ahead (NaN first), then larger values, then
 * equal values at a lower index. A label outside [0, C) is wrong.
 */
function topKReference(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
  k: number,
) {
  let count = 0;
  for (let row = 0; row < labels.length; row++) {
    const label = labels[row];
    if (label < 0 || label >= classes) continue;
    const t = scores[row * classes + label];
    let rank = 0;
    for (let j = 0; j < classes; j++) {
      const v = scores[row * classes + j];
      const ahead = Number.isNaN(t)
        ? Number.isNaN(v) && j < label
        : Number.isNaN(v) || v > t || (v === t && j < label);
      if (ahead) rank++;
    }
    if (rank < k) count++;
  }
  return count;
}

// ---------------------------------------------------------------- the metric kernels

Deno.test("mse and mae: the batch's sum of per-sample mean errors, on awkward shapes", async () => {
  const rng = new Rng(1);
  for (const shape of [[1], [5], [1, 1], [7, 3], [3, 1, 5], [33, 9], [2, 0]]) {
    const size = shape.reduce((a, b) => a * b, 1);
    const o = Float32Array.from({ length: size }, () => rng.next() * 4 - 2);
    const t = Float32Array.from({ length: size }, () => rng.next() * 4 - 2);
    const [ot, tt] = [tensor(o, shape), tensor(t, shape)];
    for (const [name, metric, squared] of [["mse", mse, true], ["mae", mae, false]] as const) {
      const out = metric(ot, tt);
      deepEqual(out.shape, [], `${name} ${shape}: a scalar`);
      close(
        await out.item(),
        errorSumReference(o, t, shape[0], squared),
        1e-5,
        `${name} [${shape}]`,
      );
      out.dispose();
    }
    ot.dispose();
    tt.dispose();
  }
});

Deno.test("mse and mae: shape and dtype errors name the metric and both shapes", () => {
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = tensor([1, 2, 3, 4, 5, 6], [3, 2]);
  const c = tensor(Int32Array.from([1, 2]), [2]);
  const s = tensor([1], []);
  try {
    throws(() => mse(a, b), /mse: output \[2, 3\] and target \[3, 2\] must have the same shape/);
    throws(
      () => mae(s, s),
      /mae: output \[\] and target \[\] must have the same shape \[N, \.\.\.\]/,
    );
    throws(() => mse(c, c), /mse: output and target must be f32, got i32 and i32/);
  } finally {
    for (const t of [a, b, c, s]) t.dispose();
  }
});

Deno.test("topKAccuracy: ties by lower index, NaN first, labels out of range wrong; k = 1 is accuracy", async () => {
  const rng = new Rng(2);
  for (const [rows, classes] of [[1, 1], [7, 5], [33, 13], [1, 4], [70, 3]]) {
    // Small integers: many ties. Some NaNs, some labels out of range.
    const scores = Float32Array.from(
      { length: rows * classes },
      () => rng.next() < 0.05 ? NaN : Math.floor(rng.next() * 3),
    );
    const labels = Int32Array.from(
      { length: rows },
      () => rng.next() < 0.1 ? (rng.next() < 0.5 ? -1 : classes) : Math.floor(rng.next() * classes),
    );
    const [st, lt] = [tensor(scores, [rows, classes]), tensor(labels, [rows])];
    for (const k of [1, 2, 3, classes + 1]) {
      const out = topKAccuracy(k)(st, lt);
      equal(
        await out.item(),
        topKReference(scores, labels, classes, k),
        `[${rows}, ${classes}] k=${k}`,
      );
      out.dispose();
    }
    const top1 = topKAccuracy(1)(st, lt);
    const argmax = correctCount(st, lt);
    equal(await top1.item(), await argmax.item(), `[${rows}, ${classes}]: top-1 = correctCount`);
    top1.dispose();
    argmax.dispose();
    st.dispose();
    lt.dispose();
  }
  throws(() => topKAccuracy(0), /topKAccuracy: k must be an integer >= 1, got 0/);
  throws(() => topKAccuracy(1.5), /topKAccuracy: k must be an integer >= 1, got 1.5/);
  const x = tensor([1, 2, 3], [3]);
  throws(() => topKAccuracy(2)(x, x), /topKAccuracy\(2\): output must have shape \[N, C\]/);
  x.dispose();
});

// ---------------------------------------------------------------- over an epoch

/** Fixed batches of x [B, in] and y (f32 [B, out], or i32 [B]); the last one partial. */
class FixedLoader implements BatchLoader {
  readonly count: number;
  constructor(
    readonly x: Float32Array,
    readonly y: Float32Array | Int32Array,
    readonly inFeatures: number,
    readonly yWidth: number, // 0: class labels [B]
    readonly batchSize: number,
  ) {
    this.count = x.length / inFeatures;
  }
  get length(): number {
    return Math.ceil(this.count / this.batchSize);
  }
  *batches(_epoch: number): Generator<TrainingBatch> {
    for (let start = 0; start < this.count; start += this.batchSize) {
      const n = Math.min(this.batchSize, this.count - start);
      const x = tensor(this.x.subarray(start * this.inFeatures, (start + n) * this.inFeatures), [
        n,
        this.inFeatures,
      ]);
      const w = Math.max(1, this.yWidth);
      const y = tensor(
        this.y.subarray(start * w, (start + n) * w),
        this.yWidth ? [n, this.yWidth] : [n],
      );
      yield { x, y, dispose: () => (x.dispose(), y.dispose()) };
    }
  }
}

/** A fixed affine map x W^T + b (no random init). */
class Affine extends Module {
  weight: Tensor;
  bias: Tensor;
  constructor(readonly w: number[], readonly b: number[], inFeatures: number) {
    super();
    this.weight = this.registerParameter("weight", tensor(w, [b.length, inFeatures]));
    this.bias = this.registerParameter("bias", tensor(b, [b.length]));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

function affineReference(model: Affine, x: Float32Array, inFeatures: number): number[] {
  const out: number[] = [];
  const outFeatures = model.b.length;
  for (let n = 0; n < x.length / inFeatures; n++) {
    for (let o = 0; o < outFeatures; o++) {
      let v = model.b[o];
      for (let i = 0; i < inFeatures; i++) v += model.w[o * inFeatures + i] * x[n * inFeatures + i];
      out.push(v);
    }
  }
  return out;
}

const noTicks = () => new ReadPacer({ initialTick: 1e9, maxTick: 1e9, targetSeconds: 1e9 });

Deno.test("mse, mae over an epoch (last batch partial): training, validation, history and CSV", async () => {
  const rng = new Rng(3);
  const [IN, OUT, COUNT] = [5, 3, 23]; // batches 8, 8, 7
  const x = Float32Array.from({ length: COUNT * IN }, () => rng.next() * 2 - 1);
  const y = Float32Array.from({ length: COUNT * OUT }, () => rng.next() * 2 - 1);
  const model = new Affine(
    Array.from({ length: OUT * IN }, () => rng.next() - 0.5),
    Array.from({ length: OUT }, () => rng.next() - 0.5),
    IN,
  );
  const loader = new FixedLoader(x, y, IN, OUT, 8);
  const optimizer = new SGD(model.parameters(), { lr: 0 }); // the model stays as it is
  try {
    const output = affineReference(model, x, IN);
    const expected = {
      mse: errorSumReference(output, y, COUNT, true) / COUNT,
      mae: errorSumReference(output, y, COUNT, false) / COUNT,
    };
    let before = streamStats().readbacks;
    const readbacks: number[] = [];
    const { history } = await fit(model, {
      train: loader,
      val: loader,
      optimizer,
      epochs: 2,
      loss: mseLoss,
      metrics: { mse, mae },
      pacer: noTicks(),
      onEpochEnd: () => {
        const now = streamStats().readbacks;
        readbacks.push(now - before);
        before = now;
      },
    });
    deepEqual(readbacks, [4, 4], "one readback per pass for the sums, one for the metrics");
    for (const record of history) {
      for (const phase of ["trainMetrics", "valMetrics"] as const) {
        close(record[phase]!.mse, expected.mse, 1e-5, `${phase}.mse`);
        close(record[phase]!.mae, expected.mae, 1e-5, `${phase}.mae`);
      }
      close(record.trainLoss, expected.mse, 1e-5, "mseLoss as the loss = the mse metric");
    }
    const csv = historyToCsv(history).trim().split("\n").map((line) => line.split(","));
    deepEqual(csv[0].slice(-4), [
      "trainMetrics.mse",
      "trainMetrics.mae",
      "valMetrics.mse",
      "valMetrics.mae",
    ]);
    equal(csv[0].length, csv[1].length);
    close(Number(csv[2].at(-1)), expected.mae, 1e-5, "valMetrics.mae in the CSV");
    const joined = historyToCsv(history, { run: "a" }, { metricColumns: ["valMetrics.top5"] });
    equal(joined.split("\n")[0].split(",").at(-1), "valMetrics.top5");
    equal(joined.split("\n")[1].split(",").at(-1), "", "a metric a run lacks: an empty cell");
    ok(
      !historyToCsv([{ ...history[0], trainMetrics: undefined, valMetrics: undefined }]).includes(
        "Metrics",
      ),
      "no metric columns without metrics",
    );
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

Deno.test("topKAccuracy and accuracy over an epoch in evaluate (ties, last batch partial)", async () => {
  const rng = new Rng(4);
  const [C, COUNT] = [6, 21];
  const x = Float32Array.from({ length: COUNT * C }, () => Math.floor(rng.next() * 4) - 3);
  const labels = Int32Array.from({ length: COUNT }, () => Math.floor(rng.next() * C));
  const eye = Array.from({ length: C * C }, (_, i) => (i % (C + 1) === 0 ? 1 : 0));
  const model = new Affine(eye, Array(C).fill(0), C); // the scores as given
  const loader = new FixedLoader(x, labels, C, 0, 8);
  try {
    const result = await evaluate(model, loader, {
      metrics: { accuracy, top1: topKAccuracy(1), top3: topKAccuracy(3) },
    });
    const reference = (k: number) => topKReference(x, labels, C, k) / COUNT;
    close(result.metrics!.top3, reference(3), 1e-6, "top3");
    close(result.metrics!.top1, reference(1), 1e-6, "top1");
    close(result.metrics!.accuracy, reference(1), 1e-6, "accuracy = top1");
    ok(reference(3) > reference(1), "the test can tell k apart");
  } finally {
    model.dispose();
  }
});

// ---------------------------------------------------------------- gradient clipping

/** One fit epoch of one batch with `clip`, against a manual backward, CPU clip and SGD step. */
async function checkClip(clip: { clipGradNorm?: number; clipGradValue?: number }) {
  const rng = new Rng(5);
  const [IN, OUT, COUNT, LR] = [7, 3, 9, 0.5];
  const x = Float32Array.from({ length: COUNT * IN }, () => rng.next() * 2 - 1);
  const y = Float32Array.from({ length: COUNT * OUT }, () => rng.next() * 6 - 3);
  const w = Array.from({ length: OUT * IN }, () => rng.next() - 0.5);
  const b = Array.from({ length: OUT }, () => rng.next() - 0.5);
  const loader = new FixedLoader(x, y, IN, OUT, COUNT); // one batch
  const trained = new Affine(w, b, IN);
  const manual = new Affine(w, b, IN);
  const optimizer = new SGD(trained.parameters(), { lr: LR });
  try {
    await fit(trained, { train: loader, optimizer, epochs: 1, loss: mseLoss, ...clip });
    // The manual step: gradients on the GPU, clip and step in float64.
    const [batch] = [...loader.batches(0)];
    const loss = mseLoss(manual.forward(batch.x), batch.y);
    loss.backward();
    const grads = [await manual.weight.grad!.toArray(), await manual.bias.grad!.toArray()];
    loss.dispose();
    batch.dispose();
    let factor = 1;
    if (clip.clipGradNorm !== undefined) {
      const norm = Math.sqrt(grads.flatMap((g) => [...g]).reduce((s, v) => s + v * v, 0));
      factor = Math.min(1, clip.clipGradNorm / (norm + 1e-6));
      ok(factor < 0.5, `the norm ${norm} is clipped`);
    }
    const clipped = grads.map((g) =>
      [...g].map((v) =>
        clip.clipGradValue === undefined
          ? v * factor
          : Math.min(clip.clipGradValue, Math.max(-clip.clipGradValue, v))
      )
    );
    if (clip.clipGradValue !== undefined) {
      ok(grads[0].some((v) => Math.abs(v) > clip.clipGradValue!), "some values are clamped");
    }
    const expected = [
      w.map((v, i) => v - LR * clipped[0][i]),
      b.map((v, i) => v - LR * clipped[1][i]),
    ];
    const got = [await trained.weight.toArray(), await trained.bias.toArray()];
    for (const [p, values] of expected.entries()) {
      for (const [i, v] of values.entries()) close(got[p][i], v, 1e-5, `parameter ${p}[${i}]`);
    }
  } finally {
    optimizer.dispose();
    trained.dispose();
    manual.dispose();
  }
}

Deno.test("fit's clipGradNorm: the step equals a manual clip of the total norm and an SGD step", async () => {
  await checkClip({ clipGradNorm: 0.1 });
});

Deno.test("fit's clipGradValue: the step equals a manual clamp and an SGD step", async () => {
  await checkClip({ clipGradValue: 0.05 });
});

Deno.test("fit's clipping options: bad values and both at once fail, naming them", async () => {
  const model = new Affine([1], [0], 1);
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const train = new FixedLoader(new Float32Array(4), new Float32Array(4), 1, 1, 2);
  try {
    await rejects(
      fit(model, { train, optimizer, epochs: 1, loss: mseLoss, clipGradNorm: 1, clipGradValue: 1 }),
      /fit: give clipGradNorm \(1\) or clipGradValue \(1\), not both/,
    );
    await rejects(
      fit(model, { train, optimizer, epochs: 1, loss: mseLoss, clipGradNorm: -1 }),
      /fit: clipGradNorm must be a number >= 0, got -1/,
    );
    await rejects(
      fit(model, { train, optimizer, epochs: 1, loss: mseLoss, clipGradValue: NaN }),
      /fit: clipGradValue must be a number >= 0, got NaN/,
    );
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

// ---------------------------------------------------------------- early stopping

/** A fit of `epochs` epochs whose monitored value is `values[epoch - 1]`; weights per epoch. */
async function scripted(
  values: number[],
  options: Parameters<typeof earlyStopping>[0],
  epochs = values.length,
) {
  const rng = new Rng(6);
  const [IN, COUNT] = [3, 10];
  const x = Float32Array.from({ length: COUNT * IN }, () => rng.next() * 2 - 1);
  const y = Float32Array.from({ length: COUNT * 2 }, () => rng.next() * 2 - 1);
  const model = new Sequential(new Linear(IN, 2, { rng }), new BatchNorm1d(2));
  const optimizer = new SGD(model.parameters(), { lr: 0.3 });
  const loader = new FixedLoader(x, y, IN, 2, 4);
  const stopper = earlyStopping({ monitor: (record) => values[record.epoch - 1], ...options });
  const weights: number[][][] = [];
  const live = memoryStats().liveBuffers;
  try {
    const result = await fit(model, {
      train: loader,
      optimizer,
      epochs,
      loss: mseLoss,
      callbacks: [stopper],
      onEpochEnd: async (_record, { model }) => {
        const state = Object.values(model.stateDict());
        weights.push(await Promise.all(state.map(async (t) => [...await t.toArray()])));
      },
    });
    const final = await Promise.all(
      Object.values(model.stateDict()).map(async (t) => [...await t.toArray()]),
    );
    optimizer.zeroGrad(); // frees the gradients
    equal(memoryStats().liveBuffers, live, "the weight copies are freed");
    return { result, stopper, weights, final };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

Deno.test("earlyStopping: stops after `patience` epochs without an improvement above minDelta", async () => {
  // minDelta 0.01: epoch 4's 3.995 does not beat 4 by more than 0.01.
  let run = await scripted([5, 4, 4.5, 3.995, 3, 2], { patience: 2, minDelta: 0.01 });
  equal(run.result.history.length, 4);
  ok(run.result.stopped);
  deepEqual([run.stopper.stoppedEpoch, run.stopper.bestEpoch, run.stopper.best], [4, 2, 4]);
  // Without minDelta, 3.995 improves: no stop until epochs 7 and 8 fail to beat epoch 6.
  run = await scripted([5, 4, 4.5, 3.995, 3, 2, 2, 2.5, 1], { patience: 2 });
  deepEqual([run.result.history.length, run.stopper.stoppedEpoch, run.stopper.bestEpoch], [
    8,
    8,
    6,
  ]);
  // patience 0: the first epoch without improvement; NaN never improves.
  run = await scripted([5, NaN, 1], {});
  deepEqual([run.result.history.length, run.stopper.stoppedEpoch], [2, 2]);
  // mode max; the wait resets at every improvement; running out of epochs is not a stop.
  run = await scripted([0.1, 0.05, 0.2, 0.1, 0.3, 0.3], { mode: "max", patience: 2 });
  deepEqual([run.result.stopped, run.result.history.length, run.stopper.stoppedEpoch], [
    false,
    6,
    0,
  ]);
  deepEqual([run.stopper.bestEpoch, run.stopper.wait], [5, 1]);
});

Deno.test("earlyStopping: restoreBestWeights puts the best epoch's weights back exactly", async () => {
  // Stopped early: the weights after epoch 2.
  let run = await scripted([5, 4, 4.5, 4.2, 1], { patience: 2, restoreBestWeights: true });
  equal(run.result.history.length, 4);
  ok(run.stopper.restored);
  deepEqual(run.final, run.weights[1], "parameters and running statistics of epoch 2");
  ok(JSON.stringify(run.final) !== JSON.stringify(run.weights[3]), "the test can tell them apart");
  // Not stopped: still the best epoch's weights at the end (Keras 3).
  run = await scripted([5, 3, 4, 4.5], { patience: 3, restoreBestWeights: true });
  equal(run.result.stopped, false);
  deepEqual(run.final, run.weights[1]);
  // The best epoch is the last: nothing to restore. Without the option: the last weights.
  run = await scripted([5, 4, 3], { restoreBestWeights: true });
  equal(run.stopper.restored, false);
  deepEqual(run.final, run.weights[2]);
  run = await scripted([5, 4, 4.5, 4.2], { patience: 2 });
  deepEqual(run.final, run.weights[3]);
});

Deno.test("earlyStopping: a missing monitor fails naming it, and frees the copies", async () => {
  const model = new Affine([1], [0], 1);
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const train = new FixedLoader(new Float32Array(4), new Float32Array(4), 1, 1, 2);
  const live = memoryStats().liveBuffers;
  try {
    await rejects(
      fit(model, {
        train,
        optimizer,
        epochs: 2,
        loss: mseLoss,
        callbacks: [earlyStopping({ restoreBestWeights: true })],
      }),
      /earlyStopping: epoch 1's record has no number "valLoss" \(got null: is there a validation loader\?\); monitor one of: epoch, lr, trainLoss/,
    );
    optimizer.zeroGrad(); // frees the gradients
    equal(memoryStats().liveBuffers, live, "the weight copies are freed");
    await rejects(
      fit(model, {
        train,
        optimizer,
        epochs: 1,
        loss: mseLoss,
        metrics: { mae },
        callbacks: [earlyStopping({ monitor: "trainMetrics.mse" })],
      }),
      /no number "trainMetrics.mse" \(got undefined\); monitor one of: .*trainMetrics\.mae/,
    );
    // A metric by name works.
    const stopper = earlyStopping({ monitor: "trainMetrics.mae", patience: 5 });
    await fit(model, {
      train,
      optimizer,
      epochs: 1,
      loss: mseLoss,
      metrics: { mae },
      callbacks: [stopper],
    });
    equal(stopper.bestEpoch, 1);
  } finally {
    optimizer.dispose();
    model.dispose();
  }
  throws(
    () => earlyStopping({ patience: -1 }),
    /earlyStopping: patience must be an integer >= 0, got -1/,
  );
  throws(
    () => earlyStopping({ mode: "auto" as "min" }),
    /earlyStopping: mode must be "min" or "max", got auto/,
  );
});
