/**
 * Reductions (PyTorch's semantics): `sum`, `mean`, `max`, `min`, `variance`, `std`, `logsumexp`,
 * `prod` (differentiable) and `argmax`, `argmin`, over all elements or over any dimensions
 * (`{ dim, keepdim }`), and `correctCount` (not differentiable).
 *
 * Over dimensions, one generic kernel (`reduce_dim.ts`) gives each invocation one output (or
 * four adjacent ones) and loops over its reduced elements; backward is one kernel that spreads
 * each output's gradient over its reduced elements.
 *
 * `sum`/`mean` reduce in two passes when the tensor is large: up to `updateMaxGroups` narrow
 * workgroups (see the policy) each sum a run of vec4s (read through a texture when the tensor is
 * large) into one partial, then one workgroup sums the partials. Small tensors take one pass.
 * Row-wise ops put one row on each invocation (rows are short: class scores).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import { type KernelSpec, planKernel, runKernel } from "../gpu/program.ts";
import { itemLoop, type LoopPlan, loopPlan } from "../gpu/item_loop.ts";
import { formatShape, full, Tensor, zeros } from "../tensor.ts";
import { isNan } from "./nan_wgsl.ts";
import {
  type ExpandKind,
  normalizeDims,
  reducedShape,
  type ReduceKind,
  runExpand,
  runReduce,
} from "./reduce_dim.ts";

/** Invocations of `correctCount`'s one workgroup, which reduces rows through workgroup memory. */
const REDUCE_WORKGROUP = 32;
/** Vectors each invocation of the first pass of a two-pass sum should at least sum. */
const MIN_PER_INVOCATION = 128;

/**
 * WGSL declaring `fn workgroupSum(lid: u32, value: f32) -> f32`: the sum of `value` over the
 * workgroup's `workgroupSize` invocations (a power of two), valid in invocation 0. It has
 * barriers, so every invocation must call it, from uniform control flow.
 */
export function workgroupSumWgsl(workgroupSize: number): string {
  return /* wgsl */ `
var<workgroup> scratch: array<f32, ${workgroupSize}>;

fn workgroupSum(lid: u32, value: f32) -> f32 {
  scratch[lid] = value;
  workgroupBarrier();
  for (var stride = ${u32(workgroupSize / 2)}; stride > 0u; stride >>= 1u) {
    if (lid < stride) { scratch[lid] += scratch[lid + stride]; }
    workgroupBarrier();
  }
  return scratch[0];
}`;
}

/** One pass of a sum: `partial` (the first of two passes), else the whole sum in one workgroup. */
interface SumOptions {
  size: number;
  factor: number;
  partial: boolean;
}

/**
 * `out[g] = factor * (sum of x's share g)`, for the first `size` values of x (the last vector is
 * masked). The workgroup size is a power of two (for the tree).
 */
const SUM: KernelSpec<SumOptions, LoopPlan> = {
  name: "sum",
  key: ({ size, factor, partial }) => `${size}_${factor}${partial ? "_partial" : ""}`,
  bindings: () => [
    { name: "x", role: "input", readOnce: true },
    { name: "out", role: "write" },
  ],
  plan: ({ size, partial }, policy) => {
    const vectors = Math.ceil(size / 4);
    const groups = partial
      ? Math.min(
        policy.updateMaxGroups,
        Math.ceil(vectors / (policy.narrowWorkgroup * MIN_PER_INVOCATION)),
      )
      : 1;
    return loopPlan(vectors, policy, groups);
  },
  prelude: ({ size, factor }, { plan }) => /* wgsl */ `
const SIZE: u32 = ${u32(size)};
const FACTOR: f32 = ${f32(factor)};
${workgroupSumWgsl(plan.workgroupSize)}`,
  body: ({ size }, { plan }) => /* wgsl */ `
  var acc = vec4<f32>(0.0);${
    itemLoop(
      Math.ceil(size / 4),
      plan,
      `
      // The last vector's values past SIZE are padding: masked.
      let inside = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(SIZE);
      acc += select(vec4<f32>(0.0), xVec4(j), inside);`,
      "j",
    )
  }
  let total = workgroupSum(lid, dot(acc, vec4<f32>(1.0)));
  if (lid == 0u) { out[group] = total * FACTOR; }`,
};

