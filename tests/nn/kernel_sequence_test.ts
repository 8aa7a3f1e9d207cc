// Vertical fusion (nn/gpu/program.ts `chain`, fuse.ts `sequenceSource`): single-workgroup calls of
// `chain` kernels that follow one another run in one workgroup, one after the other, with the
// results they have apart; what cannot share their workgroup runs alone, in order.
import { dispatchTogether, type KernelSpec, runKernel } from "../../nn/gpu/program.ts";
import { type KernelPart, sequenceSource } from "../../nn/gpu/fuse.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { u32 } from "../../nn/gpu/kernel.ts";
import { linearLogSoftmax } from "../../nn/ops/linear_log_softmax.ts";
import { nllLoss } from "../../nn/ops/softmax.ts";
import { noGrad } from "../../nn/graph.ts";
import { init } from "../../nn/gpu/device.ts";
import { shutdown } from "../../nn/shutdown.ts";
import { Tensor, tensor } from "../../nn/tensor.ts";
import { assert } from "../assert.ts";
import { gpuReady, randomArray, withKernelPolicy } from "../testing.ts";

await gpuReady();

interface AxpyOptions {
  size: number;
  factor: number;
  workgroupSize: number;
}

/**
 * out[i] = a[i] * factor + b[size - 1 - i] in one workgroup (each lane reads what other lanes of
 * the part before wrote), with a constant in the prelude (names to keep apart).
 */
const CHAIN_AXPY: KernelSpec<AxpyOptions> = {
  name: "test_chain_axpy",
  key: ({ size, factor, workgroupSize }) => `${size}_${factor}_${workgroupSize}`,
  bindings: () => [
    { name: "a", role: "input" },
    { name: "b", role: "read" },
    { name: "out", role: "write" },
  ],
  plan: ({ workgroupSize }) => ({ workgroupSize, groups: 1 }),
  chain: () => true,
  prelude: ({ factor }) => `const FACTOR: f32 = ${factor.toFixed(1)};`,
  body: ({ size, workgroupSize }) => /* wgsl */ `
  for (var i = lid; i < ${u32(size)}; i += ${u32(workgroupSize)}) {
    out[i] = aAt(i) * FACTOR + b[${u32(size - 1)} - i];
  }`,
};

/** The same kernel, not a `chain` kernel. */
const PLAIN_AXPY: KernelSpec<AxpyOptions> = {
  ...CHAIN_AXPY,
  name: "test_plain_axpy",
  chain: undefined,
};

function axpy(a: ArrayLike<number>, b: ArrayLike<number>, factor: number): number[] {
  return Array.from(
    a,
    (x, i) => Math.fround(Math.fround(Math.fround(x) * factor) + Math.fround(b[a.length - 1 - i])),
  );
}

/** x and y as tensors, then `outputs` empty tensors of their size. */
function tensorsOf(x: ArrayLike<number>, y: ArrayLike<number>, outputs: number): Tensor[] {
  const size = x.length;
  return [
    tensor(x, [size]),
    tensor(y, [size]),
    ...Array.from({ length: outputs }, () => Tensor.empty([size])),
  ];
}

/** Dispatches that `fn` encodes (held work included: `streamStats` encodes it first). */
function dispatchesOf(fn: () => void): number {
  const before = streamStats().dispatches;
  fn();
  return streamStats().dispatches - before;
}

