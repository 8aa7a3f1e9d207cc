import { embedding } from "../../nn/ops/embedding.ts";
import { Embedding } from "../../nn/modules/embedding.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { Rng } from "../../nn/random.ts";
import { saveSafetensors } from "../../nn/safetensors.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { tidy } from "../../nn/scope.ts";
import { tensor } from "../../nn/tensor.ts";
import { embeddingBackwardReference, embeddingReference } from "./reference/embedding.ts";
import { testOp } from "./op_helper.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray, randomInts } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";

await gpuReady();

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

interface EmbeddingCase {
  name: string;
  index: number[];
  rows: number;
  dim: number;
  paddingIdx?: number;
  /** Index range [low, high) (default [0, rows)). */
  low?: number;
  high?: number;
  /** Fixed indices instead of random ones. */
  data?: number[];
}

const CASES: EmbeddingCase[] = [
  { name: "repeated indices", index: [9], rows: 4, dim: 3 },
  { name: "2-d index, vec4 rows", index: [2, 3], rows: 5, dim: 8 },
  { name: "0-d index", index: [], rows: 3, dim: 4 },
  { name: "one row of one value", index: [1], rows: 1, dim: 1 },
  { name: "paddingIdx 2", index: [3, 4], rows: 6, dim: 5, paddingIdx: 2 },
  { name: "paddingIdx -1 (the last row)", index: [3, 4], rows: 6, dim: 4, paddingIdx: -1 },
  { name: "out-of-range indices give zeros", index: [4, 5], rows: 5, dim: 6, low: -3, high: 8 },
  { name: "batch 1", index: [1, 7], rows: 7, dim: 33 },
  {
    name: "fixed repeats with padding",
    index: [2, 4],
    rows: 3,
    dim: 2,
    paddingIdx: 0,
    data: [0, 1, 1, 2, 0, 2, 2, 1],
  },
  { name: "many indices", index: [3, 50], rows: 20, dim: 12 },
  { name: "rows of two blocks of vec4s", index: [2, 9], rows: 5, dim: 72 },
];

for (const c of CASES) {
  Deno.test(`embedding: ${c.name} (index ${JSON.stringify(c.index)}, weight [${c.rows}, ${c.dim}])`, () => {
    const padding = c.paddingIdx === undefined
      ? -1
      : c.paddingIdx < 0
      ? c.paddingIdx + c.rows
      : c.paddingIdx;
    return testOp({
      name: `embedding ${c.name}`,
      inputs: [
        {
          shape: c.index,
          dtype: "i32",
          low: c.low ?? 0,
          high: c.high ?? c.rows,
          ...(c.data ? { data: c.data } : {}),
        },
        [c.rows, c.dim],
      ],
      outputShape: [...c.index, c.dim],
      // The padding row's gradient is 0 by definition, not the derivative: with a paddingIdx the
      // GPU is checked against the reference backward only (checked by finite differences in
      // the cases without one).
      ...(padding >= 0 ? { finiteDifferenceLimit: 0 } : {}),
      gpu: ([index, weight]) => embedding(index, weight, { paddingIdx: c.paddingIdx }),
      reference: ([index, weight]) => embeddingReference(index, weight, c.dim),
      backward: ([index], grad) => [
        null,
        embeddingBackwardReference(grad, index, c.rows, c.dim, padding),
      ],
    });
  });
}

Deno.test("embedding of hand-picked rows, and an empty index", async () => {
  const weight = tensor([0, 0, 1, 1, 2, 2], [3, 2]);
  const out = embedding(tensor([2, 0, 2, 5, -1], [5], { dtype: "i32" }), weight);
  assert.deepEqual(out.shape, [5, 2]);
  assertClose(await out.toArray(), [2, 2, 0, 0, 2, 2, 0, 0, 0, 0]);
  const empty = embedding(tensor([], [0, 4], { dtype: "i32" }), weight);
  assert.deepEqual(empty.shape, [0, 4, 2]);
  for (const t of [weight, out, empty]) t.dispose();
});

