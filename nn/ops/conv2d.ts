/**
 * 2-D convolution (NCHW, any kernel size, stride and zero padding) with gradients for input,
 * weight and bias.
 *
 * - Forward is a direct convolution: each lane computes `PIXELS` adjacent output pixels of one
 *   row for a block of output channels, keeping them all in registers; it loads each input row
 *   segment once and reuses it for every kernel column and output channel. Weights are read at
 *   workgroup-uniform addresses, from a uniform buffer when they fit in one (64 KiB).
 * - The input gradient is the same kernel run on the output gradient with the weights flipped
 *   and transposed (read in that order, not copied); stride > 1 first spreads the gradient out
 *   with zeros ("dilation").
 * - The weight and bias gradients are split over chunks of the batch (one lane per weight and
 *   chunk), then summed over the chunks.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { gpu } from "../device.ts";
import { type Access, grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch, type Resource } from "../stream.ts";
import { releaseTexture, tensorTexture, textureReaders } from "../texture.ts";
import { formatShape, Tensor } from "../tensor.ts";

/** Options of `conv2d`. */
export interface Conv2dOptions {
  /** Step between output pixels (default 1). */
  stride?: number;
  /** Zeros added on every side of the input (default 0). */
  padding?: number;
}

/** Every size a convolution kernel is specialised on. */
interface ConvShape {
  batch: number;
  inChannels: number;
  outChannels: number;
  height: number;
  width: number;
  kernelHeight: number;
  kernelWidth: number;
  stride: number;
  padding: number;
  outHeight: number;
  outWidth: number;
}

const WORKGROUP = 8;
const MAX_CHANNELS_PER_LANE = 32;
const UNIFORM_LIMIT_BYTES = 65536;

/** How the forward kernel reads weight (o, c, ky, kx): as stored, or flipped and transposed. */
type WeightOrder = "oihw" | "flipped_iohw";

function weightIndex(
  shape: ConvShape,
  order: WeightOrder,
  o: string,
  c: string,
  ky: string,
  kx: string,
) {
  const { inChannels: C, outChannels: O, kernelHeight: KH, kernelWidth: KW } = shape;
  if (order === "oihw") {
    return `((${o}) * ${u32(C * KH * KW)} + (${c}) * ${u32(KH * KW)} + (${ky}) * ${
      u32(KW)
    } + (${kx}))`;
  }
  // The stored weight is [C_out_orig = this kernel's C][C_in_orig = this kernel's O][KH][KW].
  return `((${c}) * ${u32(O * KH * KW)} + (${o}) * ${u32(KH * KW)} + (${u32(KH - 1)} - (${ky})) * ${
    u32(KW)
  } ` +
    `+ ${u32(KW - 1)} - (${kx}))`;
}

/** Most accumulators one lane keeps (output channels x pixels). */
const MAX_ACCUMULATORS = 128;

/**
 * Output pixels per lane: each weight a lane loads serves this many FMAs, so as many as divide
 * the row and fit in registers (weight loads cost as much as the FMAs they feed on llvmpipe).
 */
function pixelsPerLane(outWidth: number, channels: number): number {
  for (const pixels of [16, 12, 8, 4]) {
    if (outWidth % pixels === 0 && channels * pixels <= MAX_ACCUMULATORS) return pixels;
  }
  return Math.min(4, outWidth);
}

/**
 * WGSL loading the input row segment `s0..s{segment-1}` (columns ix0.. of row `rowBase`) that a
 * lane's output pixels need. When the segment starts on a texel boundary (stride 1, width and
 * padding multiples of 4) it is read a texel (4 floats) at a time, and a texel is either wholly
 * inside the row or wholly in the padding; otherwise element by element.
 */
function segmentSource(
  layout: { segment: number; width: number; stride: number; padding: number; pixels: number },
): string {
  const { segment, width: W, stride: S, padding: P, pixels } = layout;
  const aligned = S === 1 && W % 4 === 0 && P % 4 === 0 && pixels % 4 === 0;
  if (!aligned) {
    return Array.from({ length: segment }, (_, j) => {
      const ix = `ix0 + ${j}`;
      if (P === 0) return `let s${j} = xAt(rowBase + u32(min(${ix}, ${W - 1})));`;
      return `let s${j} = select(0.0, xAt(rowBase + u32(clamp(${ix}, 0, ${W - 1}))), ` +
        `${ix} >= 0 && ${ix} < ${W});`;
    }).join("\n      ");
  }
  const lines: string[] = [];
  for (let t = 0; t < Math.ceil(segment / 4); t++) {
    const ix = `ix0 + ${4 * t}`;
    const texel = `xVec4((rowBase + u32(clamp(${ix}, 0, ${W - 4}))) / 4u)`;
    lines.push(
      P === 0 && (pixels - 1) + 4 * t < W
        ? `let t${t} = ${texel};`
        : `let t${t} = select(vec4<f32>(0.0), ${texel}, ${ix} >= 0 && ${ix} < ${W});`,
    );
    for (let c = 0; c < 4 && 4 * t + c < segment; c++) {
      lines.push(`let s${4 * t + c} = t${t}.${"xyzw"[c]};`);
    }
  }
  return lines.join("\n      ");
}

