/**
 * CPU references (float64) of conv2d, forward and backward (NCHW, stride, zero padding).
 *
 * @module
 */

/** Sizes of a 2-D convolution. */
export interface Conv2dDims {
  /** Batch size. */
  batch: number;
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Kernel height. */
  kernelHeight: number;
  /** Kernel width. */
  kernelWidth: number;
  /** Stride (both directions). */
  stride: number;
  /** Zero padding (both directions). */
  padding: number;
}

/** Dims of a convolution of x [batch, inChannels, ...size] with [outChannels, inChannels, ...kernel]. */
export function dims(
  batch: number,
  inChannels: number,
  outChannels: number,
  size: [number, number],
  kernel: [number, number],
  stride = 1,
  padding = 0,
): Conv2dDims {
  return {
    batch,
    inChannels,
    outChannels,
    height: size[0],
    width: size[1],
    kernelHeight: kernel[0],
    kernelWidth: kernel[1],
    stride,
    padding,
  };
}

/** Dims of a square-kernel convolution: x [batch, inChannels, height, width], [outChannels, kernel]. */
export function squareConvDims(
  [batch, inChannels, height, width]: readonly number[],
  [outChannels, kernel]: readonly number[],
  stride = 1,
  padding = 0,
): Conv2dDims {
  return dims(batch, inChannels, outChannels, [height, width], [kernel, kernel], stride, padding);
}

/** Output height and width of a convolution. */
export function convOutputSize(dims: Conv2dDims): [number, number] {
  const { height, width, kernelHeight, kernelWidth, stride, padding } = dims;
  return [
    Math.floor((height + 2 * padding - kernelHeight) / stride) + 1,
    Math.floor((width + 2 * padding - kernelWidth) / stride) + 1,
  ];
}

/** Calls `visit(outIndex, inIndex, weightIndex, outChannel)` for every term of the convolution sum. */
function forEachTerm(
  dims: Conv2dDims,
  visit: (outIndex: number, inIndex: number, weightIndex: number, outChannel: number) => void,
): void {
  const { batch, inChannels: C, outChannels: O, height: H, width: W } = dims;
  const { kernelHeight: KH, kernelWidth: KW, stride, padding } = dims;
  const [OH, OW] = convOutputSize(dims);
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < O; o++) {
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          const outIndex = ((n * O + o) * OH + oy) * OW + ox;
          for (let c = 0; c < C; c++) {
            for (let ky = 0; ky < KH; ky++) {
              const iy = oy * stride + ky - padding;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < KW; kx++) {
                const ix = ox * stride + kx - padding;
                if (ix < 0 || ix >= W) continue;
                visit(
                  outIndex,
                  ((n * C + c) * H + iy) * W + ix,
                  ((o * C + c) * KH + ky) * KW + kx,
                  o,
                );
              }
            }
          }
        }
      }
    }
  }
}

/** out[n, o, oy, ox] = bias[o] + Σ x[n, c, oy·s+ky-p, ox·s+kx-p] · w[o, c, ky, kx]. */
export function conv2dReference(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  dims: Conv2dDims,
): Float64Array {
  const [OH, OW] = convOutputSize(dims);
  const out = new Float64Array(dims.batch * dims.outChannels * OH * OW);
  if (bias) {
    for (let i = 0; i < out.length; i++) {
      out[i] = bias[Math.floor(i / (OH * OW)) % dims.outChannels];
    }
  }
  forEachTerm(dims, (o, i, w) => out[o] += x[i] * weight[w]);
  return out;
}

/** Gradients of conv2d with respect to input, weight and bias, given the output's gradient. */
export function conv2dBackwardReference(
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  dims: Conv2dDims,
): { input: Float64Array; weight: Float64Array; bias: Float64Array } {
  const input = new Float64Array(x.length);
  const weightGrad = new Float64Array(weight.length);
  const bias = new Float64Array(dims.outChannels);
  const [OH, OW] = convOutputSize(dims);
  for (let i = 0; i < grad.length; i++) {
    bias[Math.floor(i / (OH * OW)) % dims.outChannels] += grad[i];
  }
  forEachTerm(dims, (o, i, w) => {
    input[i] += grad[o] * weight[w];
    weightGrad[w] += grad[o] * x[i];
  });
  return { input, weight: weightGrad, bias };
}

/** Sizes of a general 2-D convolution: x [N, C, H, W] * weight [O, C / groups, KH, KW]. */
export interface ConvDims {
  /** Batch size. */
  batch: number;
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Kernel height. */
  kernelHeight: number;
  /** Kernel width. */
  kernelWidth: number;
  /** [height, width]. */
  stride: [number, number];
  /** Zeros [top, bottom, left, right]. */
  padding: [number, number, number, number];
  /** [height, width]. */
  dilation: [number, number];
  /** Channel groups. */
  groups: number;
}

/** Output height and width of a general convolution. */
export function convDimsOutput(d: ConvDims): [number, number] {
  const [top, bottom, left, right] = d.padding;
  return [
    Math.floor((d.height + top + bottom - d.dilation[0] * (d.kernelHeight - 1) - 1) / d.stride[0]) +
    1,
    Math.floor((d.width + left + right - d.dilation[1] * (d.kernelWidth - 1) - 1) / d.stride[1]) +
    1,
  ];
}

/**
 * Calls `visit(outIndex, inIndex, weightIndex)` for every term of the general convolution sum,
 * with the output size `outSize` (default the natural one).
 */
