/**
 * CPU references (float64) of the indexing ops (`indexSelect`, `gather`, `oneHot`) and of the
 * dtype conversions (`cast`). Out-of-range indices (negative ones included) select 0 and get no
 * gradient, as wgtorch documents.
 *
 * @module
 */

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

function coordinatesOf(i: number, shape: readonly number[]): number[] {
  const coords = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    coords[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return coords;
}

/** x of `shape` indexed along `dim` (non-negative) by the 1-D `index`. */
export function indexSelectReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  index: ArrayLike<number>,
): Float64Array {
  const outShape = shape.map((n, d) => d === dim ? index.length : n);
  const strides = stridesOf(shape);
  return Float64Array.from({ length: sizeOf(outShape) }, (_, i) => {
    const c = coordinatesOf(i, outShape);
    const at = index[c[dim]];
    if (at < 0 || at >= shape[dim]) return 0;
    c[dim] = at;
    return x[c.reduce((sum, v, d) => sum + v * strides[d], 0)];
  });
}

/** The gradient of `indexSelectReference` in x: grad rows added back at their indices. */
export function indexSelectBackwardReference(
  grad: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  index: ArrayLike<number>,
): Float64Array {
  const outShape = shape.map((n, d) => d === dim ? index.length : n);
  const strides = stridesOf(shape);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < grad.length; i++) {
    const c = coordinatesOf(i, outShape);
    const at = index[c[dim]];
    if (at < 0 || at >= shape[dim]) continue;
    c[dim] = at;
    out[c.reduce((sum, v, d) => sum + v * strides[d], 0)] += grad[i];
  }
  return out;
}

/** torch.gather of x (of `shape`) along `dim` (non-negative) by `index` of `indexShape`. */
export function gatherReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  index: ArrayLike<number>,
  indexShape: readonly number[],
): Float64Array {
  const strides = stridesOf(shape);
  return Float64Array.from({ length: sizeOf(indexShape) }, (_, i) => {
    const c = coordinatesOf(i, indexShape);
    const at = index[i];
    if (at < 0 || at >= shape[dim]) return 0;
    c[dim] = at;
    return x[c.reduce((sum, v, d) => sum + v * strides[d], 0)];
  });
}

/** The gradient of `gatherReference` in x: scatter_add of grad at the indices. */
export function gatherBackwardReference(
  grad: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  index: ArrayLike<number>,
  indexShape: readonly number[],
): Float64Array {
  const strides = stridesOf(shape);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < grad.length; i++) {
    const c = coordinatesOf(i, indexShape);
    const at = index[i];
    if (at < 0 || at >= shape[dim]) continue;
    c[dim] = at;
    out[c.reduce((sum, v, d) => sum + v * strides[d], 0)] += grad[i];
  }
  return out;
}

/** One-hot rows of `classes` for each index (all zero for an index out of range). */
export function oneHotReference(index: ArrayLike<number>, classes: number): Float64Array {
  const out = new Float64Array(index.length * classes);
  for (let r = 0; r < index.length; r++) {
    if (index[r] >= 0 && index[r] < classes) out[r * classes + index[r]] = 1;
  }
  return out;
}

/**
 * f32 → i32 as wgtorch (and PyTorch on CUDA): toward zero, saturating at the i32 range, NaN 0.
 */
export function toI32Reference(v: number): number {
  if (Number.isNaN(v)) return 0;
  return Math.min(Math.max(Math.trunc(v), -(2 ** 31)), 2 ** 31 - 1) + 0; // + 0: no -0
}

/** → u8: an integer wrapped modulo 256 (a float first truncated as `toI32Reference`). */
export function toU8Reference(v: number): number {
  return ((toI32Reference(v) % 256) + 256) % 256;
}

/** i32 → f32: rounded to the nearest f32. */
export function toF32Reference(v: number): number {
  return Math.fround(v);
}
