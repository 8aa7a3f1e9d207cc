/**
 * Window geometry shared by the pooling ops (`maxPool2d`, `avgPool2d`): options given as a number
 * or an [h, w] pair, their checks (with PyTorch's rules and the op's name in every message), and
 * PyTorch's output size, ceil mode included.
 *
 * @module
 */

import { formatShape, type Tensor } from "../tensor.ts";

/** A size along both spatial axes (`n` for [n, n]), or [height, width]. */
export type Size2d = number | readonly [number, number];

/** One spatial axis of a pooling window: sizes, and the window's step, border and spacing. */
export interface PoolAxis {
  /** Input size along the axis. */
  size: number;
  /** Output size along the axis. */
  out: number;
  /** Window length. */
  kernel: number;
  /** Step between windows. */
  stride: number;
  /** Implicit border on each side. */
  padding: number;
  /** Spacing between window elements (1: adjacent). */
  dilation: number;
}

/** `value` as [h, w], checked to be integers >= `min`; errors name `op` and `name`. */
export function pair2d(op: string, name: string, value: Size2d, min: number): [number, number] {
  const values = typeof value === "number" ? [value, value] : value;
  if (!Array.isArray(values) || values.length !== 2) {
    throw new Error(`${op}: ${name} must be a number or [h, w], got ${JSON.stringify(value)}`);
  }
  for (const v of values) {
    if (!Number.isInteger(v) || v < min) {
      throw new Error(`${op}: ${name} must be integers >= ${min}, got ${JSON.stringify(value)}`);
    }
  }
  return [values[0], values[1]];
}

/**
 * PyTorch's pooled size: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1, or
 * with `ceilMode` the ceiling, less one when the last window would start past the input and its
 * left border.
 */
export function pooledSize(
  size: number,
  kernel: number,
  stride: number,
  padding: number,
  dilation: number,
  ceilMode: boolean,
): number {
  const span = size + 2 * padding - dilation * (kernel - 1) - 1;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padding) out--;
  return out;
}

/** The options of a windowed pool, before defaults. */
export interface WindowOptions {
  /** Window size. */
  kernelSize: Size2d;
  /** Step; default the kernel size. */
  stride?: Size2d;
  /** Border; default 0. */
  padding?: Size2d;
  /** Spacing; default 1. */
  dilation?: Size2d;
  /** Ceiling instead of floor in the output size; default false. */
  ceilMode?: boolean;
}

/**
 * Checks x (an f32 [N, C, H, W]) and the window options as PyTorch does (padding at most half
 * the kernel, at least one output) and returns the two axes; errors name `op`.
 */
export function poolAxes(op: string, x: Tensor, options: WindowOptions): [PoolAxis, PoolAxis] {
  if (x.rank !== 4) {
    throw new Error(
      `${op}: needs x of shape [N, C, H, W] (rank 4), got ${formatShape(x.shape)} (rank ${x.rank})`,
    );
  }
  if (x.dtype !== "f32") throw new Error(`${op}: needs an f32 tensor, got ${x.dtype}`);
  if (x.size === 0) {
    throw new Error(
      `${op}: empty tensors are not supported (input ${formatShape(x.shape)}): every ` +
        "dimension must be at least 1",
    );
  }
  if (options.kernelSize === undefined) throw new Error(`${op}: kernelSize is required`);
  const kernel = pair2d(op, "kernelSize", options.kernelSize, 1);
  const stride = pair2d(op, "stride", options.stride ?? kernel, 1);
  const padding = pair2d(op, "padding", options.padding ?? 0, 0);
  const dilation = pair2d(op, "dilation", options.dilation ?? 1, 1);
  const ceilMode = !!options.ceilMode;
  const axes = [0, 1].map((a): PoolAxis => {
    if (2 * padding[a] > kernel[a]) {
      throw new Error(
        `${op}: padding ${padding[a]} must be at most half the kernel size ${kernel[a]} ` +
          `(padding ${JSON.stringify(options.padding)}, kernelSize ${
            JSON.stringify(options.kernelSize)
          })`,
      );
    }
    const size = x.shape[2 + a];
    const out = pooledSize(size, kernel[a], stride[a], padding[a], dilation[a], ceilMode);
    if (out < 1) {
      throw new Error(
        `${op}: a ${kernel.join("x")} window (padding ${padding.join(", ")}, dilation ` +
          `${dilation.join(", ")}) does not fit x of shape ${formatShape(x.shape)}`,
      );
    }
    return {
      size,
      out,
      kernel: kernel[a],
      stride: stride[a],
      padding: padding[a],
      dilation: dilation[a],
    };
  });
  return [axes[0], axes[1]];
}
