/**
 * `LayerNorm` and `GroupNorm`, as PyTorch's: parameters `weight` (1 at start) and `bias` (0 at
 * start) in the state dict.
 *
 * @module
 */

import { groupNorm, layerNorm, normalizedShapeOf } from "../ops/norm.ts";
import { formatShape, type Tensor } from "../tensor.ts";
import { constant } from "./init.ts";
import { Module } from "./module.ts";

/** Options of `LayerNorm`. */
export interface LayerNormLayerOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learnable `weight` and `bias` of shape `normalizedShape` (default true). */
  elementwiseAffine?: boolean;
}

/**
 * Layer normalisation over the last dimensions, as `torch.nn.LayerNorm`: inputs [*,
 * ...normalizedShape].
 *
 * @example
 * ```ts
 * import { init, LayerNorm, randNormal } from "@wgtorch/wgtorch";
 *
 * await init();
 * const norm = new LayerNorm(16);
 * console.log(Object.keys(norm.stateDict())); // ["weight", "bias"]
 * console.log(norm.forward(randNormal([4, 16])).shape); // [4, 16]
 * ```
 */
export class LayerNorm extends Module {
  /** The normalised trailing shape. */
  readonly normalizedShape: readonly number[];
  /** Added to the variance. */
  readonly eps: number;
  /** Scale of shape `normalizedShape` (1 at start), or null. */
  readonly weight: Tensor | null;
  /** Shift of shape `normalizedShape` (0 at start), or null. */
  readonly bias: Tensor | null;

  /** A layer normalising over the trailing `normalizedShape` (a size or a shape). */
  constructor(normalizedShape: number | readonly number[], options: LayerNormLayerOptions = {}) {
    super();
    this.normalizedShape = Object.freeze(normalizedShapeOf("LayerNorm", normalizedShape));
    this.eps = options.eps ?? 1e-5;
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine
      ? this.registerParameter("weight", constant(this.normalizedShape, 1))
      : null;
    this.bias = affine ? this.registerParameter("bias", constant(this.normalizedShape, 0)) : null;
  }

  /** Normalises each row of x [*, ...normalizedShape]. */
  forward(x: Tensor): Tensor {
    const shape = this.normalizedShape;
    const trailing = x.shape.slice(x.rank - shape.length);
    if (x.rank < shape.length || trailing.some((d, k) => d !== shape[k])) {
      throw new Error(
        `LayerNorm: input ${formatShape(x.shape)} does not fit (needs [*, ${shape.join(", ")}], ` +
          `normalizedShape ${formatShape(shape)})`,
      );
    }
    return layerNorm(x, shape, {
      weight: this.weight ?? undefined,
      bias: this.bias ?? undefined,
      eps: this.eps,
    });
  }
}

/** Options of `GroupNorm`. */
export interface GroupNormLayerOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learnable per-channel `weight` and `bias` (default true). */
  affine?: boolean;
}

/** Group normalisation, as `torch.nn.GroupNorm`: inputs [N, C, *]. */
export class GroupNorm extends Module {
  /** Added to the variance. */
  readonly eps: number;
  /** Scale [C] (1 at start), or null. */
  readonly weight: Tensor | null;
  /** Shift [C] (0 at start), or null. */
  readonly bias: Tensor | null;

  /** A layer normalising `numChannels` channels in `numGroups` groups (which must divide them). */
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    options: GroupNormLayerOptions = {},
  ) {
    super();
    if (
      !Number.isInteger(numGroups) || !Number.isInteger(numChannels) || numGroups < 1 ||
      numChannels < 1 || numChannels % numGroups !== 0
    ) {
      throw new Error(
        `GroupNorm: numChannels ${numChannels} must be divisible by numGroups ${numGroups} ` +
          `(both positive integers)`,
      );
    }
    this.eps = options.eps ?? 1e-5;
    const affine = options.affine ?? true;
    this.weight = affine ? this.registerParameter("weight", constant([numChannels], 1)) : null;
    this.bias = affine ? this.registerParameter("bias", constant([numChannels], 0)) : null;
  }

  /** Normalises x [N, C, *] per sample and group. */
  forward(x: Tensor): Tensor {
    if (x.rank < 2 || x.shape[1] !== this.numChannels) {
      throw new Error(
        `GroupNorm: input ${formatShape(x.shape)} does not fit (needs [N, ${this.numChannels}, *])`,
      );
    }
    return groupNorm(x, this.numGroups, {
      weight: this.weight ?? undefined,
      bias: this.bias ?? undefined,
      eps: this.eps,
    });
  }
}