/**
 * factor * (sum of every element of x), as a new one-element tensor of `shape` (not recorded:
 * for ops with their own backward, e.g. the losses). One dispatch, two for large tensors.
 */
export function sumAll(x: Tensor, factor: number, shape: readonly number[]): Tensor {
  const out = Tensor.empty(shape);
  const { groups } = planKernel(SUM, { size: x.size, factor: 1, partial: true });
  if (groups <= 1) {
    runKernel(SUM, { size: x.size, factor, partial: false }, { x, out });
  } else {
    const partials = Tensor.empty([groups]);
    runKernel(SUM, { size: x.size, factor: 1, partial: true }, { x, out: partials });
    runKernel(SUM, { size: groups, factor, partial: false }, { x: partials, out });
    partials.dispose();
  }
  return out;
}

/** A tensor of `shape` whose every element is `factor * scalar[0]` (read on the GPU). */
const BROADCAST: KernelSpec<{ size: number; factor: number }, LoopPlan> = {
  name: "broadcast",
  key: ({ size, factor }) => `${size}_${factor}`,
  bindings: () => [
    { name: "scalar", role: "read" },
    { name: "out", role: "write", type: "vec4<f32>" },
  ],
  plan: ({ size }, policy) => loopPlan(Math.ceil(size / 4), policy),
  // Whole vec4s: the last may run into the buffer's padding, which nothing reads.
  body: ({ size, factor }, { plan }) => /* wgsl */ `
  let value = vec4<f32>(scalar[0] * ${f32(factor)});${
    itemLoop(Math.ceil(size / 4), plan, "      out[j] = value;", "j")
  }`,
};

function broadcastScalar(scalar: Tensor, shape: readonly number[], factor: number): Tensor {
  const out = Tensor.empty(shape);
  runKernel(BROADCAST, { size: out.size, factor }, { scalar, out });
  return out;
}

function checkFloat(op: string, x: Tensor): void {
  if (x.dtype !== "f32") {
    throw new Error(`${op}: needs an f32 tensor, got ${x.dtype} of shape ${formatShape(x.shape)}`);
  }
}

/** Which elements a reduction reduces: `dim` (one, a list, or all when absent) and `keepdim`. */
export interface ReductionOptions {
  /** The dimension(s) to reduce, negative counting from the end; all of them when absent. */
  dim?: number | readonly number[];
  /** Keep the reduced dimensions as size 1 (default false). */
  keepdim?: boolean;
}

/** Options of `variance` and `std`. */
export interface VarianceOptions extends ReductionOptions {
  /**
   * Subtracted from the element count in the divisor (default 1: the unbiased estimate, as
   * PyTorch; 0: the population variance).
   */
  correction?: number;
}

/** Options of `argmax` and `argmin`: one dimension, or none (an index into the flattened tensor). */
export interface ArgReductionOptions {
  /** The dimension to reduce; absent: the index into the flattened tensor. */
  dim?: number;
  /** Keep the reduced dimension(s) as size 1 (default false). */
  keepdim?: boolean;
}

/** A reduction's dims (sorted), output shape and number of elements reduced into each output. */
interface Reduction {
  dims: number[];
  outShape: number[];
  count: number;
  /** Whether every dimension is reduced. */
  all: boolean;
}

function prepare(op: string, x: Tensor, options: ReductionOptions): Reduction {
  checkFloat(op, x);
  const dims = normalizeDims(op, x.shape, options.dim);
  return {
    dims,
    outShape: reducedShape(x.shape, dims, options.keepdim ?? false),
    count: dims.reduce((n, d) => n * x.shape[d], 1),
    all: dims.length === x.rank,
  };
}

