/**
 * `Conv2d`: 2-D convolution over NCHW input, as `torch.nn.Conv2d`.
 *
 * @module
 */

import { conv2d, type Conv2dPadding, type Size2d, sizePair } from "../ops/conv2d.ts";
import { formatShape, type Tensor } from "../tensor.ts";
import {
  biasUniformDefault,
  defaultGenerator,
  type InitOptions,
  kaimingUniformDefault,
} from "./init.ts";
import { Module } from "./module.ts";

/** How a convolution layer pads: only with zeros here (PyTorch's default). */
export type PaddingMode = "zeros";

/** Options of `Conv2d` (PyTorch's defaults). */
export interface Conv2dLayerOptions extends InitOptions {
  /** Step between output pixels: one or [height, width] (default 1). */
  stride?: Size2d;
  /** Zero padding (default 0): a number, [height, width], "valid", "same" or "full". */
  padding?: Conv2dPadding;
  /** Spacing between kernel taps: one or [height, width] (default 1). */
  dilation?: Size2d;
  /** Channel groups (default 1): both channel counts must be multiples of it. */
  groups?: number;
  /** Whether to add a learnable bias (default true). */
  bias?: boolean;
  /** Only "zeros" (the default) is supported. */
  paddingMode?: PaddingMode;
}

/** Checks a layer's channel counts, groups and padding mode (errors name the layer). */
export function checkLayerOptions(
  layer: string,
  inChannels: number,
  outChannels: number,
  groups: number,
  paddingMode: string,
): void {
  for (const [name, value] of [["inChannels", inChannels], ["outChannels", outChannels]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`${layer}: ${name} must be an integer >= 1, got ${value}`);
    }
  }
  if (!Number.isInteger(groups) || groups < 1) {
    throw new Error(`${layer}: groups must be an integer >= 1, got ${groups}`);
  }
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new Error(
      `${layer}: groups ${groups} must divide both inChannels (${inChannels}) and ` +
        `outChannels (${outChannels})`,
    );
  }
  if (paddingMode !== "zeros") {
    throw new Error(`${layer}: paddingMode "${paddingMode}" is not supported (only "zeros")`);
  }
}

/**
 * Checks a layer's input: `rank` dimensions with `channels` at dimension 1, or, unbatched as
 * PyTorch allows, `rank − 1` with `channels` first. Throws naming `layer`, the shape expected
 * (`expected`, batched) and the one given; returns whether the input is unbatched.
 */
export function checkLayerInput(
  layer: string,
  x: Tensor,
  rank: number,
  channels: number,
  expected: string,
): boolean {
  if (x.rank === rank && x.shape[1] === channels) return false;
  if (x.rank === rank - 1 && x.shape[0] === channels) return true;
  throw new Error(
    `${layer}: expected input ${expected} (or unbatched ${expected.replace("[N, ", "[")}), ` +
      `got ${formatShape(x.shape)}`,
  );
}

/** Runs `forward` on x, adding a batch dimension of 1 around it when `unbatched`. */
export function withBatch(
  x: Tensor,
  unbatched: boolean,
  forward: (batched: Tensor) => Tensor,
): Tensor {
  if (!unbatched) return forward(x);
  const out = forward(x.reshape([1, ...x.shape]));
  return out.reshape(out.shape.slice(1));
}

/**
 * A 2-D convolution layer, as `torch.nn.Conv2d`, on [N, C, H, W] tensors: square or
 * rectangular kernels, stride, padding (numbers, pairs, "valid", "same", "full"), dilation and
 * groups. Weight [out, in / groups, kH, kW] and bias [out], both initialised U(−1/√fanIn,
 * 1/√fanIn) with fanIn = in / groups · kH · kW, as PyTorch.
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
  /** Weight [out, in / groups, kH, kW]. */
  readonly weight: Tensor;
  /** Bias [out], or null. */
  readonly bias: Tensor | null;
  /** Stride, as given. */
  readonly stride: Size2d;
  /** Padding, as given. */
  readonly padding: Conv2dPadding;
  /** Dilation, as given. */
  readonly dilation: Size2d;
  /** Channel groups. */
  readonly groups: number;
  /** Padding mode ("zeros"). */
  readonly paddingMode: PaddingMode;

  /** A convolution from `inChannels` to `outChannels` with a `kernelSize` (k or [kH, kW]) kernel. */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: Size2d,
    options: Conv2dLayerOptions = {},
  ) {
    super();
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.dilation = options.dilation ?? 1;
    this.groups = options.groups ?? 1;
    this.paddingMode = options.paddingMode ?? "zeros";
    checkLayerOptions(this.describe(), inChannels, outChannels, this.groups, this.paddingMode);
    const [kh, kw] = sizePair(this.describe(), "kernelSize", kernelSize, 1);
    const rng = options.rng ?? defaultGenerator();
    const fanIn = inChannels / this.groups * kh * kw;
    this.weight = this.registerParameter(
      "weight",
      kaimingUniformDefault([outChannels, inChannels / this.groups, kh, kw], fanIn, rng),
    );
    this.bias = options.bias === false
      ? null
      : this.registerParameter("bias", biasUniformDefault(outChannels, fanIn, rng));
  }

  /** The layer as PyTorch prints it, for error messages. */
  private describe(): string {
    return `Conv2d(${this.inChannels}, ${this.outChannels}, kernelSize=${
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
      conv2d(batched, this.weight, {
        bias: this.bias,
        stride: this.stride,
        padding: this.padding,
        dilation: this.dilation,
        groups: this.groups,
      }));
  }
}
