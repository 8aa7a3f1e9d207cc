/**
 * CPU reference (float64) of batch normalisation, forward and backward, for [N, C] and
 * [N, C, H, W] inputs.
 *
 * @module
 */

/** Options of the batch-norm reference (see `batchNorm` in `nn/ops/batch_norm.ts`). */
export interface BatchNormReferenceOptions {
  /** Per-channel scale [C]; 1 when absent. */
  weight?: ArrayLike<number>;
  /** Per-channel shift [C]; 0 when absent. */
  bias?: ArrayLike<number>;
  /** Running mean [C]: used in eval mode. */
  runningMean?: ArrayLike<number>;
  /** Running (unbiased) variance [C]: used in eval mode. */
  runningVar?: ArrayLike<number>;
  /** Batch statistics (true) or running statistics (false). */
  training: boolean;
  /** Added to the variance; default 1e-5. */
  eps?: number;
}

/** Per-channel statistics of a batch. */
export interface BatchStats {
  /** Mean over N (and H, W) per channel. */
  mean: Float64Array;
  /** Biased variance (divided by the count). */
  variance: Float64Array;
  /** Unbiased variance (divided by count - 1). */
  unbiasedVariance: Float64Array;
}

/** Channels, elements per channel, and the channel of flat index i, for an NC[HW] shape. */
function layout(shape: readonly number[]): { channels: number; count: number; spatial: number } {
  const channels = shape[1];
  const spatial = shape.slice(2).reduce((a, b) => a * b, 1);
  return { channels, count: shape[0] * spatial, spatial };
}

function channelOf(i: number, channels: number, spatial: number): number {
  return Math.floor(i / spatial) % channels;
}

/** The per-channel mean and variances of `x` (shape [N, C] or [N, C, H, W]). */
export function batchStatsReference(x: ArrayLike<number>, shape: readonly number[]): BatchStats {
  const { channels, count, spatial } = layout(shape);
  const mean = new Float64Array(channels);
  const squares = new Float64Array(channels);
  for (let i = 0; i < x.length; i++) mean[channelOf(i, channels, spatial)] += x[i];
  for (let c = 0; c < channels; c++) mean[c] /= count;
  for (let i = 0; i < x.length; i++) {
    const c = channelOf(i, channels, spatial);
    squares[c] += (x[i] - mean[c]) ** 2;
  }
  return {
    mean,
    variance: squares.map((s) => s / count),
    unbiasedVariance: squares.map((s) => s / (count - 1)),
  };
}

/** The mean and variance the op normalises with: the batch's (training) or the running ones. */
function statsFor(
  x: ArrayLike<number>,
  shape: readonly number[],
  options: BatchNormReferenceOptions,
): { mean: ArrayLike<number>; variance: ArrayLike<number> } {
  if (options.training) return batchStatsReference(x, shape);
  if (!options.runningMean || !options.runningVar) {
    throw new Error("batchNormReference: eval mode needs runningMean and runningVar");
  }
  return { mean: options.runningMean, variance: options.runningVar };
}

/** y = (x - mean) / sqrt(var + eps) * weight + bias, per channel. */
export function batchNormReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  options: BatchNormReferenceOptions,
): Float64Array {
  const { channels, spatial } = layout(shape);
  const { mean, variance } = statsFor(x, shape, options);
  const eps = options.eps ?? 1e-5;
  return Float64Array.from(x, (v, i) => {
    const c = channelOf(i, channels, spatial);
    const normalised = (v - mean[c]) / Math.sqrt(variance[c] + eps);
    return normalised * (options.weight?.[c] ?? 1) + (options.bias?.[c] ?? 0);
  });
}

/** Gradients of batch norm with respect to x, weight and bias. */
export interface BatchNormGrads {
  /** d/dx, same shape as x. */
  x: Float64Array;
  /** d/dweight [C]. */
  weight: Float64Array;
  /** d/dbias [C]. */
  bias: Float64Array;
}

/**
 * The backward of `batchNormReference`: in training mode through the batch statistics, in eval
 * mode the affine map only.
 */
export function batchNormBackwardReference(
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  options: BatchNormReferenceOptions,
): BatchNormGrads {
  const { channels, count, spatial } = layout(shape);
  const { mean, variance } = statsFor(x, shape, options);
  const eps = options.eps ?? 1e-5;
  const invStd = Float64Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
  const normalised = Float64Array.from(x, (v, i) => {
    const c = channelOf(i, channels, spatial);
    return (v - mean[c]) * invStd[c];
  });
  const weightGrad = new Float64Array(channels);
  const biasGrad = new Float64Array(channels);
  for (let i = 0; i < x.length; i++) {
    const c = channelOf(i, channels, spatial);
    weightGrad[c] += grad[i] * normalised[i];
    biasGrad[c] += grad[i];
  }
  const xGrad = Float64Array.from(x, (_, i) => {
    const c = channelOf(i, channels, spatial);
    const factor = (options.weight?.[c] ?? 1) * invStd[c];
    if (!options.training) return factor * grad[i];
    return factor * (grad[i] - biasGrad[c] / count - normalised[i] * weightGrad[c] / count);
  });
  return { x: xGrad, weight: weightGrad, bias: biasGrad };
}

/**
 * Running statistics after one training step:
 * running = (1 - momentum) * running + momentum * batch (the variance unbiased).
 */
export function runningStatsReference(
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  momentum = 0.1,
): { mean: Float64Array; variance: Float64Array } {
  const stats = batchStatsReference(x, shape);
  return {
    mean: Float64Array.from(runningMean, (r, c) => (1 - momentum) * r + momentum * stats.mean[c]),
    variance: Float64Array.from(
      runningVar,
      (r, c) => (1 - momentum) * r + momentum * stats.unbiasedVariance[c],
    ),
  };
}
