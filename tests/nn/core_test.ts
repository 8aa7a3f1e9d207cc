// The core: tensors, ownership (tidy/keep/dispose), the buffer pool, autograd's rules and errors,
// and a finite-difference check of a small composed network.
import assert from "node:assert/strict";
import { isGradEnabled, noGrad } from "../../nn/autograd.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { cnnBn } from "../../nn/models.ts";
import { add, mul, relu, scale } from "../../nn/ops/elementwise.ts";
import { linear } from "../../nn/ops/matmul.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { logSoftmax, nllLoss } from "../../nn/ops/softmax.ts";
import { conv2d } from "../../nn/ops/conv2d.ts";
import { maxPool2d } from "../../nn/ops/max_pool.ts";
import { manualSeed, Rng } from "../../nn/random.ts";
import { linearReference } from "./reference/matmul.ts";
import { conv2dReference } from "./reference/conv2d.ts";
import { keep, tidy } from "../../nn/scope.ts";
import { flush, streamStats, sync } from "../../nn/gpu/stream.ts";
import {
  full,
  ones,
  randNormal,
  randUniform,
  type Tensor,
  tensor,
  zeros,
} from "../../nn/tensor.ts";
import { Adam } from "../../train/optim/adam.ts";
import { assertThrows } from "../assert.ts";
import { gpuReady, gradCheck, randomArray } from "../testing.ts";

await gpuReady();

Deno.test("creation: data, zeros, ones, full, seeded random tensors, int32 labels", async () => {
  assert.deepEqual([...await tensor([1, 2, 3, 4], [2, 2]).toArray()], [1, 2, 3, 4]);
  assert.deepEqual([...await zeros([3]).toArray()], [0, 0, 0]);
  assert.deepEqual([...await ones([2]).toArray()], [1, 1]);
  assert.deepEqual([...await full([2], -2.5).toArray()], [-2.5, -2.5]);
  assert.deepEqual([...await full([2], 7, { dtype: "i32" }).toTypedArray()], [7, 7]);
  assert.equal(await tensor([42]).item(), 42);
  const a = await randUniform([1000], { low: 2, high: 3, seed: 5 }).toArray();
  assert.deepEqual(a, await randUniform([1000], { low: 2, high: 3, seed: 5 }).toArray());
  assert.ok(a.every((v) => v >= 2 && v < 3));
  const n = await randNormal([20_000], { mean: 1, std: 2, seed: 1 }).toArray();
  const mean = n.reduce((s, v) => s + v, 0) / n.length;
  const sd = Math.sqrt(n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length);
  assert.ok(Math.abs(mean - 1) < 0.05 && Math.abs(sd - 2) < 0.05, `mean ${mean}, std ${sd}`);
  const labels = tensor(Int32Array.from([3, 1, 4]), [3], { dtype: "i32" });
  assert.deepEqual([...await labels.toTypedArray()], [3, 1, 4]);
});

Deno.test("reshape and flatten share the buffer (no copy) and are differentiable", async () => {
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], { requiresGrad: true });
  const y = x.reshape([3, -1]);
  assert.deepEqual(y.shape, [3, 2]);
  assert.equal(y.buffer, x.buffer);
  sum(scale(y.flatten(0), 2)).backward();
  assert.deepEqual([...await x.grad!.toArray()], [2, 2, 2, 2, 2, 2]);
  assertThrows(() => x.reshape([4, 2]), /cannot view 6 elements of shape \[2, 3\] as \[4, 2\]/);
});

Deno.test("a disposed tensor used again says so, naming its shape", () => {
  const x = tensor([1, 2, 3], [3]);
  x.dispose();
  x.dispose(); // twice is fine
  assertThrows(() => relu(x), /f32 tensor of shape \[3\] was used after dispose\(\)/);
  assert.ok(x.isDisposed);
});

Deno.test("tidy disposes what fn made except what it returns (also inside arrays and objects) and keep()", () => {
  const before = memoryStats().liveBuffers;
  let inner: Tensor | null = null, kept: Tensor | null = null;
  const result = tidy(() => {
    inner = ones([4]);
    kept = keep(ones([4]));
    return { out: [add(inner, inner)] };
  });
  assert.ok(inner!.isDisposed);
  assert.ok(!kept!.isDisposed && !result.out[0].isDisposed);
  assert.equal(memoryStats().liveBuffers, before + 2);
  result.out[0].dispose();
  kept!.dispose();
  assert.equal(memoryStats().liveBuffers, before);
  assertThrows(() => tidy(() => Promise.resolve(1)), /returned a Promise/);
});

Deno.test("gradients accumulate across backward calls until cleared; noGrad records nothing", async () => {
  const w = tensor([1, 2], [2], { requiresGrad: true });
  const x = tensor([3, 4], [2]);
  for (let i = 0; i < 2; i++) tidy(() => sum(mul(w, x)).backward());
  assert.deepEqual([...await w.grad!.toArray()], [6, 8]);
  const y = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    return mul(w, x);
  });
  assert.equal(isGradEnabled(), true);
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
  assertThrows(() => y.backward(), /does not require a gradient/);
  assertThrows(() => mul(w, x).backward(), /called on a tensor of shape \[2\]; it needs a scalar/);
});

Deno.test("backward after the graph was freed or its inputs disposed says what happened", () => {
  const w = tensor([1, 2], [2], { requiresGrad: true });
  const loss = sum(relu(w));
  loss.backward();
  assertThrows(
    () => loss.backward(),
    /does not require a gradient|was disposed, or its graph was already freed/,
  );
  const h = relu(w);
  const l2 = sum(h);
  h.dispose();
  assertThrows(() => l2.backward(), /output of relu .* was disposed/);
});

