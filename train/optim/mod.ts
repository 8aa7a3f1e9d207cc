/**
 * Optimizers as fused WGSL kernels: `SGD`, `Adam`, `AdamW`, and their base `Optimizer`.
 *
 * @module
 */

export {
  type FiniteWatch,
  type Hyperparameters,
  Optimizer,
  type OptimizerOptions,
  type OptimizerStateDict,
  type ParameterUpdate,
} from "./optimizer.ts";
export { SGD, type SGDOptions } from "./sgd.ts";
export { Adam, type AdamOptions, AdamW } from "./adam.ts";
