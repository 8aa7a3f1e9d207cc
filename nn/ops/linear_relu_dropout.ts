/**
 * Linear → ReLU → Dropout as one op (the study's MLP layers). Forward, relu and dropout's mask
 * run in the matmul kernel's stores, so the sums are written once, already activated and
 * masked: two kernels, their texture copies and two full-size writes less than the ops in
 * sequence. Backward, one kernel gives the gradient of the sums from the output's gradient, the
 * output and the mask (recomputed from the seed, as `dropout`'s backward does), in place of
 * dropout's and relu's backward kernels; then `linear`'s backward.
 *
 * Values are those of `dropout(relu(linear(x, weight, bias)), options)`, bit for bit, and so
 * are the gradients wherever the output's gradient is finite. Where it is not (±inf or NaN) at a
 * dropped element, the ops in sequence give 0 if relu cut the element and NaN otherwise; the
 * output cannot tell those apart, so this op gives NaN: it may surface a NaN the sequence masks,
 * never the reverse.
 *
 * @module
 */

import { itemLoop, type LoopPlan, loopPlan } from "../gpu/item_loop.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";
import {
  checkDropoutOptions,
  dropout,
  type DropoutOptions,
  MASK_KEY_WGSL,
  maskPrelude,
} from "./dropout.ts";
import { relu } from "./elementwise.ts";
import { linear, linearWithEpilogue } from "./matmul.ts";
import { reluGrad4 } from "./nan_wgsl.ts";

/** Options of `linearReluDropout`. */
export interface LinearReluDropoutOptions {
  /** The bias, [out], if any. */
  bias?: Tensor;
  /** Dropout's options (probability, mode, seed), as `dropout` takes them. */
  dropout: DropoutOptions;
}

/**
 * The gradient of the sums: where kept, relu's backward of grad / (1 - p) given the output
 * (which is positive, or NaN, exactly where relu's output is); where dropped, grad * 0.
 */
const RELU_DROPOUT_BACKWARD: KernelSpec<{ size: number; p: number }, LoopPlan> = {
  name: "relu_dropout_backward",
  key: ({ size, p }) => `${size}_p${p}`,
  bindings: () => [
    { name: "grad", role: "input", readOnce: true },
    { name: "out", role: "input", readOnce: true },
    { name: "result", role: "write", type: "vec4<f32>" },
  ],
  plan: ({ size }, policy) => loopPlan(Math.ceil(size / 4), policy),
  params: "seed: u32",
  prelude: ({ p }) => maskPrelude(p),
  body: ({ size }, { plan }) => /* wgsl */ `
  let key = ${MASK_KEY_WGSL};${
    // Elements 4j..4j+3; the last vector may run into the buffer's padding, which nothing reads.
    itemLoop(
      Math.ceil(size / 4),
      plan,
      `
      let i = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
      let keep = kept4(i, key);
      // As dropout's backward, a multiply (a non-constant 0, which no compiler folds away), so
      // that a dropped NaN or infinity gives NaN; then relu's backward where kept.
      let masked = gradVec4(j) * select(vec4<f32>(0.0), vec4<f32>(SCALE), keep);
      let y = outVec4(j);
      let passed = ${reluGrad4("masked", "y")};
      result[j] = select(masked, passed, keep);`,
      "j",
    )}`,
};

function reluDropoutBackward(grad: Tensor, out: Tensor, p: number, seed: number): Tensor {
  const result = Tensor.empty(out.shape);
  runKernel(RELU_DROPOUT_BACKWARD, { size: out.size, p }, { grad, out, result }, {
    params: new Uint32Array([seed]),
  });
  return result;
}

/**
 * `dropout(relu(linear(x, weight, bias)), options.dropout)` in one kernel forward and one
 * elementwise kernel backward (before `linear`'s), where dropout trains with 0 < p < 1;
 * otherwise the ops in sequence.
 *
 * @param x the input, [*, in]
 * @param weight the weight, [out, in]
 * @returns [*, out]
 */
export function linearReluDropout(
  x: Tensor,
  weight: Tensor,
  options: LinearReluDropoutOptions,
): Tensor {
  const { bias, dropout: dropoutOptions } = options;
  checkDropoutOptions(dropoutOptions);
  const { p, training, seed } = dropoutOptions;
  if (!training || p === 0 || p === 1) {
    return dropout(relu(linear(x, weight, bias)), dropoutOptions);
  }
  return linearWithEpilogue(x, weight, {
    bias,
    relu: true,
    dropout: { p, seed },
    sumsGrad: (grad, out) => reluDropoutBackward(grad, out, p, seed),
    name: "linear_relu_dropout",
  });
}
