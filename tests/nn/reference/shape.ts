/**
 * CPU references (float64) of the layout ops, forward and backward, written element by element
 * from coordinates (no strides shared with the GPU code): permute, expand, narrow, pad, cat,
 * stack and split. The views (reshape, flatten, squeeze, unsqueeze) keep the elements as they are:
 * their reference is the identity.
 *
 * @module
 */

/** Number of elements of `shape`. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The coordinates of linear (row-major) index `i` in `shape`. */
export function coordinatesOf(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return c;
}

/** The linear (row-major) index of coordinates `c` in `shape`. */
export function indexOf(c: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d] + c[d];
  return i;
}

/** out[c] = x[c'] where c'[dims[k]] = c[k]. */
export function permuteReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  dims: readonly number[],
): Float64Array {
  const order = dims.map((d) => d < 0 ? d + shape.length : d);
  const outShape = order.map((d) => shape[d]);
  const out = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < out.length; i++) {
    const c = coordinatesOf(i, outShape);
    const source = new Array<number>(shape.length);
    order.forEach((d, k) => source[d] = c[k]);
    out[i] = x[indexOf(source, shape)];
  }
  return out;
}

/** The gradient of `permuteReference`: the output gradient permuted back. */
export function permuteBackwardReference(
  grad: ArrayLike<number>,
  shape: readonly number[],
  dims: readonly number[],
): Float64Array {
  const order = dims.map((d) => d < 0 ? d + shape.length : d);
  const outShape = order.map((d) => shape[d]);
  const inverse = new Array<number>(order.length);
  order.forEach((d, k) => inverse[d] = k);
  return permuteReference(grad, outShape, inverse);
}

/** `x` of `shape` broadcast to `target` (new leading dims, size-1 dims repeated). */
export function expandReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  target: readonly number[],
): Float64Array {
  const lead = target.length - shape.length;
  const out = new Float64Array(sizeOf(target));
  for (let i = 0; i < out.length; i++) {
    const c = coordinatesOf(i, target).slice(lead).map((v, d) => shape[d] === 1 ? 0 : v);
    out[i] = x[indexOf(c, shape)];
  }
  return out;
}

/** The gradient of `expandReference`: the output gradient summed onto the input's elements. */
export function expandBackwardReference(
  grad: ArrayLike<number>,
  shape: readonly number[],
  target: readonly number[],
): Float64Array {
  const lead = target.length - shape.length;
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < grad.length; i++) {
    const c = coordinatesOf(i, target).slice(lead).map((v, d) => shape[d] === 1 ? 0 : v);
    out[indexOf(c, shape)] += grad[i];
  }
  return out;
}

/** Elements `start` .. `start + length - 1` of `x` along `dim` (non-negative). */
export function narrowReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  start: number,
  length: number,
): Float64Array {
  const outShape = shape.map((size, d) => d === dim ? length : size);
  const out = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < out.length; i++) {
    const c = coordinatesOf(i, outShape);
    c[dim] += start;
    out[i] = x[indexOf(c, shape)];
  }
  return out;
}

/** The gradient of `narrowReference`: the output gradient in its place, zeros elsewhere. */
export function narrowBackwardReference(
  grad: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  start: number,
  length: number,
): Float64Array {
  const outShape = shape.map((size, d) => d === dim ? length : size);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < grad.length; i++) {
    const c = coordinatesOf(i, outShape);
    c[dim] += start;
    out[indexOf(c, shape)] = grad[i];
  }
  return out;
}

/** The shape `pads` (PyTorch's F.pad order: last dim first, (left, right) pairs) make. */
export function paddedShape(shape: readonly number[], pads: readonly number[]): number[] {
  return shape.map((size, d) => {
    const pair = shape.length - 1 - d;
    return size + (pads[2 * pair] ?? 0) + (pads[2 * pair + 1] ?? 0);
  });
}

/** F.pad in constant mode: `value` where the output has no input element; negative pads crop. */
export function padReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  pads: readonly number[],
  value = 0,
): Float64Array {
  const outShape = paddedShape(shape, pads);
  const out = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < out.length; i++) {
    const c = coordinatesOf(i, outShape).map((v, d) => v - (pads[2 * (shape.length - 1 - d)] ?? 0));
    const inside = c.every((v, d) => v >= 0 && v < shape[d]);
    out[i] = inside ? x[indexOf(c, shape)] : value;
  }
  return out;
}

/** The gradient of `padReference`: each input element's output gradient (0 where cropped). */
export function padBackwardReference(
  grad: ArrayLike<number>,
  shape: readonly number[],
  pads: readonly number[],
): Float64Array {
  const outShape = paddedShape(shape, pads);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < grad.length; i++) {
    const c = coordinatesOf(i, outShape).map((v, d) => v - (pads[2 * (shape.length - 1 - d)] ?? 0));
    if (c.every((v, d) => v >= 0 && v < shape[d])) out[indexOf(c, shape)] = grad[i];
  }
  return out;
}

/** The tensors (values with shapes, equal but along `dim`) joined along `dim`. */
export function catReference(
  xs: readonly ArrayLike<number>[],
  shapes: readonly (readonly number[])[],
  dim: number,
): Float64Array {
  const total = shapes.reduce((sum, shape) => sum + shape[dim], 0);
  const outShape = shapes[0].map((size, d) => d === dim ? total : size);
  const out = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < out.length; i++) {
    const c = coordinatesOf(i, outShape);
    let k = 0;
    while (c[dim] >= shapes[k][dim]) c[dim] -= shapes[k++][dim];
    out[i] = xs[k][indexOf(c, shapes[k])];
  }
  return out;
}

/** The gradient of `catReference`: each input's slice of the output gradient. */
export function catBackwardReference(
  grad: ArrayLike<number>,
  shapes: readonly (readonly number[])[],
  dim: number,
): Float64Array[] {
  let start = 0;
  const total = shapes.reduce((sum, shape) => sum + shape[dim], 0);
  const outShape = shapes[0].map((size, d) => d === dim ? total : size);
  return shapes.map((shape) => {
    const slice = narrowReference(grad, outShape, dim, start, shape[dim]);
    start += shape[dim];
    return slice;
  });
}
