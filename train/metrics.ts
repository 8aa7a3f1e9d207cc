/**
 * Loss functions and metrics for `fit`, `trainEpoch` and `evaluate`, shaped as in PyTorch:
 *
 * - a loss is `(output, target) => Tensor`, the batch's mean loss as a scalar `[]` (PyTorch's
 *   default `reduction="mean"`), e.g. `nllLoss` or `crossEntropy`;
 * - a metric is `(output, target) => Tensor`, the batch's **sum** as an f32 scalar `[]` (e.g. the
 *   number of correct predictions). The loop adds it into a sum kept on the GPU (no readback per
 *   step) and divides by the number of samples at the epoch's end, so the metric's value is a
 *   mean per sample. Built-ins: `accuracy`, `topKAccuracy(k)`, `mse`, `mae` (one small kernel
 *   each per batch), and `meanLoss(loss)` for the mean of any loss.
 *
 * ```ts ignore
 * const mae: Metric = (output, target) => sum(abs(sub(output, target)));
 * await fit(model, { train, optimizer, epochs: 5, loss: mseLoss, metrics: { mae } });
 * ```
 *
 * @module
 */

import { f32, kernel, u32 } from "../nn/gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../nn/gpu/program.ts";
import { scale } from "../nn/ops/elementwise.ts";
import { isNan } from "../nn/ops/nan_wgsl.ts";
import { checkTarget, correctCount, workgroupSumWgsl } from "../nn/ops/reduce.ts";
import { keep } from "../nn/scope.ts";
import { dispatch, readBuffer, writeBuffer } from "../nn/gpu/stream.ts";
import { formatShape, Tensor } from "../nn/tensor.ts";

/**
 * A loss function: the model's output and the batch's target to the batch's mean loss, a
 * scalar f32 tensor `[]`, differentiable with respect to the output (e.g. `nllLoss`).
 */
export type LossFunction = (output: Tensor, target: Tensor) => Tensor;

/**
 * A metric: the model's output and the batch's target to the batch's **sum** of the metric over
 * its samples, a scalar f32 tensor `[]` (e.g. `accuracy` gives the count of correct rows). The
 * sums are accumulated on the GPU and divided by the number of samples at the epoch's end.
 * Computed without a graph (`noGrad`), after the backward pass and before the optimizer step.
 */
export type Metric = (output: Tensor, target: Tensor) => Tensor;

/**
 * Classification accuracy: how many rows of `output` [N, C] have their first maximum at
 * `target` [N] (i32). As a metric its epoch value is the fraction classified correctly.
 * `fit`, `trainEpoch` and `evaluate` count it inside their fused per-batch kernel, at no cost.
 */
export const accuracy: Metric = (output: Tensor, target: Tensor): Tensor =>
  correctCount(output, target);

/**
 * The mean of `loss` per sample as a metric: each batch adds `loss(output, target) · N` (N =
 * `output.shape[0]`), so the epoch value is the loss averaged over samples, e.g.
 * `metrics: { nll: meanLoss(nllLoss) }` next to another training loss.
 */
export function meanLoss(loss: LossFunction): Metric {
  return (output: Tensor, target: Tensor): Tensor => scale(loss(output, target), output.shape[0]);
}

/** Options of the error-sum kernel: `size` elements, `perSample` of them per sample. */
interface ErrorSumOptions {
  size: number;
  perSample: number;
  squared: boolean;
}

/**
 * `out[0]` = sum over the elements of (x - y)^2 (or |x - y|), divided by the elements per
 * sample: the batch's sum of per-sample mean errors. One workgroup; the last vector masked.
 */
const ERROR_SUM: KernelSpec<ErrorSumOptions> = {
  name: "metric_error_sum",
  key: ({ size, perSample, squared }) => `${size}_${perSample}_${squared ? "sq" : "abs"}`,
  bindings: () => [
    { name: "x", role: "input", readOnce: true },
    { name: "y", role: "input", readOnce: true },
    { name: "out", role: "write" },
  ],
  plan: (_, policy) => ({ workgroupSize: policy.elementwiseWorkgroup, groups: 1 }),
  prelude: ({ size, perSample }, { plan }) => /* wgsl */ `
const SIZE: u32 = ${u32(size)};
const VECTORS: u32 = ${u32(Math.ceil(size / 4))};
const PER_SAMPLE: f32 = ${f32(perSample)};
${workgroupSumWgsl(plan.workgroupSize)}`,
  body: ({ squared }, { plan }) => /* wgsl */ `
  var acc = vec4<f32>(0.0);
  for (var j = lid; j < VECTORS; j += ${u32(plan.workgroupSize)}) {
    // Past SIZE the last vector holds padding: masked.
    let inside = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(SIZE);
    let d = select(vec4<f32>(0.0), xVec4(j) - yVec4(j), inside);
    acc += ${squared ? "d * d" : "abs(d)"};
  }
  let total = workgroupSum(lid, (acc.x + acc.y) + (acc.z + acc.w));
  if (lid == 0u) { out[0] = total / PER_SAMPLE; }`,
};

