import { assert, assertThrows } from "../assert.ts";
import { argmax, correctCount, mean, sum } from "../../nn/ops/reduce.ts";
import {
  argmaxReference,
  correctCountReference,
  meanReference,
  sumReference,
} from "./reference/reduce.ts";
import { tensor, zeros } from "../../nn/tensor.ts";
import { assertClose, gpuReady, gradCheck, randomArray, randomInts } from "../testing.ts";

await gpuReady();

for (const shape of [[1], [7], [3, 5], [4, 33], [1000]]) {
  Deno.test(`sum and mean match the reference and finite differences (${shape})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    const inputs = [{ data: randomArray(size, size), shape }];
    await gradCheck({
      inputs,
      reference: ([x]) => Float64Array.of(sumReference(x)),
      gpu: ([x]) => sum(x),
      forwardTolerance: { atol: 1e-4 },
    });
    await gradCheck({
      inputs,
      reference: ([x]) => Float64Array.of(meanReference(x)),
      gpu: ([x]) => mean(x),
    });
  });
}

// Large sizes take the two-pass path (vec4 when the size is a multiple of 4, scalar otherwise).
for (const shape of [[128, 10, 24, 24], [70_001], [128, 20, 8, 8], [4099]]) {
  Deno.test(`sum and mean of ${shape} match the reference, and backward broadcasts`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = randomArray(size, 5);
    const x = tensor(Float32Array.from(data), shape, { requiresGrad: true });
    const total = sum(x);
    assert.deepEqual(total.shape, []);
    assertClose([await total.item()], [sumReference(data)], { atol: 2e-2, rtol: 1e-5 }, "sum");
    total.backward({ grad: tensor([3], []) });
    assertClose(await x.grad!.toArray(), new Float64Array(size).fill(3), {}, "sum gradient");
    x.grad!.dispose();
    x.grad = null;
    const average = mean(x);
    assertClose([await average.item()], [meanReference(data)], { atol: 1e-6 }, "mean");
    average.backward();
    assertClose(await x.grad!.toArray(), new Float64Array(size).fill(1 / size), {}, "mean grad");
  });
}

Deno.test("sum of an empty tensor is 0 and mean is NaN", async () => {
  assert.deepEqual(await sum(zeros([0, 3])).item(), 0);
  assert.deepEqual(await mean(zeros([0])).item(), NaN);
});

for (const [rows, classes] of [[1, 1], [7, 3], [128, 10], [32, 10], [33, 1000]]) {
  Deno.test(`argmax and correctCount match the reference ([${rows}, ${classes}])`, async () => {
    const scores = randomArray(rows * classes, rows + classes);
    const x = tensor(Float32Array.from(scores), [rows, classes]);
    const predicted = argmax(x);
    assert.deepEqual(predicted.dtype, "i32");
    assert.deepEqual(predicted.shape, [rows]);
    const expected = argmaxReference(scores, classes);
    assert.deepEqual(await predicted.toTypedArray(), expected);
    // About half the targets are the argmax, the rest random.
    const target = randomInts(rows, classes, 3).map((t, n) => n % 2 ? expected[n] : t);
    const count = correctCount(x, tensor(target, [rows], { dtype: "i32" }));
    assert.deepEqual(count.shape, []);
    assert.deepEqual(await count.item(), correctCountReference(scores, target, classes));
  });
}

Deno.test("argmax takes the first maximum on ties; correctCount counts known rows", async () => {
  const x = tensor([1, 3, 3, 0, 0, 0, -1, -2, -1, 5, 4, 5], [4, 3]);
  assert.deepEqual(Array.from(await argmax(x).toTypedArray()), [1, 0, 0, 0]);
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
  assertThrows(() => argmax(zeros([4])), /^argmax: x must have shape \[N, C\]/);
  assertThrows(() => sum(zeros([3], { dtype: "i32" })), /^sum: needs an f32 tensor/);
});
