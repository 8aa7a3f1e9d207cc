/**
 * 2-D convolution (NCHW, any kernel size, stride, zero padding, dilation and groups) with
 * gradients for input, weight and bias, as `torch.nn.functional.conv2d`.
 *
 * One stride, the same padding on every side, no dilation and one group take the specialised
 * kernels below; everything else takes the general kernels of `conv_general.ts`.
 *
 * - Forward (`conv2d_forward.ts`): each lane computes a block of output rows x pixels x
 *   channels, picked by a cost model of llvmpipe, reading the input as a texture and the weights
 *   from a uniform buffer when they fit in one (64 KiB).
 * - The input gradient is the same kernel run on the output gradient with the weights read
 *   flipped and transposed (not copied), padded virtually for stride 1; a larger stride first
 *   spreads the gradient out with zeros ("dilation").
 * - The weight and bias gradients (`conv2d_weight_grad.ts`) are split over chunks of the batch,
 *   then summed over the chunks.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { kernelPolicy } from "../gpu/policy.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { runForward, runForwardWithStatistics } from "./conv2d_forward.ts";
import { transposedInputGrad, transposedInputGradApplies } from "./conv2d_input_grad.ts";
import { type ConvShape, convShapeKey } from "./conv2d_shape.ts";
import { weightAndBiasGrad } from "./conv2d_weight_grad.ts";
import type { Size2d } from "./pool_geometry.ts";
import {
  type GeneralConvShape,
  generalForward,
  generalForwardLanes,
  generalInputGrad,
  generalWeightGrad,
} from "./conv_general.ts";

/**
 * Spreads the output gradient out for a strided input gradient: [N, O, H + KH - 1, W + KW - 1],
 * each gradient value at its strided position (offset by the padding left over), zeros between.
 */
