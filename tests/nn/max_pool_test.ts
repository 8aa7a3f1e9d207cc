import { maxPool2d, type MaxPoolOptions } from "../../nn/ops/max_pool.ts";
import { relu } from "../../nn/ops/elementwise.ts";
import { reluBackwardReference, reluReference } from "./reference/elementwise.ts";
import { maxPool2dBackwardReference, maxPool2dReference } from "./reference/max_pool.ts";
import { tensor, zeros } from "../../nn/tensor.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";

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
    await testOp({
      name: `maxPool2d [${shape}] ${JSON.stringify(options)}`,
      inputs: [{ shape, data: randomArray(size, size) }],
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

Deno.test("maxPool2d ties go to the first maximum in the 2x2 kernels too (rows of 8)", async () => {
  // Windows: all tied; tied top-right and bottom-left; tied bottom row; a clear maximum.
  const top = [5, 5, 1, 7, 0, 2, 3, 1];
  const bottom = [5, 5, 7, 2, 4, 4, 9, 1];
  const x = tensor([...top, ...bottom], [1, 1, 2, 8], { requiresGrad: true });
  const out = maxPool2d(x, { kernelSize: 2 });
  assert.deepEqual(Array.from(await out.toArray()), [5, 7, 4, 9]);
  out.backward({ grad: tensor([1, 2, 3, 4], [1, 1, 1, 4]) });
  assert.deepEqual(Array.from(await x.grad!.toArray()), [
    ...[1, 0, 0, 2, 0, 0, 0, 0],
    ...[0, 0, 0, 0, 3, 0, 4, 0],
  ]);
});

/** maxPool2d(relu(x)) on the CPU: the reference of `relu: true`. */
function reluPoolReference(x: Float64Array, shape: number[], options: MaxPoolOptions) {
  return maxPool2dReference(reluReference(x), shape, options);
}

// The 2x2 kernels (rows of 8) and the general ones, with relu fused.
const reluCases: [number[], MaxPoolOptions][] = [
  [[2, 3, 4, 8], { kernelSize: 2, relu: true }],
  [[1, 2, 6, 16], { kernelSize: 2, relu: true }],
  [[3, 2, 9, 11], { kernelSize: 2, relu: true }],
  [[2, 3, 7, 5], { kernelSize: 3, stride: 2, padding: 1, relu: true }],
  [[2, 3, 6, 6], { kernelSize: 3, stride: 1, relu: true }],
  // Rows of whole texels: the row kernel.
  [[2, 3, 4, 16], { kernelSize: 3, stride: 2, padding: 1, relu: true }],
  [[1, 2, 5, 8], { kernelSize: [2, 3], stride: 1, padding: 1, ceilMode: true, relu: true }],
];
for (const [shape, options] of reluCases) {
  Deno.test(`maxPool2d with relu matches maxPool(relu(x)): reference and finite differences (${shape}, ${JSON.stringify(options)})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    await testOp({
      name: `maxPool2d with relu [${shape}] ${JSON.stringify(options)}`,
      // No value within the finite-difference step of ReLU's kink at 0.
      inputs: [{
        shape,
        data: randomArray(size, size + 1).map((v) => Math.abs(v) < 0.01 ? v + 0.02 : v),
      }],
      gpu: ([x]) => maxPool2d(x, options),
      reference: ([x]) => reluPoolReference(x, shape, options).output,
      backward: ([x], grad) => {
        const { indices, shape: outShape } = reluPoolReference(x, shape, options);
        const dx = maxPool2dBackwardReference(grad, indices, shape, outShape);
        return [reluBackwardReference(dx, x)];
      },
    });
  });
}

for (
  const [shape, options] of [
    ...large.map((
      [shape, options],
    ): [number[], MaxPoolOptions] => [shape, { ...options, relu: true }]),
  ]
) {
  Deno.test(`maxPool2d with relu equals maxPool2d(relu(x)) and the references, gradient too (${shape}, ${JSON.stringify(options)})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from(randomArray(size, 5));
    const data = Float64Array.from(values);
    const grad = randomArray(
      maxPool2dReference(data, shape, options).output.length,
      6,
    );
    const fused = tensor(values, shape, { requiresGrad: true });
    const out = maxPool2d(fused, options);
    const separate = tensor(values, shape, { requiresGrad: true });
    const { relu: _, ...plain } = options;
    const unfused = maxPool2d(relu(separate), plain);
    const expected = reluPoolReference(data, shape, options);
    assert.deepEqual(out.shape, expected.shape);
    const forward = await out.toArray();
    assertClose(forward, expected.output, { atol: 0, rtol: 0 }, "forward");
    assertClose(forward, await unfused.toArray(), { atol: 0, rtol: 0 }, "forward vs unfused");
    const gradTensor = tensor(Float32Array.from(grad), out.shape);
    out.backward({ grad: gradTensor });
    unfused.backward({ grad: gradTensor });
    const dx = reluBackwardReference(
      maxPool2dBackwardReference(grad, expected.indices, shape, expected.shape),
      data,
    );
    const gradient = await fused.grad!.toArray();
    assertClose(gradient, dx, { atol: 1e-6 }, "gradient");
    assertClose(gradient, await separate.grad!.toArray(), { atol: 0, rtol: 0 }, "vs unfused");
  });
}

Deno.test("maxPool2d with relu: windows with no positive value give 0 and no gradient", async () => {
  for (const shape of [[1, 1, 2, 8], [1, 1, 2, 4]]) {
    const values = [-1, -2, 3, -4, -5, -6, 0, 0, -1, -3, -2, 1, -9, -8, 0, -1].slice(
      0,
      shape[3] * 2,
    );
    const x = tensor(values, shape, { requiresGrad: true });
    const out = maxPool2d(x, { kernelSize: 2, relu: true });
    const expected = shape[3] === 8 ? [0, 3, 0, 0] : [0, 3];
    assert.deepEqual(Array.from(await out.toArray()), expected);
    out.backward({ grad: tensor(expected.map(() => 1), out.shape) });
    const dx = new Array(values.length).fill(0);
    dx[2] = 1;
    assert.deepEqual(Array.from(await x.grad!.toArray()), dx);
  }
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
