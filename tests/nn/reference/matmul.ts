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

/** Options of the batched references: which operands' last two dimensions are transposed. */
export interface BatchedMatmulOptions {
  /** A's last two dimensions are stored [K, M]. */
  transposeA?: boolean;
  /** B's last two dimensions are stored [N, K]. */
  transposeB?: boolean;
}

/** How `torch.matmul` lays out a product: operands' matrices, the batch and the result shape. */
interface BatchedLayout {
  m: number;
  n: number;
  k: number;
  /** Batch shape of C (the broadcast of A's and B's). */
  batch: number[];
  /** For each batch index of C, the batch index of A and of B. */
  aIndex: number[];
  bIndex: number[];
  /** The shape `torch.matmul` returns. */
  shape: number[];
}

function batchedLayout(
  aShape: readonly number[],
  bShape: readonly number[],
  options: BatchedMatmulOptions,
): BatchedLayout {
  const { transposeA = false, transposeB = false } = options;
  if (aShape.length === 0 || bShape.length === 0) throw new Error("reference: 0-d operand");
  const a2 = aShape.length === 1 ? [1, aShape[0]] : [...aShape];
  const b2 = bShape.length === 1 ? [bShape[0], 1] : [...bShape];
  const [ar, ac] = a2.slice(-2), [br, bc] = b2.slice(-2);
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const [kb, n] = transposeB ? [bc, br] : [br, bc];
  if (k !== kb) throw new Error("reference: inner dimensions differ");
  const aBatch = a2.slice(0, -2), bBatch = b2.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const pa = pad(aBatch), pb = pad(bBatch);
  const batch = pa.map((d, i) => {
    if (d !== pb[i] && d !== 1 && pb[i] !== 1) throw new Error("reference: batch mismatch");
    return Math.max(d, pb[i]);
  });
  const total = batch.reduce((x, y) => x * y, 1);
  const aIndex: number[] = [], bIndex: number[] = [];
  for (let t = 0; t < total; t++) {
    // Coordinates of t in `batch`, then the operands' flat batch indices (size-1 dims pinned at 0).
    let rest = t, ia = 0, ib = 0, sa = 1, sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rest % batch[d];
      rest = Math.floor(rest / batch[d]);
      if (pa[d] !== 1) ia += c * sa;
      if (pb[d] !== 1) ib += c * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    aIndex.push(ia);
    bIndex.push(ib);
  }
  const shape = [
    ...batch,
    ...(aShape.length === 1 ? [] : [m]),
    ...(bShape.length === 1 ? [] : [n]),
  ];
  return { m, n, k, batch, aIndex, bIndex, shape };
}

/** The shape `torch.matmul(a, b)` (with transposed last dimensions where asked) returns. */
export function batchedMatmulShape(
  aShape: readonly number[],
  bShape: readonly number[],
  options: BatchedMatmulOptions = {},
): number[] {
  return batchedLayout(aShape, bShape, options).shape;
}

/**
 * `torch.matmul(op(a), op(b))` in float64: 1-D operands promoted (and their dimension dropped
 * from the result), batch dimensions broadcast.
 */
export function batchedMatmulReference(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  options: BatchedMatmulOptions = {},
): Float64Array {
  const { m, n, k, aIndex, bIndex } = batchedLayout(aShape, bShape, options);
  const out = new Float64Array(aIndex.length * m * n);
  for (let t = 0; t < aIndex.length; t++) {
    const slice = matmulReference(
      Array.prototype.slice.call(a, aIndex[t] * m * k, (aIndex[t] + 1) * m * k),
      Array.prototype.slice.call(b, bIndex[t] * k * n, (bIndex[t] + 1) * k * n),
      { m, n, k, ...options },
    );
    out.set(slice, t * m * n);
  }
  return out;
}

/** The gradients [dA, dB] of `batchedMatmulReference`, summed over broadcast batch dimensions. */
export function batchedMatmulBackwardReference(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  grad: ArrayLike<number>,
  options: BatchedMatmulOptions = {},
): [Float64Array, Float64Array] {
  const { m, n, k, aIndex, bIndex } = batchedLayout(aShape, bShape, options);
  const gradA = new Float64Array(a.length), gradB = new Float64Array(b.length);
  for (let t = 0; t < aIndex.length; t++) {
    const [ga, gb] = matmulBackwardReference(
      Array.prototype.slice.call(a, aIndex[t] * m * k, (aIndex[t] + 1) * m * k),
      Array.prototype.slice.call(b, bIndex[t] * k * n, (bIndex[t] + 1) * k * n),
      Array.prototype.slice.call(grad, t * m * n, (t + 1) * m * n),
      { m, n, k, ...options },
    );
    for (let i = 0; i < m * k; i++) gradA[aIndex[t] * m * k + i] += ga[i];
    for (let i = 0; i < k * n; i++) gradB[bIndex[t] * k * n + i] += gb[i];
  }
  return [gradA, gradB];
}

/** y = x · weightᵀ + bias for x [*, in] (any leading dimensions), as F.linear. */
export function linearAnyRankReference(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  sizes: { inFeatures: number; outFeatures: number },
): Float64Array {
  return linearReference(x, weight, bias, { ...sizes, batch: x.length / sizes.inFeatures });
}
