// Custom ops (nn/custom_op.ts): WGSL forward and backward kernels, or a backward composed of
// existing ops, against float64 references; their outputs read by later ops through texture
// mirrors; markWritten for raw WebGPU writes; the compile cache; bad input.
import assert from "node:assert/strict";
import { customOp, markWritten } from "../../nn/custom_op.ts";
import { mul, scale } from "../../nn/ops/elementwise.ts";
import { neg } from "../../nn/ops/unary.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { compiledKernelCount } from "../../nn/gpu/program.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { kernelPolicy } from "../../nn/gpu/policy.ts";
import { gpu } from "../../nn/gpu/device.ts";
import { flush, sync } from "../../nn/gpu/stream.ts";
import { noGrad } from "../../nn/graph.ts";
import { tidy } from "../../nn/scope.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { testOp } from "./op_helper.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import {
  rowSumSquaresBackwardReference,
  rowSumSquaresReference,
  swishBackwardReference,
  swishReference,
} from "./reference/custom_op.ts";

await gpuReady();

const BETA = 1.5;
const SIGMOID = "fn sig(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }";

/** Swish, one element per invocation, with its gradient as a WGSL kernel. */
const swish = customOp({
  name: "swish",
  inputs: ["x"],
  constants: { BETA },
  helpers: SIGMOID,
  forward: "xAt(i) * sig(BETA * xAt(i))",
  backward: {
    x: /* wgsl */ `
    let x = xAt(i);
    let s = sig(BETA * x);
    return gradAt(i) * (s + BETA * x * s * (1.0 - s));`,
  },
});

/** Swish, four elements per invocation; the gradient reads the op's output too. */
const swish4 = customOp({
  name: "swish4",
  inputs: ["x"],
  vectorized: true,
  constants: { BETA },
  forward: ({ constants }) => `xVec4(j) / (1.0 + exp(-${constants.BETA.toFixed(1)} * xVec4(j)))`,
  backward: {
    // s = y / x would divide by zero: recompute s, and use y for the x·s term.
    x: /* wgsl */ `
    let s = 1.0 / (1.0 + exp(-BETA * xVec4(j)));
    return gradVec4(j) * (s + BETA * outputVec4(j) * (1.0 - s));`,
  },
});

/** The mean of squares of each row of x [rows, cols]: a reduction, with a composed backward. */
const rowMeanSquares = customOp({
  name: "row_mean_squares",
  inputs: ["x"],
  outputShape: ([shape]) => [shape[0]],
  constants: ([shape]) => ({ SCALE: 1 / shape[1] }),
  forward: /* wgsl */ `
    var total = 0.0;
    for (var c = 0u; c < X_DIM1; c++) { let v = xAt(i * X_DIM1 + c); total += v * v; }
    return SCALE * total;`,
  backward: (grad, [x]) => [mul(scale(x, 2 / x.shape[1]), grad.reshape([grad.size, 1]))],
});

// Awkward shapes: sizes not multiples of 4, size-1 dimensions, a 0-d tensor.
const ELEMENTWISE_SHAPES: readonly (readonly number[])[] = [[7], [3, 5], [1], [], [2, 1, 9]];

Deno.test("customOp swish (WGSL backward) matches its float64 reference, forward and gradient", async () => {
  for (const shape of ELEMENTWISE_SHAPES) {
    for (const [name, op] of [["swish", swish], ["swish4 (vectorized)", swish4]] as const) {
      await testOp({
        name: `${name} ${JSON.stringify(shape)}`,
        inputs: [{ shape, low: -4, high: 4 }],
        gpu: ([x]) => op(x),
        reference: ([x]) => swishReference(x, BETA),
        backward: ([x], grad) => [swishBackwardReference(grad, x, BETA)],
        outputShape: shape,
      });
    }
  }
});

Deno.test("customOp row mean of squares (composed backward) matches its reference", async () => {
  for (const [rows, cols] of [[1, 1], [3, 5], [4, 7], [1, 9]]) {
    await testOp({
      name: `row_mean_squares [${rows}, ${cols}]`,
      inputs: [[rows, cols]],
      gpu: ([x]) => rowMeanSquares(x),
      reference: ([x]) => rowSumSquaresReference(x, rows, cols, 1 / cols),
      backward: ([x], grad) => [rowSumSquaresBackwardReference(grad, x, cols, 1 / cols)],
      outputShape: [rows],
    });
  }
});