for (const policy of ["software", "hardware"] as const) {
  Deno.test(`a chain of calls shares one workgroup: reads after writes and writes after reads keep their order (${policy})`, async () => {
    await withKernelPolicy(policy, async () => {
      const size = 203;
      const x = randomArray(size, 1), y = randomArray(size, 2);
      const [tx, ty, t1, t2] = tensorsOf(x, y, 2);
      const dispatches = dispatchesOf(() => {
        runKernel(CHAIN_AXPY, { size, factor: 2, workgroupSize: 64 }, { a: tx, b: ty, out: t1 });
        // Reads t1, which the held call writes, and overwrites y, which it reads.
        runKernel(CHAIN_AXPY, { size, factor: 3, workgroupSize: 64 }, { a: tx, b: t1, out: ty });
        // Writes t1 again, after the call that read it.
        runKernel(CHAIN_AXPY, { size, factor: 4, workgroupSize: 64 }, { a: tx, b: ty, out: t2 });
        runKernel(CHAIN_AXPY, { size, factor: 5, workgroupSize: 64 }, { a: tx, b: t2, out: t1 });
      });
      assert.equal(dispatches, 1);
      const first = axpy(x, y, 2), second = axpy(x, first, 3), third = axpy(x, second, 4);
      assert.deepEqual(Array.from(await ty.toArray()), second);
      assert.deepEqual(Array.from(await t2.toArray()), third);
      assert.deepEqual(Array.from(await t1.toArray()), axpy(x, third, 5));
      for (const t of [tx, ty, t1, t2]) t.dispose();
    });
  });
}

Deno.test("a readback, a plain kernel or dispatchTogether encodes the held chain first", async () => {
  const size = 77;
  const x = randomArray(size, 3), y = randomArray(size, 4);
  const [tx, ty, t1, t2, t3] = tensorsOf(x, y, 3);
  runKernel(CHAIN_AXPY, { size, factor: 2, workgroupSize: 8 }, { a: tx, b: ty, out: t1 });
  const first = axpy(x, y, 2);
  assert.deepEqual(Array.from(await t1.toArray()), first);
  runKernel(CHAIN_AXPY, { size, factor: 3, workgroupSize: 8 }, { a: tx, b: t1, out: t2 });
  // Not a chain kernel: it runs after the held call, whose output it reads.
  runKernel(PLAIN_AXPY, { size, factor: 4, workgroupSize: 8 }, { a: tx, b: t2, out: t3 });
  const second = axpy(x, first, 3);
  assert.deepEqual(Array.from(await t3.toArray()), axpy(x, second, 4));
  runKernel(CHAIN_AXPY, { size, factor: 5, workgroupSize: 8 }, { a: tx, b: t3, out: t1 });
  dispatchTogether(() => {
    runKernel(PLAIN_AXPY, { size, factor: 6, workgroupSize: 8 }, { a: tx, b: t1, out: t2 });
  });
  assert.deepEqual(Array.from(await t2.toArray()), axpy(x, axpy(x, axpy(x, second, 4), 5), 6));
  for (const t of [tx, ty, t1, t2, t3]) t.dispose();
});

for (const policy of ["software", "hardware"] as const) {
  Deno.test(`calls that cannot share the workgroup run alone, in order (${policy})`, async () => {
    await withKernelPolicy(policy, async () => {
      const size = 150;
      const x = randomArray(size, 5), y = randomArray(size, 6);
      const [tx, ty, t1, t2, t3] = tensorsOf(x, y, 3);
      const dispatches = dispatchesOf(() => {
        runKernel(CHAIN_AXPY, { size, factor: 2, workgroupSize: 8 }, { a: tx, b: ty, out: t1 });
        // Another workgroup size.
        runKernel(CHAIN_AXPY, { size, factor: 3, workgroupSize: 16 }, { a: tx, b: t1, out: t2 });
        // Reads t2, which the held call writes, as an input: a texture mirror (software) or a
        // storage array of vec4s (hardware), neither of which can alias its array<f32>.
        runKernel(CHAIN_AXPY, { size, factor: 4, workgroupSize: 16 }, { a: t2, b: ty, out: t3 });
      });
      assert.equal(dispatches, 3);
      const first = axpy(x, y, 2), second = axpy(x, first, 3);
      assert.deepEqual(Array.from(await t2.toArray()), second);
      assert.deepEqual(Array.from(await t3.toArray()), axpy(second, y, 4));
      for (const t of [tx, ty, t1, t2, t3]) t.dispose();
    });
  });
}

