import { adaptiveAvgPool2d, avgPool2d, type AvgPoolOptions } from "../../nn/ops/avg_pool.ts";
import { dropout2d, dropoutMask } from "../../nn/ops/dropout.ts";
import { maxPool2d, type MaxPoolOptions } from "../../nn/ops/max_pool.ts";
import type { Size2d } from "../../nn/ops/pool_geometry.ts";
import { AdaptiveAvgPool2d, AvgPool2d, MaxPool2d } from "../../nn/modules/pooling.ts";
import { Dropout2d, MaxPool2d as LayersMaxPool2d, Sequential } from "../../nn/modules/layers.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { Rng } from "../../nn/random.ts";
import { ones, type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, assertSteadyMemory, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";
import { testOp } from "./op_helper.ts";
import { maxPool2dBackwardReference, maxPool2dReference } from "./reference/max_pool.ts";
import {
  adaptiveAvgPool2dBackwardReference,
  adaptiveAvgPool2dReference,
  avgPool2dBackwardReference,
  avgPool2dReference,
  dropout2dReference,
} from "./reference/pool.ts";

await gpuReady();

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** `size` distinct nonzero values 0.013 apart (no ties within a finite-difference step), shuffled. */
function distinct(size: number, seed: number): Float64Array {
  const keys = randomArray(size, seed);
  const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => keys[a] - keys[b]);
  const values = new Float64Array(size);
  for (const [rank, i] of order.entries()) values[i] = (rank - Math.floor(size / 2) + 0.5) * 0.013;
  return values;
}

function hw(size: Size2d): [number, number] {
  return typeof size === "number" ? [size, size] : [size[0], size[1]];
}

// ---------------------------------------------------------------------------------------------
// maxPool2d: rectangular windows, strides and padding, dilation, ceil mode

const maxCases: [number[], MaxPoolOptions][] = [
  [[1, 1, 7, 9], { kernelSize: [2, 3] }],
  [[2, 3, 7, 5], { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0] }],
  [[1, 2, 9, 7], { kernelSize: 3, dilation: 2 }],
  [[2, 1, 10, 11], { kernelSize: [3, 2], dilation: [2, 3], padding: 1, stride: 2 }],
  [[1, 3, 7, 7], { kernelSize: 2, ceilMode: true }],
  [[2, 2, 6, 9], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }],
  [[1, 1, 5, 8], { kernelSize: [1, 3], stride: [1, 2], ceilMode: true }],
  [[3, 1, 1, 6], { kernelSize: [1, 2] }],
  [[1, 2, 8, 16], { kernelSize: 2, ceilMode: true }],
  // Rows of whole texels (W and OW multiples of 4, no dilation): the row kernel.
  [[2, 3, 8, 8], { kernelSize: 3, stride: 2, padding: 1 }],
  [[1, 2, 6, 16], { kernelSize: [3, 2], stride: [1, 2], padding: [1, 0] }],
  [[1, 1, 7, 12], { kernelSize: 3, stride: 1, padding: 1, ceilMode: true }],
  [[1, 2, 5, 12], { kernelSize: [2, 3], stride: [1, 3], padding: 1 }],
  [[2, 1, 9, 16], { kernelSize: 5, stride: 2, padding: 2, ceilMode: true }],
];
for (const [shape, options] of maxCases) {
  Deno.test(`maxPool2d matches the reference and finite differences (${shape}, ${JSON.stringify(options)})`, async () => {
    const size = sizeOf(shape);
    await testOp({
      name: `maxPool2d [${shape}] ${JSON.stringify(options)}`,
      inputs: [{ shape, data: distinct(size, size + 11) }],
      gpu: ([x]) => maxPool2d(x, options),
      reference: ([x]) => maxPool2dReference(x, shape, options).output,
      backward: ([x], grad) => {
        const { indices, shape: outShape } = maxPool2dReference(x, shape, options);
        return [maxPool2dBackwardReference(grad, indices, shape, outShape)];
      },
      outputShape: maxPool2dReference(new Float64Array(size), shape, options).shape,
    });
  });
}

// ---------------------------------------------------------------------------------------------
// avgPool2d