Deno.test("a custom op's output is read correctly by later ops, also in a buffer read before", async () => {
  const n = 1030;
  const values = randomArray(n, 5, -3, 3);
  const expected = swishReference(values, BETA);
  const x = tensor(Float32Array.from(values), [n]);
  try {
    // A tensor read by an op (under the software policy: through its texture mirror), then
    // freed: the pool hands its buffer to the custom op's output, whose write must refresh the
    // mirror before the next op reads it.
    const old = tensor(new Float32Array(n).fill(7), [n]);
    const read = neg(old);
    assertClose(await read.toArray(), new Float32Array(n).fill(-7));
    read.dispose();
    const recycled = old.buffer;
    old.dispose();
    const y = swish(x);
    assert.equal(
      y.buffer,
      recycled,
      "the output reuses the freed buffer (else this tests nothing)",
    );
    const [doubled, total] = [mul(y, 2), sum(y)];
    assertClose(await doubled.toArray(), expected.map((v) => 2 * v), {}, "mul(swish(x), 2)");
    assertClose(
      [await total.item()],
      [expected.reduce((a, b) => a + b, 0)],
      { atol: 1e-3 },
      "sum(swish(x))",
    );
    // And a custom op reading a custom op's output.
    const twice = swish4(y);
    assertClose(await twice.toArray(), swishReference(expected, BETA), {}, "swish4(swish(x))");
    for (const t of [y, doubled, total, twice]) t.dispose();
  } finally {
    x.dispose();
  }
});

Deno.test("markWritten: a raw queue.writeBuffer is seen by later ops only after markWritten", async () => {
  const x = tensor([1, 2, 3, 4, 5], [5]);
  try {
    const first = neg(x);
    assert.deepEqual(Array.from(await first.toArray()), [-1, -2, -3, -4, -5]);
    first.dispose();
    flush();
    gpu().device.queue.writeBuffer(x.buffer, 0, new Float32Array([10, 20, 30, 40, 50]));
    const unmarked = neg(x);
    const stale = Array.from(await unmarked.toArray());
    unmarked.dispose();
    if (kernelPolicy().name === "software") {
      // Inputs are read through texture mirrors, copied again only when wgtorch saw a write.
      assert.deepEqual(stale, [-1, -2, -3, -4, -5], "without markWritten the mirror is stale");
    } else {
      assert.deepEqual(stale, [-10, -20, -30, -40, -50], "storage inputs read the buffer itself");
    }
    markWritten(x);
    const marked = neg(x);
    assert.deepEqual(Array.from(await marked.toArray()), [-10, -20, -30, -40, -50]);
    marked.dispose();
  } finally {
    x.dispose();
  }
});

