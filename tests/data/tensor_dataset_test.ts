/**
 * `TensorDataset` and `DataLoader` over any tensors: every dtype and shape gathered on the GPU
 * equals the CPU reference (f32 features [N, 7], RGB images [N, 3, 8, 8] as u8, scaled u8 and
 * f32, f32 targets [N, 2], i32 targets, odd row lengths); the shuffles are per-seed permutations
 * with every sample once per epoch; `dropLast` and the last partial batch; one upload per epoch
 * and no per-batch CPU work; no GPU leak over epochs; `collate`; a regression MLP trained by
 * `fit` with an MSE loss learns, and a two-input model gets both inputs; bad input is refused
 * with messages naming the tensor.
 */

import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { DataLoader } from "../../data/loader.ts";
import { TensorDataset } from "../../data/tensor_dataset.ts";
import { gpu } from "../../nn/gpu/device.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { streamStats, sync } from "../../nn/gpu/stream.ts";
import { manualSeed } from "../../nn/modules/init.ts";
import { ReLU, Sequential } from "../../nn/modules/layers.ts";
import { Linear } from "../../nn/modules/linear.ts";
import { Module } from "../../nn/modules/module.ts";
import { add, mul, sub } from "../../nn/ops/elementwise.ts";
import { mean } from "../../nn/ops/reduce.ts";
import { Rng } from "../../nn/random.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { fit, type LossFunction } from "../../train/fit.ts";
import { Adam } from "../../train/optim/adam.ts";
import { assertClose, gpuReady } from "../testing.ts";
import { gatherRowsReference } from "./reference.ts";

await gpuReady();

/** Samples of the sets: odd, so that most batch sizes leave a partial batch. */
const N = 23;

