import {
  binaryCrossEntropy,
  binaryCrossEntropyWithLogits,
  huberLoss,
  klDiv,
  l1Loss,
  mseLoss,
  type Reduction,
  smoothL1Loss,
} from "../../nn/ops/losses.ts";
import { crossEntropy, nllLoss } from "../../nn/ops/softmax.ts";
import {
  broadcastReference,
  classesLastReference,
  classLossReference,
  crossEntropyProbReference,
  type PointwiseReference,
  pointwiseReference,
  reduceReference,
} from "./reference/losses.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { deepEqual } from "node:assert/strict";
import { assertThrows } from "../assert.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { sync } from "../../nn/gpu/stream.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

const REDUCTIONS: readonly Reduction[] = ["mean", "sum", "none"];
const SHAPES: readonly (readonly number[])[] = [[7], [3, 5, 7], [], [1, 3]];

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

interface PointwiseCase {
  name: string;
  reference: PointwiseReference;
  gpu: (x: Tensor, y: Tensor, reduction: Reduction) => Tensor;
  /** Inputs and targets of `size` elements, seeded, kept away from kinks. */
  data: (size: number, seed: number) => [Float64Array, Float64Array];
  k?: number;
}

/** Targets 0.05-2 away from the inputs, either side: no kink within the finite differences. */
function apart(size: number, seed: number): [Float64Array, Float64Array] {
  const x = randomArray(size, seed, -2, 2);
  const r = randomArray(size, seed + 1);
  return [x, x.map((v, i) => v + Math.sign(r[i] || 1) * (0.05 + 2 * Math.abs(r[i])))];
}

/** Targets apart from the inputs, and never within 0.01 of the quadratic zone's edges ±k. */
function apartFrom(k: number): (size: number, seed: number) => [Float64Array, Float64Array] {
  return (size, seed) => {
    const [x, y] = apart(size, seed);
    return [x, y.map((v, i) => Math.abs(Math.abs(v - x[i]) - k) < 0.01 ? v + 0.05 : v)];
  };
}

const CASES: readonly PointwiseCase[] = [
  {
    name: "mseLoss",
    reference: "mse",
    gpu: (x, y, reduction) => mseLoss(x, y, { reduction }),
    data: apart,
  },
  {
    name: "l1Loss",
    reference: "l1",
    gpu: (x, y, reduction) => l1Loss(x, y, { reduction }),
    data: apart,
  },
  {
    name: "smoothL1Loss",
    reference: "smoothL1",
    gpu: (x, y, reduction) => smoothL1Loss(x, y, { reduction }),
    data: apartFrom(1),
  },
  {
    name: "smoothL1Loss beta 0.5",
    reference: "smoothL1",
    k: 0.5,
    gpu: (x, y, reduction) => smoothL1Loss(x, y, { reduction, beta: 0.5 }),
    data: apartFrom(0.5),
  },
  {
    name: "smoothL1Loss beta 0",
    reference: "smoothL1",
    k: 0,
    gpu: (x, y, reduction) => smoothL1Loss(x, y, { reduction, beta: 0 }),
    data: apart,
  },
  {
    name: "huberLoss",
    reference: "huber",
    gpu: (x, y, reduction) => huberLoss(x, y, { reduction }),
    data: apartFrom(1),
  },
  {
    name: "huberLoss delta 1.5",
    reference: "huber",
    k: 1.5,
    gpu: (x, y, reduction) => huberLoss(x, y, { reduction, delta: 1.5 }),
    data: apartFrom(1.5),
  },
  {
    name: "binaryCrossEntropy",
    reference: "bce",
    gpu: (x, y, reduction) => binaryCrossEntropy(x, y, { reduction }),
    data: (size, seed) => [randomArray(size, seed, 0.05, 0.95), randomArray(size, seed + 1, 0, 1)],
  },
  {
    name: "binaryCrossEntropyWithLogits",
    reference: "bceLogits",
    gpu: (x, y, reduction) => binaryCrossEntropyWithLogits(x, y, { reduction }),
    data: (size, seed) => [randomArray(size, seed, -12, 12), randomArray(size, seed + 1, 0, 1)],
  },
  {
    name: "klDiv",
    reference: "kl",
    gpu: (x, y, reduction) => klDiv(x, y, { reduction }),
    data: (size, seed) => [randomArray(size, seed, -3, 0), randomArray(size, seed + 1, 0.05, 1)],
  },
  {
    name: "klDiv logTarget",
    reference: "klLog",
    gpu: (x, y, reduction) => klDiv(x, y, { reduction, logTarget: true }),
    data: (size, seed) => [randomArray(size, seed, -3, 0), randomArray(size, seed + 1, -3, 0)],
  },
];

