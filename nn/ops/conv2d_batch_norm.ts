/**
 * Conv2d → BatchNorm2d → ReLU → MaxPool(2) as one recorded op. Forward it is two kernels: the
 * convolution, whose lanes also write the partial statistics (count, mean, squared deviations) of
 * the outputs they computed, and `batchNormReluMaxPool2d`'s, which merges those instead of reading
 * the output for its batch statistics (one pass over it instead of two) where batch norm trains
 * with gradients on.
 *
 * Backward, for the case the study's first block is (a convolution whose input, the images, needs
 * no gradient, in training): batch norm's kernel reduces its sums and writes each quad's argmaxes
 * and each channel's coefficients instead of dx, and the convolution's weight-gradient kernel
 * computes dx as it reads it: the full-size gradient is never written nor copied into a texture.
 * Where x needs a gradient (the second block) the backward is the ops' in sequence: computing dx
 * inside both gradient kernels of conv2, whose lanes each recompute the values of every channel
 * block, made its step 6% slower (kernels 0.43 ms slower against 0.1 ms of batch norm's kernel
 * saved).
 *
 * @module
 */

import { isGradEnabled, recordOp } from "../autograd.ts";
import type { Tensor } from "../tensor.ts";
import {
  batchNorm,
  type BatchNormOptions,
  batchNormReluMaxPool2d,
  batchNormReluMaxPool2dOf,
  batchNormReluPoolForward,
  batchNormReluPoolGradientParts,
} from "./batch_norm.ts";
import {
  conv2d,
  type Conv2dOptions,
  conv2dShape,
  convForward,
  convForwardWithStatistics,
  recordConv,
  specialisedShape,
} from "./conv2d.ts";
import { maxPool2d } from "./max_pool.ts";
import { pooledForwardApplies } from "./conv2d_forward.ts";
import { weightAndBiasGrad } from "./conv2d_weight_grad.ts";

/** What `conv2dBatchNormReluMaxPool2d` takes besides x and the convolution's weight. */
export interface ConvBatchNormOptions {
  /** The convolution's options (its bias among them). */
  conv: Conv2dOptions;
  /** Batch norm's options for the convolution's output z (e.g. `(z) => bn.normOptions(z)`). */
  batchNorm: (z: Tensor) => BatchNormOptions;
}

/**
 * relu(maxPool2d(batchNorm(conv2d(x, weight), ...), { kernelSize: 2 })): the values and gradients
 * of those ops in sequence (to float32 rounding in training, where the batch statistics are merged
 * from the convolution's partial ones). Differentiable in x, weight, the convolution's bias and
 * batch norm's weight and bias. Where x needs no gradient, batch norm trains (batch statistics)
 * and the convolution's output has an even height and a width that is a multiple of 8, backward
 * writes no full-size gradient (see the module doc); else it is the ops in sequence.
 */
export function conv2dBatchNormReluMaxPool2d(
  x: Tensor,
  weight: Tensor,
  options: ConvBatchNormOptions,
): Tensor {
  const op = "conv2dBatchNormReluMaxPool2d";
  const bias = options.conv.bias ?? undefined;
  const shape = conv2dShape(op, x, weight, bias, options.conv);
  const simple = specialisedShape(shape);
  if (!simple || !pooledForwardApplies(simple)) {
    const conv = conv2d(x, weight, options.conv);
    const [, , height, width] = conv.shape;
    const bnOptions = options.batchNorm(conv);
    return height % 2 === 0 && width % 8 === 0
      ? batchNormReluMaxPool2d(conv, bnOptions)
      : maxPool2d(batchNorm(conv, bnOptions), { kernelSize: 2, relu: true });
  }
  // The convolution's lanes also write their outputs' partial statistics, where gradients are
  // on (in training; evaluation runs without them, and the partials would go unused).
  const statistics = isGradEnabled()
    ? convForwardWithStatistics(x, weight, bias, shape) ?? undefined
    : undefined;
  const z = statistics?.out ?? convForward(x, weight, bias, shape);
  const bnOptions = options.batchNorm(z);
  if (!bnOptions.training || x.requiresGrad) {
    const recorded = recordConv(op, z, x, weight, bias, shape);
    const out = batchNormReluMaxPool2dOf(recorded, bnOptions, statistics);
    statistics?.partials.dispose();
    return out;
  }
  const { out, stats } = batchNormReluPoolForward(z, bnOptions, statistics);
  statistics?.partials.dispose();
  const { weight: bnWeight, bias: bnBias } = bnOptions;
  const inputs = [x, weight, bias, bnWeight, bnBias].filter((t): t is Tensor => t !== undefined);
  return recordOp(op, out, inputs, (grad) => {
    const parts = batchNormReluPoolGradientParts(grad, z, stats, bnOptions);
    const needWeights = weight.requiresGrad || !!bias?.requiresGrad;
    const [weightGrad, biasGrad] = needWeights
      ? weightAndBiasGrad(grad, x, simple, {
        withBias: !!bias,
        indices: parts.codes,
        batchNorm: { z, coefficients: parts.coefficients },
      })
      : [null, null];
    parts.codes.dispose();
    parts.coefficients.dispose();
    // x needed no gradient when this was recorded, so backward gives it none.
    const convGrads = [
      null,
      weight.requiresGrad ? weightGrad : (weightGrad?.dispose(), null),
      ...(bias ? [bias.requiresGrad ? biasGrad : (biasGrad?.dispose(), null)] : []),
    ];
    return [
      ...convGrads,
      ...(bnWeight ? [parts.dweight] : []),
      ...(bnBias ? [parts.dbias] : []),
    ];
  }, [z, stats]);
}
