/**
 * CPU references (float64) of the unary ops, forward and backward (the backward given the output
 * gradient and the input), with PyTorch's rules at kinks and for NaN.
 *
 * @module
 */

/** One unary op's reference: forward `f(x)` and derivative `d(x)` (the backward is grad * d(x)). */
export interface UnaryReference {
  forward: (x: number) => number;
  derivative: (x: number) => number;
}

/** erf in float64: the Maclaurin series below 2, the continued fraction of erfc above. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a < 2) {
    // Maclaurin series: converges fast for |x| < 2.
    let term = x;
    let sum = x;
    for (let n = 1; n < 60; n++) {
      term *= -x * x / n;
      const next = term / (2 * n + 1);
      sum += next;
      if (Math.abs(next) < 1e-17 * Math.abs(sum)) break;
    }
    return 2 / Math.sqrt(Math.PI) * sum;
  }
  // Continued fraction of erfc for |x| >= 2.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (a + f);
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  return Math.sign(x) * (1 - erfc);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const SQRT_2_PI = Math.sqrt(2 / Math.PI);

/** The references by op name; options as in the ops. */
export const unaryReferences = {
  neg: { forward: (x: number) => -x, derivative: () => -1 },
  abs: {
    forward: Math.abs,
    derivative: (x: number) => (Number.isNaN(x) || x === 0 ? 0 : Math.sign(x)),
  },
  exp: { forward: Math.exp, derivative: Math.exp },
  log: { forward: Math.log, derivative: (x: number) => 1 / x },
  sqrt: { forward: Math.sqrt, derivative: (x: number) => 0.5 / Math.sqrt(x) },
  rsqrt: { forward: (x: number) => 1 / Math.sqrt(x), derivative: (x: number) => -0.5 * x ** -1.5 },
  square: { forward: (x: number) => x * x, derivative: (x: number) => 2 * x },
  sin: { forward: Math.sin, derivative: Math.cos },
  cos: { forward: Math.cos, derivative: (x: number) => -Math.sin(x) },
  sigmoid: { forward: sigmoid, derivative: (x: number) => sigmoid(x) * (1 - sigmoid(x)) },
  tanh: { forward: Math.tanh, derivative: (x: number) => 1 - Math.tanh(x) ** 2 },
  silu: {
    forward: (x: number) => x * sigmoid(x),
    derivative: (x: number) => sigmoid(x) * (1 + x * (1 - sigmoid(x))),
  },
  gelu: {
    forward: (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    derivative: (x: number) =>
      0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI),
  },
  geluTanh: {
    forward: (x: number) => 0.5 * x * (1 + Math.tanh(SQRT_2_PI * (x + 0.044715 * x ** 3))),
    derivative: (x: number) => {
      const t = Math.tanh(SQRT_2_PI * (x + 0.044715 * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_PI * (1 + 3 * 0.044715 * x * x);
    },
  },
} satisfies Record<string, UnaryReference>;

/** leakyRelu; its derivative is the slope at 0 and at NaN (as PyTorch). */
export function leakyReluReference(negativeSlope: number): UnaryReference {
  return {
    forward: (x) => (x > 0 ? x : negativeSlope * x),
    derivative: (x) => (x > 0 ? 1 : negativeSlope),
  };
}

/** elu; its derivative is 1 at NaN (as PyTorch). */
export function eluReference(alpha: number): UnaryReference {
  return {
    forward: (x) => (x > 0 ? x : alpha * Math.expm1(x)),
    derivative: (x) => (x <= 0 ? alpha * Math.exp(x) : 1),
  };
}

/** softplus with PyTorch's threshold. */
export function softplusReference(beta: number, threshold: number): UnaryReference {
  return {
    forward: (x) => (x * beta > threshold ? x : Math.log1p(Math.exp(beta * x)) / beta),
    derivative: (x) => (x * beta > threshold ? 1 : sigmoid(beta * x)),
  };
}

/** clamp; the gradient passes where min <= x <= max (0 at NaN), as PyTorch. */
export function clampReference(min = -Infinity, max = Infinity): UnaryReference {
  return {
    forward: (x) => (Number.isNaN(x) ? NaN : Math.min(Math.max(x, min), max)),
    derivative: (x) => (x >= min && x <= max ? 1 : 0),
  };
}

/** The forward of `reference` on every element. */
export function unaryForward(reference: UnaryReference, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, reference.forward);
}

/** The backward of `reference`: grad * derivative(x). */
export function unaryBackward(
  reference: UnaryReference,
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
): Float64Array {
  return Float64Array.from(grad, (g, i) => g * reference.derivative(x[i]));
}
