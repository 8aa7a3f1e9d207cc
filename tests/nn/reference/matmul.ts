/**
 * CPU references (float64) of matmul and linear.
 *
 * @module
 */

/** Sizes and layouts of a reference matmul. */
export interface MatmulReferenceShape {
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** The reduced dimension. */
  k: number;
  /** A is stored [K, M]. */
  transposeA?: boolean;
  /** B is stored [N, K]. */
  transposeB?: boolean;
}

/** C[M, N] = op(A) · op(B). */
export function matmulReference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  shape: MatmulReferenceShape,
): Float64Array {
  const { m, n, k, transposeA = false, transposeB = false } = shape;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let total = 0;
      for (let p = 0; p < k; p++) {
        const av = transposeA ? a[p * m + i] : a[i * k + p];
        const bv = transposeB ? b[j * k + p] : b[p * n + j];
        total += av * bv;
      }
      out[i * n + j] = total;
    }
  }
  return out;
}

/** y = x · weightᵀ + bias for x [N, in], weight [out, in], bias [out]. */
export function linearReference(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  sizes: { batch: number; inFeatures: number; outFeatures: number },
): Float64Array {
  const { batch, inFeatures, outFeatures } = sizes;
  const out = matmulReference(x, weight, {
    m: batch,
    n: outFeatures,
    k: inFeatures,
    transposeB: true,
  });
  if (bias) { for (let i = 0; i < out.length; i++) out[i] += bias[i % outFeatures]; }
  return out;
}

/** The gradients [dA, dB] of C = op(A) · op(B), each stored as its input is, given dC [M, N]. */
export function matmulBackwardReference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  grad: ArrayLike<number>,
  shape: MatmulReferenceShape,
): [Float64Array, Float64Array] {
  const { m, n, k, transposeA = false, transposeB = false } = shape;
  const gradA = new Float64Array(m * k), gradB = new Float64Array(k * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const ai = transposeA ? p * m + i : i * k + p;
      for (let j = 0; j < n; j++) {
        const bi = transposeB ? j * k + p : p * n + j;
        const g = grad[i * n + j];
        gradA[ai] += g * b[bi];
        gradB[bi] += g * a[ai];
      }
    }
  }
  return [gradA, gradB];
}

/** The gradients [dx, dweight, dbias] of `linearReference`, given dy [N, out]. */
export function linearBackwardReference(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  grad: ArrayLike<number>,
  sizes: { batch: number; inFeatures: number; outFeatures: number },
): [Float64Array, Float64Array, Float64Array] {
  const { batch, inFeatures, outFeatures } = sizes;
  const [gradX, gradWeight] = matmulBackwardReference(x, weight, grad, {
    m: batch,
    n: outFeatures,
    k: inFeatures,
    transposeB: true,
  });
  const gradBias = new Float64Array(outFeatures);
  for (let i = 0; i < grad.length; i++) gradBias[i % outFeatures] += grad[i];
  return [gradX, gradWeight, gradBias];
}
