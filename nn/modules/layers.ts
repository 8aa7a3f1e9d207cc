/**
 * Layers without parameters: `ReLU`, `MaxPool2d` (from `pooling.ts`, re-exported here),
 * `Dropout`, `Dropout2d`, `Flatten`, `Softmax`, `LogSoftmax`, and the `Sequential` container.
 *
 * @module
 */

import { dropout, dropout2d, type DropoutOptions } from "../ops/dropout.ts";
import { relu } from "../ops/elementwise.ts";
import { logSoftmax, softmax } from "../ops/softmax.ts";
import type { Rng } from "../random.ts";
import { formatShape, type Tensor } from "../tensor.ts";
import { defaultGenerator } from "./init.ts";
import { Module } from "./module.ts";

/** max(x, 0), as `torch.nn.ReLU`. */
export class ReLU extends Module {
  /** Applies ReLU. */
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export { MaxPool2d } from "./pooling.ts";

/** Inverted dropout, as `torch.nn.Dropout`: a new seeded mask every call in training. */
export class Dropout extends Module {
  #rng: Rng;
  /** Drops each value with probability `p` (default 0.5). */
  constructor(readonly p = 0.5, options: { rng?: Rng } = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout: p must be in [0, 1], got ${p}`);
    this.#rng = options.rng ?? defaultGenerator();
  }
  /** Applies dropout in training, the identity in eval. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.nextOptions());
  }

  /**
   * The options of the functional `dropout` for this layer's next call: its mode and, in
   * training, a new seed drawn from its generator (as `forward` draws one); for fused ops built
   * on dropout.
   */
  nextOptions(): DropoutOptions {
    const seed = this.training ? this.#rng.nextUint32() : 0;
    return { p: this.p, training: this.training, seed };
  }
}

/**
 * Channel dropout, as `torch.nn.Dropout2d` (PyTorch 1.13): zeroes whole channels of
 * [N, C, H, W] (or [N, C, L]) input, a new seeded mask every call in training (seeds drawn from
 * the generator, as `Dropout`'s).
 */
export class Dropout2d extends Module {
  #rng: Rng;
  /** Drops each channel with probability `p` (default 0.5). */
  constructor(readonly p = 0.5, options: { rng?: Rng } = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout2d: p must be in [0, 1], got ${p}`);
    this.#rng = options.rng ?? defaultGenerator();
  }
  /** Applies channel dropout in training, the identity in eval. */
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 && x.rank !== 3) {
      throw new Error(
        `Dropout2d: needs input of shape [N, C, H, W] (rank 4) or [N, C, L] (rank 3), got ` +
          `${formatShape(x.shape)} (rank ${x.rank})`,
      );
    }
    const seed = this.training ? this.#rng.nextUint32() : 0;
    return dropout2d(x, { p: this.p, training: this.training, seed });
  }
}

/** Flattens dimensions `startDim`.. into one (no copy), as `torch.nn.Flatten`. */
export class Flatten extends Module {
  /** Flattens from `startDim` (default 1). */
  constructor(readonly startDim = 1) {
    super();
  }
  /** [N, C, H, W] → [N, C·H·W]. */
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim);
  }
}

/** Options of `Softmax` and `LogSoftmax`. */
export interface SoftmaxLayerOptions {
  /**
   * The dimension that sums to one (default -1, the last: for [N, C] the same as PyTorch's
   * `dim=1`; PyTorch's own default guesses the dimension from the rank and warns).
   */
  dim?: number;
}

/** softmax over `dim` (default the last), as `torch.nn.Softmax`. */
export class Softmax extends Module {
  /** The dimension that sums to one. */
  readonly dim: number;

  /** A softmax over `dim` (default -1). */
  constructor(options: SoftmaxLayerOptions = {}) {
    super();
    this.dim = options.dim ?? -1;
  }

  /** Applies softmax. */
  forward(x: Tensor): Tensor {
    return softmax(x, { dim: this.dim });
  }
}

/** log(softmax(x)) over `dim` (default the last), as `torch.nn.LogSoftmax`. */
export class LogSoftmax extends Module {
  /** The dimension whose exponentials sum to one. */
  readonly dim: number;

  /** A log-softmax over `dim` (default -1). */
  constructor(options: SoftmaxLayerOptions = {}) {
    super();
    this.dim = options.dim ?? -1;
  }

  /** Applies log-softmax. */
  forward(x: Tensor): Tensor {
    return logSoftmax(x, { dim: this.dim });
  }
}

/**
 * Modules applied in order, named "0", "1", ... as in `torch.nn.Sequential`.
 *
 * @example A small classifier: 784 inputs, 10 classes, log-probabilities out
 * ```ts
 * import { init, Linear, LogSoftmax, ReLU, Sequential, zeros } from "@wgtorch/wgtorch";
 *
 * await init();
 * const model = new Sequential(
 *   new Linear(784, 64),
 *   new ReLU(),
 *   new Linear(64, 10),
 *   new LogSoftmax(),
 * );
 * console.log(model.namedParameters().map(([name]) => name));
 * // ["0.weight", "0.bias", "2.weight", "2.bias"]
 * console.log(model.forward(zeros([8, 784])).shape); // [8, 10]
 * ```
 */
export class Sequential extends Module {
  /** The modules, in order. */
  readonly layers: readonly Module[];
  /** A container of `layers`. */
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }
  /** Children named by position. */
  override namedChildren(): [string, Module][] {
    return this.layers.map((layer, i) => [String(i), layer]);
  }
  /** Runs every layer in turn. */
  forward(x: Tensor): Tensor {
    let out = x;
    for (const layer of this.layers) out = layer.forward(out);
    return out;
  }
}