for (const testCase of CASES) {
  Deno.test(`${testCase.name}: every reduction on [7], [3, 5, 7], [], [1, 3] (input and target gradients)`, async () => {
    for (const reduction of REDUCTIONS) {
      for (const shape of SHAPES) {
        const [x, y] = testCase.data(sizeOf(shape), sizeOf(shape) + 3);
        await testOp({
          name: `${testCase.name} ${reduction} [${shape}]`,
          inputs: [{ shape, data: x }, { shape, data: y }],
          gpu: ([a, b]) => testCase.gpu(a, b, reduction),
          reference: ([a, b]) =>
            reduceReference(
              pointwiseReference(testCase.reference, a, b, { k: testCase.k }),
              reduction,
            ),
          outputShape: reduction === "none" ? shape : [],
          forwardTolerance: { atol: 1e-5, rtol: 1e-5 },
        });
      }
    }
  });
}

Deno.test("klDiv batchmean divides the sum by the first dimension", async () => {
  for (const shape of [[3, 5, 7], [1, 4], []]) {
    const size = sizeOf(shape);
    await testOp({
      name: `klDiv batchmean [${shape}]`,
      inputs: [
        { shape, data: randomArray(size, 5, -3, 0) },
        { shape, data: randomArray(size, 6, 0.05, 1) },
      ],
      gpu: ([x, y]) => klDiv(x, y, { reduction: "batchmean" }),
      reference: ([x, y]) =>
        reduceReference(pointwiseReference("kl", x, y), "batchmean", shape[0] ?? 1),
      outputShape: [],
    });
  }
});

Deno.test("binaryCrossEntropy and ...WithLogits with broadcast weight and posWeight", async () => {
  const shape = [3, 5];
  for (const reduction of REDUCTIONS) {
    await testOp({
      name: `binaryCrossEntropy weight [5] ${reduction}`,
      inputs: [
        { shape, data: randomArray(15, 1, 0.05, 0.95) },
        { shape, data: randomArray(15, 2, 0, 1) },
        { shape: [5], data: randomArray(5, 3, 0, 2), grad: false },
      ],
      gpu: ([x, y, w]) => binaryCrossEntropy(x, y, { weight: w, reduction }),
      reference: ([x, y, w]) =>
        reduceReference(
          pointwiseReference("bce", x, y, { w: broadcastReference(w, [5], shape) }),
          reduction,
        ),
    });
    await testOp({
      name: `binaryCrossEntropyWithLogits weight [3, 1], posWeight [5] ${reduction}`,
      inputs: [
        { shape, data: randomArray(15, 4, -5, 5) },
        { shape, data: randomArray(15, 5, 0, 1) },
        { shape: [3, 1], data: randomArray(3, 6, 0, 2), grad: false },
        { shape: [5], data: randomArray(5, 7, 0.2, 3), grad: false },
      ],
      gpu: ([x, y, w, p]) =>
        binaryCrossEntropyWithLogits(x, y, { weight: w, posWeight: p, reduction }),
      reference: ([x, y, w, p]) =>
        reduceReference(
          pointwiseReference("bceLogits", x, y, {
            w: broadcastReference(w, [3, 1], shape),
            p: broadcastReference(p, [5], shape),
          }),
          reduction,
        ),
    });
  }
});

