/**
 * Reductions: `sum` and `mean` of all elements (differentiable), `argmax` of each row and
 * `correctCount` (not differentiable).
 *
 * `sum`/`mean` reduce in two passes when the tensor is large: up to `MAX_GROUPS` workgroups of 8
 * invocations each sum a run of vec4s (read through a texture when the tensor is large) into one
 * partial, then one workgroup sums the partials. Small tensors take one pass. Row-wise ops put one row on each invocation (rows are short: class scores).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch, type Resource } from "../stream.ts";
import { releaseTexture, tensorTexture, textureReaders } from "../texture.ts";
import { formatShape, full, Tensor, zeros } from "../tensor.ts";
import { isNan } from "./nan_wgsl.ts";

/** Invocations of the one-workgroup kernels that reduce rows through workgroup memory. */
const REDUCE_WORKGROUP = 32;
/**
 * Invocations of the sum kernels' workgroups (a power of two) and of the broadcast's: one SIMD
 * vector on llvmpipe, each looping over a run of vectors.
 */
const SUM_WORKGROUP = 8;
const BROADCAST_WORKGROUP = 8;
/** Most workgroups of the first pass of a two-pass sum, and of a broadcast. */
const MAX_GROUPS = 64;
/** Vectors each invocation of the first pass should at least sum. */
const MIN_PER_INVOCATION = 128;
/** Inputs of at least this many elements are read through a texture (see texture.ts). */
const TEXTURE_MIN_SIZE = 4096;
/** Invocations of row-wise kernels. */
const ROW_WORKGROUP = 8;

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

/**
 * Encodes `out[g] = factor * (sum of x's share g)` over `groups` workgroups for the first `size`
 * values of `input` (a texture, or a storage buffer read as vec4s; the last vector is masked).
 */
function encodeSumPass(
  input: Resource,
  output: GPUBuffer,
  size: number,
  groups: number,
  factor: number,
): void {
  const textured = input instanceof GPUTexture;
  const vectors = Math.ceil(size / 4);
  const perInvocation = Math.ceil(vectors / (groups * SUM_WORKGROUP));
  const code = /* wgsl */ `
const SIZE: u32 = ${u32(size)};
const FACTOR: f32 = ${f32(factor)};
${
    textured
      ? `@group(0) @binding(0) var x: texture_2d<f32>;\n${textureReaders("x")}`
      : `@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
fn xVec4(j: u32) -> vec4<f32> { return x[j]; }`
  }
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${workgroupSumWgsl(SUM_WORKGROUP)}

@compute @workgroup_size(${SUM_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var acc = vec4<f32>(0.0);
  let base = wid.x * ${u32(perInvocation * SUM_WORKGROUP)} + lid;
  for (var k = 0u; k < ${u32(perInvocation)}; k++) {
    let j = base + k * ${u32(SUM_WORKGROUP)};
    if (j < ${u32(vectors)}) {
      // The last vector's values past SIZE are padding: masked.
      let inside = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(SIZE);
      acc += select(vec4<f32>(0.0), xVec4(j), inside);
    }
  }
  let total = workgroupSum(lid, dot(acc, vec4<f32>(1.0)));
  if (lid == 0u) { out[wid.x] = total * FACTOR; }
}`;
  const compiled = kernel({
    name: `sum_${size}_${groups}${textured ? "_texture" : ""}`,
    code,
    bindings: [textured ? "texture" : "read", "read_write"],
  });
  dispatch(compiled, [input, output], [groups]);
}