Deno.test("markWritten: a raw compute pass writing a tensor, then wgtorch reading it", async () => {
  const x = tensor([1, 2, 3], [3]);
  try {
    neg(x).dispose(); // a mirror of x now exists (software policy)
    flush();
    const { device } = gpu();
    const module = device.createShaderModule({
      code: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@compute @workgroup_size(1) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  data[id.x] = data[id.x] * 100.0;
}`,
    });
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: x.buffer } }],
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(3);
    pass.end();
    device.queue.submit([encoder.finish()]);
    markWritten(x);
    const y = neg(x);
    assert.deepEqual(Array.from(await y.toArray()), [-100, -200, -300]);
    y.dispose();
  } finally {
    x.dispose();
  }
});

Deno.test("markWritten refuses a tensor that unsubmitted wgtorch commands use", () => {
  const x = tensor([1, 2, 3], [3]);
  const y = neg(x);
  try {
    assert.throws(
      () => markWritten(x),
      /markWritten: wgtorch commands not yet submitted.*flush\(\)/,
    );
    flush();
    markWritten(x);
    assert.throws(() => markWritten("x" as unknown as Tensor), /markWritten: takes tensors/);
  } finally {
    y.dispose();
    x.dispose();
  }
});

Deno.test("customOp leaks no GPU buffer: forward and backward, WGSL and composed", async () => {
  const x = tensor(Float32Array.from(randomArray(15, 8)), [3, 5], { requiresGrad: true });
  // No tidy around backward: what the op's own backward creates must be freed by the op.
  const step = async () => {
    const a = swish(x), b = swish4(x), c = rowMeanSquares(b), d = c.reshape([3, 1]);
    const e = mul(a, d), loss = sum(e);
    loss.backward();
    await loss.item();
    for (const t of [a, b, c, d, e, loss]) t.dispose();
    x.grad?.dispose();
    x.grad = null;
  };
  try {
    await step(); // warm-up: pipelines, pooled buffers
    const before = memoryStats();
    for (let k = 0; k < 3; k++) await step();
    const after = memoryStats();
    assert.equal(after.liveBuffers, before.liveBuffers, "live buffers");
    assert.equal(after.buffersCreated, before.buffersCreated, "buffers created");
  } finally {
    x.dispose();
  }
});

Deno.test("customOp compiles once per shape: the same op twice is one kernel", async () => {
  const addOne = customOp({ name: "cache_probe", inputs: ["x"], forward: "xAt(i) + 1.0" });
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]), b = tensor([1, 2, 3, 4, 5, 6, 7], [7]);
  try {
    const start = compiledKernelCount();
    const first = addOne(a);
    assert.equal(compiledKernelCount(), start + 1, "the first call compiles");
    const second = addOne(a);
    assert.equal(compiledKernelCount(), start + 1, "the second call compiles nothing");
    const other = addOne(b);
    assert.equal(compiledKernelCount(), start + 2, "another shape compiles its own");
    assert.deepEqual(Array.from(await second.toArray()), [2, 3, 4, 5, 6, 7]);
    assert.deepEqual(Array.from(await other.toArray()), [2, 3, 4, 5, 6, 7, 8]);
    for (const t of [first, second, other]) t.dispose();
  } finally {
    a.dispose();
    b.dispose();
  }
});

Deno.test("customOp: two inputs of different shapes, backward kernels only for the named input", async () => {
  // out[r, c] = x[r, c] * w[c]: a row scaling, differentiable in x only.
  const scaleColumns = customOp({
    name: "scale_columns",
    inputs: ["x", "weight"],
    forward: "xAt(i) * weightAt(i % X_DIM1)",
    backward: { x: "gradAt(i) * weightAt(i % X_DIM1)" },
  });
  await testOp({
    name: "scale_columns [3, 5] x [5]",
    inputs: [[3, 5], { shape: [5], grad: false }],
    gpu: ([x, w]) => scaleColumns(x, w),
    reference: ([x, w]) => x.map((v, i) => v * w[i % 5]),
    backward: ([, w], grad) => [grad.map((g, i) => g * w[i % 5]), null],
  });
  const x = tensor([1, 2], [1, 2]), w = tensor([3, 4], [2], { requiresGrad: true });
  try {
    const y = scaleColumns(x, w);
    assert.ok(y.requiresGrad);
    const loss = sum(y);
    loss.backward();
    assert.equal(w.grad, null, "an input the backward does not name gets no gradient");
    for (const t of [y, loss]) t.dispose();
  } finally {
    x.dispose();
    w.dispose();
  }
});

Deno.test("customOp rejects bad definitions and bad inputs, naming the op", () => {
  const ok = { name: "probe", inputs: ["x"], forward: "xAt(i)" };
  assert.throws(() => customOp({ ...ok, name: "my op" }), /customOp: name must be letters/);
  assert.throws(() => customOp({ ...ok, inputs: [] }), /customOp probe: inputs must name/);
  assert.throws(() => customOp({ ...ok, inputs: ["X"] }), /input name "X" must be a lowercase/);
  assert.throws(() => customOp({ ...ok, inputs: ["grad"] }), /input name "grad"/);
  assert.throws(() => customOp({ ...ok, inputs: ["x", "x"] }), /input x is named twice/);
  assert.throws(
    () => customOp({ ...ok, backward: { y: "gradAt(i)" } }),
    /backward names "y", which is not an input \(inputs: x\)/,
  );
  assert.throws(() => customOp({ ...ok, workgroupSize: 1000 }), /workgroupSize must be an integer/);

  const probe = customOp(ok);
  const x = tensor([1, 2, 3], [3]);
  const labels = tensor([1, 2], [2], { dtype: "i32" });
  const leaf = tensor([1, 2], [2], { requiresGrad: true });
  try {
    assert.throws(() => probe(), /probe: takes 1 tensor \(x\), got 0/);
    assert.throws(() => probe(x, x), /probe: takes 1 tensor \(x\), got 2/);
    assert.throws(
      () => probe(labels),
      /probe: input x must be an f32 tensor, got i32 of shape \[2\]/,
    );
    assert.throws(() => probe(3 as unknown as Tensor), /probe: input x must be a Tensor/);
    assert.throws(
      () => probe(leaf),
      /probe: input x requires a gradient, but the op has no backward/,
    );
    const quiet = noGrad(() => probe(leaf));
    assert.equal(quiet.requiresGrad, false, "under noGrad it runs");
    quiet.dispose();
    const disposed = tensor([1], [1]);
    disposed.dispose();
    assert.throws(() => probe(disposed), /used after dispose/);
    const badShape = customOp({ ...ok, name: "bad_shape", outputShape: () => [2.5] });
    assert.throws(() => badShape(x), /bad_shape: outputShape\(...\) must be an array of integers/);
    const badConstant = customOp({ ...ok, name: "bad_constant", constants: { beta: 1 } });
    assert.throws(() => badConstant(x), /bad_constant: constant name "beta" must be upper case/);
    const shapeConstant = customOp({ ...ok, name: "shape_constant", constants: { X_SIZE: 1 } });
    assert.throws(() => shapeConstant(x), /constant name "X_SIZE"/);
    const nanConstant = customOp({ ...ok, name: "nan_constant", constants: { B: NaN } });
    assert.throws(() => nanConstant(x), /nan_constant: constant B must be a number \(not NaN\)/);
  } finally {
    for (const t of [x, labels, leaf]) t.dispose();
  }
});

Deno.test("customOp: a composed backward that returns the wrong gradients is refused", () => {
  const wrongCount = customOp({
    name: "wrong_count",
    inputs: ["x"],
    forward: "xAt(i)",
    backward: (grad) => [grad, grad],
  });
  const wrongShape = customOp({
    name: "wrong_shape",
    inputs: ["x"],
    forward: "xAt(i)",
    backward: (grad) => [grad.reshape([1, grad.size])],
  });
  const x = tensor([1, 2, 3], [3], { requiresGrad: true });
  try {
    assert.throws(
      () => tidy(() => sum(wrongCount(x)).backward()),
      /wrong_count backward: must return one gradient \(or null\) per input \(x\), got 2/,
    );
    assert.throws(
      () => tidy(() => sum(wrongShape(x)).backward()),
      /wrong_shape backward: the gradient of x has shape \[1, 3\], the input has \[3\]/,
    );
  } finally {
    x.dispose();
  }
});

Deno.test("customOp: a WGSL compile error names the op at the next sync", async () => {
  const broken = customOp({ name: "broken", inputs: ["x"], forward: "xAt(i) + notDefined" });
  const x = tensor([1, 2], [2]);
  const originalError = console.error;
  console.error = () => {}; // the kernel layer also prints the error
  try {
    const y = broken(x);
    await assert.rejects(() => sync(), /custom_broken.*failed to compile/s);
    y.dispose();
    // wgpu reports the error once. Dawn also refuses the command buffer that used the invalid
    // pipeline, with two errors (the dispatch, naming the kernel, then the submit) whose events
    // may arrive before or after the first sync took its error: the next sync then reports
    // either, and nothing else.
    await sync().catch((error) =>
      assert.match(String(error), /custom_broken|Invalid CommandBuffer.*previous error/s)
    );
  } finally {
    console.error = originalError;
    x.dispose();
  }
});

Deno.test("customOp: ±Infinity constants reach the kernel as infinities (no constant WGSL can spell)", async () => {
  // A clamp whose bounds are constants, one of them infinite, used in a helper and in the body.
  const clampTo = (name: string, LOW: number, HIGH: number) =>
    customOp({
      name,
      inputs: ["x"],
      constants: { LOW, HIGH },
      helpers: "fn upper() -> f32 { return HIGH; }",
      forward: "min(max(xAt(i), LOW), upper())",
    });
  const values = [-Infinity, -3e38, -2, 0, 1.5, 3e38, Infinity].map(Math.fround);
  const x = tensor(values, [values.length]);
  const cases: [string, number, number][] = [
    ["clamp_below", -1, Infinity],
    ["clamp_above", -Infinity, 1],
    ["clamp_none", -Infinity, Infinity],
  ];
  try {
    for (const [name, low, high] of cases) {
      const y = clampTo(name, low, high)(x);
      const got = Array.from(await y.toArray());
      y.dispose();
      assert.deepEqual(got, values.map((v) => Math.min(Math.max(v, low), high)), name);
    }
  } finally {
    x.dispose();
  }
});
