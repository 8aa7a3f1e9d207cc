/**
 * `Conv2d`: 2-D convolution over NCHW input.
 *
 * @module
 */

import { conv2d } from "../ops/conv2d.ts";
import type { Tensor } from "../tensor.ts";
import {
  biasUniformDefault,
  defaultGenerator,
  type InitOptions,
  kaimingUniformDefault,
} from "./init.ts";
import { Module } from "./module.ts";

/** Options of `Conv2d`. */
export interface Conv2dLayerOptions extends InitOptions {
  /** Step between output pixels (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  /** Whether to add a learnable bias (default true). */
  bias?: boolean;
}

/**
 * A 2-D convolution layer, as `torch.nn.Conv2d` (square kernel, no dilation or groups), on
 * [N, C, H, W] tensors.
 *
 * @example 1 channel in, 4 out, a 3x3 kernel with padding 1 keeps 28x28
 * ```ts
 * import { Conv2d, init, zeros } from "@wgtorch/wgtorch";
 *
 * await init();
 * const conv = new Conv2d(1, 4, 3, { padding: 1 });
 * console.log(conv.forward(zeros([2, 1, 28, 28])).shape); // [2, 4, 28, 28]
 * ```
 */
export class Conv2d extends Module {
  /** Weight [out, in, k, k]. */
  readonly weight: Tensor;
  /** Bias [out], or null. */
  readonly bias: Tensor | null;
  /** Stride. */
  readonly stride: number;
  /** Padding. */
  readonly padding: number;

  /** A convolution from `inChannels` to `outChannels` with a `kernelSize`² kernel. */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: Conv2dLayerOptions = {},
  ) {
    super();
    const rng = options.rng ?? defaultGenerator();
    const fanIn = inChannels * kernelSize * kernelSize;
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.weight = this.registerParameter(
      "weight",
      kaimingUniformDefault([outChannels, inChannels, kernelSize, kernelSize], fanIn, rng),
    );
    this.bias = options.bias === false
      ? null
      : this.registerParameter("bias", biasUniformDefault(outChannels, fanIn, rng));
  }

  /** x [N, in, H, W] → [N, out, H', W']. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias ?? undefined, {
      stride: this.stride,
      padding: this.padding,
    });
  }
}