Deno.test("binaryCrossEntropy clamps its logs at -100; ...WithLogits is stable at ±100", async () => {
  const bce = binaryCrossEntropy(tensor([0, 1, 0, 1]), tensor([1, 0, 0, 1]), { reduction: "none" });
  assertClose(await bce.toArray(), [100, 100, 0, 0]);
  const logits = binaryCrossEntropyWithLogits(
    tensor([100, -100, 100, -100]),
    tensor([1, 0, 0, 1]),
    {
      reduction: "none",
    },
  );
  assertClose(await logits.toArray(), [0, 0, 100, 100]);
});

Deno.test("the losses name themselves and both shapes on a mismatch, and the wrong dtype", () => {
  const x = tensor(new Float32Array(6), [2, 3]);
  assertThrows(
    () => mseLoss(x, tensor(new Float32Array(3), [3])),
    /mseLoss: target shape \[3\] does not match input shape \[2, 3\]/,
  );
  assertThrows(
    () => klDiv(x, tensor(new Float32Array(6), [3, 2])),
    /klDiv: target shape \[3, 2\] does not match input shape \[2, 3\]/,
  );
  assertThrows(
    () => l1Loss(x, tensor(new Int32Array(6), [2, 3], { dtype: "i32" })),
    /l1Loss: target must be an f32 tensor, got i32/,
  );
  assertThrows(
    () => binaryCrossEntropy(x, x, { weight: tensor(new Float32Array(2), [2]) }),
    /binaryCrossEntropy: weight shape \[2\] does not broadcast to input shape \[2, 3\]/,
  );
  assertThrows(
    () => mseLoss(x, x, { reduction: "avg" as Reduction }),
    /mseLoss: reduction must be "mean", "sum", "none"; got "avg"/,
  );
  assertThrows(() => huberLoss(x, x, { delta: 0 }), /huberLoss: delta must be/);
});

Deno.test("an empty input: mean is NaN, sum is 0, none is empty", async () => {
  const x = tensor(new Float32Array(0), [0, 3]);
  assertClose(await mseLoss(x, x).toArray(), [NaN], { equalNan: true });
  assertClose(await l1Loss(x, x, { reduction: "sum" }).toArray(), [0]);
  assertClose([...mseLoss(x, x, { reduction: "none" }).shape], [0, 3]);
  // Class losses of no rows, as PyTorch: NaN mean, 0 sum, [0] per row.
  const labels = tensor(new Int32Array(0), [0], { dtype: "i32" });
  assertClose(await crossEntropy(x, labels).toArray(), [NaN], { equalNan: true });
  assertClose(await nllLoss(x, labels, { reduction: "sum" }).toArray(), [0]);
  assertClose([...crossEntropy(x, labels, { reduction: "none" }).shape], [0]);
});

// ---- nllLoss and crossEntropy: options beyond the defaults (the general kernels) ----

const CLASS_REDUCTIONS: readonly Reduction[] = ["mean", "sum", "none"];

/** Labels for `rows` rows of `classes`: seeded, with ignored (-100 or `ignore`) rows mixed in. */
function labelsOf(rows: number, classes: number, seed: number, ignore = -100): Float64Array {
  const values = randomArray(rows, seed, 0, classes).map(Math.floor);
  for (let n = 1; n < rows; n += 3) values[n] = ignore;
  return values;
}

interface ClassCase {
  name: string;
  weight?: boolean;
  ignoreIndex?: number;
  labelSmoothing?: number;
}

const CLASS_CASES: readonly ClassCase[] = [
  { name: "plain" },
  { name: "weighted", weight: true },
  { name: "ignoreIndex 2", ignoreIndex: 2 },
  { name: "smoothing 0.2", labelSmoothing: 0.2 },
  {
    name: "weighted, smoothing 0.1, ignoreIndex 0",
    weight: true,
    labelSmoothing: 0.1,
    ignoreIndex: 0,
  },
];

