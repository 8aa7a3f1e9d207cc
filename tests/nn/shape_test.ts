// The shape ops against their float64 references (tests/nn/reference/shape.ts), forward and
// backward with finite differences, on awkward shapes: the views (reshape, view, flatten,
// squeeze, unsqueeze) and the copies (transpose, permute, expand, cat, stack, split, narrow,
// pad), i32 and u8 copies, the errors, shared storage and no leaks.
import assert from "node:assert/strict";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { sync } from "../../nn/gpu/stream.ts";
import { Flatten } from "../../nn/modules/layers.ts";
import { cat, expand, narrow, pad, permute, split, stack, transpose } from "../../nn/ops/layout.ts";
import { flatten, reshape, squeeze, unsqueeze, view } from "../../nn/ops/shape.ts";
import { mul } from "../../nn/ops/elementwise.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { tidy } from "../../nn/scope.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";
import { testOp } from "./op_helper.ts";
import {
  catBackwardReference,
  catReference,
  expandBackwardReference,
  expandReference,
  narrowBackwardReference,
  narrowReference,
  padBackwardReference,
  paddedShape,
  padReference,
  permuteBackwardReference,
  permuteReference,
  sizeOf,
} from "./reference/shape.ts";

await gpuReady();

/** Views keep the elements in order: forward and backward are the identity. */
const VIEW_CASES: readonly {
  name: string;
  shape: readonly number[];
  op: (x: Tensor) => Tensor;
  outputShape: readonly number[];
}[] = [
  {
    name: "reshape [2,3,5] to [5,-1]",
    shape: [2, 3, 5],
    op: (x) => reshape(x, [5, -1]),
    outputShape: [5, 6],
  },
  { name: "reshape [1] to 0-d", shape: [1], op: (x) => reshape(x, []), outputShape: [] },
  {
    name: "reshape 0-d to [1,-1,1]",
    shape: [],
    op: (x) => reshape(x, [1, -1, 1]),
    outputShape: [1, 1, 1],
  },
  { name: "view [7,3] to [3,7]", shape: [7, 3], op: (x) => view(x, [3, 7]), outputShape: [3, 7] },
  { name: "flatten all", shape: [2, 3, 5], op: (x) => flatten(x), outputShape: [30] },
  {
    name: "flatten 1..-2",
    shape: [2, 3, 1, 5],
    op: (x) => flatten(x, { startDim: 1, endDim: -2 }),
    outputShape: [2, 3, 5],
  },
  { name: "flatten 0-d", shape: [], op: (x) => flatten(x), outputShape: [1] },
  {
    name: "Tensor.flatten (startDim 1)",
    shape: [3, 1, 5],
    op: (x) => x.flatten(),
    outputShape: [3, 5],
  },
  { name: "squeeze all", shape: [1, 3, 1, 5, 1], op: (x) => squeeze(x), outputShape: [3, 5] },
  {
    name: "squeeze dim -1",
    shape: [1, 3, 1],
    op: (x) => squeeze(x, { dim: -1 }),
    outputShape: [1, 3],
  },
  {
    name: "squeeze dims [0, 1] (1 is not size 1: kept)",
    shape: [1, 3, 1],
    op: (x) => squeeze(x, { dim: [0, 1] }),
    outputShape: [3, 1],
  },
  { name: "squeeze 0-d", shape: [], op: (x) => squeeze(x, { dim: 0 }), outputShape: [] },
  { name: "unsqueeze -1", shape: [2, 3], op: (x) => unsqueeze(x, -1), outputShape: [2, 3, 1] },
  { name: "unsqueeze 0-d", shape: [], op: (x) => unsqueeze(x, 0), outputShape: [1] },
  {
    name: "views of views",
    shape: [2, 3, 5],
    op: (x) => squeeze(unsqueeze(flatten(reshape(x, [6, 5]), { startDim: 0 }), 1), { dim: 1 }),
    outputShape: [30],
  },
];

Deno.test("views: the same elements with another shape, gradient viewed back", async () => {
  for (const c of VIEW_CASES) {
    await testOp({
      name: c.name,
      inputs: [c.shape],
      gpu: ([x]) => c.op(x),
      reference: ([x]) => x,
      backward: (_, grad) => [grad],
      outputShape: c.outputShape,
    });
  }
});

