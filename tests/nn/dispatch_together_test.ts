// dispatchTogether (nn/gpu/program.ts, fuse.ts): independent kernels share one dispatch with the
// results they have apart; dependent ones keep their order; what cannot be fused runs alone.
import { dispatchTogether, type KernelSpec, runKernel } from "../../nn/gpu/program.ts";
import { declaredNames, prefixNames } from "../../nn/gpu/fuse.ts";
import { streamStats, writeBuffer } from "../../nn/gpu/stream.ts";
import { u32 } from "../../nn/gpu/kernel.ts";
import { Tensor, tensor } from "../../nn/tensor.ts";
import { assert } from "../assert.ts";
import { gpuReady, randomArray, withKernelPolicy } from "../testing.ts";

await gpuReady();

/** out = a * factor + b, with a helper function and a constant in the prelude (names to keep apart). */
const SCALE_ADD: KernelSpec<{ size: number; factor: number; workgroupSize: number }> = {
  name: "test_scale_add",
  key: ({ size, factor, workgroupSize }) => `${size}_${factor}_${workgroupSize}`,
  bindings: () => [
    { name: "a", role: "input" },
    { name: "b", role: "read" },
    { name: "out", role: "write" },
  ],
  plan: ({ size, workgroupSize }) => ({ workgroupSize, groups: Math.ceil(size / workgroupSize) }),
  prelude: ({ factor }) => /* wgsl */ `
const FACTOR: f32 = ${factor.toFixed(1)};
fn scaled(x: f32) -> f32 { return x * FACTOR; }`,
  body: ({ size, workgroupSize }) => /* wgsl */ `
  let i = group * ${u32(workgroupSize)} + lid;
  if (i >= ${u32(size)}) { return; }
  out[i] = scaled(aAt(i)) + b[i];`,
};

/**
 * Column sums of x [rows, cols] over a 2-D grid of workgroups (wid.x: column block, wid.y: a
 * row block of 4) with layers (wid.z: which half of the columns): out[r, c] = Σ of 4 rows.
 */
const BLOCK_SUMS: KernelSpec<{ rows: number; cols: number }> = {
  name: "test_block_sums",
  key: ({ rows, cols }) => `${rows}x${cols}`,
  bindings: () => [{ name: "x", role: "input" }, { name: "out", role: "write" }],
  plan: ({ rows, cols }) => ({
    workgroupSize: 8,
    groups: [Math.ceil(cols / 2 / 8), rows / 4] as const,
    layers: 2,
  }),
  body: ({ cols }) => /* wgsl */ `
  let c = wid.z * ${u32(cols / 2)} + wid.x * 8u + lid;
  if (c >= (wid.z + 1u) * ${u32(cols / 2)}) { return; }
  var total = 0.0;
  for (var r = 0u; r < 4u; r++) { total += xAt((wid.y * 4u + r) * ${u32(cols)} + c); }
  out[wid.y * ${u32(cols)} + c] = total;`,
};

function scaleAddReference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  factor: number,
): number[] {
  return Array.from(
    a,
    (x, i) => Math.fround(Math.fround(Math.fround(x) * factor) + Math.fround(b[i])),
  );
}

function blockSumsReference(x: ArrayLike<number>, rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows / 4; r++) {
    for (let c = 0; c < cols; c++) {
      let total = 0;
      for (let k = 0; k < 4; k++) {
        total = Math.fround(total + Math.fround(x[(r * 4 + k) * cols + c]));
      }
      out.push(total);
    }
  }
  return out;
}

/** Dispatches that `fn` encodes. */
function dispatchesOf(fn: () => void): number {
  const before = streamStats().dispatches;
  fn();
  return streamStats().dispatches - before;
}