for (const [rows, classes] of [[5, 7], [1, 3], [4, 1]]) {
  Deno.test(`nllLoss and crossEntropy with weight, ignoreIndex, smoothing, every reduction ([${rows}, ${classes}])`, async () => {
    for (const testCase of CLASS_CASES) {
      for (const reduction of CLASS_REDUCTIONS) {
        const ignoreIndex = testCase.ignoreIndex ?? -100;
        const labels = labelsOf(rows, classes, rows * classes, ignoreIndex);
        const weightData = randomArray(classes, 9, 0.2, 2);
        const inputs = [
          { shape: [rows, classes], data: randomArray(rows * classes, rows + classes, -3, 3) },
          { shape: [rows], dtype: "i32" as const, data: labels },
          { shape: [classes], data: weightData, grad: false },
        ];
        const options = (w: Tensor) => ({
          weight: testCase.weight ? w : undefined,
          ignoreIndex: testCase.ignoreIndex,
          reduction,
        });
        const refOptions = {
          weight: testCase.weight ? weightData : undefined,
          ignoreIndex,
          reduction,
        };
        // A batch whose every row is ignored has a NaN mean (as PyTorch), and finite
        // differences of NaN compare with nothing: that corner has its own test below.
        if (reduction === "mean" && labels.every((t) => t === ignoreIndex)) continue;
        if (testCase.labelSmoothing === undefined) {
          await testOp({
            name: `nllLoss ${testCase.name} ${reduction} [${rows}, ${classes}]`,
            inputs,
            gpu: ([x, t, w]) => nllLoss(x, t, options(w)),
            reference: ([x, t]) => classLossReference(x, t, classes, false, refOptions),
            outputShape: reduction === "none" ? [rows] : [],
            forwardTolerance: { atol: 1e-5, rtol: 1e-5 },
          });
        }
        await testOp({
          name: `crossEntropy ${testCase.name} ${reduction} [${rows}, ${classes}]`,
          inputs,
          gpu: ([x, t, w]) =>
            crossEntropy(x, t, { ...options(w), labelSmoothing: testCase.labelSmoothing }),
          reference: ([x, t]) =>
            classLossReference(x, t, classes, true, {
              ...refOptions,
              labelSmoothing: testCase.labelSmoothing,
            }),
          outputShape: reduction === "none" ? [rows] : [],
          forwardTolerance: { atol: 1e-5, rtol: 1e-5 },
        });
      }
    }
  });
}

Deno.test("crossEntropy with probability targets: weight, smoothing, every reduction (target gradients too)", async () => {
  const [rows, classes] = [3, 5];
  for (const reduction of CLASS_REDUCTIONS) {
    for (const [weighted, labelSmoothing] of [[false, 0], [true, 0], [true, 0.3]] as const) {
      const weightData = randomArray(classes, 4, 0.2, 2);
      const probs = randomArray(rows * classes, 3, 0, 1);
      await testOp({
        name: `crossEntropy probabilities w=${weighted} s=${labelSmoothing} ${reduction}`,
        inputs: [
          { shape: [rows, classes], data: randomArray(rows * classes, 2, -3, 3) },
          { shape: [rows, classes], data: probs },
          { shape: [classes], data: weightData, grad: false },
        ],
        gpu: ([x, q, w]) =>
          crossEntropy(x, q, { weight: weighted ? w : undefined, labelSmoothing, reduction }),
        reference: ([x, q]) =>
          crossEntropyProbReference(x, q, classes, {
            weight: weighted ? weightData : undefined,
            labelSmoothing,
            reduction,
          }),
        outputShape: reduction === "none" ? [rows] : [],
        forwardTolerance: { atol: 1e-5, rtol: 1e-5 },
      });
    }
  }
});

