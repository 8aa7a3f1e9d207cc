/**
 * Element-wise ops: add, sub, mul, div, maximum, minimum, pow (broadcasting, a number on either side),
 * scale, relu.
 *
 * Operands of equal shapes go through one kernel factory: each invocation reads 4 elements of every input (through
 * textures under the software policy) and writes 4 with one vec4 store (see the cost table in
 * docs/DESIGN.md). Other shapes and numbers go through the broadcast kernel (`broadcast.ts`), and
 * gradients are summed back to each operand's shape with `sumTo`.
 *
 * Dtypes are promoted as PyTorch does where it applies (`promote`): i32 with i32 (or with an
 * integer number) stays i32 for add, sub, mul, maximum and minimum, computed by one integer
 * kernel (wrapping on overflow, as PyTorch); i32 with an f32 tensor or a fractional number, and
 * `div` of integers (true division), are f32, the integer tensors cast first. A `u8` mask in
 * arithmetic is cast to f32 (PyTorch's bool with float; wgtorch also does so for u8 with u8 and
 * with integers, where PyTorch keeps an integer type). `pow` of integers only is refused (PyTorch
 * keeps it an integer). f32 operands take exactly the f32 path: no extra dispatch.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";
import { mapKernel, type MapOptions, runMap } from "./map_kernel.ts";
import {
  alignedStrides,
  broadcastKernel,
  type BroadcastOptions,
  broadcastShapes,
  sumTo,
} from "./broadcast.ts";
import { cast } from "./cast.ts";
import { isNan, isNan4, relu4, reluGrad4 } from "./nan_wgsl.ts";
import { divPrelude, powPrelude } from "./exact_wgsl.ts";
import type { KernelPolicy } from "../gpu/policy.ts";

const ADD = mapKernel("add", 2, () => "x0 + x1");
const SUB = mapKernel("sub", 2, () => "x0 - x1");
const MUL = mapKernel("mul", 2, () => "x0 * x1");
const SCALE = mapKernel("scale", 1, ([factor]) => `x0 * ${factor}`);
const RELU = mapKernel("relu", 1, () => relu4("x0"));
/** 0 where the output x1 <= 0, else the gradient x0 (NaN outputs pass it). */
const RELU_BACKWARD = mapKernel(
  "relu_backward",
  2,
  () => reluGrad4("x0", "x1"),
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
 * `b` are names (evaluated several times). WGSL's own `pow` is only defined for a > 0. Calls
 * `pow_mag` (`powPrelude`).
 */
function powExpression(a: string, b: string, vec: boolean): string {
  const t = vec ? "vec4<f32>" : "f32";
  const tu = vec ? "vec4<u32>" : "u32";
  const magnitude = `${vec ? "pow_mag4" : "pow_mag"}(abs(${a}), ${b})`;
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
  prelude?: (policy: KernelPolicy) => string,
): KernelSpec<ScalarMapOptions> {
  return {
    name: `${name}_scalar`,
    prelude: prelude && ((_options, { policy }) => prelude(policy)),
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

/**
 * The kernels of `op`, whose WGSL is `expression` on f32 or (`vec`) vec4 values, calling the
 * functions of `prelude` if any.
 */
function binaryKernels(
  op: BinaryOp,
  expression: (x0: string, x1: string, vec: boolean) => string,
  { map, prelude }: {
    map?: KernelSpec<MapOptions>;
    prelude?: (policy: KernelPolicy) => string;
  } = {},
): BinaryKernels {
  const scalar = (x0: string, x1: string) => expression(x0, x1, false);
  const vec4 = (x0: string, x1: string) => expression(x0, x1, true);
  return {
    map: map ?? mapKernel(op, 2, () => vec4("x0", "x1"), {
      prelude: prelude && ((_code, policy) => prelude(policy)),
    }),
    broadcast: broadcastKernel(op, scalar, vec4, prelude),
    mapScalar: scalarMapKernel(op, vec4, prelude),
  };
}

const BINARY: Record<BinaryOp, BinaryKernels> = {
  add: binaryKernels("add", (a, b) => `${a} + ${b}`, { map: ADD }),
  sub: binaryKernels("sub", (a, b) => `${a} - ${b}`, { map: SUB }),
  mul: binaryKernels("mul", (a, b) => `${a} * ${b}`, { map: MUL }),
  div: binaryKernels("div", (a, b, vec) => `${vec ? "div_rn4" : "div_rn"}(${a}, ${b})`, {
    prelude: divPrelude,
  }),
  maximum: binaryKernels("maximum", (a, b, vec) => pick("max", a, b, vec)),
  minimum: binaryKernels("minimum", (a, b, vec) => pick("min", a, b, vec)),
  max_weight: binaryKernels("max_weight", maxWeight),
  min_weight: binaryKernels("min_weight", minWeight),
  pow: binaryKernels("pow", powExpression, { prelude: powPrelude }),
  pow_grad_base: binaryKernels("pow_grad_base", powGradBase, { prelude: powPrelude }),
  pow_grad_exponent: binaryKernels("pow_grad_exponent", powGradExponent, { prelude: powPrelude }),
};

/** An operand of the broadcasting binary ops: a tensor, or a number (which gets no gradient). */
export type Operand = Tensor | number;

function checkOperands(op: string, a: Operand, b: Operand): number[] {
  if (typeof a === "number" && typeof b === "number") {
    throw new Error(`${op}: needs at least one tensor, got two numbers`);
  }
  const dtypes = [a, b].map((x) => typeof x === "number" ? "number" : x.dtype);
  if (dtypes.some((d) => d !== "f32" && d !== "number")) {
    throw new Error(
      `${op}: needs f32 tensors, got ${dtypes.join(" and ")} (cast(x, "f32") first)`,
    );
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

/** The ops that keep i32 operands i32 (as PyTorch). */
type IntOp = "add" | "sub" | "mul" | "maximum" | "minimum";

const INT_EXPRESSIONS: Record<IntOp, (x0: string, x1: string) => string> = {
  add: (a, b) => `${a} + ${b}`,
  sub: (a, b) => `${a} - ${b}`,
  mul: (a, b) => `${a} * ${b}`,
  maximum: (a, b) => `max(${a}, ${b})`,
  minimum: (a, b) => `min(${a}, ${b})`,
};

/** Options of the integer kernel: the output's shape, each operand's, or null for the number. */
interface IntBinaryOptions {
  out: readonly number[];
  a: readonly number[] | null;
  b: readonly number[] | null;
}

/**
 * `out[i] = expression(a[ia], b[ib])` on i32 values, one element per invocation, broadcasting
 * through baked-in shapes and strides; a number operand is `params.scalar`. WGSL's i32
 * arithmetic wraps on overflow, as PyTorch's.
 */
function intBinaryKernel(op: IntOp): KernelSpec<IntBinaryOptions> {
  return {
    name: `${op}_i32`,
    key: ({ out, a, b }) => [out, a ?? ["n"], b ?? ["n"]].map((s) => s.join("x") || "0d").join("_"),
    bindings: ({ a, b }) => [
      ...(a ? [{ name: "in0", role: "read", type: "i32" } as BindingSpec] : []),
      ...(b ? [{ name: "in1", role: "read", type: "i32" } as BindingSpec] : []),
      { name: "out", role: "write", type: "i32" },
    ],
    params: "scalar: i32",
    plan: ({ out }, policy) => ({
      workgroupSize: policy.elementwiseWorkgroup,
      groups: Math.ceil(sizeOf(out) / policy.elementwiseWorkgroup),
    }),
    body: ({ out, a, b }, { plan }) => {
      const sa = alignedStrides(a ?? [], out);
      const sb = alignedStrides(b ?? [], out);
      const steps: string[] = [];
      for (let d = out.length - 1; d >= 0; d--) {
        const terms = [
          sa[d] ? ` ia += c * ${u32(sa[d])};` : "",
          sb[d] ? ` ib += c * ${u32(sb[d])};` : "",
        ].join("");
        if (out[d] === 1 || terms === "") continue;
        steps.push(`    { let c = rest % ${u32(out[d])}; rest = rest / ${u32(out[d])};${terms} }`);
      }
      const x0 = a ? "in0[ia]" : "params.scalar";
      const x1 = b ? "in1[ib]" : "params.scalar";
      return /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(sizeOf(out))}) {
    var rest = i; var ia = 0u; var ib = 0u;
${steps.join("\n")}
    out[i] = ${INT_EXPRESSIONS[op](x0, x1)};
  }`;
    },
  };
}

const INT_BINARY: Record<IntOp, KernelSpec<IntBinaryOptions>> = {
  add: intBinaryKernel("add"),
  sub: intBinaryKernel("sub"),
  mul: intBinaryKernel("mul"),
  maximum: intBinaryKernel("maximum"),
  minimum: intBinaryKernel("minimum"),
};

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((x, y) => x * y, 1);
}

/** Whether `x` is an integer operand: an i32 tensor, or an integer number within i32's range. */
function isIntOperand(x: Operand): boolean {
  return typeof x === "number"
    ? Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31
    : x.dtype === "i32";
}

/** The operands of a binary op after type promotion, and the casts made for them. */
interface Promoted {
  a: Operand;
  b: Operand;
  /** Whether they are computed as i32 (both integer operands). */
  int: boolean;
  /** Tensors cast to f32 here, to dispose when no longer needed (or save with the node). */
  casts: Tensor[];
}

/**
 * PyTorch's type promotion for the binary op `op` (see the module notes): f32 operands pass as
 * they are; integer operands stay i32 for the integer ops; otherwise every non-f32 tensor is
 * cast to f32. Throws naming `op` and the dtypes where the result would be an integer type that
 * wgtorch does not compute (`pow` of integers).
 */
function promote(op: string, a: Operand, b: Operand): Promoted {
  const tensors = [a, b].filter((x): x is Tensor => typeof x !== "number");
  if (tensors.every((t) => t.dtype === "f32")) return { a, b, int: false, casts: [] };
  if (tensors.length === 0) throw new Error(`${op}: needs at least one tensor, got two numbers`);
  if (isIntOperand(a) && isIntOperand(b)) {
    if (op in INT_BINARY) return { a, b, int: true, casts: [] };
    if (op === "pow") {
      const dtypes = [a, b].map((x) => typeof x === "number" ? "number" : x.dtype);
      throw new Error(
        `pow: integer operands (${dtypes.join(" and ")}) give an integer power in PyTorch, ` +
          `which wgtorch does not compute; cast(x, "f32") first for a float power`,
      );
    }
  }
  const casts: Tensor[] = [];
  const toF32 = (x: Operand): Operand => {
    if (typeof x === "number" || x.dtype === "f32") return x;
    const f = cast(x, "f32");
    casts.push(f);
    return f;
  };
  return { a: toF32(a), b: toF32(b), int: false, casts };
}

/** The i32 result of the integer op `op`, broadcasting; not differentiable (as PyTorch). */
function intBinary(op: IntOp, a: Operand, b: Operand): Tensor {
  const shape = broadcastShapes(op, shapeOf(a), shapeOf(b));
  const out = Tensor.empty(shape, "i32");
  if (out.size === 0) return out;
  const number = typeof a === "number" ? a : typeof b === "number" ? b : 0;
  const resources: Record<string, Tensor> = { out };
  if (typeof a !== "number") resources.in0 = a;
  if (typeof b !== "number") resources.in1 = b;
  runKernel(
    INT_BINARY[op],
    {
      out: shape,
      a: typeof a === "number" ? null : a.shape,
      b: typeof b === "number" ? null : b.shape,
    },
    resources,
    { params: new Int32Array([number]) },
  );
  return out;
}

/**
 * Records `out` with the gradients `rule` gives, at the output's shape, for each tensor operand
 * that needs one (`which`: 0 for a, 1 for b); they are summed back to the operand's shape.
 * `saved` (casts of integer operands) live as long as the node, or are freed at once.
 */
function record(
  op: string,
  out: Tensor,
  a: Operand,
  b: Operand,
  rule: (grad: Tensor, which: 0 | 1) => Tensor,
  saved: readonly Tensor[] = [],
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
    saved,
  );
}

/**
 * A binary op with type promotion: the integer kernel for integer operands of an integer op,
 * else the f32 forward `binary` recorded with `rule`, given the promoted operands and the output.
 */
function promoted(
  op: BinaryOp,
  a: Operand,
  b: Operand,
  rule: (grad: Tensor, which: 0 | 1, a: Operand, b: Operand, out: Tensor) => Tensor,
): Tensor {
  const p = promote(op, a, b);
  if (p.int) return intBinary(op as IntOp, p.a, p.b);
  const out = binary(op, p.a, p.b);
  return record(op, out, p.a, p.b, (grad, which) => rule(grad, which, p.a, p.b, out), p.casts);
}

/**
 * a + b, broadcasting (NumPy/PyTorch rules); either may be a number. i32 + i32 (or an integer
 * number) is i32; with an f32 tensor, a fractional number or a u8 mask, f32 (PyTorch's type
 * promotion; see the module notes).
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
  return promoted("add", a, b, (grad) => grad.view());
}

/**
 * a - b, broadcasting (NumPy/PyTorch rules); either may be a number. Integer operands stay i32
 * (see `add`).
 */
export function sub(a: Operand, b: Operand): Tensor {
  return promoted("sub", a, b, (grad, which) => which === 0 ? grad.view() : scale(grad, -1));
}

/**
 * a * b, element by element, broadcasting (NumPy/PyTorch rules); either may be a number.
 * Integer operands stay i32 (see `add`).
 */
export function mul(a: Operand, b: Operand): Tensor {
  return promoted("mul", a, b, (grad, which, a, b) => binary("mul", grad, which === 0 ? b : a));
}

/**
 * a / b, element by element, broadcasting (NumPy/PyTorch rules); either may be a number. True
 * division: integer operands give f32 (as PyTorch).
 */
export function div(a: Operand, b: Operand): Tensor {
  return promoted("div", a, b, (grad, which, _a, b, out) => {
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
 * is NaN; on ties each side gets half the gradient (as PyTorch). Integer operands stay i32.
 */
export function maximum(a: Operand, b: Operand): Tensor {
  return promoted(
    "maximum",
    a,
    b,
    (grad, which, a, b) => pickGrad("max_weight", grad, a, b, which),
  );
}

/**
 * The smaller of a and b, element by element, broadcasting; either may be a number. NaN if
 * either is NaN; on ties each side gets half the gradient (as PyTorch). Integer operands stay
 * i32.
 */
export function minimum(a: Operand, b: Operand): Tensor {
  return promoted(
    "minimum",
    a,
    b,
    (grad, which, a, b) => pickGrad("min_weight", grad, a, b, which),
  );
}

/**
 * a raised to the power b, element by element, broadcasting; either may be a number. As
 * PyTorch: a negative base with an integer exponent keeps its sign for odd ones (NaN for other
 * exponents), 0^0 = 1, x^0 = 1 and 1^y = 1 even for NaN. Differentiable in both: d/da =
 * b·a^(b-1) (0 where b = 0), d/db = a^b·ln a (0 where a = 0 and b >= 0). An i32 or u8 tensor
 * with an f32 tensor or a fractional number is cast to f32; integers only are refused (PyTorch
 * gives an integer power).
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
  return promoted("pow", a, b, (grad, which, a, b) => {
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

/** x * factor (for a non-f32 x, `mul(x, factor)`, with its type promotion). */
export function scale(x: Tensor, factor: number): Tensor {
  if (x.dtype !== "f32") return mul(x, factor);
  const out = runMap(SCALE, [x], [factor]);
  return recordOp("scale", out, [x], (grad) => [scale(grad, factor)]);
}

/**
 * max(x, 0), NaN staying NaN (as PyTorch). An i32 x gives i32 (`maximum(x, 0)`); a u8 mask is
 * returned as f32.
 */
export function relu(x: Tensor): Tensor {
  if (x.dtype === "i32") return maximum(x, 0);
  if (x.dtype === "u8") {
    const f = cast(x, "f32");
    const out = relu(f);
    f.dispose();
    return out;
  }
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