for (const policy of ["software", "hardware"] as const) {
  Deno.test(`independent kernels share one dispatch, with the results they have apart (${policy})`, async () => {
    await withKernelPolicy(policy, async () => {
      const size = 1001, rows = 12, cols = 80;
      const a = randomArray(size, 1), b = randomArray(size, 2), x = randomArray(rows * cols, 3);
      const [ta, tb, tx] = [tensor(a, [size]), tensor(b, [size]), tensor(x, [rows, cols])];
      const out1 = Tensor.empty([size]), out2 = Tensor.empty([size]);
      const sums = Tensor.empty([rows / 4, cols]);
      const dispatches = dispatchesOf(() =>
        dispatchTogether(() => {
          runKernel(SCALE_ADD, { size, factor: 2, workgroupSize: 8 }, { a: ta, b: tb, out: out1 });
          runKernel(BLOCK_SUMS, { rows, cols }, { x: tx, out: sums });
          runKernel(SCALE_ADD, { size, factor: 3, workgroupSize: 8 }, { a: ta, b: tb, out: out2 });
        })
      );
      assert.equal(dispatches, 1);
      assert.deepEqual(Array.from(await out1.toArray()), scaleAddReference(a, b, 2));
      assert.deepEqual(Array.from(await out2.toArray()), scaleAddReference(a, b, 3));
      assert.deepEqual(Array.from(await sums.toArray()), blockSumsReference(x, rows, cols));
      for (const t of [ta, tb, tx, out1, out2, sums]) t.dispose();
    });
  });
}

Deno.test("a kernel reading what a held one writes runs after it; other sizes run alone", async () => {
  const size = 300;
  const a = randomArray(size, 4), b = randomArray(size, 5);
  const [ta, tb] = [tensor(a, [size]), tensor(b, [size])];
  const first = Tensor.empty([size]), second = Tensor.empty([size]), third = Tensor.empty([size]);
  const dispatches = dispatchesOf(() =>
    dispatchTogether(() => {
      runKernel(SCALE_ADD, { size, factor: 2, workgroupSize: 8 }, { a: ta, b: tb, out: first });
      // Reads `first` (as a texture mirror under the software policy: copied after it is written).
      runKernel(SCALE_ADD, { size, factor: 3, workgroupSize: 8 }, {
        a: first,
        b: tb,
        out: second,
      });
      runKernel(SCALE_ADD, { size, factor: 4, workgroupSize: 16 }, { a: ta, b: tb, out: third });
    })
  );
  assert.equal(dispatches, 3);
  const once = scaleAddReference(a, b, 2);
  assert.deepEqual(Array.from(await second.toArray()), scaleAddReference(once, b, 3));
  assert.deepEqual(Array.from(await third.toArray()), scaleAddReference(a, b, 4));
  // Writing what a held kernel reads waits too: `first` is overwritten after being read.
  const fourth = Tensor.empty([size]);
  dispatchTogether(() => {
    runKernel(SCALE_ADD, { size, factor: 2, workgroupSize: 8 }, { a: first, b: tb, out: fourth });
    runKernel(SCALE_ADD, { size, factor: 5, workgroupSize: 8 }, { a: ta, b: tb, out: first });
  });
  assert.deepEqual(Array.from(await fourth.toArray()), scaleAddReference(once, b, 2));
  assert.deepEqual(Array.from(await first.toArray()), scaleAddReference(a, b, 5));
  for (const t of [ta, tb, first, second, third, fourth]) t.dispose();
});

Deno.test("held kernels are encoded before an upload, a readback or the scope's end", async () => {
  const size = 40;
  const a = randomArray(size, 6), b = randomArray(size, 7);
  const [ta, tb] = [tensor(a, [size]), tensor(b, [size])];
  const out = Tensor.empty([size]);
  const before = streamStats().readbacks;
  const inside = dispatchTogether(() => {
    runKernel(SCALE_ADD, { size, factor: 2, workgroupSize: 8 }, { a: ta, b: tb, out });
    // The upload into b must come after the kernel that reads the old b.
    writeBuffer(tb.buffer, new Float32Array(size).fill(1));
    const read = out.toArray();
    assert.equal(streamStats().readbacks, before + 1);
    return read;
  });
  assert.deepEqual(Array.from(await inside), scaleAddReference(a, b, 2));
  assert.deepEqual(Array.from(await tb.toArray()), new Array(size).fill(1));
  for (const t of [ta, tb, out]) t.dispose();
});