Deno.test("nllLoss and crossEntropy: the K-dimensional case [N, C, d1, d2] and a 1-d input [C]", async () => {
  const shape = [2, 3, 2, 3];
  const [n, c] = shape;
  const inner = 6;
  for (const reduction of CLASS_REDUCTIONS) {
    const labels = labelsOf(n * inner, c, 5);
    const kInputs = [
      { shape, data: randomArray(n * c * inner, 6, -3, 3) },
      { shape: [n, 2, 3], dtype: "i32" as const, data: labels },
    ];
    await testOp({
      name: `crossEntropy [2, 3, 2, 3] ${reduction}`,
      inputs: kInputs,
      gpu: ([x, t]) => crossEntropy(x, t, { reduction, labelSmoothing: 0.1 }),
      reference: ([x, t]) =>
        classLossReference(classesLastReference(x, shape), t, c, true, {
          reduction,
          labelSmoothing: 0.1,
        }),
      outputShape: reduction === "none" ? [n, 2, 3] : [],
    });
    await testOp({
      name: `nllLoss [2, 3, 2, 3] ${reduction}`,
      inputs: kInputs,
      gpu: ([x, t]) => nllLoss(x, t, { reduction }),
      reference: ([x, t]) =>
        classLossReference(classesLastReference(x, shape), t, c, false, { reduction }),
      outputShape: reduction === "none" ? [n, 2, 3] : [],
    });
    await testOp({
      name: `crossEntropy probabilities [2, 3, 2, 3] ${reduction}`,
      inputs: [kInputs[0], { shape, data: randomArray(n * c * inner, 7, 0, 1) }],
      gpu: ([x, q]) => crossEntropy(x, q, { reduction }),
      reference: ([x, q]) =>
        crossEntropyProbReference(
          classesLastReference(x, shape),
          classesLastReference(q, shape),
          c,
          { reduction },
        ),
      outputShape: reduction === "none" ? [n, 2, 3] : [],
    });
    await testOp({
      name: `crossEntropy [5] with a 0-d target ${reduction}`,
      inputs: [{ shape: [5], data: randomArray(5, 8, -3, 3) }, {
        shape: [],
        dtype: "i32",
        data: [3],
      }],
      gpu: ([x, t]) => crossEntropy(x, t, { reduction }),
      reference: ([x, t]) => classLossReference(x, t, 5, true, { reduction }),
      outputShape: [],
    });
  }
});

Deno.test("class losses: out-of-range targets give 0 (PyTorch raises); all ignored gives NaN", async () => {
  // Out of range (not ignoreIndex): loss 0 and no gradient; counts 1 in an unweighted mean,
  // 0 in a weighted one. We cannot raise as PyTorch does without a readback.
  const labels = [5, 1, -3];
  await testOp({
    name: "crossEntropy out-of-range targets, sum",
    inputs: [{ shape: [3, 4], data: randomArray(12, 1, -2, 2) }, {
      shape: [3],
      dtype: "i32",
      data: labels,
    }],
    gpu: ([x, t]) => crossEntropy(x, t, { reduction: "none" }),
    reference: ([x, t]) => classLossReference(x, t, 4, true, { reduction: "none" }),
  });
  await testOp({
    name: "nllLoss out-of-range targets, weighted mean",
    inputs: [
      { shape: [3, 4], data: randomArray(12, 1, -2, 2) },
      { shape: [3], dtype: "i32", data: labels },
      { shape: [4], data: [1, 2, 3, 4], grad: false },
    ],
    gpu: ([x, t, w]) => nllLoss(x, t, { weight: w }),
    reference: ([x, t]) => classLossReference(x, t, 4, false, { weight: [1, 2, 3, 4] }),
  });
  const x = tensor(new Float32Array(6), [2, 3]);
  const ignored = tensor(new Int32Array([-100, -100]), [2], { dtype: "i32" });
  assertClose(await crossEntropy(x, ignored).toArray(), [NaN], { equalNan: true });
  assertClose(await nllLoss(x, ignored, { reduction: "sum" }).toArray(), [0]);
  assertClose(await crossEntropy(x, ignored, { labelSmoothing: 0.1 }).toArray(), [NaN], {
    equalNan: true,
  });
});