Deno.test("shape mismatches name the op and both shapes", () => {
  const a = zeros([2, 3]), b = zeros([3, 2]);
  assertThrows(
    () => add(a, b),
    /add: shapes \[2, 3\] and \[3, 2\] do not broadcast \(dimension -1: 3 vs 2\)/,
  );
  assertThrows(
    () => linear(a, zeros([4, 5])),
    /linear: input \[2, 3\] does not fit weight \[4, 5\]/,
  );
  assertThrows(
    () => nllLoss(zeros([4, 10]), zeros([5], { dtype: "i32" })),
    /nllLoss: target shape \[5\] does not match logProbs \[4, 10\]/,
  );
});

Deno.test("a small composed network (conv → max pool → relu → linear → log-softmax) matches finite differences", async () => {
  const dims = {
    batch: 2,
    inChannels: 2,
    outChannels: 3,
    height: 6,
    width: 6,
    kernelHeight: 3,
    kernelWidth: 3,
    stride: 1,
    padding: 0,
  };
  const poolRef = (x: Float64Array) => {
    const out = new Float64Array(2 * 3 * 2 * 2);
    for (let p = 0; p < 6; p++) {
      for (let y = 0; y < 2; y++) {
        for (let xx = 0; xx < 2; xx++) {
          let m = -Infinity;
          for (let dy = 0; dy < 2; dy++) {
            for (let dx = 0; dx < 2; dx++) {
              m = Math.max(m, x[p * 16 + (2 * y + dy) * 4 + 2 * xx + dx]);
            }
          }
          out[p * 4 + y * 2 + xx] = Math.max(m, 0);
        }
      }
    }
    return out;
  };
  await gradCheck({
    inputs: [
      { data: randomArray(2 * 2 * 36, 1), shape: [2, 2, 6, 6] },
      { data: randomArray(3 * 2 * 9, 2), shape: [3, 2, 3, 3] },
      { data: randomArray(5 * 12, 3), shape: [5, 12] },
      { data: randomArray(5, 4), shape: [5] },
    ],
    reference: ([x, w, fw, fb]) => {
      const features = poolRef(conv2dReference(x, w, null, dims));
      const logits = linearReference(features, fw, fb, {
        batch: 2,
        inFeatures: 12,
        outFeatures: 5,
      });
      const out = new Float64Array(10);
      for (let r = 0; r < 2; r++) {
        const row = logits.slice(r * 5, r * 5 + 5);
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
        for (let j = 0; j < 5; j++) out[r * 5 + j] = row[j] - lse;
      }
      return out;
    },
    gpu: ([x, w, fw, fb]) =>
      logSoftmax(linear(maxPool2d(conv2d(x, w), { kernelSize: 2, relu: true }).flatten(1), fw, fb)),
    gradTolerance: { atol: 2e-3, rtol: 2e-2 },
  });
});

Deno.test("buffer pool: 100 training steps after warm-up create no GPU buffer and hold live bytes constant", async () => {
  const model = cnnBn({ rng: new Rng(1) });
  const optimizer = new Adam(model.parameters(), { lr: 0.001 });
  const x = randUniform([16, 1, 28, 28], { seed: 2 });
  const y = tensor(Int32Array.from({ length: 16 }, (_, i) => i % 10), [16], { dtype: "i32" });
  const step = () =>
    tidy(() => {
      optimizer.zeroGrad();
      nllLoss(model.forward(x), y).backward();
      optimizer.step();
    });
  for (let i = 0; i < 3; i++) step();
  await sync();
  const before = memoryStats();
  const readsBefore = streamStats().readbacks;
  for (let i = 0; i < 100; i++) step();
  await sync();
  const after = memoryStats();
  assert.equal(after.buffersCreated, before.buffersCreated, "no new GPUBuffer after warm-up");
  assert.equal(after.liveBytes, before.liveBytes, "live bytes constant");
  assert.equal(after.textureBytes, before.textureBytes, "texture mirrors constant");
  assert.equal(streamStats().readbacks, readsBefore, "no readback inside training steps");
  optimizer.zeroGrad();
  optimizer.dispose();
  model.dispose();
});

Deno.test("random tensors without a seed draw from the generator manualSeed seeds, as torch.rand", async () => {
  const draw = async (seed: number) => {
    manualSeed(seed);
    const a = randUniform([5]), b = randNormal([5]);
    const values = [...await a.toArray(), ...await b.toArray()];
    a.dispose();
    b.dispose();
    return values;
  };
  const first = await draw(5);
  assert.deepEqual(await draw(5), first);
  assert.notDeepEqual(await draw(6), first);
  // A given seed or generator is used instead, whatever manualSeed set.
  manualSeed(7);
  const seeded = randUniform([4], { seed: 3 });
  manualSeed(8);
  const again = randUniform([4], { seed: 3 });
  assert.deepEqual(await seeded.toArray(), await again.toArray());
  seeded.dispose();
  again.dispose();
  manualSeed(0);
});

Deno.test("streamStats: each submit with work counts once, with the time spent in queue.submit()", async () => {
  await sync();
  const before = streamStats();
  flush();
  assert.equal(streamStats().submits, before.submits, "nothing encoded: no submit");
  assert.equal(streamStats().submitMilliseconds, before.submitMilliseconds);
  const a = full([64], 2);
  const b = tidy(() => add(a, a));
  flush();
  const after = streamStats();
  assert.equal(after.submits, before.submits + 1);
  assert.ok(
    Number.isFinite(after.submitMilliseconds) &&
      after.submitMilliseconds >= before.submitMilliseconds,
    `submitMilliseconds ${before.submitMilliseconds} -> ${after.submitMilliseconds}`,
  );
  assert.deepEqual([...await b.toArray()], new Array(64).fill(4));
  a.dispose();
  b.dispose();
});
