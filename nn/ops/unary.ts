/**
 * Unary element-wise ops (PyTorch's names): neg, abs, exp, log, sqrt, rsqrt, square, sin, cos,
 * sigmoid, tanh, leakyRelu, elu, gelu, silu, softplus, clamp.
 *
 * Every forward and backward is one kernel of the same shape as the binary ops': each invocation
 * reads 4 elements of every input (through textures under the software policy) and writes 4 with
 * one vec4 store. Constants that are usually fixed per model (leakyRelu's slope, elu's alpha,
 * softplus's beta and threshold) are baked into the kernel; clamp's bounds, often per call, come
 * from the per-call `params` uniform, so new bounds compile no new pipeline. NaN propagates as in
 * PyTorch, forward and backward (tested value by value in `tests/nn/unary_test.ts`).
 *
 * Dtypes (PyTorch's type promotion): an `i32` tensor stays i32 in neg, abs, square and clamp
 * with integer bounds (computed by the integer kernels of `elementwise.ts`); every other op, and
 * every op of a `u8` mask, casts it to f32 first (the float functions PyTorch computes in float
 * for integers; wgtorch also does so where PyTorch refuses integers, e.g. gelu).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import type { KernelSpec } from "../gpu/program.ts";
import type { Tensor } from "../tensor.ts";
import { cast } from "./cast.ts";
import { maximum, minimum, mul, sub } from "./elementwise.ts";
import { mapKernel, type MapOptions, runMap } from "./map_kernel.ts";
import { isNan4 } from "./nan_wgsl.ts";

const ZERO = "vec4<f32>(0.0)";
/** NaN where x0 < 0 (built from x0's bits: a constant NaN is a WGSL compile error). */
const NAN = "bitcast<vec4<f32>>(bitcast<vec4<u32>>(x0) | vec4<u32>(0x7fc00000u))";
/** ±Infinity where x0 is ±0. */
const INF = "bitcast<vec4<f32>>(bitcast<vec4<u32>>(x0) | vec4<u32>(0x7f800000u))";

/**
 * A map kernel (`map_kernel.ts`) whose prelude holds the WGSL helpers its expression calls.
 */
function unaryKernel(
  name: string,
  arity: number,
  expression: (c: readonly string[]) => string,
  params?: string,
): KernelSpec<MapOptions> {
  // Forward kernels give NaN for NaN explicitly: WGSL leaves exp/log of NaN undefined, and
  // SwiftShader (Chrome's software adapter) gives numbers or inf there.
  const kept = arity === 1
    ? (c: readonly string[]) => `select(${expression(c)}, x0, ${isNan4("x0")})`
    : expression;
  return mapKernel(name, arity, kept, { params, prelude: helpersFor });
}

/** The WGSL helpers (`HELPERS`) that `code` calls. */
function helpersFor(code: string): string {
  return HELPERS.filter(([helper]) => code.includes(`${helper}(`)).map(([, wgsl]) => wgsl)
    .join("\n");
}

/**
 * WGSL helpers, by name; a kernel gets those its expression calls. `erf4` is float32-accurate
 * (within ~4e-7 absolutely): x P(x²) / Q(x²) on x clamped to [-4, 4] (Eigen's
 * `generic_fast_erf_float` rational approximation), NaN kept. `tanh4` clamps to [-10, 10] first
 * (tanh is ±1 in f32 beyond 9), so no implementation can overflow an exp inside.
 */
