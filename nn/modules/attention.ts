/**
 * Multi-head attention as PyTorch 1.13's `F.multi_head_attention_forward` and
 * `torch.nn.MultiheadAttention`: the same parameter names (`in_proj_weight`, `in_proj_bias`,
 * `out_proj.weight`, `out_proj.bias`, or `q_proj_weight`, `k_proj_weight`, `v_proj_weight` when
 * kdim/vdim differ from embedDim), masks and returned weights. Composed of `linear`, batched
 * `matmul`, `softmax` and dropout (`nn/ops/attention.ts`).
 *
 * @module
 */

import { additiveMask, attention } from "../ops/attention.ts";
import { narrow, permute, transpose } from "../ops/layout.ts";
import { linear } from "../ops/matmul.ts";
import { mean } from "../ops/reduce.ts";
import { formatShape, randUniform, type Tensor, zeros } from "../tensor.ts";
import type { Rng } from "../random.ts";
import { defaultGenerator, type InitOptions } from "./init.ts";
import { Linear } from "./linear.ts";
import { Module } from "./module.ts";
import { writeBuffer } from "../gpu/stream.ts";

/** Masks and flags of a multi-head attention call (PyTorch's, in camelCase). */
export interface MultiheadAttentionCallOptions {
  /**
   * [N, S] (or [S] unbatched): `u8` (bool), 1 where a key is padding (not attended), or `f32`,
   * added to the scores of that key.
   */
  keyPaddingMask?: Tensor;
  /**
   * [L, S] or [N * numHeads, L, S]: `u8` (bool), 1 where a position may not be attended, or `f32`,
   * added to the scores.
   */
  attnMask?: Tensor;
  /** Whether to return the attention weights (default true). */
  needWeights?: boolean;
  /** Average the weights over the heads ([N, L, S]) or not ([N, numHeads, L, S]); default true. */
  averageAttnWeights?: boolean;
}

/** The parameters and settings of `multiHeadAttention`. */
export interface MultiHeadAttentionFunctionOptions extends MultiheadAttentionCallOptions {
  /** The number of heads (embedDim must be a multiple). */
  numHeads: number;
  /** The packed projection [3E, E] (when query, key and value have E features). */
  inProjWeight?: Tensor | null;
  /** The packed projection bias [3E], if any. */
  inProjBias?: Tensor | null;
  /** Separate projections [E, E], [E, kdim], [E, vdim] (instead of `inProjWeight`). */
  qProjWeight?: Tensor | null;
  /** The key projection [E, kdim]. */
  kProjWeight?: Tensor | null;
  /** The value projection [E, vdim]. */
  vProjWeight?: Tensor | null;
  /** The output projection [E, E]. */
  outProjWeight: Tensor;
  /** The output projection's bias [E], if any. */
  outProjBias?: Tensor | null;
  /** Dropout probability of the attention weights (default 0; only when `training`). */
  dropoutP?: number;
  /** Training mode (dropout); default false. */
  training?: boolean;
  /** Seed of the dropout mask (default 0). */
  seed?: number;
}

/** A slice of a packed weight or bias along dim 0, or null. */
function part(x: Tensor | null | undefined, k: number, e: number): Tensor | undefined {
  return x ? narrow(x, 0, k * e, e) : undefined;
}

/**
 * PyTorch's `F.multi_head_attention_forward` (time-major): query [L, N, E], key [S, N, kdim],
 * value [S, N, vdim] (or [L, E], [S, kdim], [S, vdim] unbatched) → [output [L, N, E], weights
 * [N, L, S] (averaged over heads; [N, numHeads, L, S] otherwise) or null]. Differentiable.
 */
