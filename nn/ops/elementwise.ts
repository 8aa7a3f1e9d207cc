/**
 * Element-wise ops: add, sub, mul, div, maximum, minimum, pow (broadcasting, a number on either side),
 * scale, relu.
 *
 * Operands of equal shapes go through one kernel factory: each invocation reads 4 elements of every input (through
 * textures under the software policy) and writes 4 with one vec4 store (see the cost table in
 * docs/DESIGN.md). Other shapes and numbers go through the broadcast kernel (`broadcast.ts`), and
 * gradients are summed back to each operand's shape with `sumTo`.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";
import { mapKernel, type MapOptions, runMap } from "./map_kernel.ts";
import { broadcastKernel, type BroadcastOptions, broadcastShapes, sumTo } from "./broadcast.ts";
import { isNan, isNan4, relu4 } from "./nan_wgsl.ts";

const ADD = mapKernel("add", 2, () => "x0 + x1");
const SUB = mapKernel("sub", 2, () => "x0 - x1");
const MUL = mapKernel("mul", 2, () => "x0 * x1");
const SCALE = mapKernel("scale", 1, ([factor]) => `x0 * ${factor}`);
const RELU = mapKernel("relu", 1, () => relu4("x0"));
/** 0 where the output x1 <= 0, else the gradient x0 (NaN outputs pass it). */
const RELU_BACKWARD = mapKernel(
  "relu_backward",
  2,
  () => `select(select(vec4<f32>(0.0), x0, x1 > vec4<f32>(0.0)), x0, ${isNan4("x1")})`,
);

/** Weight of x0's gradient in maximum(x0, x1): 1 if larger (or NaN), 0.5 on ties, else 0. */
function maxWeight(x0: string, x1: string, vec: boolean): string {
  const t = vec ? "vec4<f32>" : "f32";
  return `select(select(${t}(1.0), ${t}(0.0), ${x0} < ${x1}), ${t}(0.5), ${x0} == ${x1})`;
}

/** Weight of x0's gradient in minimum(x0, x1): 1 if smaller (or NaN), 0.5 on ties, else 0. */
function minWeight(x0: string, x1: string, vec: boolean): string {
  const t = vec ? "vec4<f32>" : "f32";
  return `select(select(${t}(1.0), ${t}(0.0), ${x0} > ${x1}), ${t}(0.5), ${x0} == ${x1})`;
}

/** max or min of x0 and x1, NaN if either is (x0 + x1 is then NaN). */
function pick(fn: "max" | "min", x0: string, x1: string, vec: boolean): string {
  const nan = vec ? `(${isNan4(x0)} | ${isNan4(x1)})` : `(${isNan(x0)} || ${isNan(x1)})`;
  return `select(${fn}(${x0}, ${x1}), ${x0} + ${x1}, ${nan})`;
}

/**
 * a^b as PyTorch (C's `pow`): a negative base takes integer exponents only (NaN otherwise, the
 * sign from odd ones), 0 to a negative power is inf, x^0 = 1 and 1^y = 1 even for NaN. `a` and
 * `b` are names (evaluated several times). WGSL's own `pow` is only defined for a > 0.
 */
function powExpression(a: string, b: string, vec: boolean): string {
  const t = vec ? "vec4<f32>" : "f32";
  const tu = vec ? "vec4<u32>" : "u32";
  const magnitude = `pow(abs(${a}), ${b})`;
  // Bit patterns built from a runtime value, so that no constant is inf or NaN.
  const inf = `bitcast<${t}>((bitcast<${tu}>(${a}) & ${tu}(0u)) | ${tu}(0x7f800000u))`;
  const nan = `bitcast<${t}>(bitcast<${tu}>(${a}) | ${tu}(0x7fc00000u))`;
  const integer = `(floor(${b}) == ${b})`;
  const odd = `(${integer} & (${b} - ${t}(2.0) * floor(${b} * ${t}(0.5)) == ${t}(1.0)))`;
  const atZero = `select(${t}(0.0), ${inf}, ${b} < ${t}(0.0))`;
  const unsigned = `select(${magnitude}, ${atZero}, abs(${a}) == ${t}(0.0))`;
  const negative = `((bitcast<${tu}>(${a}) & ${tu}(0x80000000u)) != ${tu}(0u))`;
  const signed = `select(${unsigned}, -${unsigned}, ${odd} & ${negative})`;
  // WGSL's pow need not keep NaN (llvmpipe's gives 0 for NaN^-3): NaN in, NaN out.
  const anyNan = vec ? `(${isNan4(a)} | ${isNan4(b)})` : `(${isNan(a)} | ${isNan(b)})`;
  const real = `select(${signed}, ${nan}, ((${a} < ${t}(0.0)) & !${integer}) | ${anyNan})`;
  return `select(${real}, ${t}(1.0), (${b} == ${t}(0.0)) | (${a} == ${t}(1.0)))`;
}

