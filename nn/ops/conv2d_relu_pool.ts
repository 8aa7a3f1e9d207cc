/**
 * Conv2d → ReLU → MaxPool(2) with the pooling fused into the convolution's kernel: the lanes
 * pool the outputs they computed while still in registers, so the full-size output is never
 * written, copied into a texture or read back by a pooling kernel. Backward, the convolution's
 * gradient kernels read the pooled gradient and the argmaxes and expand them as they go, so the
 * full-size output gradient is never written either. The study's CNN runs its two blocks this
 * way.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import type { Tensor } from "../tensor.ts";
import {
  type Conv2dOptions,
  conv2dShape,
  convBackward,
  convForward,
  recordConv,
  specialisedShape,
} from "./conv2d.ts";
import { pooledForwardApplies, runPooledForward } from "./conv2d_forward.ts";
import { transposedInputGrad, transposedInputGradApplies } from "./conv2d_input_grad.ts";
import type { ConvShape } from "./conv2d_shape.ts";
import { weightAndBiasGrad } from "./conv2d_weight_grad.ts";
import { maxPool2d, reluQuadPoolBackward } from "./max_pool.ts";

/**
 * relu(maxPool2d(conv2d(x, weight, options), { kernelSize: 2 })): the same values and gradients
 * as the three ops in sequence (ReLU after the pool equals ReLU before it), in one kernel where
 * the convolution has one group, no dilation, the same stride and padding on both axes and an
 * output of even height and a width that is a multiple of 8; else the ops in sequence.
 * Differentiable in x, weight and bias.
 */
export function conv2dReluMaxPool2d(
  x: Tensor,
  weight: Tensor,
  options: Conv2dOptions = {},
): Tensor {
  const op = "conv2dReluMaxPool2d";
  const bias = options.bias ?? undefined;
  const shape = conv2dShape(op, x, weight, bias, options);
  const simple = specialisedShape(shape);
  if (!simple || !pooledForwardApplies(simple)) {
    const conv = recordConv(op, convForward(x, weight, bias, shape), x, weight, bias, shape);
    return maxPool2d(conv, { kernelSize: 2, relu: true });
  }
  const { out, indices } = runPooledForward(x, weight, bias, simple);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return recordOp(op, out, inputs, (grad) => {
    if (x.requiresGrad && !transposedInputGradApplies(simple)) {
      // The input gradient takes another kernel: expand the gradient for it.
      const convOutShape = [shape.batch, shape.outChannels, shape.outHeight, shape.outWidth];
      const convGrad = reluQuadPoolBackward(grad, indices, convOutShape);
      const grads = convBackward(convGrad, x, weight, bias, shape);
      convGrad.dispose();
      return grads;
    }
    return pooledConvBackward(grad, indices, { x, weight, bias, shape: simple });
  }, [indices]);
}

/**
 * [dx, dweight, dbias?] (null where not required) of the convolution from relu(maxPool2d)'s
 * pooled gradient and argmaxes, each kernel expanding the gradient as it reads it.
 */
function pooledConvBackward(
  grad: Tensor,
  indices: Tensor,
  conv: { x: Tensor; weight: Tensor; bias?: Tensor; shape: ConvShape },
): (Tensor | null)[] {
  const { x, weight, bias, shape } = conv;
  const needWeights = weight.requiresGrad || !!bias?.requiresGrad;
  const [weightGrad, biasGrad] = needWeights
    ? weightAndBiasGrad(grad, x, shape, { withBias: !!bias, indices })
    : [null, null];
  const inputGrad = x.requiresGrad ? transposedInputGrad(grad, weight, shape, { indices }) : null;
  const grads = [inputGrad, weight.requiresGrad ? weightGrad : (weightGrad?.dispose(), null)];
  return bias ? [...grads, bias.requiresGrad ? biasGrad : (biasGrad?.dispose(), null)] : grads;
}
