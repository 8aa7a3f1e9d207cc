/**
 * The copying layout ops (PyTorch's names): `transpose`, `permute`, `expand`, `cat`, `stack`,
 * `split`, `narrow`, `pad`. wgtorch tensors are always contiguous (row-major), so each result is a
 * new contiguous tensor, written by one strided-copy dispatch (`copy_kernel.ts`; `cat` of more
 * inputs than a dispatch binds takes one per group, then one more). f32, i32 and u8 alike; only
 * f32 is differentiable:
 *
 * - transpose / permute: the gradient permuted back (the inverse permutation);
 * - expand: summed back over the expanded dimensions (`sumTo`);
 * - cat / stack: each input's slice of the gradient (a narrow);
 * - narrow / split: the gradient padded with zeros back to the input's shape;
 * - pad: the gradient padded by the opposite amounts (a crop where the input was padded, zeros
 *   where it was cropped).
 *
 * The views (reshape, view, flatten, squeeze, unsqueeze) are in `shape.ts`.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { noGrad } from "../graph.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { sumTo } from "./broadcast.ts";
import { type CopySource, maxCopySources, rowMajorStrides, runCopy } from "./copy_kernel.ts";
import { normalizeDim, viewAs } from "./shape.ts";

/** A source read at the output's coordinates through `strides`, from `offset`. */
function plainSource(strides: readonly number[], offset = 0): CopySource {
  return { strides, offset, bounds: strides.map(() => null), start: 0 };
}

/**
 * `x` with its dimensions in the order `dims` (output dim k is input dim `dims[k]`), as a new
 * contiguous tensor (one copy). Negative dims count from the end. wgtorch tensors are always
 * contiguous, so the result is a valid input to every other op (PyTorch's result would be a
 * strided view needing `.contiguous()` for some). The identity order gives a view. Throws when
 * `dims` is not a permutation of 0..rank-1. Differentiable (the gradient is permuted back).
 */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const order = checkPermutation(x, dims);
  if (order.every((d, k) => d === k)) return viewAs("permute", x, x.shape);
  return permuteOrder("permute", x, order);
}

function checkPermutation(x: Tensor, dims: readonly number[]): number[] {
  const bad = () =>
    new Error(
      `permute: dims [${dims.join(", ")}] is not a permutation of 0..${x.rank - 1} for shape ` +
        `${formatShape(x.shape)} (rank ${x.rank}): give each dimension once`,
    );
  if (dims.length !== x.rank) throw bad();
  const order = dims.map((d) => {
    if (!Number.isInteger(d) || d < -x.rank || d >= x.rank) throw bad();
    return d < 0 ? d + x.rank : d;
  });
  if (new Set(order).size !== order.length) throw bad();
  return order;
}

function permuteOrder(name: string, x: Tensor, order: readonly number[]): Tensor {
  const strides = rowMajorStrides(x.shape);
  const shape = order.map((d) => x.shape[d]);
  const out = runCopy(
    {
      dtype: x.dtype,
      out: shape,
      sources: [plainSource(order.map((d) => strides[d]))],
      selectDim: 0,
    },
    [x],
  );
  const inverse = new Array<number>(order.length);
  order.forEach((d, k) => inverse[d] = k);
  return recordOp(name, out, [x], (grad) => [permuteOrder(name, grad, inverse)]);
}

/**
 * `x` with dimensions `dim0` and `dim1` swapped, as a new contiguous tensor (one copy; the same
 * dim twice gives a view). Negative dims count from the end; a 0-d tensor takes dims 0 and -1.
 * wgtorch tensors are always contiguous, so the result is a valid input to every other op.
 * Differentiable (the gradient is transposed back).
 */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const a = normalizeDim("transpose", dim0, x.rank, x.shape);
  const b = normalizeDim("transpose", dim1, x.rank, x.shape);
  if (a === b || x.rank === 0) return viewAs("transpose", x, x.shape);
  const order = [...x.shape.keys()];
  order[a] = b;
  order[b] = a;
  return permuteOrder("transpose", x, order);
}

