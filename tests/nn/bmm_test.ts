/**
 * `matmul` with torch.matmul's rules (1-D operands, batched stacks with broadcast batch
 * dimensions, transposes of the last two dimensions) and `linear` on inputs of any rank, against
 * the float64 references, forward and backward.
 *
 * @module
 */

import assert from "node:assert/strict";
import { linear, matmul } from "../../nn/ops/matmul.ts";
import { compiledKernelCount } from "../../nn/gpu/program.ts";
import { gpu } from "../../nn/gpu/device.ts";
import {
  batchedMatmulBackwardReference,
  batchedMatmulReference,
  batchedMatmulShape,
  linearAnyRankReference,
  linearBackwardReference,
} from "./reference/matmul.ts";
import { gpuReady } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import { assertThrows } from "../assert.ts";
import { ones, tensor, zeros } from "../../nn/tensor.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { sync } from "../../nn/gpu/stream.ts";
import { tidy } from "../../nn/scope.ts";

await gpuReady();

/** One batched case: A's and B's shapes (as stored) and the transposes. */
type Case = [readonly number[], readonly number[], { transposeA?: boolean; transposeB?: boolean }?];

const cases: Case[] = [
  // 1-D operands.
  [[3], [3]],
  [[3], [3, 5]],
  [[2, 3], [3]],
  [[5], [2, 5, 3]],
  [[2, 4, 5], [5]],
  [[1], [1]],
  // A stack times a matrix (folded into one 2-D matmul), and a matrix times a stack.
  [[1, 3, 5], [5, 2]],
  [[7, 3, 9], [9, 6]],
  [[2, 3, 3, 9], [9, 6]],
  [[3, 5], [4, 5, 2]],
  // Stacks, broadcast batch dimensions, batch 1.
  [[2, 1, 3, 4], [5, 4, 6]],
  [[4, 3, 5], [4, 5, 1]],
  [[1, 4, 6], [1, 6, 5]],
  [[1, 4, 6], [3, 6, 5]],
  [[3, 1, 2, 7], [1, 2, 7, 3]],
  [[2, 3, 1, 1], [2, 3, 1, 1]],
  // Transposes of the last two dimensions, with batches.
  [[3, 5, 4], [3, 5, 6], { transposeA: true }],
  [[2, 3, 5], [2, 6, 5], { transposeB: true }],
  [[2, 5, 3], [1, 6, 5], { transposeA: true, transposeB: true }],
  [[3, 5, 4], [5, 6], { transposeA: true }],
  [[6, 3, 5], [7, 5], { transposeB: true }],
  [[1, 5, 4], [5, 6], { transposeA: true }],
  [[6, 4], [3, 6, 5], { transposeA: true }],
  [[4, 6], [3, 5, 6], { transposeB: true }],
  [[7, 3], [7], { transposeA: true }],
  [[5], [3, 4, 5], { transposeB: true }],
  // Sizes that take the vec4 loads (multiples of 4), and tiles that do not divide the sizes.
  [[3, 8, 12], [3, 12, 16]],
  [[2, 12, 8], [2, 12, 16], { transposeA: true }],
  [[2, 1, 16, 8], [3, 20, 8], { transposeB: true }],
  [[2, 20, 40], [2, 40, 36]],
  [[3, 33, 18], [18, 17], { transposeB: false }],
];

function describe([aShape, bShape, options = {}]: Case): string {
  const a = `[${aShape.join(", ")}]${options.transposeA ? "ᵀ" : ""}`;
  const b = `[${bShape.join(", ")}]${options.transposeB ? "ᵀ" : ""}`;
  return `${a} @ ${b}`;
}