Deno.test("class losses refuse bad targets, weights and options, naming the op", () => {
  const x = tensor(new Float32Array(12), [4, 3]);
  assertThrows(
    () => crossEntropy(x, tensor(new Float32Array(4), [4])),
    /crossEntropy: target must be an i32 tensor of class indices \(or f32 probabilities of the input's shape\), got f32 of shape \[4\]/,
  );
  assertThrows(
    () => nllLoss(x, tensor(new Float32Array(12), [4, 3])),
    /nllLoss: target shape \[4, 3\] does not match logProbs \[4, 3\] \(needs \[4\]\)/,
  );
  assertThrows(
    () =>
      crossEntropy(
        tensor(new Float32Array(24), [2, 3, 4]),
        tensor(new Int32Array(2), [2], { dtype: "i32" }),
      ),
    /crossEntropy: target shape \[2\] does not match logits \[2, 3, 4\] \(needs \[2, 4\], or f32 probabilities of shape \[2, 3, 4\]\)/,
  );
  assertThrows(
    () =>
      crossEntropy(x, tensor(new Int32Array(4), [4], { dtype: "i32" }), {
        weight: tensor([1, 2], [2]),
      }),
    /crossEntropy: weight must be an f32 tensor of shape \[3\] \(one per class\), got f32 \[2\]/,
  );
  assertThrows(
    () => crossEntropy(x, x, { ignoreIndex: 1 }),
    /crossEntropy: ignoreIndex is not supported with probability targets/,
  );
  assertThrows(
    () => crossEntropy(x, x, { labelSmoothing: 1.5 }),
    /crossEntropy: labelSmoothing must be in \[0, 1\], got 1.5/,
  );
  assertThrows(
    () =>
      nllLoss(x, tensor(new Int32Array(4), [4], { dtype: "i32" }), {
        reduction: "batchmean" as Reduction,
      }),
    /nllLoss: reduction must be "mean", "sum" or "none"; got "batchmean"/,
  );
});

Deno.test("the losses leave no GPU buffer behind, with and without a gradient, without tidy", async () => {
  const footprint = async () => {
    await sync();
    const { liveBuffers, liveBytes } = memoryStats();
    return [liveBuffers, liveBytes];
  };
  const x4 = tensor(randomArray(24, 1, -2, 2), [2, 3, 4]);
  const p4 = tensor(randomArray(24, 2, 0.1, 0.9), [2, 3, 4]);
  const labels = tensor(new Int32Array([0, 2, -100, 1, 1, 0, 2, 2]), [2, 4], { dtype: "i32" });
  const x2 = tensor(randomArray(12, 3, -2, 2), [4, 3]);
  const rowLabels = tensor(new Int32Array([0, 2, -100, 1]), [4], { dtype: "i32" });
  const w3 = tensor([1, 2, 0.5], [3]);
  const w4 = tensor([1, 2, 0.5, 3], [4]);
  const calls: ((x: Tensor) => Tensor)[] = [
    (x) => mseLoss(x, p4),
    (x) => l1Loss(x, p4, { reduction: "none" }),
    (x) => binaryCrossEntropy(p4, x.reshape([2, 3, 4]), { weight: w4 }),
    (x) => binaryCrossEntropyWithLogits(x, p4, { posWeight: w4, reduction: "sum" }),
    (x) => klDiv(x, p4, { reduction: "batchmean" }),
    (x) => crossEntropy(x, labels),
    (x) => crossEntropy(x, labels, { reduction: "none", weight: w3 }),
    (x) => crossEntropy(x, p4, { labelSmoothing: 0.1 }),
    (x) => nllLoss(x, labels, { reduction: "sum" }),
  ];
  const rowCalls: ((x: Tensor) => Tensor)[] = [
    (x) => crossEntropy(x, rowLabels),
    (x) => nllLoss(x, rowLabels),
    (x) => crossEntropy(x, rowLabels, { weight: w3, reduction: "none" }),
  ];
  for (const [inputs, fns] of [[x4, calls], [x2, rowCalls]] as const) {
    for (const [k, fn] of fns.entries()) {
      for (const grad of [false, true]) {
        // Warm-up: pipelines, texture mirrors and params slots are made once.
        const warm = fn(inputs);
        warm.dispose();
        const before = await footprint();
        inputs.requiresGrad = grad;
        const loss = fn(inputs);
        if (grad) {
          const total = sum(loss);
          total.backward();
          total.dispose();
          inputs.grad?.dispose();
          inputs.grad = null;
        }
        loss.dispose();
        inputs.requiresGrad = false;
        deepEqual(await footprint(), before, `call ${k} of [${inputs.shape}], grad ${grad}`);
      }
    }
  }
});