/**
 * `x` repeated along its size-1 dimensions (and new leading ones) to `shape`, as a new
 * contiguous tensor (one copy; wgtorch has no stride-0 views). -1 keeps a dimension's size; new
 * leading dimensions cannot be -1. Throws when a dimension of size other than 1 would change.
 * Differentiable (the gradient is summed back).
 */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.rank;
  const what = `cannot expand ${formatShape(x.shape)} to ${formatShape(shape)}`;
  if (lead < 0) {
    throw new Error(
      `expand: ${what}: the new shape has ${shape.length} dimensions, fewer than the tensor's ` +
        `${x.rank}`,
    );
  }
  const target = shape.map((size, d) => {
    if (d < lead) {
      if (!Number.isInteger(size) || size < 0) {
        throw new Error(
          `expand: ${what}: new leading dimension ${d} is ${size}; it must be an integer >= 0 ` +
            `(-1 keeps only existing dimensions)`,
        );
      }
      return size;
    }
    const own = x.shape[d - lead];
    if (size === -1) return own;
    if (!Number.isInteger(size) || size < 0 || (size !== own && own !== 1)) {
      throw new Error(
        `expand: ${what}: dimension ${d} of size ${own} cannot become ${size}: only size-1 ` +
          `dimensions expand (-1 keeps a size)`,
      );
    }
    return size;
  });
  const ownStrides = rowMajorStrides(x.shape);
  const strides = target.map((_, d) =>
    d < lead || x.shape[d - lead] === 1 ? 0 : ownStrides[d - lead]
  );
  const out = runCopy(
    { dtype: x.dtype, out: target, sources: [plainSource(strides)], selectDim: 0 },
    [x],
  );
  const inputShape = x.shape;
  return recordOp("expand", out, [x], (grad) => [sumTo(grad.view(), inputShape)]);
}

/**
 * `x`'s elements `start` to `start + length - 1` along `dim`, as a new contiguous tensor (one
 * copy). A negative `start` counts from the end. Throws when the range is not within the
 * dimension. Differentiable (the gradient is padded with zeros).
 */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normalizeDim("narrow", dim, x.rank, x.shape);
  if (x.rank === 0) throw new Error("narrow: a 0-d tensor has no dimension to narrow");
  const size = x.shape[d];
  const first = Number.isInteger(start) && start < 0 && start >= -size ? start + size : start;
  if (
    !Number.isInteger(first) || !Number.isInteger(length) || first < 0 || length < 0 ||
    first + length > size
  ) {
    throw new Error(
      `narrow: start ${start} and length ${length} do not fit dim ${dim} of shape ` +
        `${formatShape(x.shape)} (size ${size}): need -${size} <= start <= ${size}, ` +
        `length >= 0 and start + length <= ${size}`,
    );
  }
  return narrowRange("narrow", x, d, first, length);
}

function narrowRange(name: string, x: Tensor, d: number, start: number, length: number): Tensor {
  const strides = rowMajorStrides(x.shape);
  const shape = x.shape.map((size, k) => k === d ? length : size);
  const out = runCopy(
    {
      dtype: x.dtype,
      out: shape,
      sources: [plainSource(strides, start * strides[d])],
      selectDim: 0,
    },
    [x],
  );
  const pads = new Array<number>(2 * x.rank).fill(0);
  pads[2 * (x.rank - 1 - d)] = start;
  pads[2 * (x.rank - 1 - d) + 1] = x.shape[d] - start - length;
  return recordOp(name, out, [x], (grad) => [padCopy(grad, pads, 0)]);
}

/** Options of `cat`, `stack` and `split`. */
export interface DimOptions {
  /** The dimension (default 0; negative counts from the end). */
  dim?: number;
}

/**
 * The tensors joined along `dim`, as a new contiguous tensor: all of one dtype and rank, with
 * equal sizes in every other dimension. One copy dispatch per group of up to 8 inputs (more take
 * a second level). Throws naming the first tensor that does not fit. Differentiable (each input's
 * gradient is its slice).
 */
export function cat(tensors: readonly Tensor[], options: DimOptions = {}): Tensor {
  if (tensors.length === 0) throw new Error("cat: needs at least one tensor, got none");
  const first = tensors[0];
  if (first.rank === 0) {
    throw new Error(
      `cat: tensor 0 is 0-d (shape []): 0-d tensors cannot be concatenated (stack them, or ` +
        `unsqueeze them first)`,
    );
  }
  const dim = options.dim ?? 0;
  const d = normalizeDim("cat", dim, first.rank, first.shape);
  for (const [k, t] of tensors.entries()) {
    if (t.dtype !== first.dtype) {
      throw new Error(
        `cat: tensor ${k} is ${t.dtype} but tensor 0 is ${first.dtype}: all must have one dtype`,
      );
    }
    const fits = t.rank === first.rank &&
      t.shape.every((size, j) => j === d || size === first.shape[j]);
    if (!fits) {
      throw new Error(
        `cat: tensor ${k} has shape ${formatShape(t.shape)} but tensor 0 has ` +
          `${formatShape(first.shape)}: all dims but dim ${d} must match`,
      );
    }
  }
  return join("cat", tensors, d, tensors.map((t) => t.shape));
}

