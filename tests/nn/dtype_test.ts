import assert from "node:assert/strict";
import { cast } from "../../nn/ops/cast.ts";
import { add, div, maximum, minimum, mul, pow, relu, sub } from "../../nn/ops/elementwise.ts";
import { eq, ge, gt, le, lt, ne } from "../../nn/ops/compare.ts";
import { toF32Reference, toI32Reference, toU8Reference } from "./reference/indexing.ts";
import { broadcastIndicesAll } from "./reference/compare.ts";
import { type OpInput, testOp } from "./op_helper.ts";
import { gpuReady } from "../testing.ts";
import { type DType, type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";

await gpuReady();

/** Values of `t` as plain numbers. */
async function valuesOf(t: Tensor): Promise<number[]> {
  return Array.from(await t.toTypedArray());
}

// ---------------------------------------------------------------------------------------------
// cast

const SPECIAL = [
  -1.5,
  2.7,
  300,
  -0.5,
  0.5,
  NaN,
  Infinity,
  -Infinity,
  3e9,
  -3e9,
  2147483520,
  -2147483648,
  2147483648,
  1e-45,
  -255.9,
  256,
  65535.5,
];

Deno.test("cast f32 to i32 and u8: toward zero, saturating, NaN 0, u8 wrapping", async () => {
  for (const length of [SPECIAL.length, 1, 6]) {
    const data = SPECIAL.slice(0, length);
    const x = tensor(data, [length]);
    const [i, u] = [cast(x, "i32"), cast(x, "u8")];
    try {
      assert.equal(i.dtype, "i32");
      assert.equal(u.dtype, "u8");
      const rounded = data.map(Math.fround);
      assert.deepEqual(await valuesOf(i), rounded.map(toI32Reference), `i32 of ${length}`);
      assert.deepEqual(await valuesOf(u), rounded.map(toU8Reference), `u8 of ${length}`);
    } finally {
      for (const t of [x, i, u]) t.dispose();
    }
  }
});

Deno.test("cast i32 to f32 (nearest) and u8 (wrapping), u8 to f32 and i32 (exact)", async () => {
  const ints = [0, -7, 2 ** 24 + 1, 2 ** 31 - 1, -(2 ** 31), 255, 256, 257, -1, -256, 1000];
  const bytes = [0, 1, 127, 128, 255, 9, 200];
  for (const n of [ints.length, 1, 4]) {
    const i = tensor(ints.slice(0, n), [n], { dtype: "i32" });
    const outs = [cast(i, "f32"), cast(i, "u8")];
    assert.deepEqual(await valuesOf(outs[0]), ints.slice(0, n).map(toF32Reference));
    assert.deepEqual(await valuesOf(outs[1]), ints.slice(0, n).map(toU8Reference));
    for (const t of [i, ...outs]) t.dispose();
  }
  for (const n of [bytes.length, 1, 5]) {
    const u = tensor(Uint8Array.from(bytes.slice(0, n)), [n]);
    const outs = [cast(u, "f32"), cast(u, "i32")];
    assert.deepEqual(outs.map((t) => t.dtype), ["f32", "i32"]);
    for (const t of outs) assert.deepEqual(await valuesOf(t), bytes.slice(0, n));
    for (const t of [u, ...outs]) t.dispose();
  }
});

for (const shape of [[3, 1, 5], [], [1], [7]]) {
  Deno.test(`cast [${shape}]: f32 → i32 exact, i32 → f32, f32 → f32 differentiable`, async () => {
    await testOp({
      name: `cast f32→i32 [${shape}]`,
      inputs: [{ shape, low: -50, high: 50 }],
      gpu: ([x]) => cast(x, "i32"),
      reference: ([x]) => Array.from(x, (v) => toI32Reference(Math.fround(v))),
      outputDtype: "i32",
      outputShape: shape,
    });
    await testOp({
      name: `cast i32→f32 [${shape}]`,
      inputs: [{ shape, dtype: "i32", low: -(2 ** 30), high: 2 ** 30 }],
      gpu: ([x]) => cast(x, "f32"),
      reference: ([x]) => Array.from(x, toF32Reference),
      forwardTolerance: { atol: 0, rtol: 0 },
    });
    await testOp({
      name: `cast f32→f32 [${shape}]`,
      inputs: [shape],
      gpu: ([x]) => cast(x, "f32"),
      reference: ([x]) => x,
      backward: (_, grad) => [grad],
    });
  });
}

Deno.test("cast to the same dtype is a new tensor over the same elements; ints get no gradient", async () => {
  const x = tensor([1, 2, 3], [3], { requiresGrad: true });
  const i = tensor([4, 5], [2], { dtype: "i32" });
  const same = [cast(x, "f32"), cast(i, "i32")];
  assert.notEqual(same[0], x);
  assert.equal(same[0].requiresGrad, true);
  same[0].dispose();
  assert.deepEqual(await valuesOf(x), [1, 2, 3]); // x still alive
  assert.deepEqual(await valuesOf(same[1]), [4, 5]);
  const truncated = cast(x, "i32");
  assert.equal(truncated.requiresGrad, false);
  const empty = cast(tensor([], [0, 3]), "u8");
  assert.deepEqual(empty.shape, [0, 3]);
  assert.throws(() => cast(x, "f64" as DType), {
    message: 'cast: dtype must be "f32", "i32" or "u8", got f64',
  });
  for (const t of [x, i, same[1], truncated, empty]) t.dispose();
});

// ---------------------------------------------------------------------------------------------
// Type promotion in the binary ops

const I32_OPS = {
  add: [add, (a: number, b: number) => (a + b) | 0],
  sub: [sub, (a: number, b: number) => (a - b) | 0],
  mul: [mul, (a: number, b: number) => Math.imul(a, b)],
  maximum: [maximum, Math.max],
  minimum: [minimum, Math.min],
} as const;

/** An i32 input of `shape`, random in [-2^30, 2^30) (products and sums with -2^31 wrap) or [low, high). */
function ints(shape: readonly number[], low = -(2 ** 30), high = 2 ** 30): OpInput {
  return { shape, dtype: "i32", low, high };
}

/** The reference of a broadcasting binary op of two operands of the given shapes. */
function broadcastReference(
  shapes: readonly (readonly number[])[],
  fn: (a: number, b: number) => number,
) {
  const indices = broadcastIndicesAll(shapes);
  return ([a, b]: Float64Array[]) => indices.map(([ia, ib]) => fn(a[ia], b[ib]));
}

for (const [name, [op, fn]] of Object.entries(I32_OPS)) {
  Deno.test(`${name} of i32 tensors and integers stays i32, wrapping like PyTorch`, async () => {
    for (const [sa, sb] of [[[7], [7]], [[3, 1, 5], [5]], [[1], [3, 1]], [[], [2, 3]]]) {
      await testOp({
        name: `${name} i32 [${sa}] [${sb}]`,
        inputs: [ints(sa), ints(sb)],
        gpu: ([a, b]) => op(a, b),
        reference: broadcastReference([sa, sb], fn),
        outputDtype: "i32",
      });
    }
    for (const number of [3, -2147483648]) {
      await testOp({
        name: `${name} i32 [2, 3] and ${number}`,
        inputs: [ints([2, 3])],
        gpu: ([a]) => op(a, number),
        reference: ([a]) => Array.from(a, (v) => fn(v, number)),
        outputDtype: "i32",
      });
      await testOp({
        name: `${name} ${number} and i32 [5]`,
        inputs: [ints([5])],
        gpu: ([a]) => op(number, a),
        reference: ([a]) => Array.from(a, (v) => fn(number, v)),
        outputDtype: "i32",
      });
    }
  });
}

Deno.test("i32 with an f32 tensor or a fractional number is f32; div is true division", async () => {
  await testOp({
    name: "add i32 [3, 1, 5] + 2.5",
    inputs: [ints([3, 1, 5], -100, 100)],
    gpu: ([a]) => add(a, 2.5),
    reference: ([a]) => Array.from(a, (v) => v + 2.5),
  });
  await testOp({
    name: "div i32 [7] / i32 [7]",
    inputs: [ints([7], -50, 50), { shape: [7], dtype: "i32", data: [3, -4, 7, 1, -1, 9, 2] }],
    gpu: ([a, b]) => div(a, b),
    reference: ([a, b]) => Array.from(a, (v, i) => v / b[i]),
  });
  await testOp({
    name: "div 7 / i32 [5]",
    inputs: [{ shape: [5], dtype: "i32", data: [2, 3, -4, 5, 7] }],
    gpu: ([a]) => div(7, a),
    reference: ([a]) => Array.from(a, (v) => 7 / v),
  });
  // The f32 operand keeps its gradient, computed with the cast of the i32 one.
  for (const [sa, sb] of [[[3, 1, 5], [5]], [[4], [4]], [[2, 1], [1, 3]]]) {
    for (
      const [name, op, fn] of [
        ["mul", mul, (a: number, b: number) => a * b],
        ["sub", sub, (a: number, b: number) => a - b],
        ["div", div, (a: number, b: number) => a / b],
        ["maximum", maximum, Math.max],
      ] as const
    ) {
      await testOp({
        name: `${name} f32 [${sa}] with i32 [${sb}]`,
        inputs: [{ shape: sa, low: -3, high: 3 }, ints(sb, 1, 4)],
        gpu: ([x, k]) => op(x, k),
        reference: broadcastReference([sa, sb], fn),
      });
      await testOp({
        name: `${name} i32 [${sb}] with f32 [${sa}]`,
        inputs: [ints(sb, 1, 4), { shape: sa, low: 0.2, high: 3 }],
        gpu: ([k, x]) => op(k, x),
        reference: ([k, x]) => broadcastReference([sb, sa], fn)([k, x]),
      });
    }
  }
  await testOp({
    name: "pow i32 [6] ** 0.5",
    inputs: [ints([6], 0, 100)],
    gpu: ([a]) => pow(a, 0.5),
    reference: ([a]) => Array.from(a, Math.sqrt),
  });
  await testOp({
    name: "pow f32 [4] ** i32 [4]",
    inputs: [{ shape: [4], low: 0.5, high: 2 }, ints([4], 0, 4)],
    gpu: ([x, k]) => pow(x, k),
    reference: ([x, k]) => Array.from(x, (v, i) => v ** k[i]),
  });
});

Deno.test("a u8 mask in arithmetic is f32, and the f32 operand keeps its gradient", async () => {
  for (const shape of [[7], [3, 1, 5], []]) {
    await testOp({
      name: `mul mask [${shape}] by f32`,
      inputs: [shape, { shape, grad: false }],
      gpu: ([x, m]) => mul(gt(m, 0), x),
      reference: ([x, m]) => Array.from(x, (v, i) => m[i] > 0 ? v : 0),
    });
  }
  await testOp({
    name: "add mask + mask, mask + 1, relu(mask)",
    inputs: [{ shape: [9], grad: false }],
    gpu: ([m]) => {
      const mask = gt(m, 0);
      const sum = add(mask, mask);
      assert.equal(sum.dtype, "f32");
      const plus = add(sum, add(mask, 1));
      assert.equal(relu(mask).dtype, "f32");
      return plus;
    },
    reference: ([m]) => Array.from(m, (v) => (v > 0 ? 3 : 0) + 1),
  });
});

Deno.test("pow of integers only is refused, naming the dtypes and the cast", () => {
  const i = tensor([1, 2], [2], { dtype: "i32" });
  try {
    assert.throws(() => pow(i, i), {
      message: "pow: integer operands (i32 and i32) give an integer power in PyTorch, which " +
        'wgtorch does not compute; cast(x, "f32") first for a float power',
    });
    assert.throws(() => pow(3, i), /pow: integer operands \(number and i32\)/);
    assert.throws(() => add(1, 2), { message: "add: needs at least one tensor, got two numbers" });
  } finally {
    i.dispose();
  }
});

// ---------------------------------------------------------------------------------------------
// Type promotion in the comparisons

const COMPARE = {
  eq: [eq, (a: number, b: number) => a === b],
  ne: [ne, (a: number, b: number) => a !== b],
  lt: [lt, (a: number, b: number) => a < b],
  le: [le, (a: number, b: number) => a <= b],
  gt: [gt, (a: number, b: number) => a > b],
  ge: [ge, (a: number, b: number) => a >= b],
} as const;

Deno.test("comparisons of integers are exact (past 2^24); mixed with floats, as f32", async () => {
  const big = [2 ** 24, 2 ** 24 + 1, -(2 ** 31), 2 ** 31 - 1, 5, -3, 7];
  const other = [2 ** 24 + 1, 2 ** 24 + 1, -(2 ** 31) + 1, 2 ** 31 - 1, 4, -3, 8];
  for (const [name, [op, fn]] of Object.entries(COMPARE)) {
    const bit = (v: boolean) => v ? 1 : 0;
    await testOp({
      name: `${name} i32 [7] i32 [7]`,
      inputs: [{ shape: [7], dtype: "i32", data: big }, { shape: [7], dtype: "i32", data: other }],
      gpu: ([a, b]) => op(a, b),
      reference: ([a, b]) => Array.from(a, (v, i) => bit(fn(v, b[i]))),
      outputDtype: "u8",
    });
    await testOp({
      name: `${name} i32 [3, 1, 5] i32 [5]`,
      inputs: [ints([3, 1, 5], -3, 3), ints([5], -3, 3)],
      gpu: ([a, b]) => op(a, b),
      reference: broadcastReference([[3, 1, 5], [5]], (a, b) => bit(fn(a, b))),
      outputDtype: "u8",
    });
    await testOp({
      name: `${name} 16777217 and i32 [7]`,
      inputs: [{ shape: [7], dtype: "i32", data: big }],
      gpu: ([a]) => op(16777217, a),
      reference: ([a]) => Array.from(a, (v) => bit(fn(16777217, v))),
      outputDtype: "u8",
    });
    await testOp({
      name: `${name} i32 [6] and 2.5`,
      inputs: [ints([6], 0, 6)],
      gpu: ([a]) => op(a, 2.5),
      reference: ([a]) => Array.from(a, (v) => bit(fn(v, 2.5))),
      outputDtype: "u8",
    });
    await testOp({
      name: `${name} i32 [2, 3] and f32 [3]`,
      inputs: [ints([2, 3], -2, 2), { shape: [3], data: [-1, 0.5, 1], grad: false }],
      gpu: ([a, b]) => op(a, b),
      reference: broadcastReference([[2, 3], [3]], (a, b) => bit(fn(a, b))),
      outputDtype: "u8",
    });
    await testOp({
      name: `${name} mask [5] and 1`,
      inputs: [{ shape: [5], data: [1, -1, 2, 0, 3] }],
      gpu: ([x]) => op(gt(x, 0), 1),
      reference: ([x]) => Array.from(x, (v) => bit(fn(v > 0 ? 1 : 0, 1))),
      outputDtype: "u8",
    });
  }
});

Deno.test("promotion frees its casts: no GPU buffer left behind, with or without gradients", async () => {
  const x = tensor([1, -2, 3], [3], { requiresGrad: true });
  const k = tensor([2, 5, -1], [3], { dtype: "i32" });
  const run = () => {
    tidy(() => {
      mul(x, k).backward({ grad: tensor([1, 1, 1], [3]) });
      div(k, k);
      add(k, 0.5);
      lt(k, x);
      eq(k, 2);
      add(gt(x, 0), x);
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
  const product = mul(x, k);
  product.backward({ grad: tensor([1, 1, 1], [3]) });
  assert.deepEqual(await valuesOf(x.grad!), [2, 5, -1]);
  for (const t of [x, k, product, x.grad!]) t.dispose();
});