/** Refuses a reduction with no element to reduce (max, min, argmax, argmin: as PyTorch). */
function checkNotEmpty(op: string, x: Tensor, { dims, count }: Reduction): void {
  if (count === 0) {
    throw new Error(
      `${op}: cannot reduce over a dimension of size 0 (shape ${formatShape(x.shape)}, ` +
        `dims ${formatShape(dims)}); the result would have no value`,
    );
  }
}

/** The result of reducing nothing: `value` everywhere, with a zero gradient. */
function emptyReduction(op: string, x: Tensor, shape: readonly number[], value: number): Tensor {
  const out = full(shape, value);
  const inputShape = x.shape;
  return recordOp(op, out, [x], () => [zeros(inputShape)]);
}

/** The gradient of a reduction: `EXPAND` of `kind` from `grad` and `resources`. */
function expand(
  kind: ExpandKind,
  x: Tensor,
  dims: readonly number[],
  resources: Record<string, Tensor>,
  constant?: number,
): Tensor {
  return runExpand(kind, x.shape, dims, resources, constant, Tensor.empty(x.shape));
}

function sumOrMean(op: "sum" | "mean", x: Tensor, options: ReductionOptions): Tensor {
  const reduction = prepare(op, x, options);
  const { dims, outShape, count } = reduction;
  const factor = op === "mean" ? 1 / count : 1;
  if (count === 0 || x.size === 0) {
    return emptyReduction(op, x, outShape, count === 0 && op === "mean" ? NaN : 0);
  }
  const inputShape = x.shape;
  if (reduction.all) {
    const out = sumAll(x, factor, outShape);
    return recordOp(op, out, [x], (grad) => [broadcastScalar(grad, inputShape, factor)]);
  }
  const { out } = runReduce("sum", x, dims, outShape, factor);
  return recordOp(op, out, [x], (grad) => [expand("scale", x, dims, { g: grad }, factor)]);
}

/**
 * The sum of the elements over `dim` (all of them when absent), keeping the reduced dimensions
 * as size 1 with `keepdim`. Differentiable.
 *
 * @example Sums of a [2, 3] tensor
 * ```ts
 * import { init, sum, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * console.log(await sum(x).item()); // 21
 * console.log(await sum(x, { dim: 0 }).toArray()); // [5, 7, 9]
 * console.log(sum(x, { dim: -1, keepdim: true }).shape); // [2, 1]
 * ```
 */
export function sum(x: Tensor, options: ReductionOptions = {}): Tensor {
  return sumOrMean("sum", x, options);
}

/**
 * The mean of the elements over `dim` (all of them when absent; NaN where there is none).
 * Differentiable.
 */
export function mean(x: Tensor, options: ReductionOptions = {}): Tensor {
  return sumOrMean("mean", x, options);
}

function extreme(op: "max" | "min", x: Tensor, options: ReductionOptions): Tensor {
  const reduction = prepare(op, x, options);
  checkNotEmpty(op, x, reduction);
  const { dims, outShape } = reduction;
  if (options.dim === undefined) {
    const { out, ties } = runReduce(`${op}_ties` as ReduceKind, x, dims, outShape);
    return recordOp(
      op,
      out,
      [x],
      (grad) => [expand("ties", x, dims, { g: grad, x, y: out, aux: ties })],
      [ties],
    );
  }
  const { out, index } = runReduce(op, x, dims, outShape);
  return recordOp(
    op,
    out,
    [x],
    (grad) => [expand("pick", x, dims, { g: grad, index })],
    [index],
  );
}

/**
 * The largest element over `dim` (all of them when absent). NaN if any reduced element is NaN
 * (as PyTorch). Returns the values only: `argmax` gives the indices. Differentiable: over a
 * `dim` (one or a list), the gradient goes to the first maximum (row-major over the reduced
 * dims), as PyTorch's `max(x, dim)`; over all elements (no `dim`) it is shared evenly among the
 * elements equal to the maximum (NaN ones when it is NaN), as PyTorch's `max(x)`. Throws on an
 * empty reduction.
 */
export function max(x: Tensor, options: ReductionOptions = {}): Tensor {
  return extreme("max", x, options);
}

/**
 * The smallest element over `dim` (all of them when absent); NaN and gradients as `max` (the
 * first minimum over a `dim`, shared among ties over all elements). `argmin` gives the indices.
 */