const HELPERS: readonly (readonly [string, string])[] = [
  [
    "erf4",
    /* wgsl */ `
fn erf4(v: vec4<f32>) -> vec4<f32> {
  let x = clamp(v, vec4<f32>(-4.0), vec4<f32>(4.0));
  let x2 = x * x;
  var p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08;
  p = p * x2 - 2.10102402082508e-06;
  p = p * x2 - 5.69250639462346e-05;
  p = p * x2 - 7.34990630326855e-04;
  p = p * x2 - 2.95459980854025e-03;
  p = p * x2 - 1.60960333262415e-02;
  var q = x2 * -1.45660718464996e-05 - 2.13374055278905e-04;
  q = q * x2 - 1.68282697438203e-03;
  q = q * x2 - 7.37332916720468e-03;
  q = q * x2 - 1.42647390514189e-02;
  return select(x * p / q, v, ${isNan4("v")});
}`,
  ],
  [
    "sinCos4",
    /* wgsl */ `
// sin (which 0) or cos (which 1) to a few ulp wherever |x| < ~8000 pi, the same on every backend
// (WGSL only bounds sin/cos to 2^-11 absolutely on [-pi, pi]; SwiftShader's are that coarse):
// x = q pi/2 + r with pi/2 in three parts (Cody-Waite), then Cephes' sinf/cosf polynomials on r.
fn sinCos4(x: vec4<f32>, which: u32) -> vec4<f32> {
  let q = round(x * 0.6366197723675814);
  let r = ((x - q * 1.5703125) - q * 4.837512969970703125e-4) - q * 7.54978995489188216e-8;
  let z = r * r;
  let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z -
    0.5 * z + 1.0;
  let k = (bitcast<vec4<u32>>(vec4<i32>(q)) + vec4<u32>(which)) & vec4<u32>(3u);
  let v = select(s, c, (k & vec4<u32>(1u)) == vec4<u32>(1u));
  return select(v, -v, k >= vec4<u32>(2u));
}`,
  ],
  [
    "sigmoid4",
    // NaN kept explicitly: SwiftShader's exp(NaN) is inf, which would give 0.
    /* wgsl */ `
fn sigmoid4(x: vec4<f32>) -> vec4<f32> {
  return select(1.0 / (1.0 + exp(-x)), x, ${isNan4("x")});
}`,
  ],
  [
    "tanh4",
    /* wgsl */ `
fn tanh4(x: vec4<f32>) -> vec4<f32> {
  return select(tanh(clamp(x, vec4<f32>(-10.0), vec4<f32>(10.0))), x, ${isNan4("x")});
}`,
  ],
];

// Forward kernels: x0 is the input.
const NEG = unaryKernel("neg", 1, () => "-x0");
const ABS = unaryKernel("abs", 1, () => "abs(x0)");
// NaN kept explicitly: SwiftShader's exp gives inf for NaN.
const EXP = unaryKernel("exp", 1, () => `select(exp(x0), x0, ${isNan4("x0")})`);
// NaN kept explicitly: SwiftShader's log of NaN is a number.
const LOG = unaryKernel(
  "log",
  1,
  () => `select(log(x0), ${NAN}, (x0 < ${ZERO}) | ${isNan4("x0")})`,
);
const SQRT = unaryKernel("sqrt", 1, () => `select(sqrt(x0), ${NAN}, x0 < ${ZERO})`);
const RSQRT = unaryKernel(
  "rsqrt",
  1,
  () => `select(select(inverseSqrt(x0), ${INF}, x0 == ${ZERO}), ${NAN}, x0 < ${ZERO})`,
);
const SQUARE = unaryKernel("square", 1, () => "x0 * x0");
const SIN = unaryKernel("sin", 1, () => "sinCos4(x0, 0u)");
const COS = unaryKernel("cos", 1, () => "sinCos4(x0, 1u)");
const SIGMOID = unaryKernel("sigmoid", 1, () => "sigmoid4(x0)");
const TANH = unaryKernel("tanh", 1, () => "tanh4(x0)");
const LEAKY_RELU = unaryKernel(
  "leaky_relu",
  1,
  ([slope]) => `select(x0 * ${slope}, x0, x0 > ${ZERO})`,
);
const ELU = unaryKernel(
  "elu",
  1,
  ([alpha]) => `select(${alpha} * (exp(x0) - 1.0), x0, x0 > ${ZERO})`,
);
const GELU = unaryKernel("gelu", 1, () => `0.5 * x0 * (1.0 + erf4(x0 * 0.7071067811865476))`);
const GELU_TANH = unaryKernel(
  "gelu_tanh",
  1,
  () => `0.5 * x0 * (1.0 + tanh4(0.7978845608028654 * (x0 + 0.044715 * x0 * x0 * x0)))`,
);
const SILU = unaryKernel("silu", 1, () => "x0 * sigmoid4(x0)");
const SOFTPLUS = unaryKernel(
  "softplus",
  1,
  ([beta, threshold]) =>
    `select((max(x0 * ${beta}, ${ZERO}) + log(1.0 + exp(-abs(x0 * ${beta})))) / ${beta}, x0, ` +
    `x0 * ${beta} > vec4<f32>(${threshold}))`,
);
const CLAMP = unaryKernel(
  "clamp",
  1,
  () => `select(min(max(x0, vec4<f32>(params.lo)), vec4<f32>(params.hi)), x0, ${isNan4("x0")})`,
  "lo: f32, hi: f32",
);

