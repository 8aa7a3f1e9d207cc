/**
 * The training loop: it learns, its GPU-accumulated loss and accuracy equal per-batch readbacks,
 * it reads back once per epoch (plus paced reads), GPU memory stays flat across epochs, NaN stops
 * it with the epoch and batch, Ctrl-C (an abort signal) keeps the finished epochs, evaluate's
 * confusion matrix agrees with its accuracy, and checkpoints resume exactly.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import type { ImageSet } from "../../data/dataset.ts";
import { DataLoader, GpuDataset } from "../../data/loader.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { type Classifier, createModel, type ModelName } from "../../nn/models.ts";
import { nllLoss } from "../../nn/ops/softmax.ts";
import { Rng } from "../../nn/random.ts";
import { noGrad } from "../../nn/autograd.ts";
import { tidy } from "../../nn/scope.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { Module } from "../../nn/modules/module.ts";
import { linear } from "../../nn/ops/matmul.ts";
import { scale } from "../../nn/ops/elementwise.ts";
import { logSoftmax } from "../../nn/ops/softmax.ts";
import { SGD } from "../../train/optim/sgd.ts";
import {
  loadCheckpoint,
  loadWeights,
  readTensors,
  restoreCheckpoint,
  saveCheckpoint,
  saveWeights,
} from "../../train/checkpoint.ts";
import { evaluate, fit, NonFiniteLossError, trainEpoch } from "../../train/fit.ts";
import { historyToCsv } from "../../train/history.ts";
import { StepLR } from "../../train/lr_scheduler.ts";
import { MetricsAccumulator } from "../../train/metrics_accumulator.ts";
import { Adam } from "../../train/optim/adam.ts";
import { ReadPacer } from "../../train/read_pacer.ts";
import { blobImages } from "../synthetic.ts";
import { assertClose, gpuReady } from "../testing.ts";

await gpuReady();

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

const train = new GpuDataset(blobSet(320, 1));
const val = new GpuDataset(blobSet(150, 2));

function setup(name: ModelName = "mlp", lr = 0.01, seed = 0) {
  const model = createModel(name, { rng: new Rng(seed) });
  const optimizer = new Adam(model.parameters(), { lr });
  const loader = new DataLoader(train, { batchSize: 64, seed });
  const valLoader = new DataLoader(val, { batchSize: 64, shuffle: false });
  return {
    model,
    optimizer,
    loader,
    valLoader,
    dispose() {
      loader.dispose();
      valLoader.dispose();
      optimizer.dispose();
      model.dispose();
    },
  };
}

Deno.test("fit learns, records every epoch, and steps the LR schedule", async () => {
  const s = setup("mlp", 0.01);
  const scheduler = new StepLR(s.optimizer, { stepSize: 2, gamma: 0.5 });
  const seen: number[] = [];
  try {
    const result = await fit(s.model, {
      train: s.loader,
      val: s.valLoader,
      optimizer: s.optimizer,
      scheduler,
      epochs: 3,
      onEpochEnd: (record) => void seen.push(record.epoch),
    });
    equal(result.interrupted, false);
    deepEqual(seen, [1, 2, 3]);
    deepEqual(result.history.map((r) => r.lr), [0.01, 0.01, 0.005]);
    const last = result.history[2];
    ok(last.trainLoss < result.history[0].trainLoss, "training loss goes down");
    ok(last.valAccuracy! > 0.9, `validation accuracy ${last.valAccuracy}`);
    for (const r of result.history) {
      equal(r.trainImages, 320);
      ok(r.trainSeconds > 0 && r.seconds >= r.trainSeconds && r.imagesPerSecond > 0);
    }
    const csv = historyToCsv(result.history).trim().split("\n");
    equal(csv.length, 4);
    equal(csv[0].split(",")[0], "epoch");
  } finally {
    s.dispose();
  }
});

Deno.test("the GPU sums equal per-batch readbacks (loss and correct count)", async () => {
  const model = createModel("cnn", { rng: new Rng(3) });
  const loader = new DataLoader(val, { batchSize: 64, shuffle: false });
  try {
    let lossSum = 0, correct = 0;
    for (const batch of loader.batches(0)) {
      const [loss, logp] = tidy(() =>
        noGrad(() => {
          const out = model.forward(batch.x);
          return [nllLoss(out, batch.y), out];
        })
      );
      const l = await loss.item(), p = await logp.toArray(), y = await batch.y.toTypedArray();
      lossSum += l * batch.size;
      for (let i = 0; i < batch.size; i++) {
        const row = p.subarray(i * 10, i * 10 + 10);
        if (row.indexOf(Math.max(...row)) === y[i]) correct++;
      }
      loss.dispose();
      logp.dispose();
      batch.dispose();
    }
    model.train();
    const result = await evaluate(model, loader, { confusion: true });
    equal(model.training, true, "evaluate restores training mode");
    equal(result.samples, 150);
    assertClose([result.loss], [lossSum / 150], { rtol: 1e-5, atol: 1e-6 });
    equal(result.accuracy, correct / 150);
    const matrix = result.confusion!;
    equal(matrix.flat().reduce((a, b) => a + b, 0), 150);
    equal(matrix.reduce((sum, row, i) => sum + row[i], 0), correct);
  } finally {
    loader.dispose();
    model.dispose();
  }
});

Deno.test("reads back once per epoch without a progress pacer, and GPU memory stays flat", async () => {
  const s = setup("cnn-bn", 0.01);
  const live: number[] = [];
  const readbacks: number[] = [];
  let before = streamStats().readbacks;
  try {
    const result = await fit(s.model, {
      train: s.loader,
      val: s.valLoader,
      optimizer: s.optimizer,
      epochs: 4,
      pacer: new ReadPacer({ initialTick: 1e9, maxTick: 1e9, targetSeconds: 1e9 }),
      onEpochEnd: () => {
        live.push(memoryStats().liveBytes);
        const now = streamStats().readbacks;
        readbacks.push(now - before);
        before = now;
      },
    });
    equal(result.history.length, 4);
    deepEqual(readbacks, [2, 2, 2, 2], "one read for training, one for validation, per epoch");
    equal(live[1], live[2], `live bytes after epochs 2-4: ${live.join(", ")}`);
    equal(live[2], live[3], `live bytes after epochs 2-4: ${live.join(", ")}`);
  } finally {
    s.dispose();
  }
});

Deno.test("paced reads: fewer than one per step, and the progress numbers add up", async () => {
  const s = setup("mlp", 0.01);
  const steps: number[] = [];
  const before = streamStats().readbacks;
  try {
    const result = await trainEpoch(s.model, {
      loader: s.loader,
      optimizer: s.optimizer,
      epoch: 1,
      pacer: new ReadPacer({ initialTick: 2, maxTick: 2 }),
      onStep: (p) => {
        steps.push(p.step);
        equal(p.steps, 5);
        equal(p.images, p.step * 64);
        ok(Number.isFinite(p.loss) && p.accuracy >= 0 && p.accuracy <= 1);
      },
    });
    // Reads are encoded after steps 2 and 4; the one after step 2 is awaited when step 4's is made.
    deepEqual(steps, [2]);
    equal(streamStats().readbacks - before, 3);
    equal(result.images, 320);
    equal(result.steps, 5);
  } finally {
    s.dispose();
  }
});

/** NaN into the last layer's bias. */
function poison(model: Classifier): void {
  const [name, weight] = model.namedParameters().at(-1)!;
  const values = new Float32Array(weight.size).fill(NaN);
  model.loadStateDict({ ...model.stateDict(), [name]: { shape: weight.shape, data: values } });
}