export function min(x: Tensor, options: ReductionOptions = {}): Tensor {
  return extreme("min", x, options);
}

function argExtreme(op: "argmax" | "argmin", x: Tensor, options: ArgReductionOptions): Tensor {
  if (options.dim !== undefined && typeof options.dim !== "number") {
    throw new Error(
      `${op}: dim must be one dimension (a number), got ${JSON.stringify(options.dim)}`,
    );
  }
  const reduction = prepare(op, x, options);
  checkNotEmpty(op, x, reduction);
  return runReduce(op, x, reduction.dims, reduction.outShape).out;
}

/**
 * The index of the first maximum along `dim` (of the first NaN, if any, as PyTorch), as an i32
 * tensor; without `dim`, the index into the flattened tensor (shape [], or all ones with
 * `keepdim`). Not differentiable. `argmax(scores, { dim: -1 })` gives each row's class.
 *
 * @example Per row, and over the whole tensor
 * ```ts
 * import { argmax, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 5, 2, 7, 0, 3], [2, 3]);
 * console.log(await argmax(x, { dim: -1 }).toTypedArray()); // Int32Array [1, 0]
 * console.log(await argmax(x).item()); // 3
 * ```
 */
export function argmax(x: Tensor, options: ArgReductionOptions = {}): Tensor {
  return argExtreme("argmax", x, options);
}

/** The index of the first minimum along `dim` (or of the first NaN), as `argmax`. */
export function argmin(x: Tensor, options: ArgReductionOptions = {}): Tensor {
  return argExtreme("argmin", x, options);
}

function spread(op: "variance" | "std", x: Tensor, options: VarianceOptions): Tensor {
  const reduction = prepare(op, x, options);
  const { dims, outShape, count } = reduction;
  const correction = options.correction ?? 1;
  if (!Number.isFinite(correction)) {
    throw new Error(`${op}: correction must be a finite number, got ${correction}`);
  }
  if (count === 0 || x.size === 0) return emptyReduction(op, x, outShape, NaN);
  const kind = op === "variance" ? "var" : "std";
  const { out, mean } = runReduce(kind, x, dims, outShape, correction);
  const divisor = Math.max(0, count - correction);
  const inputShape = x.shape;
  return recordOp(
    op,
    out,
    [x],
    (grad) => [
      // No divisor: the result is inf or NaN, and its gradient NaN (PyTorch's for one element).
      divisor === 0
        ? full(inputShape, NaN)
        : expand(kind, x, dims, { g: grad, x, y: out, aux: mean }, divisor),
    ],
    [mean],
  );
}

/**
 * The variance over `dim` (all elements when absent): the sum of squared deviations from the
 * mean divided by count - `correction` (default 1, as PyTorch's `var`; inf or NaN where that is
 * <= 0, with a NaN gradient). PyTorch's `torch.var` (a reserved word here). Differentiable.
 */
export function variance(x: Tensor, options: VarianceOptions = {}): Tensor {
  return spread("variance", x, options);
}

/**
 * The standard deviation over `dim`: sqrt(variance) with the same `correction` (default 1).
 * Differentiable (no gradient where it is 0, as PyTorch).
 */
export function std(x: Tensor, options: VarianceOptions = {}): Tensor {
  return spread("std", x, options);
}

/**
 * log(sum(exp(x))) over `dim` (all elements when absent), computed without overflow (shifted by
 * the maximum); -inf where nothing is reduced. Differentiable: the gradient is softmax(x) times
 * the output's.
 */
export function logsumexp(x: Tensor, options: ReductionOptions = {}): Tensor {
  const { dims, outShape, count } = prepare("logsumexp", x, options);
  if (count === 0 || x.size === 0) return emptyReduction("logsumexp", x, outShape, -Infinity);
  const { out } = runReduce("logsumexp", x, dims, outShape);
  return recordOp(
    "logsumexp",
    out,
    [x],
    (grad) => [expand("logsumexp", x, dims, { g: grad, x, y: out })],
  );
}

