import { conv2d } from "../../nn/ops/conv2d.ts";
import {
  conv2dBackwardReference,
  type Conv2dDims,
  conv2dReference,
  convOutputSize,
  dims,
} from "./reference/conv2d.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
import { assertClose, gpuReady } from "../testing.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

const describe = (d: Conv2dDims) =>
  `[${d.batch},${d.inChannels},${d.height},${d.width}] * [${d.outChannels},${d.inChannels},${d.kernelHeight},${d.kernelWidth}] s${d.stride} p${d.padding}`;

const small = [
  dims(1, 1, 1, [3, 3], [2, 2]),
  dims(2, 3, 5, [7, 5], [3, 3]),
  dims(1, 2, 3, [6, 6], [3, 3], 1, 1),
  dims(2, 3, 2, [7, 8], [3, 2], 2, 0),
  dims(1, 2, 3, [7, 7], [3, 3], 2, 1),
  dims(1, 3, 2, [5, 6], [5, 5], 1, 2),
];
function convCase(d: Conv2dDims) {
  const backward = (inputs: Float64Array[], grad: Float64Array) => {
    const expected = conv2dBackwardReference(grad, inputs[0], inputs[1], d);
    return [expected.input, expected.weight, expected.bias];
  };
  return {
    name: `conv2d ${describe(d)}`,
    inputs: [
      [d.batch, d.inChannels, d.height, d.width],
      [d.outChannels, d.inChannels, d.kernelHeight, d.kernelWidth],
      [d.outChannels],
    ],
    gpu: ([x, w, b]: Tensor[]) => conv2d(x, w, b, { stride: d.stride, padding: d.padding }),
    reference: ([x, w, b]: Float64Array[]) => conv2dReference(x, w, b, d),
    backward,
    outputShape: [d.batch, d.outChannels, ...convOutputSize(d)],
  };
}

// Small cases: also finite differences of the float64 reference.
for (const d of small) {
  Deno.test(`conv2d ${describe(d)} matches the reference and finite differences`, async () => {
    await testOp(convCase(d));
  });
}

// The study's shapes (and odd ones): GPU backward against the reference backward.
const large = [
  dims(128, 1, 10, [28, 28], [5, 5]),
  dims(128, 10, 20, [12, 12], [5, 5]),
  dims(1, 10, 20, [12, 12], [5, 5]),
  dims(3, 7, 33, [13, 11], [5, 3], 1, 1),
  dims(5, 6, 40, [9, 10], [3, 3], 2, 1),
];
for (const d of large) {
  Deno.test(`conv2d ${describe(d)}: forward and all gradients match the reference`, async () => {
    await testOp({
      ...convCase(d),
      seed: 4,
      forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
      // input, weight, bias
      gradTolerance: [{ atol: 1e-3, rtol: 1e-4 }, { atol: 1e-2, rtol: 1e-4 }, {
        atol: 1e-2,
        rtol: 1e-4,
      }],
      finiteDifferenceLimit: 0,
    });
  });
}

Deno.test("conv2d: a hand-computed case", async () => {
  // 1x1x3x3 input, 1x1x2x2 kernel of ones plus bias 0.5: each output is the sum of a 2x2 window.
  const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
  const w = tensor([1, 1, 1, 1], [1, 1, 2, 2]);
  const b = tensor([0.5], [1]);
  assertClose(await conv2d(x, w, b).toArray(), [12.5, 16.5, 24.5, 28.5]);
  // Padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1).
  assertClose(await conv2d(x, w, undefined, { stride: 2, padding: 1 }).toArray(), [1, 5, 11, 28]);
});

Deno.test("conv2d: bad shapes name both shapes", () => {
  const x = tensor(new Float32Array(2 * 3 * 8 * 8), [2, 3, 8, 8]);
  const w = tensor(new Float32Array(4 * 2 * 3 * 3), [4, 2, 3, 3]);
  assertThrows(
    () => conv2d(x, w),
    /conv2d: input \[2, 3, 8, 8\] does not fit weight \[4, 2, 3, 3\]/,
  );
  const big = tensor(new Float32Array(4 * 3 * 9 * 9), [4, 3, 9, 9]);
  assertThrows(() => conv2d(x, big), /kernel does not fit the 8x8 input/);
});
