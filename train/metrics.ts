/**
 * Loss functions and metrics for `fit`, `trainEpoch` and `evaluate`, shaped as in PyTorch:
 *
 * - a loss is `(output, target) => Tensor`, the batch's mean loss as a scalar `[]` (PyTorch's
 *   default `reduction="mean"`), e.g. `nllLoss` or `crossEntropy`;
 * - a metric is `(output, target) => Tensor`, the batch's **sum** as an f32 scalar `[]` (e.g. the
 *   number of correct predictions). The loop adds it into a sum kept on the GPU (no readback per
 *   step) and divides by the number of samples at the epoch's end, so the metric's value is a
 *   mean per sample. Built-ins: `accuracy`, and `meanLoss(loss)` for the mean of any loss.
 *
 * ```ts ignore
 * const mae: Metric = (output, target) => sum(abs(sub(output, target)));
 * await fit(model, { train, optimizer, epochs: 5, loss: mseLoss, metrics: { mae } });
 * ```
 *
 * @module
 */

import { kernel, u32 } from "../nn/gpu/kernel.ts";
import { scale } from "../nn/ops/elementwise.ts";
import { correctCount } from "../nn/ops/reduce.ts";
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
