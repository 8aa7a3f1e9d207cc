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

/** The dimensions `dim` names in a tensor of `shape` (all when absent or empty), sorted. */
export function referenceDims(
  shape: readonly number[],
  dim?: number | readonly number[],
): number[] {
  const rank = shape.length;
  if (dim === undefined) return shape.map((_, d) => d);
  const list = typeof dim === "number" ? [dim] : [...dim];
  if (list.length === 0 || rank === 0) return shape.map((_, d) => d);
  return list.map((d) => (d + rank) % rank).sort((a, b) => a - b);
}

/**
 * For each output of reducing `shape` over `dim` (row-major over the kept dims), the flat
 * indices of the input elements it reduces, row-major over the reduced dims.
 */
export function reductionGroups(
  shape: readonly number[],
  dim?: number | readonly number[],
): number[][] {
  const dims = referenceDims(shape, dim);
  const size = shape.reduce((a, b) => a * b, 1);
  const kept = shape.map((_, d) => d).filter((d) => !dims.includes(d));
  const outputs = kept.reduce((n, d) => n * shape[d], 1);
  const groups: number[][] = Array.from({ length: outputs }, () => []);
  for (let i = 0; i < size; i++) {
    // Coordinates of i, then its output's index over the kept dims.
    const coords = new Array<number>(shape.length);
    let rest = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      coords[d] = rest % shape[d];
      rest = Math.floor(rest / shape[d]);
    }
    let o = 0;
    for (const d of kept) o = o * shape[d] + coords[d];
    groups[o].push(i); // i increases, so each group is in row-major order of the reduced dims
  }
  return groups;
}

/** Applies `fn` to the values of each output's group. */
export function reduceDimReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  dim: number | readonly number[] | undefined,
  fn: (values: number[]) => number,
): Float64Array {
  return Float64Array.from(
    reductionGroups(shape, dim).map((group) => fn(group.map((i) => x[i]))),
  );
}

/** The gradient of a reduction: `fn` gives each group's element gradients from the output's. */
export function reduceDimBackwardReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  dim: number | readonly number[] | undefined,
  grad: ArrayLike<number>,
  fn: (values: number[], grad: number) => number[],
): Float64Array {
  const dx = new Float64Array(x.length);
  reductionGroups(shape, dim).forEach((group, o) => {
    const g = fn(group.map((i) => x[i]), grad[o]);
    group.forEach((i, k) => dx[i] = g[k]);
  });
  return dx;
}

/** A reduction's forward (of one group's values) and backward (given the output's gradient). */
export interface GroupReference {
  forward: (values: number[]) => number;
  backward?: (values: number[], grad: number) => number[];
  /** variance and std: the correction. */
  correction?: number;
}

const total = (v: number[]) => v.reduce((a, b) => a + b, 0);

/** Index of the first maximum (`sign` 1) or minimum (-1), or of the first NaN. */
export function argExtremeOf(values: number[], sign: 1 | -1): number {
  let best = 0;
  for (let j = 1; j < values.length && !Number.isNaN(values[best]); j++) {
    if (sign * values[j] > sign * values[best] || Number.isNaN(values[j])) best = j;
  }
  return best;
}

/** The variance with `correction` (NaN or inf where count - correction <= 0, as PyTorch). */
export function varianceOf(values: number[], correction: number): number {
  const m = total(values) / values.length;
  return total(values.map((v) => (v - m) ** 2)) / Math.max(0, values.length - correction);
}

/** The references of the reductions over dims, by op. */
export const groupReferences = {
  sum: { forward: total, backward: (v: number[], g: number) => v.map(() => g) },
  mean: {
    forward: (v: number[]) => total(v) / v.length,
    backward: (v: number[], g: number) => v.map(() => g / v.length),
  },
  /** max over a dim: the gradient to the first maximum. */
  max: {
    forward: (v: number[]) => v[argExtremeOf(v, 1)],
    backward: (v: number[], g: number) => {
      const at = argExtremeOf(v, 1);
      return v.map((_, j) => j === at ? g : 0);
    },
  },
  min: {
    forward: (v: number[]) => v[argExtremeOf(v, -1)],
    backward: (v: number[], g: number) => {
      const at = argExtremeOf(v, -1);
      return v.map((_, j) => j === at ? g : 0);
    },
  },
  /** max over all elements: the gradient shared among the ties. */
  maxAll: {
    forward: (v: number[]) => v[argExtremeOf(v, 1)],
    backward: (v: number[], g: number) => evenly(v, v[argExtremeOf(v, 1)], g),
  },
  minAll: {
    forward: (v: number[]) => v[argExtremeOf(v, -1)],
    backward: (v: number[], g: number) => evenly(v, v[argExtremeOf(v, -1)], g),
  },
  logsumexp: {
    forward: (v: number[]) => {
      const m = Math.max(...v);
      const shift = Number.isFinite(m) ? m : 0;
      return shift + Math.log(total(v.map((x) => Math.exp(x - shift))));
    },
    backward: (v: number[], g: number) => {
      const m = Math.max(...v);
      const lse = m + Math.log(total(v.map((x) => Math.exp(x - m))));
      return v.map((x) => g * Math.exp(x - lse));
    },
  },
  prod: {
    forward: (v: number[]) => v.reduce((a, b) => a * b, 1),
    /** Exact with zeros: each element's gradient is the product of the others. */
    backward: (v: number[], g: number) =>
      v.map((_, j) => g * v.reduce((a, b, k) => k === j ? a : a * b, 1)),
  },
} satisfies Record<string, GroupReference>;

/** The gradient `g` shared evenly among the elements equal to `best` (NaN with NaN). */
function evenly(v: number[], best: number, g: number): number[] {
  const tie = (x: number) => x === best || (Number.isNaN(x) && Number.isNaN(best));
  const ties = v.filter(tie).length;
  return v.map((x) => tie(x) ? g / ties : 0);
}

/** variance (or std, with `root`) with `correction`, forward and backward. */
export function spreadReference(correction: number, root: boolean): GroupReference {
  return {
    correction,
    forward: (v) => root ? Math.sqrt(varianceOf(v, correction)) : varianceOf(v, correction),
    backward: (v, g) => {
      const m = total(v) / v.length;
      const divisor = Math.max(0, v.length - correction);
      if (!root) return v.map((x) => g * 2 * (x - m) / divisor);
      const s = Math.sqrt(varianceOf(v, correction));
      return v.map((x) => s === 0 ? 0 : g * (x - m) / (divisor * s));
    },
  };
}
