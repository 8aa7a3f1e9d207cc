/**
 * The FashionMNIST study's four models (MLP, CNN, CNN-BN and the tuner's CNN), a registry by
 * name, and the largest batch size and hidden width each fits on the adapter in use.
 *
 * ```ts
 * import { init } from "@wgtorch/wgtorch";
 * import { createModel, MODEL_DESCRIPTIONS, MODEL_NAMES } from "@wgtorch/wgtorch/models";
 *
 * await init();
 * for (const name of MODEL_NAMES) console.log(name, "—", MODEL_DESCRIPTIONS[name]);
 * const model = createModel("mlp");
 * console.log(model.description);
 * ```
 *
 * @module
 */

export {
  BatchNormTrunk,
  Classifier,
  Cnn,
  cnn,
  CnnBn,
  cnnBn,
  createModel,
  isModelName,
  Mlp,
  mlp,
  MODEL_DESCRIPTIONS,
  MODEL_NAMES,
  type ModelName,
  TuningCnn,
  tuningCnn,
  type TuningCnnOptions,
} from "../nn/models.ts";
export {
  floatsPerImage,
  maxBatchSize,
  maxL1,
  maxTensorFloats,
  type ModelSizeConfig,
  type TensorSizeLimits,
} from "../nn/model_limits.ts";
