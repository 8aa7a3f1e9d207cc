// maxPool2dWithIndices and maxUnpool2d (and the MaxPool2d({ returnIndices }) / MaxUnpool2d
// layers): outputs, indices and gradients against float64 references and finite differences,
// on awkward shapes (including the 2x2 shapes the packed kernels would take), and against
// PyTorch's max_pool2d(return_indices=True) and max_unpool2d; bad input.
import { maxPool2dWithIndices, type MaxPoolOptions } from "../../nn/ops/max_pool.ts";
import { maxUnpool2d, type MaxUnpoolOptions } from "../../nn/ops/max_unpool.ts";
import { MaxPool2d, MaxUnpool2d } from "../../nn/modules/pooling.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { tensor } from "../../nn/tensor.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, assertSteadyMemory, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";
import { testOp } from "./op_helper.ts";
import {
  maxPool2dBackwardReference,
  maxPool2dReference,
  maxUnpool2dBackwardReference,
  maxUnpool2dReference,
} from "./reference/max_pool.ts";

await gpuReady();

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

const cases: [number[], MaxPoolOptions][] = [
  [[2, 3, 8, 16], { kernelSize: 2 }], // the shape the packed 2x2 kernels take in maxPool2d
  [[1, 1, 7, 5], { kernelSize: 2 }],
  [[2, 3, 7, 5], { kernelSize: 3, stride: 2, padding: 1 }],
  [[2, 2, 8, 8], { kernelSize: 3, stride: 2, padding: 1 }], // the row-texel kernel
  [[1, 2, 6, 6], { kernelSize: 3, stride: 1 }], // overlapping windows
  [[2, 1, 9, 7], { kernelSize: [3, 2], stride: [2, 1], dilation: [2, 1] }],
  [[1, 2, 7, 7], { kernelSize: 2, stride: 2, ceilMode: true }],
];

/** `count` distinct positions in [0, plane) for each of `planes` planes (no duplicates). */
function distinctIndices(planes: number, count: number, plane: number, seed: number): number[] {
  const keys = randomArray(planes * plane, seed);
  const indices: number[] = [];
  for (let p = 0; p < planes; p++) {
    const order = Array.from({ length: plane }, (_, i) => i)
      .sort((a, b) => keys[p * plane + a] - keys[p * plane + b]);
    indices.push(...order.slice(0, count));
  }
  return indices;
}

for (const [shape, options] of cases) {
  const label = `${shape}, ${JSON.stringify(options)}`;
  Deno.test(`maxPool2dWithIndices: output, indices and gradient match the reference (${label})`, async () => {
    const size = sizeOf(shape);
    const data = randomArray(size, size);
    await testOp({
      name: `maxPool2dWithIndices [${shape}] ${JSON.stringify(options)}`,
      inputs: [{ shape, data }],
      gpu: ([x]) => maxPool2dWithIndices(x, options)[0],
      reference: ([x]) => maxPool2dReference(x, shape, options).output,
      backward: ([x], grad) => {
        const { indices, shape: outShape } = maxPool2dReference(x, shape, options);
        return [maxPool2dBackwardReference(grad, indices, shape, outShape)];
      },
      outputShape: maxPool2dReference(data, shape, options).shape,
    });
    const values = Float32Array.from(data);
    const expected = maxPool2dReference(values, shape, options);
    const x = tensor(values, shape);
    const [out, indices] = maxPool2dWithIndices(x, options);
    assert.equal(indices.dtype, "i32");
    assert.deepEqual(indices.shape, expected.shape);
    assert.deepEqual(Array.from(await indices.toTypedArray()), Array.from(expected.indices));
    for (const t of [x, out, indices]) t.dispose();
  });
}

const unpoolCases: [number[], MaxUnpoolOptions, number[]][] = [
  [[2, 3, 4, 8], { kernelSize: 2 }, [8, 16]],
  [[1, 1, 3, 2], { kernelSize: 2, outputSize: [7, 5] }, [7, 5]],
  [[2, 3, 4, 3], { kernelSize: 3, stride: 2, padding: 1 }, [7, 5]],
  [[1, 2, 4, 4], { kernelSize: 3, stride: 1, outputSize: [1, 2, 6, 6] }, [6, 6]],
  [[2, 1, 3, 6], { kernelSize: [3, 2], stride: [2, 1] }, [7, 7]],
];
for (const [shape, options, [outH, outW]] of unpoolCases) {
  Deno.test(`maxUnpool2d matches the reference and finite differences (${shape}, ${JSON.stringify(options)})`, async () => {
    // Distinct positions per plane: with a position named twice only one value survives, so
    // finite differences would not see the other's gradient (which PyTorch gives it too).
    const indices = distinctIndices(shape[0] * shape[1], shape[2] * shape[3], outH * outW, 3);
    await testOp({
      name: `maxUnpool2d [${shape}] ${JSON.stringify(options)}`,
      inputs: [{ shape }, { shape, dtype: "i32", data: indices }],
      gpu: ([y, index]) => maxUnpool2d(y, index, options),
      reference: ([y]) => maxUnpool2dReference(y, indices, shape, outH, outW),
      backward: (_, grad) => [maxUnpool2dBackwardReference(grad, indices, shape, outH, outW)],
      outputShape: [shape[0], shape[1], outH, outW],
    });
  });
}