/** factor * (sum of every element of x), as a new scalar tensor. */
function sumAll(x: Tensor, factor: number): Tensor {
  const out = Tensor.empty([]);
  const vectors = Math.ceil(x.size / 4);
  const groups = Math.min(MAX_GROUPS, Math.ceil(vectors / (SUM_WORKGROUP * MIN_PER_INVOCATION)));
  const texture = x.size >= TEXTURE_MIN_SIZE ? tensorTexture(x) : null;
  const input = texture ?? x.buffer;
  if (groups <= 1) {
    encodeSumPass(input, out.buffer, x.size, 1, factor);
  } else {
    const partials = Tensor.empty([groups]);
    encodeSumPass(input, partials.buffer, x.size, groups, 1);
    encodeSumPass(partials.buffer, out.buffer, groups, 1, factor);
    partials.dispose();
  }
  if (texture) releaseTexture(texture);
  return out;
}

/** A tensor of `shape` whose every element is `factor * scalar[0]` (read on the GPU). */
function broadcastScalar(scalar: Tensor, shape: readonly number[], factor: number): Tensor {
  const out = Tensor.empty(shape);
  // Whole vec4s: the last may run into the buffer's padding, which nothing reads.
  const vectors = Math.ceil(out.size / 4);
  const groups = Math.min(MAX_GROUPS, Math.ceil(vectors / BROADCAST_WORKGROUP));
  const perInvocation = Math.ceil(vectors / (groups * BROADCAST_WORKGROUP));
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> scalar: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(${BROADCAST_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let value = vec4<f32>(scalar[0] * ${f32(factor)});
  let base = ${workgroupIndex(groups)} * ${u32(perInvocation * BROADCAST_WORKGROUP)} + lid;
  for (var k = 0u; k < ${u32(perInvocation)}; k++) {
    let j = base + k * ${u32(BROADCAST_WORKGROUP)};
    if (j < ${u32(vectors)}) { out[j] = value; }
  }
}`;
  const compiled = kernel({
    name: `broadcast_${out.size}`,
    code,
    bindings: ["read", "read_write"],
  });
  dispatch(compiled, [scalar.buffer, out.buffer], grid(groups));
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

/**
 * The index of the first maximum of each row of x [N, C] (of its first NaN, if any), as an i32
 * tensor [N].
 */
export function argmax(x: Tensor): Tensor {
  checkRows("argmax", x);
  const [rows, classes] = x.shape;
  const out = Tensor.empty([rows], "i32");
  const groups = Math.ceil(rows / ROW_WORKGROUP);
  const code = /* wgsl */ `
const ROWS: u32 = ${u32(rows)};
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
${rowArgmaxWgsl(classes)}

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${workgroupIndex(groups)} * ${u32(ROW_WORKGROUP)} + lid;
  if (row < ROWS) { out[row] = i32(rowArgmax(row * ${u32(classes)})); }
}`;
  const compiled = kernel({
    name: `argmax_${rows}x${classes}`,
    code,
    bindings: ["read", "read_write"],
  });
  dispatch(compiled, [x.buffer, out.buffer], grid(groups));
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

/**
 * How many rows of scores [N, C] have their first maximum at target [N] (i32), as an f32
 * scalar tensor []. Not differentiable; read it back rarely (e.g. once per epoch, after summing).
 */
export function correctCount(scores: Tensor, target: Tensor): Tensor {
  checkTarget("correctCount", scores, target);
  const [rows, classes] = scores.shape;
  const out = Tensor.empty([]);
  const code = /* wgsl */ `
const ROWS: u32 = ${u32(rows)};
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${rowArgmaxWgsl(classes)}
${workgroupSumWgsl(REDUCE_WORKGROUP)}

@compute @workgroup_size(${REDUCE_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32) {
  var count = 0.0;
  for (var row = lid; row < ROWS; row += ${u32(REDUCE_WORKGROUP)}) {
    if (i32(rowArgmax(row * ${u32(classes)})) == labels[row]) { count += 1.0; }
  }
  let total = workgroupSum(lid, count);
  if (lid == 0u) { out[0] = total; }
}`;
  const compiled = kernel({
    name: `correct_count_${rows}x${classes}`,
    code,
    bindings: ["read", "read", "read_write"],
  });
  dispatch(compiled, [scores.buffer, target.buffer, out.buffer], [1]);
  return out;
}
