/**
 * Pooling layers: `MaxPool2d`, `AvgPool2d` and `AdaptiveAvgPool2d`, as PyTorch's, with the
 * options of the functional ops (`maxPool2d`, `avgPool2d`, `adaptiveAvgPool2d`). Each checks
 * its input's rank itself, so that errors name the layer.
 *
 * @module
 */

import { adaptiveAvgPool2d, avgPool2d, type AvgPoolOptions } from "../ops/avg_pool.ts";
import { maxPool2d, maxPool2dWithIndices, type MaxPoolOptions } from "../ops/max_pool.ts";
import { maxUnpool2d, type MaxUnpoolOptions } from "../ops/max_unpool.ts";
import type { Size2d } from "../ops/pool_geometry.ts";
import { formatShape, type Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

/** Options of `MaxPool2d`: `maxPool2d`'s, less the kernel size (a constructor argument). */
export type MaxPool2dOptions = Omit<MaxPoolOptions, "kernelSize" | "relu">;

/** Options of `MaxUnpool2d`: the pooling's stride and padding. */
export type MaxUnpool2dOptions = Pick<MaxUnpoolOptions, "stride" | "padding">;

/** Options of `AvgPool2d`: `avgPool2d`'s, less the kernel size (a constructor argument). */
export type AvgPool2dOptions = Omit<AvgPoolOptions, "kernelSize">;

function checkRank(layer: string, x: Tensor): void {
  if (x.rank !== 4) {
    throw new Error(
      `${layer}: needs input of shape [N, C, H, W] (rank 4), got ${formatShape(x.shape)} ` +
        `(rank ${x.rank})`,
    );
  }
}

/**
 * 2-D max pooling, as `torch.nn.MaxPool2d`. With `returnIndices: true`, `forward` returns
 * `[output, indices]` (see `maxPool2dWithIndices`), for `MaxUnpool2d`.
 *
 * @typeParam ReturnIndices Whether `forward` also returns the argmax indices (from the option).
 */
export class MaxPool2d<ReturnIndices extends boolean = false>
  extends Module<[Tensor], ReturnIndices extends true ? [Tensor, Tensor] : Tensor> {
  /** Step between windows (default: the kernel size). */
  readonly stride: number | readonly [number, number];
  /** Implicit -inf border (default 0). */
  readonly padding: number | readonly [number, number];
  /** Spacing of window elements (default 1). */
  readonly dilation: number | readonly [number, number];
  /** Whether the output size is rounded up (default false). */
  readonly ceilMode: boolean;
  /** Whether `forward` also returns the argmax indices (default false). */
  readonly returnIndices: ReturnIndices;
  /** A `kernelSize` window (a number, or [h, w]) moved by `stride`. */
  constructor(
    readonly kernelSize: number | readonly [number, number],
    options: MaxPool2dOptions & { returnIndices?: ReturnIndices } = {},
  ) {
    super();
    this.stride = options.stride ?? kernelSize;
    this.padding = options.padding ?? 0;
    this.dilation = options.dilation ?? 1;
    this.ceilMode = options.ceilMode ?? false;
    this.returnIndices = (options.returnIndices ?? false) as ReturnIndices;
  }
  /** Pools x [N, C, H, W]; with `returnIndices`, returns `[output, indices]`. */
  forward(x: Tensor): ReturnIndices extends true ? [Tensor, Tensor] : Tensor {
    checkRank("MaxPool2d", x);
    const options = {
      kernelSize: this.kernelSize,
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      ceilMode: this.ceilMode,
    };
    const result = this.returnIndices ? maxPool2dWithIndices(x, options) : maxPool2d(x, options);
    return result as ReturnIndices extends true ? [Tensor, Tensor] : Tensor;
  }
}

/**
 * 2-D max unpooling, as `torch.nn.MaxUnpool2d`: `forward(x, indices, outputSize?)` puts each
 * value of x back where `MaxPool2d({ returnIndices: true })` found it (see `maxUnpool2d`).
 *
 * @example An autoencoder's pool and unpool
 * ```ts
 * import { init, MaxPool2d, MaxUnpool2d, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const pool = new MaxPool2d(2, { returnIndices: true });
 * const unpool = new MaxUnpool2d(2);
 * const x = tensor([1, 5, 2, 0, 3, 4, 8, 7], [1, 1, 2, 4]);
 * const [y, indices] = pool.forward(x);
 * console.log(await unpool.forward(y, indices).toArray()); // [0, 5, 0, 0, 0, 0, 8, 0]
 * ```
 */
export class MaxUnpool2d
  extends Module<[x: Tensor, indices: Tensor, outputSize?: readonly number[]]> {
  /** The pooling's step (default: the kernel size). */
  readonly stride: Size2d;
  /** The pooling's border (default 0). */
  readonly padding: Size2d;
  /** Undoes a `kernelSize` pooling (a number, or [h, w]) moved by `stride`. */
  constructor(readonly kernelSize: Size2d, options: MaxUnpool2dOptions = {}) {
    super();
    this.stride = options.stride ?? kernelSize;
    this.padding = options.padding ?? 0;
  }
  /** Unpools x [N, C, H, W] at `indices`, to `outputSize` ([h, w]) if given. */
  forward(x: Tensor, indices: Tensor, outputSize?: readonly number[]): Tensor {
    checkRank("MaxUnpool2d", x);
    return maxUnpool2d(x, indices, {
      kernelSize: this.kernelSize,
      stride: this.stride,
      padding: this.padding,
      outputSize,
    });
  }
}

/** 2-D average pooling, as `torch.nn.AvgPool2d`. */
export class AvgPool2d extends Module {
  /** Step between windows (default: the kernel size). */
  readonly stride: Size2d;
  /** Implicit zero border (default 0). */
  readonly padding: Size2d;
  /** Whether the output size is rounded up (default false). */
  readonly ceilMode: boolean;
  /** Whether the border counts in each window's divisor (default true). */
  readonly countIncludePad: boolean;
  /** A fixed divisor instead of the window's size, if given. */
  readonly divisorOverride?: number;
  /** A `kernelSize` window (a number, or [h, w]) moved by `stride`. */
  constructor(readonly kernelSize: Size2d, options: AvgPool2dOptions = {}) {
    super();
    this.stride = options.stride ?? kernelSize;
    this.padding = options.padding ?? 0;
    this.ceilMode = options.ceilMode ?? false;
    this.countIncludePad = options.countIncludePad ?? true;
    this.divisorOverride = options.divisorOverride;
  }
  /** Pools x [N, C, H, W]. */
  forward(x: Tensor): Tensor {
    checkRank("AvgPool2d", x);
    return avgPool2d(x, {
      kernelSize: this.kernelSize,
      stride: this.stride,
      padding: this.padding,
      ceilMode: this.ceilMode,
      countIncludePad: this.countIncludePad,
      divisorOverride: this.divisorOverride,
    });
  }
}

/** Adaptive average pooling to a fixed output size, as `torch.nn.AdaptiveAvgPool2d`. */
export class AdaptiveAvgPool2d extends Module {
  /** Pools to `outputSize` (a number for a square output, or [h, w]). */
  constructor(readonly outputSize: Size2d) {
    super();
  }
  /** Pools x [N, C, H, W] to [N, C, ...outputSize]. */
  forward(x: Tensor): Tensor {
    checkRank("AdaptiveAvgPool2d", x);
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}
