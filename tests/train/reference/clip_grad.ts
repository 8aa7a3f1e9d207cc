/**
 * CPU references (float64) of `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`
 * (PyTorch 1.13). Pure: they return new arrays.
 *
 * @module
 */

/**
 * The total p-norm of `grads` (as one vector; `Infinity`: the max of |g|, NaN if any is NaN),
 * and each gradient multiplied by `min(1, maxNorm / (norm + 1e-6))` (NaN when the norm is).
 */
export function clipGradNormReference(
  grads: readonly ArrayLike<number>[],
  maxNorm: number,
  normType = 2,
): { norm: number; grads: Float64Array[] } {
  let norm: number;
  if (grads.length === 0) return { norm: 0, grads: [] };
  if (normType === Infinity) {
    norm = 0;
    for (const grad of grads) {
      for (let i = 0; i < grad.length; i++) {
        const a = Math.abs(grad[i]);
        norm = Number.isNaN(a) || Number.isNaN(norm) ? NaN : Math.max(norm, a);
      }
    }
  } else {
    let sum = 0;
    for (const grad of grads) {
      for (let i = 0; i < grad.length; i++) sum += Math.abs(grad[i]) ** normType;
    }
    norm = sum ** (1 / normType);
  }
  const coef = maxNorm / (norm + 1e-6);
  const clamped = Number.isNaN(coef) ? NaN : Math.min(coef, 1);
  return { norm, grads: grads.map((grad) => Float64Array.from(grad, (g) => g * clamped)) };
}

/** Each gradient clamped to `[-clipValue, clipValue]`, NaN kept. */
export function clipGradValueReference(
  grads: readonly ArrayLike<number>[],
  clipValue: number,
): Float64Array[] {
  return grads.map((grad) =>
    Float64Array.from(
      grad,
      (g) => Number.isNaN(g) ? NaN : Math.min(clipValue, Math.max(-clipValue, g)),
    )
  );
}
