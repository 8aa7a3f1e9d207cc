/**
 * The study's four models, exactly as in its notebook (see docs/STUDY.md), with PyTorch's parameter
 * names so that weights move between wgtorch and PyTorch through safetensors.
 *
 * @module
 */

import type { Tensor } from "./tensor.ts";
import { BatchNorm2d } from "./modules/batch_norm.ts";
import { Conv2d } from "./modules/conv2d.ts";
import type { InitOptions } from "./modules/init.ts";
import { Dropout, Flatten } from "./modules/layers.ts";
import { conv2dReluMaxPool2d } from "./ops/conv2d_relu_pool.ts";
import type { Conv2dOptions } from "./ops/conv2d.ts";
import { conv2dBatchNormReluMaxPool2d } from "./ops/conv2d_batch_norm.ts";
import { Linear } from "./modules/linear.ts";
import { linearReluDropout } from "./ops/linear_relu_dropout.ts";
import { linearLogSoftmax } from "./ops/linear_log_softmax.ts";
import { Module } from "./modules/module.ts";

/** The models of the study, by their command-line names. */
export type ModelName = "mlp" | "cnn" | "cnn-bn" | "tuning-cnn";

/** A module that classifies 28x28 images into 10 classes with log-probabilities. */
export abstract class Classifier extends Module {
  /** One line describing the architecture. */
  abstract readonly description: string;
  /** The model's name and configuration, saved with its weights. */
  abstract readonly config: { model: ModelName; l1?: number };
}

const flatten = new Flatten();

/** The functional options of a Conv2d layer. */
function convOptions(conv: Conv2d): Conv2dOptions {
  return {
    bias: conv.bias,
    stride: conv.stride,
    padding: conv.padding,
    dilation: conv.dilation,
    groups: conv.groups,
  };
}

/** Linear → ReLU → Dropout, the activation and the mask fused into the matmul's kernel. */
function fcReluDropout(fc: Linear, x: Tensor, drop: Dropout): Tensor {
  return linearReluDropout(x, fc.weight, {
    ...(fc.bias ? { bias: fc.bias } : {}),
    dropout: drop.nextOptions(),
  });
}

/** Linear → LogSoftmax, the log-softmax fused into the matmul's kernel where it applies. */
function fcLogSoftmax(fc: Linear, x: Tensor): Tensor {
  return linearLogSoftmax(x, fc.weight, fc.bias ?? undefined);
}

/** Conv2d → ReLU → MaxPool(2), the pooling fused into the convolution's kernel where it applies. */
function convReluPool(conv: Conv2d, x: Tensor): Tensor {
  return conv2dReluMaxPool2d(x, conv.weight, convOptions(conv));
}

/**
 * Conv2d → BatchNorm2d → ReLU → MaxPool(2) as one op, whose backward writes no full-size gradient
 * where batch norm trains and the shapes allow (the study's blocks).
 */
function convBatchNormReluPool(conv: Conv2d, bn: BatchNorm2d, x: Tensor): Tensor {
  return conv2dBatchNormReluMaxPool2d(x, conv.weight, {
    conv: convOptions(conv),
    batchNorm: (z) => bn.normOptions(z),
  });
}

/** MLP: Flatten(784) → Linear(784,256) → ReLU → Dropout(0.2) → Linear(256,128) → ReLU → Dropout(0.2) → Linear(128,10) → LogSoftmax. */
export class Mlp extends Classifier {
  /** One line describing the architecture. */
  readonly description =
    "MLP: Flatten(784) → Linear(784,256) → ReLU → Dropout(0.2) → Linear(256,128) → ReLU → Dropout(0.2) → Linear(128,10) → LogSoftmax";
  /** The model's name. */
  readonly config = { model: "mlp" as const };
  /** 784 → 256. */
  readonly fc1: Linear;
  /** 256 → 128. */
  readonly fc2: Linear;
  /** 128 → 10. */
  readonly fc3: Linear;
  /** Dropout(0.2), used after each hidden layer. */
  readonly dropout: Dropout;

  /** A freshly initialised MLP. */
  constructor(options: InitOptions = {}) {
    super();
    this.fc1 = new Linear(784, 256, options);
    this.fc2 = new Linear(256, 128, options);
    this.fc3 = new Linear(128, 10, options);
    this.dropout = new Dropout(0.2, options);
  }

