/**
 * `BatchNorm1d` and `BatchNorm2d`.
 *
 * @module
 */

import { batchNorm, type BatchNormOptions } from "../ops/batch_norm.ts";
import { formatShape, type Tensor } from "../tensor.ts";
import { constant } from "./init.ts";
import { Module } from "./module.ts";

/** Options of the batch-norm layers. */
export interface BatchNormLayerOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Weight of each batch in the running statistics (default 0.1). */
  momentum?: number;
  /** Learnable scale and shift (default true). */
  affine?: boolean;
}

/** The shared implementation of `BatchNorm1d` and `BatchNorm2d`. */
export abstract class BatchNormBase extends Module {
  /** Scale [C] (1 at start), or null. */
  readonly weight: Tensor | null;
  /** Shift [C] (0 at start), or null. */
  readonly bias: Tensor | null;
  /** Running mean [C]. */
  readonly runningMean: Tensor;
  /** Running (unbiased) variance [C]. */
  readonly runningVar: Tensor;
  /** Added to the variance. */
  readonly eps: number;
  /** Weight of each batch in the running statistics. */
  readonly momentum: number;

  /** A layer for `numFeatures` channels of inputs with `rank` dimensions. */
  constructor(
    readonly numFeatures: number,
    private readonly rank: number,
    options: BatchNormLayerOptions,
  ) {
    super();
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    const affine = options.affine ?? true;
    this.weight = affine ? this.registerParameter("weight", constant([numFeatures], 1)) : null;
    this.bias = affine ? this.registerParameter("bias", constant([numFeatures], 0)) : null;
    this.runningMean = this.registerBuffer("running_mean", constant([numFeatures], 0));
    this.runningVar = this.registerBuffer("running_var", constant([numFeatures], 1));
  }

  /** Normalises x per channel: batch statistics in training, running ones in eval. */
  forward(x: Tensor): Tensor {
    return batchNorm(x, this.normOptions(x));
  }

  /**
   * The options of the functional `batchNorm` for this layer (its parameters, running
   * statistics and mode), after checking that `x` fits; for fused ops built on batch norm.
   */
  normOptions(x: Tensor): BatchNormOptions {
    if (x.rank !== this.rank || x.shape[1] !== this.numFeatures) {
      const wanted = this.rank === 2
        ? `[N, ${this.numFeatures}]`
        : `[N, ${this.numFeatures}, H, W]`;
      throw new Error(
        `${this.constructor.name}: input ${formatShape(x.shape)} does not fit (needs ${wanted})`,
      );
    }
    return {
      weight: this.weight ?? undefined,
      bias: this.bias ?? undefined,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    };
  }
}

/** Batch norm over [N, C] (statistics over N per feature), as `torch.nn.BatchNorm1d`. */
export class BatchNorm1d extends BatchNormBase {
  /** A layer for `numFeatures` features. */
  constructor(numFeatures: number, options: BatchNormLayerOptions = {}) {
    super(numFeatures, 2, options);
  }
}

/** Batch norm over [N, C, H, W] (statistics over N, H, W per channel), as `torch.nn.BatchNorm2d`. */
export class BatchNorm2d extends BatchNormBase {
  /** A layer for `numFeatures` channels. */
  constructor(numFeatures: number, options: BatchNormLayerOptions = {}) {
    super(numFeatures, 4, options);
  }
}