/**
 * The tensors (all of one shape and dtype) stacked along a new dimension `dim`, in
 * [-rank - 1, rank], as a new contiguous tensor (one copy dispatch per group of up to 8).
 * Differentiable.
 */
export function stack(tensors: readonly Tensor[], options: DimOptions = {}): Tensor {
  if (tensors.length === 0) throw new Error("stack: needs at least one tensor, got none");
  const first = tensors[0];
  const dim = options.dim ?? 0;
  const d = normalizeDim("stack", dim, first.rank + 1, first.shape);
  for (const [k, t] of tensors.entries()) {
    if (t.dtype !== first.dtype) {
      throw new Error(
        `stack: tensor ${k} is ${t.dtype} but tensor 0 is ${first.dtype}: all must have one dtype`,
      );
    }
    if (t.rank !== first.rank || t.shape.some((size, j) => size !== first.shape[j])) {
      throw new Error(
        `stack: tensor ${k} has shape ${formatShape(t.shape)} but tensor 0 has ` +
          `${formatShape(first.shape)}: all must have the same shape`,
      );
    }
  }
  const shape = [...first.shape.slice(0, d), 1, ...first.shape.slice(d)];
  return join("stack", tensors, d, tensors.map(() => shape));
}

/**
 * Joins `tensors`, read with shapes `shapes` (equal but along `d`), along `d`, and records op
 * `name` whose gradient of each input is its slice of the output's gradient.
 */
function join(
  name: string,
  tensors: readonly Tensor[],
  d: number,
  shapes: readonly (readonly number[])[],
): Tensor {
  const out = joinCopy(tensors, d, shapes);
  const starts: number[] = [];
  let at = 0;
  for (const shape of shapes) {
    starts.push(at);
    at += shape[d];
  }
  return recordOp(name, out, tensors, (grad) =>
    tensors.map((t, k) => {
      if (!t.requiresGrad) return null;
      const slice = noGrad(() => narrowRange("narrow", grad, d, starts[k], shapes[k][d]));
      const result = slice.view(t.shape);
      slice.dispose();
      return result;
    }));
}

/** The copy joining `tensors` (read with `shapes`) along `d`, without autograd. */
function joinCopy(
  tensors: readonly Tensor[],
  d: number,
  shapes: readonly (readonly number[])[],
): Tensor {
  const total = shapes.reduce((sum, shape) => sum + shape[d], 0);
  const outShape = shapes[0].map((size, j) => j === d ? total : size);
  const group = maxCopySources();
  if (tensors.length > group) {
    // Join groups first, then the groups' results (each a contiguous tensor).
    const parts: Tensor[] = [];
    const partShapes: number[][] = [];
    for (let k = 0; k < tensors.length; k += group) {
      const part = joinCopy(tensors.slice(k, k + group), d, shapes.slice(k, k + group));
      parts.push(part);
      partShapes.push([...part.shape]);
    }
    const out = joinCopy(parts, d, partShapes);
    for (const part of parts) part.dispose();
    return out;
  }
  const sources: CopySource[] = [];
  const used: Tensor[] = [];
  let start = 0;
  for (const [k, shape] of shapes.entries()) {
    if (shape[d] > 0) {
      const strides = rowMajorStrides(shape);
      sources.push({
        strides,
        offset: -start * strides[d],
        bounds: strides.map(() => null),
        start,
      });
      used.push(tensors[k]);
    }
    start += shape[d];
  }
  if (sources.length === 0) return Tensor.empty(outShape, tensors[0].dtype);
  return runCopy({ dtype: tensors[0].dtype, out: outShape, sources, selectDim: d }, used);
}

/**
 * `x` cut along `dim` into pieces of `sizeOrSizes` elements (the last one smaller when it does
 * not divide the size), or of the listed sizes (which must add up to the dimension's size). Each
 * piece is a new contiguous tensor (one copy each). Differentiable.
 */