  /** x [N, 1, 28, 28] (or [N, 784]) → log-probabilities [N, 10]. */
  forward(x: Tensor): Tensor {
    let h = flatten.forward(x);
    h = fcReluDropout(this.fc1, h, this.dropout);
    h = fcReluDropout(this.fc2, h, this.dropout);
    return fcLogSoftmax(this.fc3, h);
  }
}

/** CNN: Conv2d(1,10,5) → ReLU → MaxPool(2) → Conv2d(10,20,5) → ReLU → MaxPool(2) → Flatten(320) → Linear(320,10) → LogSoftmax. */
export class Cnn extends Classifier {
  /** One line describing the architecture. */
  readonly description =
    "CNN: Conv2d(1,10,5) → ReLU → MaxPool(2) → Conv2d(10,20,5) → ReLU → MaxPool(2) → Flatten(320) → Linear(320,10) → LogSoftmax";
  /** The model's name. */
  readonly config = { model: "cnn" as const };
  /** 1 → 10 channels, 5x5. */
  readonly conv1: Conv2d;
  /** 10 → 20 channels, 5x5. */
  readonly conv2: Conv2d;
  /** 320 → 10. */
  readonly fc: Linear;

  /** A freshly initialised CNN. */
  constructor(options: InitOptions = {}) {
    super();
    this.conv1 = new Conv2d(1, 10, 5, options);
    this.conv2 = new Conv2d(10, 20, 5, options);
    this.fc = new Linear(320, 10, options);
  }

  /** x [N, 1, 28, 28] → log-probabilities [N, 10]. */
  forward(x: Tensor): Tensor {
    const h1 = convReluPool(this.conv1, x);
    const h2 = convReluPool(this.conv2, h1);
    return fcLogSoftmax(this.fc, flatten.forward(h2));
  }
}

/** The convolutional trunk shared by CNN-BN and the tuning CNN: two conv → BN → ReLU → pool blocks. */
export abstract class BatchNormTrunk extends Classifier {
  /** 1 → 10 channels, 5x5. */
  readonly conv1: Conv2d;
  /** BatchNorm2d(10). */
  readonly bn1: BatchNorm2d;
  /** 10 → 20 channels, 5x5. */
  readonly conv2: Conv2d;
  /** BatchNorm2d(20). */
  readonly bn2: BatchNorm2d;

  /** The two convolution blocks, initialised as PyTorch does. */
  constructor(options: InitOptions) {
    super();
    this.conv1 = new Conv2d(1, 10, 5, options);
    this.bn1 = new BatchNorm2d(10);
    this.conv2 = new Conv2d(10, 20, 5, options);
    this.bn2 = new BatchNorm2d(20);
  }

  /** x [N, 1, 28, 28] → features [N, 320]. */
  protected features(x: Tensor): Tensor {
    const h1 = convBatchNormReluPool(this.conv1, this.bn1, x);
    const h2 = convBatchNormReluPool(this.conv2, this.bn2, h1);
    return flatten.forward(h2);
  }
}

/** CNN-BN: the CNN with BatchNorm2d after each convolution (before ReLU). */
export class CnnBn extends BatchNormTrunk {
  /** One line describing the architecture. */
  readonly description =
    "CNN-BN: Conv2d(1,10,5) → BatchNorm2d(10) → ReLU → MaxPool(2) → Conv2d(10,20,5) → BatchNorm2d(20) → ReLU → MaxPool(2) → Flatten(320) → Linear(320,10) → LogSoftmax";
  /** The model's name. */
  readonly config = { model: "cnn-bn" as const };
  /** 320 → 10. */
  readonly fc: Linear;

  /** A freshly initialised CNN-BN. */
  constructor(options: InitOptions = {}) {
    super(options);
    this.fc = new Linear(320, 10, options);
  }

  /** x [N, 1, 28, 28] → log-probabilities [N, 10]. */
  forward(x: Tensor): Tensor {
    return fcLogSoftmax(this.fc, this.features(x));
  }
}

/** Options of the tuning CNN. */
export interface TuningCnnOptions extends InitOptions {
  /** Width of the hidden fully connected layer (the study searched 64, 128, 256). */
  l1?: number;
}

