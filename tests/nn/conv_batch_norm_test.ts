/**
 * `conv2dBatchNormReluMaxPool2d`: against the float64 references of conv2d, batch norm, max
 * pooling and relu in sequence (values and gradients, with finite differences on the small
 * cases), against the library's ops in sequence on the GPU, on shapes its fused backward does not
 * take, and for what the fused backward saves (no full-size gradient copied into a texture).
 */
import { batchNorm, batchNormReluMaxPool2d } from "../../nn/ops/batch_norm.ts";
import { conv2d } from "../../nn/ops/conv2d.ts";
import { conv2dBatchNormReluMaxPool2d } from "../../nn/ops/conv2d_batch_norm.ts";
import { maxPool2d } from "../../nn/ops/max_pool.ts";
import { noGrad } from "../../nn/autograd.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { streamStats, sync } from "../../nn/gpu/stream.ts";
import { kernelPolicy } from "../../nn/gpu/policy.ts";
import { ones, type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { assert } from "../assert.ts";
import { assertClose, assertSteadyMemory, gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import {
  conv2dBackwardReference,
  type Conv2dDims,
  conv2dReference,
  convOutputSize,
  squareConvDims,
} from "./reference/conv2d.ts";
import { batchNormBackwardReference, batchNormReference } from "./reference/batch_norm.ts";
import { maxPool2dBackwardReference, maxPool2dReference } from "./reference/max_pool.ts";
import { reluBackwardReference, reluReference } from "./reference/elementwise.ts";

await gpuReady();

interface Case {
  dims: Conv2dDims;
  bias: boolean;
  /** Whether the fused backward takes it (else the ops run in sequence). */
  fused: boolean;
}

const dims = squareConvDims;

const cases: Case[] = [
  // The study's first block, at a small batch.
  { dims: dims([2, 1, 28, 28], [10, 5]), bias: true, fused: true },
  // Channel counts no block divides, padding, stride 2, no bias.
  { dims: dims([3, 2, 8, 10], [3, 3]), bias: true, fused: true },
  { dims: dims([2, 3, 16, 16], [7, 3], 1, 1), bias: false, fused: true },
  { dims: dims([2, 2, 17, 17], [5, 3], 2, 0), bias: true, fused: true },
  // Not fused: an odd output height; an output width that is no multiple of 8.
  { dims: dims([2, 2, 9, 20], [3, 3], 1, 1), bias: true, fused: false },
  { dims: dims([2, 3, 14, 14], [4, 3]), bias: true, fused: false },
];

function inputShapes(d: Conv2dDims, withBias: boolean): number[][] {
  return [
    [d.batch, d.inChannels, d.height, d.width],
    [d.outChannels, d.inChannels, d.kernelHeight, d.kernelWidth],
    ...(withBias ? [[d.outChannels]] : []),
    [d.outChannels],
    [d.outChannels],
  ];
}

/** The float64 reference: relu(maxPool2d(batchNorm(conv2d(x)))) in training, and its gradients. */
function reference(d: Conv2dDims, withBias: boolean) {
  const [OH, OW] = convOutputSize(d);
  const convShape = [d.batch, d.outChannels, OH, OW];
  const unpack = (inputs: Float64Array[]) => {
    const [x, w] = inputs;
    const b = withBias ? inputs[2] : null;
    const [gamma, beta] = inputs.slice(withBias ? 3 : 2);
    return { x, w, b, options: { weight: gamma, bias: beta, training: true } };
  };
  const forward = (inputs: Float64Array[]) => {
    const { x, w, b, options } = unpack(inputs);
    const conv = conv2dReference(x, w, b, d);
    const normalised = batchNormReference(conv, convShape, options);
    const pooled = maxPool2dReference(normalised, convShape, { kernelSize: 2 });
    return { conv, pooled, relu: reluReference(pooled.output) };
  };
  const backward = (inputs: Float64Array[], grad: Float64Array) => {
    const { x, w, options } = unpack(inputs);
    const { conv, pooled } = forward(inputs);
    const gPool = reluBackwardReference(grad, pooled.output);
    const gNorm = maxPool2dBackwardReference(gPool, pooled.indices, convShape, pooled.shape);
    const bn = batchNormBackwardReference(gNorm, conv, convShape, options);
    const g = conv2dBackwardReference(bn.x, x, w, d);
    return [g.input, g.weight, ...(withBias ? [g.bias] : []), bn.weight, bn.bias];
  };
  return { forward, backward, outShape: [d.batch, d.outChannels, OH >> 1, OW >> 1] };
}

/** The op with fresh running statistics (batch norm updates them in place). */
function fusedOp(d: Conv2dDims, withBias: boolean) {
  return (inputs: Tensor[]) => {
    const [x, w] = inputs;
    const [gamma, beta] = inputs.slice(withBias ? 3 : 2);
    return conv2dBatchNormReluMaxPool2d(x, w, {
      conv: { bias: withBias ? inputs[2] : undefined, stride: d.stride, padding: d.padding },
      batchNorm: (z) => ({
        weight: gamma,
        bias: beta,
        runningMean: zeros([z.shape[1]]),
        runningVar: ones([z.shape[1]]),
        training: true,
      }),
    });
  };
}

// x without a gradient is the case the fused backward is for; with one (a second block) the
// convolution still writes the partial statistics that batch norm merges.
for (
  const [{ dims: d, bias, fused }, xGrad] of cases.flatMap((c) => [[c, false], [c, true]] as const)
) {
  const shapes = inputShapes(d, bias);
  const label = `x [${shapes[0]}], w [${shapes[1]}], stride ${d.stride} padding ${d.padding}` +
    `${bias ? "" : ", no bias"}${xGrad ? ", x needs a gradient" : ""} ` +
    `(${fused ? "fused" : "ops in sequence"})`;

  Deno.test(`conv2dBatchNormReluMaxPool2d matches the references: ${label}`, async () => {
    const ref = reference(d, bias);
    await testOp({
      name: `conv2dBatchNormReluMaxPool2d ${label}`,
      inputs: shapes.map((shape, k) =>
        k === 0 ? { shape, grad: xGrad } : k === shapes.length - 2
          ? { shape, low: 0.5, high: 1.5 } // batch norm's weight
          : shape
      ),
      gpu: fusedOp(d, bias),
      reference: (inputs) => ref.forward(inputs).relu,
      backward: ref.backward,
      outputShape: ref.outShape,
      forwardTolerance: { atol: 1e-4, rtol: 1e-3 },
      // Batch norm divides by the batch's spread: float32 rounding in the gradients.
      gradTolerance: { atol: 2e-3, rtol: 2e-3 },
      eps: 1e-6,
      finiteDifferenceLimit: 800,
    });
  });
}

/** The fused op and the ops in sequence on the GPU, from the same values, with a NaN-free batch. */
async function fusedAndSeparate(d: Conv2dDims) {
  const shapes = inputShapes(d, true);
  const data = shapes.map((shape, k) =>
    Float32Array.from(randomArray(shape.reduce((a, b) => a * b, 1), 41 + k))
  );
  const run = async (fused: boolean) => {
    const [x, w, b, gamma, beta] = shapes.map((shape, k) => {
      const t = tensor(data[k], shape);
      t.requiresGrad = k > 0;
      return t;
    });
    const runningMean = zeros([d.outChannels]), runningVar = ones([d.outChannels]);
    const bnOptions = { weight: gamma, bias: beta, runningMean, runningVar, training: true };
    const stats0 = streamStats();
    const out = fused
      ? conv2dBatchNormReluMaxPool2d(x, w, { conv: { bias: b }, batchNorm: () => bnOptions })
      : batchNormReluMaxPool2d(conv2d(x, w, { bias: b }), bnOptions);
    out.backward({ grad: tensor(Float32Array.from(randomArray(out.size, 77)), out.shape) });
    await sync();
    const copied = streamStats().textureCopyBytes - stats0.textureCopyBytes;
    const results = {
      copied,
      out: await out.toArray(),
      runningMean: await runningMean.toArray(),
      runningVar: await runningVar.toArray(),
      dweight: await w.grad!.toArray(),
      dbias: await b.grad!.toArray(),
      dgamma: await gamma.grad!.toArray(),
      dbeta: await beta.grad!.toArray(),
    };
    for (const t of [x, w, b, gamma, beta, out, runningMean, runningVar]) t.dispose();
    for (const t of [w, b, gamma, beta]) t.grad!.dispose();
    return results;
  };
  return { fused: await run(true), separate: await run(false) };
}

for (const d of [dims([32, 1, 28, 28], [10, 5]), dims([3, 2, 8, 10], [3, 3])]) {
  Deno.test(`conv2dBatchNormReluMaxPool2d equals the ops in sequence on the GPU: x [${d.batch}, ${d.inChannels}, ${d.height}, ${d.width}]`, async () => {
    const { fused, separate } = await fusedAndSeparate(d);
    // The fused op merges the statistics the convolution's lanes wrote, the ops in sequence
    // reduce the output: the same values to float32 rounding, not bit for bit.
    const rounding = { atol: 1e-5, rtol: 1e-5 };
    assertClose(fused.out, separate.out, rounding, "output");
    assertClose(fused.runningMean, separate.runningMean, rounding, "running mean");
    assertClose(fused.runningVar, separate.runningVar, rounding, "running var");
    // The same products, the same sums: only the kernel computing dx differs.
    assertClose(fused.dweight, separate.dweight, { atol: 1e-5, rtol: 1e-5 }, "conv dweight");
    // The conv bias gradient is a sum that batch norm makes cancel to ~0.
    assertClose(fused.dbias, separate.dbias, { atol: 1e-4, rtol: 0 }, "conv dbias");
    assertClose(fused.dgamma, separate.dgamma, rounding, "batch norm dweight");
    assertClose(fused.dbeta, separate.dbeta, rounding, "batch norm dbias");
    // The full-size gradient (4 bytes per conv output) is never copied into a texture (where
    // the policy reads such an input through a texture at all, not as a uniform).
    const [OH, OW] = convOutputSize(d);
    const policy = kernelPolicy();
    const bytes = 4 * d.batch * d.outChannels * OH * OW;
    const full = policy.textureInputs && bytes > policy.uniformInputBytes ? bytes : 0;
    assert.ok(
      separate.copied - fused.copied >= full,
      `texture copies: ${fused.copied} bytes fused, ${separate.copied} in sequence (the ` +
        `gradient is ${full})`,
    );
  });
}

for (const d of [dims([2, 1, 28, 28], [10, 5]), dims([2, 3, 14, 14], [4, 3])]) {
  Deno.test(`conv2dBatchNormReluMaxPool2d in eval and training mode gives the ops' values: x [${d.batch}, ${d.inChannels}, ${d.height}, ${d.width}]`, async () => {
    const shapes = inputShapes(d, true);
    const [x, w, b, gamma, beta] = shapes.map((shape, k) =>
      tensor(Float32Array.from(randomArray(shape.reduce((a, c) => a * c, 1), 51 + k)), shape)
    );
    const O = d.outChannels;
    const runningMean = tensor(Float32Array.from(randomArray(O, 60)), [O]);
    const runningVar = tensor(Float32Array.from(randomArray(O, 61, 0.5, 2)), [O]);
    for (const training of [false, true]) {
      const options = { weight: gamma, bias: beta, runningMean, runningVar, training };
      const got = conv2dBatchNormReluMaxPool2d(x, w, {
        conv: { bias: b },
        batchNorm: () => options,
      });
      const want = maxPool2d(batchNorm(conv2d(x, w, { bias: b }), options), {
        kernelSize: 2,
        relu: true,
      });
      // Eval uses the running statistics: bit for bit. Training merges the convolution's
      // partial statistics where the shapes allow: float32 rounding.
      const tolerance = training ? { atol: 1e-5, rtol: 1e-5 } : { atol: 0, rtol: 0 };
      assertClose(await got.toArray(), await want.toArray(), tolerance, `training ${training}`);
      got.dispose();
      want.dispose();
    }
    // Without gradients (evaluation, or batch norm's statistics recalibrated) the convolution
    // writes no partial statistics and batch norm reduces its output: the ops' values bit for bit.
    const options = { weight: gamma, bias: beta, runningMean, runningVar, training: true };
    const [got, want] = noGrad(() => [
      conv2dBatchNormReluMaxPool2d(x, w, { conv: { bias: b }, batchNorm: () => options }),
      maxPool2d(batchNorm(conv2d(x, w, { bias: b }), options), { kernelSize: 2, relu: true }),
    ]);
    assertClose(await got.toArray(), await want.toArray(), { atol: 0, rtol: 0 }, "under noGrad");
    got.dispose();
    want.dispose();
    for (const t of [x, w, b, gamma, beta, runningMean, runningVar]) t.dispose();
  });
}

Deno.test("conv2dBatchNormReluMaxPool2d: a training step holds steady memory", async () => {
  const x = tensor(Float32Array.from(randomArray(4 * 28 * 28, 5)), [4, 1, 28, 28]);
  const w = tensor(Float32Array.from(randomArray(250, 6)), [10, 1, 5, 5]);
  const b = tensor(Float32Array.from(randomArray(10, 7)), [10]);
  const gamma = ones([10]), beta = zeros([10]);
  const runningMean = zeros([10]), runningVar = ones([10]);
  const leaves = [w, b, gamma, beta];
  for (const t of leaves) t.requiresGrad = true;
  const step = () =>
    tidy(() => {
      const h = conv2dBatchNormReluMaxPool2d(x, w, {
        conv: { bias: b },
        batchNorm: () => ({ weight: gamma, bias: beta, runningMean, runningVar, training: true }),
      });
      sum(h).backward();
      for (const t of leaves) {
        t.grad!.dispose();
        t.grad = null;
      }
    });
  await assertSteadyMemory(step);
  for (const t of [x, ...leaves, runningMean, runningVar]) t.dispose();
});