// Backward kernels: x0 is the output gradient, x1 the saved input (or output, where said).
const MUL_SIGN = unaryKernel(
  "abs_backward",
  2,
  () => `select(x0 * sign(x1), ${ZERO}, ${isNan4("x1")} | (x1 == ${ZERO}))`,
);
const MUL = unaryKernel("mul_backward", 2, () => "x0 * x1");
const DIV = unaryKernel("div_backward", 2, () => "x0 / x1");
const SQRT_BACKWARD = unaryKernel("sqrt_backward", 2, () => "x0 / (2.0 * x1)"); // x1: output
const RSQRT_BACKWARD = unaryKernel("rsqrt_backward", 2, () => "-0.5 * x0 * x1 * x1 * x1"); // output
const SQUARE_BACKWARD = unaryKernel("square_backward", 2, () => "2.0 * x0 * x1");
const SIN_BACKWARD = unaryKernel("sin_backward", 2, () => "x0 * sinCos4(x1, 1u)");
const COS_BACKWARD = unaryKernel("cos_backward", 2, () => "-x0 * sinCos4(x1, 0u)");
const SIGMOID_BACKWARD = unaryKernel("sigmoid_backward", 2, () => "x0 * x1 * (1.0 - x1)"); // output
const TANH_BACKWARD = unaryKernel("tanh_backward", 2, () => "x0 * (1.0 - x1 * x1)"); // output
const LEAKY_RELU_BACKWARD = unaryKernel(
  "leaky_relu_backward",
  2,
  ([slope]) => `select(x0 * ${slope}, x0, x1 > ${ZERO})`,
);
const ELU_BACKWARD = unaryKernel(
  "elu_backward",
  2,
  ([alpha]) => `select(x0, x0 * ${alpha} * exp(x1), x1 <= ${ZERO})`,
);
const GELU_BACKWARD = unaryKernel(
  "gelu_backward",
  2,
  () =>
    `x0 * (0.5 * (1.0 + erf4(x1 * 0.7071067811865476)) + ` +
    `x1 * 0.3989422804014327 * exp(-0.5 * x1 * x1))`,
);
const GELU_TANH_BACKWARD = unaryKernel("gelu_tanh_backward", 2, () => {
  const inner = "0.7978845608028654 * (x1 + 0.044715 * x1 * x1 * x1)";
  const t = `tanh4(${inner})`;
  return `x0 * (0.5 * (1.0 + ${t}) + 0.5 * x1 * (1.0 - ${t} * ${t}) * ` +
    `0.7978845608028654 * (1.0 + 0.134145 * x1 * x1))`;
});
const SILU_BACKWARD = unaryKernel(
  "silu_backward",
  2,
  () => `x0 * sigmoid4(x1) * (1.0 + x1 * (1.0 - sigmoid4(x1)))`,
);
const SOFTPLUS_BACKWARD = unaryKernel(
  "softplus_backward",
  2,
  ([beta, threshold]) =>
    `select(x0 * sigmoid4(x1 * ${beta}), x0, x1 * ${beta} > vec4<f32>(${threshold}))`,
);
const CLAMP_BACKWARD = unaryKernel(
  "clamp_backward",
  2,
  () => `select(${ZERO}, x0, (x1 >= vec4<f32>(params.lo)) & (x1 <= vec4<f32>(params.hi)))`,
  "lo: f32, hi: f32",
);