function forwardSource(shape: ConvShape, order: WeightOrder, bias: boolean) {
  const { batch, inChannels: C, outChannels: O, height: H, width: W } = shape;
  const { kernelHeight: KH, kernelWidth: KW, stride: S, padding: P, outHeight: OH, outWidth: OW } =
    shape;
  const channelBlocks = Math.ceil(O / MAX_CHANNELS_PER_LANE);
  const channelsPerLane = Math.ceil(O / channelBlocks);
  const pixels = pixelsPerLane(OW, channelsPerLane);
  const blocksX = Math.ceil(OW / pixels);
  const lanes = batch * OH * blocksX * channelBlocks;
  const workgroup = lanes >= 64 * 16 ? 64 : WORKGROUP;
  const groups = Math.ceil(lanes / workgroup);
  const segment = (pixels - 1) * S + KW;
  const weightCount = O * C * KH * KW;
  const uniformWeights = weightCount * 4 <= UNIFORM_LIMIT_BYTES;
  const weightDecl = uniformWeights
    ? `@group(0) @binding(1) var<uniform> w: array<vec4<f32>, ${Math.ceil(weightCount / 4)}>;`
    : `@group(0) @binding(1) var<storage, read> w: array<f32>;`;
  const loadWeight = (index: string) =>
    uniformWeights ? `w[(${index}) >> 2u][(${index}) & 3u]` : `w[${index}]`;
  const vectorStores = pixels % 4 === 0 && OW % 4 === 0;
  // Columns outside the input read as 0 (padding); past the right edge of the output they are
  // clamped, computed and not stored.
  const segmentLoads = segmentSource({ segment, width: W, stride: S, padding: P, pixels });
  const acc = (o: number, p: number) => `a${o}_${p}`;
  const accumulators: string[] = [];
  const fmas: string[] = [];
  const stores: string[] = [];
  for (let o = 0; o < channelsPerLane; o++) {
    for (let p = 0; p < pixels; p++) accumulators.push(`var ${acc(o, p)} = 0.0;`);
  }
  for (let kx = 0; kx < KW; kx++) {
    for (let o = 0; o < channelsPerLane; o++) {
      const index = weightIndex(shape, order, `oBase + ${u32(o)}`, "c", "ky", u32(kx));
      fmas.push(`let w${o}_${kx} = ${loadWeight(index)};`);
      for (let p = 0; p < pixels; p++) fmas.push(`${acc(o, p)} += w${o}_${kx} * s${p * S + kx};`);
    }
  }
  for (let o = 0; o < channelsPerLane; o++) {
    const channel = `oBase + ${u32(o)}`;
    const plus = bias ? ` + b[(${channel}) >> 2u][(${channel}) & 3u]` : "";
    const row = `((n * ${u32(O)} + ${channel}) * ${u32(OH)} + oy) * ${u32(OW)} + ox0`;
    if (vectorStores) {
      for (let q = 0; q < pixels / 4; q++) {
        const values = Array.from({ length: 4 }, (_, p) => acc(o, 4 * q + p)).join(", ");
        stores.push(
          `if (${channel} < ${u32(O)}) { out[(${row}) / 4u + ${
            u32(q)
          }] = vec4<f32>(${values})${plus}; }`,
        );
      }
    } else {
      for (let p = 0; p < pixels; p++) {
        stores.push(
          `if (${channel} < ${u32(O)} && ox0 + ${u32(p)} < ${u32(OW)}) { ` +
            `out[${row} + ${u32(p)}] = ${acc(o, p)}${plus}; }`,
        );
      }
    }
  }
  // Channels past O in the last block read weights of channel O-1 (clamped) and are not stored.
  const clampChannels = channelBlocks * channelsPerLane > O;
  const code = /* wgsl */ `
// conv2d ${
    formatShape([batch, C, H, W])
  } * [${O}, ${C}, ${KH}, ${KW}] stride ${S} padding ${P} (${order})
@group(0) @binding(0) var x: texture_2d<f32>;
${textureReaders("x")}
${weightDecl}
@group(0) @binding(2) var<storage, read_write> out: array<${vectorStores ? "vec4<f32>" : "f32"}>;
${bias ? `@group(0) @binding(3) var<uniform> b: array<vec4<f32>, ${Math.ceil(O / 4)}>;` : ""}

@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // The output row is the slowest-varying index, so that the lanes of a workgroup share it and
  // the loop over kernel rows skips the rows that fall in the padding for all of them at once.
  let lane = min(${workgroupIndex(groups)} * ${u32(workgroup)} + lid, ${u32(lanes - 1)});
  let xBlock = lane % ${u32(blocksX)};
  let cBlock = (lane / ${u32(blocksX)}) % ${u32(channelBlocks)};
  let n = (lane / ${u32(blocksX * channelBlocks)}) % ${u32(batch)};
  let oy = lane / ${u32(blocksX * channelBlocks * batch)};
  let ox0 = xBlock * ${u32(pixels)};
  let oBase = ${
    clampChannels
      ? `min(cBlock * ${u32(channelsPerLane)}, ${u32(O - channelsPerLane)})`
      : `cBlock * ${u32(channelsPerLane)}`
  };
  let ix0 = i32(ox0 * ${u32(S)}) - ${P};
  let top = i32(oy * ${u32(S)}) - ${P};
  let kyFirst = u32(max(0, -top));
  let kyEnd = u32(clamp(${H} - top, 0, ${KH}));
  ${accumulators.join("\n  ")}
  for (var c = 0u; c < ${u32(C)}; c++) {
    for (var ky = kyFirst; ky < kyEnd; ky++) {
      let rowBase = ((n * ${u32(C)} + c) * ${u32(H)} + u32(top + i32(ky))) * ${u32(W)};
      ${segmentLoads}
      ${fmas.join("\n      ")}
    }
  }
  if (${workgroupIndex(groups)} * ${u32(workgroup)} + lid >= ${u32(lanes)}) { return; }
  ${stores.join("\n  ")}
}`;
  const bindings: Access[] = ["texture", uniformWeights ? "uniform" : "read", "read_write"];
  if (bias) bindings.push("uniform");
  return { code, groups, bindings };
}

