import { conv2d, type Conv2dOptions, type Conv2dPadding } from "../../nn/ops/conv2d.ts";
import { Conv2d } from "../../nn/modules/conv2d.ts";
import { Rng } from "../../nn/random.ts";
import { conv1d } from "../../nn/ops/conv1d.ts";
import { convTranspose2d } from "../../nn/ops/conv_transpose2d.ts";
import { add } from "../../nn/ops/elementwise.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { sync } from "../../nn/gpu/stream.ts";
import { tidy } from "../../nn/scope.ts";
import { randUniform, type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
import { assertClose, gpuReady, withKernelPolicy } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import {
  type ConvDims,
  convDimsOutput,
  convGeneralBackwardReference,
  convGeneralReference,
} from "./reference/conv2d.ts";

await gpuReady();

interface Case {
  batch: number;
  inChannels: number;
  outChannels: number;
  size: [number, number];
  kernel: [number, number];
  options: Omit<Conv2dOptions, "bias">;
  bias?: boolean;
}

const pair = (v: number | readonly [number, number] | undefined, fallback: number) =>
  v === undefined
    ? [fallback, fallback] as [number, number]
    : typeof v === "number"
    ? [v, v] as [number, number]
    : [v[0], v[1]] as [number, number];

/** The padding [top, bottom, left, right] PyTorch uses (written out independently of the op). */
function paddingOf(
  padding: Conv2dPadding | undefined,
  kernel: [number, number],
  dilation: [number, number],
): [number, number, number, number] {
  if (padding === "valid") return [0, 0, 0, 0];
  if (padding === "full" || padding === "same") {
    const [h, w] = [0, 1].map((d) => dilation[d] * (kernel[d] - 1));
    if (padding === "full") return [h, h, w, w];
    return [Math.floor(h / 2), Math.ceil(h / 2), Math.floor(w / 2), Math.ceil(w / 2)];
  }
  const [h, w] = pair(padding, 0);
  return [h, h, w, w];
}

function dimsOf(c: Case): ConvDims {
  const dilation = pair(c.options.dilation, 1);
  return {
    batch: c.batch,
    inChannels: c.inChannels,
    outChannels: c.outChannels,
    height: c.size[0],
    width: c.size[1],
    kernelHeight: c.kernel[0],
    kernelWidth: c.kernel[1],
    stride: pair(c.options.stride, 1),
    padding: paddingOf(c.options.padding, c.kernel, dilation),
    dilation,
    groups: c.options.groups ?? 1,
  };
}

const describe = (c: Case) =>
  `[${c.batch},${c.inChannels},${c.size}] * [${c.outChannels},${
    c.inChannels / (c.options.groups ?? 1)
  },${c.kernel}] ${JSON.stringify(c.options)}${c.bias === false ? " no bias" : ""}`;

function convCase(c: Case) {
  const d = dimsOf(c);
  const withBias = c.bias !== false;
  return {
    name: `conv2d ${describe(c)}`,
    inputs: [
      [c.batch, c.inChannels, ...c.size],
      [c.outChannels, c.inChannels / d.groups, ...c.kernel],
      ...(withBias ? [[c.outChannels]] : []),
    ],
    gpu: ([x, w, b]: Tensor[]) => conv2d(x, w, { ...c.options, bias: b }),
    reference: ([x, w, b]: Float64Array[]) => convGeneralReference(x, w, b ?? null, d),
    backward: ([x, w]: Float64Array[], grad: Float64Array) => {
      const g = convGeneralBackwardReference(grad, x, w, d);
      return withBias ? [g.input, g.weight, g.bias] : [g.input, g.weight];
    },
    outputShape: [c.batch, c.outChannels, ...convDimsOutput(d)],
  };
}

const cases: Case[] = [
  // batch 1, rectangular kernel, stride (2, 1)
  {
    batch: 1,
    inChannels: 3,
    outChannels: 2,
    size: [7, 5],
    kernel: [3, 2],
    options: { stride: [2, 1] },
  },
  // "same" with even kernels: the extra row and column at the bottom and right
  {
    batch: 2,
    inChannels: 2,
    outChannels: 3,
    size: [6, 7],
    kernel: [2, 4],
    options: { padding: "same" },
  },
  // "same" with an odd kernel and dilation 2 (symmetric, general kernels)
  {
    batch: 1,
    inChannels: 2,
    outChannels: 3,
    size: [5, 6],
    kernel: [3, 3],
    options: { padding: "same", dilation: 2 },
  },
  // dilation 2 with padding
  {
    batch: 1,
    inChannels: 2,
    outChannels: 2,
    size: [9, 8],
    kernel: [3, 3],
    options: { dilation: 2, padding: 1 },
  },
  // dilation, stride and padding differing per dimension
  {
    batch: 2,
    inChannels: 3,
    outChannels: 2,
    size: [9, 7],
    kernel: [2, 3],
    options: { dilation: [2, 1], stride: [1, 2], padding: [2, 1] },
  },
  // groups 2
  {
    batch: 2,
    inChannels: 4,
    outChannels: 6,
    size: [5, 6],
    kernel: [3, 3],
    options: { groups: 2, padding: [1, 0] },
  },
  // depthwise, "same"
  {
    batch: 2,
    inChannels: 3,
    outChannels: 3,
    size: [6, 5],
    kernel: [3, 3],
    options: { groups: 3, padding: "same" },
  },
  // depthwise with a channel multiplier of 2, stride 2, no bias
  {
    batch: 1,
    inChannels: 3,
    outChannels: 6,
    size: [7, 6],
    kernel: [3, 2],
    options: { groups: 3, stride: 2 },
    bias: false,
  },
  // "full"
  {
    batch: 1,
    inChannels: 2,
    outChannels: 2,
    size: [4, 5],
    kernel: [3, 2],
    options: { padding: "full" },
  },
  // "valid", and a 1x1 kernel with padding 1 (the specialised kernels)
  {
    batch: 2,
    inChannels: 3,
    outChannels: 2,
    size: [5, 4],
    kernel: [2, 3],
    options: { padding: "valid" },
  },
  {
    batch: 1,
    inChannels: 2,
    outChannels: 3,
    size: [3, 5],
    kernel: [1, 1],
    options: { padding: 1 },
  },
  // padding past the kernel's span (stride 1, groups): the input gradient's element-wise kernel
  {
    batch: 1,
    inChannels: 2,
    outChannels: 4,
    size: [3, 4],
    kernel: [2, 2],
    options: { groups: 2, padding: [2, 1] },
  },
  // rows of a multiple of 4 columns (whole texels read) with every residue of the left padding
  {
    batch: 2,
    inChannels: 2,
    outChannels: 2,
    size: [4, 16],
    kernel: [3, 5],
    options: { groups: 2, padding: "same", dilation: [1, 2] },
  },
  {
    batch: 1,
    inChannels: 2,
    outChannels: 4,
    size: [5, 8],
    kernel: [2, 3],
    options: { padding: [1, 3], dilation: [1, 2] },
  },
  {
    batch: 1,
    inChannels: 4,
    outChannels: 2,
    size: [3, 12],
    kernel: [3, 3],
    options: { padding: [0, 2], groups: 2 },
  },
  {
    batch: 1,
    inChannels: 3,
    outChannels: 3,
    size: [4, 8],
    kernel: [3, 2],
    options: { padding: [1, 1], groups: 3, dilation: 2 },
  },
  // an input of one row and one column (size-1 dims), "same"
  {
    batch: 3,
    inChannels: 1,
    outChannels: 2,
    size: [1, 1],
    kernel: [3, 2],
    options: { padding: "same" },
  },
];

for (const c of cases) {
  Deno.test(`conv2d ${describe(c)} matches the reference and finite differences`, async () => {
    await testOp(convCase(c));
  });
}

// Larger shapes, through the general kernels: GPU backward against the reference backward.
const large: Case[] = [
  {
    batch: 4,
    inChannels: 16,
    outChannels: 16,
    size: [13, 12],
    kernel: [3, 3],
    options: { groups: 16, padding: "same" },
  },
  {
    batch: 3,
    inChannels: 6,
    outChannels: 10,
    size: [14, 11],
    kernel: [3, 3],
    options: { dilation: 2, padding: "same" },
  },
  {
    batch: 5,
    inChannels: 8,
    outChannels: 12,
    size: [9, 10],
    kernel: [4, 4],
    options: { groups: 4, padding: "same" },
  },
];
/** A large case: GPU gradients against the reference backward only (no finite differences). */
function largeCase(c: Case, seed: number) {
  return {
    ...convCase(c),
    seed,
    forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
    gradTolerance: { atol: 1e-3, rtol: 1e-4 },
    finiteDifferenceLimit: 0,
  };
}

for (const c of large) {
  Deno.test(`conv2d ${describe(c)}: forward and all gradients match the reference`, async () => {
    await testOp(largeCase(c, 7));
  });
}

// A plain convolution whose general kernel has 8,192 lanes or more (here 8,640): under the hardware
// policy its forward takes the general kernel (KernelPolicy.generalConvLanes), not the specialised
// one the other tests of this shape family run. Forced, whichever policy the adapter has.
Deno.test(`conv2d 3x3 "same" with many output blocks matches the reference (hardware policy)`, async () => {
  await withKernelPolicy("hardware", async () => {
    const c: Case = {
      batch: 9,
      inChannels: 1,
      outChannels: 4,
      size: [64, 60],
      kernel: [3, 3],
      options: { padding: "same" },
    };
    await testOp(largeCase(c, 8));
  });
});

Deno.test("conv2d: the older form conv2d(x, w, bias, options) still works", async () => {
  const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
  const w = tensor([1, 1, 1, 1], [1, 1, 2, 2]);
  const b = tensor([0.5], [1]);
  assertClose(await conv2d(x, w, b).toArray(), [12.5, 16.5, 24.5, 28.5]);
  assertClose(await conv2d(x, w, { bias: b }).toArray(), [12.5, 16.5, 24.5, 28.5]);
  assertClose(await conv2d(x, w, undefined, { stride: 2, padding: 1 }).toArray(), [1, 5, 11, 28]);
  // "same" with a 2x2 kernel pads the bottom and right only: windows start at (0, 0).
  assertClose(await conv2d(x, w, { padding: "same" }).toArray(), [
    12,
    16,
    9,
    24,
    28,
    15,
    15,
    17,
    9,
  ]);
});

Deno.test("conv2d: bad options name the op and what was given", () => {
  const x = zeros([2, 6, 8, 8]);
  const w = zeros([4, 2, 3, 3]);
  const w3 = zeros([3, 2, 3, 3]);
  assertThrows(
    () => conv2d(x, zeros([4, 3, 3, 3]), { groups: 4 }),
    /conv2d: groups 4 must divide both the input channels \(6\) and the output channels \(4\)/,
  );
  assertThrows(
    () => conv2d(x, zeros([3, 3, 3, 3]), { groups: 2 }),
    /conv2d: groups 2 must divide both the input channels \(6\) and the output channels \(3\)/,
  );
  assertThrows(
    () => conv2d(x, w3, { groups: 3, padding: "same", stride: 2 }),
    /conv2d: padding "same" needs stride 1 \(got stride \[2, 2\]\)/,
  );
  assertThrows(
    () => conv2d(x, w, { groups: 2 }),
    /conv2d: input \[2, 6, 8, 8\] does not fit weight \[4, 2, 3, 3\] \(needs input \[N, 4, H, W\]/,
  );
  assertThrows(() => conv2d(zeros([6, 8, 8]), w), /conv2d: input \[6, 8, 8\] does not fit weight/);
  assertThrows(
    () => conv2d(x, w3, { groups: 3, dilation: 0 }),
    /conv2d: dilation must be an integer >= 1/,
  );
  assertThrows(
    () => conv2d(x, w3, { groups: 3, stride: [1, 2, 3] as unknown as [number, number] }),
    /stride/,
  );
  assertThrows(
    () => conv2d(x, w3, { groups: 3, padding: "middle" as Conv2dPadding }),
    /conv2d: padding must be a number, \[height, width\], "valid", "same" or "full", got "middle"/,
  );
  assertThrows(
    () => conv2d(x, w3, { groups: 3, dilation: 5 }),
    /conv2d: the 3x3 kernel does not fit the 8x8 input with dilation \[5, 5\]/,
  );
  assertThrows(
    () => conv2d(x, w3, { groups: 3, bias: zeros([4]) }),
    /conv2d: bias \[4\] does not fit weight \[3, 2, 3, 3\] \(needs \[3\]\)/,
  );
});

Deno.test("Conv2d: options, PyTorch's parameter shapes and init", async () => {
  const conv = new Conv2d(6, 4, [3, 2], {
    stride: [2, 1],
    padding: "valid",
    dilation: [1, 2],
    groups: 2,
    rng: new Rng(3),
  });
  const names = [...conv.namedParameters()].map(([name, p]) => [name, p.shape]);
  if (JSON.stringify(names) !== JSON.stringify([["weight", [4, 3, 3, 2]], ["bias", [4]]])) {
    throw new Error(`Conv2d parameters: ${JSON.stringify(names)}`);
  }
  const bound = 1 / Math.sqrt(3 * 3 * 2);
  for (const p of [conv.weight, conv.bias!]) {
    const values = await p.toArray();
    if (values.some((v) => Math.abs(v) > bound)) throw new Error("Conv2d init out of bounds");
    if (Math.max(...values.map(Math.abs)) < bound / 2) throw new Error("Conv2d init too narrow");
  }
  const y = conv.forward(zeros([2, 6, 9, 8]));
  if (JSON.stringify(y.shape) !== JSON.stringify([2, 4, 4, 6])) {
    throw new Error(`Conv2d output ${JSON.stringify(y.shape)}`);
  }
  const same = new Conv2d(3, 5, 4, { padding: "same", bias: false });
  if (same.bias !== null) throw new Error("bias: false still has a bias");
  if (JSON.stringify(same.forward(zeros([1, 3, 7, 6])).shape) !== "[1,5,7,6]") {
    throw new Error("Conv2d 'same' changes the size");
  }
});

Deno.test("Conv2d: bad construction and inputs name the layer, the expected and the given shape", () => {
  assertThrows(
    () => new Conv2d(6, 4, 3, { groups: 4 }),
    /Conv2d\(6, 4, kernelSize=3\): groups 4 must divide both inChannels \(6\) and outChannels \(4\)/,
  );
  assertThrows(
    () => new Conv2d(6, 4, 3, { paddingMode: "reflect" as "zeros" }),
    /paddingMode "reflect" is not supported \(only "zeros"\)/,
  );
  const conv = new Conv2d(16, 32, [3, 3], { padding: "same" });
  assertThrows(
    () => conv.forward(zeros([2, 3, 8, 8])),
    /Conv2d\(16, 32, kernelSize=\[3,3\]\): expected input \[N, 16, H, W\] \(or unbatched \[16, H, W\]\), got \[2, 3, 8, 8\]/,
  );
  assertThrows(
    () => conv.forward(zeros([3, 8, 8])),
    /Conv2d\(16, 32, kernelSize=\[3,3\]\): expected input \[N, 16, H, W\] \(or unbatched \[16, H, W\]\), got \[3, 8, 8\]/,
  );
  assertThrows(
    () => new Conv2d(4, 4, 3, { padding: "same", stride: 2 }).forward(zeros([1, 4, 8, 8])),
    /padding "same" needs stride 1/,
  );
});

Deno.test("Conv2d: an unbatched input [C, H, W] gives [O, H', W'] and the batched values", async () => {
  const conv = new Conv2d(2, 3, [2, 3], { padding: "same", groups: 1, rng: new Rng(5) });
  const x = tensor(Float32Array.from({ length: 2 * 4 * 5 }, (_, i) => Math.sin(i)), [2, 4, 5]);
  const single = conv.forward(x);
  if (JSON.stringify(single.shape) !== "[3,4,5]") throw new Error(`shape ${single.shape}`);
  assertClose(await single.toArray(), await conv.forward(x.reshape([1, 2, 4, 5])).toArray());
});

Deno.test("conv2d, conv1d and convTranspose2d through the general kernels leave no GPU buffer behind", async () => {
  const run = () =>
    tidy(() => {
      const x = randUniform([2, 4, 7, 6], { seed: 1 });
      x.requiresGrad = true;
      const w = randUniform([4, 2, 3, 2], { seed: 2 });
      w.requiresGrad = true;
      const b = randUniform([4], { seed: 3 });
      b.requiresGrad = true;
      const y = conv2d(x, w, { bias: b, groups: 2, dilation: [2, 1], padding: "same" });
      const z = convTranspose2d(y, w, { bias: b, groups: 2, stride: 2 });
      const x1 = randUniform([2, 4, 9], { seed: 4 });
      x1.requiresGrad = true;
      const w1 = randUniform([4, 2, 3], { seed: 5 });
      w1.requiresGrad = true;
      const v = conv1d(x1, w1, { bias: b, groups: 2, stride: 2 });
      add(sum(z), sum(v)).backward();
      // Gradients are kept past the tidy: dispose them here.
      for (const leaf of [x, w, b, x1, w1]) leaf.grad!.dispose();
    });
  run();
  await sync();
  const before = memoryStats().liveBuffers;
  run();
  await sync();
  if (memoryStats().liveBuffers !== before) {
    throw new Error(`live buffers ${before} -> ${memoryStats().liveBuffers}`);
  }
});