/** `n` seeded floats in [-1, 1). */
function floats(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

/** `n` seeded bytes, the first two 255 and 0. */
function bytes(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const out = Uint8Array.from({ length: n }, () => rng.int(256));
  out[0] = 255;
  out[1] = 0;
  return out;
}

/** One tensor of the mixed set, with what its batches must be. */
interface Column {
  name: string;
  data: Float32Array | Int32Array | Uint8Array;
  sampleShape: number[];
  scale?: number;
  dtype: "f32" | "i32" | "u8";
}

function mixedColumns(count: number): Column[] {
  const rgb = bytes(count * 3 * 8 * 8, 1);
  return [
    { name: "features [N, 7] f32", data: floats(count * 7, 2), sampleShape: [7], dtype: "f32" },
    { name: "RGB [N, 3, 8, 8] u8", data: rgb, sampleShape: [3, 8, 8], dtype: "u8" },
    {
      name: "RGB [N, 3, 8, 8] u8 / 255",
      data: rgb,
      sampleShape: [3, 8, 8],
      scale: 1 / 255,
      dtype: "f32",
    },
    {
      name: "RGB [N, 3, 8, 8] f32",
      data: floats(count * 192, 3),
      sampleShape: [3, 8, 8],
      dtype: "f32",
    },
    { name: "bytes [N, 5] u8", data: bytes(count * 5, 4), sampleShape: [5], dtype: "u8" },
    {
      name: "bytes [N, 3] u8 * 0.5",
      data: bytes(count * 3, 5),
      sampleShape: [3],
      scale: 0.5,
      dtype: "f32",
    },
    {
      name: "i32 [N, 3] * -2",
      data: Int32Array.from({ length: count * 3 }, (_, i) => i * 7 - 40),
      sampleShape: [3],
      scale: -2,
      dtype: "f32",
    },
    {
      name: "bytes [N, 4] u8 * 0.5",
      data: bytes(count * 4, 14),
      sampleShape: [4],
      scale: 0.5,
      dtype: "f32",
    },
    {
      name: "i32 [N, 2, 2]",
      data: Int32Array.from({ length: count * 4 }, (_, i) => (i * 37) % 101 - 50),
      sampleShape: [2, 2],
      dtype: "i32",
    },
    {
      name: "f32 [N, 4] * 3",
      data: floats(count * 4, 15),
      sampleShape: [4],
      scale: 3,
      dtype: "f32",
    },
    {
      name: "f32 [N, 1, 3] * 3",
      data: floats(count * 3, 16),
      sampleShape: [1, 3],
      scale: 3,
      dtype: "f32",
    },
    { name: "targets [N, 2] f32", data: floats(count * 2, 6), sampleShape: [2], dtype: "f32" },
    {
      name: "classes [N] i32",
      data: Int32Array.from({ length: count }, (_, i) => (i * 5) % 10),
      sampleShape: [],
      dtype: "i32",
    },
  ];
}

function datasetOf(columns: Column[], count: number): TensorDataset {
  return new TensorDataset(
    ...columns.map((c) => ({ data: c.data, shape: [count, ...c.sampleShape], scale: c.scale })),
  );
}

/** Checks every batch of `epoch` against the CPU reference; returns the batch sizes. */
async function checkEpoch(
  columns: Column[],
  loader: DataLoader,
  epoch: number,
): Promise<number[]> {
  const order = loader.epochOrder(epoch);
  const sizes: number[] = [];
  for (const batch of loader.batches(epoch)) {
    equal(batch.length, columns.length);
    const range = { start: batch.index * loader.batchSize, size: batch.size };
    for (const [i, column] of columns.entries()) {
      const t = batch[i];
      const what = `${column.name}, batch ${batch.index}`;
      deepEqual(t.shape, [batch.size, ...column.sampleShape], what);
      equal(t.dtype, column.dtype, what);
      const row = column.sampleShape.reduce((a, b) => a * b, 1);
      const expected = gatherRowsReference(column.data, row, order, range, column.scale);
      if (column.dtype === "f32") {
        assertClose(await t.toArray(), expected, { atol: 0, rtol: 1e-6 }, what);
      } else {
        deepEqual(Array.from(await t.toTypedArray()), Array.from(expected), what);
      }
    }
    // The default collate: the last tensor is the target, the others the inputs.
    equal(batch.x, batch[0]);
    equal(batch.y, batch[columns.length - 1]);
    deepEqual(batch.inputs, batch.slice(0, -1));
    sizes.push(batch.size);
  }
  equal(sizes.length, loader.length);
  return sizes;
}

Deno.test("every dtype and shape is gathered as the CPU reference: batch 1, odd and partial batches, a batch larger than the set", async () => {
  const columns = mixedColumns(N);
  const dataset = datasetOf(columns, N);
  equal(dataset.count, N);
  equal(dataset.length, N);
  for (const batchSize of [1, 5, N, 64]) {
    const loader = new DataLoader(dataset, { batchSize, seed: 3 });
    const sizes = await checkEpoch(columns, loader, 0);
    const full = Math.floor(N / batchSize);
    deepEqual(sizes, [...Array(full).fill(batchSize), ...(N % batchSize ? [N % batchSize] : [])]);
    loader.dispose();
  }
  const plain = new DataLoader(dataset, { batchSize: 8, shuffle: false });
  await checkEpoch(columns, plain, 4);
  plain.dispose();
  dataset.dispose();
  ok(dataset.isDisposed);
});

Deno.test("a dataset of one sample, and a one-tensor dataset (input and target alike)", async () => {
  const single = new TensorDataset({ data: new Float32Array([1, 2, 3]), shape: [1, 3] });
  const loader = new DataLoader(single, { batchSize: 4 });
  const batches = [...loader.batches(0)].length;
  equal(batches, 1);
  for (const batch of loader.batches(1)) {
    deepEqual(batch.x.shape, [1, 3]);
    equal(batch.x, batch.y);
    deepEqual(Array.from(await batch.x.toArray()), [1, 2, 3]);
  }
  loader.dispose();
  single.dispose();
});

Deno.test("GPU tensors are used without a copy, and stay the caller's", async () => {
  const images = tensor(bytes(N * 12, 7), [N, 12], { dtype: "u8" });
  const ids = tensor(Int32Array.from({ length: N }, (_, i) => i), [N], { dtype: "i32" });
  const before = memoryStats().liveBuffers;
  const dataset = new TensorDataset({ data: images, shape: [N, 3, 2, 2], scale: 1 / 255 }, ids);
  equal(memoryStats().liveBuffers, before, "no upload: views of the caller's tensors");
  images.dispose(); // the dataset's view keeps the buffer alive
  const loader = new DataLoader(dataset, { batchSize: 6, seed: 1 });
  const order = loader.epochOrder(0);
  const source = bytes(N * 12, 7);
  for (const batch of loader.batches(0)) {
    const [x, y] = batch;
    const range = { start: batch.index * loader.batchSize, size: batch.size };
    deepEqual(x.shape, [batch.size, 3, 2, 2]);
    const expected = gatherRowsReference(source, 12, order, range, 1 / 255);
    assertClose(await x.toArray(), expected, { atol: 0, rtol: 1e-6 }, "x");
    deepEqual(
      Array.from(await y.toTypedArray()),
      Array.from(order.slice(range.start, range.start + range.size)),
    );
  }
  loader.dispose();
  dataset.dispose();
  ok(!ids.isDisposed, "the caller's tensor outlives the dataset");
  ids.dispose();
  equal(memoryStats().liveBuffers, before - 2, "both buffers freed once no one holds them");
});

Deno.test("shuffles: reproducible per seed, a permutation per epoch, every sample exactly once", async () => {
  const count = 37;
  const ids = Int32Array.from({ length: count }, (_, i) => i);
  const dataset = new TensorDataset({ data: floats(count * 3, 8), shape: [count, 3] }, ids);
  const a = new DataLoader(dataset, { batchSize: 10, seed: 11 });
  const b = new DataLoader(dataset, { batchSize: 10, seed: 11 });
  const c = new DataLoader(dataset, { batchSize: 10, seed: 12 });
  const seen: number[][] = [];
  for (const epoch of [0, 1, 2]) {
    deepEqual(a.epochOrder(epoch), b.epochOrder(epoch), "same seed, same order");
    const order: number[] = [];
    for (const batch of a.batches(epoch)) order.push(...await batch.y.toTypedArray());
    deepEqual(order, Array.from(a.epochOrder(epoch)), "the GPU gathers by the epoch's order");
    deepEqual([...order].sort((p, q) => p - q), Array.from(ids), "every sample once");
    seen.push(order);
  }
  ok(seen[0].join() !== seen[1].join() && seen[1].join() !== seen[2].join(), "epochs differ");
  ok(a.epochOrder(0).join() !== c.epochOrder(0).join(), "seeds differ");
  const again: number[] = [];
  for (const batch of b.batches(1)) again.push(...await batch.y.toTypedArray());
  deepEqual(again, seen[1], "another loader with the same seed gives the same batches");
  for (const loader of [a, b, c]) loader.dispose();
  dataset.dispose();
});

Deno.test("dropLast drops the last partial batch; without it the last batch is partial", async () => {
  const count = 30;
  const ids = Int32Array.from({ length: count }, (_, i) => i);
  const dataset = new TensorDataset(ids);
  const dropping = new DataLoader(dataset, { batchSize: 8, dropLast: true, seed: 2 });
  equal(dropping.length, 3);
  const dropped: number[] = [];
  for (const batch of dropping.batches(0)) {
    equal(batch.size, 8);
    dropped.push(...await batch.y.toTypedArray());
  }
  deepEqual(dropped, Array.from(dropping.epochOrder(0).slice(0, 24)));
  const keeping = new DataLoader(dataset, { batchSize: 8, seed: 2 });
  equal(keeping.length, 4);
  const sizes = [...keeping.batches(0)].map((b) => b.size);
  deepEqual(sizes, [8, 8, 8, 6]);
  const exact = new DataLoader(dataset, { batchSize: 10, dropLast: true });
  deepEqual([...exact.batches(0)].map((b) => b.size), [10, 10, 10]);
  for (const loader of [dropping, keeping, exact]) loader.dispose();
  dataset.dispose();
});

Deno.test("an epoch uploads its order once: no per-batch upload, no readback, one dispatch per tensor per batch", () => {
  const count = 200;
  const columns = mixedColumns(count);
  const dataset = datasetOf(columns, count);
  const loader = new DataLoader(dataset, { batchSize: 32, seed: 5 });
  for (const batch of loader.batches(0)) batch.dispose(); // warm-up: compile, pool
  const queue = gpu().device.queue;
  const writes: number[] = [];
  const original = queue.writeBuffer;
  queue.writeBuffer = function (...args: Parameters<GPUQueue["writeBuffer"]>) {
    writes.push((args[2] as ArrayBufferView).byteLength ?? 0);
    return Reflect.apply(original, queue, args);
  } as GPUQueue["writeBuffer"];
  const before = streamStats();
  let batches = 0;
  try {
    for (const batch of loader.batches(1)) {
      batch.dispose();
      batches++;
    }
  } finally {
    queue.writeBuffer = original;
  }
  const after = streamStats();
  equal(batches, 7);
  equal(after.dispatches - before.dispatches, batches * columns.length);
  equal(after.readbacks, before.readbacks);
  const large = writes.filter((n) => n > 16);
  deepEqual(large, [count * 4], "one upload per epoch: the order");
  ok(
    writes.length - large.length <= batches,
    `at most one params slot (the batch's start, shared by its gathers) per batch: ${writes}`,
  );
  loader.dispose();
  dataset.dispose();
});

Deno.test("no GPU memory leak over epochs, with collate's own tensors freed with the batch", async () => {
  const count = 50;
  const dataset = new TensorDataset(
    { data: floats(count * 6, 9), shape: [count, 2, 3] },
    { data: floats(count, 10), shape: [count] },
  );
  const loader = new DataLoader(dataset, {
    batchSize: 16,
    seed: 1,
    collate: ([x, y]) => ({ inputs: x.reshape([-1, 6]), target: mul(y, 2) }),
  });
  const live: number[] = [];
  const created: number[] = [];
  for (let epoch = 0; epoch < 4; epoch++) {
    for (const batch of loader.batches(epoch)) {
      deepEqual(batch.x.shape, [batch.size, 6]);
      deepEqual(batch.y.shape, [batch.size]);
      deepEqual(batch[0].shape, [batch.size, 2, 3], "the array keeps the gathered tensors");
    }
    await sync();
    live.push(memoryStats().liveBuffers);
    created.push(memoryStats().buffersCreated);
  }
  deepEqual(live.slice(1), [live[0], live[0], live[0]], `live buffers per epoch: ${live}`);
  deepEqual(created.slice(2), [created[1], created[1]], `buffers created: ${created}`);
  const kept = new DataLoader(dataset, { batchSize: 16, keepBatches: true, seed: 1 });
  const all = [...kept.batches(0)];
  ok(all.every((b) => !b.x.isDisposed), "keepBatches: the caller's");
  for (const batch of all) batch.dispose();
  ok(all.every((b) => b.x.isDisposed && b.y.isDisposed));
  kept.dispose();
  loader.dispose();
  dataset.dispose();
});

const mse: LossFunction = (output, target) => {
  const d = sub(output, target);
  return mean(mul(d, d));
};

Deno.test("fit: a regression MLP trained from a TensorDataset with an MSE loss learns", async () => {
  manualSeed(0);
  const count = 96;
  const x = floats(count * 3, 11);
  // Two targets, one nonlinear: y0 = x0 - 2 x1 + 0.5, y1 = |x2|.
  const y = new Float32Array(count * 2);
  for (let n = 0; n < count; n++) {
    y[2 * n] = x[3 * n] - 2 * x[3 * n + 1] + 0.5;
    y[2 * n + 1] = Math.abs(x[3 * n + 2]);
  }
  const dataset = new TensorDataset({ data: x, shape: [count, 3] }, {
    data: y,
    shape: [count, 2],
  });
  const train = new DataLoader(dataset, { batchSize: 16, seed: 4 });
  const model = new Sequential(new Linear(3, 16), new ReLU(), new Linear(16, 2));
  const { history } = await fit(model, {
    train,
    optimizer: new Adam(model.parameters(), { lr: 0.02 }),
    epochs: 40,
    loss: mse,
  });
  const first = history[0].trainLoss, last = history.at(-1)!.trainLoss;
  ok(Number.isNaN(history[0].trainAccuracy), "no accuracy for a regression");
  ok(last < 0.02 && last < first / 10, `MSE ${first} -> ${last}`);
  model.dispose();
  train.dispose();
  dataset.dispose();
});

/** out = a·wa + b·wb: a model of two inputs. */
class TwoInputs extends Module {
  readonly a = new Linear(2, 1);
  readonly b = new Linear(3, 1);
  forward(a: Tensor, b?: Tensor): Tensor {
    if (!b) throw new Error("TwoInputs: needs two inputs");
    return add(this.a.forward(a), this.b.forward(b));
  }
}

Deno.test("fit: a dataset of several inputs feeds them all to the model (default collate)", async () => {
  manualSeed(1);
  const count = 64;
  const a = floats(count * 2, 12), b = floats(count * 3, 13);
  const y = Float32Array.from(
    { length: count },
    (_, n) => a[2 * n] - a[2 * n + 1] + 2 * b[3 * n] + b[3 * n + 2] - 0.25,
  );
  const dataset = new TensorDataset(
    { data: a, shape: [count, 2] },
    { data: b, shape: [count, 3] },
    { data: y, shape: [count, 1] },
  );
  const train = new DataLoader(dataset, { batchSize: 16, seed: 0 });
  const model = new TwoInputs();
  const { history } = await fit(model, {
    train,
    optimizer: new Adam(model.parameters(), { lr: 0.05 }),
    epochs: 40,
    loss: mse,
  });
  const last = history.at(-1)!.trainLoss;
  ok(
    last < 1e-3,
    `a linear target of both inputs is learnt: MSE ${history[0].trainLoss} -> ${last}`,
  );
  model.dispose();
  train.dispose();
  dataset.dispose();
});

Deno.test("bad input: messages name the tensor and what was given", () => {
  throws(() => new TensorDataset(), /TensorDataset: needs at least one tensor/);
  const live = memoryStats().liveBuffers;
  throws(
    () => new TensorDataset(new Float32Array(10), { data: new Int32Array(18), shape: [9, 2] }),
    /TensorDataset: tensor 1 has 9 samples \(shape \[9, 2\]\) but tensor 0 has 10 \(shape \[10\]\)/,
  );
  equal(memoryStats().liveBuffers, live, "what was uploaded before the error is freed");
  throws(
    () => new TensorDataset(new Float32Array(4), new Float64Array(4) as unknown as Float32Array),
    /TensorDataset: tensor 1 is a Float64Array; expected a Float32Array \(f32\), Int32Array/,
  );
  throws(
    () => new TensorDataset([1, 2, 3] as unknown as Float32Array),
    /TensorDataset: tensor 0 is an array; expected/,
  );
  throws(
    () => new TensorDataset({ data: new Float32Array(10), shape: [3, 3] }),
    /TensorDataset: tensor 0: shape \[3, 3\] \(9 elements\) does not fit its 10 values/,
  );
  throws(
    () => new TensorDataset({ data: new Uint8Array(4), scale: NaN }),
    /TensorDataset: tensor 0: scale must be a finite number, got NaN/,
  );
  const scalar = tensor([1], []);
  throws(() => new TensorDataset(scalar), /TensorDataset: tensor 0 has shape \[\]; every tensor/);
  const used = tensor([1, 2], [2]);
  used.dispose();
  throws(() => new TensorDataset(used), /TensorDataset: tensor 0 was disposed/);
  const dataset = new TensorDataset(new Float32Array(4));
  throws(
    () => new DataLoader({} as TensorDataset, { batchSize: 2 }),
    /DataLoader: dataset must be a TensorDataset \(or a GpuDataset\), got Object/,
  );
  throws(() => new DataLoader(dataset, { batchSize: 1.5 }), /batchSize 1.5 is not a positive/);
  const bad = new DataLoader(dataset, {
    batchSize: 2,
    collate: (([x]: Tensor[]) => ({ input: x })) as unknown as () => never,
  });
  throws(
    () => [...bad.batches(0)],
    /DataLoader: collate must return \{ inputs: Tensor \| Tensor\[\] \(at least one\), target: Tensor \}, got \{ input \}/,
  );
  bad.dispose();
  dataset.dispose();
  throws(() => new DataLoader(dataset, { batchSize: 2 }), /DataLoader: the dataset was disposed/);
  equal(memoryStats().liveBuffers, live + 1, "only the scalar is left");
  scalar.dispose();
});