Deno.test("views share the input's buffer and survive its dispose", async () => {
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const before = memoryStats().liveBuffers;
  const unsqueezed = unsqueeze(x, 0);
  const views = [reshape(x, [3, 2]), view(x, [6]), flatten(x), squeeze(unsqueezed), x.flatten()];
  unsqueezed.dispose();
  assert.equal(memoryStats().liveBuffers, before, "views allocate no buffer");
  for (const v of views) assert.equal(v.buffer, x.buffer);
  x.dispose();
  assert.deepEqual(Array.from(await views[0].toArray()), [1, 2, 3, 4, 5, 6]);
  for (const v of views.slice(0, -1)) v.dispose();
  assert.equal(memoryStats().liveBuffers, before, "the buffer stays while a view holds it");
  views.at(-1)!.dispose();
  assert.equal(memoryStats().liveBuffers, before - 1, "the last view frees it");
});

Deno.test("views of i32 and u8 tensors", async () => {
  const i = tensor([1, -2, 3, 4, 5, 6], [2, 3], { dtype: "i32" });
  const u = tensor([1, 2, 255, 4, 5, 6], [1, 6], { dtype: "u8" });
  const vi = unsqueeze(flatten(i), 0);
  const vu = squeeze(u);
  assert.deepEqual(vi.shape, [1, 6]);
  assert.deepEqual(Array.from(await vi.toTypedArray()), [1, -2, 3, 4, 5, 6]);
  assert.equal(vu.dtype, "u8");
  assert.deepEqual(Array.from(await vu.toTypedArray()), [1, 2, 255, 4, 5, 6]);
  for (const t of [i, u, vi, vu]) t.dispose();
});

const PERMUTE_CASES: readonly { shape: number[]; dims: number[] }[] = [
  { shape: [2, 3, 5], dims: [2, 0, 1] },
  { shape: [2, 3, 5], dims: [-1, 0, 1] },
  { shape: [3, 1, 5], dims: [1, 2, 0] },
  { shape: [2, 3, 4, 5], dims: [0, 2, 3, 1] },
  { shape: [1, 5, 1, 3], dims: [3, 2, 1, 0] },
  { shape: [8, 12], dims: [1, 0] }, // tiled (4x4 blocks)
  { shape: [3, 8, 12], dims: [0, 2, 1] }, // tiled, batched
  { shape: [4, 8, 12], dims: [2, 0, 1] }, // tiled: the last dim moves to the front
  { shape: [2, 4, 3, 8], dims: [0, 3, 2, 1] }, // tiled across a middle dim
  { shape: [64, 72], dims: [1, 0] }, // tiled, read as a texture (software policy)
  { shape: [33, 65], dims: [1, 0] }, // not a multiple of 4
  { shape: [5, 7, 9], dims: [1, 2, 0] }, // large enough for a texture, odd
  { shape: [6], dims: [0] }, // identity: a view
  { shape: [], dims: [] },
];

Deno.test("permute and transpose match the reference, forward and backward", async () => {
  for (const { shape, dims } of PERMUTE_CASES) {
    await testOp({
      name: `permute [${shape}] by [${dims}]`,
      inputs: [shape],
      gpu: ([x]) => permute(x, dims),
      reference: ([x]) => permuteReference(x, shape, dims),
      backward: (_, grad) => [permuteBackwardReference(grad, shape, dims)],
      outputShape: dims.map((d) => shape[d < 0 ? d + shape.length : d]),
    });
  }
  const transposes: [number[], number, number, number[]][] = [
    [[2, 3, 5], 0, -1, [2, 1, 0]],
    [[2, 3, 5], -2, 2, [0, 2, 1]],
    [[7, 1], 1, 0, [1, 0]],
    [[4, 4], 1, 1, [0, 1]],
    [[], 0, -1, []],
  ];
  for (const [shape, dim0, dim1, order] of transposes) {
    await testOp({
      name: `transpose [${shape}] ${dim0} ${dim1}`,
      inputs: [shape],
      gpu: ([x]) => transpose(x, dim0, dim1),
      reference: ([x]) => permuteReference(x, shape, order),
      backward: (_, grad) => [permuteBackwardReference(grad, shape, order)],
      outputShape: order.map((d) => shape[d]),
    });
  }
});

