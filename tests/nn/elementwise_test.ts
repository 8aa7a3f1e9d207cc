import {
  add,
  div,
  maximum,
  minimum,
  mul,
  type Operand,
  relu,
  scale,
  sub,
} from "../../nn/ops/elementwise.ts";
import { compiledKernelCount } from "../../nn/gpu/program.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { assert } from "../assert.ts";
import {
  addBackwardReference,
  addReference,
  binaryBackwardReference,
  type BinaryOpName,
  binaryReference,
  broadcastShapeReference,
  mulBackwardReference,
  mulReference,
  reluBackwardReference,
  reluReference,
  scaleReference,
  subBackwardReference,
  subReference,
} from "./reference/elementwise.ts";
import { testOp } from "./op_helper.ts";
import { gpuReady, randomArray } from "../testing.ts";

await gpuReady();

// Gradients against the reference backward at every size, and against finite differences too up to
// 2,000 input elements (testOp's default).
for (const size of [1, 7, 256, 1000, 70_001]) {
  Deno.test(`add, sub, mul and scale match the reference and finite differences (size ${size})`, async () => {
    const inputs = [[size], [size]];
    await testOp({
      name: `add [${size}]`,
      inputs,
      gpu: ([x, y]) => add(x, y),
      reference: ([x, y]) => addReference(x, y),
      backward: (_, grad) => addBackwardReference(grad),
    });
    await testOp({
      name: `mul [${size}]`,
      inputs,
      gpu: ([x, y]) => mul(x, y),
      reference: ([x, y]) => mulReference(x, y),
      backward: ([x, y], grad) => mulBackwardReference(grad, x, y),
    });
    await testOp({
      name: `sub [${size}]`,
      inputs,
      gpu: ([x, y]) => sub(x, y),
      reference: ([x, y]) => subReference(x, y),
      backward: (_, grad) => subBackwardReference(grad),
    });
    await testOp({
      name: `scale [${size}]`,
      inputs: [[size]],
      gpu: ([x]) => scale(x, -2.5),
      reference: ([x]) => scaleReference(x, -2.5),
      backward: (_, grad) => [scaleReference(grad, -2.5)],
    });
  });
}

Deno.test("relu matches the reference and finite differences, away from the kink", async () => {
  // Keep |x| >= 0.01 so that a finite-difference step of 1e-3 never crosses zero.
  const x = randomArray(333, 3).map((v) => v + Math.sign(v) * 0.01);
  await testOp({
    name: "relu [3, 111]",
    inputs: [{ shape: [3, 111], data: x }],
    gpu: ([v]) => relu(v),
    reference: ([v]) => reluReference(v),
    backward: ([v], grad) => [reluBackwardReference(grad, v)],
  });
});

const BINARY: Record<BinaryOpName, (a: Operand, b: Operand) => Tensor> = {
  add,
  sub,
  mul,
  div,
  maximum,
  minimum,
};

/** Shapes that broadcast: trailing dims, stretched size-1 dims, 0-d, batch 1, odd sizes. */
const BROADCAST_SHAPES: [number[], number[]][] = [
  [[2, 3], [3]],
  [[3], [2, 3]],
  [[2, 1, 3], [4, 1]],
  [[], [5]],
  [[5], []],
  [[1, 5, 1], [3, 1, 4]],
  [[1, 7], [7]],
  [[5, 1, 7], [3, 1]],
  [[33, 1, 65], [1, 17, 65]],
  // Rows of a multiple of 4: the vec4 broadcast kernel (row loads and splats).
  [[128, 8], [8]],
  [[2, 1, 12], [3, 1]],
  [[4], [3, 1]],
  [[6, 1, 8], [1, 5, 8]],
];

const sizeOf = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/**
 * The inputs of `op` on these shapes: div keeps its divisor away from 0; maximum and minimum
 * keep a on odd multiples of 0.05 and b on multiples of 0.1, so no pair is within a
 * finite-difference step of a tie.
 */
function operands(op: BinaryOpName, aShape: number[], bShape: number[]) {
  if (op === "div") return [aShape, { shape: bShape, low: 0.5, high: 2 }];
  if (op !== "maximum" && op !== "minimum") return [aShape, bShape];
  const grid = (shape: number[], seed: number, offset: number) =>
    randomArray(sizeOf(shape), seed).map((v) => Math.round(v * 10) / 10 + offset);
  return [{ shape: aShape, data: grid(aShape, 31, 0.05) }, {
    shape: bShape,
    data: grid(bShape, 32, 0),
  }];
}

