import { maxPool2d, type MaxPoolOptions } from "../nn/ops/max_pool.ts";
import { maxPool2dBackwardReference, maxPool2dReference } from "../nn/reference/max_pool.ts";
import { tensor, zeros } from "../nn/tensor.ts";
import { assert, assertThrows } from "./assert.ts";
import { assertClose, gpuReady, gradCheck, randomArray } from "./testing.ts";

await gpuReady();

const cases: [number[], MaxPoolOptions][] = [
  [[1, 1, 7, 5], { kernelSize: 2 }],
  [[2, 3, 7, 5], { kernelSize: 3, stride: 2, padding: 1 }],
  [[2, 3, 6, 6], { kernelSize: 3, stride: 1 }],
  [[1, 2, 4, 4], { kernelSize: 2, stride: 1, padding: 1 }],
  [[3, 2, 9, 11], { kernelSize: 2 }],
  [[1, 3, 8, 8], { kernelSize: 2 }],
  [[2, 1, 5, 5], { kernelSize: 4, stride: 3, padding: 2 }],
  [[1, 2, 7, 7], { kernelSize: 2, stride: 3 }],
];

for (const [shape, options] of cases) {
  Deno.test(`maxPool2d matches the reference and finite differences (${shape}, ${JSON.stringify(options)})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    await gradCheck({
      inputs: [{ data: randomArray(size, size), shape }],
      reference: ([x]) => maxPool2dReference(x, shape, options).output,
      gpu: ([x]) => maxPool2d(x, options),
    });
  });
}

// The study's shapes (exact tiling: the per-window backward kernel) and two that need the
// gather kernel at a similar size.
const large: [number[], MaxPoolOptions][] = [
  [[128, 10, 24, 24], { kernelSize: 2 }],
  [[128, 20, 8, 8], { kernelSize: 2 }],
  [[32, 10, 24, 24], { kernelSize: 2 }],
  [[32, 20, 9, 9], { kernelSize: 2 }],
  [[32, 20, 8, 8], { kernelSize: 3, stride: 2, padding: 1 }],
];
for (const [shape, options] of large) {
  Deno.test(`maxPool2d forward and backward match the reference (${shape}, ${JSON.stringify(options)})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from(randomArray(size, 3));
    const data = Float64Array.from(values);
    const x = tensor(values, shape, { requiresGrad: true });
    const out = maxPool2d(x, options);
    const expected = maxPool2dReference(data, shape, options);
    assert.deepEqual(out.shape, expected.shape);
    assertClose(await out.toArray(), expected.output, { atol: 0, rtol: 0 }, "forward");
    const grad = randomArray(out.size, 4);
    out.backward({ grad: tensor(Float32Array.from(grad), out.shape) });
    const dx = maxPool2dBackwardReference(grad, expected.indices, shape, expected.shape);
    assertClose(await x.grad!.toArray(), dx, { atol: 1e-6 }, "gradient");
  });
}

Deno.test("maxPool2d with overlapping windows adds the gradients of every window", async () => {
  const x = tensor([0, 0, 0, 0, 9, 0, 0, 0, 0], [1, 1, 3, 3], { requiresGrad: true });
  const out = maxPool2d(x, { kernelSize: 2, stride: 1 });
  assert.deepEqual(Array.from(await out.toArray()), [9, 9, 9, 9]);
  out.backward({ grad: tensor([1, 2, 3, 4], [1, 1, 2, 2]) });
  assert.deepEqual(Array.from(await x.grad!.toArray()), [0, 0, 0, 0, 10, 0, 0, 0, 0]);
});

Deno.test("maxPool2d padding counts as -inf, and ties go to the first maximum", async () => {
  const x = tensor([-1, -2, -3, -4], [1, 1, 2, 2], { requiresGrad: true });
  const out = maxPool2d(x, { kernelSize: 2, stride: 1, padding: 1 });
  assert.deepEqual(out.shape, [1, 1, 3, 3]);
  assert.deepEqual(Array.from(await out.toArray()), [-1, -1, -2, -1, -1, -2, -3, -3, -4]);
  const tied = tensor([5, 5, 5, 5], [1, 1, 2, 2], { requiresGrad: true });
  const pooled = maxPool2d(tied, { kernelSize: 2 });
  pooled.backward({ grad: tensor([1], [1, 1, 1, 1]) });
  assert.deepEqual(Array.from(await tied.grad!.toArray()), [1, 0, 0, 0]);
});

Deno.test("maxPool2d rejects bad shapes and windows", () => {
  assertThrows(
    () => maxPool2d(zeros([2, 4, 4]), { kernelSize: 2 }),
    /^maxPool2d: needs x of shape/,
  );
  assertThrows(
    () => maxPool2d(zeros([1, 1, 4, 4]), { kernelSize: 2, padding: 2 }),
    /^maxPool2d: padding 2 must be at most half/,
  );
  assertThrows(() => maxPool2d(zeros([1, 1, 2, 2]), { kernelSize: 3 }), /does not fit x of shape/);
  assertThrows(() => maxPool2d(zeros([1, 1, 4, 4]), { kernelSize: 0 }), /kernelSize must be/);
});
