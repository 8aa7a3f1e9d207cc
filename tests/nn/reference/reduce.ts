/**
 * CPU references (float64) of the reductions: sum, mean, argmax and the correct-prediction
 * count.
 *
 * @module
 */

/** The sum of all values. */
export function sumReference(x: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < x.length; i++) total += x[i];
  return total;
}

/** The mean of all values (NaN when empty). */
export function meanReference(x: ArrayLike<number>): number {
  return sumReference(x) / x.length;
}

/** The gradient of sum: the output's gradient at every one of `size` elements. */
export function sumBackwardReference(grad: number, size: number): Float64Array {
  return new Float64Array(size).fill(grad);
}

/** The gradient of mean: the output's gradient / size at every one of `size` elements. */
export function meanBackwardReference(grad: number, size: number): Float64Array {
  return new Float64Array(size).fill(grad / size);
}

/** The index of the first maximum of each row of `classes` values (of its first NaN, if any). */
export function argmaxReference(x: ArrayLike<number>, classes: number): Int32Array {
  const rows = x.length / classes;
  const out = new Int32Array(rows);
  for (let n = 0; n < rows; n++) {
    let best = 0;
    for (let j = 1; j < classes && !Number.isNaN(x[n * classes + best]); j++) {
      const v = x[n * classes + j];
      if (v > x[n * classes + best] || Number.isNaN(v)) best = j;
    }
    out[n] = best;
  }
  return out;
}

/** How many rows have their first maximum at the target index. */
export function correctCountReference(
  scores: ArrayLike<number>,
  target: ArrayLike<number>,
  classes: number,
): number {
  const predicted = argmaxReference(scores, classes);
  return predicted.reduce((count, p, n) => count + (p === target[n] ? 1 : 0), 0);
}
