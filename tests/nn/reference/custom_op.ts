/**
 * CPU references (float64) of the custom ops that `tests/nn/custom_op_test.ts` and
 * `examples/custom_op.ts` define: swish and the row sums of squares, forward and backward.
 *
 * @module
 */

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/** swish(x) = x · sigmoid(βx), element by element. */
export function swishReference(x: ArrayLike<number>, beta: number): Float64Array {
  return Float64Array.from(x, (v) => v * sigmoid(beta * v));
}

/** The gradient of swish: grad · (s + βx s (1 - s)) with s = sigmoid(βx). */
export function swishBackwardReference(
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
  beta: number,
): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const s = sigmoid(beta * v);
    return grad[i] * (s + beta * v * s * (1 - s));
  });
}

/** The sum of squares of each row of x [rows, cols], times `scale`: [rows]. */
export function rowSumSquaresReference(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  scale: number,
): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r] += x[r * cols + c] ** 2;
    out[r] *= scale;
  }
  return out;
}

/** Its gradient: 2 · scale · x · grad[row]. */
export function rowSumSquaresBackwardReference(
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
  cols: number,
  scale: number,
): Float64Array {
  return Float64Array.from(x, (v, i) => 2 * scale * v * grad[Math.floor(i / cols)]);
}