export function multiHeadAttention(
  query: Tensor,
  key: Tensor,
  value: Tensor,
  options: MultiHeadAttentionFunctionOptions,
): [Tensor, Tensor | null] {
  const op = "multiHeadAttention";
  const heads = options.numHeads;
  const unbatched = query.rank === 2;
  const rank = unbatched ? 2 : 3;
  if ((query.rank !== 2 && query.rank !== 3) || key.rank !== rank || value.rank !== rank) {
    throw new Error(
      `${op}: query ${formatShape(query.shape)}, key ${formatShape(key.shape)} and value ` +
        `${formatShape(value.shape)} must be [L, N, E], [S, N, kdim], [S, N, vdim] ` +
        `(or all 2-D, unbatched)`,
    );
  }
  const q3 = unbatched ? query.reshape([query.shape[0], 1, query.shape[1]]) : query;
  const k3 = unbatched ? key.reshape([key.shape[0], 1, key.shape[1]]) : key;
  const v3 = unbatched ? value.reshape([value.shape[0], 1, value.shape[1]]) : value;
  const [l, n, e] = q3.shape;
  const s = k3.shape[0];
  if (k3.shape[1] !== n || v3.shape[0] !== s || v3.shape[1] !== n) {
    throw new Error(
      `${op}: key ${formatShape(key.shape)} and value ${formatShape(value.shape)} must have ` +
        `the same S and N as each other and N = ${n} of query ${formatShape(query.shape)}`,
    );
  }
  if (!Number.isInteger(heads) || heads < 1 || e % heads !== 0) {
    throw new Error(`${op}: embedDim ${e} must be a multiple of numHeads, got ${heads}`);
  }
  const hd = e / heads;
  const heads4 = (x: Tensor, len: number) => x.reshape([n, heads, len, hd]);
  const packed = options.inProjWeight;
  let qh: Tensor, kh: Tensor, vh: Tensor;
  if (packed && query === key && key === value) {
    // Self-attention: one projection [L, N, 3E], one permute to [3, N, heads, L, hd].
    if (packed.rank !== 2 || packed.shape[0] !== 3 * e || packed.shape[1] !== e) {
      throw new Error(
        `${op}: inProjWeight ${formatShape(packed.shape)} must be [${3 * e}, ${e}] ` +
          `(3 * embedDim, embedDim)`,
      );
    }
    const qkv = linear(q3, packed, options.inProjBias ?? undefined);
    const byPart = permute(qkv.reshape([l, n, 3, heads, hd]), [2, 1, 3, 0, 4]);
    [qh, kh, vh] = [0, 1, 2].map((k) => heads4(narrow(byPart, 0, k, 1), l));
  } else {
    const wq = packed ? part(packed, 0, e) : options.qProjWeight ?? undefined;
    const wk = packed ? part(packed, 1, e) : options.kProjWeight ?? undefined;
    const wv = packed ? part(packed, 2, e) : options.vProjWeight ?? undefined;
    if (!wq || !wk || !wv) {
      throw new Error(`${op}: needs inProjWeight, or qProjWeight, kProjWeight and vProjWeight`);
    }
    for (const [name, w, x] of [["query", wq, q3], ["key", wk, k3], ["value", wv, v3]] as const) {
      if (w.rank !== 2 || w.shape[0] !== e || w.shape[1] !== x.shape[2]) {
        throw new Error(
          `${op}: the ${name} projection ${formatShape(w.shape)} does not fit ${name} ` +
            `${formatShape(x.shape)} (needs [${e}, ${x.shape[2]}])`,
        );
      }
    }
    // [len, N, E] → [N * heads, len, hd] → [N, heads, len, hd]
    const split = (x: Tensor, len: number) =>
      heads4(transpose(x.reshape([len, n * heads, hd]), 0, 1), len);
    qh = split(linear(q3, wq, part(options.inProjBias, 0, e)), l);
    kh = split(linear(k3, wk, part(options.inProjBias, 1, e)), s);
    vh = split(linear(v3, wv, part(options.inProjBias, 2, e)), s);
  }
  const masks: Tensor[] = [];
  const { attnMask, keyPaddingMask } = options;
  if (attnMask) {
    const ok = (attnMask.rank === 2 && attnMask.shape[0] === l && attnMask.shape[1] === s) ||
      (attnMask.rank === 3 && attnMask.shape[0] === n * heads && attnMask.shape[1] === l &&
        attnMask.shape[2] === s);
    if (!ok) {
      throw new Error(
        `${op}: attnMask ${formatShape(attnMask.shape)} must be [${l}, ${s}] or ` +
          `[${n * heads}, ${l}, ${s}] (N * numHeads, L, S)`,
      );
    }
    const m = additiveMask(op, attnMask, 1);
    masks.push(attnMask.rank === 3 ? m.reshape([n, heads, l, s]) : m);
  }
  if (keyPaddingMask) {
    const want = unbatched ? [s] : [n, s];
    if (
      keyPaddingMask.rank !== want.length || keyPaddingMask.shape.some((d, i) => d !== want[i])
    ) {
      throw new Error(
        `${op}: keyPaddingMask ${formatShape(keyPaddingMask.shape)} must be ` +
          `${formatShape(want)}`,
      );
    }
    masks.push(additiveMask(op, keyPaddingMask, 1).reshape([n, 1, 1, s]));
  }
  const training = options.training ?? false;
  // The masks broadcast against [N, heads, L, S]: the scores are computed as that shape.
  const [out, weights] = attention(op, qh, kh, vh, {
    masks,
    dropoutP: training ? options.dropoutP ?? 0 : 0,
    seed: options.seed,
  });
  // [N, heads, L, hd] → [L, N, E]
  const merged = transpose(out.reshape([n * heads, l, hd]), 0, 1).reshape([l * n, e]);
  const projected = linear(merged, options.outProjWeight, options.outProjBias ?? undefined);
  const output = projected.reshape(unbatched ? [l, e] : [l, n, e]);
  if (!(options.needWeights ?? true)) return [output, null];
  const average = options.averageAttnWeights ?? true;
  let w = average ? mean(weights, { dim: 1 }) : weights;
  if (unbatched) w = w.reshape(average ? [l, s] : [heads, l, s]);
  return [output, w];
}

