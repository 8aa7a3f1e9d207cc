/**
 * Scaled dot-product attention, composed of existing ops (batched matmul, softmax, dropout):
 * softmax(q kᵀ / √d + mask) v. `scaledDotProductAttention` has PyTorch 2's name and semantics;
 * `attention` is the core that `multiHeadAttention` shares, which also returns the weights.
 *
 * Masks: a `u8` (bool) mask says which positions are NOT attended where it is 1 in PyTorch's
 * `nn.MultiheadAttention` (`maskedPositions`), and which ARE in PyTorch 2's
 * `scaled_dot_product_attention`; an `f32` mask is added to the scores. A row with every position
 * masked gives NaN, as in PyTorch.
 *
 * @module
 */

import { add, scale } from "./elementwise.ts";
import { where } from "./compare.ts";
import { dropout } from "./dropout.ts";
import { matmul } from "./matmul.ts";
import { softmax } from "./softmax.ts";
import { formatShape, type Tensor, tensor } from "../tensor.ts";

/**
 * Disposes an intermediate that no recorded graph reads (one that needs a gradient is left to the
 * enclosing scope: `tidy`, or a module call, hands it to the graph).
 */
function release(t: Tensor): void {
  if (!t.requiresGrad) t.dispose();
}

/** A mask as an additive f32 mask: f32 as is; u8 → -∞ where `blockedWhen` (1 or 0), else 0. */
export function additiveMask(op: string, mask: Tensor, blockedWhen: 0 | 1): Tensor {
  if (mask.dtype === "f32") return mask.reshape(mask.shape);
  if (mask.dtype !== "u8") {
    throw new Error(`${op}: a mask must be u8 (bool) or f32, got ${mask.dtype}`);
  }
  return blockedWhen === 1 ? where(mask, -Infinity, 0) : where(mask, 0, -Infinity);
}

/** The additive causal mask [L, S]: -∞ above the diagonal (j > i). */
export function causalMask(l: number, s: number): Tensor {
  const data = new Float32Array(l * s);
  for (let i = 0; i < l; i++) for (let j = i + 1; j < s; j++) data[i * s + j] = -Infinity;
  return tensor(data, [l, s]);
}

/** Options of the attention core. */
export interface AttentionCoreOptions {
  /** Additive f32 masks, each broadcast against the scores [..., L, S]. */
  masks?: readonly Tensor[];
  /** The factor of q kᵀ (default 1/√E). */
  scale?: number;
  /** Dropout probability of the weights (default 0). */
  dropoutP?: number;
  /** Seed of the dropout mask. */
  seed?: number;
}

/**
 * softmax(q kᵀ · scale + Σ masks) v for q [..., L, E], k [..., S, E], v [..., S, Ev], returning
 * the output [..., L, Ev] and the weights [..., L, S] (after dropout). Differentiable.
 */
export function attention(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionCoreOptions = {},
): [Tensor, Tensor] {
  if (q.rank < 2 || k.rank < 2 || v.rank < 2) {
    throw new Error(
      `${op}: query, key and value need at least 2 dimensions ([..., L, E]), got ` +
        `${formatShape(q.shape)}, ${formatShape(k.shape)} and ${formatShape(v.shape)}`,
    );
  }
  if (q.shape.at(-1) !== k.shape.at(-1) || k.shape.at(-2) !== v.shape.at(-2)) {
    throw new Error(
      `${op}: query ${formatShape(q.shape)}, key ${formatShape(k.shape)} and value ` +
        `${formatShape(v.shape)} do not fit: need query [..., L, E], key [..., S, E], value ` +
        `[..., S, Ev]`,
    );
  }
  const e = q.shape.at(-1)!;
  const raw = matmul(q, k, { transposeB: true });
  let scores = scale(raw, options.scale ?? 1 / Math.sqrt(e));
  release(raw);
  for (const mask of options.masks ?? []) {
    const masked = add(scores, mask);
    release(scores);
    scores = masked;
  }
  let weights = softmax(scores, { dim: -1 });
  release(scores);
  const p = options.dropoutP ?? 0;
  if (p > 0) {
    const dropped = dropout(weights, { p, training: true, seed: options.seed ?? 0 });
    release(weights);
    weights = dropped;
  }
  return [matmul(weights, v), weights];
}

/** Options of `scaledDotProductAttention` (PyTorch 2's). */
export interface ScaledDotProductAttentionOptions {
  /**
   * [L, S] or broadcastable to [..., L, S]: `u8` (bool), 1 where a position may be attended
   * (PyTorch 2's convention), or `f32`, added to the scores.
   */
  attnMask?: Tensor;
  /** Dropout probability of the attention weights (default 0; applied whenever > 0). */
  dropoutP?: number;
  /** Mask out positions j > i (a causal mask; not with `attnMask`). */
  isCausal?: boolean;
  /** Seed of the dropout mask (default 0). */
  seed?: number;
}

/**
 * PyTorch 2's `scaled_dot_product_attention`: softmax(q kᵀ / √E + mask) v, for q [..., L, E],
 * k [..., S, E], v [..., S, Ev] → [..., L, Ev]. Differentiable in q, k, v and a float mask.
 *
 * @example
 * ```ts
 * import { init, randNormal, scaledDotProductAttention } from "@wgtorch/wgtorch";
 *
 * await init();
 * const q = randNormal([2, 5, 8]), k = randNormal([2, 7, 8]), v = randNormal([2, 7, 3]);
 * console.log(scaledDotProductAttention(q, k, v).shape); // [2, 5, 3]
 * ```
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: ScaledDotProductAttentionOptions = {},
): Tensor {
  const op = "scaledDotProductAttention";
  if (options.isCausal && options.attnMask) {
    throw new Error(`${op}: give attnMask or isCausal, not both`);
  }
  const masks: Tensor[] = [];
  if (options.attnMask) masks.push(additiveMask(op, options.attnMask, 0));
  if (options.isCausal && q.rank >= 2 && k.rank >= 2) {
    masks.push(causalMask(q.shape.at(-2)!, k.shape.at(-2)!));
  }
  const [out, weights] = attention(op, q, k, v, {
    masks,
    dropoutP: options.dropoutP,
    seed: options.seed,
  });
  release(weights);
  for (const mask of masks) release(mask);
  return out;
}