const avgCases: [number[], AvgPoolOptions][] = [
  [[1, 1, 4, 4], { kernelSize: 2 }],
  [[1, 1, 7, 5], { kernelSize: 2 }],
  [[2, 3, 7, 9], { kernelSize: [2, 3], stride: [1, 2] }],
  [[2, 3, 7, 5], { kernelSize: 3, stride: 2, padding: 1 }],
  [[1, 2, 7, 5], { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }],
  [[2, 1, 6, 7], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }],
  [[1, 2, 6, 7], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }],
  [[1, 1, 7, 7], { kernelSize: 2, ceilMode: true }],
  [[1, 2, 5, 6], { kernelSize: [3, 2], divisorOverride: 5 }],
  [[1, 2, 5, 6], { kernelSize: 3, padding: 1, stride: 1, divisorOverride: -3 }],
  [[3, 1, 1, 5], { kernelSize: [1, 2], stride: 1 }],
  // Rows of whole texels (W and OW multiples of 4): the row kernel.
  [[2, 3, 8, 8], { kernelSize: 2 }],
  [[1, 2, 8, 8], { kernelSize: 3, stride: 2, padding: 1 }],
  [[1, 2, 9, 16], { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }],
  [[1, 2, 8, 16], { kernelSize: [3, 4], stride: [2, 4], padding: [1, 2] }],
  [[2, 1, 7, 8], { kernelSize: [2, 1], stride: [3, 1], ceilMode: true }],
  [[1, 1, 6, 32], { kernelSize: 5, stride: 2, padding: 2, ceilMode: true, divisorOverride: 7 }],
  [[1, 2, 5, 12], { kernelSize: [2, 3], stride: [1, 3], padding: [1, 1], countIncludePad: false }],
];
for (const [shape, options] of avgCases) {
  Deno.test(`avgPool2d matches the reference and finite differences (${shape}, ${JSON.stringify(options)})`, async () => {
    const size = sizeOf(shape);
    await testOp({
      name: `avgPool2d [${shape}] ${JSON.stringify(options)}`,
      inputs: [shape],
      gpu: ([x]) => avgPool2d(x, options),
      reference: ([x]) => avgPool2dReference(x, shape, options).output,
      backward: (_, grad) => [avgPool2dBackwardReference(grad, shape, options)],
      outputShape: avgPool2dReference(new Float64Array(size), shape, options).shape,
    });
  });
}

Deno.test("avgPool2d on larger tensors (row kernel and window kernel) matches the reference", async () => {
  for (
    const [shape, options] of [
      [[4, 16, 32, 32], { kernelSize: 3, stride: 2, padding: 1 }],
      [[4, 16, 32, 32], { kernelSize: 2 }],
      [[3, 5, 17, 19], { kernelSize: 3, stride: 2, padding: 1 }],
    ] as [number[], AvgPoolOptions][]
  ) {
    await testOp({
      name: `avgPool2d [${shape}] ${JSON.stringify(options)}`,
      inputs: [shape],
      gpu: ([x]) => avgPool2d(x, options),
      reference: ([x]) => avgPool2dReference(x, shape, options).output,
      backward: (_, grad) => [avgPool2dBackwardReference(grad, shape, options)],
    });
  }
});

// ---------------------------------------------------------------------------------------------
// adaptiveAvgPool2d

const adaptiveCases: [number[], Size2d][] = [
  [[1, 1, 7, 7], 3],
  [[2, 3, 7, 5], [3, 2]],
  [[1, 2, 5, 6], [5, 6]],
  [[2, 1, 6, 9], [4, 4]],
  [[1, 1, 3, 4], [5, 7]],
  [[3, 2, 8, 8], 1],
  [[1, 2, 10, 13], [3, 5]],
  [[1, 2, 6, 12], [4, 5]],
  [[2, 1, 5, 8], [3, 11]],
];
for (const [shape, outputSize] of adaptiveCases) {
  Deno.test(`adaptiveAvgPool2d matches the reference and finite differences (${shape} → ${outputSize})`, async () => {
    const out = hw(outputSize);
    await testOp({
      name: `adaptiveAvgPool2d [${shape}] → ${outputSize}`,
      inputs: [shape],
      gpu: ([x]) => adaptiveAvgPool2d(x, outputSize),
      reference: ([x]) => adaptiveAvgPool2dReference(x, shape, out).output,
      backward: (_, grad) => [adaptiveAvgPool2dBackwardReference(grad, shape, out)],
      outputShape: [shape[0], shape[1], ...out],
    });
  });
}

