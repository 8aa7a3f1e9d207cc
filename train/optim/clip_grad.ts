/**
 * Gradient clipping on the GPU, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`:
 * nothing is read back.
 *
 * `clipGradNorm` runs one kernel per gradient that reduces it (sum of `|g|^p`, or max of `|g|`)
 * into a slot range of one shared partials buffer, one single-workgroup kernel that finishes the
 * total norm and the factor `min(1, maxNorm / (norm + 1e-6))` (NaN kept: a NaN norm makes every
 * gradient NaN, as in PyTorch), and one kernel per gradient that scales it in place (a "write"
 * binding, so texture mirrors see the new values). `clipGradValue` clamps each gradient in place
 * with one kernel per gradient.
 *
 * @module
 */

import { f32, u32 } from "../../nn/gpu/kernel.ts";
import { type KernelSpec, planKernel, runKernel } from "../../nn/gpu/program.ts";
import { itemLoop, type LoopPlan, loopPlan } from "../../nn/gpu/item_loop.ts";
import { formatShape, Tensor, zeros } from "../../nn/tensor.ts";
import { isNan, isNan4 } from "../../nn/ops/nan_wgsl.ts";

/** Options of `clipGradNorm`. */
export interface ClipGradNormOptions {
  /** The p of the p-norm: a number > 0, or `Infinity` / `"inf"` for the max norm (default 2). */
  normType?: number | "inf";
}

/** Vectors each invocation of a partial-norm kernel should at least read. */
const MIN_PER_INVOCATION = 128;
/** PyTorch's guard against dividing by a zero norm. */
const NORM_EPSILON = 1e-6;

/** How norms combine: `sum` of `|g|^p` (p finite) or `max` of `|g|`. */
type NormKind = { p: number };

/**
 * WGSL: `combine(a, b)` (sum, or max keeping NaN: `a + b` is NaN exactly when either is, for
 * values >= 0), `combine4` (the same on vectors) and `workgroupCombine(lid, value)`, a tree over
 * the workgroup (a power of two), valid in invocation 0; every invocation must call it.
 */
function combineWgsl({ p }: NormKind, workgroupSize: number): string {
  const max = p === Infinity;
  return /* wgsl */ `
fn combine(a: f32, b: f32) -> f32 {
  ${max ? `let s = a + b;\n  return select(max(a, b), s, ${isNan("s")});` : "return a + b;"}
}

fn combine4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  ${max ? `let s = a + b;\n  return select(max(a, b), s, ${isNan4("s")});` : "return a + b;"}
}

var<workgroup> scratch: array<f32, ${workgroupSize}>;

fn workgroupCombine(lid: u32, value: f32) -> f32 {
  scratch[lid] = value;
  workgroupBarrier();
  for (var stride = ${u32(workgroupSize / 2)}; stride > 0u; stride >>= 1u) {
    if (lid < stride) { scratch[lid] = combine(scratch[lid], scratch[lid + stride]); }
    workgroupBarrier();
  }
  return scratch[0];
}`;
}

/** WGSL expression: the term of `|v|` (a vec4 named `a`) in the p-norm. */
function term({ p }: NormKind): string {
  if (p === 1 || p === Infinity) return "a";
  if (p === 2) return "a * a";
  // pow is undefined at 0 and may lose NaN (llvmpipe): both handled apart.
  return `select(select(pow(a, vec4<f32>(P)), vec4<f32>(0.0), a == vec4<f32>(0.0)), a, ${
    isNan4("a")
  })`;
}

interface PartialOptions extends NormKind {
  size: number;
}

/**
 * `partials[offset + group]` = the combined terms of workgroup `group`'s share of the gradient
 * `x` (the last vector masked). Params: `offset`.
 */
