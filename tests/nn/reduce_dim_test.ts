import {
  argmax,
  argmin,
  logsumexp,
  max,
  mean,
  min,
  prod,
  type ReductionOptions,
  std,
  sum,
  variance,
} from "../../nn/ops/reduce.ts";
import { add, mul, sub } from "../../nn/ops/elementwise.ts";
import { rsqrt } from "../../nn/ops/unary.ts";
import {
  argExtremeOf,
  type GroupReference,
  groupReferences,
  reduceDimBackwardReference,
  reduceDimReference,
  referenceDims,
  spreadReference,
} from "./reference/reduce.ts";
import { randUniform, type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { sync } from "../../nn/gpu/stream.ts";
import { tidy } from "../../nn/scope.ts";
import { logSoftmax, softmax } from "../../nn/ops/softmax.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray, withKernelPolicy } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";

await gpuReady();

type Dim = number | readonly number[] | undefined;

/**
 * Seeded values in [low, high) at least (high - low) / size apart, so that no two are within a
 * finite-difference step of each other (max and min have a kink at ties).
 */
function spacedArray(size: number, seed: number, low: number, high: number): Float64Array {
  const jitter = randomArray(size, seed, 0, 0.5);
  const order = Array.from(randomArray(size, seed + 1), (v, i) => [v, i] as const)
    .sort((a, b) => a[0] - b[0]);
  const out = new Float64Array(size);
  order.forEach(([, i], rank) => out[i] = low + (high - low) * (rank + jitter[i]) / size);
  return out;
}

/** The output shape of reducing `shape` over `dim` (a reference of its own). */
function outputShape(shape: readonly number[], dim: Dim, keepdim: boolean): number[] {
  const dims = referenceDims(shape, dim);
  return shape.flatMap((size, d) => dims.includes(d) ? (keepdim ? [1] : []) : [size]);
}

interface DimOp {
  name: string;
  gpu: (x: Tensor, options: ReductionOptions) => Tensor;
  reference: GroupReference;
  /** The reference over all elements, when it differs (max, min: ties share the gradient). */
  allReference?: GroupReference;
  low?: number;
  high?: number;
  tolerance?: { atol?: number; rtol?: number };
}

const OPS: readonly DimOp[] = [
  { name: "sum", gpu: sum, reference: groupReferences.sum },
  { name: "mean", gpu: mean, reference: groupReferences.mean },
  {
    name: "max",
    gpu: max,
    reference: groupReferences.max,
    allReference: groupReferences.maxAll,
  },
  {
    name: "min",
    gpu: min,
    reference: groupReferences.min,
    allReference: groupReferences.minAll,
  },
  { name: "variance", gpu: variance, reference: spreadReference(1, false) },
  {
    name: "variance correction 0",
    gpu: (x, o) => variance(x, { ...o, correction: 0 }),
    reference: spreadReference(0, false),
  },
  { name: "std", gpu: std, reference: spreadReference(1, true), low: -2, high: 2 },
  {
    name: "std correction 0",
    gpu: (x, o) => std(x, { ...o, correction: 0 }),
    reference: spreadReference(0, true),
    low: -2,
    high: 2,
  },
  { name: "logsumexp", gpu: logsumexp, reference: groupReferences.logsumexp, low: -3, high: 3 },
  { name: "prod", gpu: prod, reference: groupReferences.prod, low: 0.6, high: 1.4 },
];

/** Shapes and dims: awkward sizes, size-1 dims, 0-d, every read mode of the kernel. */
const CASES: readonly [number[], Dim][] = [
  [[2, 3, 5], 1],
  [[2, 3, 5], -1],
  [[2, 3, 5], [0, 2]],
  [[2, 3, 5], undefined],
  [[2, 3, 5], [-3, 1]],
  [[], undefined],
  [[], 0],
  [[], -1],
  [[4, 1, 3], 1],
  [[4, 1, 3], [0, 1]],
  [[1, 5], 0],
  [[7], 0],
  [[7], undefined],
  [[12, 8], 0], // column mode: 4 outputs per invocation
  [[12, 8], 1], // row mode: vec4 reads
  [[3, 8, 4], 1], // column mode under an outer kept dim
  [[4, 3, 4], [0, 2]], // row mode over two reduced runs
  [[33, 130], 0],
  [[33, 130], 1],
];

for (const [shape, dim] of CASES) {
  for (const keepdim of [false, true]) {
    Deno.test(`reductions over dim ${JSON.stringify(dim)} of [${shape}] (keepdim ${keepdim}) match the reference`, async () => {
      const size = shape.reduce((a, b) => a * b, 1);
      const count = referenceDims(shape, dim).reduce((n, d) => n * shape[d], 1);
      for (const op of OPS) {
        // One element with correction 1: NaN, whose gradient is tested on its own below.
        if (count === 1 && op.reference.correction === 1) continue;
        const reference = dim === undefined && op.allReference ? op.allReference : op.reference;
        const data = spacedArray(size, size + 3, op.low ?? -1, op.high ?? 1);
        const options = dim === undefined ? { keepdim } : { dim, keepdim };
        await testOp({
          name: `${op.name} [${shape}] dim ${JSON.stringify(dim)} keepdim ${keepdim}`,
          inputs: [{ shape, data }],
          gpu: ([x]) => op.gpu(x, options),
          reference: ([x]) => reduceDimReference(x, shape, dim, reference.forward),
          backward: ([x], grad) => [
            reduceDimBackwardReference(x, shape, dim, grad, reference.backward!),
          ],
          outputShape: outputShape(shape, dim, keepdim),
          forwardTolerance: { atol: 2e-5, rtol: 1e-4, ...op.tolerance },
          gradTolerance: { atol: 2e-5, rtol: 1e-4, ...op.tolerance },
        });
      }
      if (Array.isArray(dim) && dim.length > 1) return;
      for (const [name, op, sign] of [["argmax", argmax, 1], ["argmin", argmin, -1]] as const) {
        await testOp({
          name: `${name} [${shape}] dim ${dim} keepdim ${keepdim}`,
          inputs: [{ shape, data: randomArray(size, size + 4) }],
          gpu: ([x]) => op(x, { dim: typeof dim === "number" ? dim : undefined, keepdim }),
          reference: ([x]) =>
            reduceDimReference(x, shape, dim, (values) => argExtremeOf(values, sign)),
          outputShape: outputShape(shape, dim, keepdim),
          outputDtype: "i32",
        });
      }
    });
  }
}

// Many elements per output: under the hardware policy a workgroup shares each output's sum
// (SPLIT_SUM, row and column mode, tails of outputs and of elements); both policies forced.
const LONG_SUMS: readonly [number[], Dim][] = [
  [[257, 72], 0], // column mode: 18 vec4s of outputs, 4 per workgroup
  [[600, 12], 0], // column mode: 3 vec4s, a workgroup with one unused
  [[3, 160, 8], 1], // column mode under an outer kept dim
  [[4, 40, 4], [0, 1]], // column mode over two reduced runs
  [[5, 520], 1], // row mode
  [[2, 3, 1000], -1],
];

for (const policy of ["software", "hardware"] as const) {
  Deno.test(`sum and mean over many elements per output match the reference (${policy} policy)`, async () => {
    await withKernelPolicy(policy, async () => {
      for (const [shape, dim] of LONG_SUMS) {
        const size = shape.reduce((a, b) => a * b, 1);
        for (const op of OPS.slice(0, 2)) {
          await testOp({
            name: `${op.name} [${shape}] dim ${JSON.stringify(dim)} (${policy})`,
            inputs: [{ shape, data: randomArray(size, size + 5) }],
            gpu: ([x]) => op.gpu(x, { dim }),
            reference: ([x]) => reduceDimReference(x, shape, dim, op.reference.forward),
            backward: ([x], grad) => [
              reduceDimBackwardReference(x, shape, dim, grad, op.reference.backward!),
            ],
            outputShape: outputShape(shape, dim, false),
            forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
          });
        }
      }
      // NaN and infinities carry through the partial sums.
      const data = new Float32Array(300 * 8).fill(1);
      data[299 * 8 + 1] = NaN;
      data[150 * 8 + 2] = Infinity;
      data[7 * 8 + 3] = -Infinity;
      const columns = await sum(tensor(data, [300, 8]), { dim: 0 }).toArray();
      assert.deepEqual(Array.from(columns), [300, NaN, Infinity, -Infinity, 300, 300, 300, 300]);
    });
  });
}

Deno.test("argmax and argmin pick the first of tied values, per dim and over all", async () => {
  const x = tensor([3, 1, 3, 1, 2, 2, 0, 0, 5, 5, 5, 5], [3, 4]);
  assert.deepEqual([...await argmax(x, { dim: 1 }).toTypedArray()], [0, 0, 0]);
  assert.deepEqual([...await argmin(x, { dim: 1 }).toTypedArray()], [1, 2, 0]);
  assert.deepEqual([...await argmax(x, { dim: 0 }).toTypedArray()], [2, 2, 2, 2]);
  assert.deepEqual([...await argmin(x, { dim: 0 }).toTypedArray()], [1, 0, 1, 1]);
  assert.equal(await argmax(x).item(), 8);
  assert.equal(await argmin(x).item(), 6);
  const flat = argmax(x, { keepdim: true });
  assert.deepEqual(flat.shape, [1, 1]);
  assert.equal(flat.dtype, "i32");
});

Deno.test("max and min propagate NaN; argmax and argmin point at the first NaN (as PyTorch)", async () => {
  // torch.tensor([[1, nan, 2, nan], [3, 0, 1, 3], [nan, 5, nan, -1]]).max(1) etc.
  const x = tensor([1, NaN, 2, NaN, 3, 0, 1, 3, NaN, 5, NaN, -1], [3, 4]);
  assert.deepEqual([...await max(x, { dim: 1 }).toArray()], [NaN, 3, NaN]);
  assert.deepEqual([...await min(x, { dim: 1 }).toArray()], [NaN, 0, NaN]);
  assert.deepEqual([...await argmax(x, { dim: 1 }).toTypedArray()], [1, 0, 0]);
  assert.deepEqual([...await argmin(x, { dim: 1 }).toTypedArray()], [1, 1, 0]);
  assert.deepEqual([...await argmax(x, { dim: 0 }).toTypedArray()], [2, 0, 2, 0]);
  assert.deepEqual([...await max(x, { dim: 0 }).toArray()], [NaN, NaN, NaN, NaN]);
  assert.ok(Number.isNaN(await max(x).item()));
  assert.equal(await argmax(x).item(), 1);
  assert.equal(await argmin(x).item(), 1);
  // The sums, logsumexp and prod of a NaN row are NaN too.
  for (const op of [sum, mean, logsumexp, prod, variance, std]) {
    const values = [...await op(x, { dim: 1 }).toArray()];
    assert.ok(Number.isNaN(values[0]) && !Number.isNaN(values[1]), `${op.name}: ${values}`);
  }
});

Deno.test("max over a dim sends the gradient to the first maximum; over all, ties share it", async () => {
  const data = [2, 5, 5, 1, 0, 0, 5, 3];
  await testOp({
    name: "max dim 1 with ties",
    inputs: [{ shape: [2, 4], data }],
    gpu: ([x]) => max(x, { dim: 1 }),
    reference: ([x]) => reduceDimReference(x, [2, 4], 1, groupReferences.max.forward),
    backward: ([x], grad) => [
      reduceDimBackwardReference(x, [2, 4], 1, grad, groupReferences.max.backward),
    ],
    finiteDifferenceLimit: 0, // at a tie finite differences split the gradient
  });
  await testOp({
    name: "max of all with three ties",
    inputs: [{ shape: [2, 4], data }],
    gpu: ([x]) => max(x),
    reference: ([x]) => reduceDimReference(x, [2, 4], undefined, groupReferences.maxAll.forward),
    backward: ([x], grad) => [
      reduceDimBackwardReference(x, [2, 4], undefined, grad, groupReferences.maxAll.backward),
    ],
    finiteDifferenceLimit: 0,
  });
  // PyTorch: torch.tensor([1., 5., 5., 0.]).max() backward gives [0, 0.5, 0.5, 0].
  const x = tensor([1, 5, 5, 0], [4], { requiresGrad: true });
  max(x).backward();
  assert.deepEqual([...await x.grad!.toArray()], [0, 0.5, 0.5, 0]);
  const y = tensor([1, 5, 5, 0], [4], { requiresGrad: true });
  min(y, { dim: 0 }).backward();
  assert.deepEqual([...await y.grad!.toArray()], [0, 0, 0, 1]);
  // Over all elements, a NaN maximum shares the gradient among the NaNs (as PyTorch).
  const z = tensor([NaN, 1, NaN, 2], [4], { requiresGrad: true });
  max(z).backward();
  assert.deepEqual([...await z.grad!.toArray()], [0.5, 0, 0.5, 0]);
});

Deno.test("prod's gradient is exact with zeros: one zero, two zeros, none", async () => {
  // Row 0 has one zero, row 1 two, row 2 none.
  const data = [2, 0, 3, 4, 0, 5, 0, 2, 1, 2, 3, 0.5];
  for (const dim of [1, undefined, [1]] as const) {
    await testOp({
      name: `prod with zeros dim ${JSON.stringify(dim)}`,
      inputs: [{ shape: [3, 4], data }],
      gpu: ([x]) => prod(x, { dim: dim as number | number[] | undefined }),
      reference: ([x]) => reduceDimReference(x, [3, 4], dim, groupReferences.prod.forward),
      backward: ([x], grad) => [
        reduceDimBackwardReference(x, [3, 4], dim, grad, groupReferences.prod.backward),
      ],
    });
  }
  // PyTorch: torch.tensor([2., 0., 3., 4.]).prod() backward gives [0, 24, 0, 0].
  const x = tensor([2, 0, 3, 4], [4], { requiresGrad: true });
  prod(x).backward();
  assert.deepEqual([...await x.grad!.toArray()], [0, 24, 0, 0]);
});

Deno.test("empty reductions: sum 0, prod 1, mean and variance NaN, logsumexp -inf; max refuses", async () => {
  const x = zeros([2, 0, 3]);
  assert.deepEqual([...await sum(x, { dim: 1 }).toArray()], [0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...await prod(x, { dim: 1 }).toArray()], [1, 1, 1, 1, 1, 1]);
  assert.ok([...await mean(x, { dim: 1 }).toArray()].every(Number.isNaN));
  assert.ok([...await variance(x, { dim: [0, 1] }).toArray()].every(Number.isNaN));
  assert.deepEqual([...await logsumexp(x, { dim: 1 }).toArray()], [
    -Infinity,
    -Infinity,
    -Infinity,
    -Infinity,
    -Infinity,
    -Infinity,
  ]);
  assert.deepEqual(sum(x, { dim: 2 }).shape, [2, 0]);
  assert.deepEqual(max(x, { dim: 2 }).shape, [2, 0]);
  assertThrows(
    () => max(x, { dim: 1 }),
    /^max: cannot reduce over a dimension of size 0 \(shape \[2, 0, 3\], dims \[1\]\)/,
  );
  assertThrows(() => argmax(x), /^argmax: cannot reduce over a dimension of size 0/);
});

Deno.test("logsumexp of infinite rows: all -inf gives -inf, +inf gives inf (as PyTorch)", async () => {
  const x = tensor([-Infinity, -Infinity, -Infinity, Infinity, 1, 2, 1000, 1000, 0], [3, 3]);
  const values = [...await logsumexp(x, { dim: 1 }).toArray()];
  assert.deepEqual(values.slice(0, 2), [-Infinity, Infinity]);
  assert.ok(Math.abs(values[2] - (1000 + Math.log(2))) < 1e-3, `${values[2]}`);
});

Deno.test("variance of one element is NaN (correction 1) and 0 (correction 0)", async () => {
  const x = tensor([1, 2, 3], [3, 1]);
  assert.ok([...await variance(x, { dim: 1 }).toArray()].every(Number.isNaN));
  assert.deepEqual([...await std(x, { dim: 1, correction: 0 }).toArray()], [0, 0, 0]);
  // torch.tensor([1., 2., 3., 4.]).var() = 1.6667, .std(correction=0) = 1.1180
  // ... and so are their gradients (PyTorch: 2 / 0 * (x - mean) = NaN).
  const one = tensor([3], [1], { requiresGrad: true });
  variance(one).backward();
  assert.ok(Number.isNaN(await one.grad!.item()));
  const y = tensor([1, 2, 3, 4], [4]);
  assert.ok(Math.abs(await variance(y).item() - 5 / 3) < 1e-6);
  assert.ok(Math.abs(await std(y, { correction: 0 }).item() - Math.sqrt(1.25)) < 1e-6);
});

Deno.test("reductions refuse bad dims and dtypes, naming the op, the dims and the rank", () => {
  const x = zeros([3, 4]);
  assertThrows(
    () => sum(x, { dim: 3 }),
    /^sum: dim 3 is out of range for a tensor of rank 2 \(expected -2\.\.1\)$/,
  );
  assertThrows(
    () => max(x, { dim: -3 }),
    /^max: dim -3 is out of range for a tensor of rank 2 \(expected -2\.\.1\)$/,
  );
  assertThrows(
    () => mean(zeros([]), { dim: 1 }),
    /^mean: dim 1 is out of range for a tensor of rank 0 \(expected -1\.\.0\)$/,
  );
  assertThrows(
    () => variance(x, { dim: [1, -1] }),
    /^variance: dim 1 appears more than once in \[1, -1\] \(shape \[3, 4\]\)$/,
  );
  assertThrows(() => prod(x, { dim: 0.5 }), /^prod: dim 0.5 is out of range/);
  assertThrows(
    () => argmax(x, { dim: [0] as unknown as number }),
    /^argmax: dim must be one dimension \(a number\), got \[0\]$/,
  );
  const ints = zeros([3], { dtype: "i32" });
  for (
    const [name, op] of [["sum", sum], ["max", max], ["argmax", argmax], [
      "logsumexp",
      logsumexp,
    ]] as const
  ) {
    assertThrows(
      () => op(ints, { dim: 0 }),
      new RegExp(`^${name}: needs an f32 tensor, got i32 of shape \\[3\\]$`),
    );
  }
});

/** Layer norm over the last dimension in float64 (biased variance, eps 1e-5). */
function layerNormReference(x: ArrayLike<number>, rows: number, features: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let n = 0; n < rows; n++) {
    const row = Array.from({ length: features }, (_, j) => x[n * features + j]);
    const m = row.reduce((a, b) => a + b, 0) / features;
    const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / features;
    row.forEach((value, j) => out[n * features + j] = (value - m) / Math.sqrt(v + 1e-5));
  }
  return out;
}