// ---------------------------------------------------------------------------------------------
// dropout2d

Deno.test("dropout2d zeroes whole channels as dropoutMask(N * C) says, gradient too", async () => {
  for (
    const [shape, p, seed] of [
      [[2, 3, 5, 7], 0.5, 3],
      [[1, 6, 1, 1], 0.3, 11],
      [[4, 5, 3], 0.4, 2],
      [[3, 7, 2, 6], 0.8, 0xffffffff],
    ] as [number[], number, number][]
  ) {
    const planeSize = sizeOf(shape) / (shape[0] * shape[1]);
    const mask = dropoutMask(shape[0] * shape[1], p, seed);
    await testOp({
      name: `dropout2d [${shape}] p ${p} seed ${seed}`,
      inputs: [shape],
      gpu: ([x]) => dropout2d(x, { p, training: true, seed }),
      reference: ([x]) => dropout2dReference(x, mask, planeSize, p),
      backward: (_, grad) => [dropout2dReference(grad, mask, planeSize, p)],
      outputShape: shape,
    });
  }
});

Deno.test("dropout2d's gradient by finite differences", async () => {
  const shape = [2, 4, 3, 3];
  const mask = dropoutMask(8, 0.5, 9);
  await testOp({
    name: "dropout2d [2, 4, 3, 3] p 0.5 seed 9",
    inputs: [shape],
    gpu: ([x]) => dropout2d(x, { p: 0.5, training: true, seed: 9 }),
    reference: ([x]) => dropout2dReference(x, mask, 9, 0.5),
  });
});

