/**
 * Convolution layer shapes beyond the study's (padding "same", dilation, depthwise), for the
 * bench to compare with TF.js webgpu.
 *
 * @module
 */

import type { Conv2dOptions } from "../nn/ops/conv2d.ts";

/** One convolution forward to time. */
export interface LayerCase {
  /** Short description. */
  name: string;
  /** Input [batch, channels, height, width]. */
  input: [number, number, number, number];
  /** Output channels. */
  outChannels: number;
  /** Kernel [height, width]. */
  kernel: [number, number];
  /** Stride, padding, dilation and groups (numbers or "same"/"valid"/"full" only). */
  options: Omit<Conv2dOptions, "bias">;
}

/** The rows: 3x3 "same", dilation 2 and depthwise 3x3 at [32, C, 32, 32]. */
export const LAYER_CASES: readonly LayerCase[] = [
  {
    name: 'conv2d 3x3 "same" [32,16,32,32] -> 32',
    input: [32, 16, 32, 32],
    outChannels: 32,
    kernel: [3, 3],
    options: { padding: "same" },
  },
  {
    name: 'conv2d 3x3 dilation 2 "same" [32,16,32,32] -> 32',
    input: [32, 16, 32, 32],
    outChannels: 32,
    kernel: [3, 3],
    options: { padding: "same", dilation: 2 },
  },
  {
    name: 'depthwise 3x3 "same" [32,32,32,32], groups 32',
    input: [32, 32, 32, 32],
    outChannels: 32,
    kernel: [3, 3],
    options: { padding: "same", groups: 32 },
  },
];

/** Floating-point operations of one forward (2 per multiply-add, over the real output size). */
export function layerCaseFlops(c: LayerCase): number {
  const [batch, channels, height, width] = c.input;
  const [kh, kw] = c.kernel;
  const pair = (v: number | readonly [number, number] | undefined) =>
    v === undefined ? [1, 1] : typeof v === "number" ? [v, v] : [v[0], v[1]];
  const [sh, sw] = pair(c.options.stride);
  const [dh, dw] = pair(c.options.dilation);
  const padding = c.options.padding ?? 0;
  const [ph, pw] = padding === "same"
    ? [dh * (kh - 1), dw * (kw - 1)]
    : padding === "valid"
    ? [0, 0]
    : padding === "full"
    ? [2 * dh * (kh - 1), 2 * dw * (kw - 1)]
    : pair(padding).map((p) => 2 * p);
  const outHeight = Math.floor((height + ph - dh * (kh - 1) - 1) / sh) + 1;
  const outWidth = Math.floor((width + pw - dw * (kw - 1) - 1) / sw) + 1;
  const groups = c.options.groups ?? 1;
  return 2 * batch * c.outChannels * outHeight * outWidth * (channels / groups) * kh * kw;
}
