import { assert, assertThrows } from "../assert.ts";
import { argmax, correctCount, mean, sum } from "../../nn/ops/reduce.ts";
import {
  argmaxReference,
  correctCountReference,
  meanBackwardReference,
  meanReference,
  sumBackwardReference,
  sumReference,
} from "./reference/reduce.ts";
import { tensor, zeros } from "../../nn/tensor.ts";
import { gpuReady, randomArray, randomInts } from "../testing.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

for (const shape of [[1], [7], [3, 5], [4, 33], [1000]]) {
  Deno.test(`sum and mean match the reference and finite differences (${shape})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    await testOp({
      name: `sum [${shape}]`,
      inputs: [shape],
      seed: size,
      gpu: ([x]) => sum(x),
      reference: ([x]) => sumReference(x),
      backward: ([x], [grad]) => [sumBackwardReference(grad, x.length)],
      outputShape: [],
      forwardTolerance: { atol: 1e-4 },
    });
    await testOp({
      name: `mean [${shape}]`,
      inputs: [shape],
      seed: size,
      gpu: ([x]) => mean(x),
      reference: ([x]) => meanReference(x),
      backward: ([x], [grad]) => [meanBackwardReference(grad, x.length)],
      outputShape: [],
    });
  });
}

// Large sizes take the two-pass path (vec4 when the size is a multiple of 4, scalar otherwise).
for (const shape of [[128, 10, 24, 24], [70_001], [128, 20, 8, 8], [4099]]) {
  Deno.test(`sum and mean of ${shape} match the reference, and backward broadcasts`, async () => {
    await testOp({
      name: `sum [${shape}]`,
      inputs: [shape],
      seed: 5,
      gpu: ([x]) => sum(x),
      reference: ([x]) => sumReference(x),
      backward: ([x], [grad]) => [sumBackwardReference(grad, x.length)],
      outputShape: [],
      forwardTolerance: { atol: 2e-2, rtol: 1e-5 },
    });
    // backward() without a gradient seeds the scalar's gradient with 1.
    await testOp({
      name: `mean [${shape}]`,
      inputs: [shape],
      seed: 5,
      gpu: ([x]) => mean(x),
      reference: ([x]) => meanReference(x),
      backward: ([x], [grad]) => [meanBackwardReference(grad, x.length)],
      implicitGrad: true,
      outputShape: [],
      forwardTolerance: { atol: 1e-6 },
    });
  });
}

Deno.test("sum of an empty tensor is 0 and mean is NaN", async () => {
  const inputs = [{ shape: [0, 3], grad: false }];
  await testOp({
    name: "sum [0, 3]",
    inputs,
    gpu: ([x]) => sum(x),
    reference: ([x]) => sumReference(x),
    forwardTolerance: { atol: 0, rtol: 0 },
  });
  await testOp({
    name: "mean [0]",
    inputs: [{ shape: [0], grad: false }],
    gpu: ([x]) => mean(x),
    reference: ([x]) => meanReference(x),
  });
  // testOp's forward counts NaN as equal to NaN: check that mean really is NaN.
  assert.deepEqual(await mean(zeros([0])).item(), NaN);
});

for (const [rows, classes] of [[1, 1], [7, 3], [128, 10], [32, 10], [33, 1000]]) {
  Deno.test(`argmax and correctCount match the reference ([${rows}, ${classes}])`, async () => {
    const scores = randomArray(rows * classes, rows + classes);
    const expected = argmaxReference(scores, classes);
    await testOp({
      name: `argmax [${rows}, ${classes}]`,
      inputs: [{ shape: [rows, classes], data: scores }],
      gpu: ([x]) => argmax(x, { dim: -1 }),
      reference: ([x]) => argmaxReference(x, classes),
      outputShape: [rows],
      outputDtype: "i32",
    });
    // About half the targets are the argmax, the rest random.
    const target = randomInts(rows, classes, 3).map((t, n) => n % 2 ? expected[n] : t);
    await testOp({
      name: `correctCount [${rows}, ${classes}]`,
      inputs: [
        { shape: [rows, classes], data: scores, grad: false },
        { shape: [rows], dtype: "i32", data: target },
      ],
      gpu: ([x, t]) => correctCount(x, t),
      reference: ([x, t]) => correctCountReference(x, t, classes),
      outputShape: [],
      forwardTolerance: { atol: 0, rtol: 0 },
    });
  });
}

Deno.test("argmax takes the first maximum on ties; correctCount counts known rows", async () => {
  const x = tensor([1, 3, 3, 0, 0, 0, -1, -2, -1, 5, 4, 5], [4, 3]);
  assert.deepEqual(Array.from(await argmax(x, { dim: 1 }).toTypedArray()), [1, 0, 0, 0]);
  // Without a dim: the index into the flattened tensor, as a 0-d i32 tensor (PyTorch's).
  const flat = argmax(x);
  assert.deepEqual(flat.shape, []);
  assert.equal(flat.dtype, "i32");
  assert.equal(await flat.item(), 9);
  const target = tensor(Int32Array.of(1, 2, 0, 2), [4]);
  assert.deepEqual(await correctCount(x, target).item(), 2);
});

Deno.test("reductions reject bad shapes and dtypes, naming the op and shapes", () => {
  const x = zeros([4, 10]);
  assertThrows(
    () => correctCount(x, zeros([5], { dtype: "i32" })),
    /^correctCount: target shape \[5\] does not match scores \[4, 10\] \(needs \[4\]\)$/,
  );
  assertThrows(() => correctCount(x, zeros([4])), /target must be an i32 tensor/);
  assertThrows(
    () => argmax(zeros([4]), { dim: 1 }),
    /^argmax: dim 1 is out of range for a tensor of rank 1 \(expected -1\.\.0\)$/,
  );
  assertThrows(() => sum(zeros([3], { dtype: "i32" })), /^sum: needs an f32 tensor/);
});
