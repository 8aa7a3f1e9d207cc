/**
 * The view ops (PyTorch's names): `reshape`, `view`, `flatten`, `squeeze`, `unsqueeze`. wgtorch
 * tensors are always contiguous (row-major), so these only give the same elements another shape:
 * no copy and no kernel, the result shares the input's buffer (`Tensor.view`, reference counted:
 * disposing either leaves the other valid). Any dtype. Differentiable: the gradient is the output
 * gradient viewed with the input's shape.
 *
 * The copying layout ops (transpose, permute, expand, cat, ...) are in `layout.ts`.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { formatShape, type Tensor } from "../tensor.ts";

/**
 * `dim` as an index in [0, rank): negative dims count from the end (-1 is the last). Throws naming
 * `op`, the dim, the shape and the valid range. A 0-d tensor takes dims -1 and 0 (PyTorch's rule)
 * unless `rank` counts a new dimension (`unsqueeze`, `stack`: pass the rank after it).
 */
export function normalizeDim(
  op: string,
  dim: number,
  rank: number,
  shape: readonly number[],
): number {
  const span = Math.max(rank, 1);
  if (!Number.isInteger(dim) || dim < -span || dim >= span) {
    throw new Error(
      `${op}: dim ${dim} is out of range for shape ${formatShape(shape)}: ` +
        `valid dims are ${-span} to ${span - 1}`,
    );
  }
  return dim < 0 ? dim + span : dim;
}

/**
 * The same elements with shape `shape` (no copy: shares `x`'s buffer). One dimension may be -1,
 * inferred from the others. Throws naming both shapes when the sizes differ. Differentiable.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return x.reshape(shape);
}

/**
 * PyTorch's `Tensor.view`: the same as `reshape` here, as wgtorch tensors are always contiguous
 * (no copy: shares `x`'s buffer). One dimension may be -1. Differentiable.
 */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  return x.reshape(shape);
}

/** Options of `flatten`. */
export interface FlattenOptions {
  /** The first dimension flattened (default 0; negative counts from the end). */
  startDim?: number;
  /** The last dimension flattened (default -1, the last). */
  endDim?: number;
}

/**
 * `torch.flatten`: dimensions `startDim` to `endDim` (inclusive) merged into one (no copy). A 0-d
 * tensor becomes 1-d of one element. Throws when `startDim` comes after `endDim`. Note the
 * defaults: the function flattens everything (startDim 0), while the method `Tensor.flatten`
 * (used by the `Flatten` layer) keeps the batch dimension (startDim 1). Differentiable.
 */
export function flatten(x: Tensor, options: FlattenOptions = {}): Tensor {
  const { startDim = 0, endDim = -1 } = options;
  const start = normalizeDim("flatten", startDim, x.rank, x.shape);
  const end = normalizeDim("flatten", endDim, x.rank, x.shape);
  if (start > end) {
    throw new Error(
      `flatten: startDim ${startDim} (dim ${start}) comes after endDim ${endDim} (dim ${end}) ` +
        `for shape ${formatShape(x.shape)}: startDim must not be after endDim`,
    );
  }
  if (x.rank === 0) return x.reshape([1]);
  const merged = x.shape.slice(start, end + 1).reduce((a, b) => a * b, 1);
  return x.reshape([...x.shape.slice(0, start), merged, ...x.shape.slice(end + 1)]);
}

/** Options of `squeeze`. */
export interface SqueezeOptions {
  /**
   * The dimension(s) to remove where they have size 1 (others are left as they are, like
   * PyTorch); default: every size-1 dimension.
   */
  dim?: number | readonly number[];
}

/**
 * `x` without its size-1 dimensions (all, or those of `dim` that have size 1), no copy. Throws
 * for a dim out of range or listed twice. Differentiable.
 */
export function squeeze(x: Tensor, options: SqueezeOptions = {}): Tensor {
  const { dim } = options;
  let dims: Set<number>;
  if (dim === undefined) dims = new Set(x.shape.keys());
  else {
    const list = typeof dim === "number" ? [dim] : dim;
    dims = new Set();
    for (const d of list) {
      const k = normalizeDim("squeeze", d, x.rank, x.shape);
      if (dims.has(k)) {
        throw new Error(
          `squeeze: dim ${d} appears twice in dims [${list.join(", ")}] (shape ` +
            `${formatShape(x.shape)}): list each dimension once`,
        );
      }
      dims.add(k);
    }
  }
  return x.reshape(x.shape.filter((size, d) => !(size === 1 && dims.has(d))));
}

/**
 * `x` with a new dimension of size 1 at `dim`, in [-rank - 1, rank] (-1: after the last). No
 * copy. Differentiable.
 */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normalizeDim("unsqueeze", dim, x.rank + 1, x.shape);
  return x.reshape([...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}

/** A differentiable view of `x` with `shape` (same size), recorded as op `name`. */
export function viewAs(name: string, x: Tensor, shape: readonly number[]): Tensor {
  const out = x.view(shape);
  const inputShape = x.shape;
  return recordOp(name, out, [x], (grad) => [grad.view(inputShape)]);
}
