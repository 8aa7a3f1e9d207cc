/**
 * Tensors, autograd, WGSL kernels, layers and losses.
 *
 * @module
 */

export { type AdapterReport, describeAdapter, type GpuContext, init } from "./device.ts";
export { type MemoryStats, memoryStats, trimPool } from "./buffer_pool.ts";
export { flush, type StreamStats, streamStats, sync } from "./stream.ts";
export { type Disposable, keep, tidy, type TidyResult } from "./scope.ts";
export { GradNode, isGradEnabled, noGrad } from "./autograd.ts";
export { Rng } from "./random.ts";
export {
  type DType,
  full,
  ones,
  randNormal,
  type RandomOptions,
  randUniform,
  Tensor,
  tensor,
  type TensorOptions,
  type TypedArray,
  zeros,
} from "./tensor.ts";
export { add, mul, relu, scale, sub } from "./ops/elementwise.ts";