/** `op` of x cast to f32 (x is an i32 or u8 tensor, which has no gradient). */
function ofFloat(x: Tensor, op: (x: Tensor) => Tensor): Tensor {
  const f = cast(x, "f32");
  const out = op(f);
  f.dispose();
  return out;
}

/**
 * One unary op: the forward kernel, and a backward kernel given the output gradient and the
 * saved input (or, with `savesOutput`, the output).
 */
function unary(
  name: string,
  x: Tensor,
  forward: KernelSpec<MapOptions>,
  backward: KernelSpec<MapOptions>,
  { constants = [], params, savesOutput = false }: {
    constants?: readonly number[];
    params?: Float32Array;
    savesOutput?: boolean;
  } = {},
): Tensor {
  if (x.dtype !== "f32") {
    return ofFloat(x, (f) => unary(name, f, forward, backward, { constants, params, savesOutput }));
  }
  const out = runMap(forward, [x], constants, params);
  return recordOp(name, out, [x], (grad) => [
    runMap(backward, [grad, savesOutput ? out : x], constants, params),
  ]);
}

/** -x (i32 stays i32, wrapping at -2^31 as PyTorch; a u8 mask gives f32). */
export function neg(x: Tensor): Tensor {
  if (x.dtype === "i32") return sub(0, x);
  if (x.dtype === "u8") return ofFloat(x, neg);
  const out = runMap(NEG, [x]);
  return recordOp("neg", out, [x], (grad) => [runMap(NEG, [grad])]);
}

/**
 * |x|; its gradient is sign(x), 0 at 0 and at NaN (as PyTorch). i32 stays i32 (|-2^31| wraps to
 * -2^31, as PyTorch).
 */
export function abs(x: Tensor): Tensor {
  if (x.dtype === "i32") {
    const negated = sub(0, x);
    const out = maximum(x, negated);
    negated.dispose();
    return out;
  }
  return unary("abs", x, ABS, MUL_SIGN);
}

/** e^x. */
export function exp(x: Tensor): Tensor {
  return unary("exp", x, EXP, MUL, { savesOutput: true });
}

/** The natural logarithm: -Infinity at 0, NaN below. */
export function log(x: Tensor): Tensor {
  return unary("log", x, LOG, DIV);
}

/** The square root: NaN below 0 (its gradient is Infinity at 0). */
export function sqrt(x: Tensor): Tensor {
  return unary("sqrt", x, SQRT, SQRT_BACKWARD, { savesOutput: true });
}

/** 1 / sqrt(x): Infinity at 0, NaN below 0. */
export function rsqrt(x: Tensor): Tensor {
  return unary("rsqrt", x, RSQRT, RSQRT_BACKWARD, { savesOutput: true });
}

/** x * x (i32 stays i32, wrapping on overflow). */
export function square(x: Tensor): Tensor {
  if (x.dtype === "i32") return mul(x, x);
  return unary("square", x, SQUARE, SQUARE_BACKWARD);
}

/** The sine (radians). */
export function sin(x: Tensor): Tensor {
  return unary("sin", x, SIN, SIN_BACKWARD);
}

/** The cosine (radians). */
export function cos(x: Tensor): Tensor {
  return unary("cos", x, COS, COS_BACKWARD);
}

/** 1 / (1 + e^-x), saturating to exactly 0 and 1. */
export function sigmoid(x: Tensor): Tensor {
  return unary("sigmoid", x, SIGMOID, SIGMOID_BACKWARD, { savesOutput: true });
}

/** The hyperbolic tangent, saturating to exactly ±1. */
export function tanh(x: Tensor): Tensor {
  return unary("tanh", x, TANH, TANH_BACKWARD, { savesOutput: true });
}

