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