Deno.test("transpose results feed other ops, and transpose twice is the identity", async () => {
  const values = Array.from({ length: 15 }, (_, i) => i);
  const x = tensor(values, [3, 5], { requiresGrad: true });
  const y = tensor(values.map((v) => v / 10), [5, 3]);
  tidy(() => sum(mul(transpose(transpose(transpose(x, 0, 1), 1, 0), 0, 1), y)).backward());
  const expected = permuteReference(values.map((v) => v / 10), [5, 3], [1, 0]);
  const grad = await x.grad!.toArray();
  grad.forEach((g, i) => assert.ok(Math.abs(g - expected[i]) < 1e-6, `grad[${i}]`));
  for (const t of [x, y, x.grad!]) t.dispose();
});

const EXPAND_CASES: readonly { shape: number[]; target: number[]; result: number[] }[] = [
  { shape: [3, 1], target: [2, 3, 4], result: [2, 3, 4] },
  { shape: [3, 1], target: [-1, 5], result: [3, 5] },
  { shape: [1, 5, 1], target: [3, -1, 7], result: [3, 5, 7] },
  { shape: [], target: [2, 3], result: [2, 3] },
  { shape: [1], target: [9], result: [9] },
  { shape: [2, 3], target: [2, 3], result: [2, 3] },
  { shape: [1, 8], target: [1, 3, 8], result: [1, 3, 8] },
  { shape: [9, 1, 1], target: [9, 33, 17], result: [9, 33, 17] }, // a texture read
];

Deno.test("expand matches the reference, forward and backward (summed back)", async () => {
  for (const { shape, target, result } of EXPAND_CASES) {
    await testOp({
      name: `expand [${shape}] to [${target}]`,
      inputs: [shape],
      gpu: ([x]) => expand(x, target),
      reference: ([x]) => expandReference(x, shape, result),
      backward: (_, grad) => [expandBackwardReference(grad, shape, result)],
      outputShape: result,
    });
  }
});

const NARROW_CASES: readonly { shape: number[]; dim: number; start: number; length: number }[] = [
  { shape: [2, 3, 5], dim: -1, start: 3, length: 2 }, // at the end
  { shape: [2, 3, 5], dim: 1, start: -2, length: 2 }, // negative start
  { shape: [2, 3, 5], dim: 0, start: 1, length: 1 },
  { shape: [7], dim: 0, start: 0, length: 7 },
  { shape: [4, 12], dim: 1, start: 4, length: 8 }, // vec4 loads
  { shape: [4, 12], dim: 1, start: 1, length: 8 },
  { shape: [5, 8], dim: 0, start: 1, length: 3 }, // backward: vec4 loads, padded rows
  { shape: [3, 6], dim: 1, start: 2, length: 0 }, // empty
  { shape: [70, 70], dim: 0, start: 5, length: 61 }, // a texture read
];

Deno.test("narrow matches the reference, forward and backward (zeros around)", async () => {
  for (const { shape, dim, start, length } of NARROW_CASES) {
    const d = dim < 0 ? dim + shape.length : dim;
    const first = start < 0 ? start + shape[d] : start;
    await testOp({
      name: `narrow [${shape}] dim ${dim} from ${start} length ${length}`,
      inputs: [shape],
      gpu: ([x]) => narrow(x, dim, start, length),
      reference: ([x]) => narrowReference(x, shape, d, first, length),
      backward: (_, grad) => [narrowBackwardReference(grad, shape, d, first, length)],
      outputShape: shape.map((size, k) => k === d ? length : size),
    });
  }
});

Deno.test("split: each piece matches the reference, forward and backward", async () => {
  const cases: { shape: number[]; sizes: number | number[]; dim: number; expected: number[] }[] = [
    { shape: [2, 5, 3], sizes: [1, 2, 2], dim: 1, expected: [1, 2, 2] },
    { shape: [5], sizes: 2, dim: 0, expected: [2, 2, 1] },
    { shape: [3, 7], sizes: 3, dim: -1, expected: [3, 3, 1] },
    { shape: [4, 2], sizes: [0, 4], dim: 0, expected: [0, 4] },
  ];
  for (const { shape, sizes, dim, expected } of cases) {
    const d = dim < 0 ? dim + shape.length : dim;
    const shapes = tidy(() => {
      const pieces = split(tensor(new Float32Array(sizeOf(shape)), shape), sizes, { dim });
      return pieces.map((piece) => [...piece.shape]);
    });
    assert.deepEqual(shapes, expected.map((n) => shape.map((size, k) => k === d ? n : size)));
    let start = 0;
    for (const [k, length] of expected.entries()) {
      const first = start;
      await testOp({
        name: `split [${shape}] by ${JSON.stringify(sizes)} dim ${dim}: piece ${k}`,
        inputs: [shape],
        gpu: ([x]) => split(x, sizes, { dim })[k],
        reference: ([x]) => narrowReference(x, shape, d, first, length),
        backward: (_, grad) => [narrowBackwardReference(grad, shape, d, first, length)],
      });
      start += length;
    }
  }
});