function runForward(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: ConvShape,
  order: WeightOrder,
) {
  const source = forwardSource(shape, order, !!bias);
  const out = Tensor.empty([shape.batch, shape.outChannels, shape.outHeight, shape.outWidth]);
  const texture = tensorTexture(x);
  const buffers: Resource[] = [texture, weight.buffer, out.buffer];
  if (bias) buffers.push(bias.buffer);
  const name =
    `conv2d_${order}_${shape.batch}x${shape.inChannels}x${shape.height}x${shape.width}_` +
    `${shape.outChannels}k${shape.kernelHeight}x${shape.kernelWidth}s${shape.stride}p${shape.padding}`;
  dispatch(
    kernel({ name, code: source.code, bindings: source.bindings }),
    buffers,
    grid(source.groups),
  );
  releaseTexture(texture);
  return out;
}

/** Spreads a gradient [N, O, OH, OW] out to stride 1 with zeros and pads it for the flipped kernel. */
function dilateForInputGrad(
  grad: Tensor,
  shape: ConvShape,
): { tensor: Tensor; height: number; width: number; padding: number } {
  const {
    batch,
    outChannels: O,
    stride: S,
    outHeight: OH,
    outWidth: OW,
    kernelHeight: KH,
    kernelWidth: KW,
  } = shape;
  const height = shape.height + KH - 1, width = shape.width + KW - 1;
  const offsetY = KH - 1 - shape.padding, offsetX = KW - 1 - shape.padding;
  const out = Tensor.empty([batch, O, height, width]);
  const total = out.size;
  const groups = Math.ceil(total / 64);
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = ${workgroupIndex(groups)} * 64u + lid;
  if (i >= ${u32(total)}) { return; }
  let x = i32(i % ${u32(width)}) - ${offsetX};
  let y = i32((i / ${u32(width)}) % ${u32(height)}) - ${offsetY};
  let plane = i / ${u32(width * height)};
  let inside = x >= 0 && y >= 0 && x % ${S} == 0 && y % ${S} == 0 && x / ${S} < ${OW} && y / ${S} < ${OH};
  let source = plane * ${u32(OH * OW)} + u32(clamp(y / ${S}, 0, ${OH - 1})) * ${
    u32(OW)
  } + u32(clamp(x / ${S}, 0, ${OW - 1}));
  out[i] = select(0.0, g[source], inside);
}`;
  dispatch(
    kernel({
      name: `conv2d_dilate_${formatShape(out.shape)}`,
      code,
      bindings: ["read", "read_write"],
    }),
    [grad.buffer, out.buffer],
    grid(groups),
  );
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

/** Output channels a weight-gradient lane accumulates at once (its register block). */
const WEIGHT_GRAD_CHANNEL_BLOCK = 4;

/**
 * Weight and bias gradients. A workgroup takes a chunk of images; its lanes are the (c, ky)
 * pairs. Per output row, a lane loads the input row it needs once, and the gradient rows of a
 * block of output channels (the same addresses for every lane), and accumulates that block's
 * weights for every kx in registers. Partial sums per chunk are then added up; the bias
 * gradient (sum of the output gradient per channel) rides along in the same loops.
 */
function weightAndBiasGrad(
  grad: Tensor,
  x: Tensor,
  shape: ConvShape,
  withBias: boolean,
): [Tensor, Tensor | null] {
  const { inChannels: C, outChannels: O, height: H, width: W, kernelHeight: KH, kernelWidth: KW } =
    shape;
  const { stride: S, padding: P, outHeight: OH, outWidth: OW, batch } = shape;
  const weights = O * C * KH * KW;
  const width = weights + (withBias ? O : 0);
  const pairs = C * KH;
  const workgroupSize = Math.min(64, Math.ceil(pairs / 8) * 8);
  const pairGroups = Math.ceil(pairs / workgroupSize);
  const targetChunks = gpu().adapter.isFallbackAdapter ? 32 : 256;
  const perChunk = Math.ceil(
    batch / Math.min(batch, Math.max(1, Math.ceil(targetChunks / pairGroups))),
  );
  const chunks = Math.ceil(batch / perChunk);
  const block = Math.min(O, WEIGHT_GRAD_CHANNEL_BLOCK);
  const blocks = Math.ceil(O / block);
  const segment = (OW - 1) * S + KW;
  const gRowVec4 = OW % 4 === 0;
  const partial = Tensor.empty([chunks, width]);
  const groups = chunks * pairGroups;

  const xLoads = Array.from(
    { length: segment },
    (_, j) =>
      `let s${j} = select(0.0, xAt(xRow + u32(clamp(${j - P}, 0, ${W - 1}))), rowOk && ${
        j - P >= 0 && j - P < W ? "true" : "false"
      });`,
  );
  const gLoads: string[] = [];
  const fmas: string[] = [];
  for (let b = 0; b < block; b++) {
    const gRow = `gBase + (o0 + ${u32(b)}) * ${u32(OH * OW)} + oy * ${u32(OW)}`;
    if (gRowVec4) {
      for (let q = 0; q < OW / 4; q++) {
        gLoads.push(`let gv${b}_${q} = gVec4((${gRow}) / 4u + ${u32(q)});`);
        for (let c = 0; c < 4; c++) {
          gLoads.push(`let g${b}_${q * 4 + c} = gv${b}_${q}.${"xyzw"[c]};`);
        }
      }
    } else {
      for (let ox = 0; ox < OW; ox++) gLoads.push(`let g${b}_${ox} = gAt(${gRow} + ${u32(ox)});`);
    }
    if (withBias) {
      gLoads.push(
        `bsum${b} += ${Array.from({ length: OW }, (_, ox) => `g${b}_${ox}`).join(" + ")};`,
      );
    }
    for (let ox = 0; ox < OW; ox++) {
      for (let kx = 0; kx < KW; kx++) fmas.push(`a${b}_${kx} += g${b}_${ox} * s${ox * S + kx};`);
    }
  }
  const declare = (prefix: string, count: number) =>
    Array.from(
      { length: block },
      (_, b) => Array.from({ length: count }, (_, k) => `var ${prefix}${b}_${k} = 0.0;`).join(" "),
    ).join("\n    ");
  const stores = Array.from(
    { length: block },
    (_, b) =>
      Array.from(
        { length: KW },
        (_, kx) =>
          `partial[chunk * ${u32(width)} + ((o0 + ${u32(b)}) * ${u32(C)} + c) * ${
            u32(KH * KW)
          } + ky * ${u32(KW)} + ${u32(kx)}] = a${b}_${kx};`,
      ).join("\n      "),
  ).join("\n      ");
  const biasStores = withBias
    ? Array.from(
      { length: block },
      (_, b) => `partial[chunk * ${u32(width)} + ${u32(weights)} + o0 + ${u32(b)}] = bsum${b};`,
    ).join("\n        ")
    : "";
  const code = /* wgsl */ `
