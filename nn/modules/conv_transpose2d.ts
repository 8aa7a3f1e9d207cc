/**
 * `ConvTranspose2d`: transposed 2-D convolution over NCHW input, as `torch.nn.ConvTranspose2d`.
 *
 * @module
 */

import { type Size2d, sizePair } from "../ops/conv2d.ts";
import { convTranspose2d } from "../ops/conv_transpose2d.ts";
import type { Tensor } from "../tensor.ts";
import { checkLayerInput, checkLayerOptions, type PaddingMode, withBatch } from "./conv2d.ts";
import {
  biasUniformDefault,
  defaultGenerator,
  type InitOptions,
  kaimingUniformDefault,
} from "./init.ts";
import { Module } from "./module.ts";

/** Options of `ConvTranspose2d` (PyTorch's defaults). */
export interface ConvTranspose2dLayerOptions extends InitOptions {
  /** Stride: one or [height, width] (default 1). */
  stride?: Size2d;
  /** Padding of the convolution it transposes: one or [height, width] (default 0). */
  padding?: Size2d;
  /** Rows and columns added at the bottom and right of the output (default 0). */
  outputPadding?: Size2d;
  /** Channel groups (default 1): both channel counts must be multiples of it. */
  groups?: number;
  /** Whether to add a learnable bias (default true). */
  bias?: boolean;
  /** Spacing between kernel taps: one or [height, width] (default 1). */
  dilation?: Size2d;
  /** Only "zeros" (the default) is supported. */
  paddingMode?: PaddingMode;
}

/**
 * A transposed 2-D convolution layer, as `torch.nn.ConvTranspose2d`, on [N, C, H, W] tensors.
 * Weight [in, out / groups, kH, kW] and bias [out], both initialised U(−1/√fanIn, 1/√fanIn)
 * with fanIn = out / groups · kH · kW (PyTorch computes it from the weight's second dimension).
 */
export class ConvTranspose2d extends Module {
  /** Weight [in, out / groups, kH, kW]. */
  readonly weight: Tensor;
  /** Bias [out], or null. */
  readonly bias: Tensor | null;
  /** Stride, as given. */
  readonly stride: Size2d;
  /** Padding, as given. */
  readonly padding: Size2d;
  /** Output padding, as given. */
  readonly outputPadding: Size2d;
  /** Channel groups. */
  readonly groups: number;
  /** Dilation, as given. */
  readonly dilation: Size2d;
  /** Padding mode ("zeros"). */
  readonly paddingMode: PaddingMode;

  /** A transposed convolution from `inChannels` to `outChannels`, kernel k or [kH, kW]. */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: Size2d,
    options: ConvTranspose2dLayerOptions = {},
  ) {
    super();
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.outputPadding = options.outputPadding ?? 0;
    this.groups = options.groups ?? 1;
    this.dilation = options.dilation ?? 1;
    this.paddingMode = options.paddingMode ?? "zeros";
    checkLayerOptions(this.describe(), inChannels, outChannels, this.groups, this.paddingMode);
    const [kh, kw] = sizePair(this.describe(), "kernelSize", kernelSize, 1);
    const rng = options.rng ?? defaultGenerator();
    const fanIn = outChannels / this.groups * kh * kw;
    this.weight = this.registerParameter(
      "weight",
      kaimingUniformDefault([inChannels, outChannels / this.groups, kh, kw], fanIn, rng),
    );
    this.bias = options.bias === false
      ? null
      : this.registerParameter("bias", biasUniformDefault(outChannels, fanIn, rng));
  }

  /** The layer as PyTorch prints it, for error messages. */
  private describe(): string {
    return `ConvTranspose2d(${this.inChannels}, ${this.outChannels}, kernelSize=${
      JSON.stringify(this.kernelSize)
    })`;
  }

  /** x [N, in, H, W] → [N, out, H', W'] (or unbatched [in, H, W] → [out, H', W']). */
  forward(x: Tensor): Tensor {
    const unbatched = checkLayerInput(
      this.describe(),
      x,
      4,
      this.inChannels,
      `[N, ${this.inChannels}, H, W]`,
    );
    return withBatch(x, unbatched, (batched) =>
      convTranspose2d(batched, this.weight, {
        bias: this.bias,
        stride: this.stride,
        padding: this.padding,
        outputPadding: this.outputPadding,
        groups: this.groups,
        dilation: this.dilation,
      }));
  }
}