export function split(
  x: Tensor,
  sizeOrSizes: number | readonly number[],
  options: DimOptions = {},
): Tensor[] {
  const dim = options.dim ?? 0;
  const d = normalizeDim("split", dim, x.rank, x.shape);
  if (x.rank === 0) throw new Error("split: a 0-d tensor has no dimension to split");
  const size = x.shape[d];
  let sizes: number[];
  if (typeof sizeOrSizes === "number") {
    const step = sizeOrSizes;
    if (!Number.isInteger(step) || step < 0 || (step === 0 && size > 0)) {
      throw new Error(
        `split: size ${step} cannot split dim ${d} (size ${size}) of shape ` +
          `${formatShape(x.shape)}: give an integer >= 1`,
      );
    }
    sizes = [];
    for (let at = 0; at < size; at += step) sizes.push(Math.min(step, size - at));
    if (sizes.length === 0) sizes.push(0);
  } else {
    sizes = [...sizeOrSizes];
    const sum = sizes.reduce((a, b) => a + b, 0);
    if (sizes.some((s) => !Number.isInteger(s) || s < 0) || sum !== size) {
      throw new Error(
        `split: sizes [${sizes.join(", ")}] do not split dim ${d} (size ${size}) of shape ` +
          `${formatShape(x.shape)}: they must be integers >= 0 adding up to ${size}`,
      );
    }
  }
  const pieces: Tensor[] = [];
  let start = 0;
  for (const length of sizes) {
    pieces.push(narrowRange("split", x, d, start, length));
    start += length;
  }
  return pieces;
}

/** Options of `pad`. */
export interface PadOptions {
  /** The value of the new elements (default 0; an integer in range for i32 and u8 tensors). */
  value?: number;
}

/**
 * `torch.nn.functional.pad` in constant mode: `pads` lists (left, right) amounts for the last
 * dimension first, then the one before, and so on (at most one pair per dimension). Negative
 * amounts crop. A new contiguous tensor (one copy). Throws when a size would become negative.
 * Differentiable (the gradient is padded by the opposite amounts, cropping it back).
 */
export function pad(x: Tensor, pads: readonly number[], options: PadOptions = {}): Tensor {
  const value = options.value ?? 0;
  if (pads.length % 2 !== 0 || pads.length > 2 * x.rank) {
    throw new Error(
      `pad: ${pads.length} pad amounts [${pads.join(", ")}] for shape ${formatShape(x.shape)}: ` +
        `give (left, right) pairs, last dimension first, at most ${x.rank} pairs (${2 * x.rank} ` +
        `amounts)`,
    );
  }
  if (pads.some((p) => !Number.isInteger(p))) {
    throw new Error(`pad: pad amounts [${pads.join(", ")}] must be integers`);
  }
  const shape = padShape(x.shape, pads);
  if (shape.some((size) => size < 0)) {
    throw new Error(
      `pad: pads [${pads.join(", ")}] make shape ${formatShape(x.shape)} into ` +
        `${formatShape(shape)}: no size can become negative`,
    );
  }
  if (
    x.dtype !== "f32" && (!Number.isInteger(value) || value < (x.dtype === "u8" ? 0 : -(2 ** 31)) ||
      value > (x.dtype === "u8" ? 255 : 2 ** 31 - 1))
  ) {
    throw new Error(
      `pad: value ${value} does not fit a ${x.dtype} tensor: give an integer in its range`,
    );
  }
  return padCopy(x, pads, value);
}

function padShape(shape: readonly number[], pads: readonly number[]): number[] {
  return shape.map((size, d) => {
    const pair = shape.length - 1 - d;
    return size + (pads[2 * pair] ?? 0) + (pads[2 * pair + 1] ?? 0);
  });
}

/** The pad copy, recorded as op "pad" (shapes already checked). */
function padCopy(x: Tensor, pads: readonly number[], value: number): Tensor {
  const shape = padShape(x.shape, pads);
  const strides = rowMajorStrides(x.shape);
  let offset = 0;
  const bounds = x.shape.map((size, d): readonly [number, number] | null => {
    const pair = x.rank - 1 - d;
    const left = pads[2 * pair] ?? 0;
    const right = pads[2 * pair + 1] ?? 0;
    offset -= left * strides[d];
    return left > 0 || right > 0 ? [left, size] : null;
  });
  const source: CopySource = { strides, offset, bounds, start: 0 };
  const out = runCopy({ dtype: x.dtype, out: shape, sources: [source], selectDim: 0 }, [x], value);
  const back = pads.map((p) => -p);
  return recordOp("pad", out, [x], (grad) => [padCopy(grad, back, 0)]);
}