Deno.test("split pieces summed: every input element gets the gradient of its piece", async () => {
  const x = tensor(Array.from({ length: 10 }, (_, i) => i), [2, 5], { requiresGrad: true });
  tidy(() => {
    const [a, b, c] = split(x, [1, 2, 2], { dim: 1 });
    sum(cat([mul(a, 1), mul(b, 2), mul(c, 3)], { dim: 1 })).backward();
  });
  assert.deepEqual(Array.from(await x.grad!.toArray()), [1, 2, 2, 3, 3, 1, 2, 2, 3, 3]);
  for (const t of [x, x.grad!]) t.dispose();
});

const PAD_CASES: readonly { shape: number[]; pads: number[]; value?: number }[] = [
  { shape: [3, 4, 5], pads: [-1, 2, 1, -1] }, // crop and pad
  { shape: [3, 4, 5], pads: [1, 1, 2, 0, 0, 1], value: 2.5 },
  { shape: [7], pads: [2, 3] },
  { shape: [7], pads: [-2, -3] },
  { shape: [2, 3], pads: [0, 0, -1, 0] },
  { shape: [1, 1], pads: [3, 0, 0, 2], value: -1 },
  { shape: [4, 8], pads: [4, 4] }, // aligned rows
  { shape: [3, 8], pads: [0, 0, 1, 1], value: 3 }, // vec4 loads, padded rows
  { shape: [2, 3, 4], pads: [0, 0, -1, 1, 1, 0] }, // vec4 loads, padded and cropped
  { shape: [0, 3], pads: [0, 0, 1, 1], value: 7 }, // from nothing
  { shape: [], pads: [] },
  { shape: [40, 120], pads: [1, -3, 2, 2] }, // a texture read
];

Deno.test("pad matches the reference (F.pad, constant mode), forward and backward", async () => {
  for (const { shape, pads, value } of PAD_CASES) {
    await testOp({
      name: `pad [${shape}] by [${pads}] value ${value ?? 0}`,
      inputs: [shape],
      gpu: ([x]) => pad(x, pads, { value }),
      reference: ([x]) => padReference(x, shape, pads, value),
      backward: (_, grad) => [padBackwardReference(grad, shape, pads)],
      outputShape: paddedShape(shape, pads),
    });
  }
});

Deno.test("pad with NaN and Infinity values", async () => {
  const x = tensor([1, 2], [2]);
  for (const value of [NaN, Infinity, -Infinity]) {
    const out = pad(x, [1, 0], { value });
    assert.deepEqual(Array.from(await out.toArray()), [value, 1, 2]);
    out.dispose();
  }
  x.dispose();
});

const CAT_CASES: readonly { shapes: number[][]; dim: number }[] = [
  { shapes: [[2, 3, 5], [2, 1, 5], [2, 4, 5]], dim: 1 }, // 3 tensors, sizes differ
  { shapes: [[3, 4], [3, 8]], dim: -1 }, // aligned along the last dim: vec4 loads
  { shapes: [[3, 3], [3, 2], [3, 1]], dim: -1 }, // unaligned along the last dim
  { shapes: [[3, 3], [3, 5]], dim: 1 }, // rows of 8 from two sources: chosen per element
  { shapes: [[2, 1, 4], [2, 2, 4], [2, 1, 4]], dim: 1 }, // vec4 loads, chosen per row
  { shapes: [[1, 4], [2, 4], [3, 4]], dim: 0 },
  { shapes: [[2, 0, 5], [2, 3, 5]], dim: 1 }, // an empty one
  { shapes: [[5]], dim: 0 }, // one tensor
  { shapes: Array.from({ length: 11 }, (_, k) => [1 + (k % 3), 3]), dim: 0 }, // in groups
  { shapes: Array.from({ length: 9 }, () => [2, 1, 2]), dim: 2 },
  { shapes: [[30, 70], [30, 90]], dim: 1 },
  { shapes: [[40, 110], [40, 30]], dim: 1 }, // a texture read (software policy)
];

