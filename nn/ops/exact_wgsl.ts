/**
 * WGSL helpers that give division and integer powers the f32 results PyTorch gives, on adapters
 * whose `/` and `pow` are approximations. WGSL allows both: `x / y` within 2.5 ULP, and `pow`
 * as accurate as `exp2(y * log2(x))`. Measured on an NVIDIA H200 through Vulkan: quotients 1 ULP
 * off, and (-2)^3 = -7.9999976. llvmpipe's `/` is exact, so the software policy keeps it.
 *
 * Each prelude defines an `f32` function and its `vec4<f32>` twin (WGSL has no overloads).
 *
 * @module
 */

import type { KernelPolicy } from "../gpu/policy.ts";

/** Integer exponents up to this size are computed by repeated squaring (at most 8 products). */
const MAX_SQUARED_EXPONENT = 16;

/**
 * `div_rn(a, b)` and `div_rn4(a, b)`: a / b, rounded as f32 division is. Under the hardware
 * policy the quotient of two normal floats is found by long division of their 24-bit
 * significands in integers (25 quotient bits and a sticky remainder, rounded to nearest even):
 * exact whatever the adapter's float unit does. A float fix-up (the residual a - q * b through
 * `fma`) left some quotients 1 ULP off on the NVIDIA GPU, since `fma` need not be fused in SPIR-V.
 * Zeros, infinities, NaN, subnormals and quotients outside the normal range keep the adapter's
 * `/`.
 */
export function divPrelude(policy: KernelPolicy): string {
  if (policy.name === "software") {
    return /* wgsl */ `
fn div_rn(a: f32, b: f32) -> f32 { return a / b; }
fn div_rn4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> { return a / b; }`;
  }
  return /* wgsl */ `
fn div_rn(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let ea = i32((ua >> 23u) & 0xffu);
  let eb = i32((ub >> 23u) & 0xffu);
  if (ea == 0 || ea == 255 || eb == 0 || eb == 255) { return a / b; }
  let ma = (ua & 0x7fffffu) | 0x800000u;
  let mb = (ub & 0x7fffffu) | 0x800000u;
  // Scale the dividend's significand so that the quotient lies in [1, 2).
  let below = ma < mb;
  var rest = select(ma, ma << 1u, below);
  var e = ea - eb + 127 - select(0, 1, below);
  var m = 0u;
  for (var i = 0u; i < 25u; i++) {
    m = m << 1u;
    if (rest >= mb) { rest = rest - mb; m = m | 1u; }
    rest = rest << 1u;
  }
  let half = (m & 1u) == 1u;
  m = m >> 1u;
  if (half && (rest != 0u || (m & 1u) == 1u)) { m = m + 1u; }
  if (m == 0x1000000u) { m = m >> 1u; e = e + 1; }
  if (e < 1 || e > 254) { return a / b; }
  return bitcast<f32>(((ua ^ ub) & 0x80000000u) | (u32(e) << 23u) | (m & 0x7fffffu));
}
fn div_rn4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(div_rn(a.x, b.x), div_rn(a.y, b.y), div_rn(a.z, b.z), div_rn(a.w, b.w));
}`;
}

/**
 * `pow_mag(m, b)` and `pow_mag4(m, b)`: m^b for m > 0 (the caller handles signs, zeros, NaN and
 * b = 0). Integer exponents up to `MAX_SQUARED_EXPONENT` are computed by repeated squaring, so a
 * power that is an f32 comes out exact (every partial power is then an f32 too), and squares and
 * cubes round as PyTorch's, which multiplies for those; a negative exponent divides by
 * `div_rn`. Both policies square: llvmpipe's `pow` gave 3^10 = 59048.99 and 10^5 = 99999.98.
 * Other exponents use `pow`. Includes `divPrelude`.
 */
export function powPrelude(policy: KernelPolicy): string {
  return divPrelude(policy) + /* wgsl */ `
fn pow_mag(m: f32, b: f32) -> f32 {
  if (floor(b) != b || abs(b) > ${MAX_SQUARED_EXPONENT}.0) { return pow(m, b); }
  var n = u32(abs(b));
  var square = m;
  var power = 1.0;
  loop {
    if ((n & 1u) != 0u) { power = power * square; }
    n = n >> 1u;
    if (n == 0u) { break; }
    square = square * square;
  }
  return select(power, div_rn(1.0, power), b < 0.0);
}
fn pow_mag4(m: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(pow_mag(m.x, b.x), pow_mag(m.y, b.y), pow_mag(m.z, b.z), pow_mag(m.w, b.w));
}`;
}
