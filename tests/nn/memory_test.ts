// GPU memory without tidy: a module call frees the intermediates no autograd node needs, the
// graph frees the rest on backward or when its output is disposed, and the README's plain loops
// (training and test) hold live and texture bytes flat. trimPool() frees textures too.
import { deepEqual, equal, throws } from "node:assert/strict";
import { memoryStats, trimPool } from "../../nn/gpu/buffer_pool.ts";
import { noGrad } from "../../nn/autograd.ts";
import { setKernelPolicy } from "../../nn/gpu/policy.ts";
import { type Classifier, cnn, cnnBn, mlp, tuningCnn } from "../../nn/models.ts";
import { Linear } from "../../nn/modules/linear.ts";
import { Module } from "../../nn/modules/module.ts";
import { ReLU, Sequential } from "../../nn/modules/layers.ts";
import { add, relu } from "../../nn/ops/elementwise.ts";
import { correctCount, sum } from "../../nn/ops/reduce.ts";
import { nllLoss } from "../../nn/ops/softmax.ts";
import { Rng } from "../../nn/random.ts";
import { tidy } from "../../nn/scope.ts";
import { streamStats, sync } from "../../nn/gpu/stream.ts";
import { randUniform, type Tensor, tensor } from "../../nn/tensor.ts";
import { Adam } from "../../train/optim/adam.ts";
import { DataLoader, GpuDataset } from "../../data/loader.ts";
import type { ImageSet } from "../../data/dataset.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

/** Live buffers, live bytes and texture bytes, after the GPU caught up. */
async function footprint(): Promise<[number, number, number]> {
  await sync();
  const stats = memoryStats();
  return [stats.liveBuffers, stats.liveBytes, stats.textureBytes];
}

/** Asserts equal footprints, printing both. */
function assertSame(after: number[], before: number[], what: string): void {
  deepEqual(
    after,
    before,
    `${what}: ${JSON.stringify(before)} before, ${JSON.stringify(after)} after`,
  );
}

function imageSet(count: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: count * 28 * 28 }, () => rng.int(256));
  const labels = Uint8Array.from({ length: count }, () => rng.int(10));
  return { images, labels, count, rows: 28, cols: 28 };
}

function batch(n: number, seed: number): { x: Tensor; y: Tensor } {
  const x = randUniform([n, 1, 28, 28], { seed });
  const y = tensor(Int32Array.from({ length: n }, (_, i) => (i + seed) % 10), [n], {
    dtype: "i32",
  });
  return { x, y };
}

Deno.test("an eval forward of cnn-bn without tidy leaves nothing behind once its output is disposed", async () => {
  const model = cnnBn({ rng: new Rng(1) }).eval();
  const { x, y } = batch(16, 2);
  for (const grad of [true, false]) {
    const pass = () => model.forward(x).dispose();
    const run = grad ? pass : () => noGrad(pass);
    for (let i = 0; i < 3; i++) run(); // the pool's order of reuse settles in two passes
    const before = await footprint();
    for (let i = 0; i < 20; i++) run();
    assertSame(await footprint(), before, `grad ${grad}: [buffers, live bytes, texture bytes]`);
  }
  x.dispose();
  y.dispose();
  model.dispose();
});

Deno.test("the README's test loop (noGrad forward, count, read, dispose) holds live and texture bytes flat", async () => {
  const dataset = new GpuDataset(imageSet(640, 5));
  const loader = new DataLoader(dataset, { batchSize: 64, shuffle: false });
  const model = cnnBn({ rng: new Rng(3) });
  model.eval();
  const seen: [number, number, number][] = [];
  for (let epoch = 0; epoch < 4; epoch++) {
    let correct = 0;
    for (const { x, y } of loader.batches(epoch)) {
      const output = noGrad(() => model.forward(x));
      const hits = correctCount(output, y);
      correct += await hits.item();
      hits.dispose();
      output.dispose();
    }
    equal(correct >= 0 && correct <= 640, true);
    seen.push(await footprint());
  }
  deepEqual(seen.slice(1), [seen[0], seen[0], seen[0]], `per pass: ${JSON.stringify(seen)}`);
  model.dispose();
  loader.dispose();
  dataset.dispose();
});

