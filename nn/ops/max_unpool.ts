/**
 * `maxUnpool2d`, PyTorch's `max_unpool2d`: the partial inverse of max pooling, which puts each
 * value back at the position its index names inside its plane and zeros elsewhere.
 *
 * The forward scatters (one invocation per input element, into a zeroed output); positions
 * named twice (overlapping windows) keep one of the values, unspecified which, as on PyTorch's
 * GPU. The backward is the matching gather (`gather` of the output gradient at the indices).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, type Tensor, zeros } from "../tensor.ts";
import { tidy } from "../scope.ts";
import { gather } from "./indexing.ts";
import { pair2d, type Size2d } from "./pool_geometry.ts";

/** Options of `maxUnpool2d` (PyTorch's `max_unpool2d`, camelCase). */
export interface MaxUnpoolOptions {
  /** The pooling's window (number or [h, w]): with `stride` and `padding`, the output size. */
  kernelSize: Size2d;
  /** The pooling's step between windows (number or [h, w]); default `kernelSize`. */
  stride?: Size2d;
  /** The pooling's border (number or [h, w]); default 0. */
  padding?: Size2d;
  /**
   * The output's height and width, `[h, w]` (or a full `[N, C, h, w]`): needed where the
   * pooling rounded its output size down. Default: (in - 1) * stride - 2 * padding + kernel.
   */
  outputSize?: readonly number[];
}

interface ScatterOptions {
  size: number;
  inPlane: number;
  outPlane: number;
}

/** Invocation i writes x[i] at index[i] of its plane of the (zeroed) output. */
const UNPOOL_SCATTER: KernelSpec<ScatterOptions> = {
  name: "max_unpool",
  key: ({ size, inPlane, outPlane }) => `${size}_${inPlane}_${outPlane}`,
  bindings: () => [
    { name: "x", role: "input", readOnce: true },
    { name: "index", role: "read", type: "i32" },
    { name: "out", role: "write" },
  ],
  plan: ({ size }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(size / policy.elementwiseWorkgroup),
  }),
  body: ({ size, inPlane, outPlane }, { plan }) => /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(size)}) {
    let at = index[i];
    if (at >= 0 && at < ${outPlane}) {
      out[i / ${u32(inPlane)} * ${u32(outPlane)} + u32(at)] = xAt(i);
    }
  }`,
};

function outputPlaneSize(x: Tensor, options: MaxUnpoolOptions): [number, number] {
  const op = "maxUnpool2d";
  const kernel = pair2d(op, "kernelSize", options.kernelSize, 1);
  const stride = pair2d(op, "stride", options.stride ?? options.kernelSize, 1);
  const padding = pair2d(op, "padding", options.padding ?? 0, 0);
  const [h, w] = [0, 1].map((a) => (x.shape[2 + a] - 1) * stride[a] - 2 * padding[a] + kernel[a]);
  const given = options.outputSize;
  if (given === undefined) {
    if (h < 1 || w < 1) {
      throw new Error(
        `maxUnpool2d: input ${formatShape(x.shape)} with kernelSize ${kernel}, stride ${stride} ` +
          `and padding ${padding} gives an empty output; pass outputSize`,
      );
    }
    return [h, w];
  }
  const size = Array.isArray(given) && given.length === 4 ? given.slice(2) : given;
  if (
    !Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v > 0)
  ) {
    throw new Error(
      `maxUnpool2d: outputSize must be [h, w] or [N, C, h, w] of positive integers, got ` +
        JSON.stringify(given),
    );
  }
  // PyTorch's range: within one stride of the default size.
  for (const [a, name] of [[0, "height"], [1, "width"]] as const) {
    const low = [h, w][a] - stride[a], high = [h, w][a] + stride[a];
    if (!(size[a] > low && size[a] < high)) {
      throw new Error(
        `maxUnpool2d: output ${name} ${size[a]} must lie between ${Math.max(1, low + 1)} and ` +
          `${high - 1} for input ${formatShape(x.shape)}, kernelSize ${kernel}, stride ${stride} ` +
          `and padding ${padding}`,
      );
    }
  }
  return [size[0], size[1]];
}

/**
 * Max unpooling, as PyTorch's `max_unpool2d`: x [N, C, H, W] and `indices` (i32, x's shape,
 * positions h * W + w inside each output plane, as `maxPool2dWithIndices` gives) make an output
 * [N, C, outH, outW] of zeros holding each value of x at its index. The output size is
 * (H - 1) * stride - 2 * padding + kernelSize unless `outputSize` says otherwise. An index
 * outside the plane is skipped (PyTorch throws; checking it would need a readback); a position
 * named twice keeps one of its values. Differentiable in x: each element gets the output
 * gradient at its index.
 *
 * @example The maxima of each 2×2 window back in place
 * ```ts ignore
 * const [y, indices] = maxPool2dWithIndices(x, { kernelSize: 2 });
 * const restored = maxUnpool2d(y, indices, { kernelSize: 2 }); // x's shape, zeros off the maxima
 * ```
 */
export function maxUnpool2d(x: Tensor, indices: Tensor, options: MaxUnpoolOptions): Tensor {
  if (x.rank !== 4 || x.dtype !== "f32") {
    throw new Error(
      `maxUnpool2d: x must be an f32 tensor [N, C, H, W], got ${formatShape(x.shape)} ${x.dtype}`,
    );
  }
  if (indices.dtype !== "i32" || formatShape(indices.shape) !== formatShape(x.shape)) {
    throw new Error(
      `maxUnpool2d: indices must be i32 of x's shape ${formatShape(x.shape)} (as ` +
        `maxPool2dWithIndices gives), got ${formatShape(indices.shape)} ${indices.dtype}`,
    );
  }
  const [n, c, h, w] = x.shape;
  const [outH, outW] = outputPlaneSize(x, options);
  const out = zeros([n, c, outH, outW]);
  if (x.size > 0) {
    runKernel(UNPOOL_SCATTER, { size: x.size, inPlane: h * w, outPlane: outH * outW }, {
      x,
      index: indices,
      out,
    });
  }
  // The graph holds its own view of the indices (freed with it), never the caller's tensor.
  const savedIndices = indices.view([n, c, h * w]);
  return recordOp(
    "maxUnpool2d",
    out,
    [x],
    (grad) => [tidy(() => gather(grad.view([n, c, outH * outW]), 2, savedIndices).view(x.shape))],
    [savedIndices],
  );
}
