/**
 * WGSL pieces that keep NaN as PyTorch does. WGSL's `max` may drop a NaN, comparisons with NaN
 * are false, and a compiler may assume floats are never NaN (and fold `v != v` to false), so
 * NaN is recognised by a bit test: exponent all ones, mantissa not zero.
 *
 * @module
 */

/** WGSL: whether the `f32` expression `v` is NaN. */
export function isNan(v: string): string {
  return `((bitcast<u32>(${v}) & 0x7fffffffu) > 0x7f800000u)`;
}

/** WGSL: which lanes of the `vec4<f32>` expression `v` are NaN (a `vec4<bool>`). */
export function isNan4(v: string): string {
  return `((bitcast<vec4<u32>>(${v}) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u))`;
}

/**
 * WGSL: the `f32` function `fn` (`exp`, `log`) of `v` (evaluated twice: pass a name), NaN for
 * NaN (WGSL leaves it undefined there, and SwiftShader gives 0, inf or a number).
 */
export function keepNan(fn: string, v: string): string {
  return `select(${fn}(${v}), ${v}, ${isNan(v)})`;
}

/** WGSL: relu of the `vec4<f32>` expression `v` (evaluated twice: pass a name), NaN kept. */
export function relu4(v: string): string {
  return `select(max(${v}, vec4<f32>(0.0)), ${v}, ${isNan4(v)})`;
}

/** WGSL: relu of the `f32` expression `v` (evaluated twice: pass a name), NaN kept. */
export function relu1(v: string): string {
  return `select(max(${v}, 0.0), ${v}, ${isNan(v)})`;
}

/**
 * WGSL: relu's backward on `vec4`s, given the gradient `grad` and relu's output `output` (each
 * evaluated more than once: pass names): 0 where the output is <= 0, else the gradient (NaN
 * outputs pass it, as PyTorch's `threshold_backward`).
 */
export function reluGrad4(grad: string, output: string): string {
  return `select(select(vec4<f32>(0.0), ${grad}, ${output} > vec4<f32>(0.0)), ${grad}, ${
    isNan4(output)
  })`;
}