Deno.test("a NaN loss stops fit with the epoch and batch, keeping the finished epochs", async () => {
  const s = setup("mlp", 0.01);
  try {
    const error = await fit(s.model, {
      train: s.loader,
      val: s.valLoader,
      optimizer: s.optimizer,
      epochs: 5,
      onEpochEnd: (record) => {
        if (record.epoch === 2) poison(s.model);
      },
    }).then(() => null, (e) => e);
    ok(error instanceof NonFiniteLossError, String(error));
    equal(error.epoch, 3);
    equal(error.batch, 1);
    equal(error.phase, "training");
    equal(error.history.length, 2);
    ok(/NaN or infinite in epoch 3 \(batch 1\)/.test(error.message), error.message);
  } finally {
    s.dispose();
  }
  const broken = setup("mlp", 0.01);
  try {
    poison(broken.model);
    await rejects(
      evaluate(broken.model, broken.valLoader),
      /validation|evaluation loss became NaN/,
    );
  } finally {
    broken.dispose();
  }
});

Deno.test("an abort (Ctrl-C) stops fit at the next read, keeping the finished epochs", async () => {
  const s = setup("mlp", 0.01);
  const controller = new AbortController();
  try {
    const result = await fit(s.model, {
      train: s.loader,
      val: s.valLoader,
      optimizer: s.optimizer,
      epochs: 5,
      signal: controller.signal,
      pacer: new ReadPacer({ initialTick: 1, maxTick: 1 }),
      progress: {
        step: (p) => {
          if (p.epoch === 2) controller.abort();
        },
      },
    });
    equal(result.interrupted, true);
    deepEqual(result.history.map((r) => r.epoch), [1]);
  } finally {
    s.dispose();
  }
});

