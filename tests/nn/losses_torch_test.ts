/**
 * The losses against PyTorch 1.13 (`tests/pytorch/losses.py`): every loss, reduction and option
 * combination gives the same values and input gradients (and target gradients where PyTorch
 * has them and wgtorch computes them). Skipped, with a printed reason, without PyTorch.
 */
import {
  binaryCrossEntropy,
  binaryCrossEntropyWithLogits,
  huberLoss,
  klDiv,
  l1Loss,
  mseLoss,
  smoothL1Loss,
} from "../../nn/ops/losses.ts";
import { crossEntropy, nllLoss } from "../../nn/ops/softmax.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";

await gpuReady();

type Data = ArrayLike<number>;

interface TorchCase {
  name: string;
  /** torch.nn.functional's name and keyword options. */
  loss: string;
  options: Record<string, unknown>;
  shape: number[];
  x: Data;
  targetShape: number[];
  target: Data;
  targetDtype?: "f32" | "i32";
  weight?: { shape: number[]; data: Data };
  posWeight?: { shape: number[]; data: Data };
  /** Whether the target's gradient is compared too. */
  targetGrad: boolean;
  gpu: (x: Tensor, target: Tensor, weight?: Tensor, posWeight?: Tensor) => Tensor;
}

interface TorchAnswer {
  shape: number[];
  out: number[];
  x_grad: number[];
  target_grad?: number[];
}

const SHAPE = [3, 5, 7];
const SIZE = 105;
const REDUCTIONS = ["mean", "sum", "none"] as const;
const cases: TorchCase[] = [];

function pointwise(
  name: string,
  loss: string,
  x: Data,
  target: Data,
  options: Record<string, unknown>,
  gpu: TorchCase["gpu"],
  extra: Partial<TorchCase> = {},
): void {
  cases.push({
    name,
    loss,
    options,
    shape: SHAPE,
    x,
    targetShape: SHAPE,
    target,
    targetGrad: true,
    gpu,
    ...extra,
  });
}

const wide = randomArray(SIZE, 1, -3, 3);
const other = randomArray(SIZE, 2, -3, 3);
const probs = randomArray(SIZE, 3, 0.02, 0.98);
const labels01 = randomArray(SIZE, 4, 0, 1);
const weight7 = { shape: [7], data: randomArray(7, 5, 0.1, 2) };
const pos7 = { shape: [7], data: randomArray(7, 6, 0.2, 3) };
const logProbsLike = randomArray(SIZE, 7, -4, -0.01);

for (const reduction of REDUCTIONS) {
  pointwise(
    `mseLoss ${reduction}`,
    "mse_loss",
    wide,
    other,
    { reduction },
    (x, y) => mseLoss(x, y, { reduction }),
  );
  pointwise(
    `l1Loss ${reduction}`,
    "l1_loss",
    wide,
    other,
    { reduction },
    (x, y) => l1Loss(x, y, { reduction }),
  );
  for (const beta of [1, 0.5, 0]) {
    pointwise(`smoothL1Loss beta ${beta} ${reduction}`, "smooth_l1_loss", wide, other, {
      reduction,
      beta,
    }, (x, y) => smoothL1Loss(x, y, { reduction, beta }));
  }
  for (const delta of [1, 1.5]) {
    pointwise(`huberLoss delta ${delta} ${reduction}`, "huber_loss", wide, other, {
      reduction,
      delta,
    }, (x, y) => huberLoss(x, y, { reduction, delta }));
  }
  pointwise(`binaryCrossEntropy ${reduction}`, "binary_cross_entropy", probs, labels01, {
    reduction,
  }, (x, y) => binaryCrossEntropy(x, y, { reduction }));
  pointwise(
    `binaryCrossEntropy weight [7] ${reduction}`,
    "binary_cross_entropy",
    probs,
    labels01,
    { reduction },
    (x, y, weight) => binaryCrossEntropy(x, y, { reduction, weight }),
    { weight: weight7 },
  );
  for (const [w, p] of [[false, false], [true, false], [false, true], [true, true]]) {
    pointwise(
      `binaryCrossEntropyWithLogits weight ${w} posWeight ${p} ${reduction}`,
      "binary_cross_entropy_with_logits",
      wide.map((v) => v * 4),
      labels01,
      { reduction },
      (x, y, weight, posWeight) =>
        binaryCrossEntropyWithLogits(x, y, { reduction, weight, posWeight }),
      { weight: w ? weight7 : undefined, posWeight: p ? pos7 : undefined },
    );
  }
}
for (const reduction of [...REDUCTIONS, "batchmean"] as const) {
  pointwise(
    `klDiv ${reduction}`,
    "kl_div",
    logProbsLike,
    probs,
    { reduction },
    (x, y) => klDiv(x, y, { reduction }),
  );
  pointwise(
    `klDiv logTarget ${reduction}`,
    "kl_div",
    logProbsLike,
    probs.map(Math.log),
    { reduction, log_target: true },
    (x, y) => klDiv(x, y, { reduction, logTarget: true }),
  );
}