/** Options of `MultiheadAttention` (PyTorch's, in camelCase). */
export interface MultiheadAttentionOptions extends InitOptions {
  /** Dropout probability of the attention weights in training (default 0). */
  dropout?: number;
  /** Whether the projections have biases (default true). */
  bias?: boolean;
  /** Inputs and output as [N, L, E] instead of [L, N, E] (default false). */
  batchFirst?: boolean;
  /** Features of the key (default embedDim). */
  kdim?: number;
  /** Features of the value (default embedDim). */
  vdim?: number;
}

/** Xavier-uniform values U(-a, a), a = √(6 / (fan_in + fan_out)), for a [out, in] weight. */
function xavierUniform(shape: [number, number], rng: Rng): Tensor {
  const bound = Math.sqrt(6 / (shape[0] + shape[1]));
  return randUniform(shape, { low: -bound, high: bound, rng });
}

/**
 * Multi-head attention, as `torch.nn.MultiheadAttention`: parameters `in_proj_weight` [3E, E]
 * (or `q_proj_weight`, `k_proj_weight`, `v_proj_weight` when kdim or vdim differ from E),
 * `in_proj_bias` [3E], `out_proj.weight`, `out_proj.bias`, initialised as PyTorch does (Xavier
 * uniform projections, zero biases).
 *
 * @example
 * ```ts
 * import { init, MultiheadAttention, randNormal } from "@wgtorch/wgtorch";
 *
 * await init();
 * const mha = new MultiheadAttention(8, 2);
 * const x = randNormal([5, 3, 8]); // [L, N, E]
 * const [out, weights] = mha.forward(x, x, x);
 * console.log(out.shape, weights?.shape); // [5, 3, 8] [3, 5, 5]
 * ```
 */
export class MultiheadAttention extends Module<
  [Tensor, Tensor, Tensor, MultiheadAttentionCallOptions?],
  [Tensor, Tensor | null]