/** Options of `leakyRelu`. */
export interface LeakyReluOptions {
  /** The slope below 0 (default 0.01); baked into the kernel (one pipeline per value). */
  negativeSlope?: number;
}

/** x where x > 0, else negativeSlope * x (as PyTorch's `leaky_relu`). */
export function leakyRelu(x: Tensor, { negativeSlope = 0.01 }: LeakyReluOptions = {}): Tensor {
  return unary("leakyRelu", x, LEAKY_RELU, LEAKY_RELU_BACKWARD, { constants: [negativeSlope] });
}

/** Options of `elu`. */
export interface EluOptions {
  /** The scale of the negative part (default 1); baked into the kernel (one pipeline per value). */
  alpha?: number;
}

/** x where x > 0, else alpha * (e^x - 1) (as PyTorch's `elu`). */
export function elu(x: Tensor, { alpha = 1 }: EluOptions = {}): Tensor {
  return unary("elu", x, ELU, ELU_BACKWARD, { constants: [alpha] });
}

/** Options of `gelu`. */
export interface GeluOptions {
  /** `"none"` (default): the exact x Φ(x), through erf; `"tanh"`: the tanh approximation. */
  approximate?: "none" | "tanh";
}

/** The Gaussian error linear unit, x Φ(x) (as PyTorch's `gelu`). */
export function gelu(x: Tensor, { approximate = "none" }: GeluOptions = {}): Tensor {
  if (approximate !== "none" && approximate !== "tanh") {
    throw new Error(`gelu: approximate must be "none" or "tanh", got ${String(approximate)}`);
  }
  return approximate === "tanh"
    ? unary("gelu", x, GELU_TANH, GELU_TANH_BACKWARD)
    : unary("gelu", x, GELU, GELU_BACKWARD);
}

/** x * sigmoid(x) (as PyTorch's `silu`). */
export function silu(x: Tensor): Tensor {
  return unary("silu", x, SILU, SILU_BACKWARD);
}

/** Options of `softplus`. */
export interface SoftplusOptions {
  /** Default 1; baked into the kernel (one pipeline per value). */
  beta?: number;
  /** Above it, beta * x is returned as x (default 20); baked into the kernel. */
  threshold?: number;
}

/** log(1 + e^(beta x)) / beta, or x where beta * x > threshold (as PyTorch's `softplus`). */
export function softplus(
  x: Tensor,
  { beta = 1, threshold = 20 }: SoftplusOptions = {},
): Tensor {
  return unary("softplus", x, SOFTPLUS, SOFTPLUS_BACKWARD, { constants: [beta, threshold] });
}

/** Options of `clamp`: either bound may be left out. */
export interface ClampOptions {
  /** The lower bound. */
  min?: number;
  /** The upper bound (wins over `min` where min > max, as PyTorch). */
  max?: number;
}

/**
 * min(max(x, min), max), NaN staying NaN; the gradient passes where min <= x <= max and is 0
 * elsewhere (as PyTorch). The bounds are per-call uniforms: new bounds compile nothing. An i32
 * x with integer bounds stays i32; with a fractional bound it is clamped as f32.
 */
export function clamp(x: Tensor, { min, max }: ClampOptions = {}): Tensor {
  if (min === undefined && max === undefined) {
    throw new Error("clamp: needs min or max (or both)");
  }
  const integer = (bound?: number) => bound === undefined || Number.isInteger(bound);
  if (x.dtype === "i32" && integer(min) && integer(max)) {
    // Integer bounds keep an i32 x i32 (as PyTorch); bounds beyond i32 are clipped to it.
    const clip = (bound: number) => Math.min(Math.max(bound, -(2 ** 31)), 2 ** 31 - 1);
    const lower = min === undefined ? x.view() : maximum(x, clip(min));
    if (max === undefined) return lower;
    const out = minimum(lower, clip(max));
    lower.dispose();
    return out;
  }
  const params = new Float32Array([min ?? -Infinity, max ?? Infinity]);
  return unary("clamp", x, CLAMP, CLAMP_BACKWARD, { params });
}
