/**
 * Indexing ops (PyTorch's names): `indexSelect`, `gather` and `oneHot`, with `i32` indices.
 *
 * Indices are read on the GPU, so they cannot be checked without a readback: an index out of
 * range (negative ones included: PyTorch's negative indices are not supported) selects 0 and
 * gets no gradient, and no kernel ever reads outside its buffers (as `nllLoss` treats labels).
 * `oneHot` gives an all-zero row for such an index.
 *
 * Gradients need no atomics: in `indexSelect`'s (PyTorch's `index_add`), each element of x's
 * gradient loops over the index list and sums the gradient rows that selected it (repeated
 * indices add up); in `gather`'s (`scatter_add`), each element loops over the index's extent
 * along `dim`. Fine for index lists of moderate length.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor, zeros } from "../tensor.ts";

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Row-major strides of `shape`. */
function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

/**
 * WGSL statements splitting the linear index `linear` into coordinates `c0`, `c1`, ... of
 * `shape` (`let` bindings).
 */
function coordinates(linear: string, shape: readonly number[]): string {
  if (shape.length === 0) return "";
  const lines = [`var rest = ${linear};`];
  for (let d = shape.length - 1; d > 0; d--) {
    lines.push(`let c${d} = rest % ${u32(shape[d])}; rest = rest / ${u32(shape[d])};`);
  }
  lines.push("let c0 = rest;");
  return lines.join("\n    ");
}

/** The binding of the data input `x`: an f32 input (texture or storage) or an i32 array. */
function dataBinding(int: boolean): BindingSpec {
  return int ? { name: "x", role: "read", type: "i32" } : { name: "x", role: "input" };
}

/** WGSL reading element `k` of x. */
function readX(int: boolean, k: string): string {
  return int ? `x[${k}]` : `xAt(${k})`;
}

/** Normalises `dim` for `rank` (negative counts from the end), or throws naming `op`. */
function normalizeDim(op: string, dim: number, rank: number, shape: readonly number[]): number {
  const lowest = -Math.max(rank, 1);
  const highest = Math.max(rank, 1) - 1;
  if (!Number.isInteger(dim) || dim < lowest || dim > highest) {
    throw new Error(
      `${op}: dim ${dim} is out of range for x of shape ${formatShape(shape)} ` +
        `(rank ${rank}: dim must be in [${lowest}, ${highest}])`,
    );
  }
  return dim < 0 ? dim + Math.max(rank, 1) : dim;
}

function checkData(op: string, x: Tensor): void {
  if (x.dtype !== "f32" && x.dtype !== "i32") {
    throw new Error(`${op}: x must be an f32 or i32 tensor, got ${x.dtype} (cast(x, "f32") first)`);
  }
}

