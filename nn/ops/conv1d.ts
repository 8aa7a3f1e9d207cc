/**
 * 1-D convolution (NCL), as `torch.nn.functional.conv1d`: the 2-D convolution of a height-1
 * image, run on the same buffers (no copy).
 *
 * @module
 */

import { formatShape, type Tensor } from "../tensor.ts";
import {
  checkConvTensors,
  checkGroups,
  convForward,
  convShape,
  recordConv,
  reshaped,
  resolvePadding,
  sizePair,
} from "./conv2d.ts";

/**
 * Zero padding of `conv1d`: a count on both ends, or `"valid"` (none), `"same"` (the output as
 * long as the input; stride 1 only; an odd total puts the extra zero at the end), or `"full"`
 * (`dilation · (kernel − 1)` on both ends).
 */
export type Conv1dPadding = number | "valid" | "same" | "full";

/** Options of `conv1d` (PyTorch's defaults). */
export interface Conv1dOptions {
  /** Added per output channel: [outChannels] (default none). */
  bias?: Tensor | null;
  /** Step between outputs (default 1). */
  stride?: number;
  /** Zero padding (default 0); see `Conv1dPadding`. */
  padding?: Conv1dPadding;
  /** Spacing between kernel taps (default 1). */
  dilation?: number;
  /** Channel groups (default 1); the weight is [outChannels, inChannels / groups, k]. */
  groups?: number;
}

/**
 * 1-D convolution of x [N, C, L] with weight [O, C / groups, K] (+ `bias` [O]) into
 * [N, O, L'], like `torch.nn.functional.conv1d`. Differentiable in all three.
 */
export function conv1d(x: Tensor, weight: Tensor, options: Conv1dOptions = {}): Tensor {
  const groups = options.groups ?? 1;
  const bias = options.bias ?? undefined;
  if (x.rank === 3 && weight.rank === 3) checkGroups("conv1d", groups, x.shape[1], weight.shape[0]);
  if (x.rank !== 3 || weight.rank !== 3 || x.shape[1] !== weight.shape[1] * groups) {
    throw new Error(
      `conv1d: input ${formatShape(x.shape)} does not fit weight ${formatShape(weight.shape)} ` +
        `(needs input [N, ${
          weight.rank === 3 ? weight.shape[1] * groups : "C"
        }, L] for weight [O, C / groups, K]` + (groups === 1 ? ")" : `, groups ${groups})`),
    );
  }
  checkConvTensors("conv1d", x, weight, bias, weight.shape[0]);
  for (const name of ["stride", "dilation"] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== "number") {
      throw new Error(`conv1d: ${name} must be a number, got ${JSON.stringify(value)}`);
    }
  }
  const stride = sizePair("conv1d", "stride", [1, options.stride ?? 1], 1);
  const dilation = sizePair("conv1d", "dilation", [1, options.dilation ?? 1], 1);
  const padding = options.padding ?? 0;
  const [, , left, right] = resolvePadding(
    "conv1d",
    typeof padding === "number" ? [0, padding] : padding,
    [1, weight.shape[2]],
    dilation,
    stride,
  );
  const [batch, channels, length] = x.shape;
  const [outChannels, perGroup, kernel] = weight.shape;
  const shape = convShape("conv1d", [batch, channels, 1, length], [
    outChannels,
    perGroup,
    1,
    kernel,
  ], {
    stride,
    padding: [0, 0, left, right],
    dilation,
    groups,
  });
  // The kernels read buffers only, so the 3-D tensors serve as height-1 images.
  const out = reshaped(convForward(x, weight, bias, shape), [batch, outChannels, shape.outWidth]);
  return recordConv("conv1d", out, x, weight, bias, shape);
}