// conv2d weight gradient: x [${batch}, ${C}, ${H}, ${W}], grad [${batch}, ${O}, ${OH}, ${OW}]
@group(0) @binding(0) var g: texture_2d<f32>;
@group(0) @binding(1) var x: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
${textureReaders("g")}
${textureReaders("x")}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let chunk = wid.x / ${u32(pairGroups)};
  let pair = min((wid.x % ${u32(pairGroups)}) * ${u32(workgroupSize)} + lid, ${u32(pairs - 1)});
  let c = pair / ${u32(KH)};
  let ky = pair % ${u32(KH)};
  let inRange = (wid.x % ${u32(pairGroups)}) * ${u32(workgroupSize)} + lid < ${u32(pairs)};
  let nEnd = min((chunk + 1u) * ${u32(perChunk)}, ${u32(batch)});
  for (var ob = 0u; ob < ${u32(blocks)}; ob++) {
    let o0 = min(ob * ${u32(block)}, ${u32(O - block)});
    ${declare("a", KW)}
    ${withBias ? declare("bsum", 1).replace(/bsum(\d+)_0/g, "bsum$1") : ""}
    for (var n = chunk * ${u32(perChunk)}; n < nEnd; n++) {
      let gBase = n * ${u32(O * OH * OW)};
      for (var oy = 0u; oy < ${u32(OH)}; oy++) {
        let iy = i32(oy * ${u32(S)} + ky) - ${P};
        let rowOk = iy >= 0 && iy < ${H};
        let xRow = ((n * ${u32(C)} + c) * ${u32(H)} + u32(clamp(iy, 0, ${H - 1}))) * ${u32(W)};
        ${xLoads.join("\n        ")}
        ${gLoads.join("\n        ")}
        ${fmas.join("\n        ")}
      }
    }
    // The last block may overlap the one before (O not a multiple of the block): both write
    // the same values there.
    if (inRange) {
      ${stores}
      ${withBias ? `if (pair == 0u) {\n        ${biasStores}\n      }` : ""}
    }
  }
}`;
  const gTexture = tensorTexture(grad);
  const xTexture = tensorTexture(x);
  dispatch(
    kernel({
      name: `conv2d_weight_grad_${batch}x${C}x${H}x${W}_${O}k${KH}x${KW}s${S}p${P}`,
      code,
      bindings: ["texture", "texture", "read_write"],
    }),
    [gTexture, xTexture, partial.buffer],
    [groups],
  );
  releaseTexture(gTexture);
  releaseTexture(xTexture);
  const weightGrad = Tensor.empty([O, C, KH, KW]);
  const biasGrad = withBias ? Tensor.empty([O]) : null;
  sumChunks(partial, chunks, weightGrad, biasGrad);
  partial.dispose();
  return [weightGrad, biasGrad];
}

/** Sums the per-chunk partials [chunks, weights (+ bias)] into the weight (and bias) gradient. */
function sumChunks(
  partial: Tensor,
  chunks: number,
  weightGrad: Tensor,
  biasGrad: Tensor | null,
): void {
  const weights = weightGrad.size;
  const width = weights + (biasGrad?.size ?? 0);
  const groups = Math.ceil(width / 64);
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> weightGrad: array<f32>;
${biasGrad ? "@group(0) @binding(2) var<storage, read_write> biasGrad: array<f32>;" : ""}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = ${workgroupIndex(groups)} * 64u + lid;
  if (i >= ${u32(width)}) { return; }
  var total = 0.0;
  for (var chunk = 0u; chunk < ${u32(chunks)}; chunk++) { total += partial[chunk * ${
    u32(width)
  } + i]; }
  ${biasGrad ? `if (i >= ${u32(weights)}) { biasGrad[i - ${u32(weights)}] = total; return; }` : ""}
  weightGrad[i] = total;
}`;
  const buffers = [partial.buffer, weightGrad.buffer];
  if (biasGrad) buffers.push(biasGrad.buffer);
  dispatch(
    kernel({
      name: `conv2d_sum_chunks_${chunks}x${width}`,
      code,
      bindings: biasGrad ? ["read", "read_write", "read_write"] : ["read", "read_write"],
    }),
    buffers,
    grid(groups),
  );
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
