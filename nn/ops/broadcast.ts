/**
 * Broadcasting (NumPy/PyTorch rules): the shape two operands broadcast to, the binary kernel for
 * tensors of different shapes, and `sumTo`, the reduction of a gradient back
 * to an operand's shape (PyTorch's `sum_to_size`).
 *
 * Shapes and strides are baked into the WGSL as constants. (A number operand does not come here:
 * `elementwise.ts` passes it through `params` to a vec4 kernel.)
 *
 * @module
 */

import { f32, u32 } from "../gpu/kernel.ts";
import type { KernelPolicy } from "../gpu/policy.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";

/**
 * The shape `a` and `b` broadcast to: aligned from the right, a size-1 or missing dimension
 * stretches. Throws naming `op`, both shapes and the first dimension that does not match.
 */
export function broadcastShapes(
  op: string,
  a: readonly number[],
  b: readonly number[],
): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 1; k <= rank; k++) {
    const da = a[a.length - k] ?? 1;
    const db = b[b.length - k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(
        `${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast ` +
          `(dimension -${k}: ${da} vs ${db})`,
      );
    }
    out.unshift(da === 1 ? db : da);
  }
  return out;
}

/** The strides of `shape` as read at the coordinates of `out` (0 along stretched dimensions). */
export function alignedStrides(shape: readonly number[], out: readonly number[]): number[] {
  const strides = new Array<number>(out.length).fill(0);
  let stride = 1;
  for (let k = 1; k <= shape.length; k++) {
    const size = shape[shape.length - k];
    if (size !== 1) strides[out.length - k] = stride;
    stride *= size;
  }
  return strides;
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** WGSL of the binary ops, on the f32 values `x0` and `x1`. */
export type BinaryExpression = (x0: string, x1: string) => string;

/** Options of the broadcast kernel: the output shape and each operand's. */
export interface BroadcastOptions {
  out: readonly number[];
  a: readonly number[];
  b: readonly number[];
}

/** Whether the broadcast kernel can work on vec4s: whole rows of 4 (see `broadcastKernel`). */
function vectorized(out: readonly number[]): boolean {
  return out.length > 0 && out[out.length - 1] % 4 === 0;
}

/**
 * The kernel computing `out[i] = expression(a[ia], b[ib])`, with `ia`, `ib` found from `i`
 * through the baked-in shapes and strides: one element per invocation, or, given `vec4` (the
 * expression on vec4 values) and an output whose last dimension is a multiple of 4, four
 * neighbouring elements of one row per invocation. Then an operand either runs along that row
 * (a vec4 load: its offset is a multiple of 4, since its other strides are multiples of its last
 * dimension) or is constant along it (one value, splat). `prelude` holds WGSL functions the
 * expressions call.
 */
export function broadcastKernel(
  name: string,
  expression: BinaryExpression,
  vec4?: BinaryExpression,
  prelude?: (policy: KernelPolicy) => string,
): KernelSpec<BroadcastOptions> {
  const vec = ({ out }: BroadcastOptions) => vec4 !== undefined && vectorized(out);
  return {
    name: `${name}_broadcast`,
    prelude: prelude && ((_options, { policy }) => prelude(policy)),
    key: (options) =>
      [options.out, options.a, options.b].map((s) => s.join("x") || "0d").join("_") +
      (vec(options) ? "_v4" : ""),
    bindings: (options) => [
      { name: "in0", role: "input" },
      { name: "in1", role: "input" },
      { name: "out", role: "write", type: vec(options) ? "vec4<f32>" : "f32" },
    ],
    plan: (options, policy) => ({
      workgroupSize: policy.elementwiseWorkgroup,
      groups: Math.ceil(sizeOf(options.out) / (vec(options) ? 4 : 1) / policy.elementwiseWorkgroup),
    }),
    body: (options, { plan }) => {
      const { out, a, b } = options;
      const sa = alignedStrides(a, out);
      const sb = alignedStrides(b, out);
      const steps: string[] = [];
      for (let d = out.length - 1; d >= 0; d--) {
        const terms = [
          sa[d] ? ` ia += c * ${u32(sa[d])};` : "",
          sb[d] ? ` ib += c * ${u32(sb[d])};` : "",
        ].join("");
        if (out[d] === 1 || terms === "") continue;
        steps.push(`    { let c = rest % ${u32(out[d])}; rest = rest / ${u32(out[d])};${terms} }`);
      }
      const index = /* wgsl */ `
    var rest = i; var ia = 0u; var ib = 0u;
${steps.join("\n")}`;
      if (!vec(options)) {
        return /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(sizeOf(out))}) {${index}
    let x0 = in0At(ia); let x1 = in1At(ib);
    out[i] = ${expression("x0", "x1")};
  }`;
      }
      const last = out.length - 1;
      const load = (input: string, offset: string, strides: number[]) =>
        strides[last] === 1 ? `${input}Vec4(${offset} / 4u)` : `vec4<f32>(${input}At(${offset}))`;
      return /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j < ${u32(sizeOf(out) / 4)}) {
    let i = 4u * j;${index}
    let x0 = ${load("in0", "ia", sa)}; let x1 = ${load("in1", "ib", sb)};
    out[j] = ${vec4!("x0", "x1")};
  }`;
    },
  };
}

