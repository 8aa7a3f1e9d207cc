/**
 * Pooling layers: `MaxPool2d`, `AvgPool2d` and `AdaptiveAvgPool2d`, as PyTorch's, with the
 * options of the functional ops (`maxPool2d`, `avgPool2d`, `adaptiveAvgPool2d`). Each checks
 * its input's rank itself, so that errors name the layer.
 *
 * @module
 */

import { adaptiveAvgPool2d, avgPool2d, type AvgPoolOptions } from "../ops/avg_pool.ts";
import { maxPool2d, type MaxPoolOptions } from "../ops/max_pool.ts";
import type { Size2d } from "../ops/pool_geometry.ts";
import { formatShape, type Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

/** Options of `MaxPool2d`: `maxPool2d`'s, less the kernel size (a constructor argument). */
export type MaxPool2dOptions = Omit<MaxPoolOptions, "kernelSize" | "relu">;

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

/** 2-D max pooling, as `torch.nn.MaxPool2d`. */
export class MaxPool2d extends Module {
  /** Step between windows (default: the kernel size). */
  readonly stride: number | readonly [number, number];
  /** Implicit -inf border (default 0). */
  readonly padding: number | readonly [number, number];
  /** Spacing of window elements (default 1). */
  readonly dilation: number | readonly [number, number];
  /** Whether the output size is rounded up (default false). */
  readonly ceilMode: boolean;
  /** A `kernelSize` window (a number, or [h, w]) moved by `stride`. */
  constructor(
    readonly kernelSize: number | readonly [number, number],
    options: Omit<MaxPoolOptions, "kernelSize" | "relu"> = {},
  ) {
    super();
    this.stride = options.stride ?? kernelSize;
    this.padding = options.padding ?? 0;
    this.dilation = options.dilation ?? 1;
    this.ceilMode = options.ceilMode ?? false;
  }
  /** Pools x [N, C, H, W]. */
  forward(x: Tensor): Tensor {
    checkRank("MaxPool2d", x);
    return maxPool2d(x, {
      kernelSize: this.kernelSize,
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      ceilMode: this.ceilMode,
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
