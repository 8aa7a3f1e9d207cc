import { pow } from "../../nn/ops/elementwise.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { tensor } from "../../nn/tensor.ts";
import { assert } from "../assert.ts";
import {
  binaryBackwardReference,
  binaryReference,
  broadcastShapeReference,
} from "./reference/elementwise.ts";
import { testOp } from "./op_helper.ts";
import { gpuReady, randomArray } from "../testing.ts";

await gpuReady();

const SHAPES: [number[], number[]][] = [
  [[2, 3], [3]],
  [[3], [2, 3]],
  [[2, 1, 3], [4, 1]],
  [[], [5]],
  [[5], []],
  [[33, 1, 65], [1, 17, 65]],
];

Deno.test("pow broadcasts, forward and backward in both operands, against the reference", async () => {
  for (const [aShape, bShape] of SHAPES) {
    await testOp({
      name: `pow ${JSON.stringify(aShape)} ${JSON.stringify(bShape)}`,
      inputs: [{ shape: aShape, low: 0.5, high: 2 }, { shape: bShape, low: -1.5, high: 1.5 }],
      gpu: ([a, b]) => pow(a, b),
      reference: ([a, b]) => binaryReference("pow", a, aShape, b, bShape),
      backward: ([a, b], grad) => binaryBackwardReference("pow", grad, a, aShape, b, bShape),
      outputShape: broadcastShapeReference(aShape, bShape),
    });
  }
});

Deno.test("pow takes a number on either side; the number gets no gradient", async () => {
  for (const shape of [[], [7], [2, 1, 5]]) {
    await testOp({
      name: `pow(x ${JSON.stringify(shape)}, 3)`,
      inputs: [{ shape, low: -2, high: 2 }],
      gpu: ([x]) => pow(x, 3),
      reference: ([x]) => binaryReference("pow", x, shape, [3], []),
      backward: ([x], grad) => [binaryBackwardReference("pow", grad, x, shape, [3], [])[0]],
      outputShape: shape,
    });
    await testOp({
      name: `pow(1.5, x ${JSON.stringify(shape)})`,
      inputs: [shape],
      gpu: ([x]) => pow(1.5, x),
      reference: ([x]) => binaryReference("pow", [1.5], [], x, shape),
      backward: ([x], grad) => [binaryBackwardReference("pow", grad, [1.5], [], x, shape)[1]],
      outputShape: shape,
    });
  }
});

Deno.test("pow: negative bases, zeros and NaN as PyTorch", async () => {
  // torch.pow(a, b) and its gradients (sum().backward()) on these pairs:
  // values [-8, 4, nan, 1, 0, inf, 1, 1, nan, -8]; a.grad [12, -4, nan, 0, 0, -inf, 0, nan, nan,
  // -48]; b.grad [nan, nan, nan, 0, 0, -inf, nan, 0, nan, nan].
  const a = [-2, -2, -2, 0, 0, 0, NaN, 1, 2, -0.5];
  const b = [3, 2, 0.5, 0, 2, -1, 0, NaN, NaN, -3];
  const n = a.length;
  const x = tensor(new Float32Array(a), [n], { requiresGrad: true });
  const y = tensor(new Float32Array(b), [n], { requiresGrad: true });
  const out = pow(x, y);
  assert.deepEqual(Array.from(await out.toArray()), [-8, 4, NaN, 1, 0, Infinity, 1, 1, NaN, -8]);
  const total = sum(out);
  total.backward();
  assert.deepEqual(
    Array.from(await x.grad!.toArray()),
    [12, -4, NaN, 0, 0, -Infinity, 0, NaN, NaN, -48],
  );
  assert.deepEqual(
    Array.from(await y.grad!.toArray()),
    [NaN, NaN, NaN, 0, 0, -Infinity, NaN, 0, NaN, NaN],
  );
  for (const t of [x, y, out, total]) t.dispose();
  const reference = binaryBackwardReference("pow", new Float64Array(n).fill(1), a, [n], b, [n]);
  assert.deepEqual(Array.from(reference[0]), [12, -4, NaN, 0, 0, -Infinity, 0, NaN, NaN, -48]);
  assert.deepEqual(Array.from(reference[1]), [NaN, NaN, NaN, 0, 0, -Infinity, NaN, 0, NaN, NaN]);
  // The same pairs but 0^-1, infinite (which the tolerance check cannot compare); and all pairs
  // of the bases with the exponents that keep every value and gradient finite or NaN.
  const finite = (v: number[]) => v.filter((_, i) => i !== 5);
  const exponents = [3, 2, 0, 2, 0, NaN, NaN];
  const cases = [
    [finite(a), [n - 1], finite(b), [n - 1]],
    [finite(a), [n - 1], exponents, [exponents.length, 1]],
  ] as const;
  for (const [aData, aShape, bData, bShape] of cases) {
    await testOp({
      name: `pow special values ${JSON.stringify([aShape, bShape])}`,
      inputs: [{ shape: aShape, data: aData }, { shape: bShape, data: bData }],
      gpu: ([p, q]) => pow(p, q),
      reference: ([p, q]) => binaryReference("pow", p, aShape, q, bShape),
      backward: ([p, q], grad) => binaryBackwardReference("pow", grad, p, aShape, q, bShape),
      outputShape: broadcastShapeReference(aShape, bShape),
      gradTolerance: { atol: 1e-5, rtol: 1e-4, equalNan: true },
      finiteDifferenceLimit: 0,
    });
  }
});