function errorSum(op: string, output: Tensor, target: Tensor, squared: boolean): Tensor {
  if (output.dtype !== "f32" || target.dtype !== "f32") {
    throw new Error(
      `${op}: output and target must be f32, got ${output.dtype} and ${target.dtype}`,
    );
  }
  if (
    output.rank === 0 || output.rank !== target.rank ||
    output.shape.some((size, d) => size !== target.shape[d])
  ) {
    throw new Error(
      `${op}: output ${formatShape(output.shape)} and target ${formatShape(target.shape)} ` +
        "must have the same shape [N, ...]",
    );
  }
  const out = Tensor.empty([]);
  const rows = output.shape[0];
  const perSample = rows > 0 ? Math.max(1, output.size / rows) : 1;
  runKernel(ERROR_SUM, { size: output.size, perSample, squared }, { x: output, y: target, out });
  return out;
}

/**
 * Mean squared error as a metric (Keras' `mse`): each batch adds the sum over its samples of
 * each sample's mean of `(output - target)^2` over its elements, so the epoch value is the mean
 * over every element, as `mseLoss`. `output` and `target` are f32 of the same shape [N, ...].
 * One kernel per batch, nothing read back.
 */
export const mse: Metric = (output: Tensor, target: Tensor): Tensor =>
  errorSum("mse", output, target, true);

/**
 * Mean absolute error as a metric (Keras' `mae`): as `mse` with `|output - target|`, so the
 * epoch value is `l1Loss` over the epoch.
 */
export const mae: Metric = (output: Tensor, target: Tensor): Tensor =>
  errorSum("mae", output, target, false);

/**
 * How many rows have their label among their `K` best scores. The label's rank is the count of
 * scores ahead of it: NaN before any number, then larger values, then equal values at a lower
 * index (so `K` = 1 is `accuracy`'s first maximum). A label outside [0, C) counts as wrong.
 */
const TOP_K_COUNT: KernelSpec<{ rows: number; classes: number; k: number }> = {
  name: "metric_top_k_count",
  key: ({ rows, classes, k }) => `${rows}x${classes}_k${k}`,
  bindings: () => [
    { name: "x", role: "input" },
    { name: "labels", role: "read", type: "i32" },
    { name: "out", role: "write" },
  ],
  plan: (_, policy) => ({ workgroupSize: policy.elementwiseWorkgroup, groups: 1 }),
  prelude: ({ rows, classes, k }, { plan }) => /* wgsl */ `
const ROWS: u32 = ${u32(rows)};
const C: u32 = ${u32(classes)};
const K: u32 = ${u32(k)};
${workgroupSumWgsl(plan.workgroupSize)}

fn inTopK(row: u32) -> bool {
  let label = labels[row];
  if (label < 0 || label >= i32(C)) { return false; }
  let base = row * C;
  let t = xAt(base + u32(label));
  let tNan = ${isNan("t")};
  var rank = 0u;
  for (var j = 0u; j < C; j++) {
    let v = xAt(base + j);
    let vNan = ${isNan("v")};
    let before = j < u32(label);
    // Bit tests, not v != v: WGSL lets compilers assume floats are finite.
    var ahead = false;
    if (tNan) {
      ahead = vNan && before;
    } else if (vNan) {
      ahead = true;
    } else {
      ahead = v > t || (v == t && before);
    }
    if (ahead) { rank += 1u; }
  }
  return rank < K;
}`,
  body: (_, { plan }) => /* wgsl */ `
  var count = 0.0;
  for (var row = lid; row < ROWS; row += ${u32(plan.workgroupSize)}) {
    if (inTopK(row)) { count += 1.0; }
  }
  let total = workgroupSum(lid, count);
  if (lid == 0u) { out[0] = total; }`,
};