Deno.test("cat matches the reference, forward and backward (slices)", async () => {
  for (const { shapes, dim } of CAT_CASES) {
    const d = dim < 0 ? dim + shapes[0].length : dim;
    const total = shapes.reduce((s, shape) => s + shape[d], 0);
    await testOp({
      name: `cat ${JSON.stringify(shapes)} dim ${dim}`,
      inputs: shapes,
      gpu: (xs) => cat(xs, { dim }),
      reference: (xs) => catReference(xs, shapes, d),
      backward: (_, grad) => catBackwardReference(grad, shapes, d),
      outputShape: shapes[0].map((size, k) => k === d ? total : size),
    });
  }
});

Deno.test("stack matches the reference, forward and backward", async () => {
  const cases: { shape: number[]; count: number; dim: number }[] = [
    { shape: [2, 3], count: 3, dim: -1 },
    { shape: [2, 3], count: 2, dim: 0 },
    { shape: [2, 3], count: 4, dim: 1 },
    { shape: [], count: 3, dim: 0 },
    { shape: [5], count: 10, dim: -1 }, // in groups
  ];
  for (const { shape, count, dim } of cases) {
    const d = dim < 0 ? dim + shape.length + 1 : dim;
    const shapes = Array.from(
      { length: count },
      () => [...shape.slice(0, d), 1, ...shape.slice(d)],
    );
    const outShape = [...shape.slice(0, d), count, ...shape.slice(d)];
    await testOp({
      name: `stack ${count} x [${shape}] dim ${dim}`,
      inputs: Array.from({ length: count }, () => shape),
      gpu: (xs) => stack(xs, { dim }),
      reference: (xs) => catReference(xs, shapes, d),
      backward: (_, grad) => catBackwardReference(grad, shapes, d),
      outputShape: outShape,
    });
  }
});

Deno.test("copies of i32 tensors are exact", async () => {
  const data = Array.from({ length: 30 }, (_, i) => (i * 7919) % 1000 - 500);
  const cases: { name: string; shape: number[]; op: (x: Tensor) => Tensor; ref: Float64Array }[] = [
    {
      name: "permute",
      shape: [2, 3, 5],
      op: (x) => permute(x, [2, 0, 1]),
      ref: permuteReference(data, [2, 3, 5], [2, 0, 1]),
    },
    {
      name: "transpose tiled",
      shape: [4, 4],
      op: (x) => transpose(x, 0, 1),
      ref: permuteReference(data.slice(0, 16), [4, 4], [1, 0]),
    },
    {
      name: "expand",
      shape: [3, 1],
      op: (x) => expand(x, [2, 3, 4]),
      ref: expandReference(data.slice(0, 3), [3, 1], [2, 3, 4]),
    },
    {
      name: "pad",
      shape: [6, 5],
      op: (x) => pad(x, [1, -1, -2, 1], { value: -7 }),
      ref: padReference(data, [6, 5], [1, -1, -2, 1], -7),
    },
    {
      name: "narrow",
      shape: [6, 5],
      op: (x) => narrow(x, 1, 1, 3),
      ref: narrowReference(data, [6, 5], 1, 1, 3),
    },
    {
      name: "narrow (vec4 loads)",
      shape: [6, 4],
      op: (x) => narrow(x, 0, 1, 4),
      ref: narrowReference(data, [6, 4], 0, 1, 4),
    },
    {
      name: "cat",
      shape: [3, 10],
      op: (x) => cat([x, x], { dim: 1 }),
      ref: catReference([data, data], [[3, 10], [3, 10]], 1),
    },
  ];
  for (const c of cases) {
    await testOp({
      name: `i32 ${c.name}`,
      inputs: [{ shape: c.shape, dtype: "i32", data: data.slice(0, sizeOf(c.shape)) }],
      gpu: ([x]) => c.op(x),
      reference: () => c.ref,
      outputDtype: "i32",
    });
  }
});

