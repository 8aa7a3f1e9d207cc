import { conv2d } from "../../nn/ops/conv2d.ts";
import {
  conv2dBackwardReference,
  type Conv2dDims,
  conv2dReference,
  convOutputSize,
} from "./reference/conv2d.ts";
import { tensor } from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
import { assertClose, gpuReady, gradCheck, randomArray } from "../testing.ts";

await gpuReady();

function dims(
  batch: number,
  inChannels: number,
  outChannels: number,
  size: [number, number],
  kernel: [number, number],
  stride = 1,
  padding = 0,
): Conv2dDims {
  return {
    batch,
    inChannels,
    outChannels,
    height: size[0],
    width: size[1],
    kernelHeight: kernel[0],
    kernelWidth: kernel[1],
    stride,
    padding,
  };
}

const describe = (d: Conv2dDims) =>
  `[${d.batch},${d.inChannels},${d.height},${d.width}] * [${d.outChannels},${d.inChannels},${d.kernelHeight},${d.kernelWidth}] s${d.stride} p${d.padding}`;

// Small cases: finite differences of the float64 reference.
const small = [
  dims(1, 1, 1, [3, 3], [2, 2]),
  dims(2, 3, 5, [7, 5], [3, 3]),
  dims(1, 2, 3, [6, 6], [3, 3], 1, 1),
  dims(2, 3, 2, [7, 8], [3, 2], 2, 0),
  dims(1, 2, 3, [7, 7], [3, 3], 2, 1),
  dims(1, 3, 2, [5, 6], [5, 5], 1, 2),
];
for (const d of small) {
  Deno.test(`conv2d ${describe(d)} matches the reference and finite differences`, async () => {
    const weight = d.outChannels * d.inChannels * d.kernelHeight * d.kernelWidth;
    await gradCheck({
      inputs: [
        {
          data: randomArray(d.batch * d.inChannels * d.height * d.width, 1),
          shape: [d.batch, d.inChannels, d.height, d.width],
        },
        {
          data: randomArray(weight, 2),
          shape: [d.outChannels, d.inChannels, d.kernelHeight, d.kernelWidth],
        },
        { data: randomArray(d.outChannels, 3), shape: [d.outChannels] },
      ],
      reference: ([x, w, b]) => conv2dReference(x, w, b, d),
      gpu: ([x, w, b]) => conv2d(x, w, b, { stride: d.stride, padding: d.padding }),
    });
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
    const [OH, OW] = convOutputSize(d);
    const xData = randomArray(d.batch * d.inChannels * d.height * d.width, 4);
    const wData = randomArray(d.outChannels * d.inChannels * d.kernelHeight * d.kernelWidth, 5);
    const bData = randomArray(d.outChannels, 6);
    const gData = randomArray(d.batch * d.outChannels * OH * OW, 7);
    const x = tensor(Float32Array.from(xData), [d.batch, d.inChannels, d.height, d.width], {
      requiresGrad: true,
    });
    const w = tensor(Float32Array.from(wData), [
      d.outChannels,
      d.inChannels,
      d.kernelHeight,
      d.kernelWidth,
    ], {
      requiresGrad: true,
    });
    const b = tensor(Float32Array.from(bData), [d.outChannels], { requiresGrad: true });
    const out = conv2d(x, w, b, { stride: d.stride, padding: d.padding });
    assertClose(await out.toArray(), conv2dReference(xData, wData, bData, d), {
      atol: 1e-4,
      rtol: 1e-4,
    }, "forward");
    out.backward({ grad: tensor(Float32Array.from(gData), out.shape) });
    const expected = conv2dBackwardReference(gData, xData, wData, d);
    assertClose(
      await x.grad!.toArray(),
      expected.input,
      { atol: 1e-3, rtol: 1e-4 },
      "input gradient",
    );
    assertClose(
      await w.grad!.toArray(),
      expected.weight,
      { atol: 1e-2, rtol: 1e-4 },
      "weight gradient",
    );
    assertClose(
      await b.grad!.toArray(),
      expected.bias,
      { atol: 1e-2, rtol: 1e-4 },
      "bias gradient",
    );
    for (const t of [x, w, b, out, x.grad!, w.grad!, b.grad!]) t.dispose();
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
