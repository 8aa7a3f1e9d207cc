/**
 * CPU reference (float64) of `embedding`, forward and backward.
 *
 * @module
 */

/** out[t, :] = weight[index[t], :]; zeros for an index outside [0, rows). */
export function embeddingReference(
  index: ArrayLike<number>,
  weight: ArrayLike<number>,
  dim: number,
): Float64Array {
  const rows = weight.length / dim;
  const out = new Float64Array(index.length * dim);
  for (let t = 0; t < index.length; t++) {
    const row = index[t];
    if (row < 0 || row >= rows) continue;
    for (let k = 0; k < dim; k++) out[t * dim + k] = weight[row * dim + k];
  }
  return out;
}

/**
 * The weight's gradient: each output-gradient row added to the row its index picked (repeated
 * indices add up), none for out-of-range indices or the `padding` row (-1: none).
 */
export function embeddingBackwardReference(
  grad: ArrayLike<number>,
  index: ArrayLike<number>,
  rows: number,
  dim: number,
  padding = -1,
): Float64Array {
  const dweight = new Float64Array(rows * dim);
  for (let t = 0; t < index.length; t++) {
    const row = index[t];
    if (row < 0 || row >= rows || row === padding) continue;
    for (let k = 0; k < dim; k++) dweight[row * dim + k] += grad[t * dim + k];
  }
  return dweight;
}