Deno.test("embedding rejects bad input, naming the op and what was given", () => {
  tidy(() => {
    const weight = tensor(new Float32Array(12), [4, 3]);
    const index = tensor([0, 1], [2], { dtype: "i32" });
    assertThrows(
      () => embedding(tensor([0, 1]), weight),
      /embedding: index must be an i32 tensor, got f32/,
    );
    assertThrows(
      () => embedding(index, tensor(new Float32Array(4))),
      /embedding: weight must be an f32 tensor \[numEmbeddings, dim\], got f32 \[4\]/,
    );
    assertThrows(
      () => embedding(index, weight, { paddingIdx: 4 }),
      /embedding: paddingIdx 4 is out of range for 4 embeddings \(must be an integer in \[-4, 3\]\)/,
    );
    assertThrows(() => new Embedding(4, 3, { paddingIdx: -5 }), /Embedding: paddingIdx -5/);
    assertThrows(() => new Embedding(0, 3), /Embedding: numEmbeddings must be a positive integer/);
  });
});

Deno.test("Embedding: N(0, 1) weight from the generator, padding row zero, gradients", async () => {
  const table = new Embedding(200, 10, { paddingIdx: 3, rng: new Rng(7) });
  assert.deepEqual(Object.keys(table.stateDict()), ["weight"]);
  assert.deepEqual(table.weight.shape, [200, 10]);
  const values = await table.weight.toArray();
  assertClose(values.subarray(30, 40), new Float32Array(10));
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  assert(Math.abs(mean) < 0.08, `mean ${mean}`);
  assert(Math.abs(variance - 1) < 0.1, `variance ${variance}`);
  // Same seed, same table.
  const again = new Embedding(200, 10, { paddingIdx: 3, rng: new Rng(7) });
  assertClose(await again.weight.toArray(), values, { atol: 0 });
  // The padding row gets no gradient through the module.
  const index = tensor([3, 4, 3], [3], { dtype: "i32" });
  tidy(() => sum(table.forward(index)).backward());
  const grad = await table.weight.grad!.toArray();
  assertClose(grad.subarray(30, 50), [...new Array(10).fill(0), ...new Array(10).fill(1)]);
  index.dispose();
  table.dispose();
  again.dispose();
});