const CONV2D_DILATE: KernelSpec<ConvShape> = {
  name: "conv2d_dilate",
  key: convShapeKey,
  bindings: () => [{ name: "g", role: "read" }, { name: "out", role: "write" }],
  plan: (shape, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(dilatedSize(shape) / policy.elementwiseWorkgroup),
  }),
  body: (shape, { plan }) => {
    const { stride: S, outHeight: OH, outWidth: OW } = shape;
    const { height, width } = dilatedPlane(shape);
    const offsetY = shape.kernelHeight - 1 - shape.padding;
    const offsetX = shape.kernelWidth - 1 - shape.padding;
    return /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i >= ${u32(dilatedSize(shape))}) { return; }
  let x = i32(i % ${u32(width)}) - ${offsetX};
  let y = i32((i / ${u32(width)}) % ${u32(height)}) - ${offsetY};
  let plane = i / ${u32(width * height)};
  let inside = x >= 0 && y >= 0 && x % ${S} == 0 && y % ${S} == 0 && x / ${S} < ${OW} && y / ${S} < ${OH};
  let source = plane * ${u32(OH * OW)} + u32(clamp(y / ${S}, 0, ${OH - 1})) * ${
      u32(OW)
    } + u32(clamp(x / ${S}, 0, ${OW - 1}));
  out[i] = select(0.0, g[source], inside);`;
  },
};

/** Height and width of the dilated gradient. */
function dilatedPlane(shape: ConvShape): { height: number; width: number } {
  return {
    height: shape.height + shape.kernelHeight - 1,
    width: shape.width + shape.kernelWidth - 1,
  };
}

function dilatedSize(shape: ConvShape): number {
  const { height, width } = dilatedPlane(shape);
  return shape.batch * shape.outChannels * height * width;
}

function dilateForInputGrad(
  grad: Tensor,
  shape: ConvShape,
): { tensor: Tensor; height: number; width: number; padding: number } {
  const { height, width } = dilatedPlane(shape);
  const out = Tensor.empty([shape.batch, shape.outChannels, height, width]);
  runKernel(CONV2D_DILATE, shape, { g: grad, out });
  return { tensor: out, height, width, padding: 0 };
}

function inputGrad(grad: Tensor, weight: Tensor, shape: ConvShape): Tensor {
  const {
    batch,
    inChannels: C,
    outChannels: O,
    height: H,
    width: W,
    kernelHeight: KH,
    kernelWidth: KW,
  } = shape;
  if (transposedInputGradApplies(shape)) return transposedInputGrad(grad, weight, shape);
  if (shape.stride === 1 && shape.padding <= KH - 1 && shape.padding <= KW - 1 && KH === KW) {
    // Stride 1: a "full" convolution of the gradient, padding it virtually.
    const padding = KH - 1 - shape.padding;
    return runForward(grad, weight, undefined, {
      batch,
      inChannels: O,
      outChannels: C,
      height: shape.outHeight,
      width: shape.outWidth,
      kernelHeight: KH,
      kernelWidth: KW,
      stride: 1,
      padding,
      outHeight: H,
      outWidth: W,
    }, "flipped_iohw");
  }
  const dilated = dilateForInputGrad(grad, shape);
  const result = runForward(dilated.tensor, weight, undefined, {
    batch,
    inChannels: O,
    outChannels: C,
    height: dilated.height,
    width: dilated.width,
    kernelHeight: KH,
    kernelWidth: KW,
    stride: 1,
    padding: 0,
    outHeight: H,
    outWidth: W,
  }, "flipped_iohw");
  dilated.tensor.dispose();
  return result;
}

export type { Size2d } from "./pool_geometry.ts";

/**
 * Zero padding of `conv2d`: a number of rows and columns on every side, `[height, width]`, or
 * `"valid"` (none), `"same"` (the output as large as the input; stride 1 only; an odd total
 * puts the extra row and column at the bottom and right, as PyTorch), or `"full"`
 * (`dilation · (kernel − 1)` on every side: every partial overlap).
 */
export type Conv2dPadding = Size2d | "valid" | "same" | "full";

/** Options of `conv2d` (PyTorch's defaults). */
export interface Conv2dOptions {
  /** Added per output channel: [outChannels] (default none). */
  bias?: Tensor | null;
  /** Step between output pixels: one for both dimensions or [height, width] (default 1). */
  stride?: Size2d;
  /** Zero padding (default 0); see `Conv2dPadding`. */
  padding?: Conv2dPadding;
  /** Spacing between kernel taps: one for both dimensions or [height, width] (default 1). */
  dilation?: Size2d;
  /**
   * Channel groups (default 1): input and output channels are split into this many groups,
   * each convolved with its own; `groups = inChannels` is a depthwise convolution. Both channel
   * counts must be multiples of it; the weight is [outChannels, inChannels / groups, kH, kW].
   */
  groups?: number;
}

/** `value` as [height, width], checked: integers of at least `min`. */
export function sizePair(op: string, name: string, value: Size2d, min: number): [number, number] {
  const pair: [number, number] = typeof value === "number" ? [value, value] : [value[0], value[1]];
  const valid = (typeof value === "number" || value.length === 2) &&
    pair.every((v) => Number.isInteger(v) && v >= min);
  if (!valid) {
    throw new Error(
      `${op}: ${name} must be an integer >= ${min} or a pair [height, width] of them, got ${
        JSON.stringify(value)
      }`,
    );
  }
  return pair;
}

/** The padding [top, bottom, left, right] that `padding` means for this kernel. */
export function resolvePadding(
  op: string,
  padding: Conv2dPadding,
  kernel: readonly [number, number],
  dilation: readonly [number, number],
  stride: readonly [number, number],
): [number, number, number, number] {
  if (typeof padding === "string") {
    const spans = [0, 1].map((d) => dilation[d] * (kernel[d] - 1));
    if (padding === "valid") return [0, 0, 0, 0];
    if (padding === "full") return [spans[0], spans[0], spans[1], spans[1]];
    if (padding === "same") {
      if (stride[0] !== 1 || stride[1] !== 1) {
        throw new Error(
          `${op}: padding "same" needs stride 1 (got stride [${stride.join(", ")}]), as in PyTorch`,
        );
      }
      const [top, left] = spans.map((span) => Math.floor(span / 2));
      return [top, spans[0] - top, left, spans[1] - left];
    }
    throw new Error(
      `${op}: padding must be a number, [height, width], "valid", "same" or "full", got "${padding}"`,
    );
  }
  const [h, w] = sizePair(op, "padding", padding, 0);
  return [h, h, w, w];
}

/** Everything a convolution needs besides its tensors, resolved. */
export interface ConvParameters {
  /** [height, width]. */
  stride: [number, number];
  /** [top, bottom, left, right]. */
  padding: [number, number, number, number];
  /** [height, width]. */
  dilation: [number, number];
  /** Channel groups. */
  groups: number;
}

/** Checks `groups` against both channel counts. */
export function checkGroups(
  op: string,
  groups: number,
  inChannels: number,
  outChannels: number,
): void {
  if (!Number.isInteger(groups) || groups < 1) {
    throw new Error(`${op}: groups must be an integer >= 1, got ${groups}`);
  }
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new Error(
      `${op}: groups ${groups} must divide both the input channels (${inChannels}) and the ` +
        `output channels (${outChannels})`,
    );
  }
}

/** The shape of the convolution of x [N, C, H, W] by weight [O, C / G, KH, KW], checked. */
export function convShape(
  op: string,
  xShape: readonly number[],
  weightShape: readonly number[],
  p: ConvParameters,
): GeneralConvShape {
  const [batch, inChannels, height, width] = xShape;
  const [outChannels, , kernelHeight, kernelWidth] = weightShape;
  const [strideHeight, strideWidth] = p.stride;
  const [dilationHeight, dilationWidth] = p.dilation;
  const [top, bottom, left, right] = p.padding;
  const outHeight =
    Math.floor((height + top + bottom - dilationHeight * (kernelHeight - 1) - 1) / strideHeight) +
    1;
  const outWidth =
    Math.floor((width + left + right - dilationWidth * (kernelWidth - 1) - 1) / strideWidth) + 1;
  if (outHeight < 1 || outWidth < 1) {
    throw new Error(
      `${op}: the ${kernelHeight}x${kernelWidth} kernel does not fit the ${height}x${width} input ` +
        `with dilation [${p.dilation.join(", ")}] and padding [${p.padding.join(", ")}] ` +
        `(top, bottom, left, right)`,
    );
  }
  return {
    batch,
    inChannels,
    outChannels,
    groups: p.groups,
    height,
    width,
    kernelHeight,
    kernelWidth,
    strideHeight,
    strideWidth,
    padTop: top,
    padLeft: left,
    dilationHeight,
    dilationWidth,
    outHeight,
    outWidth,
  };
}

/**
 * The shape for the specialised kernels, when `shape` is one they cover: one group, no
 * dilation, one stride and the same padding on every side (the bottom and right padding as
 * implied by the output size); else null.
 */
export function specialisedShape(shape: GeneralConvShape): ConvShape | null {
  const { strideHeight: S, padTop: P, height: H, width: W } = shape;
  const { kernelHeight: KH, kernelWidth: KW } = shape;
  const simple = shape.groups === 1 && shape.dilationHeight === 1 && shape.dilationWidth === 1 &&
    shape.strideWidth === S && shape.padLeft === P &&
    shape.outHeight === Math.floor((H + 2 * P - KH) / S) + 1 &&
    shape.outWidth === Math.floor((W + 2 * P - KW) / S) + 1;
  if (!simple) return null;
  return {
    batch: shape.batch,
    inChannels: shape.inChannels,
    outChannels: shape.outChannels,
    height: H,
    width: W,
    kernelHeight: KH,
    kernelWidth: KW,
    stride: S,
    padding: P,
    outHeight: shape.outHeight,
    outWidth: shape.outWidth,
  };
}

/** The convolution's output [N, O, OH, OW] (only the buffers of x and weight are read). */
export function convForward(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: GeneralConvShape,
): Tensor {
  const simple = specialisedShape(shape);
  return simple && generalForwardLanes(shape) < kernelPolicy().generalConvLanes
    ? runForward(x, weight, bias, simple, "oihw")
    : generalForward(x, weight, bias, shape);
}

/**
 * `convForward` that also writes the output's per-channel partial statistics (for batch norm:
 * see `runForwardWithStatistics`), where `convForward` takes the specialised kernel; else null.
 */
export function convForwardWithStatistics(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: GeneralConvShape,
): { out: Tensor; partials: Tensor; perChannel: number } | null {
  const simple = specialisedShape(shape);
  if (!simple || generalForwardLanes(shape) >= kernelPolicy().generalConvLanes) return null;
  return runForwardWithStatistics(x, weight, bias, simple);
}

/** The convolution's input gradient [N, C, H, W] from the output gradient. */
export function convInputGrad(grad: Tensor, weight: Tensor, shape: GeneralConvShape): Tensor {
  const simple = specialisedShape(shape);
  return simple
    ? inputGrad(grad, weight, simple)
    : generalInputGrad(grad, weight, undefined, shape);
}

/** The convolution's weight gradient (and bias gradient when `withBias`). */
export function convWeightGrad(
  grad: Tensor,
  x: Tensor,
  shape: GeneralConvShape,
  withBias: boolean,
): [Tensor, Tensor | null] {
  const simple = specialisedShape(shape);
  return simple
    ? weightAndBiasGrad(grad, x, simple, { withBias })
    : generalWeightGrad(grad, x, shape, withBias);
}

/** Checks the dtypes, sizes and bias of a convolution's tensors. */
export function checkConvTensors(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  biasSize: number,
): void {
  if (x.dtype !== "f32" || weight.dtype !== "f32" || (bias && bias.dtype !== "f32")) {
    throw new Error(
      `${op}: needs f32 tensors, got input ${x.dtype}, weight ${weight.dtype}` +
        (bias ? `, bias ${bias.dtype}` : ""),
    );
  }
  if (x.size === 0 || weight.size === 0) {
    throw new Error(
      `${op}: empty tensors are not supported (input ${formatShape(x.shape)}, weight ` +
        `${formatShape(weight.shape)}): every dimension must be at least 1`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== biasSize)) {
    throw new Error(
      `${op}: bias ${formatShape(bias.shape)} does not fit weight ${
        formatShape(weight.shape)
      } (needs [${biasSize}])`,
    );
  }
}

/**
 * Records the convolution x * weight (+ bias) of `shape`: `out` is its output, already computed
 * (conv1d passes a 3-D view); gradients come back in the shapes of x and weight (views where
 * those are 3-D).
 */
export function recordConv(
  op: string,
  out: Tensor,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: GeneralConvShape,
): Tensor {
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return recordOp(op, out, inputs, (grad) => convBackward(grad, x, weight, bias, shape));
}

/**
 * The gradients [dx, dweight, dbias] of the convolution x * weight (+ bias) of `shape` from its
 * output gradient; only those the inputs require (null for the others, and no dbias without a
 * bias), in the ranks of x and weight.
 */
export function convBackward(
  grad: Tensor,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: GeneralConvShape,
): (Tensor | null)[] {
  const needWeights = weight.requiresGrad || !!bias?.requiresGrad;
  let [weightGrad, biasGrad]: [Tensor | null, Tensor | null] = needWeights
    ? convWeightGrad(grad, x, shape, !!bias)
    : [null, null];
  let inputGrad = x.requiresGrad ? convInputGrad(grad, weight, shape) : null;
  if (inputGrad && inputGrad.rank !== x.rank) inputGrad = reshaped(inputGrad, x.shape);
  if (weightGrad && weightGrad.rank !== weight.rank) {
    weightGrad = reshaped(weightGrad, weight.shape);
  }
  biasGrad = bias?.requiresGrad ? biasGrad : (biasGrad?.dispose(), null);
  const grads = [inputGrad, weight.requiresGrad ? weightGrad : (weightGrad?.dispose(), null)];
  return bias ? [...grads, biasGrad] : grads;
}

/** A view of `t` with `shape`, `t` itself disposed (the view keeps its buffer). */
export function reshaped(t: Tensor, shape: readonly number[]): Tensor {
  const out = t.view(shape);
  t.dispose();
  return out;
}

/**
 * 2-D convolution of x [N, C, H, W] with weight [O, C / groups, KH, KW] (+ `bias` [O]), like
 * `torch.nn.functional.conv2d`: stride, padding (numbers, pairs, `"valid"`, `"same"`,
 * `"full"`), dilation and groups as options. Differentiable in all three; only the needed
 * gradients are computed.
 *
 * @example a depthwise 3x3 convolution keeping the size
 * ```ts ignore
 * const y = conv2d(x, w, { padding: "same", groups: 8 }); // x [N, 8, H, W], w [8, 1, 3, 3]
 * ```
 */
export function conv2d(x: Tensor, weight: Tensor, options?: Conv2dOptions): Tensor;
/**
 * The older form, `conv2d(x, weight, bias, options)`: the bias as the third argument (undefined
 * or null for none).
 */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  options?: Conv2dOptions,
): Tensor;
export function conv2d(
  x: Tensor,
  weight: Tensor,
  biasOrOptions?: Tensor | Conv2dOptions | null,
  maybeOptions: Conv2dOptions = {},
): Tensor {
  const legacy = biasOrOptions === undefined || biasOrOptions === null ||
    biasOrOptions instanceof Tensor;
  const options = legacy ? maybeOptions : biasOrOptions as Conv2dOptions;
  const bias = (legacy ? biasOrOptions as Tensor | null | undefined : undefined) ??
    options.bias ?? undefined;
  const shape = conv2dShape("conv2d", x, weight, bias, options);
  const out = convForward(x, weight, bias, shape);
  return recordConv("conv2d", out, x, weight, bias, shape);
}

/** The checked shape of `op`'s convolution x * weight (+ bias) with `options` (as `conv2d`'s). */
export function conv2dShape(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  options: Conv2dOptions,
): GeneralConvShape {
  const groups = options.groups ?? 1;
  if (x.rank === 4 && weight.rank === 4) checkGroups(op, groups, x.shape[1], weight.shape[0]);
  if (x.rank !== 4 || weight.rank !== 4 || x.shape[1] !== weight.shape[1] * groups) {
    throw new Error(
      `${op}: input ${formatShape(x.shape)} does not fit weight ${formatShape(weight.shape)} ` +
        `(needs input [N, ${
          weight.rank === 4 ? weight.shape[1] * groups : "C"
        }, H, W] for weight [O, C / groups, KH, KW]` + (groups === 1 ? ")" : `, groups ${groups})`),
    );
  }
  checkConvTensors(op, x, weight, bias, weight.shape[0]);
  const stride = sizePair(op, "stride", options.stride ?? 1, 1);
  const dilation = sizePair(op, "dilation", options.dilation ?? 1, 1);
  const kernel: [number, number] = [weight.shape[2], weight.shape[3]];
  const padding = resolvePadding(op, options.padding ?? 0, kernel, dilation, stride);
  return convShape(op, x.shape, weight.shape, { stride, padding, dilation, groups });
}