Deno.test("copies of u8 tensors are exact", async () => {
  const data = Uint8Array.from({ length: 30 }, (_, i) => (i * 37) % 256);
  const x = tensor(data, [2, 3, 5], { dtype: "u8" });
  const y = tensor(data.slice(0, 5), [5, 1], { dtype: "u8" });
  const cases: [string, Tensor, Float64Array][] = [
    ["permute", permute(x, [2, 0, 1]), permuteReference(data, [2, 3, 5], [2, 0, 1])],
    [
      "pad",
      pad(x, [2, -1, 0, 1], { value: 255 }),
      padReference(data, [2, 3, 5], [2, -1, 0, 1], 255),
    ],
    ["narrow", narrow(x, -1, 1, 3), narrowReference(data, [2, 3, 5], 2, 1, 3)],
    ["expand", expand(y, [2, 5, 3]), expandReference(data.slice(0, 5), [5, 1], [2, 5, 3])],
    ["cat", cat([x, x], { dim: 2 }), catReference([data, data], [[2, 3, 5], [2, 3, 5]], 2)],
    [
      "stack",
      stack([y, y], { dim: 1 }),
      catReference([data.slice(0, 5), data.slice(0, 5)], [[5, 1, 1], [5, 1, 1]], 1),
    ],
  ];
  for (const [name, out, expected] of cases) {
    assert.equal(out.dtype, "u8", name);
    assert.deepEqual(Array.from(await out.toTypedArray()), Array.from(expected), `u8 ${name}`);
    out.dispose();
  }
  x.dispose();
  y.dispose();
});

Deno.test("bad input: errors name the op, the shapes and the rule", () => {
  const x = tensor(new Float32Array(6), [2, 3]);
  const y = tensor(new Float32Array(12), [3, 4]);
  const cases: [() => unknown, RegExp][] = [
    [
      () => permute(x, [0, 0]),
      /permute: dims \[0, 0\] is not a permutation of 0\.\.1 for shape \[2, 3\]/,
    ],
    [() => permute(x, [0]), /permute: dims \[0\] is not a permutation of 0\.\.1/],
    [
      () => cat([y, x]),
      /cat: tensor 1 has shape \[2, 3\] but tensor 0 has \[3, 4\]: all dims but dim 0 must match/,
    ],
    [() => cat([]), /cat: needs at least one tensor/],
    [() => stack([x, y]), /stack: tensor 1 has shape \[3, 4\] but tensor 0 has \[2, 3\]/],
    [
      () => transpose(x, 0, 2),
      /transpose: dim 2 is out of range for shape \[2, 3\]: valid dims are -2 to 1/,
    ],
    [
      () => expand(x, [2, 4]),
      /expand: cannot expand \[2, 3\] to \[2, 4\]: dimension 1 of size 3 cannot become 4/,
    ],
    [() => expand(x, [3]), /expand: .* fewer than the tensor's 2/],
    [() => expand(x, [-1, 2, 3]), /expand: .*new leading dimension 0 is -1/],
    [() => narrow(x, 1, 2, 2), /narrow: start 2 and length 2 do not fit dim 1 of shape \[2, 3\]/],
    [() => split(x, [1, 1], { dim: 1 }), /split: sizes \[1, 1\] do not split dim 1 \(size 3\)/],
    [() => split(x, 0), /split: size 0 cannot split dim 0/],
    [() => pad(x, [1]), /pad: 1 pad amounts \[1\] for shape \[2, 3\]: give \(left, right\) pairs/],
    [() => pad(x, [0, 0, -2, -1]), /pad: pads \[0, 0, -2, -1\] make shape \[2, 3\] into \[-1, 3\]/],
    [
      () => reshape(x, [4, -1]),
      /reshape: cannot reshape \[2, 3\] \(6 elements\) to \[4, -1\]: 6 elements are not/,
    ],
    [() => reshape(x, [-1, -1]), /reshape: .*only one dimension can be -1/],
    [
      () => view(x, [5]),
      /reshape: cannot view 6 elements of shape \[2, 3\] as \[5\] \(5 elements\)/,
    ],
    [() => squeeze(x, { dim: [0, -2] }), /squeeze: dim -2 appears twice in dims \[0, -2\]/],
    [
      () => unsqueeze(x, 3),
      /unsqueeze: dim 3 is out of range for shape \[2, 3\]: valid dims are -3 to 2/,
    ],
    [
      () => flatten(x, { startDim: 1, endDim: 0 }),
      /flatten: startDim 1 \(dim 1\) comes after endDim 0/,
    ],
  ];
  for (const [fn, pattern] of cases) assert.throws(fn, pattern);
  const i = tensor([1, 2], [2], { dtype: "i32" });
  assert.throws(() => cat([x, i], { dim: 0 }), /cat: tensor 1 is i32 but tensor 0 is f32/);
  assert.throws(() => pad(i, [1, 1], { value: 0.5 }), /pad: value 0.5 does not fit a i32 tensor/);
  for (const t of [x, y, i]) t.dispose();
});

Deno.test("the Flatten layer still keeps the batch dimension", () => {
  const x = tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
  const out = new Flatten().forward(x);
  assert.deepEqual(out.shape, [2, 12]);
  const empty = tensor(new Float32Array(0), [0, 3, 4]);
  assert.deepEqual(empty.flatten().shape, [0, 12]);
  for (const t of [x, out, empty]) t.dispose();
});

Deno.test("no leak: every op, forward and backward, then dispose", async () => {
  const run = () => {
    const x = tensor(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4], { requiresGrad: true });
    const w = tensor(Array.from({ length: 3 }, (_, i) => i), [3, 1], { requiresGrad: true });
    tidy(() => {
      const a = permute(x, [2, 0, 1]); // [4, 2, 3]
      const b = transpose(a, 1, 2); // [4, 3, 2]
      const c = mul(b, expand(w, [4, 3, 2]));
      const [p, q] = split(c, [1, 3]);
      const d = cat([pad(p, [1, -1]), narrow(q, 0, 1, 2)], { dim: 0 }); // [3, 3, 2]
      const e = stack([d, d], { dim: -1 });
      const f = squeeze(unsqueeze(flatten(reshape(e, [-1, 4])), 0));
      sum(f).backward();
    });
    for (const t of [x, w, x.grad!, w.grad!]) t.dispose();
  };
  run(); // warm-up: pipelines, pooled buffers
  await sync();
  const before = memoryStats();
  run();
  run();
  await sync();
  const after = memoryStats();
  assert.equal(after.liveBuffers, before.liveBuffers, "live buffers");
  assert.equal(after.liveBytes, before.liveBytes, "live bytes");
  assert.equal(after.buffersCreated, before.buffersCreated, "no new GPUBuffer after warm-up");
});