Deno.test("a classifier's head and its loss run as one dispatch, with the values of the ops apart", async () => {
  const [rows, features, classes] = [32, 20, 10];
  const x = tensor(randomArray(rows * features, 7), [rows, features]);
  const weight = tensor(randomArray(classes * features, 8), [classes, features]);
  const bias = tensor(randomArray(classes, 9), [classes]);
  const labels = tensor(Int32Array.from({ length: rows }, (_, i) => (i * 7) % classes), [rows], {
    dtype: "i32",
  });
  const [fused, apart] = [true, false].map((together) =>
    noGrad(() => {
      let loss: Tensor | undefined;
      const dispatches = dispatchesOf(() => {
        const logProbs = linearLogSoftmax(x, weight, bias);
        if (!together) streamStats(); // encodes the held head alone
        loss = nllLoss(logProbs, labels);
        logProbs.dispose();
      });
      return { loss: loss!, dispatches };
    })
  );
  assert.equal(fused.dispatches, 1);
  assert.equal(apart.dispatches, 2);
  assert.equal((await fused.loss.toArray())[0], (await apart.loss.toArray())[0]);
  for (const t of [x, weight, bias, labels, fused.loss, apart.loss]) t.dispose();
});

Deno.test("sequenceSource: an aliased binding is declared once, read-write, and read by the later part's name", () => {
  const part = (name: string, declarations: string, body: string): KernelPart => ({
    name,
    bindings: ["a", "out"],
    declarations,
    prelude: "const K: u32 = 2u;",
    body,
    workgroupSize: 8,
    workgroups: [1, 1, 1],
  });
  const first = part(
    "first",
    "@group(0) @binding(0) var<storage, read> a: array<f32>;\n" +
      "@group(0) @binding(1) var<storage, read_write> out: array<f32>;",
    "  out[lid] = a[lid] * f32(K);",
  );
  const second = part(
    "second",
    "@group(0) @binding(0) var<storage, read> a: array<f32>;\n" +
      "@group(0) @binding(1) var<storage, read_write> out: array<f32>;",
    "  out[lid] = a[lid] + f32(K);",
  );
  // The second part reads the first's output and writes the first's input.
  const source = sequenceSource([first, second], [[[0, 0], [0, 1]], [[0, 1], [0, 0]]], [
    [true, false],
    [false, false],
  ]);
  assert.match(source, /@binding\(0\) var<storage, read_write> p0_a: array<f32>;/);
  assert.match(source, /@binding\(1\) var<storage, read_write> p0_out: array<f32>;/);
  assert.equal(source.match(/@binding/g)?.length, 2);
  assert.match(source, /p0_a\[lid\] = p0_out\[lid\] \+ f32\(p1_K\);/);
  assert.match(
    source,
    /p0_main\(wid, lid, 0u\);\s*storageBarrier\(\);\s*workgroupBarrier\(\);\s*p1_main/,
  );
});

Deno.test("a chain held at shutdown() is dropped with the stream; the next device runs its own", async () => {
  const size = 40;
  const x = randomArray(size, 10), y = randomArray(size, 11);
  const [tx, ty, out] = tensorsOf(x, y, 1);
  runKernel(CHAIN_AXPY, { size, factor: 2, workgroupSize: 8 }, { a: tx, b: ty, out });
  await shutdown();
  await init();
  // An upload (which encodes held work first) and a new chain on the new device.
  const [nx, ny, nout] = tensorsOf(x, y, 1);
  runKernel(CHAIN_AXPY, { size, factor: 3, workgroupSize: 8 }, { a: nx, b: ny, out: nout });
  assert.deepEqual(Array.from(await nout.toArray()), axpy(x, y, 3));
  for (const t of [nx, ny, nout]) t.dispose();
});