function forEachGeneralTerm(
  d: ConvDims,
  outSize: [number, number],
  visit: (outIndex: number, inIndex: number, weightIndex: number) => void,
): void {
  const { batch, inChannels: C, outChannels: O, height: H, width: W, groups: G } = d;
  const { kernelHeight: KH, kernelWidth: KW } = d;
  const [OH, OW] = outSize;
  const CG = C / G, OG = O / G;
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < O; o++) {
      const group = Math.floor(o / OG);
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          const outIndex = ((n * O + o) * OH + oy) * OW + ox;
          for (let c = 0; c < CG; c++) {
            for (let ky = 0; ky < KH; ky++) {
              const iy = oy * d.stride[0] + ky * d.dilation[0] - d.padding[0];
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < KW; kx++) {
                const ix = ox * d.stride[1] + kx * d.dilation[1] - d.padding[2];
                if (ix < 0 || ix >= W) continue;
                visit(
                  outIndex,
                  ((n * C + group * CG + c) * H + iy) * W + ix,
                  ((o * CG + c) * KH + ky) * KW + kx,
                );
              }
            }
          }
        }
      }
    }
  }
}

/**
 * out[n, o, oy, ox] = bias[o] + Σ_c Σ_ky Σ_kx x[n, g·C/G + c, oy·sh + ky·dh − pt,
 * ox·sw + kx·dw − pl] · w[o, c, ky, kx] (g: o's group).
 */
export function convGeneralReference(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  d: ConvDims,
): Float64Array {
  const [OH, OW] = convDimsOutput(d);
  const out = new Float64Array(d.batch * d.outChannels * OH * OW);
  if (bias) {
    for (let i = 0; i < out.length; i++) out[i] = bias[Math.floor(i / (OH * OW)) % d.outChannels];
  }
  forEachGeneralTerm(d, [OH, OW], (o, i, w) => out[o] += x[i] * weight[w]);
  return out;
}

/** Input, weight and bias gradients of `convGeneralReference`, given the output's gradient. */
export function convGeneralBackwardReference(
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  d: ConvDims,
  outSize: [number, number] = convDimsOutput(d),
): { input: Float64Array; weight: Float64Array; bias: Float64Array } {
  const input = new Float64Array(x.length);
  const weightGrad = new Float64Array(weight.length);
  const bias = new Float64Array(d.outChannels);
  const [OH, OW] = outSize;
  for (let i = 0; i < grad.length; i++) bias[Math.floor(i / (OH * OW)) % d.outChannels] += grad[i];
  forEachGeneralTerm(d, outSize, (o, i, w) => {
    input[i] += grad[o] * weight[w];
    weightGrad[w] += grad[o] * x[i];
  });
  return { input, weight: weightGrad, bias };
}

/** Sizes of a transposed convolution: x [N, Cin, H, W] * weight [Cin, Cout / groups, KH, KW]. */
export interface ConvTransposeDims {
  /** Batch size. */
  batch: number;
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Kernel height. */
  kernelHeight: number;
  /** Kernel width. */
  kernelWidth: number;
  /** [height, width]. */
  stride: [number, number];
  /** [height, width]. */
  padding: [number, number];
  /** [height, width]. */
  outputPadding: [number, number];
  /** [height, width]. */
  dilation: [number, number];
  /** Channel groups. */
  groups: number;
}

/** Output height and width of a transposed convolution. */
export function convTransposeOutput(d: ConvTransposeDims): [number, number] {
  const sizes = [d.height, d.width], kernel = [d.kernelHeight, d.kernelWidth];
  return [0, 1].map((i) =>
    (sizes[i] - 1) * d.stride[i] - 2 * d.padding[i] + d.dilation[i] * (kernel[i] - 1) +
    d.outputPadding[i] + 1
  ) as [number, number];
}

/** The convolution a transposed convolution is the input gradient of. */
function transposedConv(d: ConvTransposeDims): ConvDims {
  const [OH, OW] = convTransposeOutput(d);
  return {
    batch: d.batch,
    inChannels: d.outChannels,
    outChannels: d.inChannels,
    height: OH,
    width: OW,
    kernelHeight: d.kernelHeight,
    kernelWidth: d.kernelWidth,
    stride: d.stride,
    padding: [d.padding[0], d.padding[0], d.padding[1], d.padding[1]],
    dilation: d.dilation,
    groups: d.groups,
  };
}

/**
 * The transposed convolution: each input value, times the kernel, added into the output
 * window it maps to (the input gradient of the convolution it transposes), + bias.
 */
export function convTransposeReference(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  d: ConvTransposeDims,
): Float64Array {
  const conv = transposedConv(d);
  const [OH, OW] = convTransposeOutput(d);
  const out = new Float64Array(d.batch * d.outChannels * OH * OW);
  if (bias) {
    for (let i = 0; i < out.length; i++) out[i] = bias[Math.floor(i / (OH * OW)) % d.outChannels];
  }
  forEachGeneralTerm(conv, [d.height, d.width], (o, i, w) => out[i] += x[o] * weight[w]);
  return out;
}

/** Input, weight and bias gradients of `convTransposeReference`. */
export function convTransposeBackwardReference(
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  d: ConvTransposeDims,
): { input: Float64Array; weight: Float64Array; bias: Float64Array } {
  const conv = transposedConv(d);
  const [OH, OW] = convTransposeOutput(d);
  const input = new Float64Array(x.length);
  const weightGrad = new Float64Array(weight.length);
  const bias = new Float64Array(d.outChannels);
  for (let i = 0; i < grad.length; i++) bias[Math.floor(i / (OH * OW)) % d.outChannels] += grad[i];
  forEachGeneralTerm(conv, [d.height, d.width], (o, i, w) => {
    input[o] += grad[i] * weight[w];
    weightGrad[w] += grad[i] * x[o];
  });
  return { input, weight: weightGrad, bias };
}