const NORM_PARTIAL: KernelSpec<PartialOptions, LoopPlan> = {
  name: "clip_grad_norm_partial",
  key: ({ size, p }) => `${size}_${p}`,
  bindings: () => [
    { name: "x", role: "input", readOnce: true },
    { name: "partials", role: "write" },
  ],
  plan: ({ size }, policy) => {
    const vectors = Math.ceil(size / 4);
    const groups = Math.min(
      policy.updateMaxGroups,
      Math.ceil(vectors / (policy.narrowWorkgroup * MIN_PER_INVOCATION)),
    );
    return loopPlan(vectors, policy, Math.max(1, groups));
  },
  params: "offset: u32",
  prelude: (options, { plan }) => /* wgsl */ `
const SIZE: u32 = ${u32(options.size)};
// The max norm (p = Infinity) does not use P; Tint refuses an infinite literal.
const P: f32 = ${f32(Number.isFinite(options.p) ? options.p : 0)};
${combineWgsl(options, plan.workgroupSize)}`,
  body: (options, { plan }) => /* wgsl */ `
  var acc = vec4<f32>(0.0);${
    itemLoop(
      Math.ceil(options.size / 4),
      plan,
      `
      // The last vector's values past SIZE are padding: masked (0 is neutral for both).
      let inside = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(SIZE);
      let a = select(vec4<f32>(0.0), abs(xVec4(j)), inside);
      acc = combine4(acc, ${term(options)});`,
      "j",
    )
  }
  let mine = combine(combine(acc.x, acc.y), combine(acc.z, acc.w));
  let total = workgroupCombine(lid, mine);
  if (lid == 0u) { partials[params.offset + group] = total; }`,
};

interface FinishOptions extends NormKind {
  count: number;
}

/**
 * One workgroup: `norm[0]` = the p-norm from the `count` partials, `coef[0]` =
 * min(1, max_norm / (norm + 1e-6)), NaN kept. Params: `max_norm`.
 */
const NORM_FINISH: KernelSpec<FinishOptions, LoopPlan> = {
  name: "clip_grad_norm_finish",
  key: ({ count, p }) => `${count}_${p}`,
  bindings: () => [
    { name: "partials", role: "read" },
    { name: "norm", role: "write" },
    { name: "coef", role: "write" },
  ],
  plan: ({ count }, policy) => loopPlan(count, policy, 1),
  params: "max_norm: f32",
  prelude: (options, { plan }) => /* wgsl */ `
const INV_P: f32 = ${f32(1 / options.p)};
const NORM_EPSILON: f32 = ${f32(NORM_EPSILON)};
${combineWgsl(options, plan.workgroupSize)}`,
  body: ({ count, p }, { plan }) => {
    const root = p === 1 || p === Infinity
      ? "let total = sum;"
      : p === 2
      ? "let total = sqrt(sum);"
      : `let total = select(select(pow(sum, INV_P), 0.0, sum == 0.0), sum, ${isNan("sum")});`;
    return /* wgsl */ `
  var acc = 0.0;
  for (var k = 0u; k < ${u32(Math.ceil(count / plan.workgroupSize))}; k++) {
    let i = lid + k * ${u32(plan.workgroupSize)};
    if (i < ${u32(count)}) { acc = combine(acc, partials[i]); }
  }
  let sum = workgroupCombine(lid, acc);
  if (lid == 0u) {
    ${root}
    norm[0] = total;
    let c = params.max_norm / (total + NORM_EPSILON);
    coef[0] = select(min(c, 1.0), c, ${isNan("c")});
  }`;
  },
};

/** `x[j] *= coef[0]`, in place, whole vectors (the last may run into padding nothing reads). */
const SCALE: KernelSpec<{ size: number }, LoopPlan> = {
  name: "clip_grad_scale",
  key: ({ size }) => `${size}`,
  bindings: () => [
    { name: "x", role: "write", type: "vec4<f32>" },
    { name: "coef", role: "read" },
  ],
  plan: ({ size }, policy) => loopPlan(Math.ceil(size / 4), policy),
  body: ({ size }, { plan }) => /* wgsl */ `
  let factor = coef[0];${itemLoop(Math.ceil(size / 4), plan, "      x[j] = x[j] * factor;", "j")}`,
};

/** `x[j] = clamp(x[j], -clip, clip)`, in place, NaN kept. Params: `clip`. */
const CLAMP: KernelSpec<{ size: number }, LoopPlan> = {
  name: "clip_grad_value",
  key: ({ size }) => `${size}`,
  bindings: () => [{ name: "x", role: "write", type: "vec4<f32>" }],
  plan: SCALE.plan,
  params: "clip: f32",
  body: ({ size }, { plan }) => /* wgsl */ `
  let high = vec4<f32>(params.clip);${
    itemLoop(
      Math.ceil(size / 4),
      plan,
      `
      let v = x[j];
      x[j] = select(clamp(v, -high, high), v, ${isNan4("v")});`,
      "j",
    )
  }`,
};

