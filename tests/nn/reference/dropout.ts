/**
 * CPU reference (float64) of inverted dropout, given its keep mask (see `dropoutMask` in
 * `nn/ops/dropout.ts` for the mask the GPU draws).
 *
 * @module
 */

/** x * mask / (1 - p): kept elements scaled up, dropped ones zero (NaN stays NaN, as NaN * 0). */
export function dropoutReference(
  x: ArrayLike<number>,
  mask: ArrayLike<number>,
  p: number,
): Float64Array {
  if (p >= 1) return new Float64Array(x.length);
  return Float64Array.from(x, (v, i) => v * (mask[i] ? 1 / (1 - p) : 0));
}

/** The gradient of dropout: the output's gradient through the same mask and scale. */
export function dropoutBackwardReference(
  grad: ArrayLike<number>,
  mask: ArrayLike<number>,
  p: number,
): Float64Array {
  return dropoutReference(grad, mask, p);
}