function checkIndex(op: string, index: Tensor): void {
  if (index.dtype !== "i32") {
    throw new Error(
      `${op}: index must be an i32 tensor, got ${index.dtype} (cast(index, "i32") first)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// indexSelect

/** x viewed as [outer, size, inner] around `dim`, and the index's length. */
interface SelectOptions {
  outer: number;
  size: number;
  inner: number;
  count: number;
  /** Whether x (and the output) is i32. */
  int: boolean;
}

const selectKey = ({ outer, size, inner, count, int }: SelectOptions) =>
  `${outer}_${size}_${inner}_${count}${int ? "_i32" : ""}`;

/** out[o, j, r] = x[o, index[j], r], 0 where index[j] is out of range. */
const INDEX_SELECT: KernelSpec<SelectOptions> = {
  name: "index_select",
  key: selectKey,
  bindings: ({ int }) => [
    dataBinding(int),
    { name: "index", role: "read", type: "i32" },
    { name: "out", role: "write", type: int ? "i32" : "f32" },
  ],
  plan: ({ outer, inner, count }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(outer * count * inner / policy.elementwiseWorkgroup),
  }),
  prelude: ({ size, inner, count }) => /* wgsl */ `
const SIZE: i32 = ${size}; // x's extent along dim
const INNER: u32 = ${u32(inner)};
const COUNT: u32 = ${u32(count)}; // the index's length`,
  body: ({ outer, inner, count, int }, { plan }) => /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(outer * count * inner)}) {
    let r = i % INNER;
    let j = (i / INNER) % COUNT;
    let o = i / (INNER * COUNT);
    let at = index[j];
    if (at >= 0 && at < SIZE) {
      out[i] = ${readX(int, "(o * u32(SIZE) + u32(at)) * INNER + r")};
    } else {
      out[i] = ${int ? "0" : "0.0"};
    }
  }`,
};

/** grad_x[o, d, r] = the sum of grad[o, j, r] over the j with index[j] == d (index_add). */
const INDEX_ADD: KernelSpec<SelectOptions> = {
  name: "index_select_backward",
  key: selectKey,
  bindings: () => [
    { name: "grad", role: "input" },
    { name: "index", role: "read", type: "i32" },
    { name: "out", role: "write" },
  ],
  plan: ({ outer, size, inner }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(outer * size * inner / policy.elementwiseWorkgroup),
  }),
  prelude: ({ size, inner, count }) => /* wgsl */ `
const SIZE: u32 = ${u32(size)}; // x's extent along dim
const INNER: u32 = ${u32(inner)};
const COUNT: u32 = ${u32(count)}; // the index's length`,
  body: ({ outer, size, inner }, { plan }) => /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(outer * size * inner)}) {
    let r = i % INNER;
    let d = i32((i / INNER) % SIZE);
    let o = i / (INNER * SIZE);
    var sum = 0.0;
    for (var j = 0u; j < COUNT; j++) {
      if (index[j] == d) { sum += gradAt((o * COUNT + j) * INNER + r); }
    }
    out[i] = sum;
  }`,
};

/**
 * The slices of `x` along `dim` at the positions `index` (a 1-D i32 tensor), in its order, as
 * `torch.index_select`: the result has x's shape with `index.size` at `dim`. `dim` may be
 * negative. x is f32 (differentiable: repeated indices add their gradients, PyTorch's
 * `index_add`) or i32. An index out of range (negative ones included) selects zeros.
 *
 * @example Picking rows
 * ```ts
 * import { indexSelect, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 2, 3, 4, 5, 6], [3, 2]);
 * const rows = indexSelect(x, 0, tensor([2, 0, 2], [3], { dtype: "i32" }));
 * console.log(rows.shape, await rows.toArray()); // [3, 2] [5, 6, 1, 2, 5, 6]
 * ```
 */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  checkData("indexSelect", x);
  checkIndex("indexSelect", index);
  if (index.rank !== 1) {
    throw new Error(
      `indexSelect: index must be 1-D, got shape ${formatShape(index.shape)} (rank ${index.rank})`,
    );
  }
  if (x.rank === 0) {
    throw new Error("indexSelect: x must have at least one dimension, got a 0-d tensor");
  }
  const d = normalizeDim("indexSelect", dim, x.rank, x.shape);
  const options: SelectOptions = {
    outer: sizeOf(x.shape.slice(0, d)),
    size: x.shape[d],
    inner: sizeOf(x.shape.slice(d + 1)),
    count: index.size,
    int: x.dtype === "i32",
  };
  const shape = x.shape.map((n, k) => k === d ? index.size : n);
  const out = Tensor.empty(shape, x.dtype);
  if (out.size > 0) runKernel(INDEX_SELECT, options, { x, index, out });
  return recordOp("indexSelect", out, [x, index], (grad) => {
    if (out.size === 0 || x.size === 0) return [zeros(x.shape), null];
    const gradX = Tensor.empty(x.shape);
    runKernel(INDEX_ADD, options, { grad, index, out: gradX });
    return [gradX, null];
  });
}

// ---------------------------------------------------------------------------------------------
// gather

/** Shapes of x and the index (of equal rank, at least 1), and the dimension gathered along. */
interface GatherOptions {
  x: readonly number[];
  index: readonly number[];
  dim: number;
  /** Whether x (and the output) is i32. */
  int: boolean;
}

const gatherKey = ({ x, index, dim, int }: GatherOptions) =>
  `${x.join("x")}_${index.join("x")}_${dim}${int ? "_i32" : ""}`;

/** out[p] = x[p with p[dim] = index[p]], 0 where index[p] is out of range. */
const GATHER: KernelSpec<GatherOptions> = {
  name: "gather",
  key: gatherKey,
  bindings: ({ int }) => [
    dataBinding(int),
    { name: "index", role: "read", type: "i32" },
    { name: "out", role: "write", type: int ? "i32" : "f32" },
  ],
  plan: ({ index }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(sizeOf(index) / policy.elementwiseWorkgroup),
  }),
  body: ({ x, index, dim, int }, { plan }) => {
    const strides = stridesOf(x);
    const offset = x.map((_, d) => d === dim ? "" : ` + c${d} * ${u32(strides[d])}`).join("");
    return /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(sizeOf(index))}) {
    ${coordinates("i", index)}
    let base = 0u${offset};
    let at = index[i];
    if (at >= 0 && at < ${x[dim]}) {
      out[i] = ${readX(int, `base + u32(at) * ${u32(strides[dim])}`)};
    } else {
      out[i] = ${int ? "0" : "0.0"};
    }
  }`;
  },
};

/**
 * grad_x[q] = the sum of grad[p] over the p with p = q off `dim` and index[p] == q[dim]
 * (scatter_add): each element loops over the index's extent along `dim`.
 */