Deno.test("compositions: layer norm from mean and variance matches float64, with gradients", async () => {
  for (const [rows, features] of [[1, 5], [3, 7], [4, 12]]) {
    await testOp({
      name: `layer norm [${rows}, ${features}]`,
      inputs: [[rows, features]],
      gpu: ([x]) => {
        const centered = sub(x, mean(x, { dim: -1, keepdim: true }));
        const spread = variance(x, { dim: -1, keepdim: true, correction: 0 });
        return mul(centered, rsqrt(add(spread, 1e-5)));
      },
      reference: ([x]) => layerNormReference(x, rows, features),
      forwardTolerance: { atol: 1e-4 },
    });
  }
});

Deno.test("compositions: a log-sum-exp classifier loss matches float64, with gradients", async () => {
  // loss = mean over rows of (logsumexp(z) - z[target]), the target picked by a one-hot mask.
  const [rows, classes] = [5, 7];
  const onehot = new Float64Array(rows * classes);
  for (let n = 0; n < rows; n++) onehot[n * classes + (n * 3) % classes] = 1;
  await testOp({
    name: "logsumexp classifier",
    inputs: [{ shape: [rows, classes], low: -3, high: 3 }, {
      shape: [rows, classes],
      data: onehot,
      grad: false,
    }],
    gpu: ([z, mask]) => mean(sub(logsumexp(z, { dim: 1 }), sum(mul(z, mask), { dim: -1 }))),
    reference: ([z, mask]) => {
      let total = 0;
      for (let n = 0; n < rows; n++) {
        const row = Array.from(z.subarray(n * classes, (n + 1) * classes));
        total += groupReferences.logsumexp.forward(row);
        for (let j = 0; j < classes; j++) total -= z[n * classes + j] * mask[n * classes + j];
      }
      return total / rows;
    },
    implicitGrad: true,
    outputShape: [],
  });
});