/** d(a^b)/da as PyTorch: b * a^(b - 1), 0 where b == 0. */
function powGradBase(a: string, b: string, vec: boolean): string {
  const t = vec ? "vec4<f32>" : "f32";
  return `select(${b} * ${
    powExpression(a, `(${b} - ${t}(1.0))`, vec)
  }, ${t}(0.0), ${b} == ${t}(0.0))`;
}

/** d(a^b)/db as PyTorch: a^b * ln a (NaN for a < 0), 0 where a == 0 and b >= 0. */
function powGradExponent(a: string, b: string, vec: boolean): string {
  const t = vec ? "vec4<f32>" : "f32";
  const tu = vec ? "vec4<u32>" : "u32";
  // ln a is NaN for a < 0 and NaN a (WGSL leaves those undefined: SwiftShader gives ln |a|, and
  // a number for NaN).
  const nan = `bitcast<${t}>(bitcast<${tu}>(${a}) | ${tu}(0x7fc00000u))`;
  const isNanA = vec ? isNan4(a) : isNan(a);
  const ln = `select(log(${a}), ${nan}, (${a} < ${t}(0.0)) | ${isNanA})`;
  return `select(${
    powExpression(a, b, vec)
  } * ${ln}, ${t}(0.0), (${a} == ${t}(0.0)) & (${b} >= ${t}(0.0)))`;
}

type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "maximum"
  | "minimum"
  | "max_weight"
  | "min_weight"
  | "pow"
  | "pow_grad_base"
  | "pow_grad_exponent";

/** The kernels of one binary op. */
interface BinaryKernels {
  /** Equal shapes: 4 elements per invocation. */
  map: KernelSpec<MapOptions>;
  /** Two tensors of different shapes. */
  broadcast: KernelSpec<BroadcastOptions>;
  /** A tensor and a number (in `params`): 4 elements per invocation. */
  mapScalar: KernelSpec<ScalarMapOptions>;
}

/** Options of the vec4 kernel of a tensor and a number. */
interface ScalarMapOptions {
  size: number;
  /** Whether the number is the first operand. */
  numberFirst: boolean;
}

/**
 * `out = expression(x0, x1)` 4 elements at a time, one operand the tensor `in0`, the other the
 * number `params.scalar` (a uniform load at a constant offset: one load and a broadcast).
 */
