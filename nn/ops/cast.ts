/**
 * Dtype conversion: `cast(x, dtype)`, wgtorch's `x.to(dtype)`, between `f32`, `i32` and `u8`.
 *
 * One kernel for every pair: each invocation converts 4 elements (one `u32` word of a `u8`
 * tensor). Conversions follow PyTorch's CUDA behaviour, which is defined for every input:
 *
 * - f32 → i32 truncates toward zero; values beyond the i32 range saturate to its ends and NaN
 *   gives 0 (PyTorch on x86 CPUs gives -2^31 for both, an undefined case in C++);
 * - f32 → u8 truncates toward zero (saturating to i32 first, NaN 0), then wraps modulo 256, as
 *   PyTorch does through its integer conversion (-1.5 → 255, 300 → 44);
 * - i32 → u8 wraps modulo 256 (-1 → 255, 256 → 0), as PyTorch;
 * - i32 → f32 rounds to the nearest f32 (exact up to 2^24); u8 → f32 and u8 → i32 are exact.
 *
 * Only f32 → f32 is differentiable (the identity); an integer result has no gradient, as in
 * PyTorch.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { type DType, Tensor } from "../tensor.ts";
import { isNan } from "./nan_wgsl.ts";

const DTYPES: readonly DType[] = ["f32", "i32", "u8"];

/** Options of the cast kernel. */
interface CastOptions {
  size: number;
  from: DType;
  to: DType;
}

/** The largest f32 below 2^31: f32 values up to it convert to i32 exactly. */
const I32_MAX_F32 = "2147483520.0";
/** 2^31 - 1, what f32 values of 2^31 and above become. */
const I32_MAX = "2147483647";
/** -2^31, an f32 exactly. */
const I32_MIN_F32 = "-2147483648.0";

/** WGSL of element `i` of the input, as its own dtype (f32, i32, or a u32 byte). */
function load(from: DType): string {
  switch (from) {
    case "f32":
      return "srcAt(i)";
    case "i32":
      return "src[i]";
    case "u8":
      return "((src[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu)";
  }
}

/** WGSL converting the value `v` of dtype `from` to the WGSL type of `to` (u8: a u32 in 0..255). */
function convert(from: DType, to: DType): string {
  if (from === to) return "v";
  if (to === "f32") return "f32(v)";
  // f32 → integer: truncate toward zero, saturating, NaN → 0 (as PyTorch on CUDA).
  // (WGSL's own conversion stops at 2^31 - 128, the largest f32 below 2^31.)
  const inRange =
    `select(i32(clamp(v, ${I32_MIN_F32}, ${I32_MAX_F32})), ${I32_MAX}, v >= 2147483648.0)`;
  const truncated = `select(${inRange}, 0, ${isNan("v")})`;
  if (to === "i32") return from === "f32" ? truncated : "i32(v)";
  // to u8: wrap modulo 256 (two's complement bits).
  return from === "f32" ? `(bitcast<u32>(${truncated}) & 0xffu)` : "(bitcast<u32>(v) & 0xffu)";
}

const CAST: KernelSpec<CastOptions> = {
  name: "cast",
  key: ({ size, from, to }) => `${size}_${from}_${to}`,
  bindings: ({ from, to }) => [
    from === "f32"
      ? { name: "src", role: "input", readOnce: true }
      : { name: "src", role: "read", type: from === "i32" ? "i32" : "u32" } as BindingSpec,
    { name: "out", role: "write", type: to === "f32" ? "f32" : to === "i32" ? "i32" : "u32" },
  ],
  plan: ({ size }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(Math.ceil(size / 4) / policy.elementwiseWorkgroup),
  }),
  body: ({ size, from, to }, { plan }) => {
    const value = `let v = ${load(from)}; let c = ${convert(from, to)};`;
    const store = to === "u8" ? "word |= c << (k * 8u);" : "out[i] = c;";
    return /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j < ${u32(Math.ceil(size / 4))}) {
    var word = 0u;
    for (var k = 0u; k < 4u; k++) {
      let i = j * 4u + k;
      if (i < ${u32(size)}) { ${value} ${store} }
    }
    ${to === "u8" ? "out[j] = word;" : ""}
  }`;
  },
};

/**
 * `x` converted to `dtype` (`"f32"`, `"i32"` or `"u8"`), PyTorch's `x.to(dtype)`: always a new
 * tensor (a view sharing the elements when the dtype is already `dtype`), which the caller
 * disposes. f32 → int truncates toward zero, saturating at the i32 range, NaN → 0; → u8 wraps
 * modulo 256 (see the module notes). Differentiable only from f32 to f32 (the identity).
 *
 * @example Labels as floats, and floats truncated
 * ```ts
 * import { cast, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const labels = tensor([0, 2, 1], [3], { dtype: "i32" });
 * console.log(await cast(labels, "f32").toArray()); // Float32Array [0, 2, 1]
 * const x = tensor([-1.5, 2.7, 300], [3]);
 * console.log(await cast(x, "i32").toTypedArray()); // Int32Array [-1, 2, 300]
 * console.log(await cast(x, "u8").toTypedArray()); // Uint8Array [255, 2, 44]
 * ```
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (!DTYPES.includes(dtype)) {
    throw new Error(`cast: dtype must be "f32", "i32" or "u8", got ${String(dtype)}`);
  }
  if (x.dtype === dtype) {
    const same = x.view();
    return dtype === "f32" ? recordOp("cast", same, [x], (grad) => [grad.view()]) : same;
  }
  const out = Tensor.empty(x.shape, dtype);
  if (out.size === 0) return out;
  runKernel(CAST, { size: out.size, from: x.dtype, to: dtype }, { src: x, out });
  return out;
}