/** One op for PyTorch and for wgtorch, on f32 inputs of `shapes`. */
interface OracleCase {
  op: string;
  shapes: number[][];
  args: Record<string, unknown>;
  gpu: (xs: Tensor[]) => Tensor;
}

const ORACLE_CASES: readonly OracleCase[] = [
  {
    op: "permute",
    shapes: [[2, 3, 5]],
    args: { dims: [2, 0, 1] },
    gpu: ([x]) => permute(x, [2, 0, 1]),
  },
  {
    op: "permute",
    shapes: [[4, 8, 12]],
    args: { dims: [2, 0, 1] },
    gpu: ([x]) => permute(x, [2, 0, 1]),
  },
  {
    op: "transpose",
    shapes: [[2, 3, 5]],
    args: { dim0: 0, dim1: -1 },
    gpu: ([x]) => transpose(x, 0, -1),
  },
  {
    op: "expand",
    shapes: [[3, 1]],
    args: { shape: [2, 3, 4] },
    gpu: ([x]) => expand(x, [2, 3, 4]),
  },
  {
    op: "expand",
    shapes: [[1, 5, 1]],
    args: { shape: [3, -1, 7] },
    gpu: ([x]) => expand(x, [3, -1, 7]),
  },
  {
    op: "narrow",
    shapes: [[2, 3, 5]],
    args: { dim: -1, start: 3, length: 2 },
    gpu: ([x]) => narrow(x, -1, 3, 2),
  },
  {
    op: "narrow",
    shapes: [[2, 3, 5]],
    args: { dim: 1, start: -2, length: 2 },
    gpu: ([x]) => narrow(x, 1, -2, 2),
  },
  {
    op: "pad",
    shapes: [[3, 4, 5]],
    args: { pads: [-1, 2, 1, -1], value: 0.5 },
    gpu: ([x]) => pad(x, [-1, 2, 1, -1], { value: 0.5 }),
  },
  {
    op: "pad",
    shapes: [[2, 3]],
    args: { pads: [1, 1, 2, 0], value: 0 },
    gpu: ([x]) => pad(x, [1, 1, 2, 0]),
  },
  {
    op: "cat",
    shapes: [[2, 3, 5], [2, 1, 5], [2, 4, 5]],
    args: { dim: 1 },
    gpu: (xs) => cat(xs, { dim: 1 }),
  },
  {
    op: "cat",
    shapes: Array.from({ length: 10 }, () => [2, 3]),
    args: { dim: -1 },
    gpu: (xs) => cat(xs, { dim: -1 }),
  },
  {
    op: "stack",
    shapes: [[2, 3], [2, 3], [2, 3]],
    args: { dim: -1 },
    gpu: (xs) => stack(xs, { dim: -1 }),
  },
  {
    op: "split",
    shapes: [[2, 5, 3]],
    args: { sizes: [1, 2, 2], dim: 1, index: 2 },
    gpu: ([x]) => split(x, [1, 2, 2], { dim: 1 })[2],
  },
  {
    op: "split",
    shapes: [[7, 2]],
    args: { sizes: 3, dim: 0, index: 2 },
    gpu: ([x]) => split(x, 3)[2],
  },
  {
    op: "flatten",
    shapes: [[2, 3, 1, 5]],
    args: { startDim: 1, endDim: -2 },
    gpu: ([x]) => flatten(x, { startDim: 1, endDim: -2 }),
  },
  { op: "flatten", shapes: [[]], args: { startDim: 0, endDim: -1 }, gpu: ([x]) => flatten(x) },
  { op: "squeeze", shapes: [[1, 3, 1, 5, 1]], args: {}, gpu: ([x]) => squeeze(x) },
  { op: "squeeze", shapes: [[1, 3, 1]], args: { dim: 1 }, gpu: ([x]) => squeeze(x, { dim: 1 }) },
  { op: "unsqueeze", shapes: [[2, 3]], args: { dim: -1 }, gpu: ([x]) => unsqueeze(x, -1) },
  {
    op: "reshape",
    shapes: [[2, 3, 5]],
    args: { shape: [5, -1] },
    gpu: ([x]) => reshape(x, [5, -1]),
  },
];

