/**
 * Tensors, autograd, WGSL kernels, layers, losses and the study's models.
 *
 * @module
 */

export { type AdapterReport, describeAdapter, type GpuContext, init } from "./gpu/device.ts";
export { type MemoryStats, memoryStats, trimPool } from "./gpu/buffer_pool.ts";
export { shutdown, type ShutdownOptions } from "./shutdown.ts";
export {
  flush,
  type KernelTime,
  startProfiling,
  stopProfiling,
  type StreamStats,
  streamStats,
  sync,
} from "./gpu/stream.ts";
export { type Disposable, keep, tidy, type TidyResult } from "./scope.ts";
export { type BackwardOptions, GradNode, isGradEnabled, noGrad } from "./autograd.ts";
export { Rng } from "./random.ts";
export { maxElementsPerTexture, textureFits } from "./gpu/texture.ts";
export {
  type DType,
  formatShape,
  full,
  maxTensorElements,
  ones,
  randNormal,
  type RandomOptions,
  randUniform,
  Tensor,
  tensor,
  tensorFits,
  type TensorOptions,
  type TypedArray,
  zeros,
} from "./tensor.ts";
export { add, mul, relu, scale, sub } from "./ops/elementwise.ts";
export { linear, matmul, type MatmulOptions } from "./ops/matmul.ts";
export { conv2d, type Conv2dOptions } from "./ops/conv2d.ts";
export { batchNorm, type BatchNormOptions } from "./ops/batch_norm.ts";
export { maxPool2d, type MaxPoolOptions } from "./ops/max_pool.ts";
export { dropout, type DropoutOptions } from "./ops/dropout.ts";
export { crossEntropy, logSoftmax, nllLoss } from "./ops/softmax.ts";
export { argmax, correctCount, mean, sum } from "./ops/reduce.ts";
export { Module, type StateDict, type StateDictInput } from "./modules/module.ts";
export { defaultGenerator, type InitOptions, manualSeed } from "./modules/init.ts";
export { Linear, type LinearOptions } from "./modules/linear.ts";
export { Conv2d, type Conv2dLayerOptions } from "./modules/conv2d.ts";
export {
  BatchNorm1d,
  BatchNorm2d,
  BatchNormBase,
  type BatchNormLayerOptions,
} from "./modules/batch_norm.ts";
export { Dropout, Flatten, LogSoftmax, MaxPool2d, ReLU, Sequential } from "./modules/layers.ts";
export {
  BatchNormTrunk,
  Classifier,
  Cnn,
  cnn,
  CnnBn,
  cnnBn,
  createModel,
  Mlp,
  mlp,
  type ModelName,
  TuningCnn,
  tuningCnn,
  type TuningCnnOptions,
} from "./models.ts";
export {
  floatsPerImage,
  maxBatchSize,
  maxL1,
  maxTensorFloats,
  type ModelSizeConfig,
  type TensorSizeLimits,
} from "./model_limits.ts";
export {
  checkStateDictShapes,
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  type LoadedSafetensors,
  loadSafetensors,
  type SafetensorsTensor,
  saveSafetensors,
} from "./safetensors.ts";