Deno.test("maxUnpool2d: the default output size, indices out of the plane skipped, NaN kept", async () => {
  // [1, 1, 2, 2] pooled with kernel 3, stride 2, padding 1: default output (2-1)*2 - 2 + 3 = 3.
  const y = tensor([1, NaN, 3, 4], [1, 1, 2, 2]);
  const indices = tensor([8, 0, -1, 9], [1, 1, 2, 2], { dtype: "i32" });
  const out = maxUnpool2d(y, indices, { kernelSize: 3, stride: 2, padding: 1 });
  assert.deepEqual(out.shape, [1, 1, 3, 3]);
  const values = Array.from(await out.toArray());
  assert.ok(Number.isNaN(values[0]), "NaN lands at index 0");
  assert.deepEqual(values.slice(1), [0, 0, 0, 0, 0, 0, 0, 1]);
  for (const t of [y, indices, out]) t.dispose();
});

Deno.test("MaxPool2d({ returnIndices }) and MaxUnpool2d: an autoencoder's round trip, no buffer left", async () => {
  const pool = new MaxPool2d(2, { returnIndices: true });
  const unpool = new MaxUnpool2d(2);
  const shape = [2, 3, 9, 8];
  const data = Float32Array.from(randomArray(sizeOf(shape), 11));
  const x = tensor(data, shape, { requiresGrad: true });
  const step = async () => {
    const [y, indices] = pool.forward(x);
    const restored = unpool.forward(y, indices, [9, 8]);
    assert.deepEqual(restored.shape, shape);
    const loss = sum(restored);
    loss.backward();
    const expected = maxPool2dReference(data, shape, { kernelSize: 2 });
    const reference = maxUnpool2dReference(expected.output, expected.indices, expected.shape, 9, 8);
    assertClose(await restored.toArray(), reference, { atol: 0, rtol: 0 }, "round trip");
    // d sum / dx: 1 at each window's argmax, 0 elsewhere (the last row is in no window).
    const ones = new Float64Array(expected.output.length).fill(1);
    const dx = maxPool2dBackwardReference(ones, expected.indices, shape, expected.shape);
    assertClose(await x.grad!.toArray(), dx, { atol: 0, rtol: 0 }, "gradient");
    for (const t of [y, indices, restored, loss, x.grad!]) t.dispose();
    x.grad = null;
  };
  await assertSteadyMemory(step, { warmup: 1, repeats: 3 });
  x.dispose();
});

Deno.test("maxPool2dWithIndices and maxUnpool2d refuse bad input, naming it", () => {
  const x = tensor(new Float32Array(16), [1, 1, 4, 4]);
  const indices = tensor(new Int32Array(4), [1, 1, 2, 2], { dtype: "i32" });
  const y = tensor(new Float32Array(4), [1, 1, 2, 2]);
  try {
    assertThrows(
      () => maxPool2dWithIndices(x, { kernelSize: 2, relu: true } as MaxPoolOptions),
      /maxPool2dWithIndices: relu is not supported/,
    );
    assertThrows(
      () => maxPool2dWithIndices(x, { kernelSize: 5 }),
      /maxPool2dWithIndices/,
    );
    assertThrows(
      () => maxUnpool2d(y, x, { kernelSize: 2 }),
      /maxUnpool2d: indices must be i32 of x's shape \[1, 1, 2, 2\]/,
    );
    assertThrows(
      () => maxUnpool2d(y, y, { kernelSize: 2 }),
      /indices must be i32 .* got \[1, 1, 2, 2\] f32/,
    );
    assertThrows(
      () => maxUnpool2d(y.view([1, 4]), indices, { kernelSize: 2 }),
      /maxUnpool2d: x must be an f32 tensor \[N, C, H, W\], got \[1, 4\]/,
    );
    assertThrows(
      () => maxUnpool2d(y, indices, { kernelSize: 2, outputSize: [6, 4] }),
      /maxUnpool2d: output height 6 must lie between 3 and 5/,
    );
    assertThrows(
      () => maxUnpool2d(y, indices, { kernelSize: 2, outputSize: [4] }),
      /outputSize must be \[h, w\] or \[N, C, h, w\]/,
    );
    assertThrows(() => new MaxUnpool2d(2).forward(x.view([16]), indices), /MaxUnpool2d: needs/);
  } finally {
    for (const t of [x, indices, y]) t.dispose();
  }
});

