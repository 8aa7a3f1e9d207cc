/**
 * CPU references (float64) of the element-wise ops.
 *
 * @module
 */

/** a + b. */
export function addReference(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (x, i) => x + b[i]);
}

/** a * b. */
export function mulReference(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (x, i) => x * b[i]);
}

/** max(x, 0); NaN stays NaN (`Math.max` propagates it, as PyTorch's relu). */
export function reluReference(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => Math.max(v, 0));
}

/** The gradient of relu: 0 where x <= 0, else grad (NaN passes it, as PyTorch). */
export function reluBackwardReference(grad: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(grad, (g, i) => x[i] <= 0 ? 0 : g);
}

/** a - b. */
export function subReference(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (x, i) => x - b[i]);
}

/** factor * x. */
export function scaleReference(x: ArrayLike<number>, factor: number): Float64Array {
  return Float64Array.from(x, (v) => factor * v);
}

/** The gradients of a + b: [grad, grad]. */
export function addBackwardReference(grad: ArrayLike<number>): [Float64Array, Float64Array] {
  return [Float64Array.from(grad), Float64Array.from(grad)];
}

/** The gradients of a - b: [grad, -grad]. */
export function subBackwardReference(grad: ArrayLike<number>): [Float64Array, Float64Array] {
  return [Float64Array.from(grad), Float64Array.from(grad, (g) => -g)];
}

/** The gradients of a * b: [grad * b, grad * a]. */
export function mulBackwardReference(
  grad: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): [Float64Array, Float64Array] {
  return [Float64Array.from(grad, (g, i) => g * b[i]), Float64Array.from(grad, (g, i) => g * a[i])];
}