Deno.test("checkpoints: one readback, and training resumed from one matches an unbroken run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_fit_" });
  const unbroken = setup("cnn-bn", 0.01, 5);
  const first = setup("cnn-bn", 0.01, 5);
  const resumed = setup("cnn-bn", 0.01, 5);
  try {
    const sched = (o: Adam) => new StepLR(o, { stepSize: 1, gamma: 0.5 });
    const a = await fit(unbroken.model, {
      train: unbroken.loader,
      optimizer: unbroken.optimizer,
      scheduler: sched(unbroken.optimizer),
      epochs: 2,
    });
    const firstScheduler = sched(first.optimizer);
    const b = await fit(first.model, {
      train: first.loader,
      optimizer: first.optimizer,
      scheduler: firstScheduler,
      epochs: 1,
    });
    const path = `${dir}/checkpoint.safetensors`;
    const reads = streamStats().readbacks;
    await saveCheckpoint(path, {
      model: first.model,
      optimizer: first.optimizer,
      scheduler: firstScheduler,
    }, { epoch: 1, extra: { note: "test" } });
    equal(streamStats().readbacks - reads, 1, "a checkpoint is one readback");
    const saved = await loadCheckpoint(path);
    equal(saved.epoch, 1);
    deepEqual(saved.model, { model: "cnn-bn" });
    deepEqual(saved.extra, { note: "test" });
    const resumedScheduler = sched(resumed.optimizer);
    restoreCheckpoint(saved, {
      model: resumed.model,
      optimizer: resumed.optimizer,
      scheduler: resumedScheduler,
    });
    equal(resumed.optimizer.lr, 0.005);
    const c = await fit(resumed.model, {
      train: resumed.loader,
      optimizer: resumed.optimizer,
      scheduler: resumedScheduler,
      epochs: 2,
      history: b.history,
    });
    deepEqual(c.history.map((r) => r.epoch), [1, 2]);
    assertClose([c.history[1].trainLoss], [a.history[1].trainLoss], { rtol: 1e-6, atol: 0 });
    equal(c.history[1].trainAccuracy, a.history[1].trainAccuracy);
    const wa = await readTensors(unbroken.model.stateDict());
    const wc = await readTensors(resumed.model.stateDict());
    for (const name of Object.keys(wa)) assertClose(wc[name].data, wa[name].data, {}, name);
    // Weights files name their model and load back.
    await saveWeights(`${dir}/weights.safetensors`, resumed.model);
    const weights = await loadWeights(`${dir}/weights.safetensors`);
    deepEqual(weights.config, { model: "cnn-bn" });
    equal(weights.checkpoint, false);
    const fromCheckpoint = await loadWeights(path);
    equal(fromCheckpoint.checkpoint, true);
    equal(fromCheckpoint.epoch, 1);
  } finally {
    unbroken.dispose();
    first.dispose();
    resumed.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MetricsAccumulator flags a non-finite loss and the first bad batch", async () => {
  const sums = new MetricsAccumulator();
  try {
    const logp = tensor(new Float32Array([0, -1, -2, -3, 0, -1]), [2, 3]);
    const labels = tensor([0, 2], [2], { dtype: "i32" });
    const good = tensor([0.5], []);
    const bad = tensor([Infinity], []);
    sums.add(good, logp, labels);
    sums.add(good, logp, labels);
    sums.add(bad, logp, labels);
    sums.add(good, logp, labels);
    const s = await sums.read();
    equal(s.batches, 4);
    equal(s.samples, 8);
    equal(s.correct, 4);
    equal(s.nonFinite, 1);
    equal(s.firstNonFinite, 2);
    sums.reset();
    sums.add(good, logp, labels);
    const t = await sums.read();
    deepEqual([t.lossSum, t.batches, t.nonFinite, t.firstNonFinite], [1, 1, 0, -1]);
    for (const x of [logp, labels, good, bad]) x.dispose();
  } finally {
    sums.dispose();
  }
});