const SCATTER_ADD: KernelSpec<GatherOptions> = {
  name: "gather_backward",
  key: gatherKey,
  bindings: () => [
    { name: "grad", role: "input" },
    { name: "index", role: "read", type: "i32" },
    { name: "out", role: "write" },
  ],
  plan: ({ x }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(sizeOf(x) / policy.elementwiseWorkgroup),
  }),
  body: ({ x, index, dim }, { plan }) => {
    const strides = stridesOf(index);
    const others = x.map((_, d) => d).filter((d) => d !== dim);
    // Positions past the index's extent (off dim) were never gathered from.
    const outside = others.filter((d) => index[d] < x[d]).map((d) => `c${d} >= ${u32(index[d])}`);
    const base = others.map((d) => ` + c${d} * ${u32(strides[d])}`).join("");
    return /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(sizeOf(x))}) {
    ${coordinates("i", x)}
    var sum = 0.0;
    if (!(${outside.length ? outside.join(" || ") : "false"})) {
      let base = 0u${base};
      for (var k = 0u; k < ${u32(index[dim])}; k++) {
        let p = base + k * ${u32(strides[dim])};
        if (index[p] == i32(c${dim})) { sum += gradAt(p); }
      }
    }
    out[i] = sum;
  }`;
  },
};

/**
 * Values of `x` along `dim` at the positions `index` holds, as `torch.gather`: `index` (i32)
 * has x's rank and, off `dim`, sizes no larger than x's; the result has index's shape, with
 * out[i][j][k] = x[index[i][j][k]][j][k] for dim 0. `dim` may be negative. x is f32
 * (differentiable: PyTorch's `scatter_add` of the gradient) or i32. An index out of range
 * (negative ones included) gives 0.
 *
 * @example Picking one value per row
 * ```ts
 * import { gather, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const picked = gather(x, 1, tensor([2, 0], [2, 1], { dtype: "i32" }));
 * console.log(picked.shape, await picked.toArray()); // [2, 1] [3, 4]
 * ```
 */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  checkData("gather", x);
  checkIndex("gather", index);
  if (index.rank !== x.rank) {
    throw new Error(
      `gather: index must have x's rank: x has shape ${formatShape(x.shape)} (rank ${x.rank}), ` +
        `index ${formatShape(index.shape)} (rank ${index.rank})`,
    );
  }
  const d = normalizeDim("gather", dim, x.rank, x.shape);
  // A 0-d x and index are gathered as shape [1].
  const xShape = x.rank === 0 ? [1] : x.shape;
  const indexShape = x.rank === 0 ? [1] : index.shape;
  for (let k = 0; k < xShape.length; k++) {
    if (k !== d && indexShape[k] > xShape[k]) {
      throw new Error(
        `gather: index of shape ${formatShape(index.shape)} is larger than x of shape ` +
          `${formatShape(x.shape)} in dimension ${k} (only dimension ${d}, the one gathered ` +
          "along, may be)",
      );
    }
  }
  const options: GatherOptions = { x: xShape, index: indexShape, dim: d, int: x.dtype === "i32" };
  const out = Tensor.empty(index.shape, x.dtype);
  if (out.size > 0) runKernel(GATHER, options, { x, index, out });
  return recordOp("gather", out, [x, index], (grad) => {
    if (out.size === 0 || x.size === 0) return [zeros(x.shape), null];
    const gradX = Tensor.empty(x.shape);
    runKernel(SCATTER_ADD, options, { grad, index, out: gradX });
    return [gradX, null];
  });
}

// ---------------------------------------------------------------------------------------------
// oneHot

/** Options of the one-hot kernel. */
interface OneHotOptions {
  size: number;
  classes: number;
}

/** out[r, c] = 1 where index[r] == c, else 0. */
const ONE_HOT: KernelSpec<OneHotOptions> = {
  name: "one_hot",
  key: ({ size, classes }) => `${size}_${classes}`,
  bindings: () => [
    { name: "index", role: "read", type: "i32" },
    { name: "out", role: "write", type: "i32" },
  ],
  plan: ({ size, classes }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(size * classes / policy.elementwiseWorkgroup),
  }),
  prelude: ({ classes }) => `const CLASSES: u32 = ${u32(classes)};`,
  body: ({ size, classes }, { plan }) => /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(size * classes)}) {
    out[i] = select(0, 1, index[i / CLASSES] == i32(i % CLASSES));
  }`,
};

/**
 * The one-hot encoding of `index` (i32): shape `[...index.shape, numClasses]`, 1 at each
 * index's class and 0 elsewhere, as `torch.nn.functional.one_hot`. The result is `i32` (PyTorch
 * gives int64): `cast(oneHot(labels, 10), "f32")` for a float target. `numClasses` is required
 * (PyTorch's -1, inferring it from the largest index, would need a readback); an index out of
 * `[0, numClasses)` gives an all-zero row (PyTorch throws). Not differentiable.
 *
 * @example Labels to targets
 * ```ts
 * import { init, oneHot, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const targets = oneHot(tensor([2, 0], [2], { dtype: "i32" }), 3);
 * console.log(targets.shape, await targets.toTypedArray()); // [2, 3] [0, 0, 1, 1, 0, 0]
 * ```
 */
export function oneHot(index: Tensor, numClasses: number): Tensor {
  checkIndex("oneHot", index);
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`oneHot: numClasses must be a positive integer, got ${numClasses}`);
  }
  const out = Tensor.empty([...index.shape, numClasses], "i32");
  if (out.size > 0) {
    runKernel(ONE_HOT, { size: index.size, classes: numClasses }, { index, out });
  }
  return out;
}
