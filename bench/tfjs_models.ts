/**
 * The study's three architectures written with raw TensorFlow.js ops, for the TF.js side of
 * `deno task bench`. Bench only: nothing under `nn/`, `data/`, `train/` or `mod.ts` imports this.
 *
 * Layout is NHWC (TF.js's native layout) where wgtorch uses NCHW: the same math, with the
 * flatten order of the last feature map permuted, which only relabels the dense layer's rows.
 *
 * - MLP: 784 → Linear 256 → ReLU → Dropout 0.2 → Linear 128 → ReLU → Dropout 0.2 → Linear 10.
 * - CNN: Conv(1→10, 5x5) → ReLU → MaxPool 2 → Conv(10→20, 5x5) → ReLU → MaxPool 2 → flatten 320
 *   → Linear 10.
 * - CNN-BN: as CNN with BatchNorm (eps 1e-5, momentum 0.1, batch statistics in training and the
 *   running statistics, updated with the unbiased variance as PyTorch does, in evaluation) after
 *   each convolution, before its ReLU.
 *
 * Every model outputs log-probabilities (log-softmax), and the training loss is the mean NLL of
 * them. Convolutions and linear layers have biases; weights and biases are drawn as PyTorch's
 * defaults do (uniform in ±1/sqrt(fan_in)), BatchNorm starts at weight 1, bias 0.
 *
 * The module takes the TF.js namespace as an argument so that it never imports TF.js itself;
 * `bench/tfjs.ts` loads it with a dynamic import.
 *
 * @module
 */

// Inline npm: specifiers on purpose: TF.js is a bench-only dependency kept out of deno.json.
// deno-lint-ignore no-import-prefix
import type * as tfjs from "npm:@tensorflow/tfjs@4.22.0";

/** The TensorFlow.js namespace (`npm:@tensorflow/tfjs@4.22.0`), passed in by the caller. */
export type Tf = typeof tfjs;

/** The study's model names, as used across the bench. */
export type TfjsModelName = "mlp" | "cnn" | "cnn-bn";

/** A model built from TF.js variables. */
export interface TfjsModel {
  /** Which architecture this is. */
  readonly name: TfjsModelName;
  /** The parameters the optimizer updates (weights, biases, BatchNorm scale and shift). */
  readonly trainable: tfjs.Variable[];
  /** Every variable the model owns: `trainable` plus BatchNorm running statistics. */
  readonly variables: tfjs.Variable[];
  /**
   * Log-probabilities, shape [batch, 10]. `training` turns on dropout and BatchNorm batch
   * statistics (which also updates the running statistics). Call inside `tf.tidy` or a gradient
   * closure: intermediates are not disposed here.
   */
  forward(x: tfjs.Tensor, training: boolean): tfjs.Tensor2D;
  /** Mean negative log-likelihood over the batch; `labels` is one-hot [batch, 10]. */
  loss(x: tfjs.Tensor, labels: tfjs.Tensor2D, training: boolean): tfjs.Scalar;
  /** Disposes every variable. */
  dispose(): void;
}

/** Shape of one input batch in TF.js layout: [batch, 784] for the MLP, NHWC otherwise. */
export function tfjsInputShape(model: TfjsModelName, batchSize: number): number[] {
  return model === "mlp" ? [batchSize, 784] : [batchSize, 28, 28, 1];
}