async function testCase([aShape, bShape, options = {}]: Case): Promise<void> {
  await testOp({
    name: `matmul ${describe([aShape, bShape, options])}`,
    inputs: [aShape, bShape],
    gpu: ([a, b]) => matmul(a, b, options),
    reference: ([a, b]) => batchedMatmulReference(a, aShape, b, bShape, options),
    backward: ([a, b], grad) => batchedMatmulBackwardReference(a, aShape, b, bShape, grad, options),
    outputShape: batchedMatmulShape(aShape, bShape, options),
    forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
    gradTolerance: { atol: 1e-4, rtol: 1e-4 },
  });
}

for (const c of cases) {
  Deno.test(`matmul ${describe(c)} matches the reference and finite differences`, () =>
    testCase(c));
}

Deno.test("matmul [32, 64, 64] @ [32, 64, 64] matches the reference (forward and backward)", () =>
  testCase([[32, 64, 64], [32, 64, 64]]));

Deno.test("matmul [3, 64, 40]ᵀ @ [1, 64, 48]ᵀ matches the reference (forward and backward)", () =>
  testCase([[3, 64, 40], [1, 48, 64], { transposeA: true, transposeB: true }]));

Deno.test("matmul of a batch past the z limit folds it into the grid (and stops at its end)", async () => {
  // limit + 2 matrices: two per z layer, the last layer half empty.
  const batch = gpu().limits.maxComputeWorkgroupsPerDimension + 2;
  await testCase([[batch, 1, 2], [batch, 2, 3]]);
});

Deno.test("matmul 0-d result of a dot product is a scalar", async () => {
  const a = tensor([1, 2, 3], [3]), b = tensor([4, 5, 6], [3]);
  const c = matmul(a, b);
  assert.deepEqual(c.shape, []);
  assert.equal(await c.item(), 32);
  for (const t of [a, b, c]) t.dispose();
});

Deno.test("matmul of a stack by a matrix runs the 2-D kernel of the stacked rows", () => {
  const a = zeros([7, 3, 9]), b = zeros([9, 6]), flat = zeros([21, 9]);
  matmul(flat, b).dispose();
  const before = compiledKernelCount();
  const c = matmul(a, b);
  assert.deepEqual(c.shape, [7, 3, 6]);
  assert.equal(compiledKernelCount(), before, "no new kernel: the [21, 9] @ [9, 6] one");
  for (const t of [a, b, flat, c]) t.dispose();
});

Deno.test("matmul of stacks is one kernel for the whole batch", () => {
  const a = zeros([5, 3, 4]), b = zeros([5, 4, 6]);
  const before = compiledKernelCount();
  matmul(a, b).dispose();
  assert.equal(compiledKernelCount(), before + 1);
  for (const t of [a, b]) t.dispose();
});

Deno.test("matmul: empty batches and empty matrices give empty results; K = 0 gives zeros", async () => {
  const [empty, batched, inner] = tidy(() => [
    matmul(zeros([0, 3, 4]), zeros([4, 2])),
    matmul(zeros([2, 0, 4]), zeros([2, 4, 3])),
    matmul(zeros([2, 3, 0]), zeros([2, 0, 2])),
  ]);
  assert.deepEqual(empty.shape, [0, 3, 2]);
  assert.deepEqual(batched.shape, [2, 0, 3]);
  assert.deepEqual(inner.shape, [2, 3, 2]);
  assert.deepEqual([...await inner.toArray()], new Array(12).fill(0));
  for (const t of [empty, batched, inner]) t.dispose();
});

