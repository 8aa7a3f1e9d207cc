/**
 * Transposed 2-D convolution, as `torch.nn.functional.conv_transpose2d`: the input gradient of a
 * convolution, so its forward runs the convolution input-gradient kernels and its backward the
 * convolution forward (input gradient) and weight-gradient kernels.
 *
 * @module
 */

import { noGrad, recordOp } from "../graph.ts";
import { formatShape, type Tensor } from "../tensor.ts";
import { sumTo } from "./broadcast.ts";
import {
  checkConvTensors,
  checkGroups,
  convForward,
  convInputGrad,
  convWeightGrad,
  reshaped,
  type Size2d,
  sizePair,
  specialisedShape,
} from "./conv2d.ts";
import { type GeneralConvShape, generalInputGrad } from "./conv_general.ts";
import { add } from "./elementwise.ts";

/** Options of `convTranspose2d` (PyTorch's defaults). */
export interface ConvTranspose2dOptions {
  /** Added per output channel: [outChannels] (default none). */
  bias?: Tensor | null;
  /** Stride of the convolution it transposes: one or [height, width] (default 1). */
  stride?: Size2d;
  /**
   * Padding of the convolution it transposes (default 0): `dilation · (kernel − 1) − padding`
   * zeros on each side of the input, so the output loses `padding` on each side.
   */
  padding?: Size2d;
  /**
   * Rows and columns added at the bottom and right of the output (default 0), to pick among the
   * input sizes a strided convolution maps to the same size; less than the stride or the
   * dilation.
   */
  outputPadding?: Size2d;
  /** Channel groups (default 1); the weight is [inChannels, outChannels / groups, kH, kW]. */
  groups?: number;
  /** Spacing between kernel taps: one or [height, width] (default 1). */
  dilation?: Size2d;
}

/**
 * Transposed 2-D convolution of x [N, Cin, H, W] with weight [Cin, Cout / groups, KH, KW]
 * (+ `bias` [Cout]) into [N, Cout, H', W'], H' = (H − 1)·stride − 2·padding + dilation·(KH − 1)
 * + outputPadding + 1, like `torch.nn.functional.conv_transpose2d`. Differentiable in all three.
 */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  options: ConvTranspose2dOptions = {},
): Tensor {
  const op = "convTranspose2d";
  const groups = options.groups ?? 1;
  const bias = options.bias ?? undefined;
  if (x.rank !== 4 || weight.rank !== 4 || x.shape[1] !== weight.shape[0]) {
    throw new Error(
      `${op}: input ${formatShape(x.shape)} does not fit weight ${formatShape(weight.shape)} ` +
        `(needs input [N, ${
          weight.rank === 4 ? weight.shape[0] : "Cin"
        }, H, W] for weight [Cin, Cout / groups, KH, KW])`,
    );
  }
  const [batch, inChannels, height, width] = x.shape;
  const [, perGroup, kernelHeight, kernelWidth] = weight.shape;
  const outChannels = perGroup * groups;
  checkGroups(op, groups, inChannels, outChannels);
  checkConvTensors(op, x, weight, bias, outChannels);
  const stride = sizePair(op, "stride", options.stride ?? 1, 1);
  const padding = sizePair(op, "padding", options.padding ?? 0, 0);
  const outputPadding = sizePair(op, "outputPadding", options.outputPadding ?? 0, 0);
  const dilation = sizePair(op, "dilation", options.dilation ?? 1, 1);
  for (const d of [0, 1]) {
    if (outputPadding[d] >= stride[d] && outputPadding[d] >= dilation[d]) {
      throw new Error(
        `${op}: outputPadding [${outputPadding.join(", ")}] must be smaller than the stride ` +
          `[${stride.join(", ")}] or the dilation [${dilation.join(", ")}] in each dimension`,
      );
    }
  }
  const kernel = [kernelHeight, kernelWidth];
  const outSize = [height, width].map((size, d) =>
    (size - 1) * stride[d] - 2 * padding[d] + dilation[d] * (kernel[d] - 1) + outputPadding[d] + 1
  );
  if (outSize[0] < 1 || outSize[1] < 1) {
    throw new Error(
      `${op}: the output would be ${outSize.join("x")} (input ${height}x${width}, kernel ` +
        `${kernelHeight}x${kernelWidth}, stride [${stride.join(", ")}], padding ` +
        `[${padding.join(", ")}]): every dimension must be at least 1`,
    );
  }
  // The convolution this one transposes: [N, Cout, H', W'] -> [N, Cin, H, W].
  const conv: GeneralConvShape = {
    batch,
    inChannels: outChannels,
    outChannels: inChannels,
    groups,
    height: outSize[0],
    width: outSize[1],
    kernelHeight,
    kernelWidth,
    strideHeight: stride[0],
    strideWidth: stride[1],
    padTop: padding[0],
    padLeft: padding[1],
    dilationHeight: dilation[0],
    dilationWidth: dilation[1],
    outHeight: height,
    outWidth: width,
  };
  let out: Tensor;
  if (bias && !specialisedShape(conv)) {
    out = generalInputGrad(x, weight, bias, conv);
  } else {
    out = convInputGrad(x, weight, conv);
    if (bias) {
      const plain = out;
      out = noGrad(() => {
        const column = bias.view([1, outChannels, 1, 1]);
        const sum = add(plain, column);
        column.dispose();
        return sum;
      });
      plain.dispose();
    }
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return recordOp(op, out, inputs, (grad) => [
    x.requiresGrad ? convForward(grad, weight, undefined, conv) : null,
    weight.requiresGrad ? convWeightGrad(x, grad, conv, false)[0] : null,
    bias?.requiresGrad
      ? reshaped(sumTo(grad.view(grad.shape), [1, outChannels, 1, 1]), [outChannels])
      : null,
  ]);
}