for (const [op, fn] of Object.entries(BINARY) as [BinaryOpName, typeof add][]) {
  Deno.test(`${op} broadcasts, forward and backward, against the reference`, async () => {
    for (const [aShape, bShape] of BROADCAST_SHAPES) {
      await testOp({
        name: `${op} ${JSON.stringify(aShape)} ${JSON.stringify(bShape)}`,
        inputs: operands(op, aShape, bShape),
        gpu: ([a, b]) => fn(a, b),
        reference: ([a, b]) => binaryReference(op, a, aShape, b, bShape),
        backward: ([a, b], grad) => binaryBackwardReference(op, grad, a, aShape, b, bShape),
        outputShape: broadcastShapeReference(aShape, bShape),
      });
    }
  });

  Deno.test(`${op} takes a number on either side; the number gets no gradient`, async () => {
    for (const shape of [[], [7], [2, 1, 5]]) {
      const number = op === "div" ? 1.75 : 0.25;
      await testOp({
        name: `${op}(x ${JSON.stringify(shape)}, ${number})`,
        inputs: [shape],
        gpu: ([x]) => fn(x, number),
        reference: ([x]) => binaryReference(op, x, shape, [number], []),
        backward: ([x], grad) => [binaryBackwardReference(op, grad, x, shape, [number], [])[0]],
        outputShape: shape,
      });
      await testOp({
        name: `${op}(${number}, x ${JSON.stringify(shape)})`,
        inputs: [op === "div" ? { shape, low: 0.5, high: 2 } : shape],
        gpu: ([x]) => fn(number, x),
        reference: ([x]) => binaryReference(op, [number], [], x, shape),
        backward: ([x], grad) => [binaryBackwardReference(op, grad, [number], [], x, shape)[1]],
        outputShape: shape,
      });
    }
  });
}

Deno.test("maximum and minimum: ties split the gradient, NaN propagates (as PyTorch)", async () => {
  // torch.maximum(a, b).backward(ones): a.grad [0.5, 1, 1, 1], b.grad [0.5, 0, 1, 1].
  const a = [1, 2, NaN, 3];
  const b = [1, 1, 5, NaN];
  for (const op of ["maximum", "minimum"] as const) {
    await testOp({
      name: `${op} ties and NaN`,
      inputs: [{ shape: [4], data: a }, { shape: [4], data: b }],
      gpu: ([x, y]) => BINARY[op](x, y),
      reference: ([x, y]) => binaryReference(op, x, [4], y, [4]),
      backward: ([x, y], grad) => binaryBackwardReference(op, grad, x, [4], y, [4]),
      finiteDifferenceLimit: 0,
    });
    // Broadcast kernel too: b as [4, 1] against a as [4] gives [4, 4], with ties and NaN.
    await testOp({
      name: `${op} ties and NaN, broadcast`,
      inputs: [{ shape: [4], data: a }, { shape: [4, 1], data: b }],
      gpu: ([x, y]) => BINARY[op](x, y),
      reference: ([x, y]) => binaryReference(op, x, [4], y, [4, 1]),
      backward: ([x, y], grad) => binaryBackwardReference(op, grad, x, [4], y, [4, 1]),
      finiteDifferenceLimit: 0,
    });
  }
  const x = tensor(new Float32Array([1, NaN, -2]), [3]);
  const bigger = maximum(x, 0);
  assert.deepEqual(Array.from(await bigger.toArray()), [1, NaN, 0]);
  const smaller = minimum(0, x);
  assert.deepEqual(Array.from(await smaller.toArray()), [0, NaN, -2]);
  for (const t of [x, bigger, smaller]) t.dispose();
});