/**
 * Top-k accuracy as a metric (Keras' `top_k_categorical_accuracy` with integer labels,
 * torchmetrics' `top_k`): how many rows of `output` [N, C] have `target` [N] (i32) among their
 * `k` highest scores; the epoch value is the fraction. Ties are broken by the lower class index
 * (as `accuracy`'s first maximum, so `topKAccuracy(1)` equals `accuracy`) and NaN scores rank
 * first (as `torch.topk`); PyTorch does not specify which tied class `topk` keeps. A label
 * outside [0, C) counts as wrong. One kernel per batch, nothing read back.
 *
 * @example
 * ```ts ignore
 * await fit(model, { train, optimizer, epochs: 5, metrics: { accuracy, top5: topKAccuracy(5) } });
 * ```
 */
export function topKAccuracy(k: number): Metric {
  if (!Number.isInteger(k) || k < 1) {
    throw new RangeError(`topKAccuracy: k must be an integer >= 1, got ${k}`);
  }
  return (output: Tensor, target: Tensor): Tensor => {
    checkTarget(`topKAccuracy(${k})`, output, target, "output");
    const [rows, classes] = output.shape;
    const out = Tensor.empty([]);
    runKernel(TOP_K_COUNT, { rows, classes, k }, { x: output, labels: target, out });
    return out;
  };
}

/** Most scalars one accumulation dispatch binds (with the sums: 8 storage buffers). */
const SCALARS_PER_DISPATCH = 7;

function addKernel(count: number, base: number) {
  const bindings = Array.from(
    { length: count },
    (_, k) => `@group(0) @binding(${k}) var<storage, read> s${k}: array<f32>;`,
  ).join("\n");
  const adds = Array.from({ length: count }, (_, k) => `sums[${u32(base + k)}] += s${k}[0];`)
    .join("\n  ");
  return kernel({
    name: `metric_sums_add_${count}_at_${base}`,
    code: /* wgsl */ `
${bindings}
@group(0) @binding(${count}) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(1)
fn main() {
  ${adds}
}`,
    bindings: [...Array.from({ length: count }, () => "read" as const), "read_write"],
  });
}

/**
 * Named per-sample sums kept on the GPU (internal to the training loop): `add` encodes one small
 * dispatch per 7 metrics per batch; `read` reads them back once.
 */
export class MetricSums {
  /** The metrics' names, in slot order. */
  readonly names: readonly string[];
  readonly #sums: Tensor;

  /** Zeroed sums for `names` (call `init()` first). Lives until `dispose()`. */
  constructor(names: readonly string[]) {
    this.names = [...names];
    this.#sums = keep(Tensor.empty([Math.max(1, names.length)]));
    this.reset();
  }

  /** Zeroes the sums (ordered after every dispatch encoded so far). */
  reset(): void {
    writeBuffer(this.#sums.buffer, new Float32Array(Math.max(1, this.names.length)));
  }

  /** Adds one batch's values, in the order of `names`; each must be an f32 scalar. */
  add(values: readonly Tensor[], where: string): void {
    if (values.length !== this.names.length) {
      throw new Error(`${where}: ${values.length} metric values for ${this.names.length} metrics`);
    }
    for (const [i, t] of values.entries()) {
      if (t.size !== 1 || t.dtype !== "f32") {
        throw new Error(
          `${where}: metric "${this.names[i]}" must return the batch's sum as an f32 scalar ` +
            `tensor [], got ${t.dtype} ${formatShape(t.shape)}`,
        );
      }
    }
    for (let base = 0; base < values.length; base += SCALARS_PER_DISPATCH) {
      const chunk = values.slice(base, base + SCALARS_PER_DISPATCH);
      dispatch(
        addKernel(chunk.length, base),
        [...chunk.map((t) => t.buffer), this.#sums.buffer],
        [1],
      );
    }
  }

  /** The sums by name (one readback, ordered after every dispatch encoded so far). */
  async read(): Promise<Record<string, number>> {
    if (this.names.length === 0) return {};
    const values = new Float32Array(await readBuffer(this.#sums.buffer, this.names.length * 4));
    return Object.fromEntries(this.names.map((name, i) => [name, values[i]]));
  }

  /** Frees the buffer. */
  dispose(): void {
    this.#sums.dispose();
  }
}
