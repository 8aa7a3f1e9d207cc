import { eq, ge, gt, le, lt, ne, where } from "../../nn/ops/compare.ts";
import type { Operand } from "../../nn/ops/elementwise.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { assert } from "../assert.ts";
import {
  broadcastAll,
  type CompareOpName,
  compareReference,
  whereBackwardReference,
  whereReference,
} from "./reference/compare.ts";
import { testOp } from "./op_helper.ts";
import { gpuReady, randomArray } from "../testing.ts";

await gpuReady();

const COMPARE: Record<CompareOpName, (a: Operand, b: Operand) => Tensor> = {
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
};

const SHAPES: [number[], number[]][] = [
  [[2, 3], [3]],
  [[3], [2, 3]],
  [[2, 1, 3], [4, 1]],
  [[], [5]],
  [[5], []],
  [[7], [7]],
  [[33, 1, 65], [1, 17, 65]],
];

const sizeOf = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/** Values on a coarse grid, so that many pairs are equal. */
const grid = (shape: readonly number[], seed: number) =>
  randomArray(sizeOf(shape), seed).map((v) => Math.round(v * 3) / 2);

for (const [op, fn] of Object.entries(COMPARE) as [CompareOpName, typeof eq][]) {
  Deno.test(`${op} broadcasts and gives a u8 mask, against the reference`, async () => {
    for (const [aShape, bShape] of SHAPES) {
      await testOp({
        name: `${op} ${JSON.stringify(aShape)} ${JSON.stringify(bShape)}`,
        inputs: [{ shape: aShape, data: grid(aShape, 3), grad: false }, {
          shape: bShape,
          data: grid(bShape, 4),
          grad: false,
        }],
        gpu: ([a, b]) => fn(a, b),
        reference: ([a, b]) => compareReference(op, a, aShape, b, bShape),
        outputShape: broadcastAll([aShape, bShape]),
        outputDtype: "u8",
      });
    }
    for (const shape of [[], [7], [2, 1, 5]]) {
      const data = grid(shape, 5);
      await testOp({
        name: `${op}(x ${JSON.stringify(shape)}, 0.5)`,
        inputs: [{ shape, data, grad: false }],
        gpu: ([x]) => fn(x, 0.5),
        reference: ([x]) => compareReference(op, x, shape, [0.5], []),
        outputShape: shape,
        outputDtype: "u8",
      });
      await testOp({
        name: `${op}(0.5, x ${JSON.stringify(shape)})`,
        inputs: [{ shape, data, grad: false }],
        gpu: ([x]) => fn(0.5, x),
        reference: ([x]) => compareReference(op, [0.5], [], x, shape),
        outputShape: shape,
        outputDtype: "u8",
      });
    }
  });
}

Deno.test("comparisons: NaN compares false except ne (as PyTorch)", async () => {
  // The masks torch.eq, ne, lt, le, gt, ge give on these pairs (checked with PyTorch 2).
  const a = [NaN, 1, NaN, Infinity, -Infinity, 0];
  const b = [1, NaN, NaN, Infinity, 0, -0];
  const expected: Record<CompareOpName, number[]> = {
    eq: [0, 0, 0, 1, 0, 1],
    ne: [1, 1, 1, 0, 1, 0],
    lt: [0, 0, 0, 0, 1, 0],
    le: [0, 0, 0, 1, 1, 1],
    gt: [0, 0, 0, 0, 0, 0],
    ge: [0, 0, 0, 1, 0, 1],
  };
  const x = tensor(new Float32Array(a), [6]);
  const y = tensor(new Float32Array(b), [6]);
  const xb = x.view([6, 1]);
  for (const [op, fn] of Object.entries(COMPARE) as [CompareOpName, typeof eq][]) {
    const mask = fn(x, y);
    assert.equal(mask.dtype, "u8");
    assert.equal(mask.requiresGrad, false);
    assert.deepEqual(Array.from(await mask.toTypedArray()), expected[op], op);
    assert.deepEqual(Array.from(compareReference(op, a, [6], b, [6])), expected[op], `${op} ref`);
    // Broadcast kernel: [6, 1] against [6], every pair.
    const all = fn(xb, y);
    assert.deepEqual(
      Array.from(await all.toTypedArray()),
      Array.from(compareReference(op, a, [6, 1], b, [6])),
      `${op} broadcast`,
    );
    const number = fn(x, NaN);
    assert.deepEqual(
      Array.from(await number.toTypedArray()),
      new Array(6).fill(op === "ne" ? 1 : 0),
      `${op} NaN number`,
    );
    for (const t of [mask, all, number]) t.dispose();
  }
  for (const t of [xb, x, y]) t.dispose();
});