Deno.test("maxPool2dWithIndices and maxUnpool2d agree with PyTorch (values, indices, gradients)", async () => {
  if (skipWithoutTorch("max unpooling vs PyTorch")) return;
  const oracle: [number[], MaxPoolOptions, number[]][] = [
    [[2, 3, 8, 16], { kernelSize: 2 }, [8, 16]],
    [[2, 2, 7, 5], { kernelSize: 3, stride: 2, padding: 1 }, [7, 5]],
    [[1, 2, 9, 7], { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0] }, [9, 7]],
    [[1, 1, 7, 7], { kernelSize: 2, ceilMode: true }, [7, 7]],
    [[1, 2, 6, 6], { kernelSize: 2 }, [7, 7]], // an output size past the default 6x6
  ];
  const cases = oracle.map(([shape, options, outputSize], n) => {
    // Distinct values: no ties, so every index is determined.
    const data = Array.from(Float32Array.from(randomArray(sizeOf(shape), 40 + n)));
    return { shape, options, outputSize, data };
  });
  const ours: {
    shape: number[];
    values: Float32Array;
    indices: number[];
    dx: Float32Array;
    grad: number[];
    unpoolShape: number[];
    unpoolValues: Float32Array;
    unpoolDy: Float32Array;
    unpoolGrad: number[];
  }[] = [];
  for (const c of cases) {
    const x = tensor(c.data, c.shape, { requiresGrad: true });
    const [out, indices] = maxPool2dWithIndices(x, c.options);
    const grad = Array.from(Float32Array.from(randomArray(out.size, 7)));
    out.backward({ grad: tensor(grad, out.shape) });
    const y = tensor(await out.toArray(), out.shape, { requiresGrad: true });
    const unpool = maxUnpool2d(y, indices, { ...c.options, outputSize: c.outputSize });
    const unpoolGrad = Array.from(Float32Array.from(randomArray(unpool.size, 8)));
    unpool.backward({ grad: tensor(unpoolGrad, unpool.shape) });
    ours.push({
      shape: [...out.shape],
      values: await out.toArray(),
      indices: Array.from(await indices.toTypedArray()),
      dx: await x.grad!.toArray(),
      grad,
      unpoolShape: [...unpool.shape],
      unpoolValues: await unpool.toArray(),
      unpoolDy: await y.grad!.toArray(),
      unpoolGrad,
    });
  }
  const { answers } = await askTorch<{
    answers: {
      shape: number[];
      values: number[];
      indices: number[];
      grad: number[];
      unpoolShape: number[];
      unpoolValues: number[];
      unpoolGrad: number[];
    }[];
  }>("unpool.py", {
    cases: cases.map((c, n) => ({
      shape: c.shape,
      data: c.data,
      options: c.options,
      outputSize: c.outputSize,
      grad: ours[n].grad,
      unpoolGrad: ours[n].unpoolGrad,
    })),
  });
  const exact = { atol: 0, rtol: 0 };
  for (const [n, c] of cases.entries()) {
    const name = `[${c.shape}] ${JSON.stringify(c.options)}`;
    const theirs = answers[n];
    assert.deepEqual(ours[n].shape, theirs.shape, `${name}: shape`);
    assertClose(ours[n].values, theirs.values, exact, `${name}: output`);
    assert.deepEqual(ours[n].indices, theirs.indices, `${name}: indices`);
    assertClose(ours[n].dx, theirs.grad, { atol: 1e-6, rtol: 1e-5 }, `${name}: gradient`);
    assert.deepEqual(ours[n].unpoolShape, theirs.unpoolShape, `${name}: unpooled shape`);
    assertClose(ours[n].unpoolValues, theirs.unpoolValues, exact, `${name}: unpooled`);
    assertClose(ours[n].unpoolDy, theirs.unpoolGrad, exact, `${name}: unpooled gradient`);
  }
});
