/**
 * CPU reference (float64) of average pooling (`avgPool2d`, `adaptiveAvgPool2d`) and channel
 * dropout (`dropout2d`), forward and backward, written from PyTorch's CPU kernels
 * (`AvgPoolKernel.cpp`, `AdaptiveAveragePooling.cpp`, `Dropout.cpp`).
 *
 * @module
 */

import { hw, poolOutputSize } from "./max_pool.ts";

/** Window geometry of an average pool (defaulted as in `avgPool2d`). */
export interface AvgPoolReferenceOptions {
  /** Window height and width (number or [h, w]). */
  kernelSize: number | readonly [number, number];
  /** Step; default the kernel size. */
  stride?: number | readonly [number, number];
  /** Zero border; default 0. */
  padding?: number | readonly [number, number];
  /** Ceil mode; default false. */
  ceilMode?: boolean;
  /** Whether padding counts in the divisor; default true. */
  countIncludePad?: boolean;
  /** A fixed divisor. */
  divisorOverride?: number;
}

/** One window: input rows [h0, h1), columns [w0, w1), and its divisor. */
interface Window {
  h0: number;
  h1: number;
  w0: number;
  w1: number;
  divisor: number;
}

/** A pool's output shape and its windows, row-major over one plane. */
interface Windows {
  shape: number[];
  windows: Window[];
}

function avgWindows(shape: readonly number[], options: AvgPoolReferenceOptions): Windows {
  const [n, c, height, width] = shape;
  const [kh, kw] = hw(options.kernelSize);
  const [sh, sw] = hw(options.stride ?? options.kernelSize);
  const [ph, pw] = hw(options.padding ?? 0);
  const ceil = options.ceilMode ?? false;
  const outH = poolOutputSize(height, kh, sh, ph, 1, ceil);
  const outW = poolOutputSize(width, kw, sw, pw, 1, ceil);
  const windows: Window[] = [];
  for (let oh = 0; oh < outH; oh++) {
    for (let ow = 0; ow < outW; ow++) {
      let h0 = oh * sh - ph, w0 = ow * sw - pw;
      let h1 = Math.min(h0 + kh, height + ph), w1 = Math.min(w0 + kw, width + pw);
      const padded = (h1 - h0) * (w1 - w0);
      h0 = Math.max(h0, 0);
      w0 = Math.max(w0, 0);
      h1 = Math.min(h1, height);
      w1 = Math.min(w1, width);
      const divisor = options.divisorOverride ??
        ((options.countIncludePad ?? true) ? padded : (h1 - h0) * (w1 - w0));
      windows.push({ h0, h1, w0, w1, divisor });
    }
  }
  return { shape: [n, c, outH, outW], windows };
}

function adaptiveWindows(shape: readonly number[], outputSize: readonly number[]): Windows {
  const [n, c, height, width] = shape;
  const [outH, outW] = outputSize;
  const windows: Window[] = [];
  for (let oh = 0; oh < outH; oh++) {
    const h0 = Math.floor(oh * height / outH), h1 = Math.ceil((oh + 1) * height / outH);
    for (let ow = 0; ow < outW; ow++) {
      const w0 = Math.floor(ow * width / outW), w1 = Math.ceil((ow + 1) * width / outW);
      windows.push({ h0, h1, w0, w1, divisor: (h1 - h0) * (w1 - w0) });
    }
  }
  return { shape: [n, c, outH, outW], windows };
}

function forward(x: ArrayLike<number>, shape: readonly number[], w: Windows): Float64Array {
  const [n, c, height, width] = shape;
  const out = new Float64Array(n * c * w.windows.length);
  for (let plane = 0; plane < n * c; plane++) {
    for (const [k, win] of w.windows.entries()) {
      let sum = 0;
      for (let h = win.h0; h < win.h1; h++) {
        for (let col = win.w0; col < win.w1; col++) sum += x[(plane * height + h) * width + col];
      }
      out[plane * w.windows.length + k] = sum / win.divisor;
    }
  }
  return out;
}

function backward(grad: ArrayLike<number>, shape: readonly number[], w: Windows): Float64Array {
  const [n, c, height, width] = shape;
  const dx = new Float64Array(n * c * height * width);
  for (let plane = 0; plane < n * c; plane++) {
    for (const [k, win] of w.windows.entries()) {
      const g = grad[plane * w.windows.length + k] / win.divisor;
      for (let h = win.h0; h < win.h1; h++) {
        for (let col = win.w0; col < win.w1; col++) dx[(plane * height + h) * width + col] += g;
      }
    }
  }
  return dx;
}

/** Average pooling of x [N, C, H, W]: the output and its shape. */
export function avgPool2dReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  options: AvgPoolReferenceOptions,
): { output: Float64Array; shape: number[] } {
  const w = avgWindows(shape, options);
  return { output: forward(x, shape, w), shape: w.shape };
}

/** The gradient of `avgPool2dReference` given the output's gradient. */
export function avgPool2dBackwardReference(
  grad: ArrayLike<number>,
  shape: readonly number[],
  options: AvgPoolReferenceOptions,
): Float64Array {
  return backward(grad, shape, avgWindows(shape, options));
}

/** Adaptive average pooling of x [N, C, H, W] to `outputSize` [oh, ow]. */
export function adaptiveAvgPool2dReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  outputSize: readonly [number, number],
): { output: Float64Array; shape: number[] } {
  const w = adaptiveWindows(shape, outputSize);
  return { output: forward(x, shape, w), shape: w.shape };
}

/** The gradient of `adaptiveAvgPool2dReference`. */
export function adaptiveAvgPool2dBackwardReference(
  grad: ArrayLike<number>,
  shape: readonly number[],
  outputSize: readonly [number, number],
): Float64Array {
  return backward(grad, shape, adaptiveWindows(shape, outputSize));
}

/**
 * Channel dropout: x * keep[plane] / (1 - p), a plane being everything past the first two
 * dimensions (`planeSize` elements); NaN stays NaN where dropped (NaN * 0).
 */
export function dropout2dReference(
  x: ArrayLike<number>,
  keep: ArrayLike<number>,
  planeSize: number,
  p: number,
): Float64Array {
  if (p >= 1) return new Float64Array(x.length);
  return Float64Array.from(
    x,
    (v, i) => v * (keep[Math.floor(i / planeSize)] ? 1 / (1 - p) : 0),
  );
}
