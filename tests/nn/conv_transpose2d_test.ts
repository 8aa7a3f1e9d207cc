import { convTranspose2d, type ConvTranspose2dOptions } from "../../nn/ops/conv_transpose2d.ts";
import { ConvTranspose2d } from "../../nn/modules/conv_transpose2d.ts";
import { type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
import { assertClose, gpuReady } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import {
  convTransposeBackwardReference,
  type ConvTransposeDims,
  convTransposeOutput,
  convTransposeReference,
} from "./reference/conv2d.ts";

await gpuReady();

interface Case {
  batch: number;
  inChannels: number;
  outChannels: number;
  size: [number, number];
  kernel: [number, number];
  options: Omit<ConvTranspose2dOptions, "bias">;
  bias?: boolean;
}

const pair = (v: number | readonly [number, number] | undefined, fallback: number) =>
  v === undefined
    ? [fallback, fallback] as [number, number]
    : typeof v === "number"
    ? [v, v] as [number, number]
    : [v[0], v[1]] as [number, number];

function dimsOf(c: Case): ConvTransposeDims {
  return {
    batch: c.batch,
    inChannels: c.inChannels,
    outChannels: c.outChannels,
    height: c.size[0],
    width: c.size[1],
    kernelHeight: c.kernel[0],
    kernelWidth: c.kernel[1],
    stride: pair(c.options.stride, 1),
    padding: pair(c.options.padding, 0),
    outputPadding: pair(c.options.outputPadding, 0),
    dilation: pair(c.options.dilation, 1),
    groups: c.options.groups ?? 1,
  };
}

function transposeCase(c: Case) {
  const d = dimsOf(c);
  const withBias = c.bias !== false;
  return {
    name: `convTranspose2d [${c.batch},${c.inChannels},${c.size}] * [${c.inChannels},${
      c.outChannels / d.groups
    },${c.kernel}] ${JSON.stringify(c.options)}`,
    inputs: [
      [c.batch, c.inChannels, ...c.size],
      [c.inChannels, c.outChannels / d.groups, ...c.kernel],
      ...(withBias ? [[c.outChannels]] : []),
    ],
    gpu: ([x, w, b]: Tensor[]) => convTranspose2d(x, w, { ...c.options, bias: b }),
    reference: ([x, w, b]: Float64Array[]) => convTransposeReference(x, w, b ?? null, d),
    backward: ([x, w]: Float64Array[], grad: Float64Array) => {
      const g = convTransposeBackwardReference(grad, x, w, d);
      return withBias ? [g.input, g.weight, g.bias] : [g.input, g.weight];
    },
    outputShape: [c.batch, c.outChannels, ...convTransposeOutput(d)],
  };
}

const cases: Case[] = [
  // the specialised kernels: stride 1; stride 2 with padding (bias added after)
  { batch: 2, inChannels: 2, outChannels: 3, size: [3, 4], kernel: [3, 3], options: {} },
  {
    batch: 1,
    inChannels: 3,
    outChannels: 2,
    size: [4, 3],
    kernel: [3, 3],
    options: { stride: 2, padding: 1 },
  },
  {
    batch: 1,
    inChannels: 2,
    outChannels: 3,
    size: [3, 5],
    kernel: [3, 3],
    options: { stride: 2, padding: 1, outputPadding: 1 },
    bias: false,
  },
  // rectangular kernel, stride (2, 1), output padding in one dimension
  {
    batch: 1,
    inChannels: 2,
    outChannels: 3,
    size: [3, 4],
    kernel: [3, 2],
    options: { stride: [2, 1], padding: [1, 0], outputPadding: [1, 0] },
  },
  // groups 2, dilation 2
  {
    batch: 2,
    inChannels: 4,
    outChannels: 2,
    size: [3, 3],
    kernel: [2, 3],
    options: { groups: 2, dilation: 2 },
  },
  // depthwise, stride 2
  {
    batch: 1,
    inChannels: 3,
    outChannels: 3,
    size: [4, 3],
    kernel: [3, 3],
    options: { groups: 3, stride: 2 },
  },
  // output padding below the dilation (stride 1)
  {
    batch: 1,
    inChannels: 2,
    outChannels: 2,
    size: [3, 3],
    kernel: [2, 2],
    options: { dilation: 2, outputPadding: 1 },
  },
  // a 1x1 input
  { batch: 3, inChannels: 1, outChannels: 2, size: [1, 1], kernel: [2, 3], options: { stride: 3 } },
];

for (const c of cases) {
  const testCase = transposeCase(c);
  Deno.test(`${testCase.name} matches the reference and finite differences`, async () => {
    await testOp(testCase);
  });
}

Deno.test("convTranspose2d [8,8,9,7]: forward and all gradients match the reference", async () => {
  for (
    const options of [{ stride: 2, padding: 1, outputPadding: 1 }, {
      groups: 4,
      stride: [1, 2],
    }] as ConvTranspose2dOptions[]
  ) {
    await testOp({
      ...transposeCase({
        batch: 8,
        inChannels: 8,
        outChannels: 12,
        size: [9, 7],
        kernel: [3, 3],
        options,
      }),
      seed: 5,
      forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
      gradTolerance: { atol: 1e-3, rtol: 1e-4 },
      finiteDifferenceLimit: 0,
    });
  }
});

Deno.test("convTranspose2d: a hand-computed case and errors", async () => {
  // Each input value stamps the 2x2 kernel of ones at stride 2: no overlap.
  const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  const w = tensor([1, 1, 1, 1], [1, 1, 2, 2]);
  assertClose(
    await convTranspose2d(x, w, { stride: 2 }).toArray(),
    [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4],
  );
  assertThrows(
    () => convTranspose2d(zeros([2, 3, 4, 4]), zeros([4, 2, 3, 3])),
    /convTranspose2d: input \[2, 3, 4, 4\] does not fit weight \[4, 2, 3, 3\] \(needs input \[N, 4, H, W\]/,
  );
  assertThrows(
    () => convTranspose2d(zeros([2, 6, 4, 4]), zeros([6, 2, 3, 3]), { groups: 4 }),
    /convTranspose2d: groups 4 must divide both the input channels \(6\) and the output channels \(8\)/,
  );
  assertThrows(
    () =>
      convTranspose2d(zeros([1, 2, 4, 4]), zeros([2, 2, 3, 3]), { stride: 2, outputPadding: 2 }),
    /convTranspose2d: outputPadding \[2, 2\] must be smaller than the stride \[2, 2\] or the dilation/,
  );
  assertThrows(
    () => convTranspose2d(zeros([1, 2, 1, 1]), zeros([2, 2, 1, 1]), { padding: 1 }),
    /convTranspose2d: the output would be -1x-1/,
  );
});

Deno.test("ConvTranspose2d: parameters, init and errors naming the layer", async () => {
  const layer = new ConvTranspose2d(4, 6, [3, 2], { stride: 2, groups: 2, outputPadding: 1 });
  if (JSON.stringify(layer.weight.shape) !== "[4,3,3,2]" || layer.bias?.shape[0] !== 6) {
    throw new Error(`ConvTranspose2d parameters ${layer.weight.shape} ${layer.bias?.shape}`);
  }
  const bound = 1 / Math.sqrt(3 * 3 * 2);
  if ((await layer.weight.toArray()).some((v) => Math.abs(v) > bound)) {
    throw new Error("ConvTranspose2d init out of bounds");
  }
  if (JSON.stringify(layer.forward(zeros([2, 4, 5, 4])).shape) !== "[2,6,12,9]") {
    throw new Error("ConvTranspose2d output shape");
  }
  assertThrows(
    () => layer.forward(zeros([2, 6, 5, 4])),
    /ConvTranspose2d\(4, 6, kernelSize=\[3,2\]\): expected input \[N, 4, H, W\] \(or unbatched \[4, H, W\]\), got \[2, 6, 5, 4\]/,
  );
});
