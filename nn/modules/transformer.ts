/**
 * `TransformerEncoderLayer`, as PyTorch 1.13's `torch.nn.TransformerEncoderLayer`: self-attention
 * and a feed-forward block, each with a residual connection and layer norm (after, or before with
 * `normFirst`), with PyTorch's parameter names (`self_attn.*`, `linear1.*`, `linear2.*`,
 * `norm1.*`, `norm2.*`).
 *
 * @module
 */

import { add, relu } from "../ops/elementwise.ts";
import { gelu } from "../ops/unary.ts";
import type { Tensor } from "../tensor.ts";
import type { InitOptions } from "./init.ts";
import { Dropout } from "./layers.ts";
import { Linear } from "./linear.ts";
import { Module } from "./module.ts";
import { MultiheadAttention } from "./attention.ts";
import { LayerNorm } from "./normalization.ts";

/** Options of `TransformerEncoderLayer` (PyTorch's, in camelCase). */
export interface TransformerEncoderLayerOptions extends InitOptions {
  /** Hidden size of the feed-forward block (default 2048). */
  dimFeedforward?: number;
  /** Dropout probability (default 0.1). */
  dropout?: number;
  /** The feed-forward block's activation (default "relu"). */
  activation?: "relu" | "gelu";
  /** Layer norms' epsilon (default 1e-5). */
  layerNormEps?: number;
  /** Input and output as [N, L, E] instead of [L, N, E] (default false). */
  batchFirst?: boolean;
  /** Normalise before each block (pre-norm) instead of after (default false). */
  normFirst?: boolean;
}

/** Masks of `TransformerEncoderLayer.forward`. */
export interface TransformerEncoderLayerCallOptions {
  /** Attention mask [L, L] or [N * nhead, L, L] (see `MultiheadAttention`). */
  srcMask?: Tensor;
  /** Key padding mask [N, L] (see `MultiheadAttention`). */
  srcKeyPaddingMask?: Tensor;
}

/**
 * A transformer encoder layer, as `torch.nn.TransformerEncoderLayer`:
 * x = norm1(x + dropout1(self_attn(x))); x = norm2(x + dropout2(linear2(dropout(act(linear1(x))))))
 * (with `normFirst`: x = x + block(norm(x)) for each block).
 *
 * @example
 * ```ts
 * import { init, randNormal, TransformerEncoderLayer } from "@wgtorch/wgtorch";
 *
 * await init();
 * const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }).eval();
 * console.log(layer.forward(randNormal([5, 3, 8])).shape); // [5, 3, 8]
 * ```
 */
export class TransformerEncoderLayer extends Module<
  [Tensor, TransformerEncoderLayerCallOptions?],
  Tensor
> {
  /** The self-attention block (`self_attn`). */
  readonly self_attn: MultiheadAttention;
  /** First feed-forward layer, dModel → dimFeedforward. */
  readonly linear1: Linear;
  /** Dropout inside the feed-forward block. */
  readonly dropout: Dropout;
  /** Second feed-forward layer, dimFeedforward → dModel. */
  readonly linear2: Linear;
  /** Layer norm of the attention block. */
  readonly norm1: LayerNorm;
  /** Layer norm of the feed-forward block. */
  readonly norm2: LayerNorm;
  /** Dropout of the attention block's output. */
  readonly dropout1: Dropout;
  /** Dropout of the feed-forward block's output. */
  readonly dropout2: Dropout;
  /** Whether the norms come before the blocks. */
  readonly normFirst: boolean;
  /** The feed-forward activation. */
  readonly activation: "relu" | "gelu";

  /** A layer of width `dModel` with `nhead` attention heads. */
  constructor(dModel: number, nhead: number, options: TransformerEncoderLayerOptions = {}) {
    super();
    const p = options.dropout ?? 0.1;
    const ff = options.dimFeedforward ?? 2048;
    const eps = options.layerNormEps ?? 1e-5;
    const rng = options.rng;
    this.activation = options.activation ?? "relu";
    if (this.activation !== "relu" && this.activation !== "gelu") {
      throw new Error(
        `TransformerEncoderLayer: activation must be "relu" or "gelu", got ${
          JSON.stringify(this.activation)
        }`,
      );
    }
    this.normFirst = options.normFirst ?? false;
    this.self_attn = new MultiheadAttention(dModel, nhead, {
      dropout: p,
      batchFirst: options.batchFirst ?? false,
      rng,
    });
    this.linear1 = new Linear(dModel, ff, { rng });
    this.dropout = new Dropout(p, { rng });
    this.linear2 = new Linear(ff, dModel, { rng });
    this.norm1 = new LayerNorm(dModel, { eps });
    this.norm2 = new LayerNorm(dModel, { eps });
    this.dropout1 = new Dropout(p, { rng });
    this.dropout2 = new Dropout(p, { rng });
  }

  #selfAttention(x: Tensor, options: TransformerEncoderLayerCallOptions): Tensor {
    const [out] = this.self_attn.forward(x, x, x, {
      attnMask: options.srcMask,
      keyPaddingMask: options.srcKeyPaddingMask,
      needWeights: false,
    });
    return this.dropout1.forward(out);
  }

  #feedForward(x: Tensor): Tensor {
    const hidden = this.linear1.forward(x);
    const act = this.activation === "relu" ? relu(hidden) : gelu(hidden);
    return this.dropout2.forward(this.linear2.forward(this.dropout.forward(act)));
  }

  /** src [L, N, E] ([N, L, E] batch-first) → the same shape. */
  override forward(src: Tensor, options: TransformerEncoderLayerCallOptions = {}): Tensor {
    let x = src;
    if (this.normFirst) {
      x = add(x, this.#selfAttention(this.norm1.forward(x), options));
      x = add(x, this.#feedForward(this.norm2.forward(x)));
    } else {
      x = this.norm1.forward(add(x, this.#selfAttention(x, options)));
      x = this.norm2.forward(add(x, this.#feedForward(x)));
    }
    return x;
  }
}
