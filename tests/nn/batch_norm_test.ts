import {
  batchNorm,
  type BatchNormOptions,
  batchNormReluMaxPool2d,
} from "../../nn/ops/batch_norm.ts";
import { maxPool2d } from "../../nn/ops/max_pool.ts";
import { reluBackwardReference, reluReference } from "./reference/elementwise.ts";
import { maxPool2dBackwardReference, maxPool2dReference } from "./reference/max_pool.ts";
import {
  batchNormBackwardReference,
  batchNormReference,
  runningStatsReference,
} from "./reference/batch_norm.ts";
import { ones, type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** f32-representable random values, as float64. */
function randomF32(length: number, seed: number, low = -1, high = 1): Float64Array {
  return Float64Array.from(Float32Array.from(randomArray(length, seed, low, high)));
}

function f32Tensor(
  data: ArrayLike<number>,
  shape: readonly number[],
  requiresGrad = false,
): Tensor {
  return tensor(Float32Array.from(data), shape, { requiresGrad });
}

/** GPU options: weight, bias, and running statistics uploaded afresh (they change in training). */
function gpuOptions(
  weight: Tensor,
  bias: Tensor,
  running: { runningMean: Float64Array; runningVar: Float64Array },
  training: boolean,
): BatchNormOptions {
  const channels = running.runningMean.length;
  return {
    weight,
    bias,
    runningMean: f32Tensor(running.runningMean, [channels]),
    runningVar: f32Tensor(running.runningVar, [channels]),
    training,
  };
}

Deno.test("batchNorm of a hand-computed [4, 1] batch, and its running statistics", async () => {
  // mean 2.5, biased variance 1.25, unbiased 5/3.
  const x = tensor([1, 2, 3, 4], [4, 1]);
  const runningMean = zeros([1]), runningVar = ones([1]);
  const y = batchNorm(x, {
    weight: tensor([2]),
    bias: tensor([1]),
    runningMean,
    runningVar,
    training: true,
  });
  const s = Math.sqrt(1.25 + 1e-5);
  assertClose(await y.toArray(), [1, 2, 3, 4].map((v) => 2 * (v - 2.5) / s + 1));
  assertClose(await y.toArray(), [-1.68326, 0.10557, 1.89443, 3.68326], { atol: 1e-4 });
  assertClose(await runningMean.toArray(), [0.25]);
  assertClose(await runningVar.toArray(), [0.9 + 0.1 * 5 / 3]);
});

const shapes = [[4, 3], [2, 3, 4, 5], [3, 3, 7, 5], [1, 3, 3, 3], [5, 1], [2, 2, 1, 1]];
for (const shape of shapes) {
  const size = sizeOf(shape);
  const channels = shape[1];
  const x = { data: randomF32(size, size, -2, 2), shape };
  const weight = { data: randomF32(channels, 1, 0.5, 1.5), shape: [channels] };
  const bias = { data: randomF32(channels, 2), shape: [channels] };
  const runningMean = randomF32(channels, 3);
  const runningVar = randomF32(channels, 4, 0.5, 2);

  Deno.test(`batchNorm (training) matches the reference and finite differences (${shape})`, async () => {
    await testOp({
      name: `batchNorm training, affine [${shape}]`,
      // The inputs are given; seed 0 seeds the output gradient with 99.
      seed: 0,
      inputs: [x, weight, bias],
      reference: ([v, w, b]) =>
        batchNormReference(v, shape, { weight: w, bias: b, training: true }),
      gpu: ([v, w, b]) => batchNorm(v, gpuOptions(w, b, { runningMean, runningVar }, true)),
      forwardTolerance: { atol: 1e-4, rtol: 1e-3 },
    });
    await testOp({
      name: `batchNorm training [${shape}]`,
      // The inputs are given; seed 0 seeds the output gradient with 99.
      seed: 0,
      inputs: [x],
      reference: ([v]) => batchNormReference(v, shape, { training: true }),
      gpu: ([v]) => batchNorm(v, { training: true }),
      forwardTolerance: { atol: 1e-4, rtol: 1e-3 },
    });
  });

  Deno.test(`batchNorm (eval) matches the reference and finite differences (${shape})`, async () => {
    const options = { runningMean, runningVar, training: false };
    await testOp({
      name: `batchNorm eval, affine [${shape}]`,
      // The inputs are given; seed 0 seeds the output gradient with 99.
      seed: 0,
      inputs: [x, weight, bias],
      reference: ([v, w, b]) => batchNormReference(v, shape, { ...options, weight: w, bias: b }),
      gpu: ([v, w, b]) => batchNorm(v, gpuOptions(w, b, { runningMean, runningVar }, false)),
    });
  });
}

Deno.test("batchNorm gives weight and bias gradients when x needs none", async () => {
  const shape = [3, 2, 4, 4];
  const data = randomF32(sizeOf(shape), 5);
  const grad = randomF32(sizeOf(shape), 6);
  for (const training of [true, false]) {
    const weight = tensor([1.5, 0.5], [2], { requiresGrad: true });
    const bias = tensor([0.1, -0.2], [2], { requiresGrad: true });
    const runningMean = tensor([0.1, 0.2]), runningVar = tensor([1.2, 0.8]);
    const y = batchNorm(f32Tensor(data, shape), {
      weight,
      bias,
      runningMean,
      runningVar,
      training,
    });
    y.backward({ grad: f32Tensor(grad, shape) });
    const expected = batchNormBackwardReference(grad, data, shape, {
      weight: [1.5, 0.5],
      bias: [0.1, -0.2],
      runningMean: [0.1, 0.2],
      runningVar: [1.2, 0.8],
      training,
    });
    assertClose(await weight.grad!.toArray(), expected.weight, { atol: 1e-4 }, "weight gradient");
    assertClose(await bias.grad!.toArray(), expected.bias, { atol: 1e-4 }, "bias gradient");
  }
});

Deno.test("batchNorm's running statistics after two training steps follow the formulas", async () => {
  const shape = [6, 3, 5, 7];
  const first = randomF32(sizeOf(shape), 7, -1, 3), second = randomF32(sizeOf(shape), 8, -2, 1);
  const runningMean = zeros([3]), runningVar = ones([3]);
  for (const data of [first, second]) {
    batchNorm(f32Tensor(data, shape), { runningMean, runningVar, training: true, momentum: 0.3 });
  }
  const once = runningStatsReference([0, 0, 0], [1, 1, 1], first, shape, 0.3);
  const twice = runningStatsReference(once.mean, once.variance, second, shape, 0.3);
  assertClose(await runningMean.toArray(), twice.mean, {}, "running mean");
  assertClose(await runningVar.toArray(), twice.variance, {}, "running variance");
});

// The study's shapes and batch 32, checked against the reference (too big for finite
// differences: the backward is checked against the reference's backward).
for (
  const shape of [[128, 10, 24, 24], [128, 20, 8, 8], [32, 10, 24, 24], [32, 20, 8, 8], [128, 256]]
) {
  Deno.test(`batchNorm forward, backward and running stats match the reference (${shape})`, async () => {
    const channels = shape[1], size = sizeOf(shape);
    const data = randomF32(size, 9, -1, 2);
    const grad = randomF32(size, 10);
    const weightData = randomF32(channels, 11, 0.5, 1.5), biasData = randomF32(channels, 12);
    const x = f32Tensor(data, shape, true);
    const weight = f32Tensor(weightData, [channels], true);
    const bias = f32Tensor(biasData, [channels], true);
    const runningMean = zeros([channels]), runningVar = ones([channels]);
    const options = { weight: weightData, bias: biasData, training: true };
    const y = batchNorm(x, { weight, bias, runningMean, runningVar, training: true });
    assertClose(await y.toArray(), batchNormReference(data, shape, options), { atol: 1e-4 }, "y");
    const running = runningStatsReference(
      new Float64Array(channels),
      new Float64Array(channels).fill(1),
      data,
      shape,
    );
    assertClose(await runningMean.toArray(), running.mean, { atol: 1e-6 }, "running mean");
    assertClose(await runningVar.toArray(), running.variance, { atol: 1e-6 }, "running var");
    y.backward({ grad: f32Tensor(grad, shape) });
    const expected = batchNormBackwardReference(grad, data, shape, options);
    assertClose(await x.grad!.toArray(), expected.x, { atol: 1e-4, rtol: 1e-3 }, "dx");
    assertClose(await weight.grad!.toArray(), expected.weight, { atol: 2e-3, rtol: 1e-4 }, "dw");
    assertClose(await bias.grad!.toArray(), expected.bias, { atol: 2e-3, rtol: 1e-4 }, "db");
  });
}

Deno.test("batchNorm stays accurate for a large mean and a small spread, backward too", async () => {
  // E[x²] - E[x]², or x * scale - mean * scale, would lose most digits here in f32.
  const shape = [64, 3, 8, 8];
  const values = Float32Array.from(randomArray(sizeOf(shape), 13), (v) => 100 + 0.01 * v);
  const data = Float64Array.from(values);
  const grad = randomF32(sizeOf(shape), 14);
  const x = tensor(values, shape, { requiresGrad: true });
  const y = batchNorm(x, { training: true });
  // An f32-rounded mean alone would be off by ~7e-4 in y and ~0.1 in dx here.
  assertClose(await y.toArray(), batchNormReference(data, shape, { training: true }), {
    atol: 2e-5,
  });
  y.backward({ grad: f32Tensor(grad, shape) });
  const expected = batchNormBackwardReference(grad, data, shape, { training: true });
  assertClose(await x.grad!.toArray(), expected.x, { atol: 5e-3, rtol: 1e-4 }, "dx");
});

Deno.test("batchNorm rejects bad shapes and options, naming them", () => {
  const x = zeros([4, 5]);
  assertThrows(
    () => batchNorm(x, { weight: zeros([3]), training: true }),
    /^batchNorm: weight shape \[3\] does not match x \[4, 5\] \(needs \[5\]\)$/,
  );
  assertThrows(
    () => batchNorm(x, { training: false }),
    /^batchNorm: eval mode .* needs runningMean/,
  );
  assertThrows(
    () => batchNorm(zeros([1, 5]), { training: true }),
    /^batchNorm: training needs more than one value per channel, got x \[1, 5\]$/,
  );
  assertThrows(() => batchNorm(zeros([4]), { training: true }), /^batchNorm: needs x of shape/);
  assertThrows(
    () => batchNorm(x, { runningMean: zeros([5]), training: true }),
    /give both runningMean and runningVar/,
  );
  const shared = zeros([5]);
  assertThrows(
    () => batchNorm(x, { runningMean: shared, runningVar: shared, training: true }),
    /must be different tensors/,
  );
});

/** relu(maxPool2d(batchNorm(x), 2×2)) on the CPU, with what its backward needs. */
function fusedReference(
  x: Float64Array,
  shape: number[],
  options: Parameters<typeof batchNormReference>[2],
) {
  const y = batchNormReference(x, shape, options);
  const pooled = maxPool2dReference(y, shape, { kernelSize: 2 });
  return { y, pooled, output: reluReference(pooled.output) };
}

for (const shape of [[2, 3, 4, 8], [3, 2, 6, 16], [1, 1, 2, 8]]) {
  const size = sizeOf(shape);
  const channels = shape[1];
  const x = { data: randomF32(size, size + 7, -2, 2), shape };
  const weight = { data: randomF32(channels, 21, 0.5, 1.5), shape: [channels] };
  const bias = { data: randomF32(channels, 22), shape: [channels] };
  const runningMean = randomF32(channels, 23);
  const runningVar = randomF32(channels, 24, 0.5, 2);
  for (const training of [true, false]) {
    Deno.test(`batchNormReluMaxPool2d (${training ? "training" : "eval"}) matches the references and finite differences (${shape})`, async () => {
      const stats = training ? {} : { runningMean, runningVar };
      await testOp({
        name: `batchNormReluMaxPool2d ${training ? "training" : "eval"} [${shape}]`,
        // The inputs are given; seed 0 seeds the output gradient with 99.
        seed: 0,
        inputs: [x, weight, bias],
        reference: ([v, w, b]) =>
          fusedReference(v, shape, { ...stats, weight: w, bias: b, training }).output,
        gpu: ([v, w, b]) =>
          batchNormReluMaxPool2d(v, gpuOptions(w, b, { runningMean, runningVar }, training)),
        forwardTolerance: { atol: 1e-4, rtol: 1e-3 },
      });
    });
  }
}

// The study's blocks: the fused kernels against the three ops on the GPU and the references.
for (const shape of [[128, 10, 24, 24], [128, 20, 8, 8], [32, 10, 24, 24]]) {
  Deno.test(`batchNormReluMaxPool2d equals maxPool2d(batchNorm(x), relu) and the references (${shape})`, async () => {
    const channels = shape[1], size = sizeOf(shape);
    const data = randomF32(size, 31, -1, 2);
    const weightData = randomF32(channels, 32, 0.5, 1.5), biasData = randomF32(channels, 33);
    const outSize = size / 4;
    const gradData = randomF32(outSize, 34);
    const run = async (fused: boolean) => {
      const x = f32Tensor(data, shape, true);
      const weight = f32Tensor(weightData, [channels], true);
      const bias = f32Tensor(biasData, [channels], true);
      const runningMean = zeros([channels]), runningVar = ones([channels]);
      const options = { weight, bias, runningMean, runningVar, training: true };
      const out = fused
        ? batchNormReluMaxPool2d(x, options)
        : maxPool2d(batchNorm(x, options), { kernelSize: 2, relu: true });
      const values = await out.toArray();
      out.backward({ grad: f32Tensor(gradData, out.shape) });
      return {
        shape: out.shape,
        values,
        runningMean: await runningMean.toArray(),
        runningVar: await runningVar.toArray(),
        dx: await x.grad!.toArray(),
        dweight: await weight.grad!.toArray(),
        dbias: await bias.grad!.toArray(),
      };
    };
    const fused = await run(true), separate = await run(false);
    assert.deepEqual(fused.shape, separate.shape);
    assertClose(fused.values, separate.values, { atol: 0, rtol: 0 }, "forward vs the three ops");
    assertClose(fused.runningMean, separate.runningMean, { atol: 0, rtol: 0 }, "running mean");
    assertClose(fused.runningVar, separate.runningVar, { atol: 0, rtol: 0 }, "running var");
    assertClose(fused.dx, separate.dx, { atol: 1e-6, rtol: 1e-5 }, "dx vs the three ops");
    assertClose(fused.dweight, separate.dweight, { atol: 1e-4, rtol: 1e-5 }, "dw vs the three ops");
    assertClose(fused.dbias, separate.dbias, { atol: 1e-4, rtol: 1e-5 }, "db vs the three ops");
    // The references: forward, and backward through relu, the pool and batch norm.
    const options = { weight: weightData, bias: biasData, training: true };
    const expected = fusedReference(data, shape, options);
    assertClose(fused.values, expected.output, { atol: 1e-4 }, "forward vs reference");
    const pooledGrad = reluBackwardReference(gradData, expected.pooled.output);
    const dy = maxPool2dBackwardReference(
      pooledGrad,
      expected.pooled.indices,
      shape,
      expected.pooled.shape,
    );
    const backward = batchNormBackwardReference(dy, data, shape, options);
    assertClose(fused.dx, backward.x, { atol: 1e-4, rtol: 1e-3 }, "dx vs reference");
    assertClose(fused.dweight, backward.weight, { atol: 2e-3, rtol: 1e-4 }, "dw vs reference");
    assertClose(fused.dbias, backward.bias, { atol: 2e-3, rtol: 1e-4 }, "db vs reference");
  });
}

for (const training of [true, false]) {
  for (const affine of [true, false]) {
    Deno.test(`batchNormReluMaxPool2d's backward finds the forward's argmaxes on ties and zeros (training ${training}, affine ${affine})`, async () => {
      // Few distinct values: many tied windows, and many windows that relu sets to 0.
      const shape = [3, 4, 6, 16], channels = shape[1], size = sizeOf(shape);
      const data = Float64Array.from(randomArray(size, 41), (v) => Math.round(v * 2));
      const gradData = randomF32(size / 4, 42);
      const run = async (fused: boolean) => {
        const x = f32Tensor(data, shape, true);
        const weight = affine
          ? f32Tensor(randomF32(channels, 43, 0.5, 1.5), [channels])
          : undefined;
        const bias = affine ? f32Tensor(randomF32(channels, 44), [channels]) : undefined;
        const runningMean = tensor([0.5, -0.5, 0, 0.25], [channels]);
        const runningVar = tensor([1, 2, 0.5, 1], [channels]);
        const options = { weight, bias, runningMean, runningVar, training };
        const out = fused
          ? batchNormReluMaxPool2d(x, options)
          : maxPool2d(batchNorm(x, options), { kernelSize: 2, relu: true });
        out.backward({ grad: f32Tensor(gradData, out.shape) });
        return await x.grad!.toArray();
      };
      const fused = await run(true), separate = await run(false);
      // A window whose argmax differed would be off by a whole gradient value there.
      assertClose(fused, separate, { atol: 1e-6, rtol: 1e-5 }, "dx vs the three ops");
    });
  }
}

Deno.test("batchNormReluMaxPool2d rejects planes its kernels do not tile, naming the shape", () => {
  for (const shape of [[2, 3, 5, 8], [2, 3, 4, 12], [4, 8]]) {
    assertThrows(
      () => batchNormReluMaxPool2d(zeros(shape), { training: true }),
      /^batchNormReluMaxPool2d: needs x \[N, C, H, W\] with an even H and W a multiple of 8/,
    );
  }
});