Deno.test("fusion keeps each kernel's names apart, and member names after a dot", () => {
  const prelude = "const FACTOR: f32 = 2.0;\nfn scaled(x: f32) -> f32 { return x * FACTOR; }\n" +
    "var<workgroup> scratch: array<f32, 8>;";
  assert.deepEqual(declaredNames(prelude).sort(), ["FACTOR", "scaled", "scratch"]);
  assert.equal(
    prefixNames("let v = scaled(x[wid.x]) + scratch[0] + w.x;", ["x", "scaled", "scratch"], "p1_"),
    "let v = p1_scaled(p1_x[wid.x]) + p1_scratch[0] + w.x;",
  );
});

Deno.test("kernels past the policy's fusedKernelSource run alone", async () => {
  const size = 64;
  const a = randomArray(size, 8), b = randomArray(size, 9);
  const [ta, tb] = [tensor(a, [size]), tensor(b, [size])];
  const outs = [Tensor.empty([size]), Tensor.empty([size])];
  // The same kernel with a prelude of comments past the limit (70,000 characters).
  const LONG: typeof SCALE_ADD = {
    ...SCALE_ADD,
    name: "test_scale_add_long",
    prelude: (options, context) =>
      "// padding\n".repeat(7000) + SCALE_ADD.prelude!(options, context),
  };
  const run = (spec: typeof SCALE_ADD) =>
    dispatchesOf(() =>
      dispatchTogether(() => {
        outs.forEach((out, k) => {
          runKernel(spec, { size, factor: k + 2, workgroupSize: 8 }, { a: ta, b: tb, out });
        });
      })
    );
  assert.equal(run(SCALE_ADD), 1);
  assert.equal(run(LONG), 2);
  for (const [k, out] of outs.entries()) {
    assert.deepEqual(Array.from(await out.toArray()), scaleAddReference(a, b, k + 2));
  }
  for (const t of [ta, tb, ...outs]) t.dispose();
});

Deno.test("a kernel with params reading what a held kernel writes sees its values", async () => {
  // The params kernel is not held: binding it copies its input into a texture mirror (software
  // policy), which must come after the held kernel that writes that input.
  const SHIFT: KernelSpec<{ size: number }> = {
    name: "test_shift",
    key: ({ size }) => String(size),
    bindings: () => [{ name: "a", role: "input" }, { name: "out", role: "write" }],
    plan: ({ size }) => ({ workgroupSize: 8, groups: Math.ceil(size / 8) }),
    params: "shift: f32",
    body: ({ size }) => /* wgsl */ `
  let i = group * 8u + lid;
  if (i < ${u32(size)}) { out[i] = aAt(i) + params.shift; }`,
  };
  await withKernelPolicy("software", async () => {
    const size = 100;
    const a = randomArray(size, 10), b = randomArray(size, 11);
    const [ta, tb] = [tensor(a, [size]), tensor(b, [size])];
    const first = Tensor.empty([size]), shifted = Tensor.empty([size]);
    // Read once before, so that its mirror exists and would be reused if thought current.
    runKernel(SHIFT, { size }, { a: first, out: shifted }, { params: new Float32Array([0]) });
    dispatchTogether(() => {
      runKernel(SCALE_ADD, { size, factor: 2, workgroupSize: 8 }, { a: ta, b: tb, out: first });
      runKernel(SHIFT, { size }, { a: first, out: shifted }, { params: new Float32Array([1]) });
    });
    const expected = scaleAddReference(a, b, 2).map((x) => Math.fround(x + 1));
    assert.deepEqual(Array.from(await shifted.toArray()), expected);
    for (const t of [ta, tb, first, shifted]) t.dispose();
  });
});
