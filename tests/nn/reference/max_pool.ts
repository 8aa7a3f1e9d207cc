/**
 * CPU reference (float64) of 2-D max pooling, forward and backward.
 *
 * @module
 */

/** Window geometry of a max pool (all defaulted as in `maxPool2d`). */
export interface MaxPoolReferenceOptions {
  /** Window height and width (number or [h, w]). */
  kernelSize: number | readonly [number, number];
  /** Step between windows; default `kernelSize`. */
  stride?: number | readonly [number, number];
  /** Implicit -inf border on each side; default 0. */
  padding?: number | readonly [number, number];
  /** Spacing of window elements; default 1. */
  dilation?: number | readonly [number, number];
  /** Output size rounded up (PyTorch's rule); default false. */
  ceilMode?: boolean;
}

/** A number or [h, w] as [h, w]. */
export function hw(value: number | readonly [number, number]): [number, number] {
  return typeof value === "number" ? [value, value] : [value[0], value[1]];
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

/**
 * The output size of one spatial dimension, as PyTorch's `pooling_output_shape`:
 * floor((size + 2p - d (k - 1) - 1) / s) + 1, or the ceiling in ceil mode, less one when the
 * last window would start past the input and its left padding.
 */
export function poolOutputSize(
  size: number,
  kernelSize: number,
  stride: number,
  padding: number,
  dilation = 1,
  ceilMode = false,
): number {
  const span = size + 2 * padding - dilation * (kernelSize - 1) - 1;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padding) out--;
  return out;
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
  const [kh, kw] = hw(options.kernelSize);
  const [sh, sw] = hw(options.stride ?? options.kernelSize);
  const [ph, pw] = hw(options.padding ?? 0);
  const [dh, dw] = hw(options.dilation ?? 1);
  const ceil = options.ceilMode ?? false;
  const outH = poolOutputSize(h, kh, sh, ph, dh, ceil);
  const outW = poolOutputSize(w, kw, sw, pw, dw, ceil);
  const planes = n * c;
  const output = new Float64Array(planes * outH * outW);
  const indices = new Int32Array(output.length);
  let o = 0;
  for (let plane = 0; plane < planes; plane++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++, o++) {
        let best = -Infinity, arg = -1;
        for (let i = 0; i < kh; i++) {
          const row = oh * sh - ph + i * dh;
          if (row < 0 || row >= h) continue;
          for (let j = 0; j < kw; j++) {
            const col = ow * sw - pw + j * dw;
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
    if (indices[o] >= 0) dx[plane * h * w + indices[o]] += grad[o];
  }
  return dx;
}

/**
 * For each element i of an unpooling input of `shape` [N, C, H, W], the output element its index
 * names inside its plane of [N, C, outH, outW], or -1 where the index is outside the plane.
 */
function unpoolTargets(
  indices: ArrayLike<number>,
  shape: readonly number[],
  outH: number,
  outW: number,
): Int32Array {
  const [n, c, h, w] = shape;
  return Int32Array.from({ length: n * c * h * w }, (_, i) => {
    const at = indices[i];
    return at >= 0 && at < outH * outW ? Math.floor(i / (h * w)) * outH * outW + at : -1;
  });
}

/** Max unpooling: zeros [N, C, outH, outW] holding x's values at their plane indices. */
export function maxUnpool2dReference(
  x: ArrayLike<number>,
  indices: ArrayLike<number>,
  shape: readonly number[],
  outH: number,
  outW: number,
): Float64Array {
  const out = new Float64Array(shape[0] * shape[1] * outH * outW);
  unpoolTargets(indices, shape, outH, outW).forEach((o, i) => {
    if (o >= 0) out[o] = x[i];
  });
  return out;
}

/** The gradient of max unpooling: each input element gets the output gradient at its index. */
export function maxUnpool2dBackwardReference(
  grad: ArrayLike<number>,
  indices: ArrayLike<number>,
  shape: readonly number[],
  outH: number,
  outW: number,
): Float64Array {
  return Float64Array.from(unpoolTargets(indices, shape, outH, outW), (o) => o >= 0 ? grad[o] : 0);
}
