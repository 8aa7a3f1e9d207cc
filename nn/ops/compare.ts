/**
 * Comparisons (`eq`, `ne`, `lt`, `le`, `gt`, `ge`) giving a mask, and `where`, all broadcasting
 * (NumPy/PyTorch rules) with a JS number allowed in place of a tensor operand.
 *
 * A mask is a `u8` tensor of 1 (true) and 0 (false), wgtorch's stand-in for PyTorch's `bool`:
 * the comparison kernel packs 4 results into one `u32` word per invocation (little-endian, so
 * byte k is element 4j + k). `where` reads a `u8` mask byte by byte from its words, or an `f32`
 * tensor as true where nonzero.
 *
 * Dtypes: integer operands (i32 or u8 tensors, integer numbers within i32's range) are compared
 * exactly, as i32 (a u8 tensor cast to i32 first); any other mix is compared as f32, the
 * integer tensors cast first (PyTorch's type promotion).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";
import { alignedStrides, broadcastShapes, sumTo } from "./broadcast.ts";
import type { Operand } from "./elementwise.ts";
import { cast } from "./cast.ts";
import { isNan } from "./nan_wgsl.ts";

/** The comparisons. */
type CompareOp = "eq" | "ne" | "lt" | "le" | "gt" | "ge";

const OPERATORS: Record<CompareOp, string> = {
  eq: "==",
  ne: "!=",
  lt: "<",
  le: "<=",
  gt: ">",
  ge: ">=",
};

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * WGSL statements finding, from the linear output index `i`, the index into each operand
 * (`names[k]` receives operand k's, a `var` declared here), from baked-in shapes and strides.
 */
function indexSteps(
  out: readonly number[],
  shapes: readonly (readonly number[])[],
  names: string[],
) {
  const strides = shapes.map((shape) => alignedStrides(shape, out));
  const steps = [`var rest = i; ${names.map((name) => `var ${name} = 0u;`).join(" ")}`];
  for (let d = out.length - 1; d >= 0; d--) {
    const terms = strides.map((s, k) => s[d] ? ` ${names[k]} += c * ${u32(s[d])};` : "").join("");
    if (out[d] === 1 || terms === "") continue;
    steps.push(`{ let c = rest % ${u32(out[d])}; rest = rest / ${u32(out[d])};${terms} }`);
  }
  return steps.join("\n        ");
}

/** Options of a comparison kernel; a number operand has shape `[]` and sits in `params`. */
interface CompareOptions {
  out: readonly number[];
  a: readonly number[];
  b: readonly number[];
  /** Which operand is the number `params.scalar`, if any. */
  number: "none" | "a" | "b";
}

/**
 * The comparison kernel of `op`: 4 results per invocation, packed into one u32. With `int`, the
 * operands are i32 arrays and the number an i32.
 */
function compareKernel(op: CompareOp, int = false): KernelSpec<CompareOptions> {
  const operand = (name: string): BindingSpec =>
    int ? { name, role: "read", type: "i32" } : { name, role: "input" };
  return {
    name: int ? `${op}_i32` : op,
    key: ({ out, a, b, number }) =>
      [out, a, b].map((s) => s.join("x") || "0d").join("_") + `_${number}`,
    bindings: ({ number }) => [
      ...(number === "a" ? [] : [operand("in0")]),
      ...(number === "b" ? [] : [operand(number === "a" ? "in0" : "in1")]),
      { name: "out", role: "write", type: "u32" },
    ],
    params: int ? "scalar: i32" : "scalar: f32",
    plan: ({ out }, policy) => ({
      workgroupSize: policy.elementwiseWorkgroup,
      groups: Math.ceil(Math.ceil(sizeOf(out) / 4) / policy.elementwiseWorkgroup),
    }),
    body: ({ out, a, b, number }, { plan }) => {
      const size = sizeOf(out);
      const read = (name: string, index: string) =>
        int ? `${name}[${index}]` : `${name}At(${index})`;
      const x0 = number === "a" ? "params.scalar" : read("in0", "ia");
      const x1 = number === "b" ? "params.scalar" : read(number === "a" ? "in0" : "in1", "ib");
      // NaN compares false, except `ne` (tested by bits: a compiler may assume no NaN).
      const nanResult = op === "ne" ? "true" : "false";
      const nan = int ? "false" : `${isNan("x0")} || ${isNan("x1")}`;
      return /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j < ${u32(Math.ceil(size / 4))}) {
    var word = 0u;
    for (var k = 0u; k < 4u; k++) {
      let i = j * 4u + k;
      if (i < ${u32(size)}) {
        ${indexSteps(out, [a, b], ["ia", "ib"])}
        let x0 = ${x0}; let x1 = ${x1};
        let hit = select(x0 ${OPERATORS[op]} x1, ${nanResult}, ${nan});
        word |= select(0u, 1u, hit) << (k * 8u);
      }
    }
    out[j] = word;
  }`;
    },
  };
}

const KERNELS: Record<CompareOp, KernelSpec<CompareOptions>> = {
  eq: compareKernel("eq"),
  ne: compareKernel("ne"),
  lt: compareKernel("lt"),
  le: compareKernel("le"),
  gt: compareKernel("gt"),
  ge: compareKernel("ge"),
};

const INT_KERNELS: Record<CompareOp, KernelSpec<CompareOptions>> = {
  eq: compareKernel("eq", true),
  ne: compareKernel("ne", true),
  lt: compareKernel("lt", true),
  le: compareKernel("le", true),
  gt: compareKernel("gt", true),
  ge: compareKernel("ge", true),
};

/** Whether `x` is an integer operand: an i32 or u8 tensor, or an integer number within i32. */
function isIntOperand(x: Operand): boolean {
  return typeof x === "number"
    ? Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31
    : x.dtype === "i32" || x.dtype === "u8";
}

function shapeOf(x: Operand): readonly number[] {
  return typeof x === "number" ? [] : x.shape;
}

/** Refuses operands that are not f32 tensors or numbers, naming `op`. */
function checkF32(op: string, operands: readonly Operand[], names: readonly string[]): void {
  for (const [k, x] of operands.entries()) {
    if (typeof x !== "number" && x.dtype !== "f32") {
      throw new Error(
        `${op}: ${names[k]} must be an f32 tensor or a number, got ${x.dtype} ` +
          `(cast(${names[k]}, "f32") first)`,
      );
    }
  }
}

function compare(op: CompareOp, a: Operand, b: Operand): Tensor {
  if (typeof a === "number" && typeof b === "number") {
    throw new Error(`${op}: needs at least one tensor, got two numbers`);
  }
  if (
    (typeof a === "number" || a.dtype === "f32") && (typeof b === "number" || b.dtype === "f32")
  ) {
    return compareAs(op, a, b, false);
  }
  // Promotion: integers compared as i32, any other mix as f32.
  const int = isIntOperand(a) && isIntOperand(b);
  const to = int ? "i32" : "f32";
  const casts: Tensor[] = [];
  const convert = (x: Operand): Operand => {
    if (typeof x === "number" || x.dtype === to) return x;
    const converted = cast(x, to);
    casts.push(converted);
    return converted;
  };
  const mask = compareAs(op, convert(a), convert(b), int);
  for (const t of casts) t.dispose();
  return mask;
}

/** The comparison of f32 (or, with `int`, i32) operands. */
function compareAs(op: CompareOp, a: Operand, b: Operand, int: boolean): Tensor {
  const out = broadcastShapes(op, shapeOf(a), shapeOf(b));
  const mask = Tensor.empty(out, "u8");
  if (mask.size === 0) return mask;
  const number = typeof a === "number" ? "a" : typeof b === "number" ? "b" : "none";
  const scalar = typeof a === "number" ? a : typeof b === "number" ? b : 0;
  const resources: Record<string, Tensor> = { out: mask };
  const tensors = [a, b].filter((x): x is Tensor => typeof x !== "number");
  for (const [k, t] of tensors.entries()) resources[`in${k}`] = t;
  runKernel(
    (int ? INT_KERNELS : KERNELS)[op],
    { out, a: shapeOf(a), b: shapeOf(b), number },
    resources,
    {
      params: int ? new Int32Array([scalar]) : new Float32Array([scalar]),
    },
  );
  return mask;
}

/**
 * a == b element by element, broadcasting (NumPy/PyTorch rules); either may be a number. Gives a
 * `u8` mask of 1 (true) and 0 (false), standing for PyTorch's `bool` tensor; not
 * differentiable. NaN equals nothing.
 *
 * @example A mask, and choosing with it
 * ```ts
 * import { eq, init, tensor, where } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 2, 3], [3]);
 * const mask = eq(x, 2);
 * console.log(mask.dtype, await mask.toArray()); // "u8" [0, 1, 0]
 * console.log(await where(mask, 0, x).toArray()); // [1, 0, 3]
 * ```
 */
export function eq(a: Operand, b: Operand): Tensor {
  return compare("eq", a, b);
}

/**
 * a != b element by element, broadcasting; either may be a number. A `u8` mask (1/0, PyTorch's
 * `bool`); not differentiable. NaN differs from everything, itself included.
 */
export function ne(a: Operand, b: Operand): Tensor {
  return compare("ne", a, b);
}

/**
 * a < b element by element, broadcasting; either may be a number. A `u8` mask (1/0, PyTorch's
 * `bool`); not differentiable. False where either is NaN.
 */
export function lt(a: Operand, b: Operand): Tensor {
  return compare("lt", a, b);
}

/**
 * a <= b element by element, broadcasting; either may be a number. A `u8` mask (1/0, PyTorch's
 * `bool`); not differentiable. False where either is NaN.
 */
export function le(a: Operand, b: Operand): Tensor {
  return compare("le", a, b);
}

/**
 * a > b element by element, broadcasting; either may be a number. A `u8` mask (1/0, PyTorch's
 * `bool`); not differentiable. False where either is NaN.
 */
export function gt(a: Operand, b: Operand): Tensor {
  return compare("gt", a, b);
}

/**
 * a >= b element by element, broadcasting; either may be a number. A `u8` mask (1/0, PyTorch's
 * `bool`); not differentiable. False where either is NaN.
 */
export function ge(a: Operand, b: Operand): Tensor {
  return compare("ge", a, b);
}

/** Options of the `where` kernel; a number operand has shape `[]` and sits in `params`. */
interface WhereOptions {
  out: readonly number[];
  cond: readonly number[];
  /** Whether the condition is a u8 mask (else f32, true where nonzero). */
  mask: boolean;
  /** a's shape, or null for the number `params.a`. */
  a: readonly number[] | null;
  /** b's shape, or null for the number `params.b`. */
  b: readonly number[] | null;
}

const WHERE: KernelSpec<WhereOptions> = {
  name: "where",
  key: ({ out, cond, mask, a, b }) =>
    [out, cond, a ?? ["n"], b ?? ["n"]].map((s) => s.join("x") || "0d").join("_") +
    (mask ? "_u8" : "_f32"),
  bindings: ({ mask, a, b }) => [
    mask ? { name: "cond", role: "read", type: "u32" } : { name: "cond", role: "input" },
    ...(a ? [{ name: "in0", role: "input" } as const] : []),
    ...(b ? [{ name: "in1", role: "input" } as const] : []),
    { name: "out", role: "write" },
  ],
  params: "a: f32, b: f32",
  plan: ({ out }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(sizeOf(out) / policy.elementwiseWorkgroup),
  }),
  body: ({ out, cond, mask, a, b }, { plan }) => {
    const test = mask
      ? "((cond[ic >> 2u] >> ((ic & 3u) * 8u)) & 0xffu) != 0u"
      : `(condAt(ic) != 0.0) || ${isNan("condAt(ic)")}`;
    return /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(sizeOf(out))}) {
        ${indexSteps(out, [cond, a ?? [], b ?? []], ["ic", "ia", "ib"])}
    if (${test}) { out[i] = ${a ? "in0At(ia)" : "params.a"}; } else { out[i] = ${
      b ? "in1At(ib)" : "params.b"
    }; }
  }`;
  },
};