const studyModels: [string, () => Classifier][] = [
  ["mlp", () => mlp({ rng: new Rng(4) })],
  ["cnn", () => cnn({ rng: new Rng(4) })],
  ["cnnBn", () => cnnBn({ rng: new Rng(4) })],
  ["tuningCnn", () => tuningCnn({ rng: new Rng(4), l1: 32 })],
];

for (const [name, make] of studyModels) {
  Deno.test(`${name}: 100 training steps hold memory flat with and without tidy, with no readback`, async () => {
    const model = make();
    const optimizer = new Adam(model.parameters(), { lr: 0.001 });
    const { x, y } = batch(8, 5);
    const plain = () => { // the README's training loop
      optimizer.zeroGrad();
      const output = model.forward(x);
      const loss = nllLoss(output, y);
      loss.backward();
      optimizer.step();
      loss.dispose();
      output.dispose();
    };
    const tidied = () =>
      tidy(() => {
        optimizer.zeroGrad();
        nllLoss(model.forward(x), y).backward();
        optimizer.step();
      });
    for (const [style, step] of [["plain", plain], ["tidy", tidied]] as const) {
      for (let i = 0; i < 3; i++) step();
      const before = await footprint();
      const created = memoryStats().buffersCreated;
      const reads = streamStats().readbacks;
      for (let i = 0; i < 100; i++) step();
      assertSame(await footprint(), before, `${style}: [buffers, live bytes, texture bytes]`);
      equal(memoryStats().buffersCreated, created, `${style}: no GPUBuffer created`);
      equal(streamStats().readbacks, reads, `${style}: no readback inside the steps`);
    }
    optimizer.zeroGrad();
    optimizer.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  });
}

Deno.test("a training forward whose output is disposed without backward frees its graph", async () => {
  const model = cnnBn({ rng: new Rng(6) });
  const { x, y } = batch(8, 7);
  const before = await footprint();
  for (let i = 0; i < 5; i++) {
    const out = model.forward(x);
    const loss = nllLoss(out, y);
    loss.dispose();
    out.dispose();
  }
  assertSame((await footprint()).slice(0, 2), before.slice(0, 2), "[buffers, live bytes]");
  model.dispose();
  x.dispose();
  y.dispose();
});

/** A residual block written by hand: a user forward that mixes modules and ops. */
class Residual extends Module {
  readonly inner = new Sequential(new Linear(6, 6, { rng: new Rng(8) }), new ReLU());
  readonly extra = new Linear(6, 6, { rng: new Rng(9) });
  forward(x: Tensor): Tensor {
    const h = relu(x);
    const kept = tidy(() => this.extra.forward(h));
    return add(this.inner.forward(h), kept);
  }
}

/** Calls one module twice and adds the results: weights shared, gradients accumulate. */
class Twice extends Module {
  constructor(readonly net: Module) {
    super();
  }
  forward(x: Tensor): Tensor {
    return add(this.net.forward(x), this.net.forward(x));
  }
}

Deno.test("nested modules, a user forward mixing modules and ops, and tidy inside: gradients as with tidy outside", async () => {
  const x = randUniform([4, 6], { seed: 10, low: -1, high: 1 });
  const make = () =>
    new Twice(new Sequential(new Residual(), new Linear(6, 3, { rng: new Rng(11) })));
  const grads = async (model: Module) =>
    await Promise.all(model.parameters().map((p) => p.grad!.toArray()));

  const reference = make();
  tidy(() => {
    const total = reference.forward(x);
    total.backward({ grad: randUniform(total.shape, { seed: 12 }) });
  });
  const expected = await grads(reference);

  const model = make();
  const before = await footprint();
  const total = model.forward(x);
  const seed = randUniform(total.shape, { seed: 12 });
  total.backward({ grad: seed });
  total.dispose();
  seed.dispose();
  deepEqual(await grads(model), expected);
  for (const p of model.parameters()) {
    p.grad!.dispose();
    p.grad = null;
  }
  assertSame((await footprint()).slice(0, 2), before.slice(0, 2), "[buffers, live bytes]");
  reference.dispose();
  model.dispose();
  x.dispose();
});