/** A loader over fixed batches: the surface of `DataLoader` that `trainEpoch` uses. */
function fixedLoader(batches: { x: Tensor; y: Tensor }[]): DataLoader {
  return {
    length: batches.length,
    *batches() {
      for (const [index, { x, y }] of batches.entries()) {
        yield { x, y, size: y.size, index, dispose() {} };
      }
    },
  } as unknown as DataLoader;
}

/** `count` blob images as a batch, the pixel `nanAt` (if given) replaced by NaN. */
function blobBatch(count: number, seed: number, nanAt?: number): { x: Tensor; y: Tensor } {
  const { images, labels } = blobImages(count, seed);
  const pixels = Float32Array.from(images);
  if (nanAt !== undefined) pixels[nanAt] = NaN;
  return {
    x: tensor(pixels, [count, 1, 28, 28]),
    y: tensor(Int32Array.from(labels), [count], { dtype: "i32" }),
  };
}

Deno.test("one NaN pixel in a CNN-BN training step stops trainEpoch at that batch", async () => {
  // Before NaN propagated, ReLU turned it into 0: the loss stayed finite while conv1's weights
  // became NaN, and the epoch ended normally.
  const model = createModel("cnn-bn", { rng: new Rng(3) });
  const optimizer = new SGD(model.parameters(), { lr: 0.01 });
  const batches = [blobBatch(16, 1), blobBatch(16, 2, 5 * 784 + 14 * 28 + 14), blobBatch(16, 3)];
  try {
    const error = await trainEpoch(model, { loader: fixedLoader(batches), optimizer, epoch: 1 })
      .then(() => null, (e) => e);
    ok(error instanceof NonFiniteLossError, String(error));
    equal(error.epoch, 1);
    equal(error.batch, 2);
    ok(/NaN or infinite in epoch 1 \(batch 2\)/.test(error.message), error.message);
  } finally {
    for (const b of batches) b.x.dispose(), b.y.dispose();
    optimizer.dispose();
    model.dispose();
  }
});

/**
 * logSoftmax(gain · linear(x)) with an extra buffer `stat`: a large gain gives large but finite
 * losses and gradients, so that a large learning rate overflows the weights while the loss of
 * the batch stays finite.
 */
class Amplified extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly stat: Tensor;
  constructor(readonly gain: number, stat: number) {
    super();
    this.weight = this.registerParameter("weight", zeros([10, 784]));
    this.bias = this.registerParameter("bias", zeros([10]));
    this.stat = this.registerBuffer("stat", tensor([0, stat, 0], [3]));
  }
  forward(x: Tensor): Tensor {
    return logSoftmax(
      scale(linear(x.reshape([x.shape[0], 784]), this.weight, this.bias), this.gain),
    );
  }
}