/** The forward of `where`; no autograd. */
function select(cond: Tensor, a: Operand, b: Operand): Tensor {
  const shape = broadcastShapes(
    "where",
    broadcastShapes("where", cond.shape, shapeOf(a)),
    shapeOf(b),
  );
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  const resources: Record<string, Tensor> = { cond, out };
  if (typeof a !== "number") resources.in0 = a;
  if (typeof b !== "number") resources.in1 = b;
  runKernel(
    WHERE,
    {
      out: shape,
      cond: cond.shape,
      mask: cond.dtype === "u8",
      a: typeof a === "number" ? null : a.shape,
      b: typeof b === "number" ? null : b.shape,
    },
    resources,
    { params: new Float32Array([typeof a === "number" ? a : 0, typeof b === "number" ? b : 0]) },
  );
  return out;
}

/**
 * a where `cond` is true, b elsewhere, the three broadcast together (NumPy/PyTorch rules), as
 * `torch.where`. `cond` is a `u8` mask (from `eq`, `lt`, ...: nonzero is true) or an `f32`

 * tensor, true where nonzero (NaN included), i.e. `torch.where(cond != 0, a, b)` (PyTorch itself
 * wants a bool cond); a and b are f32 tensors or numbers. The gradient
 * goes to a where `cond` holds and to b elsewhere, each summed back to its shape; `cond` gets
 * none.
 *
 * @example Clipping negatives to zero
 * ```ts
 * import { init, lt, tensor, where } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([-1, 2, -3], [3]);
 * console.log(await where(lt(x, 0), 0, x).toArray()); // [0, 2, 0]
 * ```
 */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  if (cond.dtype !== "u8" && cond.dtype !== "f32") {
    throw new Error(`where: cond must be a u8 mask or an f32 tensor, got ${cond.dtype}`);
  }
  checkF32("where", [a, b], ["a", "b"]);
  const out = select(cond, a, b);
  const operands = ([[a, 0], [b, 1]] as const).filter(
    (entry): entry is readonly [Tensor, 0 | 1] => typeof entry[0] !== "number",
  );
  return recordOp(
    "where",
    out,
    [cond, ...operands.map(([t]) => t)],
    (grad) => [
      null,
      ...operands.map(([t, which]) =>
        t.requiresGrad
          ? sumTo(which === 0 ? select(cond, grad, 0) : select(cond, 0, grad), t.shape)
          : null
      ),
    ],
  );
}
