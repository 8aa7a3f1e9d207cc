/**
 * The layer-norm shapes measured against TF.js (forward + backward, normalised over the last
 * dimension): a transformer-like [batch, features] and a [batch, tokens, features].
 *
 * @module
 */

/** One layer-norm shape of the bench. */
export interface NormCase {
  /** Short description. */
  name: string;
  /** The input's shape; the last dimension is normalised. */
  shape: readonly number[];
}

/** The layer-norm cases: forward and backward (x, weight and bias gradients). */
export const NORM_CASES: readonly NormCase[] = [
  { name: "layerNorm [128, 512]", shape: [128, 512] },
  { name: "layerNorm [32, 64, 256]", shape: [32, 64, 256] },
];
