/**
 * `Conv1d`: 1-D convolution over NCL input, as `torch.nn.Conv1d`.
 *
 * @module
 */

import { conv1d, type Conv1dPadding } from "../ops/conv1d.ts";
import type { Tensor } from "../tensor.ts";
import { checkLayerInput, checkLayerOptions, type PaddingMode, withBatch } from "./conv2d.ts";
import {
  biasUniformDefault,
  defaultGenerator,
  type InitOptions,
  kaimingUniformDefault,
} from "./init.ts";
import { Module } from "./module.ts";

/** Options of `Conv1d` (PyTorch's defaults). */
export interface Conv1dLayerOptions extends InitOptions {
  /** Step between outputs (default 1). */
  stride?: number;
  /** Zero padding (default 0): a number, "valid", "same" or "full". */
  padding?: Conv1dPadding;
  /** Spacing between kernel taps (default 1). */
  dilation?: number;
  /** Channel groups (default 1): both channel counts must be multiples of it. */
  groups?: number;
  /** Whether to add a learnable bias (default true). */
  bias?: boolean;
  /** Only "zeros" (the default) is supported. */
  paddingMode?: PaddingMode;
}

/**
 * A 1-D convolution layer, as `torch.nn.Conv1d`, on [N, C, L] tensors. Weight
 * [out, in / groups, k] and bias [out], both initialised U(−1/√fanIn, 1/√fanIn) with
 * fanIn = in / groups · k, as PyTorch.
 */
export class Conv1d extends Module {
  /** Weight [out, in / groups, k]. */
  readonly weight: Tensor;
  /** Bias [out], or null. */
  readonly bias: Tensor | null;
  /** Stride. */
  readonly stride: number;
  /** Padding, as given. */
  readonly padding: Conv1dPadding;
  /** Dilation. */
  readonly dilation: number;
  /** Channel groups. */
  readonly groups: number;
  /** Padding mode ("zeros"). */
  readonly paddingMode: PaddingMode;

  /** A convolution from `inChannels` to `outChannels` with a kernel of `kernelSize` taps. */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: Conv1dLayerOptions = {},
  ) {
    super();
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.dilation = options.dilation ?? 1;
    this.groups = options.groups ?? 1;
    this.paddingMode = options.paddingMode ?? "zeros";
    checkLayerOptions(this.describe(), inChannels, outChannels, this.groups, this.paddingMode);
    if (!Number.isInteger(kernelSize) || kernelSize < 1) {
      throw new Error(`${this.describe()}: kernelSize must be an integer >= 1`);
    }
    const rng = options.rng ?? defaultGenerator();
    const fanIn = inChannels / this.groups * kernelSize;
    this.weight = this.registerParameter(
      "weight",
      kaimingUniformDefault([outChannels, inChannels / this.groups, kernelSize], fanIn, rng),
    );
    this.bias = options.bias === false
      ? null
      : this.registerParameter("bias", biasUniformDefault(outChannels, fanIn, rng));
  }

  /** The layer as PyTorch prints it, for error messages. */
  private describe(): string {
    return `Conv1d(${this.inChannels}, ${this.outChannels}, kernelSize=${this.kernelSize})`;
  }

  /** x [N, in, L] → [N, out, L'] (or unbatched [in, L] → [out, L']). */
  forward(x: Tensor): Tensor {
    const unbatched = checkLayerInput(
      this.describe(),
      x,
      3,
      this.inChannels,
      `[N, ${this.inChannels}, L]`,
    );
    return withBatch(x, unbatched, (batched) =>
      conv1d(batched, this.weight, {
        bias: this.bias,
        stride: this.stride,
        padding: this.padding,
        dilation: this.dilation,
        groups: this.groups,
      }));
  }
}
