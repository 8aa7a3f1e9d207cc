/**
 * Conv2d → ReLU → MaxPool(2) with the pooling fused into the convolution's kernel: the lanes
 * pool the outputs they computed while still in registers, so the full-size output is never
 * written, copied into a texture or read back by a pooling kernel. The study's CNN runs its two
 * blocks this way.
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
  const convOutShape = [shape.batch, shape.outChannels, shape.outHeight, shape.outWidth];
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return recordOp(op, out, inputs, (grad) => {
    const convGrad = reluQuadPoolBackward(grad, indices, convOutShape);
    const grads = convBackward(convGrad, x, weight, bias, shape);
    convGrad.dispose();
    return grads;
  }, [indices]);
}