const WHERE_SHAPES: [number[], number[], number[]][] = [
  [[2, 3], [2, 3], [3]],
  [[3], [2, 3], [2, 1]],
  [[4, 1], [2, 1, 3], [3]],
  [[], [5], [5]],
  [[5], [], [1]],
  [[2, 1, 3], [4, 1], []],
  [[1, 17, 65], [33, 1, 65], [65]],
];

Deno.test("where broadcasts all three, with a u8 mask or an f32 cond, forward and backward", async () => {
  for (const [cShape, aShape, bShape] of WHERE_SHAPES) {
    const cond = randomArray(sizeOf(cShape), 7).map((v) => v > 0 ? 1 : 0);
    const outputShape = broadcastAll([cShape, aShape, bShape]);
    const name = `where ${JSON.stringify([cShape, aShape, bShape])}`;
    // f32 cond, nonzero = true (2.5 and NaN are true too).
    const f32Cond = cond.map((c, i) => c === 0 ? 0 : i % 3 === 0 ? NaN : 2.5);
    await testOp({
      name: `${name} f32 cond`,
      inputs: [{ shape: cShape, data: f32Cond, grad: false }, aShape, bShape],
      gpu: ([c, a, b]) => where(c, a, b),
      reference: ([c, a, b]) => whereReference(c, cShape, a, aShape, b, bShape),
      backward: ([c], grad) => [null, ...whereBackwardReference(grad, c, cShape, aShape, bShape)],
      outputShape,
    });
    // u8 mask, from a comparison.
    await testOp({
      name: `${name} u8 mask`,
      inputs: [{ shape: cShape, data: cond, grad: false }, aShape, bShape],
      gpu: ([c, a, b]) => where(gt(c, 0), a, b),
      reference: ([c, a, b]) => whereReference(c, cShape, a, aShape, b, bShape),
      backward: ([c], grad) => [null, ...whereBackwardReference(grad, c, cShape, aShape, bShape)],
      outputShape,
    });
  }
});

Deno.test("where takes numbers for a, b or both", async () => {
  for (const shape of [[], [7], [2, 1, 5]]) {
    const cond = randomArray(sizeOf(shape), 8).map((v) => v > 0 ? 1 : 0);
    await testOp({
      name: `where(c, x, -2) ${JSON.stringify(shape)}`,
      inputs: [{ shape, data: cond, grad: false }, shape],
      gpu: ([c, x]) => where(gt(c, 0), x, -2),
      reference: ([c, x]) => whereReference(c, shape, x, shape, [-2], []),
      backward: ([c], grad) => [null, whereBackwardReference(grad, c, shape, shape, [])[0]],
      outputShape: shape,
    });
    await testOp({
      name: `where(c, 3, x) ${JSON.stringify(shape)}`,
      inputs: [{ shape, data: cond, grad: false }, [3, ...shape]],
      gpu: ([c, x]) => where(c, 3, x),
      reference: ([c, x]) => whereReference(c, shape, [3], [], x, [3, ...shape]),
      backward: ([c], grad) => [null, whereBackwardReference(grad, c, shape, [], [3, ...shape])[1]],
      outputShape: [3, ...shape],
    });
    const c = tensor(new Uint8Array(cond), shape);
    const both = where(c, 1, 0);
    assert.deepEqual(Array.from(await both.toArray()), Array.from(cond));
    both.dispose();
    c.dispose();
  }
});

Deno.test("comparisons and where refuse bad shapes and dtypes, naming the op", () => {
  const x = tensor(new Float32Array(6), [2, 3]);
  const y = tensor(new Float32Array(4), [4]);
  const w = tensor(new Int32Array(3), [3], { dtype: "i32" });
  const mask = gt(x, 0);
  assert.throws(() => lt(x, y), {
    message: "lt: shapes [2, 3] and [4] do not broadcast (dimension -1: 3 vs 4)",
  });
  assert.throws(() => ge(1, 2), { message: "ge: needs at least one tensor, got two numbers" });
  assert.throws(() => where(w, x, 0), {
    message: "where: cond must be a u8 mask or an f32 tensor, got i32",
  });
  assert.throws(() => where(mask, y, 0), {
    message: "where: shapes [2, 3] and [4] do not broadcast (dimension -1: 3 vs 4)",
  });
  assert.throws(() => where(mask, x, w), {
    message: 'where: b must be an f32 tensor or a number, got i32 (cast(b, "f32") first)',
  });
  for (const t of [x, y, w, mask]) t.dispose();
});