/** Options of `sumTo`'s kernel: the gradient's shape and the shape it is summed to. */
interface SumToOptions {
  from: readonly number[];
  to: readonly number[];
}

/**
 * out[t] = the sum of `in0` over the dimensions where `to` is 1 or missing, one output element
 * per invocation (a loop over the summed elements, offsets from baked-in strides).
 */
const SUM_TO: KernelSpec<SumToOptions> = {
  name: "sum_to",
  key: ({ from, to }) => `${from.join("x") || "0d"}_${to.join("x") || "0d"}`,
  bindings: () => [{ name: "in0", role: "input" }, { name: "out", role: "write" }],
  plan: ({ to }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(sizeOf(to) / policy.elementwiseWorkgroup),
  }),
  body: ({ from, to }, { plan }) => {
    const strides = alignedStrides(from, from);
    const kept: string[] = [];
    const summed: string[] = [];
    let count = 1;
    for (let d = from.length - 1; d >= 0; d--) {
      if (from[d] === 1) continue;
      const target = to[d - (from.length - to.length)] ?? 1;
      if (target === from[d]) {
        kept.push(
          `    { let c = rest % ${u32(from[d])}; rest = rest / ${u32(from[d])}; ` +
            `base += c * ${u32(strides[d])}; }`,
        );
      } else {
        summed.push(
          `      { let c = q % ${u32(from[d])}; q = q / ${u32(from[d])}; ` +
            `offset += c * ${u32(strides[d])}; }`,
        );
        count *= from[d];
      }
    }
    return /* wgsl */ `
  let t = group * ${u32(plan.workgroupSize)} + lid;
  if (t < ${u32(sizeOf(to))}) {
    var rest = t; var base = 0u;
${kept.join("\n")}
    var sum = ${f32(0)};
    for (var r = 0u; r < ${u32(count)}; r++) {
      var q = r; var offset = base;
${summed.join("\n")}
      sum += in0At(offset);
    }
    out[t] = sum;
  }`;
  },
};

/**
 * `grad` summed over the dimensions `shape` was broadcast along, with `shape` (PyTorch's
 * `sum_to_size`). Takes ownership of `grad`: returns a view of it when nothing is summed.
 */
export function sumTo(grad: Tensor, shape: readonly number[]): Tensor {
  if (sizeOf(shape) === grad.size) {
    const view = grad.view(shape);
    grad.dispose();
    return view;
  }
  const out = Tensor.empty(shape);
  runKernel(SUM_TO, { from: grad.shape, to: shape }, { in0: grad, out });
  grad.dispose();
  return out;
}