Deno.test("reductions and softmax leak no GPU buffer: forward, backward, dispose, no tidy", async () => {
  const x = randUniform([6, 12], { requiresGrad: true });
  const ops: ((x: Tensor) => Tensor)[] = [
    (x) => sum(x, { dim: 1 }),
    (x) => mean(x, { dim: 0, keepdim: true }),
    (x) => max(x, { dim: 1 }),
    (x) => min(x),
    (x) => variance(x, { dim: 1 }),
    (x) => std(x, { dim: [0, 1] }),
    (x) => logsumexp(x, { dim: 0 }),
    (x) => prod(x, { dim: 1 }),
    (x) => softmax(x, { dim: 0 }),
    (x) => logSoftmax(x, { dim: 1 }),
  ];
  const run = () => {
    for (const op of ops) {
      const y = op(x);
      const loss = sum(y);
      loss.backward();
      loss.dispose();
      y.dispose();
      x.grad!.dispose();
      x.grad = null;
      argmax(x, { dim: 1 }).dispose();
    }
  };
  run(); // fills the pool
  await sync();
  const before = memoryStats().liveBuffers;
  run();
  await sync();
  assert.equal(memoryStats().liveBuffers, before);
  x.dispose();
});

/** One case for the PyTorch oracle (`tests/pytorch/reductions.py`). */
interface TorchCase {
  op: string;
  shape: number[];
  dim: number | number[] | null;
  keepdim?: boolean;
  correction?: number;
  x: number[];
  grad?: number[];
}