for (
  const [xShape, inFeatures, outFeatures, withBias] of [
    [[2, 3, 7], 7, 5, true],
    [[2, 3, 7], 7, 4, false],
    [[7], 7, 5, true],
    [[1, 1, 1, 3], 3, 2, true],
    [[4, 2, 16], 16, 9, true],
  ] as const
) {
  const name = `linear [${xShape.join(", ")}] -> ${outFeatures}${withBias ? "" : " (no bias)"}`;
  Deno.test(`${name} matches the reference and finite differences`, async () => {
    const sizes = { inFeatures, outFeatures };
    const batch = xShape.reduce((p: number, d) => p * d, 1) / inFeatures;
    const full = { ...sizes, batch };
    await testOp({
      name,
      inputs: [xShape, [outFeatures, inFeatures], ...(withBias ? [[outFeatures]] : [])],
      gpu: ([x, w, b]) => linear(x, w, b),
      reference: ([x, w, b]) => linearAnyRankReference(x, w, b ?? null, sizes),
      backward: ([x, w], grad) =>
        linearBackwardReference(x, w, grad, full).slice(0, withBias ? 3 : 2),
      outputShape: [...xShape.slice(0, -1), outFeatures],
      forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
      gradTolerance: { atol: 1e-4, rtol: 1e-4 },
    });
  });
}

Deno.test("matmul and linear name the shapes when they do not fit", () => {
  tidy(() => {
    const t = (shape: number[]) => zeros(shape);
    assertThrows(
      () => matmul(t([2, 3, 4]), t([2, 5, 6])),
      /matmul: inner dimensions differ: A \[2, 3, 4\] has K = 4, B \[2, 5, 6\] has K = 5/,
    );
    assertThrows(
      () => matmul(t([3]), t([4])),
      /matmul: inner dimensions differ: A \[3\] has K = 3, B \[4\] has K = 4/,
    );
    assertThrows(
      () => matmul(t([3, 4]), t([5, 4]), { transposeA: true }),
      /matmul: inner dimensions differ: Aᵀ of A \[3, 4\] has K = 3, B \[5, 4\] has K = 5/,
    );
    assertThrows(
      () => matmul(t([2, 3, 4]), t([3, 4, 5])),
      /matmul: batch dimensions do not broadcast: A \[2, 3, 4\] has batch \[2\], B \[3, 4, 5\] has batch \[3\]/,
    );
    assertThrows(
      () => matmul(t([]), t([3])),
      /^matmul: both arguments need at least 1 dimension, got \[\] and \[3\]$/,
    );
    assertThrows(
      () => matmul(t([3]), t([3, 2]), { transposeA: true }),
      /matmul: transposeA needs A with at least 2 dimensions, got A \[3\]/,
    );
    assertThrows(
      () => linear(t([2, 3, 7]), t([5, 6])),
      /linear: input \[2, 3, 7\] does not fit weight \[5, 6\] \(needs input \[\*, 6\]/,
    );
    assertThrows(() => linear(t([]), t([5, 1])), /linear: input \[\] does not fit weight \[5, 1\]/);
  });
});

Deno.test("matmul and linear of every kind free what they create, forward and backward", async () => {
  const step = () => {
    const pairs: [number[], number[], { transposeA?: boolean; transposeB?: boolean }][] = [
      [[3], [3], {}],
      [[2, 3], [3], {}],
      [[5], [2, 5, 3], {}],
      [[4, 3, 5], [5, 2], {}],
      [[2, 1, 3, 4], [5, 6, 4], { transposeB: true }],
      [[6, 4], [3, 6, 5], { transposeA: true }],
    ];
    for (const [aShape, bShape, options] of pairs) {
      const a = ones(aShape, { requiresGrad: true }), b = ones(bShape, { requiresGrad: true });
      const out = matmul(a, b, options);
      const grad = ones(out.shape);
      out.backward({ grad });
      for (const t of [a.grad!, b.grad!, a, b, out, grad]) t.dispose();
    }
    const x = ones([2, 3, 7], { requiresGrad: true }), w = ones([5, 7], { requiresGrad: true });
    const bias = ones([5], { requiresGrad: true });
    const y = linear(x, w, bias);
    const grad = ones(y.shape);
    y.backward({ grad });
    for (const t of [x.grad!, w.grad!, bias.grad!, x, w, bias, y, grad]) t.dispose();
  };
  step();
  await sync();
  const before = memoryStats().liveBuffers;
  step();
  await sync();
  assert.equal(memoryStats().liveBuffers, before);
});
