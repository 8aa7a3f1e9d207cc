/**
 * CPU references of the GPU batch gathers, for tests: what `DataLoader` must produce.
 *
 * @module
 */

import type { ImageSet } from "../../data/dataset.ts";

/** A batch computed on the CPU. */
export interface ReferenceBatch {
  /** Images as `size * rows * cols` floats in [0, 1] (float64 `value / 255`). */
  x: Float64Array;
  /** Labels. */
  y: Int32Array;
}

/** The batch of `range.size` examples at `order[range.start ..]` of `set`, on the CPU. */
export function gatherReference(
  set: ImageSet,
  order: Int32Array,
  range: { start: number; size: number },
): ReferenceBatch {
  const pixels = set.rows * set.cols;
  const x = new Float64Array(range.size * pixels);
  const y = new Int32Array(range.size);
  for (let b = 0; b < range.size; b++) {
    const src = order[range.start + b];
    for (let p = 0; p < pixels; p++) x[b * pixels + p] = set.images[src * pixels + p] / 255;
    y[b] = set.labels[src];
  }
  return { x, y };
}

/**
 * The batch `order[start .. start + size)` of a dataset tensor whose samples are `row` values
 * each, on the CPU: copied as they are, or `value * scale` in float64 when `scale` is given.
 */
export function gatherRowsReference(
  data: ArrayLike<number>,
  row: number,
  order: Int32Array,
  range: { start: number; size: number },
  scale?: number,
): Float64Array {
  const out = new Float64Array(range.size * row);
  for (let b = 0; b < range.size; b++) {
    const src = order[range.start + b];
    for (let k = 0; k < row; k++) {
      const value = data[src * row + k];
      out[b * row + k] = scale === undefined ? value : value * scale;
    }
  }
  return out;
}
