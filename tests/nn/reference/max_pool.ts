/**
 * CPU reference (float64) of 2-D max pooling, forward and backward.
 *
 * @module
 */

/** Window geometry of a max pool (all defaulted as in `maxPool2d`). */
export interface MaxPoolReferenceOptions {
  /** Window height and width. */
  kernelSize: number;
  /** Step between windows; default `kernelSize`. */
  stride?: number;
  /** Implicit -inf border on each side; default 0. */
  padding?: number;
}

/** The output of `maxPool2dReference`. */
export interface MaxPoolReferenceResult {
  /** Pooled values, [N, C, OH, OW] row-major. */
  output: Float64Array;
  /** For each output, the index (h * W + w) of its maximum inside its input plane. */
  indices: Int32Array;
  /** [N, C, OH, OW]. */
  shape: number[];
}

/** The output size of one spatial dimension: floor((size + 2p - k) / s) + 1. */
export function poolOutputSize(
  size: number,
  kernelSize: number,
  stride: number,
  padding: number,
): number {
  return Math.floor((size + 2 * padding - kernelSize) / stride) + 1;
}

/**
 * Max pooling of `x` of shape [N, C, H, W]; the first maximum of a window wins ties, and a
 * window holding NaN gives NaN with the last NaN as its argmax (as PyTorch).
 */
export function maxPool2dReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  options: MaxPoolReferenceOptions,
): MaxPoolReferenceResult {
  const [n, c, h, w] = shape;
  const k = options.kernelSize, s = options.stride ?? k, p = options.padding ?? 0;
  const outH = poolOutputSize(h, k, s, p), outW = poolOutputSize(w, k, s, p);
  const planes = n * c;
  const output = new Float64Array(planes * outH * outW);
  const indices = new Int32Array(output.length);
  let o = 0;
  for (let plane = 0; plane < planes; plane++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++, o++) {
        let best = -Infinity, arg = -1;
        for (let i = 0; i < k; i++) {
          const row = oh * s - p + i;
          if (row < 0 || row >= h) continue;
          for (let j = 0; j < k; j++) {
            const col = ow * s - p + j;
            if (col < 0 || col >= w) continue;
            const value = x[plane * h * w + row * w + col];
            // As PyTorch's CPU kernel: NaN wins, the last NaN of the window over earlier ones.
            if (arg < 0 || value > best || Number.isNaN(value)) {
              best = value;
              arg = row * w + col;
            }
          }
        }
        output[o] = best;
        indices[o] = arg;
      }
    }
  }
  return { output, indices, shape: [n, c, outH, outW] };
}

/** The gradient of max pooling: each output's gradient added to its argmax's input element. */
export function maxPool2dBackwardReference(
  grad: ArrayLike<number>,
  indices: ArrayLike<number>,
  inputShape: readonly number[],
  outputShape: readonly number[],
): Float64Array {
  const [n, c, h, w] = inputShape;
  const outPlane = outputShape[2] * outputShape[3];
  const dx = new Float64Array(n * c * h * w);
  for (let o = 0; o < grad.length; o++) {
    const plane = Math.floor(o / outPlane);
    dx[plane * h * w + indices[o]] += grad[o];
  }
  return dx;
}
