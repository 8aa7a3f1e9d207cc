/**
 * CPU reference (float64) of layer and group normalisation, forward and backward.
 *
 * Both see x as [N, C, S] with G groups over C, each (n, group) block a contiguous row
 * normalised by its own mean and biased variance; the affine weight and bias apply per element
 * of the row (layer norm: G = 1, S = 1, C = the row length) or per channel (group norm).
 *
 * @module
 */

/** x seen as [N, C, S] with G groups over C. */
export interface NormReferenceShape {
  n: number;
  channels: number;
  spatial: number;
  groups: number;
}

/** Options of the references. */
export interface NormReferenceOptions {
  /** Scale ([row length] for layer norm, [C] for group norm); 1 when absent. */
  weight?: ArrayLike<number> | null;
  /** Shift, as `weight`; 0 when absent. */
  bias?: ArrayLike<number> | null;
  /** Added to the variance (default 1e-5). */
  eps?: number;
}

/** The shape a layer norm over the last dims of `shape` (product `count`) sees. */
export function layerNormShape(size: number, count: number): NormReferenceShape {
  return { n: size / count, channels: count, spatial: 1, groups: 1 };
}

/** The shape a group norm of x [N, C, *] with `groups` groups sees. */
export function groupNormShape(shape: readonly number[], groups: number): NormReferenceShape {
  const spatial = shape.slice(2).reduce((a, b) => a * b, 1);
  return { n: shape[0], channels: shape[1], spatial, groups };
}

interface Row {
  start: number;
  count: number;
  /** The affine index of the row's element k. */
  param: (k: number) => number;
}

function rowsOf(s: NormReferenceShape): Row[] {
  const perGroup = s.channels / s.groups;
  const count = perGroup * s.spatial;
  const rows: Row[] = [];
  for (let n = 0; n < s.n; n++) {
    for (let g = 0; g < s.groups; g++) {
      const row = n * s.groups + g;
      rows.push({
        start: row * count,
        count,
        param: (k) => g * perGroup + Math.floor(k / s.spatial),
      });
    }
  }
  return rows;
}

function rowStats(x: ArrayLike<number>, row: Row, eps: number): { mean: number; rstd: number } {
  let mean = 0;
  for (let k = 0; k < row.count; k++) mean += x[row.start + k];
  mean /= row.count;
  let variance = 0;
  for (let k = 0; k < row.count; k++) variance += (x[row.start + k] - mean) ** 2;
  variance /= row.count;
  return { mean, rstd: 1 / Math.sqrt(variance + eps) };
}

/** y = (x - mean) / sqrt(var + eps) * weight + bias, row by row. */
export function normReference(
  x: ArrayLike<number>,
  shape: NormReferenceShape,
  options: NormReferenceOptions = {},
): Float64Array {
  const { weight, bias, eps = 1e-5 } = options;
  const out = new Float64Array(x.length);
  for (const row of rowsOf(shape)) {
    const { mean, rstd } = rowStats(x, row, eps);
    for (let k = 0; k < row.count; k++) {
      const p = row.param(k);
      out[row.start + k] = (x[row.start + k] - mean) * rstd * (weight ? weight[p] : 1) +
        (bias ? bias[p] : 0);
    }
  }
  return out;
}

/** The gradients [dx, dweight, dbias] of `normReference` given the output's gradient. */
export function normBackwardReference(
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: NormReferenceShape,
  options: NormReferenceOptions = {},
): { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const { weight, eps = 1e-5 } = options;
  const params = shape.channels;
  const dx = new Float64Array(x.length);
  const dweight = new Float64Array(params);
  const dbias = new Float64Array(params);
  for (const row of rowsOf(shape)) {
    const { mean, rstd } = rowStats(x, row, eps);
    let sumGw = 0, sumGwx = 0;
    for (let k = 0; k < row.count; k++) {
      const p = row.param(k);
      const g = grad[row.start + k];
      const xhat = (x[row.start + k] - mean) * rstd;
      const gw = g * (weight ? weight[p] : 1);
      sumGw += gw;
      sumGwx += gw * xhat;
      dweight[p] += g * xhat;
      dbias[p] += g;
    }
    for (let k = 0; k < row.count; k++) {
      const p = row.param(k);
      const gw = grad[row.start + k] * (weight ? weight[p] : 1);
      const xhat = (x[row.start + k] - mean) * rstd;
      dx[row.start + k] = rstd * (gw - sumGw / row.count - xhat * sumGwx / row.count);
    }
  }
  return { dx, dweight, dbias };
}