Deno.test("trimPool() also frees the texture mirrors of the buffers it destroys", async () => {
  await sync();
  trimPool();
  const baseline = memoryStats();
  const model = cnnBn({ rng: new Rng(13) }).eval();
  const { x, y } = batch(16, 14);
  // Only the software policy reads inputs through texture mirrors.
  setKernelPolicy("software");
  try {
    noGrad(() => model.forward(x).dispose());
  } finally {
    setKernelPolicy(null);
  }
  await sync();
  const used = memoryStats().textureBytes;
  equal(used > baseline.textureBytes, true, `the forward read textures (${used} bytes)`);
  model.dispose();
  x.dispose();
  y.dispose();
  await sync();
  trimPool();
  const after = memoryStats();
  equal(after.liveBytes, baseline.liveBytes, "live bytes back to the baseline");
  equal(after.pooledBytes, 0, "nothing pooled");
  equal(after.textureBytes, baseline.textureBytes, `texture bytes (${used} while in use)`);
});

Deno.test("backward with retainGraph keeps a module call's intermediates for a second backward; disposing the output frees them", async () => {
  const model = new Sequential(new Linear(5, 4, { rng: new Rng(15) }), new ReLU());
  const x = randUniform([3, 5], { seed: 16, low: -1, high: 1 });
  const before = await footprint();
  const output = model.forward(x);
  const total = sum(output);
  total.backward({ retainGraph: true });
  const once = await model.parameters()[0].grad!.toArray();
  total.backward();
  const twice = await model.parameters()[0].grad!.toArray();
  deepEqual(twice, once.map((g) => g * 2));
  total.dispose();
  output.dispose();
  for (const p of model.parameters()) {
    p.grad!.dispose();
    p.grad = null;
  }
  assertSame((await footprint()).slice(0, 2), before.slice(0, 2), "[buffers, live bytes]");
  model.dispose();
  x.dispose();
});

/** A module whose forward fails half-way, after creating tensors. */
class FailsHalfWay extends Module {
  readonly fc = new Linear(5, 4, { rng: new Rng(17) });
  forward(x: Tensor): Tensor {
    relu(this.fc.forward(x));
    throw new Error("half-way");
  }
}

Deno.test("a forward that throws frees what it created", async () => {
  const model = new FailsHalfWay();
  const x = randUniform([3, 5], { seed: 18 });
  const before = await footprint();
  throws(() => model.forward(x), /half-way/);
  assertSame((await footprint()).slice(0, 2), before.slice(0, 2), "[buffers, live bytes]");
  model.dispose();
  x.dispose();
});

/** A forward that awaits (outside PyTorch's model, but it must not lose its tensors). */
class AwaitsInForward extends Module {
  readonly fc = new Linear(5, 4, { rng: new Rng(19) });
  forward(x: Tensor): Tensor {
    return this.later(x) as unknown as Tensor;
  }
  async later(x: Tensor): Promise<Tensor> {
    const h = this.fc.forward(x);
    await sync();
    return relu(h);
  }
}

Deno.test("an async forward keeps what it created before its first await", async () => {
  const model = new AwaitsInForward();
  const x = randUniform([3, 5], { seed: 20 });
  const output = await (model.forward(x) as unknown as Promise<Tensor>);
  equal((await output.toArray()).length, 12);
  output.dispose();
  model.dispose();
  x.dispose();
});

Deno.test("trimPool() while commands are pending (not yet submitted) leaves their results right", async () => {
  const model = cnnBn({ rng: new Rng(21) }).eval();
  const x = randUniform([4, 1, 28, 28], { seed: 22 });
  const expected = noGrad(() => model.forward(x));
  const values = await expected.toArray();
  const output = noGrad(() => model.forward(x)); // its intermediates go back to the pool
  trimPool();
  deepEqual(await output.toArray(), values);
  expected.dispose();
  output.dispose();
  model.dispose();
  x.dispose();
});