for (
  const [what, gain, lr, stat, pattern] of [
    [
      "parameters",
      1e30,
      1e10,
      0,
      /^the parameters \(first weight\) became NaN or infinite in epoch 1 \(batch 1\)/,
    ],
    [
      "running statistics",
      1,
      0.01,
      Infinity,
      /^the running statistics \(first stat\) became NaN or infinite in epoch 1 \(batch 1\)/,
    ],
  ] as const
) {
  Deno.test(`trainEpoch stops when the ${what} stop being finite while the loss is finite`, async () => {
    const model = new Amplified(gain, stat);
    const optimizer = new SGD(model.parameters(), { lr });
    const batch = blobBatch(8, 4);
    const accumulator = new MetricsAccumulator();
    try {
      const error = await trainEpoch(model, {
        loader: fixedLoader([batch]),
        optimizer,
        epoch: 1,
        accumulator,
      }).then(() => null, (e) => e);
      ok(error instanceof NonFiniteLossError, String(error));
      equal(error.values, what);
      ok(pattern.test(error.message), error.message);
      const sums = await accumulator.read();
      equal(sums.nonFinite, 0, "the loss was finite");
    } finally {
      batch.x.dispose(), batch.y.dispose();
      accumulator.dispose();
      optimizer.dispose();
      model.dispose();
    }
  });
}

Deno.test("update kernels flag the first non-finite parameter and its batch; padding is not tested", async () => {
  // A pooled buffer that held NaN, reused for 5 values: its 3 padding floats are still NaN.
  const stale = tensor(new Float32Array(8).fill(NaN), [8]);
  stale.dispose();
  const params = [tensor([1, 2, 3, 4, 5], [5]), tensor([1, 2, 3], [3])];
  for (const p of params) p.requiresGrad = true;
  const optimizer = new SGD(params, { lr: 0.5 });
  const sums = new MetricsAccumulator();
  const logp = tensor([0, -1], [1, 2]), labels = tensor([0], [1], { dtype: "i32" });
  const loss = tensor([1], []);
  const step = (grads: number[][]) => {
    for (const [i, p] of params.entries()) p.grad = tensor(grads[i], p.shape);
    sums.add(loss, logp, labels);
    optimizer.step();
    optimizer.zeroGrad();
  };
  try {
    optimizer.watchFinite(sums.parameterWatch());
    step([[1, 1, 1, 1, 1], [1, 1, 1]]);
    equal((await sums.read()).parameters, null, "finite values, NaN padding: no flag");
    step([[1, 1, 1, 1, 1], [0, Infinity, 0]]);
    step([[NaN, 1, 1, 1, 1], [1, 1, 1]]);
    deepEqual((await sums.read()).parameters, { batch: 1, index: 1 });
    sums.reset();
    optimizer.watchFinite(null);
    step([[NaN, 1, 1, 1, 1], [1, 1, 1]]);
    equal((await sums.read()).parameters, null, "not watched");
  } finally {
    for (const t of [...params, logp, labels, loss]) t.dispose();
    sums.dispose();
    optimizer.dispose();
  }
});

Deno.test("MetricsAccumulator.checkBuffers flags the first non-finite tensor, over several dispatches", async () => {
  const tensors = Array.from({ length: 9 }, (_, i) => tensor([i, i + 1, i + 2], [3]));
  const sums = new MetricsAccumulator();
  const logp = tensor([0, -1], [1, 2]), labels = tensor([0], [1], { dtype: "i32" });
  const loss = tensor([1], []);
  try {
    sums.add(loss, logp, labels);
    sums.checkBuffers(tensors);
    equal((await sums.read()).buffers, null);
    const bad = [tensor([0, NaN, 0], [3]), tensor([-Infinity, 0, 0], [3])];
    sums.add(loss, logp, labels);
    sums.checkBuffers([...tensors.slice(0, 8), bad[0]]); // the NaN is in the second dispatch
    sums.add(loss, logp, labels);
    sums.checkBuffers([bad[1], ...tensors]);
    deepEqual((await sums.read()).buffers, { batch: 1, index: 8 });
    sums.reset();
    sums.add(loss, logp, labels);
    sums.checkBuffers([tensors[0], bad[1], bad[0]]);
    deepEqual((await sums.read()).buffers, { batch: 0, index: 1 });
    for (const t of bad) t.dispose();
  } finally {
    for (const t of [...tensors, logp, labels, loss]) t.dispose();
    sums.dispose();
  }
});
