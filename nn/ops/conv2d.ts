/**
 * 2-D convolution (NCHW, any kernel size, stride and zero padding) with gradients for input,
 * weight and bias.
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
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { runForward } from "./conv2d_forward.ts";
import { transposedInputGrad, transposedInputGradApplies } from "./conv2d_input_grad.ts";
import { type ConvShape, convShapeKey } from "./conv2d_shape.ts";
import { weightAndBiasGrad } from "./conv2d_weight_grad.ts";

/** Options of `conv2d`. */
export interface Conv2dOptions {
  /** Step between output pixels (default 1). */
  stride?: number;
  /** Zeros added on every side of the input (default 0). */
  padding?: number;
}

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

/**
 * 2-D convolution of x [N, C, H, W] with weight [O, C, KH, KW] (+ bias [O]), like
 * `torch.nn.functional.conv2d`. Differentiable in all three; only the needed gradients are
 * computed.
 */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  options: Conv2dOptions = {},
): Tensor {
  const stride = options.stride ?? 1, padding = options.padding ?? 0;
  if (x.rank !== 4 || weight.rank !== 4 || x.shape[1] !== weight.shape[1]) {
    throw new Error(
      `conv2d: input ${formatShape(x.shape)} does not fit weight ${formatShape(weight.shape)} ` +
        `(needs input [N, ${weight.shape[1] ?? "C"}, H, W] for weight [O, C, KH, KW])`,
    );
  }
  if (x.dtype !== "f32" || weight.dtype !== "f32") throw new Error("conv2d: needs f32 tensors");
  if (!Number.isInteger(stride) || stride < 1 || !Number.isInteger(padding) || padding < 0) {
    throw new Error(
      `conv2d: stride must be an integer >= 1 and padding >= 0 (got stride ${stride}, padding ${padding})`,
    );
  }
  if (x.size === 0 || weight.size === 0) {
    throw new Error(
      `conv2d: empty tensors are not supported (input ${formatShape(x.shape)}, weight ` +
        `${formatShape(weight.shape)}): every dimension must be at least 1`,
    );
  }
  const [batch, inChannels, height, width] = x.shape;
  const [outChannels, , kernelHeight, kernelWidth] = weight.shape;
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outChannels)) {
    throw new Error(
      `conv2d: bias ${formatShape(bias.shape)} does not fit weight ${
        formatShape(weight.shape)
      } (needs [${outChannels}])`,
    );
  }
  const outHeight = Math.floor((height + 2 * padding - kernelHeight) / stride) + 1;
  const outWidth = Math.floor((width + 2 * padding - kernelWidth) / stride) + 1;
  if (outHeight < 1 || outWidth < 1) {
    throw new Error(
      `conv2d: the ${kernelHeight}x${kernelWidth} kernel does not fit the ${height}x${width} input ` +
        `with padding ${padding}`,
    );
  }
  const shape: ConvShape = {
    batch,
    inChannels,
    outChannels,
    height,
    width,
    kernelHeight,
    kernelWidth,
    stride,
    padding,
    outHeight,
    outWidth,
  };
  const out = runForward(x, weight, bias, shape, "oihw");
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return recordOp("conv2d", out, inputs, (grad) => {
    const needWeights = weight.requiresGrad || !!bias?.requiresGrad;
    const [weightGrad, biasGrad] = needWeights
      ? weightAndBiasGrad(grad, x, shape, !!bias)
      : [null, null];
    return [x.requiresGrad ? inputGrad(grad, weight, shape) : null, weightGrad, biasGrad];
  });
}
