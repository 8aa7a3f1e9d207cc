/**
 * Reductions: `sum` and `mean` of all elements (differentiable), `argmax` of each row and
 * `correctCount` (not differentiable).
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
import { type KernelPlan, type KernelSpec, planKernel, runKernel } from "../gpu/program.ts";
import { formatShape, full, Tensor, zeros } from "../tensor.ts";
import { isNan } from "./nan_wgsl.ts";

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

/** A plan in which each invocation loops over a run of `perInvocation` vectors. */
interface LoopPlan extends KernelPlan {
  groups: number;
  perInvocation: number;
}

/** The loop plan of `vectors` vectors over `groups` workgroups of `workgroupSize`. */
function loopPlan(vectors: number, workgroupSize: number, groups: number): LoopPlan {
  return { workgroupSize, groups, perInvocation: Math.ceil(vectors / (groups * workgroupSize)) };
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
    const workgroupSize = policy.narrowWorkgroup;
    const groups = partial
      ? Math.min(
        policy.updateMaxGroups,
        Math.ceil(vectors / (workgroupSize * MIN_PER_INVOCATION)),
      )
      : 1;
    return loopPlan(vectors, workgroupSize, groups);
  },
  prelude: ({ size, factor }, { plan }) => /* wgsl */ `
const SIZE: u32 = ${u32(size)};
const FACTOR: f32 = ${f32(factor)};
${workgroupSumWgsl(plan.workgroupSize)}`,
  body: ({ size }, { plan }) => /* wgsl */ `
  var acc = vec4<f32>(0.0);
  let base = group * ${u32(plan.perInvocation * plan.workgroupSize)} + lid;
  for (var k = 0u; k < ${u32(plan.perInvocation)}; k++) {
    let j = base + k * ${u32(plan.workgroupSize)};
    if (j < ${u32(Math.ceil(size / 4))}) {
      // The last vector's values past SIZE are padding: masked.
      let inside = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(SIZE);
      acc += select(vec4<f32>(0.0), xVec4(j), inside);
    }
  }
  let total = workgroupSum(lid, dot(acc, vec4<f32>(1.0)));
  if (lid == 0u) { out[group] = total * FACTOR; }`,
};

/** factor * (sum of every element of x), as a new scalar tensor. */
function sumAll(x: Tensor, factor: number): Tensor {
  const out = Tensor.empty([]);
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
  plan: ({ size }, policy) => {
    const vectors = Math.ceil(size / 4);
    const workgroupSize = policy.narrowWorkgroup;
    const groups = Math.min(policy.updateMaxGroups, Math.ceil(vectors / workgroupSize));
    return loopPlan(vectors, workgroupSize, groups);
  },
  // Whole vec4s: the last may run into the buffer's padding, which nothing reads.
  body: ({ size, factor }, { plan }) => /* wgsl */ `
  let value = vec4<f32>(scalar[0] * ${f32(factor)});
  let base = group * ${u32(plan.perInvocation * plan.workgroupSize)} + lid;
  for (var k = 0u; k < ${u32(plan.perInvocation)}; k++) {
    let j = base + k * ${u32(plan.workgroupSize)};
    if (j < ${u32(Math.ceil(size / 4))}) { out[j] = value; }
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

function reduceAll(op: string, x: Tensor, factor: number): Tensor {
  checkFloat(op, x);
  if (x.size === 0) {
    const empty = full([], op === "mean" ? NaN : 0);
    return recordOp(op, empty, [x], () => [zeros(x.shape)]);
  }
  const out = sumAll(x, factor);
  const inputShape = x.shape;
  return recordOp(op, out, [x], (grad) => [broadcastScalar(grad, inputShape, factor)]);
}

/** The sum of every element, as a scalar tensor of shape []. Differentiable. */
export function sum(x: Tensor): Tensor {
  return reduceAll("sum", x, 1);
}

/** The mean of every element, as a scalar tensor of shape [] (NaN when empty). Differentiable. */
export function mean(x: Tensor): Tensor {
  return reduceAll("mean", x, 1 / x.size);
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

/** The index of the first maximum of each row, one row per invocation. */
const ARGMAX: KernelSpec<{ rows: number; classes: number }> = {
  name: "argmax",
  key: ({ rows, classes }) => `${rows}x${classes}`,
  bindings: () => [
    { name: "x", role: "read" },
    { name: "out", role: "write", type: "i32" },
  ],
  plan: ({ rows }, policy) => ({
    workgroupSize: policy.narrowWorkgroup,
    groups: Math.ceil(rows / policy.narrowWorkgroup),
  }),
  prelude: ({ rows, classes }) => /* wgsl */ `
const ROWS: u32 = ${u32(rows)};
${rowArgmaxWgsl(classes)}`,
  body: ({ classes }, { plan }) => /* wgsl */ `
  let row = group * ${u32(plan.workgroupSize)} + lid;
  if (row < ROWS) { out[row] = i32(rowArgmax(row * ${u32(classes)})); }`,
};

/**
 * The index of the first maximum of each row of x [N, C] (of its first NaN, if any), as an i32
 * tensor [N].
 */
export function argmax(x: Tensor): Tensor {
  checkRows("argmax", x);
  const [rows, classes] = x.shape;
  const out = Tensor.empty([rows], "i32");
  runKernel(ARGMAX, { rows, classes }, { x, out });
  return out;
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
