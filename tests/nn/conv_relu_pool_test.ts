/**
 * `conv2dReluMaxPool2d`: against the float64 references of conv2d, relu and max pooling in
 * sequence (values and gradients), bit for bit against the library's unfused ops (the fused
 * kernel sums in the same order and pools with the same quad code), with finite differences,
 * and on shapes the fused kernel does not take (the unfused fallback).
 */
import { conv2d } from "../../nn/ops/conv2d.ts";
import { conv2dReluMaxPool2d } from "../../nn/ops/conv2d_relu_pool.ts";
import { maxPool2d } from "../../nn/ops/max_pool.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { assert } from "../assert.ts";
import { assertSteadyMemory, gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import {
  conv2dBackwardReference,
  type Conv2dDims,
  conv2dReference,
  convOutputSize,
  squareConvDims,
} from "./reference/conv2d.ts";
import { maxPool2dBackwardReference, maxPool2dReference } from "./reference/max_pool.ts";
import { reluBackwardReference, reluReference } from "./reference/elementwise.ts";

await gpuReady();

interface Case {
  dims: Conv2dDims;
  bias: boolean;
  /** Whether the fused kernel takes it (else the ops run in sequence). */
  fused: boolean;
}

const dims = squareConvDims;

const cases: Case[] = [
  // The study's CNN blocks, at a small batch.
  { dims: dims([2, 1, 28, 28], [10, 5]), bias: true, fused: true },
  { dims: dims([3, 10, 12, 12], [20, 5]), bias: true, fused: true },
  // Output channels that no channel block divides, padding, no bias, stride 2.
  { dims: dims([2, 3, 16, 16], [7, 3], 1, 1), bias: true, fused: true },
  { dims: dims([1, 2, 10, 18], [3, 3]), bias: false, fused: true },
  { dims: dims([2, 2, 33, 33], [5, 3], 2, 0), bias: true, fused: true },
  // Not fused: an odd output height, an output width that is no multiple of 8.
  { dims: dims([2, 2, 9, 20], [3, 3], 1, 1), bias: true, fused: false },
  { dims: dims([1, 3, 14, 14], [4, 3]), bias: true, fused: false },
];

/** The float64 reference: relu(maxPool2d(conv2d(x))) and its gradients. */
function reference(d: Conv2dDims, withBias: boolean) {
  const [OH, OW] = convOutputSize(d);
  const convShape = [d.batch, d.outChannels, OH, OW];
  const forward = ([x, w, b]: Float64Array[]) => {
    const conv = conv2dReference(x, w, withBias ? b : null, d);
    const pooled = maxPool2dReference(conv, convShape, { kernelSize: 2 });
    return { pooled, relu: reluReference(pooled.output) };
  };
  const backward = (inputs: Float64Array[], grad: Float64Array) => {
    const { pooled } = forward(inputs);
    const gPool = reluBackwardReference(grad, pooled.output);
    const gConv = maxPool2dBackwardReference(gPool, pooled.indices, convShape, pooled.shape);
    const g = conv2dBackwardReference(gConv, inputs[0], inputs[1], d);
    return withBias ? [g.input, g.weight, g.bias] : [g.input, g.weight];
  };
  return { forward, backward, outShape: [d.batch, d.outChannels, OH / 2 | 0, OW / 2 | 0] };
}

function fusedOf(d: Conv2dDims, withBias: boolean) {
  return ([x, w, b]: Tensor[]) =>
    conv2dReluMaxPool2d(x, w, {
      bias: withBias ? b : undefined,
      stride: d.stride,
      padding: d.padding,
    });
}

function inputShapes(d: Conv2dDims, withBias: boolean): number[][] {
  const shapes = [
    [d.batch, d.inChannels, d.height, d.width],
    [d.outChannels, d.inChannels, d.kernelHeight, d.kernelWidth],
  ];
  return withBias ? [...shapes, [d.outChannels]] : shapes;
}

for (const { dims: d, bias, fused } of cases) {
  const label =
    `x [${inputShapes(d, bias)[0]}], w [${inputShapes(d, bias)[1]}], stride ${d.stride}` +
    ` padding ${d.padding}${bias ? "" : ", no bias"} (${fused ? "fused" : "unfused fallback"})`;

  Deno.test(`conv2dReluMaxPool2d matches the references: ${label}`, async () => {
    const ref = reference(d, bias);
    await testOp({
      name: `conv2dReluMaxPool2d ${label}`,
      inputs: inputShapes(d, bias),
      gpu: fusedOf(d, bias),
      reference: (inputs) => ref.forward(inputs).relu,
      backward: ref.backward,
      outputShape: ref.outShape,
      // Sums of up to 250 products: float32 rounding in the gradients.
      gradTolerance: { atol: 1e-4, rtol: 1e-3 },
      // The float64 reference's own check: a small step rarely crosses a max or relu kink.
      eps: 1e-6,
      // Finite differences on the small cases (one of them fused): each costs a reference
      // convolution per input element, minutes for the study's shapes in a browser.
      finiteDifferenceLimit: 800,
    });
  });

  Deno.test(`conv2dReluMaxPool2d equals conv2d → maxPool2d(relu) bit for bit: ${label}`, async () => {
    const shapes = inputShapes(d, bias);
    const data = shapes.map((shape, k) => randomArray(shape.reduce((a, b) => a * b, 1), 31 + k));
    // A NaN in the input: it must come out where the unfused ops put it.
    data[0][5] = NaN;
    const run = (fusedPath: boolean) =>
      tidy(() => {
        const leaves = shapes.map((shape, k) => {
          const t = tensor(Float32Array.from(data[k]), shape);
          t.requiresGrad = true;
          return t;
        });
        const [x, w, b] = leaves;
        const options = { bias: bias ? b : undefined, stride: d.stride, padding: d.padding };
        const out = fusedPath
          ? conv2dReluMaxPool2d(x, w, options)
          : maxPool2d(conv2d(x, w, options), { kernelSize: 2, relu: true });
        const grad = tensor(
          Float32Array.from(randomArray(out.size, 77)),
          out.shape,
        );
        out.backward({ grad });
        return [out, ...leaves.map((leaf) => leaf.grad!)];
      });
    const fusedResults = run(true), plainResults = run(false);
    const names = ["output", "dx", "dweight", "dbias"];
    for (let k = 0; k < fusedResults.length; k++) {
      const [a, b] = await Promise.all([fusedResults[k].toArray(), plainResults[k].toArray()]);
      assert.deepEqual(fusedResults[k].shape, plainResults[k].shape, names[k]);
      for (let i = 0; i < a.length; i++) {
        if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
          assert.fail(`${label}: ${names[k]}[${i}] is ${a[i]} fused, ${b[i]} unfused`);
        }
      }
    }
    [...fusedResults, ...plainResults].forEach((t) => t.dispose());
  });
}

Deno.test("conv2dReluMaxPool2d: a training step of the study's blocks holds steady memory", async () => {
  const x = tensor(Float32Array.from(randomArray(4 * 28 * 28, 5)), [4, 1, 28, 28]);
  const w1 = tensor(Float32Array.from(randomArray(250, 6)), [10, 1, 5, 5]);
  const w2 = tensor(Float32Array.from(randomArray(5000, 7)), [20, 10, 5, 5]);
  for (const w of [w1, w2]) w.requiresGrad = true;
  const step = () =>
    tidy(() => {
      const h = conv2dReluMaxPool2d(conv2dReluMaxPool2d(x, w1), w2);
      sum(h).backward();
      for (const w of [w1, w2]) {
        w.grad!.dispose();
        w.grad = null;
      }
    });
  await assertSteadyMemory(step);
  for (const t of [x, w1, w2]) t.dispose();
});
