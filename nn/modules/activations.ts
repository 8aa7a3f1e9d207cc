/**
 * Activation modules, as `torch.nn`'s: `Sigmoid`, `Tanh`, `LeakyReLU`, `ELU`, `GELU`, `SiLU`,
 * `Softplus`, `Identity`, and `Maxout` (not in PyTorch: the max over groups of channels). Each
 * applies its op (`nn/ops/unary.ts`, `nn/ops/maxout.ts`) with the options given at construction.
 * (`ReLU` and `LogSoftmax` are in `layers.ts`.)
 *
 * @module
 */

import { maxout, type MaxoutOptions } from "../ops/maxout.ts";
import {
  elu,
  type EluOptions,
  gelu,
  type GeluOptions,
  leakyRelu,
  type LeakyReluOptions,
  sigmoid,
  silu,
  softplus,
  type SoftplusOptions,
  tanh,
} from "../ops/unary.ts";
import type { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

/** 1 / (1 + e^-x), as `torch.nn.Sigmoid`. */
export class Sigmoid extends Module {
  /** Applies the sigmoid. */
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** The hyperbolic tangent, as `torch.nn.Tanh`. */
export class Tanh extends Module {
  /** Applies tanh. */
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** x where x > 0, else negativeSlope * x, as `torch.nn.LeakyReLU`. */
export class LeakyReLU extends Module {
  /** The slope below 0. */
  readonly negativeSlope: number;
  /** A leaky ReLU of slope `negativeSlope` below 0 (default 0.01). */
  constructor({ negativeSlope = 0.01 }: LeakyReluOptions = {}) {
    super();
    this.negativeSlope = checkFinite("LeakyReLU", "negativeSlope", negativeSlope);
  }
  /** Applies the leaky ReLU. */
  forward(x: Tensor): Tensor {
    return leakyRelu(x, { negativeSlope: this.negativeSlope });
  }
}

/** x where x > 0, else alpha * (e^x - 1), as `torch.nn.ELU`. */
export class ELU extends Module {
  /** The scale of the negative part. */
  readonly alpha: number;
  /** An ELU of scale `alpha` (default 1). */
  constructor({ alpha = 1 }: EluOptions = {}) {
    super();
    this.alpha = checkFinite("ELU", "alpha", alpha);
  }
  /** Applies the ELU. */
  forward(x: Tensor): Tensor {
    return elu(x, { alpha: this.alpha });
  }
}

/** x Φ(x), exact or by the tanh approximation, as `torch.nn.GELU`. */
export class GELU extends Module {
  /** `"none"` (exact, through erf) or `"tanh"`. */
  readonly approximate: "none" | "tanh";
  /** A GELU, exact (`approximate: "none"`, the default) or `"tanh"`. */
  constructor({ approximate = "none" }: GeluOptions = {}) {
    super();
    if (approximate !== "none" && approximate !== "tanh") {
      throw new Error(`GELU: approximate must be "none" or "tanh", got ${String(approximate)}`);
    }
    this.approximate = approximate;
  }
  /** Applies the GELU. */
  forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }
}

/** x * sigmoid(x), as `torch.nn.SiLU`. */
export class SiLU extends Module {
  /** Applies SiLU. */
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** log(1 + e^(beta x)) / beta, linear where beta x > threshold, as `torch.nn.Softplus`. */
export class Softplus extends Module {
  /** The sharpness. */
  readonly beta: number;
  /** Above it, beta * x is returned as x. */
  readonly threshold: number;
  /** A softplus with `beta` (default 1) and `threshold` (default 20). */
  constructor({ beta = 1, threshold = 20 }: SoftplusOptions = {}) {
    super();
    this.beta = checkFinite("Softplus", "beta", beta);
    if (beta === 0) throw new Error("Softplus: beta must not be 0");
    this.threshold = checkFinite("Softplus", "threshold", threshold);
  }
  /** Applies softplus. */
  forward(x: Tensor): Tensor {
    return softplus(x, { beta: this.beta, threshold: this.threshold });
  }
}

/**
 * Passes its input through, as `torch.nn.Identity` (a placeholder, e.g. for a layer switched
 * off). The output is a view of the input (no copy, same elements, gradient passed through) with
 * its own ownership: disposing it leaves the input alive.
 */
export class Identity extends Module {
  /** Returns x (as a view). */
  forward(x: Tensor): Tensor {
    return x.reshape(x.shape);
  }
}

/**
 * Maxout: the maximum over groups of `pieces` consecutive entries of `dim` (default 1: features of
 * [N, F], channels of [N, C, H, W]), so that C entries become C / pieces (see `maxout`). Not in
 * PyTorch, where it is `x.unflatten(dim, (C // pieces, pieces)).max(dim + 1).values`.
 *
 * @example A maxout layer: 12 linear features, the max of each 3
 * ```ts
 * import { init, Linear, Maxout, Sequential, zeros } from "@wgtorch/wgtorch";
 *
 * await init();
 * const layer = new Sequential(new Linear(8, 12), new Maxout({ pieces: 3 }));
 * console.log(layer.forward(zeros([5, 8])).shape); // [5, 4]
 * ```
 */
export class Maxout extends Module {
  /** Entries per group. */
  readonly pieces: number;
  /** The dimension grouped. */
  readonly dim: number;
  /** A maxout over groups of `pieces` entries of `dim` (default 1). */
  constructor({ pieces, dim = 1 }: MaxoutOptions) {
    super();
    if (!Number.isInteger(pieces) || pieces < 1) {
      throw new Error(`Maxout: pieces must be an integer >= 1, got ${pieces}`);
    }
    if (!Number.isInteger(dim)) throw new Error(`Maxout: dim must be an integer, got ${dim}`);
    this.pieces = pieces;
    this.dim = dim;
  }
  /** Applies maxout. */
  forward(x: Tensor): Tensor {
    return maxout(x, { pieces: this.pieces, dim: this.dim });
  }
}

function checkFinite(layer: string, name: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new Error(`${layer}: ${name} must be a finite number, got ${String(value)}`);
  }
  return value;
}