Deno.test("equal shapes keep the vec4 kernel: results bit-identical to f32 arithmetic", async () => {
  const size = 1001;
  const a = Float32Array.from(randomArray(size, 11));
  const b = Float32Array.from(randomArray(size, 12), (v) => v + Math.sign(v));
  const x = tensor(a, [size]);
  const y = tensor(b, [size]);
  const expected: Record<string, (p: number, q: number) => number> = {
    add: (p, q) => Math.fround(p + q),
    sub: (p, q) => Math.fround(p - q),
    mul: (p, q) => Math.fround(p * q),
    div: (p, q) => Math.fround(p / q),
    maximum: Math.max,
    minimum: Math.min,
  };
  for (const [op, fn] of Object.entries(BINARY)) {
    const before = compiledKernelCount();
    const out = fn(x, y);
    assert.deepEqual(
      Array.from(await out.toArray()),
      Array.from(a, (p, i) => expected[op](p, b[i])),
      `${op}: equal shapes`,
    );
    out.dispose();
    // The same elements as [1, 1001] against [1001]: the broadcast kernel, a different one.
    const x2 = x.view([1, size]);
    const broadcast = fn(x2, y);
    assert.equal(compiledKernelCount(), before + 2, `${op}: a vec4 kernel and a broadcast kernel`);
    assert.deepEqual(
      Array.from(await broadcast.toArray()),
      Array.from(a, (p, i) => expected[op](p, b[i])),
      `${op}: broadcast`,
    );
    broadcast.dispose();
    x2.dispose();
  }
  x.dispose();
  y.dispose();
});

Deno.test("div rounds as f32 division across magnitudes, signs and special values", async () => {
  // WGSL lets `/` be 2.5 ULP off (an NVIDIA GPU was 1 ULP off): division must still match.
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const draw = () => Math.fround((next() - 0.5) * 2 ** Math.floor(next() * 120 - 60));
  const size = 4000;
  const a = Float32Array.from({ length: size }, draw);
  const b = Float32Array.from({ length: size }, draw);
  // Subnormals are left out: WGSL lets an adapter flush them to zero.
  const specials = [0, -0, Infinity, -Infinity, NaN, 3.4e38, 1e-30, 7];
  specials.forEach((v, k) => {
    a[k] = v;
    b[specials.length + k] = v;
    a[2 * specials.length + k] = 3.4e38;
    b[2 * specials.length + k] = 1e-30 * (k + 1); // quotients past the f32 range: inf
  });
  const x = tensor(a, [size]);
  const y = tensor(b, [size]);
  const kernels = [
    ["vec4", div(x, y)],
    ["broadcast", div(x.view([1, size]), y)],
  ] as const;
  for (const [name, out] of kernels) {
    const got = await out.toArray();
    const bad = Array.from(a).findIndex((p, i) => !Object.is(got[i], Math.fround(p / b[i])));
    if (bad >= 0) {
      assert.fail(
        `${name}: ${a[bad]} / ${b[bad]} gave ${got[bad]}, f32 division gives ${
          Math.fround(a[bad] / b[bad])
        }`,
      );
    }
    out.dispose();
  }
  x.dispose();
  y.dispose();
});

Deno.test("a number operand compiles one kernel for all its values", async () => {
  const x = tensor(Float32Array.from(randomArray(37, 21)), [37]);
  for (const [op, fn] of Object.entries(BINARY)) {
    const first = fn(x, 3);
    const compiled = compiledKernelCount();
    const second = fn(x, -0.5);
    const third = fn(x, 1e-3);
    assert.equal(compiledKernelCount(), compiled, `${op}: new numbers compile nothing`);
    const values = await second.toArray();
    const data = await x.toArray();
    assert.deepEqual(
      Array.from(values),
      Array.from(binaryReference(op as BinaryOpName, data, [37], [-0.5], []), Math.fround),
      `${op}: x and -0.5`,
    );
    for (const t of [first, second, third]) t.dispose();
  }
  x.dispose();
});

/** fn throws an Error with exactly this message. */
function refuses(fn: () => unknown, message: string): void {
  assert.throws(fn, { message });
}

Deno.test("shapes that do not broadcast, dtypes and two numbers are refused, naming the op", () => {
  const x = tensor(new Float32Array(6), [2, 3]);
  const y = tensor(new Float32Array(4), [4]);
  const z = tensor(new Float32Array(8), [2, 1, 4]);
  const w = tensor(new Int32Array(3), [3], { dtype: "i32" });
  refuses(() => add(x, y), "add: shapes [2, 3] and [4] do not broadcast (dimension -1: 3 vs 4)");
  refuses(
    () => div(z, x),
    "div: shapes [2, 1, 4] and [2, 3] do not broadcast (dimension -1: 4 vs 3)",
  );
  refuses(
    () => maximum(tensor(new Float32Array(6), [3, 2]), x),
    "maximum: shapes [3, 2] and [2, 3] do not broadcast (dimension -1: 2 vs 3)",
  );
  refuses(() => minimum(1, 2), "minimum: needs at least one tensor, got two numbers");
  for (const t of [x, y, z, w]) t.dispose();
});