/** The gradients of `params` that exist, checked (f32). */
function gradsOf(op: string, params: Iterable<Tensor> | Tensor): Tensor[] {
  const list = params instanceof Tensor ? [params] : [...params];
  const grads: Tensor[] = [];
  for (const [i, param] of list.entries()) {
    if (!(param instanceof Tensor)) {
      throw new Error(`${op}: parameter ${i} is not a Tensor`);
    }
    const grad = param.grad;
    if (!grad) continue;
    if (grad.dtype !== "f32") {
      throw new Error(
        `${op}: parameter ${i}'s gradient is ${grad.dtype} of shape ` +
          `${formatShape(grad.shape)}; only f32 gradients can be clipped`,
      );
    }
    grads.push(grad);
  }
  return grads;
}

/**
 * Clips the gradients of `params` in place so that their total p-norm (all gradients as one
 * vector) is at most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`: every gradient is
 * multiplied by `min(1, maxNorm / (norm + 1e-6))`, computed on the GPU (a NaN norm makes every
 * gradient NaN, as in PyTorch). Parameters without a gradient are skipped.
 *
 * @returns the total norm before clipping, as a new 0-d tensor (nothing read back; 0 when no
 * parameter has a gradient).
 *
 * @example
 * ```ts ignore
 * loss.backward();
 * clipGradNorm(model.parameters(), 1.0);
 * optimizer.step();
 * ```
 */
export function clipGradNorm(
  params: Iterable<Tensor> | Tensor,
  maxNorm: number,
  options: ClipGradNormOptions = {},
): Tensor {
  const op = "clipGradNorm";
  if (typeof maxNorm !== "number" || !(maxNorm >= 0)) {
    throw new Error(`${op}: maxNorm must be a number >= 0 (or Infinity), got ${maxNorm}`);
  }
  const given = options.normType ?? 2;
  const p = given === "inf" ? Infinity : given;
  if (typeof p !== "number" || !(p > 0)) {
    throw new Error(
      `${op}: normType must be a number > 0, or Infinity / "inf" for the max norm, got ${given}`,
    );
  }
  const grads = gradsOf(op, params).filter((grad) => grad.size > 0);
  if (grads.length === 0) return zeros([]);
  const offsets: number[] = [];
  let count = 0;
  for (const grad of grads) {
    offsets.push(count);
    count += planKernel(NORM_PARTIAL, { size: grad.size, p }).groups;
  }
  const partials = Tensor.empty([count]);
  const coef = Tensor.empty([1]);
  const norm = Tensor.empty([]);
  try {
    for (const [i, grad] of grads.entries()) {
      runKernel(NORM_PARTIAL, { size: grad.size, p }, { x: grad, partials }, {
        params: new Uint32Array([offsets[i]]),
      });
    }
    runKernel(NORM_FINISH, { count, p }, { partials, norm, coef }, {
      params: new Float32Array([maxNorm]),
    });
    for (const grad of grads) runKernel(SCALE, { size: grad.size }, { x: grad, coef });
  } catch (error) {
    norm.dispose();
    throw error;
  } finally {
    partials.dispose();
    coef.dispose();
  }
  return norm;
}

/**
 * Clamps the gradients of `params` in place to `[-clipValue, clipValue]`, as
 * `torch.nn.utils.clip_grad_value_` (NaN stays NaN). Parameters without a gradient are skipped.
 * One kernel per gradient, nothing read back.
 */
export function clipGradValue(params: Iterable<Tensor> | Tensor, clipValue: number): void {
  const op = "clipGradValue";
  if (typeof clipValue !== "number" || !(clipValue >= 0)) {
    throw new Error(`${op}: clipValue must be a number >= 0 (or Infinity), got ${clipValue}`);
  }
  for (const grad of gradsOf(op, params)) {
    if (grad.size === 0) continue;
    runKernel(CLAMP, { size: grad.size }, { x: grad }, {
      params: new Float32Array([clipValue]),
    });
  }
}
