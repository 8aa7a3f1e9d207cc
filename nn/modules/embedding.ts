/**
 * `Embedding`, as `torch.nn.Embedding`: a `weight` [numEmbeddings, embeddingDim] table.
 *
 * @module
 */

import { embedding, paddingRow } from "../ops/embedding.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { defaultGenerator, type InitOptions } from "./init.ts";
import { Module } from "./module.ts";

/** Options of `Embedding`. */
export interface EmbeddingLayerOptions extends InitOptions {
  /**
   * A row (negative: counted from the end) initialised to zeros and never given a gradient, as
   * PyTorch's `padding_idx`.
   */
  paddingIdx?: number;
  /** Rows looked up are first scaled in place to at most this norm (PyTorch's `max_norm`). */
  maxNorm?: number;
  /** The p of that norm (default 2). */
  normType?: number;
}

/**
 * A lookup table of `numEmbeddings` vectors of size `embeddingDim`, as `torch.nn.Embedding`:
 * i32 indices of any shape → [...shape, embeddingDim]. The weight starts as PyTorch's,
 * N(0, 1) from the module generator (`manualSeed`, or `rng`), with the `paddingIdx` row zeroed.
 * Indices out of range give zero rows (see `embedding`).
 *
 * @example
 * ```ts
 * import { Embedding, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const table = new Embedding(10, 4, { paddingIdx: 0 });
 * const out = table.forward(tensor([1, 2, 0], [1, 3], { dtype: "i32" }));
 * console.log(out.shape); // [1, 3, 4]
 * ```
 */
export class Embedding extends Module {
  /** The table [numEmbeddings, embeddingDim]. */
  readonly weight: Tensor;
  /** The padding row in [0, numEmbeddings), or null. */
  readonly paddingIdx: number | null;
  /** The largest norm of a looked-up row (rows are scaled in place to it), or null. */
  readonly maxNorm: number | null;
  /** The p of `maxNorm`'s norm. */
  readonly normType: number;

  /** A table of `numEmbeddings` rows of `embeddingDim` values. */
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: EmbeddingLayerOptions = {},
  ) {
    super();
    for (
      const [name, value] of [["numEmbeddings", numEmbeddings], ["embeddingDim", embeddingDim]]
    ) {
      if (!Number.isInteger(value) || (value as number) < 1) {
        throw new Error(`Embedding: ${name} must be a positive integer, got ${value}`);
      }
    }
    const padding = paddingRow("Embedding", options.paddingIdx, numEmbeddings);
    this.paddingIdx = padding < 0 ? null : padding;
    this.maxNorm = options.maxNorm ?? null;
    this.normType = options.normType ?? 2;
    const rng = options.rng ?? defaultGenerator();
    const values = new Float32Array(numEmbeddings * embeddingDim);
    for (let i = 0; i < values.length; i++) values[i] = rng.normal();
    if (padding >= 0) values.fill(0, padding * embeddingDim, (padding + 1) * embeddingDim);
    this.weight = this.registerParameter("weight", tensor(values, [numEmbeddings, embeddingDim]));
  }

  /** The rows at the i32 indices `index` (any shape): [...index.shape, embeddingDim]. */
  forward(index: Tensor): Tensor {
    return embedding(index, this.weight, {
      paddingIdx: this.paddingIdx ?? undefined,
      maxNorm: this.maxNorm ?? undefined,
      normType: this.normType,
    });
  }
}
