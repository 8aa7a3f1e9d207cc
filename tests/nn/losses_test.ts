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
import {
  broadcastReference,
  type PointwiseReference,
  pointwiseReference,
  reduceReference,
} from "./reference/losses.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
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
});
