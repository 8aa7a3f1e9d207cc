/**
 * wgtorch: train neural networks in Deno (and the browser) on WebGPU, with hand-written WGSL
 * kernels and a PyTorch-shaped API — tensors, autograd, layers, losses, SGD/Adam, LR schedules,
 * a training loop and safetensors.
 *
 * The other entry points: `@wgtorch/wgtorch/data` (datasets, GPU loaders, FashionMNIST),
 * `@wgtorch/wgtorch/models` (the study's models by name), `@wgtorch/wgtorch/tune` (a
 * Ray-Tune-style tuner) and `@wgtorch/wgtorch/cli` (the study's command line).
 *
 * ```ts
 * import { Adam, init, Linear, nllLoss, ReLU, Sequential, tensor, tidy } from "@wgtorch/wgtorch";
 * import { LogSoftmax } from "@wgtorch/wgtorch";
 *
 * await init();
 * const model = new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 3), new LogSoftmax());
 * const optimizer = new Adam(model.parameters(), { lr: 0.01 });
 * const x = tensor(new Float32Array(2 * 4).fill(0.5), [2, 4]);
 * const y = tensor([0, 2], [2], { dtype: "i32" });
 * tidy(() => {
 *   optimizer.zeroGrad();
 *   nllLoss(model.forward(x), y).backward();
 *   optimizer.step();
 * });
 * ```
 *
 * Training with `fit`: batches from a `DataLoader` (see `@wgtorch/wgtorch/data`), an optimizer,
 * and a history of per-epoch loss and accuracy back:
 *
 * ```ts
 * import { Adam, fit, init, Linear, LogSoftmax, manualSeed, Sequential } from "@wgtorch/wgtorch";
 * import { Flatten } from "@wgtorch/wgtorch";
 * import { DataLoader, GpuDataset } from "@wgtorch/wgtorch/data";
 *
 * await init();
 * manualSeed(0);
 * // 64 made-up 28x28 images: class 1 is bright, class 0 dark.
 * const labels = Uint8Array.from({ length: 64 }, (_, i) => i % 2);
 * const images = new Uint8Array(64 * 784).map((_, p) => labels[Math.floor(p / 784)] * 200);
 * const set = { images, labels, count: 64, rows: 28, cols: 28 };
 * const train = new DataLoader(new GpuDataset(set), { batchSize: 16, seed: 0 });
 * const model = new Sequential(new Flatten(), new Linear(784, 2), new LogSoftmax());
 * const optimizer = new Adam(model.parameters(), { lr: 0.01 });
 * const { history } = await fit(model, { train, optimizer, epochs: 3 });
 * console.log(history.map((epoch) => epoch.trainAccuracy)); // rising to 1
 * ```
 *
 * Permissions: none beyond WebGPU itself; `init()` reads `WGTORCH_*` environment variables only
 * where `--allow-env` grants them. Saving and loading files needs `--allow-read`/`--allow-write`
 * for those paths.
 *
 * @module
 */

import "./nn/tensor_methods.ts";