Deno.test({
  name: "reductions and softmax agree with PyTorch, values and gradients (ties, NaN, zeros)",
  ignore: skipWithoutTorch("reduce_dim_test PyTorch oracle"),
  fn: async () => {
    const gpuOps: Record<string, (x: Tensor, c: TorchCase) => Tensor> = {
      sum: (x, c) => sum(x, { dim: c.dim ?? undefined, keepdim: c.keepdim }),
      mean: (x, c) => mean(x, { dim: c.dim ?? undefined, keepdim: c.keepdim }),
      max: (x, c) => max(x, { dim: c.dim ?? undefined, keepdim: c.keepdim }),
      min: (x, c) => min(x, { dim: c.dim ?? undefined, keepdim: c.keepdim }),
      argmax: (x, c) => argmax(x, { dim: (c.dim ?? undefined) as number, keepdim: c.keepdim }),
      argmin: (x, c) => argmin(x, { dim: (c.dim ?? undefined) as number, keepdim: c.keepdim }),
      var: (x, c) =>
        variance(x, { dim: c.dim ?? undefined, keepdim: c.keepdim, correction: c.correction }),
      std: (x, c) =>
        std(x, { dim: c.dim ?? undefined, keepdim: c.keepdim, correction: c.correction }),
      logsumexp: (x, c) => logsumexp(x, { dim: c.dim ?? undefined, keepdim: c.keepdim }),
      prod: (x, c) => prod(x, { dim: c.dim ?? undefined, keepdim: c.keepdim }),
      softmax: (x, c) => softmax(x, { dim: c.dim as number }),
      log_softmax: (x, c) => logSoftmax(x, { dim: c.dim as number }),
    };
    const random = Array.from(randomArray(30, 11, -2, 2));
    const ties = [2, 5, 5, 1, 0, 0, 5, 3, -1, -1, 4, 4];
    const nan = [1, NaN, 2, NaN, 3, 0, 1, 3, NaN, 5, NaN, -1];
    const zeros = [2, 0, 3, 4, 0, 5, 0, 2, 1, 2, 3, 0.5];
    const cases: TorchCase[] = [];
    for (const op of ["sum", "mean", "var", "std", "logsumexp", "max", "min", "prod"]) {
      for (const dim of [null, 1, -1, [0, 2]]) {
        if (Array.isArray(dim) && (op === "max" || op === "min" || op === "prod")) continue;
        cases.push({ op, shape: [2, 3, 5], dim, keepdim: dim === 1, x: random });
      }
    }
    for (const op of ["argmax", "argmin", "max", "min"]) {
      for (const dim of [null, 0, 1]) {
        cases.push({ op, shape: [3, 4], dim, x: ties }, { op, shape: [3, 4], dim, x: nan });
      }
    }
    for (const dim of [null, 0, 1]) cases.push({ op: "prod", shape: [3, 4], dim, x: zeros });
    cases.push({ op: "var", shape: [2, 3, 5], dim: 1, correction: 0, x: random });
    cases.push({ op: "std", shape: [2, 3, 5], dim: [0, 1], correction: 2, x: random });
    for (const op of ["softmax", "log_softmax"]) {
      for (const dim of [0, 1, -1]) cases.push({ op, shape: [2, 3, 5], dim, x: random });
    }
    // Gradients of sum(out * grad), with seeded weights of the output's size.
    for (const [k, c] of cases.entries()) {
      const out = tidy(() => gpuOps[c.op](tensor(c.x, c.shape), c));
      c.grad = Array.from(randomArray(out.size, 100 + k));
      out.dispose();
    }
    const { answers } = await askTorch<{
      answers: { shape: number[]; out: number[]; grad?: number[] }[];
    }>("reductions.py", { cases });
    for (const [k, c] of cases.entries()) {
      const what = `${c.op} dim ${JSON.stringify(c.dim)} of ${JSON.stringify(c.x.slice(0, 4))}...`;
      const expected = answers[k];
      const x = tensor(c.x, c.shape, { requiresGrad: expected.grad !== undefined });
      const out = tidy(() => {
        const result = gpuOps[c.op](x, c);
        if (expected.grad) result.backward({ grad: tensor(c.grad!, result.shape) });
        return result;
      });
      assert.deepEqual(out.shape, expected.shape, `${what}: shape`);
      const tolerance = { atol: 1e-5, rtol: 1e-4, equalNan: true };
      assertClose(await out.toArray(), expected.out, tolerance, `${what}: values`);
      if (expected.grad) {
        assertClose(await x.grad!.toArray(), expected.grad, tolerance, `${what}: gradient`);
      }
      out.dispose();
      x.grad?.dispose();
      x.dispose();
    }
  },
});
