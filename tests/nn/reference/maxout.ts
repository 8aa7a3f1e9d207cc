/**
 * CPU reference (float64) of `maxout`, forward and backward: x seen as
 * [outer, groups * pieces, inner], each output the max of its group's `pieces` entries (the first
 * maximum on ties, the first NaN over numbers), the gradient going to that entry alone.
 *
 * @module
 */

/** A maxout geometry, from the input shape, the pieces and the dim (negative counts from the end). */
export interface MaxoutReferenceGeometry {
  outer: number;
  groups: number;
  pieces: number;
  inner: number;
}

/** The geometry of `maxout(x, { pieces, dim })` for x of `shape`. */
export function maxoutGeometry(
  shape: readonly number[],
  pieces: number,
  dim: number,
): MaxoutReferenceGeometry {
  const d = dim < 0 ? dim + shape.length : dim;
  const product = (dims: readonly number[]) => dims.reduce((p, n) => p * n, 1);
  if (shape[d] % pieces !== 0) throw new Error("maxoutGeometry: not divisible");
  return {
    outer: product(shape.slice(0, d)),
    groups: shape[d] / pieces,
    pieces,
    inner: product(shape.slice(d + 1)),
  };
}

/** For each output, the input index of its group's winner. */
function winners(x: ArrayLike<number>, g: MaxoutReferenceGeometry): number[] {
  const result: number[] = [];
  for (let a = 0; a < g.outer; a++) {
    for (let group = 0; group < g.groups; group++) {
      for (let b = 0; b < g.inner; b++) {
        const base = (a * g.groups * g.pieces + group * g.pieces) * g.inner + b;
        let best = base;
        for (let k = 1; k < g.pieces; k++) {
          const i = base + k * g.inner;
          if (Number.isNaN(x[best])) break;
          if (x[i] > x[best] || Number.isNaN(x[i])) best = i;
        }
        result.push(best);
      }
    }
  }
  return result;
}

/** maxout's forward. */
export function maxoutReference(x: ArrayLike<number>, g: MaxoutReferenceGeometry): Float64Array {
  return Float64Array.from(winners(x, g), (i) => x[i]);
}

/** maxout's backward: each output's gradient goes to its group's winner. */
export function maxoutBackwardReference(
  x: ArrayLike<number>,
  grad: ArrayLike<number>,
  g: MaxoutReferenceGeometry,
): Float64Array {
  const dx = new Float64Array(x.length);
  winners(x, g).forEach((i, o) => dx[i] += grad[o]);
  return dx;
}