Deno.test("the shape ops agree with PyTorch: shapes, values and gradients", async () => {
  if (skipWithoutTorch("shape ops vs PyTorch")) return;
  const cases = ORACLE_CASES.map((c, n) => {
    const inputs = c.shapes.map((shape, k) => ({
      shape,
      data: Array.from(randomArray(sizeOf(shape), 100 * n + k)),
    }));
    return { ...c, inputs };
  });
  const outputs = cases.map((c) =>
    tidy(() => {
      const xs = c.inputs.map((input) => tensor(input.data, input.shape, { requiresGrad: true }));
      const out = c.gpu(xs);
      return { shape: [...out.shape], size: out.size, xs, out };
    })
  );
  const grads = outputs.map(({ size }, n) => Array.from(randomArray(size, 7000 + n)));
  const { answers } = await askTorch<{
    answers: { shape: number[]; values: number[]; grads: number[][] }[];
  }>("shape_ops.py", {
    cases: cases.map((c, n) => ({ op: c.op, inputs: c.inputs, args: c.args, grad: grads[n] })),
  });
  for (const [n, c] of cases.entries()) {
    const { xs, out, shape } = outputs[n];
    const name = `${c.op} ${JSON.stringify(c.shapes)} ${JSON.stringify(c.args)}`;
    const answer = answers[n];
    assert.deepEqual(shape, answer.shape, `${name}: shape`);
    assertClose(await out.toArray(), answer.values, {}, `${name}: values`);
    const grad = tensor(grads[n], shape);
    out.backward({ grad });
    for (const [k, x] of xs.entries()) {
      assertClose(await x.grad!.toArray(), answer.grads[k], {}, `${name}: grad ${k}`);
      x.grad!.dispose();
      x.dispose();
    }
    grad.dispose();
    out.dispose();
  }
});