> {
  /** The packed input projection [3E, E], or null with separate ones. */
  readonly inProjWeight: Tensor | null;
  /** The query projection [E, E] when kdim or vdim differ from E. */
  readonly qProjWeight: Tensor | null;
  /** The key projection [E, kdim]. */
  readonly kProjWeight: Tensor | null;
  /** The value projection [E, vdim]. */
  readonly vProjWeight: Tensor | null;
  /** The input projections' bias [3E], or null. */
  readonly inProjBias: Tensor | null;
  /** The output projection (PyTorch's name, which its state-dict keys carry). */
  readonly out_proj: Linear;
  /** Features of the key. */
  readonly kdim: number;
  /** Features of the value. */
  readonly vdim: number;
  /** Dropout probability of the weights in training. */
  readonly dropout: number;
  /** Whether inputs and output are [N, L, E]. */
  readonly batchFirst: boolean;
  #rng: Rng;

  /** Attention over `embedDim` features split into `numHeads` heads. */
  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    options: MultiheadAttentionOptions = {},
  ) {
    super();
    if (!Number.isInteger(embedDim) || embedDim < 1) {
      throw new Error(`MultiheadAttention: embedDim must be a positive integer, got ${embedDim}`);
    }
    if (!Number.isInteger(numHeads) || numHeads < 1 || embedDim % numHeads !== 0) {
      throw new Error(
        `MultiheadAttention: embedDim ${embedDim} must be a multiple of numHeads, got ${numHeads}`,
      );
    }
    this.kdim = options.kdim ?? embedDim;
    this.vdim = options.vdim ?? embedDim;
    this.dropout = options.dropout ?? 0;
    this.batchFirst = options.batchFirst ?? false;
    const rng = options.rng ?? defaultGenerator();
    this.#rng = rng;
    const same = this.kdim === embedDim && this.vdim === embedDim;
    const e = embedDim;
    this.inProjWeight = same
      ? this.registerParameter("in_proj_weight", xavierUniform([3 * e, e], rng))
      : null;
    this.qProjWeight = same
      ? null
      : this.registerParameter("q_proj_weight", xavierUniform([e, e], rng));
    this.kProjWeight = same
      ? null
      : this.registerParameter("k_proj_weight", xavierUniform([e, this.kdim], rng));
    this.vProjWeight = same
      ? null
      : this.registerParameter("v_proj_weight", xavierUniform([e, this.vdim], rng));
    const bias = options.bias ?? true;
    this.inProjBias = bias ? this.registerParameter("in_proj_bias", zeros([3 * e])) : null;
    this.out_proj = new Linear(e, e, { bias, rng });
    // PyTorch zeroes out_proj.bias (its Linear draws one first, as here).
    if (this.out_proj.bias) writeBuffer(this.out_proj.bias.buffer, new Float32Array(e));
  }

  /** The output projection (`out_proj`). */
  get outProj(): Linear {
    return this.out_proj;
  }

  /**
   * query [L, N, E], key [S, N, kdim], value [S, N, vdim] ([N, L, E] ... batch-first; 2-D
   * unbatched) → [output [L, N, E], weights [N, L, S] or null] (see `multiHeadAttention`).
   */
  override forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: MultiheadAttentionCallOptions = {},
  ): [Tensor, Tensor | null] {
    const batched = this.batchFirst && query.rank === 3;
    const tm = (x: Tensor) => batched ? transpose(x, 0, 1) : x;
    const q = tm(query);
    // Self-attention stays one tensor (multiHeadAttention then projects it once).
    const k = key === query ? q : tm(key);
    const v = value === query ? q : value === key ? k : tm(value);
    const [out, weights] = multiHeadAttention(q, k, v, {
      ...options,
      numHeads: this.numHeads,
      inProjWeight: this.inProjWeight,
      inProjBias: this.inProjBias,
      qProjWeight: this.qProjWeight,
      kProjWeight: this.kProjWeight,
      vProjWeight: this.vProjWeight,
      outProjWeight: this.out_proj.weight,
      outProjBias: this.out_proj.bias,
      dropoutP: this.dropout,
      training: this.training,
      seed: this.training && this.dropout > 0 ? this.#rng.nextUint32() : 0,
    });
    return [batched ? transpose(out, 0, 1) : out, weights];
  }
}