/**
 * The tuning CNN: CNN-BN with Linear(320, l1) → Linear(l1, 10). As in the study's notebook there
 * is no activation between the two Linear layers.
 */
export class TuningCnn extends BatchNormTrunk {
  /** One line describing the architecture. */
  readonly description: string;
  /** The model's name and l1. */
  readonly config: { model: "tuning-cnn"; l1: number };
  /** 320 → l1. */
  readonly fc1: Linear;
  /** l1 → 10. */
  readonly fc2: Linear;

  /** A freshly initialised tuning CNN with hidden width `l1` (default 64). */
  constructor(options: TuningCnnOptions = {}) {
    super(options);
    const l1 = options.l1 ?? 64;
    if (!Number.isInteger(l1) || l1 < 1) {
      throw new Error(`tuningCnn: l1 must be a positive integer, got ${l1}`);
    }
    this.config = { model: "tuning-cnn", l1 };
    this.description =
      `Tuning CNN: CNN-BN trunk → Flatten(320) → Linear(320,${l1}) → Linear(${l1},10) ` +
      "(no activation between, as in the study's notebook) → LogSoftmax";
    this.fc1 = new Linear(320, l1, options);
    this.fc2 = new Linear(l1, 10, options);
  }

  /** x [N, 1, 28, 28] → log-probabilities [N, 10]. */
  forward(x: Tensor): Tensor {
    return fcLogSoftmax(this.fc2, this.fc1.forward(this.features(x)));
  }
}

/** The study's MLP. */
export function mlp(options: InitOptions = {}): Mlp {
  return new Mlp(options);
}

/** The study's CNN. */
export function cnn(options: InitOptions = {}): Cnn {
  return new Cnn(options);
}

/** The study's CNN-BN. */
export function cnnBn(options: InitOptions = {}): CnnBn {
  return new CnnBn(options);
}

/** The study's tuning CNN (CNN-BN with a hidden layer of width l1). */
export function tuningCnn(options: TuningCnnOptions = {}): TuningCnn {
  return new TuningCnn(options);
}

/** The study's models by name, in the order the study presents them. */
export const MODEL_NAMES: readonly ModelName[] = ["mlp", "cnn", "cnn-bn", "tuning-cnn"];

/** One line per model, for help texts and reports. */
export const MODEL_DESCRIPTIONS: Readonly<Record<ModelName, string>> = {
  "mlp": "three fully connected layers with dropout",
  "cnn": "two convolutions with max pooling, then two fully connected layers",
  "cnn-bn": "the CNN with batch normalization after each convolution (the study's best model)",
  "tuning-cnn": "CNN-BN with a tunable hidden width l1 (the tuner's model)",
};

/** Whether `name` is one of {@linkcode MODEL_NAMES}. */
export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

/**
 * Builds one of the study's models by name, with fresh parameters.
 *
 * @example Build the study's CNN-BN and classify a batch of 2 blank images
 * ```ts
 * import { init, tensor } from "@wgtorch/wgtorch";
 * import { createModel, MODEL_NAMES } from "@wgtorch/wgtorch/models";
 * import { Rng } from "@wgtorch/wgtorch";
 *
 * await init();
 * console.log(MODEL_NAMES); // ["mlp", "cnn", "cnn-bn", "tuning-cnn"]
 * const model = createModel("cnn-bn", { rng: new Rng(0) });
 * model.eval();
 * const logProbs = model.forward(tensor(new Float32Array(2 * 784), [2, 1, 28, 28]));
 * console.log(logProbs.shape); // [2, 10]
 * ```
 *
 * @param name One of {@linkcode MODEL_NAMES}.
 * @param options The generator for the initial parameters (`rng`), and `l1` for `"tuning-cnn"`.
 */
export function createModel(name: ModelName, options: TuningCnnOptions = {}): Classifier {
  switch (name) {
    case "mlp":
      return mlp(options);
    case "cnn":
      return cnn(options);
    case "cnn-bn":
      return cnnBn(options);
    case "tuning-cnn":
      return tuningCnn(options);
    default:
      throw new Error(
        `Unknown model ${JSON.stringify(name)}: expected one of ${MODEL_NAMES.join(", ")}`,
      );
  }
}
