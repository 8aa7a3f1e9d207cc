/**
 * Parameter initialisation as PyTorch does it by default, from a seeded generator.
 *
 * @module
 */

import { defaultGenerator, manualSeed, type Rng } from "../random.ts";
import { full, randUniform, type Tensor } from "../tensor.ts";

export { defaultGenerator, manualSeed };

/** Options shared by layers with parameters. */
export interface InitOptions {
  /** Generator for the initial values; default: the one `manualSeed` set. */
  rng?: Rng;
}

/**
 * PyTorch's default for Linear and Conv weights: Kaiming-uniform with a = √5, which is
 * U(-1/√fan_in, 1/√fan_in).
 */
export function kaimingUniformDefault(shape: readonly number[], fanIn: number, rng: Rng): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return randUniform(shape, { low: -bound, high: bound, rng });
}

/** PyTorch's default bias: U(-1/√fan_in, 1/√fan_in). */
export function biasUniformDefault(size: number, fanIn: number, rng: Rng): Tensor {
  return kaimingUniformDefault([size], fanIn, rng);
}

/** A constant-filled tensor (batch-norm weight 1, bias 0, running statistics). */
export function constant(shape: readonly number[], value: number): Tensor {
  return full(shape, value);
}