function scalarMapKernel(
  name: string,
  expression: (x0: string, x1: string) => string,
): KernelSpec<ScalarMapOptions> {
  return {
    name: `${name}_scalar`,
    key: ({ size, numberFirst }) => `${size}${numberFirst ? "_first" : ""}`,
    bindings: () => [
      { name: "in0", role: "input" },
      { name: "out", role: "write", type: "vec4<f32>" },
    ],
    params: "scalar: f32",
    plan: ({ size }, policy) => ({
      workgroupSize: policy.elementwiseWorkgroup,
      groups: Math.ceil(Math.ceil(size / 4) / policy.elementwiseWorkgroup),
    }),
    body: ({ size, numberFirst }, { plan }) => {
      const [x0, x1] = numberFirst ? ["s", "v"] : ["v", "s"];
      return /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j < ${u32(Math.ceil(size / 4))}) {
    let v = in0Vec4(j); let s = vec4<f32>(params.scalar);
    out[j] = ${expression(x0, x1)};
  }`;
    },
  };
}

/** The kernels of `op`, whose WGSL is `expression` on f32 or (`vec`) vec4 values. */
function binaryKernels(
  op: BinaryOp,
  expression: (x0: string, x1: string, vec: boolean) => string,
  map = mapKernel(op, 2, () => expression("x0", "x1", true)),
): BinaryKernels {
  const scalar = (x0: string, x1: string) => expression(x0, x1, false);
  return {
    map,
    broadcast: broadcastKernel(op, scalar),
    mapScalar: scalarMapKernel(op, (x0, x1) => expression(x0, x1, true)),
  };
}

const BINARY: Record<BinaryOp, BinaryKernels> = {
  add: binaryKernels("add", (a, b) => `${a} + ${b}`, ADD),
  sub: binaryKernels("sub", (a, b) => `${a} - ${b}`, SUB),
  mul: binaryKernels("mul", (a, b) => `${a} * ${b}`, MUL),
  div: binaryKernels("div", (a, b) => `${a} / ${b}`),
  maximum: binaryKernels("maximum", (a, b, vec) => pick("max", a, b, vec)),
  minimum: binaryKernels("minimum", (a, b, vec) => pick("min", a, b, vec)),
  max_weight: binaryKernels("max_weight", maxWeight),
  min_weight: binaryKernels("min_weight", minWeight),
  pow: binaryKernels("pow", powExpression),
  pow_grad_base: binaryKernels("pow_grad_base", powGradBase),
  pow_grad_exponent: binaryKernels("pow_grad_exponent", powGradExponent),
};

/** An operand of the broadcasting binary ops: a tensor, or a number (which gets no gradient). */
export type Operand = Tensor | number;

function checkOperands(op: string, a: Operand, b: Operand): number[] {
  if (typeof a === "number" && typeof b === "number") {
    throw new Error(`${op}: needs at least one tensor, got two numbers`);
  }
  const dtypes = [a, b].map((x) => typeof x === "number" ? "number" : x.dtype);
  if (dtypes.some((d) => d !== "f32" && d !== "number")) {
    throw new Error(`${op}: needs f32 tensors, got ${dtypes.join(" and ")}`);
  }
  return broadcastShapes(op, shapeOf(a), shapeOf(b));
}

function shapeOf(x: Operand): readonly number[] {
  return typeof x === "number" ? [] : x.shape;
}

/** The forward of a binary op, with broadcasting; no autograd. */
function binary(op: BinaryOp, a: Operand, b: Operand): Tensor {
  const shape = checkOperands(op, a, b);
  const kernels = BINARY[op];
  if (
    typeof a !== "number" && typeof b !== "number" && a.shape.length === b.shape.length &&
    a.shape.every((d, i) => d === b.shape[i])
  ) {
    return runMap(kernels.map, [a, b]);
  }
  if (typeof a === "number" || typeof b === "number") {
    const [only, number] = typeof a === "number" ? [b as Tensor, a] : [a, b as number];
    const out = Tensor.empty(only.shape);
    if (out.size === 0) return out;
    runKernel(
      kernels.mapScalar,
      { size: out.size, numberFirst: typeof a === "number" },
      { in0: only, out },
      { params: new Float32Array([number]) },
    );
    return out;
  }
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  runKernel(kernels.broadcast, { out: shape, a: a.shape, b: b.shape }, { in0: a, in1: b, out });
  return out;
}

/**
 * Records `out` with the gradients `rule` gives, at the output's shape, for each tensor operand
 * that needs one (`which`: 0 for a, 1 for b); they are summed back to the operand's shape.
 */
function record(
  op: string,
  out: Tensor,
  a: Operand,
  b: Operand,
  rule: (grad: Tensor, which: 0 | 1) => Tensor,
): Tensor {
  const operands = ([[a, 0], [b, 1]] as const).filter(
    (entry): entry is readonly [Tensor, 0 | 1] => typeof entry[0] !== "number",
  );
  return recordOp(
    op,
    out,
    operands.map(([t]) => t),
    (grad) =>
      operands.map(([t, which]) => t.requiresGrad ? sumTo(rule(grad, which), t.shape) : null),
  );
}

/**
 * a + b, broadcasting (NumPy/PyTorch rules); either may be a number.
 *
 * @example Broadcasting a row, and adding a number
 * ```ts
 * import { add, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * console.log(await add(x, tensor([10, 20, 30], [3])).toArray()); // [11, 22, 33, 14, 25, 36]
 * console.log(await add(x, 1).toArray()); // [2, 3, 4, 5, 6, 7]
 * ```
 */
export function add(a: Operand, b: Operand): Tensor {
  const out = binary("add", a, b);
  return record("add", out, a, b, (grad) => grad.view());
}

/** a - b, broadcasting (NumPy/PyTorch rules); either may be a number. */
export function sub(a: Operand, b: Operand): Tensor {
  const out = binary("sub", a, b);
  return record("sub", out, a, b, (grad, which) => which === 0 ? grad.view() : scale(grad, -1));
}

/** a * b, element by element, broadcasting (NumPy/PyTorch rules); either may be a number. */
export function mul(a: Operand, b: Operand): Tensor {
  const out = binary("mul", a, b);
  return record("mul", out, a, b, (grad, which) => binary("mul", grad, which === 0 ? b : a));
}

/** a / b, element by element, broadcasting (NumPy/PyTorch rules); either may be a number. */
export function div(a: Operand, b: Operand): Tensor {
  const out = binary("div", a, b);
  return record("div", out, a, b, (grad, which) => {
    const quotient = binary("div", grad, b);
    if (which === 0) return quotient;
    // d/db = -grad * a / b^2 = -(grad / b) * (a / b)
    const product = binary("mul", quotient, out);
    quotient.dispose();
    const negated = scale(product, -1);
    product.dispose();
    return negated;
  });
}

/**
 * The larger of a and b, element by element, broadcasting; either may be a number. NaN if either
 * is NaN; on ties each side gets half the gradient (as PyTorch).
 */
export function maximum(a: Operand, b: Operand): Tensor {
  const out = binary("maximum", a, b);
  return record("maximum", out, a, b, (grad, which) => pickGrad("max_weight", grad, a, b, which));
}

/**
 * The smaller of a and b, element by element, broadcasting; either may be a number. NaN if
 * either is NaN; on ties each side gets half the gradient (as PyTorch).
 */
export function minimum(a: Operand, b: Operand): Tensor {
  const out = binary("minimum", a, b);
  return record("minimum", out, a, b, (grad, which) => pickGrad("min_weight", grad, a, b, which));
}

/**
 * a raised to the power b, element by element, broadcasting; either may be a number. As
 * PyTorch: a negative base with an integer exponent keeps its sign for odd ones (NaN for other
 * exponents), 0^0 = 1, x^0 = 1 and 1^y = 1 even for NaN. Differentiable in both: d/da =
 * b·a^(b-1) (0 where b = 0), d/db = a^b·ln a (0 where a = 0 and b >= 0).
 *
 * @example Squares, and powers of two
 * ```ts
 * import { init, pow, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([-2, 0, 3], [3]);
 * console.log(await pow(x, 2).toArray()); // [4, 0, 9]
 * console.log(await pow(2, x).toArray()); // [0.25, 1, 8]
 * ```
 */
export function pow(a: Operand, b: Operand): Tensor {
  const out = binary("pow", a, b);
  return record("pow", out, a, b, (grad, which) => {
    const partial = binary(which === 0 ? "pow_grad_base" : "pow_grad_exponent", a, b);
    const result = binary("mul", grad, partial);
    partial.dispose();
    return result;
  });
}

/** grad times the weight of operand `which` in maximum/minimum, at the output's shape. */
function pickGrad(
  weightOp: "max_weight" | "min_weight",
  grad: Tensor,
  a: Operand,
  b: Operand,
  which: 0 | 1,
): Tensor {
  const weight = which === 0 ? binary(weightOp, a, b) : binary(weightOp, b, a);
  const result = binary("mul", grad, weight);
  weight.dispose();
  return result;
}

/** x * factor. */
export function scale(x: Tensor, factor: number): Tensor {
  const out = runMap(SCALE, [x], [factor]);
  return recordOp("scale", out, [x], (grad) => [scale(grad, factor)]);
}

/** max(x, 0), NaN staying NaN (as PyTorch). */
export function relu(x: Tensor): Tensor {
  const out = runMap(RELU, [x]);
  return recordOp("relu", out, [x], (grad) => [reluBackward(grad, out)]);
}

/**
 * The gradient of relu given its output: 0 where output <= 0, else grad (NaN outputs pass it,
 * as PyTorch's `threshold_backward`).
 */
function reluBackward(grad: Tensor, output: Tensor): Tensor {
  return runMap(RELU_BACKWARD, [grad, output]);
}