/**
 * The product of the elements over `dim` (all of them when absent; 1 where there is none).
 * Differentiable, exactly with zeros as PyTorch: an element's gradient is the product of the
 * others (0 when two or more are 0).
 */
export function prod(x: Tensor, options: ReductionOptions = {}): Tensor {
  const { dims, outShape, count } = prepare("prod", x, options);
  if (count === 0 || x.size === 0) return emptyReduction("prod", x, outShape, 1);
  const { out, nonzero, zeros } = runReduce("prod", x, dims, outShape);
  return recordOp(
    "prod",
    out,
    [x],
    (grad) => [expand("prod", x, dims, { g: grad, x, y: out, aux: nonzero, zeros })],
    [nonzero, zeros],
  );
}

function checkRows(op: string, x: Tensor, name = "x"): void {
  if (x.rank !== 2 || x.shape[1] === 0) {
    throw new Error(
      `${op}: ${name} must have shape [N, C] with C > 0, got ${formatShape(x.shape)}`,
    );
  }
  checkFloat(op, x);
}

/**
 * WGSL `fn rowArgmax(base: u32) -> u32` over the storage array `x`: the first maximum of
 * `x[base .. base + classes)`, or its first NaN if it holds one (as PyTorch's argmax).
 */
export function rowArgmaxWgsl(classes: number): string {
  return /* wgsl */ `
fn rowArgmax(base: u32) -> u32 {
  var best = x[base];
  var arg = 0u;
  for (var j = 1u; j < ${u32(classes)}; j++) {
    let v = x[base + j];
    if ((v > best || ${isNan("v")}) && !${isNan("best")}) { best = v; arg = j; }
  }
  return arg;
}`;
}

/**
 * Checks that `target` is an i32 tensor of shape [N] for `x` of shape [N, C]; the message names
 * the op and both shapes.
 */
export function checkTarget(op: string, x: Tensor, target: Tensor, name = "scores"): void {
  checkRows(op, x, name);
  if (target.rank !== 1 || target.shape[0] !== x.shape[0]) {
    throw new Error(
      `${op}: target shape ${formatShape(target.shape)} does not match ${name} ` +
        `${formatShape(x.shape)} (needs [${x.shape[0]}])`,
    );
  }
  if (target.dtype !== "i32") {
    throw new Error(`${op}: target must be an i32 tensor, got ${target.dtype}`);
  }
}

/** How many rows have their first maximum at their label: one workgroup, a tree at the end. */
const CORRECT_COUNT: KernelSpec<{ rows: number; classes: number }> = {
  name: "correct_count",
  key: ({ rows, classes }) => `${rows}x${classes}`,
  bindings: () => [
    { name: "x", role: "read" },
    { name: "labels", role: "read", type: "i32" },
    { name: "out", role: "write" },
  ],
  plan: () => ({ workgroupSize: REDUCE_WORKGROUP, groups: 1 }),
  prelude: ({ rows, classes }) => /* wgsl */ `
const ROWS: u32 = ${u32(rows)};
${rowArgmaxWgsl(classes)}
${workgroupSumWgsl(REDUCE_WORKGROUP)}`,
  body: ({ classes }) => /* wgsl */ `
  var count = 0.0;
  for (var row = lid; row < ROWS; row += ${u32(REDUCE_WORKGROUP)}) {
    if (i32(rowArgmax(row * ${u32(classes)})) == labels[row]) { count += 1.0; }
  }
  let total = workgroupSum(lid, count);
  if (lid == 0u) { out[0] = total; }`,
};

/**
 * How many rows of scores [N, C] have their first maximum at target [N] (i32), as an f32
 * scalar tensor []. Not differentiable; read it back rarely (e.g. once per epoch, after summing).
 */
export function correctCount(scores: Tensor, target: Tensor): Tensor {
  checkTarget("correctCount", scores, target);
  const [rows, classes] = scores.shape;
  const out = Tensor.empty([]);
  runKernel(CORRECT_COUNT, { rows, classes }, { x: scores, labels: target, out });
  return out;
}