export {
  type AdapterReport,
  describeAdapter,
  gpu,
  type GpuContext,
  init,
} from "./nn/gpu/device.ts";
export { type MemoryStats, memoryStats, trimPool } from "./nn/gpu/buffer_pool.ts";
export { shutdown, type ShutdownOptions } from "./nn/shutdown.ts";
export {
  flush,
  type KernelTime,
  startProfiling,
  stopProfiling,
  type StreamStats,
  streamStats,
  sync,
} from "./nn/gpu/stream.ts";
export { type Disposable, keep, tidy, type TidyResult } from "./nn/scope.ts";
export { type BackwardOptions, isGradEnabled, noGrad } from "./nn/autograd.ts";
export { Rng } from "./nn/random.ts";
export { maxElementsPerTexture, textureFits } from "./nn/gpu/texture.ts";
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
} from "./nn/tensor.ts";
export { eq, ge, gt, le, lt, ne, where } from "./nn/ops/compare.ts";
export { cast } from "./nn/ops/cast.ts";
export {
  flatten,
  type FlattenOptions,
  reshape,
  squeeze,
  type SqueezeOptions,
  unsqueeze,
  view,
} from "./nn/ops/shape.ts";
export {
  cat,
  type DimOptions,
  expand,
  narrow,
  pad,
  type PadOptions,
  permute,
  split,
  stack,
  transpose,
} from "./nn/ops/layout.ts";
export {
  type CustomBackwardFunction,
  type CustomOp,
  customOp,
  type CustomOpDefinition,
  type CustomOpInfo,
  type CustomWgsl,
  markWritten,
} from "./nn/custom_op.ts";
export { gather, indexSelect, oneHot } from "./nn/ops/indexing.ts";
export {
  add,
  div,
  maximum,
  minimum,
  mul,
  type Operand,
  pow,
  relu,
  scale,
  sub,
} from "./nn/ops/elementwise.ts";
export {
  abs,
  clamp,
  type ClampOptions,
  cos,
  elu,
  type EluOptions,
  exp,
  gelu,
  type GeluOptions,
  leakyRelu,
  type LeakyReluOptions,
  log,
  neg,
  rsqrt,
  sigmoid,
  silu,
  sin,
  softplus,
  type SoftplusOptions,
  sqrt,
  square,
  tanh,
} from "./nn/ops/unary.ts";
export { linear, matmul, type MatmulOptions } from "./nn/ops/matmul.ts";
export { conv2d, type Conv2dOptions, type Conv2dPadding } from "./nn/ops/conv2d.ts";
export type { Size2d } from "./nn/ops/pool_geometry.ts";
export { conv1d, type Conv1dOptions, type Conv1dPadding } from "./nn/ops/conv1d.ts";
export { convTranspose2d, type ConvTranspose2dOptions } from "./nn/ops/conv_transpose2d.ts";
export { batchNorm, type BatchNormOptions } from "./nn/ops/batch_norm.ts";
export { maxPool2d, maxPool2dWithIndices, type MaxPoolOptions } from "./nn/ops/max_pool.ts";
export { maxUnpool2d, type MaxUnpoolOptions } from "./nn/ops/max_unpool.ts";
export {
  dropout,
  dropout2d,
  type Dropout2dOptions,
  type DropoutOptions,
} from "./nn/ops/dropout.ts";
export { adaptiveAvgPool2d, avgPool2d, type AvgPoolOptions } from "./nn/ops/avg_pool.ts";
export {
  crossEntropy,
  type CrossEntropyOptions,
  logSoftmax,
  nllLoss,
  type NllLossOptions,
  softmax,
  type SoftmaxOptions,
} from "./nn/ops/softmax.ts";
export {
  binaryCrossEntropy,
  type BinaryCrossEntropyOptions,
  binaryCrossEntropyWithLogits,
  type BinaryCrossEntropyWithLogitsOptions,
  huberLoss,
  type HuberLossOptions,
  klDiv,
  type KlDivOptions,
  l1Loss,
  type L1LossOptions,
  type LossOptions,
  mseLoss,
  type MseLossOptions,
  type Reduction,
  smoothL1Loss,
  type SmoothL1LossOptions,
} from "./nn/ops/losses.ts";
export {
  argmax,
  argmin,
  type ArgReductionOptions,
  correctCount,
  logsumexp,
  max,
  mean,
  min,
  prod,
  type ReductionOptions,
  std,
  sum,
  variance,
  type VarianceOptions,
} from "./nn/ops/reduce.ts";
export { maxout, type MaxoutOptions } from "./nn/ops/maxout.ts";
export {
  type AnyModule,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  type StateDict,
  type StateDictInput,
} from "./nn/modules/module.ts";
export { ModuleDict, ModuleList } from "./nn/modules/containers.ts";
export {
  ELU,
  GELU,
  Identity,
  LeakyReLU,
  Maxout,
  Sigmoid,
  SiLU,
  Softplus,
  Tanh,
} from "./nn/modules/activations.ts";
export {
  groupNorm,
  type GroupNormOptions,
  layerNorm,
  type LayerNormOptions,
} from "./nn/ops/norm.ts";
export { embedding, type EmbeddingOptions } from "./nn/ops/embedding.ts";
export {
  GroupNorm,
  type GroupNormLayerOptions,
  LayerNorm,
  type LayerNormLayerOptions,
} from "./nn/modules/normalization.ts";
export { Embedding, type EmbeddingLayerOptions } from "./nn/modules/embedding.ts";
export { GRU, LSTM, RNNBase, type RNNOptions } from "./nn/modules/rnn.ts";
export {
  MultiheadAttention,
  multiHeadAttention,
  type MultiheadAttentionCallOptions,
  type MultiHeadAttentionFunctionOptions,
  type MultiheadAttentionOptions,
} from "./nn/modules/attention.ts";
export {
  scaledDotProductAttention,
  type ScaledDotProductAttentionOptions,
} from "./nn/ops/attention.ts";
export {
  TransformerEncoderLayer,
  type TransformerEncoderLayerCallOptions,
  type TransformerEncoderLayerOptions,
} from "./nn/modules/transformer.ts";
export { defaultGenerator, type InitOptions, manualSeed } from "./nn/modules/init.ts";
export { Linear, type LinearOptions } from "./nn/modules/linear.ts";
export { Conv2d, type Conv2dLayerOptions, type PaddingMode } from "./nn/modules/conv2d.ts";
export { Conv1d, type Conv1dLayerOptions } from "./nn/modules/conv1d.ts";
export {
  ConvTranspose2d,
  type ConvTranspose2dLayerOptions,
} from "./nn/modules/conv_transpose2d.ts";
export {
  BatchNorm1d,
  BatchNorm2d,
  BatchNormBase,
  type BatchNormLayerOptions,
} from "./nn/modules/batch_norm.ts";
export {
  AdaptiveAvgPool2d,
  AvgPool2d,
  type AvgPool2dOptions,
  type MaxPool2dOptions,
  MaxUnpool2d,
  type MaxUnpool2dOptions,
} from "./nn/modules/pooling.ts";
export {
  Dropout,
  Dropout2d,
  Flatten,
  LogSoftmax,
  MaxPool2d,
  ReLU,
  Sequential,
  Softmax,
  type SoftmaxLayerOptions,
} from "./nn/modules/layers.ts";
export {
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  type LoadedSafetensors,
  loadSafetensors,
  type SafetensorsTensor,
  saveSafetensors,
} from "./nn/safetensors.ts";
export {
  type FiniteWatch,
  type GroupHyperparameters,
  type Hyperparameters,
  type LegacyOptimizerStateDict,
  Optimizer,
  type OptimizerOptions,
  type OptimizerStateDict,
  type ParameterUpdate,
  type ParamGroup,
  type ParamGroupInput,
  type ParamsInput,
  type SavedParamGroup,
} from "./train/optim/optimizer.ts";
export { SGD, type SGDOptions, type SGDParamGroup } from "./train/optim/sgd.ts";
export { Adam, type AdamOptions, type AdamParamGroup, AdamW } from "./train/optim/adam.ts";
export { RMSprop, type RMSpropOptions, type RMSpropParamGroup } from "./train/optim/rmsprop.ts";
export { Adagrad, type AdagradOptions, type AdagradParamGroup } from "./train/optim/adagrad.ts";
export { clipGradNorm, type ClipGradNormOptions, clipGradValue } from "./train/optim/clip_grad.ts";
export {
  CosineAnnealingLR,
  type CosineAnnealingLROptions,
  ExponentialLR,
  type ExponentialLROptions,
  LambdaLR,
  type LambdaLROptions,
  LinearLR,
  type LinearLROptions,
  type LrGroup,
  type LrLambda,
  LRScheduler,
  type LRSchedulerStateDict,
  type LrTarget,
  MultiStepLR,
  type MultiStepLROptions,
  OneCycleLR,
  type OneCycleLROptions,
  ReduceLROnPlateau,
  type ReduceLROnPlateauOptions,
  type SchedulerSetting,
  SequentialLR,
  type SequentialLROptions,
  StepLR,
  type StepLROptions,
} from "./train/lr_scheduler.ts";
export {
  accuracy,
  type BatchLoader,
  type EpochEndContext,
  evaluate,
  type EvaluateOptions,
  type EvaluateResult,
  fit,
  type FitCallback,
  type FitOptions,
  type FitProgress,
  type FitResult,
  type LossFunction,
  type LossPhase,
  mae,
  meanLoss,
  type Metric,
  mse,
  NonFiniteLossError,
  type NonFiniteValues,
  type StepProgress,
  topKAccuracy,
  type TrainBeginContext,
  type TrainEndContext,
  trainEpoch,
  type TrainEpochOptions,
  type TrainEpochResult,
  type TrainingBatch,
  type WatchedNames,
} from "./train/fit.ts";
export {
  type EpochRecord,
  HISTORY_COLUMNS,
  type HistoryCsvOptions,
  historyMetricColumns,
  historyToCsv,
} from "./train/history.ts";
export {
  EarlyStopping,
  earlyStopping,
  type EarlyStoppingOptions,
  type MonitorSpec,
} from "./train/early_stopping.ts";
// fit's and trainEpoch's `pacer` and `accumulator` options take these two: they stay public until
// those options give way to user-facing ones.
export { ReadPacer, type ReadPacerOptions } from "./train/read_pacer.ts";
export {
  type AccumulatorSnapshot,
  MetricsAccumulator,
  type NonFiniteTensor,
} from "./train/metrics_accumulator.ts";
export { type Json as JsonValue } from "./train/tune/types.ts";
export { writeFileAtomic } from "./train/tune/fs_atomic.ts";
export { ConfusionAccumulator, perClassAccuracy } from "./train/confusion.ts";
export {
  type CheckpointInfo,
  type CpuTensor,
  type DescribedModel,
  loadCheckpoint,
  type LoadedCheckpoint,
  type LoadedWeights,
  loadWeights,
  restoreCheckpoint,
  saveCheckpoint,
  saveWeights,
  type TrainingState,
} from "./train/checkpoint.ts";
