import assert from "node:assert/strict";
import { gather, indexSelect, oneHot } from "../../nn/ops/indexing.ts";
import { cast } from "../../nn/ops/cast.ts";
import {
  gatherBackwardReference,
  gatherReference,
  indexSelectBackwardReference,
  indexSelectReference,
  oneHotReference,
} from "./reference/indexing.ts";
import { type OpInput, testOp } from "./op_helper.ts";
import { gpuReady } from "../testing.ts";
import { tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";

await gpuReady();

/** An i32 index input: given values, or random ones in [low, high). */
function indexInput(
  shape: readonly number[],
  high: number,
  data?: readonly number[],
  low = 0,
): OpInput {
  return { shape, dtype: "i32", high, low, data };
}

interface SelectCase {
  x: number[];
  dim: number;
  /** The index's values (default: random, repeats likely, in range). */
  index?: number[];
  count?: number;
}

const SELECT_CASES: readonly SelectCase[] = [
  { x: [7], dim: 0, count: 5 },
  { x: [5, 3], dim: 0, index: [4, 0, 4, 4, 2, 1] }, // repeated indices add their gradients
  { x: [3, 1, 5], dim: -1, count: 7 },
  { x: [3, 1, 5], dim: 1, index: [0, 0, 0] },
  { x: [1, 6, 3], dim: 1, count: 9 },
  { x: [2, 5, 3], dim: -2, index: [3, -1, 5, 1, 99] }, // out of range: zeros, no gradient
  { x: [2, 3], dim: 1, index: [] },
];

for (const c of SELECT_CASES) {
  const dim = c.dim < 0 ? c.dim + c.x.length : c.dim;
  const count = c.index?.length ?? c.count!;
  Deno.test(`indexSelect x [${c.x}] dim ${c.dim} index [${c.index ?? count}]`, async () => {
    await testOp({
      name: `indexSelect [${c.x}] dim ${c.dim}`,
      inputs: [c.x, indexInput([count], c.x[dim], c.index)],
      gpu: ([x, index]) => indexSelect(x, c.dim, index),
      reference: ([x, index]) => indexSelectReference(x, c.x, dim, index),
      backward: ([, index], grad) => [indexSelectBackwardReference(grad, c.x, dim, index), null],
      outputShape: c.x.map((n, d) => d === dim ? count : n),
    });
  });
}

Deno.test("indexSelect of an i32 tensor gives i32 values, exactly", async () => {
  await testOp({
    name: "indexSelect i32",
    inputs: [
      indexInput([4, 3], 1 << 30, undefined, -(1 << 30)),
      indexInput([5], 4, [3, 3, 0, 7, 1]),
    ],
    gpu: ([x, index]) => indexSelect(x, 0, index),
    reference: ([x, index]) => indexSelectReference(x, [4, 3], 0, index),
    outputDtype: "i32",
    outputShape: [5, 3],
  });
});

interface GatherCase {
  x: number[];
  dim: number;
  index: number[];
  /** The index's values (default random, in range). */
  data?: number[];
}

const GATHER_CASES: readonly GatherCase[] = [
  { x: [6], dim: 0, index: [9] },
  { x: [3, 5], dim: 1, index: [3, 7] }, // index longer than x along dim
  { x: [3, 5], dim: 0, index: [2, 4] }, // index smaller off dim
  { x: [3, 1, 5], dim: -1, index: [3, 1, 5] },
  { x: [3, 1, 5], dim: 1, index: [2, 1, 3] },
  { x: [1, 4, 3], dim: -2, index: [1, 6, 2] },
  { x: [2, 3], dim: 1, index: [2, 3], data: [2, -1, 3, 0, 0, 100] }, // out of range: zero
  { x: [], dim: 0, index: [], data: [0] }, // 0-d
  { x: [], dim: -1, index: [], data: [1] }, // 0-d, out of range
];

for (const c of GATHER_CASES) {
  const dim = c.x.length === 0 ? 0 : c.dim < 0 ? c.dim + c.x.length : c.dim;
  const xShape = c.x.length === 0 ? [1] : c.x;
  const indexShape = c.x.length === 0 ? [1] : c.index;
  Deno.test(`gather x [${c.x}] dim ${c.dim} index [${c.index}]`, async () => {
    await testOp({
      name: `gather [${c.x}] dim ${c.dim} [${c.index}]`,
      inputs: [c.x, indexInput(c.index, xShape[dim], c.data)],
      gpu: ([x, index]) => gather(x, c.dim, index),
      reference: ([x, index]) => gatherReference(x, xShape, dim, index, indexShape),
      backward: ([, index], grad) => [
        gatherBackwardReference(grad, xShape, dim, index, indexShape),
        null,
      ],
      outputShape: c.index,
    });
  });
}

Deno.test("gather of an i32 tensor gives i32 values, exactly", async () => {
  await testOp({
    name: "gather i32",
    inputs: [indexInput([3, 4], 1 << 30, undefined, -(1 << 30)), indexInput([3, 2], 4)],
    gpu: ([x, index]) => gather(x, -1, index),
    reference: ([x, index]) => gatherReference(x, [3, 4], 1, index, [3, 2]),
    outputDtype: "i32",
    outputShape: [3, 2],
  });
});

Deno.test("oneHot: i32 rows, zero rows out of range, usable as f32 through cast", async () => {
  for (
    const [shape, classes, data] of [
      [[5], 3, [2, 0, 1, 1, 2]],
      [[2, 3], 4, [3, -1, 0, 4, 2, 2]],
      [[], 7, [6]],
      [[1], 1, [0]],
    ] as const
  ) {
    await testOp({
      name: `oneHot [${shape}] ${classes}`,
      inputs: [indexInput(shape, classes, data)],
      gpu: ([index]) => oneHot(index, classes),
      reference: ([index]) => oneHotReference(index, classes),
      outputDtype: "i32",
      outputShape: [...shape, classes],
    });
  }
  const labels = tensor([1, 0], [2], { dtype: "i32" });
  const target = tidy(() => cast(oneHot(labels, 3), "f32"));
  assert.equal(target.dtype, "f32");
  assert.deepEqual(Array.from(await target.toArray()), [0, 1, 0, 1, 0, 0]);
  target.dispose();
  labels.dispose();
});

Deno.test("indexing ops refuse bad input, naming the op, what was given and what is right", () => {
  const x = tensor(new Float32Array(6), [2, 3]);
  const index = tensor([0, 1], [2], { dtype: "i32" });
  const index2d = tensor([0, 1], [1, 2], { dtype: "i32" });
  const floatIndex = tensor([0, 1], [2]);
  const mask = tensor(new Uint8Array(6), [2, 3], { dtype: "u8" });
  const scalar = tensor([1], []);
  const big = tensor(new Int32Array(12), [3, 4], { dtype: "i32" });
  try {
    assert.throws(() => indexSelect(x, 0, floatIndex), {
      message: 'indexSelect: index must be an i32 tensor, got f32 (cast(index, "i32") first)',
    });
    assert.throws(() => indexSelect(x, 0, index2d), {
      message: "indexSelect: index must be 1-D, got shape [1, 2] (rank 2)",
    });
    assert.throws(() => indexSelect(x, 2, index), {
      message: "indexSelect: dim 2 is out of range for x of shape [2, 3] (rank 2: dim must be " +
        "in [-2, 1])",
    });
    assert.throws(() => indexSelect(x, -3, index), /indexSelect: dim -3 is out of range/);
    assert.throws(() => indexSelect(scalar, 0, index), {
      message: "indexSelect: x must have at least one dimension, got a 0-d tensor",
    });
    assert.throws(() => indexSelect(mask, 0, index), {
      message: 'indexSelect: x must be an f32 or i32 tensor, got u8 (cast(x, "f32") first)',
    });
    assert.throws(() => gather(x, 1, index), {
      message: "gather: index must have x's rank: x has shape [2, 3] (rank 2), index [2] (rank 1)",
    });
    assert.throws(() => gather(x, 1, big), {
      message: "gather: index of shape [3, 4] is larger than x of shape [2, 3] in dimension 0 " +
        "(only dimension 1, the one gathered along, may be)",
    });
    assert.throws(() => gather(x, 2, index2d), /gather: dim 2 is out of range for x of shape/);
    assert.throws(() => gather(x, 0, tensor([0, 1], [1, 2])), /gather: index must be an i32/);
    assert.throws(() => oneHot(floatIndex, 3), /oneHot: index must be an i32 tensor, got f32/);
    assert.throws(() => oneHot(index, 0), {
      message: "oneHot: numClasses must be a positive integer, got 0",
    });
  } finally {
    for (const t of [x, index, index2d, floatIndex, mask, scalar, big]) t.dispose();
  }
});

Deno.test("indexing forward and backward leave no GPU buffer behind", async () => {
  const x = tensor(Float32Array.from({ length: 12 }, (_, i) => i), [3, 4], { requiresGrad: true });
  const index = tensor([2, 0, 2], [3], { dtype: "i32" });
  const gIndex = tensor([1, 3, 0, 0, 2, 1], [3, 2], { dtype: "i32" });
  const run = () => {
    tidy(() => {
      indexSelect(x, 0, index).backward({ grad: tensor(new Float32Array(12).fill(1), [3, 4]) });
      gather(x, 1, gIndex).backward({ grad: tensor(new Float32Array(6).fill(1), [3, 2]) });
      oneHot(index, 3);
    });
    x.grad?.dispose();
    x.grad = null;
  };
  run();
  await x.toArray();
  const before = memoryStats().liveBuffers;
  run();
  await x.toArray();
  assert.equal(memoryStats().liveBuffers, before);
  for (const t of [x, index, gIndex]) t.dispose();
});
