/**
 * `Linear`: y = x · Wᵀ + b.
 *
 * @module
 */

import { linear } from "../ops/matmul.ts";
import type { Tensor } from "../tensor.ts";
import {
  biasUniformDefault,
  defaultGenerator,
  type InitOptions,
  kaimingUniformDefault,
} from "./init.ts";
import { Module } from "./module.ts";

/** Options of `Linear`. */
export interface LinearOptions extends InitOptions {
  /** Whether to add a learnable bias (default true). */
  bias?: boolean;
}

/**
 * A fully connected layer, as `torch.nn.Linear`: y = x Wᵀ + b, W of shape [out, in].
 *
 * @example
 * ```ts
 * import { init, Linear, manualSeed, ones } from "@wgtorch/wgtorch";
 *
 * await init();
 * manualSeed(0); // reproducible initial weights
 * const layer = new Linear(3, 2);
 * console.log(layer.weight.shape, layer.forward(ones([5, 3])).shape); // [2, 3] [5, 2]
 * ```
 */
export class Linear extends Module {
  /** Weight [out, in]. */
  readonly weight: Tensor;
  /** Bias [out], or null. */
  readonly bias: Tensor | null;

  /** A layer from `inFeatures` to `outFeatures`, initialised as PyTorch does. */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    const rng = options.rng ?? defaultGenerator();
    this.weight = this.registerParameter(
      "weight",
      kaimingUniformDefault([outFeatures, inFeatures], inFeatures, rng),
    );
    this.bias = options.bias === false
      ? null
      : this.registerParameter("bias", biasUniformDefault(outFeatures, inFeatures, rng));
  }

  /** x [*, in] → [*, out] (any leading dimensions, or none). */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
}