/** Builds one of the study's models with PyTorch-default initialisation. */
export function buildTfjsModel(tf: Tf, name: TfjsModelName): TfjsModel {
  // tf.variable() shares the initial tensor's data but leaves that tensor alive: dispose it.
  const ownVariable = (init: tfjs.Tensor, train: boolean): tfjs.Variable => {
    const v = tf.variable(init, train);
    init.dispose();
    return v;
  };
  const trainable: tfjs.Variable[] = [];
  const all: tfjs.Variable[] = [];
  const uniform = (shape: number[], fanIn: number): tfjs.Variable => {
    const bound = 1 / Math.sqrt(fanIn);
    const v = ownVariable(tf.randomUniform(shape, -bound, bound), true);
    trainable.push(v);
    all.push(v);
    return v;
  };
  const constant = (shape: number[], value: number, train: boolean): tfjs.Variable => {
    const v = ownVariable(tf.fill(shape, value), train);
    if (train) trainable.push(v);
    all.push(v);
    return v;
  };
  /** Linear layer: y = x·W + b (W stored [in, out]); optional fused ReLU. */
  const linear = (inF: number, outF: number) => {
    const w = uniform([inF, outF], inF) as tfjs.Tensor2D;
    const b = uniform([outF], inF) as tfjs.Tensor1D;
    return (x: tfjs.Tensor2D, relu: boolean): tfjs.Tensor2D =>
      tf.fused.matMul({
        a: x,
        b: w,
        bias: b,
        activation: relu ? "relu" : "linear",
      }) as tfjs.Tensor2D;
  };
  /** 5x5 valid convolution, stride 1, with bias; optional fused ReLU. */
  const conv = (cin: number, cout: number) => {
    const fanIn = cin * 25;
    const w = uniform([5, 5, cin, cout], fanIn) as tfjs.Tensor4D;
    const b = uniform([cout], fanIn) as tfjs.Tensor1D;
    return (x: tfjs.Tensor4D, relu: boolean): tfjs.Tensor4D =>
      tf.fused.conv2d({
        x,
        filter: w,
        strides: 1,
        pad: "valid",
        bias: b,
        activation: relu ? "relu" : "linear",
      });
  };
  /** BatchNorm2d over NHWC channels: eps 1e-5, momentum 0.1 (PyTorch convention). */
  const batchNorm = (channels: number) => {
    const gamma = constant([channels], 1, true) as tfjs.Tensor1D;
    const beta = constant([channels], 0, true) as tfjs.Tensor1D;
    const runMean = constant([channels], 0, false);
    const runVar = constant([channels], 1, false);
    const runMean1 = runMean as tfjs.Tensor1D, runVar1 = runVar as tfjs.Tensor1D;
    return (x: tfjs.Tensor4D, training: boolean): tfjs.Tensor4D => {
      if (!training) return tf.batchNorm4d(x, runMean1, runVar1, beta, gamma, 1e-5);
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      const n = x.size / channels;
      runMean.assign(tf.add(tf.mul(runMean, 0.9), tf.mul(mean, 0.1)));
      runVar.assign(tf.add(tf.mul(runVar, 0.9), tf.mul(variance, 0.1 * n / (n - 1))));
      return tf.batchNorm4d(
        x,
        mean as tfjs.Tensor1D,
        variance as tfjs.Tensor1D,
        beta,
        gamma,
        1e-5,
      );
    };
  };
  const pool = (x: tfjs.Tensor4D): tfjs.Tensor4D => tf.maxPool(x, 2, 2, "valid");

  let logits: (x: tfjs.Tensor, training: boolean) => tfjs.Tensor2D;
  if (name === "mlp") {
    const fc1 = linear(784, 256), fc2 = linear(256, 128), fc3 = linear(128, 10);
    const drop = (x: tfjs.Tensor2D, training: boolean): tfjs.Tensor2D =>
      training ? tf.dropout(x, 0.2) as tfjs.Tensor2D : x;
    logits = (x, training) => {
      let h = drop(fc1(x as tfjs.Tensor2D, true), training);
      h = drop(fc2(h, true), training);
      return fc3(h, false);
    };
  } else {
    const bn = name === "cnn-bn";
    const conv1 = conv(1, 10), bn1 = bn ? batchNorm(10) : null;
    const conv2 = conv(10, 20), bn2 = bn ? batchNorm(20) : null;
    const fc = linear(320, 10);
    logits = (x, training) => {
      const block = (
        h: tfjs.Tensor4D,
        c: (x: tfjs.Tensor4D, relu: boolean) => tfjs.Tensor4D,
        norm: ((x: tfjs.Tensor4D, training: boolean) => tfjs.Tensor4D) | null,
      ): tfjs.Tensor4D => pool(norm ? tf.relu(norm(c(h, false), training)) : c(h, true));
      let h = block(x as tfjs.Tensor4D, conv1, bn1);
      h = block(h, conv2, bn2);
      return fc(tf.reshape(h, [h.shape[0], 320]), false);
    };
  }

  const forward = (x: tfjs.Tensor, training: boolean): tfjs.Tensor2D =>
    tf.logSoftmax(logits(x, training));
  return {
    name,
    trainable,
    variables: all,
    forward,
    loss(x, labels, training) {
      // Mean NLL of the log-softmax: -sum(onehot * logp) / batch.
      const logp = forward(x, training);
      return tf.mul(tf.sum(tf.mul(labels, logp)), -1 / x.shape[0]) as tfjs.Scalar;
    },
    dispose() {
      for (const v of all) v.dispose();
    },
  };
}