Deno.test("dropout2d keeps about 1 - p of the channels, each whole; seeds fix the mask", async () => {
  const shape = [64, 128, 2, 3];
  for (const p of [0.2, 0.5, 0.9]) {
    const out = await dropout2d(ones(shape), { p, training: true, seed: 42 }).toArray();
    let kept = 0;
    for (let plane = 0; plane < 64 * 128; plane++) {
      const values = new Set(out.subarray(plane * 6, plane * 6 + 6));
      assert.equal(values.size, 1, `p ${p}: channel ${plane} is not dropped whole`);
      const [value] = values;
      if (value !== 0) {
        assertClose([value], [1 / (1 - p)], { rtol: 1e-6 }, "kept scale");
        kept++;
      }
    }
    const fraction = kept / (64 * 128);
    // The standard deviation of the fraction is at most 0.0056: allow 5 of them.
    assert.ok(Math.abs(fraction - (1 - p)) < 0.028, `p ${p}: kept ${fraction}`);
  }
  const a = await dropout2d(ones(shape), { p: 0.5, training: true, seed: 7 }).toArray();
  const b = await dropout2d(ones(shape), { p: 0.5, training: true, seed: 7 }).toArray();
  const c = await dropout2d(ones(shape), { p: 0.5, training: true, seed: 8 }).toArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

Deno.test("dropout2d: eval mode and p = 0 are views of x, p = 1 gives zeros", async () => {
  const data = Float32Array.from(randomArray(24, 5));
  for (const options of [{ p: 0.5, training: false, seed: 1 }, { p: 0, training: true }]) {
    const x = tensor(data, [2, 3, 2, 2], { requiresGrad: true });
    const out = dropout2d(x, options);
    assert.equal(out.buffer, x.buffer);
    out.backward({ grad: tensor(data, [2, 3, 2, 2]) });
    assertClose(await x.grad!.toArray(), data);
  }
  const x = tensor(data, [2, 3, 4], { requiresGrad: true });
  const out = dropout2d(x, { p: 1, training: true, seed: 3 });
  assert.deepEqual(Array.from(await out.toArray()), new Array(24).fill(0));
  out.backward({ grad: ones([2, 3, 4]) });
  assert.deepEqual(Array.from(await x.grad!.toArray()), new Array(24).fill(0));
});

Deno.test("Dropout2d draws a new mask each training call from its generator, identity in eval", async () => {
  const shape = [4, 16, 2, 2];
  const layer = new Dropout2d(0.5, { rng: new Rng(5) });
  const twin = new Dropout2d(0.5, { rng: new Rng(5) });
  const first = await layer.forward(ones(shape)).toArray();
  const second = await layer.forward(ones(shape)).toArray();
  assert.notDeepEqual(first, second);
  assert.deepEqual(await twin.forward(ones(shape)).toArray(), first);
  const seed = new Rng(5).nextUint32();
  const mask = dropoutMask(64, 0.5, seed);
  assertClose(first, dropout2dReference(new Float64Array(256).fill(1), mask, 4, 0.5));
  layer.eval();
  assert.deepEqual(Array.from(await layer.forward(ones(shape)).toArray()), new Array(256).fill(1));
});

// ---------------------------------------------------------------------------------------------
// Modules

Deno.test("pooling modules equal their functional ops; MaxPool2d is still exported by layers.ts", async () => {
  assert.equal(LayersMaxPool2d, MaxPool2d);
  const shape = [2, 3, 9, 10];
  const data = Float32Array.from(randomArray(sizeOf(shape), 8));
  const x = tensor(data, shape);
  const checks: [string, Promise<Float32Array>, Float64Array][] = [
    [
      "MaxPool2d",
      new MaxPool2d([3, 2], { stride: 2, padding: 1, dilation: [1, 2], ceilMode: true })
        .forward(x).toArray(),
      maxPool2dReference(data, shape, {
        kernelSize: [3, 2],
        stride: 2,
        padding: 1,
        dilation: [1, 2],
        ceilMode: true,
      }).output,
    ],
    [
      "AvgPool2d",
      new AvgPool2d(3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false })
        .forward(x).toArray(),
      avgPool2dReference(data, shape, {
        kernelSize: 3,
        stride: 2,
        padding: 1,
        ceilMode: true,
        countIncludePad: false,
      }).output,
    ],
    [
      "AvgPool2d divisorOverride",
      new AvgPool2d([2, 3], { divisorOverride: 4 }).forward(x).toArray(),
      avgPool2dReference(data, shape, { kernelSize: [2, 3], divisorOverride: 4 }).output,
    ],
    [
      "AdaptiveAvgPool2d",
      new AdaptiveAvgPool2d([4, 3]).forward(x).toArray(),
      adaptiveAvgPool2dReference(data, shape, [4, 3]).output,
    ],
  ];
  for (const [name, actual, expected] of checks) assertClose(await actual, expected, {}, name);
});

// ---------------------------------------------------------------------------------------------
// Errors

Deno.test("pooling ops and layers reject bad input, naming the op or layer and what was given", () => {
  const x = zeros([1, 1, 4, 4]);
  assertThrows(
    () => avgPool2d(zeros([2, 4, 4]), { kernelSize: 2 }),
    /^avgPool2d: needs x of shape \[N, C, H, W\] \(rank 4\), got \[2, 4, 4\] \(rank 3\)/,
  );
  assertThrows(
    () => adaptiveAvgPool2d(zeros([4, 4]), 2),
    /^adaptiveAvgPool2d: needs x of shape \[N, C, H, W\] \(rank 4\), got \[4, 4\]/,
  );
  assertThrows(
    () => maxPool2d(zeros([1, 2, 1, 4, 4]), { kernelSize: 2 }),
    /^maxPool2d: needs x of shape \[N, C, H, W\] \(rank 4\), got \[1, 2, 1, 4, 4\]/,
  );
  // PyTorch: "pad should be at most half of kernel size".
  assertThrows(
    () => avgPool2d(x, { kernelSize: 3, padding: 2 }),
    /^avgPool2d: padding 2 must be at most half the kernel size 3/,
  );
  assertThrows(
    () => maxPool2d(x, { kernelSize: [2, 4], padding: [1, 3] }),
    /^maxPool2d: padding 3 must be at most half the kernel size 4/,
  );
  assertThrows(
    () => avgPool2d(x, { kernelSize: 5 }),
    /^avgPool2d: a 5x5 window .* does not fit x of shape \[1, 1, 4, 4\]/,
  );
  assertThrows(
    () => maxPool2d(x, { kernelSize: 2, dilation: 4 }),
    /^maxPool2d: a 2x2 window .*dilation 4, 4.* does not fit/,
  );
  assertThrows(() => avgPool2d(x, { kernelSize: [2, 0] }), /^avgPool2d: kernelSize must be/);
  assertThrows(
    () => avgPool2d(x, { kernelSize: [2, 2, 2] as unknown as [number, number] }),
    /^avgPool2d: kernelSize must be a number or \[h, w\], got \[2,2,2\]/,
  );
  assertThrows(
    () => avgPool2d(x, { kernelSize: 2, divisorOverride: 0 }),
    /^avgPool2d: divisorOverride must be a nonzero integer, got 0/,
  );
  assertThrows(() => adaptiveAvgPool2d(x, [2, 0]), /^adaptiveAvgPool2d: outputSize must be/);
  assertThrows(
    () => dropout2d(zeros([4, 4]), { p: 0.5, training: true, seed: 1 }),
    /^dropout2d: needs x of shape \[N, C, H, W\] \(rank 4\) or \[N, C, L\] \(rank 3\), got \[4, 4\]/,
  );
  assertThrows(() => dropout2d(x, { p: 2, training: true }), /^dropout2d: p must be in \[0, 1\]/);
  assertThrows(
    () => dropout2d(x, { p: 0.5, training: true, seed: -1 }),
    /^dropout2d: seed must be an integer/,
  );
  assertThrows(() => new Dropout2d(1.5), /^Dropout2d: p must be in \[0, 1\], got 1.5/);
  const flat = zeros([3, 16]);
  assertThrows(
    () => new MaxPool2d(2).forward(flat),
    /^MaxPool2d: needs input of shape \[N, C, H, W\] \(rank 4\), got \[3, 16\] \(rank 2\)/,
  );
  assertThrows(() => new AvgPool2d(2).forward(flat), /^AvgPool2d: needs input of shape/);
  assertThrows(
    () => new AdaptiveAvgPool2d(2).forward(flat),
    /^AdaptiveAvgPool2d: needs input of shape/,
  );
  assertThrows(() => new Dropout2d().forward(flat), /^Dropout2d: needs input of shape/);
});

// ---------------------------------------------------------------------------------------------
// PyTorch itself

interface OracleCase {
  op: "max_pool2d" | "avg_pool2d" | "adaptive_avg_pool2d" | "dropout2d";
  shape: number[];
  options: Record<string, unknown>;
  /** Positions set to NaN. */
  nan?: number[];
}

const ORACLE_CASES: OracleCase[] = [
  ...maxCases.map(([shape, options]): OracleCase => ({
    op: "max_pool2d",
    shape,
    options: { ...options },
  })),
  {
    op: "max_pool2d",
    shape: [1, 2, 8, 16],
    options: { kernelSize: 2 },
    nan: [0, 17, 18, 150, 151],
  },
  {
    op: "max_pool2d",
    shape: [1, 1, 6, 8],
    options: { kernelSize: 3, stride: 1, padding: 1 },
    nan: [9, 10, 30],
  },
  {
    op: "max_pool2d",
    shape: [1, 1, 9, 7],
    options: { kernelSize: 3, dilation: 2, padding: 1 },
    nan: [10, 24, 25],
  },
  ...avgCases.map(([shape, options]): OracleCase => ({
    op: "avg_pool2d",
    shape,
    options: { ...options },
  })),
  ...adaptiveCases.map(([shape, outputSize]): OracleCase => ({
    op: "adaptive_avg_pool2d",
    shape,
    options: { outputSize },
  })),
  { op: "dropout2d", shape: [2, 3, 4, 5], options: { p: 0, training: true } },
  { op: "dropout2d", shape: [2, 3, 4, 5], options: { p: 0.5, training: false } },
  { op: "dropout2d", shape: [4, 8, 3, 5], options: { p: 0.5, training: true } },
  { op: "dropout2d", shape: [4, 8, 7], options: { p: 0.5, training: true } },
];

function runOp(c: OracleCase, x: Tensor): Tensor {
  switch (c.op) {
    case "max_pool2d":
      return maxPool2d(x, c.options as unknown as MaxPoolOptions);
    case "avg_pool2d":
      return avgPool2d(x, c.options as unknown as AvgPoolOptions);
    case "adaptive_avg_pool2d":
      return adaptiveAvgPool2d(x, c.options.outputSize as Size2d);
    case "dropout2d":
      return dropout2d(x, { ...c.options as { p: number; training: boolean }, seed: 1 });
  }
}

/** For each channel (n, c) of a dropout's output, whether it is zero throughout (or none is). */
function droppedChannels(values: ArrayLike<number>, shape: number[]): boolean[] {
  const planeSize = sizeOf(shape) / (shape[0] * shape[1]);
  return Array.from({ length: shape[0] * shape[1] }, (_, plane) => {
    const zeros = Array.from({ length: planeSize }, (_, k) => values[plane * planeSize + k] === 0);
    assert.ok(zeros.every((z) => z === zeros[0]), `channel ${plane} is dropped only in part`);
    return zeros[0];
  });
}

Deno.test("pooling and dropout2d agree with PyTorch: outputs and input gradients", async () => {
  if (skipWithoutTorch("pool ops vs PyTorch")) return;
  const cases = ORACLE_CASES.map((c, n) => {
    const data = Array.from(Float32Array.from(distinct(sizeOf(c.shape), 300 + n)));
    for (const at of c.nan ?? []) data[at] = NaN;
    return { ...c, data };
  });
  const results: { shape: number[]; out: Float32Array; dx: Float32Array; grad: number[] }[] = [];
  for (const c of cases) {
    const x = tensor(c.data, c.shape, { requiresGrad: true });
    const out = runOp(c, x);
    const grad = Array.from(Float32Array.from(randomArray(out.size, 7)));
    out.backward({ grad: tensor(grad, out.shape) });
    results.push({
      shape: [...out.shape],
      out: await out.toArray(),
      dx: await x.grad!.toArray(),
      grad,
    });
  }
  const { answers } = await askTorch<{
    answers: { shape: number[]; values: number[]; grad: number[] }[];
  }>("pool.py", {
    cases: cases.map((c, n) => ({
      op: c.op,
      shape: c.shape,
      data: c.data,
      options: c.options,
      grad: results[n].grad,
    })),
  });
  for (const [n, c] of cases.entries()) {
    const name = `${c.op} [${c.shape}] ${JSON.stringify(c.options)}`;
    const ours = results[n], theirs = answers[n];
    assert.deepEqual(ours.shape, theirs.shape, `${name}: shape`);
    if (c.op === "dropout2d" && c.options.training && c.options.p !== 0) {
      // Random masks differ; both must drop whole channels and scale the rest by 1 / (1 - p).
      const p = c.options.p as number;
      for (
        const [who, values, dx] of [
          ["wgtorch", ours.out, ours.dx],
          ["PyTorch", theirs.values, theirs.grad],
        ] as const
      ) {
        const dropped = droppedChannels(values, c.shape);
        assert.ok(dropped.includes(true) && dropped.includes(false), `${name}: ${who} mask`);
        const planeSize = sizeOf(c.shape) / dropped.length;
        const keep = dropped.map((d) => d ? 0 : 1);
        assertClose(values, dropout2dReference(c.data, keep, planeSize, p), {}, `${name}: ${who}`);
        assertClose(
          dx,
          dropout2dReference(ours.grad, keep, planeSize, p),
          {},
          `${name}: ${who} dx`,
        );
      }
      continue;
    }
    const tolerance = { atol: 1e-5, rtol: 1e-4, equalNan: true };
    assertClose(ours.out, theirs.values, tolerance, `${name}: forward`);
    assertClose(ours.dx, theirs.grad, tolerance, `${name}: gradient`);
  }
});

Deno.test("pooling layers and Dropout2d: repeated forward and backward leave no buffer behind", async () => {
  const model = new Sequential(
    new MaxPool2d(3, { stride: 2, padding: 1, ceilMode: true }),
    new Dropout2d(0.3, { rng: new Rng(1) }),
    new AvgPool2d([2, 3], { stride: 1, countIncludePad: false, padding: 1 }),
    new AdaptiveAvgPool2d([3, 2]),
  );
  const x = tensor(Float32Array.from(randomArray(2 * 3 * 11 * 9, 4)), [2, 3, 11, 9], {
    requiresGrad: true,
  });
  const step = () => {
    const out = model.forward(x);
    const loss = sum(out);
    loss.backward();
    loss.dispose();
    out.dispose();
    x.grad?.dispose();
    x.grad = null;
  };
  await assertSteadyMemory(step);
  x.dispose();
});