Deno.test({
  name:
    "embedding matches PyTorch (output, weight gradient with paddingIdx, maxNorm renorm in place); state dict loads",
  ignore: skipWithoutTorch("embedding vs PyTorch"),
  async fn() {
    const cases = [
      { index: [3, 7], rows: 6, dim: 5, paddingIdx: null as number | null },
      { index: [2, 2, 3], rows: 4, dim: 8, paddingIdx: 1 },
      { index: [11], rows: 5, dim: 3, paddingIdx: -2 },
      // max_norm: rows picked (some twice) scaled in place; rows not picked left alone.
      { index: [3, 4], rows: 9, dim: 8, paddingIdx: null, maxNorm: 1.1 },
      { index: [2, 3], rows: 5, dim: 3, paddingIdx: 0, maxNorm: 0.5, normType: 1 },
      { index: [7], rows: 10, dim: 5, paddingIdx: null, maxNorm: 0.4, normType: 3 },
      { index: [6], rows: 4, dim: 4, paddingIdx: null, maxNorm: 0.6, normType: Infinity },
    ].map((c: { maxNorm?: number; normType?: number } & Record<string, unknown>, k) => ({
      op: "embedding",
      index: {
        shape: c.index as number[],
        data: Array.from(randomInts(sizeOf(c.index as number[]), c.rows as number, 70 + k)),
      },
      weight: {
        shape: [c.rows as number, c.dim as number],
        data: Float64Array.from(
          Float32Array.from(randomArray((c.rows as number) * (c.dim as number), 80 + k)),
        ),
      },
      paddingIdx: c.paddingIdx as number | null,
      maxNorm: c.maxNorm,
      normType: c.normType,
      grad: Float64Array.from(
        Float32Array.from(randomArray(sizeOf(c.index as number[]) * (c.dim as number), 90 + k)),
      ),
    }));
    const dir = await Deno.makeTempDir();
    try {
      const module = new Embedding(9, 6, { paddingIdx: 2, rng: new Rng(3) });
      const path = `${dir}/embedding.safetensors`;
      await saveSafetensors(path, module.stateDict());
      const moduleIndex = { shape: [2, 5], data: Array.from(randomInts(10, 9, 99)) };
      const moduleOut = tidy(() =>
        module.forward(tensor(Int32Array.from(moduleIndex.data), [2, 5], { dtype: "i32" }))
      );
      const { answers, modules } = await askTorch<{
        answers: { out: number[]; grads: number[][]; weight: number[] }[];
        modules: { out: number[] }[];
      }>("norm.py", {
        cases,
        modules: [{ kind: "Embedding", args: [9, 6], paddingIdx: 2, path, x: moduleIndex }],
      });
      for (const [k, c] of cases.entries()) {
        const index = tensor(Int32Array.from(c.index.data), c.index.shape, { dtype: "i32" });
        const weight = tensor(Float32Array.from(c.weight.data), c.weight.shape, {
          requiresGrad: true,
        });
        const out = tidy(() => {
          const y = embedding(index, weight, {
            paddingIdx: c.paddingIdx ?? undefined,
            maxNorm: c.maxNorm,
            normType: c.normType,
          });
          y.backward({ grad: tensor(Float32Array.from(c.grad), y.shape) });
          return y;
        });
        const renormed = c.maxNorm === undefined ? { atol: 0 } : { atol: 1e-6, rtol: 1e-5 };
        assertClose(await out.toArray(), answers[k].out, renormed, `case ${k}: output`);
        assertClose(await weight.toArray(), answers[k].weight, renormed, `case ${k}: weight after`);
        assertClose(
          await weight.grad!.toArray(),
          answers[k].grads[0],
          { atol: 1e-6, rtol: 1e-6 },
          `case ${k}: weight gradient`,
        );
        for (const t of [index, weight.grad!, weight, out]) t.dispose();
      }
      assertClose(modules[0].out, await moduleOut.toArray(), { atol: 0 }, "Embedding in PyTorch");
      moduleOut.dispose();
      module.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("Embedding training steps leave no GPU buffer behind", async () => {
  const table = new Embedding(7, 4, { paddingIdx: 0, rng: new Rng(1) });
  const index = tensor([1, 0, 6, 1, 3, 2], [2, 3], { dtype: "i32" });
  const step = () => {
    table.weight.grad?.dispose();
    table.weight.grad = null;
    sum(table.forward(index)).backward();
  };
  tidy(step);
  await table.weight.grad!.toArray();
  const before = memoryStats().liveBuffers;
  for (let i = 0; i < 3; i++) tidy(step);
  await table.weight.grad!.toArray();
  assert.equal(memoryStats().liveBuffers, before, "live buffers after 3 more steps");
  index.dispose();
  table.dispose();
});

Deno.test("embedding maxNorm: picked rows (one twice) scaled in place to the norm, others untouched", async () => {
  const rows = 6, dim = 5, maxNorm = 0.9;
  const values = Float32Array.from(randomArray(rows * dim, 123), (v) => 2 * v);
  const picks = [4, 1, 4, 0];
  for (const normType of [2, 1, 3.5, Infinity]) {
    const weight = tensor(values, [rows, dim]);
    const index = tensor(Int32Array.from(picks), [2, 2], { dtype: "i32" });
    const out = embedding(index, weight, { maxNorm, normType });
    const expected = Float64Array.from(values);
    for (const row of new Set(picks)) {
      const slice = expected.subarray(row * dim, (row + 1) * dim);
      const norm = normType === Infinity
        ? Math.max(...slice.map(Math.abs))
        : Math.pow(slice.reduce((s, v) => s + Math.pow(Math.abs(v), normType), 0), 1 / normType);
      if (norm > maxNorm) slice.forEach((v, k) => slice[k] = v * maxNorm / (norm + 1e-7));
    }
    assertClose(await weight.toArray(), expected, { atol: 1e-6, rtol: 1e-5 }, `p ${normType}`);
    const picked = picks.flatMap((row) =>
      Array.from(expected.subarray(row * dim, (row + 1) * dim))
    );
    assertClose(await out.toArray(), picked, { atol: 1e-6, rtol: 1e-5 }, `p ${normType} output`);
    for (const t of [weight, index, out]) t.dispose();
  }
  const weight = tensor(values, [rows, dim]);
  const index = tensor([0], [1], { dtype: "i32" });
  assert.throws(
    () => embedding(index, weight, { maxNorm: -1 }),
    /maxNorm must be a finite number >= 0, got -1/,
  );
  assert.throws(
    () => embedding(index, weight, { maxNorm: 1, normType: 0 }),
    /normType must be > 0/,
  );
  weight.dispose();
  index.dispose();
});