Deno.test("pow: negative bases with integer exponents from a tensor", async () => {
  const base = randomArray(24, 5).map((v) => 2 * v);
  const exponent = randomArray(4, 6).map((v) => Math.round(4 * v));
  await testOp({
    name: "pow negative bases, integer exponents",
    inputs: [{ shape: [6, 4], data: base }, { shape: [4], data: exponent, grad: false }],
    gpu: ([p, q]) => pow(p, q),
    reference: ([p, q]) => binaryReference("pow", p, [6, 4], q, [4]),
    backward: ([p, q], grad) => [binaryBackwardReference("pow", grad, p, [6, 4], q, [4])[0], null],
    finiteDifferenceLimit: 0,
  });
});

Deno.test("pow: integer powers that are f32 come out exact, squares as x * x", async () => {
  // WGSL's pow is exp2(b * log2(a)) on llvmpipe and on GPUs: 3^10 gave 59048.99 on llvmpipe and
  // (-2)^3 gave -7.9999976 on an NVIDIA GPU.
  const bases = [3, -2, 0.5, 10, 1.5, 7, -3, 0.25, 2];
  const exponents = [10, 7, -4, 5, 3, 8, 11, -3, 16];
  const want = [59049, -128, 16, 100000, 3.375, 5764801, -177147, 64, 65536];
  const x = tensor(new Float32Array(bases), [bases.length]);
  const y = tensor(new Float32Array(exponents), [bases.length]);
  const out = pow(x, y);
  assert.deepEqual(Array.from(await out.toArray()), want);
  // A number exponent, broadcast and vec4 kernels alike; squares round as x * x does.
  const values = Float32Array.from(randomArray(37, 5), (v) => v * 3);
  const v = tensor(values, [37]);
  for (
    const [name, got] of [
      ["number", pow(v, 2)],
      ["broadcast", pow(v.view([37, 1]), tensor(new Float32Array([2]), [1]))],
    ] as const
  ) {
    const squares = Array.from(await got.toArray());
    const bad = squares.findIndex((s, i) => s !== Math.fround(values[i] * values[i]));
    if (bad >= 0) {
      assert.fail(
        `${name}: ${values[bad]}^2 gave ${squares[bad]}, x * x is ${
          Math.fround(values[bad] * values[bad])
        }`,
      );
    }
    got.dispose();
  }
  for (const t of [x, y, out, v]) t.dispose();
});

Deno.test("pow refuses shapes that do not broadcast and non-f32 tensors, naming the op", () => {
  const x = tensor(new Float32Array(6), [2, 3]);
  const w = tensor(new Int32Array(3), [3], { dtype: "i32" });
  assert.throws(() => pow(x, tensor(new Float32Array(4), [4])), {
    message: "pow: shapes [2, 3] and [4] do not broadcast (dimension -1: 3 vs 4)",
  });
  assert.throws(() => pow(w, 2), {
    message: "pow: integer operands (i32 and number) give an integer power in PyTorch, which " +
      'wgtorch does not compute; cast(x, "f32") first for a float power',
  });
  assert.throws(() => pow(1, 2), { message: "pow: needs at least one tensor, got two numbers" });
  for (const t of [x, w]) t.dispose();
});