// Class losses: [6, 5] rows with ignored rows, the K-dimensional [2, 5, 3], probabilities.
const ROWS = 6, CLASSES = 5;
const logits = randomArray(ROWS * CLASSES, 8, -3, 3);
const indices = [0, 4, -100, 2, 1, 2];
const classWeight = { shape: [CLASSES], data: randomArray(CLASSES, 9, 0.2, 2) };
const classOptions = [
  {},
  { weight: true },
  { ignoreIndex: 2 },
  { labelSmoothing: 0.15 },
  { weight: true, labelSmoothing: 0.15, ignoreIndex: 1 },
];
for (const reduction of REDUCTIONS) {
  for (const option of classOptions) {
    const label = JSON.stringify(option);
    const torchOptions = {
      reduction,
      ...(option.ignoreIndex !== undefined ? { ignore_index: option.ignoreIndex } : {}),
      ...(option.labelSmoothing !== undefined ? { label_smoothing: option.labelSmoothing } : {}),
    };
    const base = {
      shape: [ROWS, CLASSES],
      targetShape: [ROWS],
      // PyTorch refuses -100 when ignoreIndex is another class: that row takes ignoreIndex.
      target: indices.map((t) => t === -100 ? option.ignoreIndex ?? -100 : t),
      targetDtype: "i32" as const,
      weight: option.weight ? classWeight : undefined,
      targetGrad: false,
    };
    cases.push({
      ...base,
      name: `crossEntropy ${label} ${reduction}`,
      loss: "cross_entropy",
      options: torchOptions,
      x: logits,
      gpu: (x, t, weight) =>
        crossEntropy(x, t, {
          reduction,
          weight,
          ignoreIndex: option.ignoreIndex,
          labelSmoothing: option.labelSmoothing,
        }),
    });
    if (option.labelSmoothing === undefined) {
      cases.push({
        ...base,
        name: `nllLoss ${label} ${reduction}`,
        loss: "nll_loss",
        options: torchOptions,
        x: logProbsLike.slice(0, ROWS * CLASSES),
        gpu: (x, t, weight) =>
          nllLoss(x, t, { reduction, weight, ignoreIndex: option.ignoreIndex }),
      });
    }
  }
  for (const [weighted, labelSmoothing] of [[false, 0], [true, 0], [true, 0.2]] as const) {
    cases.push({
      name:
        `crossEntropy probabilities weight ${weighted} smoothing ${labelSmoothing} ${reduction}`,
      loss: "cross_entropy",
      options: { reduction, label_smoothing: labelSmoothing },
      shape: [ROWS, CLASSES],
      x: logits,
      targetShape: [ROWS, CLASSES],
      target: randomArray(ROWS * CLASSES, 10, 0, 1),
      weight: weighted ? classWeight : undefined,
      targetGrad: true,
      gpu: (x, q, weight) => crossEntropy(x, q, { reduction, weight, labelSmoothing }),
    });
  }
  cases.push({
    name: `crossEntropy [2, 5, 3] weighted, smoothing 0.1 ${reduction}`,
    loss: "cross_entropy",
    options: { reduction, label_smoothing: 0.1 },
    shape: [2, CLASSES, 3],
    x: logits,
    targetShape: [2, 3],
    target: [4, -100, 0, 1, 3, 3],
    targetDtype: "i32",
    weight: classWeight,
    targetGrad: false,
    gpu: (x, t, weight) => crossEntropy(x, t, { reduction, weight, labelSmoothing: 0.1 }),
  });
  cases.push({
    name: `nllLoss [2, 5, 3] ${reduction}`,
    loss: "nll_loss",
    options: { reduction },
    shape: [2, CLASSES, 3],
    x: logProbsLike.slice(0, 30),
    targetShape: [2, 3],
    target: [4, -100, 0, 1, 3, 3],
    targetDtype: "i32",
    targetGrad: false,
    gpu: (x, t) => nllLoss(x, t, { reduction }),
  });
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

Deno.test("every loss, reduction and option matches PyTorch 1.13: values and gradients", async () => {
  if (skipWithoutTorch("losses vs PyTorch")) return;
  const grads = cases.map((c, k) => {
    // "none" gives one loss per element (pointwise) or per row ([N, d...]: class losses).
    const perRow = c.loss === "cross_entropy" || c.loss === "nll_loss";
    const none = perRow ? [c.shape[0], ...c.shape.slice(2)] : c.shape;
    return randomArray(c.options.reduction === "none" ? sizeOf(none) : 1, 100 + k);
  });
  const { answers } = await askTorch<{ answers: TorchAnswer[] }>("losses.py", {
    cases: cases.map((c, k) => ({
      loss: c.loss,
      options: c.options,
      x: c.x,
      shape: c.shape,
      target: c.target,
      target_shape: c.targetShape,
      target_dtype: c.targetDtype ?? "f32",
      weight: c.weight?.data ?? null,
      weight_shape: c.weight?.shape ?? null,
      pos_weight: c.posWeight?.data ?? null,
      pos_weight_shape: c.posWeight?.shape ?? null,
      grad: grads[k],
      target_grad: c.targetGrad,
    })),
  });
  for (const [k, c] of cases.entries()) {
    const answer = answers[k];
    const x = tensor(Float32Array.from(c.x), c.shape, { requiresGrad: true });
    const target = c.targetDtype === "i32"
      ? tensor(Int32Array.from(c.target), c.targetShape, { dtype: "i32" })
      : tensor(Float32Array.from(c.target), c.targetShape, { requiresGrad: c.targetGrad });
    const weight = c.weight && tensor(Float32Array.from(c.weight.data), c.weight.shape);
    const posWeight = c.posWeight && tensor(Float32Array.from(c.posWeight.data), c.posWeight.shape);
    const out = tidy(() => {
      const result = c.gpu(x, target, weight, posWeight);
      result.backward({ grad: tensor(Float32Array.from(grads[k]), result.shape) });
      return result;
    });
    assertClose([...out.shape], answer.shape, {}, `${c.name}: shape`);
    // Sums of 105 float32 terms, added in another order than PyTorch's: 1e-5 relative of the
    // sum can be exceeded by rounding alone, hence 1e-4 for "sum" (and "mean", the same sum).
    const reduced = c.options.reduction !== "none";
    const tolerance = { rtol: reduced ? 1e-4 : 1e-5, atol: 1e-6 };
    assertClose(await out.toArray(), answer.out, tolerance, `${c.name}: value`);
    assertClose(
      await x.grad!.toArray(),
      answer.x_grad,
      { rtol: 1e-5, atol: 1e-6 },
      `${c.name}: input gradient`,
    );
    if (c.targetGrad) {
      assertClose(
        await target.grad!.toArray(),
        answer.target_grad!,
        { rtol: 1e-5, atol: 1e-6 },
        `${c.name}: target gradient`,
      );
    }
    for (const t of [x, target, weight, posWeight, out]) t?.dispose();
  }
});
