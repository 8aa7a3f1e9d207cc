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

/** Most accumulators one lane keeps (output channels x rows x pixels). */
const MAX_ACCUMULATORS = 128;
/** Most FMAs unrolled per input channel, to bound shader size and compile time. */
const MAX_UNROLLED_FMAS = 4096;

/**
 * What one lane of the forward kernel computes: `rows` x `pixels` outputs of `channels` output
 * channels (an output-row block, a column block, a channel block).
 */
interface ForwardBlock {
  rows: number;
  pixels: number;
  channels: number;
}

/**
 * The block with the lowest estimated cost per FMA on llvmpipe, from the measured costs
 * (docs/DESIGN.md): a texel load ~150 cycles per 8 lanes, a weight load (a gather: its offset
 * depends on a loop counter) ~35, an FMA with spilled accumulators ~2.75. Per input channel a
 * lane loads the input rows and columns its block meets and `channels x taps` weights, and does
 * `channels x rows x pixels x taps` FMAs.
 */
function forwardBlock(shape: ConvShape): ForwardBlock {
  const {
    outChannels: O,
    kernelHeight: KH,
    kernelWidth: KW,
    stride: S,
    outHeight: OH,
    outWidth: OW,
  } = shape;
  const taps = KH * KW;
  const lanesWanted = gpu().adapter.isFallbackAdapter ? 512 : 8192;
  let best: ForwardBlock = { rows: 1, pixels: Math.min(4, OW), channels: 1 };
  let bestCost = Infinity;
  const pixelChoices = [4, 8, 12, 16, 24, 32].filter((p) => p <= OW && OW % p === 0);
  if (pixelChoices.length === 0) pixelChoices.push(Math.min(4, OW));
  for (const pixels of pixelChoices) {
    for (let rows = 1; rows <= Math.min(OH, 8); rows++) {
      for (let channels = 1; channels <= O; channels++) {
        const fmas = channels * rows * pixels * taps;
        if (channels * rows * pixels > MAX_ACCUMULATORS || fmas > MAX_UNROLLED_FMAS) continue;
        const lanes = shape.batch * Math.ceil(OH / rows) * Math.ceil(OW / pixels) *
          Math.ceil(O / channels);
        const texels = ((rows - 1) * S + KH) * Math.ceil(((pixels - 1) * S + KW) / 4 + 1);
        // Wasted work where blocks overhang the output (rows, columns or channels past the end).
        const waste = (Math.ceil(OH / rows) * rows / OH) * (Math.ceil(O / channels) * channels / O);
        const starve = lanes < lanesWanted ? lanesWanted / lanes : 1;
        const cost = (texels * 150 + channels * taps * 35 + fmas * 2.75) / fmas * waste * starve;
        if (cost < bestCost) [best, bestCost] = [{ rows, pixels, channels }, cost];
      }
    }
  }
  return best;
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

/**
 * The forward kernel: each lane computes a block of output rows x pixels x channels (see
 * `forwardBlock`), looping over input channels; per input channel it loads the input rows its
 * block meets once (zero where they fall in the padding) and every weight of its channels once.
 */
function forwardSource(shape: ConvShape, order: WeightOrder, bias: boolean) {
  const { batch, inChannels: C, outChannels: O, height: H, width: W } = shape;
  const { kernelHeight: KH, kernelWidth: KW, stride: S, padding: P, outHeight: OH, outWidth: OW } =
    shape;
  const block = forwardBlock(shape);
  const { rows, pixels, channels } = block;
  const channelBlocks = Math.ceil(O / channels);
  const rowBlocks = Math.ceil(OH / rows);
  const blocksX = Math.ceil(OW / pixels);
  const lanes = batch * rowBlocks * blocksX;
  const workgroup = lanes >= 64 * 16 ? 64 : WORKGROUP;
  const groups = Math.ceil(lanes / workgroup);
  const segment = (pixels - 1) * S + KW;
  const inputRows = (rows - 1) * S + KH;
  const weightCount = O * C * KH * KW;
  const uniformWeights = weightCount * 4 <= UNIFORM_LIMIT_BYTES;
  const weightDecl = uniformWeights
    ? `@group(0) @binding(1) var<uniform> w: array<vec4<f32>, ${Math.ceil(weightCount / 4)}>;`
    : `@group(0) @binding(1) var<storage, read> w: array<f32>;`;
  const loadWeight = (index: string) =>
    uniformWeights ? `w[(${index}) >> 2u][(${index}) & 3u]` : `w[${index}]`;
  const vectorStores = pixels % 4 === 0 && OW % 4 === 0;
  const rowLoads: string[] = [];
  for (let r = 0; r < inputRows; r++) {
    const loads = segmentSource({ segment, width: W, stride: S, padding: P, pixels })
      .replace(/\blet s(\d+) = /g, `r${r}_$1 = `)
      .replace(/\bt(\d+)\b/g, `t${r}_$1`);
    rowLoads.push(
      `if (top + ${r} >= 0 && top + ${r} < ${H}) {\n      ` +
        `let rowBase = ((n * ${u32(C)} + c) * ${u32(H)} + u32(top + ${r})) * ${u32(W)};\n      ` +
        `${loads.replace(/\n\s*/g, "\n      ")}\n    } else {\n      ` +
        Array.from({ length: segment }, (_, j) => `r${r}_${j} = 0.0;`).join(" ") + "\n    }",
    );
  }
  const rowDeclarations = Array.from(
    { length: inputRows },
    (_, r) => Array.from({ length: segment }, (_, j) => `var r${r}_${j} = 0.0;`).join(" "),
  ).join("\n  ");
  const acc = (q: number, r: number, p: number) => `a${q}_${r}_${p}`;
  const accumulators: string[] = [];
  const fmas: string[] = [];
  const stores: string[] = [];
  for (let q = 0; q < channels; q++) {
    for (let r = 0; r < rows; r++) {
      for (let p = 0; p < pixels; p++) accumulators.push(`var ${acc(q, r, p)} = 0.0;`);
    }
  }
  for (let ky = 0; ky < KH; ky++) {
    for (let kx = 0; kx < KW; kx++) {
      for (let q = 0; q < channels; q++) {
        const index = weightIndex(shape, order, `oBase + ${u32(q)}`, "c", u32(ky), u32(kx));
        fmas.push(`let w${q}_${ky}_${kx} = ${loadWeight(index)};`);
      }
    }
  }
  // FMAs grouped by the input row they read, so that with padding a row that lies outside the
  // input is skipped (the lanes of a workgroup share their output rows, so mostly together).
  for (let input = 0; input < inputRows; input++) {
    const body: string[] = [];
    for (let r = 0; r < rows; r++) {
      const ky = input - r * S;
      if (ky < 0 || ky >= KH) continue;
      for (let kx = 0; kx < KW; kx++) {
        for (let q = 0; q < channels; q++) {
          for (let p = 0; p < pixels; p++) {
            body.push(`${acc(q, r, p)} += w${q}_${ky}_${kx} * r${input}_${p * S + kx};`);
          }
        }
      }
    }
    fmas.push(
      P > 0
        ? `if (top + ${input} >= 0 && top + ${input} < ${H}) {\n      ${
          body.join("\n      ")
        }\n    }`
        : body.join("\n    "),
    );
  }
  for (let q = 0; q < channels; q++) {
    const channel = `oBase + ${u32(q)}`;
    const plus = bias ? ` + b[(${channel}) >> 2u][(${channel}) & 3u]` : "";
    for (let r = 0; r < rows; r++) {
      const row = `((n * ${u32(O)} + ${channel}) * ${u32(OH)} + oy0 + ${u32(r)}) * ${
        u32(OW)
      } + ox0`;
      const inRange = `${channel} < ${u32(O)} && oy0 + ${u32(r)} < ${u32(OH)}`;
      if (vectorStores) {
        for (let v = 0; v < pixels / 4; v++) {
          const values = Array.from({ length: 4 }, (_, p) => acc(q, r, 4 * v + p)).join(", ");
          stores.push(
            `if (${inRange}) { out[(${row}) / 4u + ${u32(v)}] = vec4<f32>(${values})${plus}; }`,
          );
        }
      } else {
        for (let p = 0; p < pixels; p++) {
          stores.push(
            `if (${inRange} && ox0 + ${u32(p)} < ${u32(OW)}) { out[${row} + ${u32(p)}] = ${
              acc(q, r, p)
            }${plus}; }`,
          );
        }
      }
    }
  }
  const code = /* wgsl */ `
// conv2d ${
    formatShape([batch, C, H, W])
  } * [${O}, ${C}, ${KH}, ${KW}] stride ${S} padding ${P} (${order}),
// ${rows} rows x ${pixels} pixels x ${channels} channels per lane
@group(0) @binding(0) var x: texture_2d<f32>;
${textureReaders("x")}
${weightDecl}
@group(0) @binding(2) var<storage, read_write> out: array<${vectorStores ? "vec4<f32>" : "f32"}>;
${bias ? `@group(0) @binding(3) var<uniform> b: array<vec4<f32>, ${Math.ceil(O / 4)}>;` : ""}

@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = min(${workgroupIndex(groups)} * ${u32(workgroup)} + lid, ${u32(lanes - 1)});
  let xBlock = lane % ${u32(blocksX)};
  let n = (lane / ${u32(blocksX)}) % ${u32(batch)};
  let oy0 = (lane / ${u32(blocksX * batch)}) * ${u32(rows)};
  let ox0 = xBlock * ${u32(pixels)};
  // Channels come from wid.z; the last block of a channel count that does not divide evenly
  // overlaps the one before (same values written twice).
  let oBase = ${channelBlocks === 1 ? "0u" : `min(wid.z * ${u32(channels)}, ${u32(O - channels)})`};
  let ix0 = i32(ox0 * ${u32(S)}) - ${P};
  let top = i32(oy0 * ${u32(S)}) - ${P};
  ${accumulators.join("\n  ")}
  ${rowDeclarations}
  for (var c = 0u; c < ${u32(C)}; c++) {
    ${rowLoads.join("\n    ")}
    ${fmas.join("\n    ")}
  }
  if (${workgroupIndex(groups)} * ${u32(workgroup)} + lid >= ${u32(lanes)}) { return; }
  ${stores.join("\n  ")}
}`;
  const bindings: Access[] = ["texture", uniformWeights ? "uniform" : "read", "read_write"];
  if (bias) bindings.push("uniform");
  return { code, groups, bindings, channelBlocks };
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
    [...grid(source.groups), source.channelBlocks],
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

/** Most weights one lane of the weight-gradient kernel accumulates (its register block). */
const WEIGHT_GRAD_ACCUMULATORS = 100;

/**
 * The (output, input) channel block of a weight-gradient lane with the most FMAs per texel
 * loaded, within the register budget.
 */
function weightGradBlocks(shape: ConvShape, segment: number): [number, number] {
  const taps = shape.kernelHeight * shape.kernelWidth;
  let best: [number, number] = [1, 1], bestRatio = 0;
  for (let oBlock = 1; oBlock <= shape.outChannels; oBlock++) {
    for (let cBlock = 1; cBlock <= shape.inChannels; cBlock++) {
      if (oBlock * cBlock * taps > WEIGHT_GRAD_ACCUMULATORS) continue;
      const texels = cBlock * shape.kernelHeight * Math.ceil(segment / 4) +
        oBlock * Math.ceil(shape.outWidth / 4);
      const ratio = oBlock * cBlock * taps * shape.outWidth / texels;
      if (ratio > bestRatio) [best, bestRatio] = [[oBlock, cBlock], ratio];
    }
  }
  return best;
}

/**
 * Weight and bias gradients. Each lane takes a chunk of images, a block of output channels and
 * a block of input channels, and accumulates every (kernel row, kernel column) weight of those
 * blocks in registers: per output row it loads the gradient rows of its output channels and the
 * input rows they meet (as whole texels where aligned), then does every FMA those values allow.
 * Partial sums per chunk are then added up; the bias gradient (the sum of the output gradient
 * per channel) rides along in lanes of the first input-channel block.
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
  const taps = KH * KW;
  const segment = (OW - 1) * S + KW;
  const [oBlock, cBlock] = weightGradBlocks(shape, segment);
  const cBlocks = Math.ceil(C / cBlock), oBlocks = Math.ceil(O / oBlock);
  const targetLanes = gpu().adapter.isFallbackAdapter ? 768 : 8192;
  const perChunk = Math.max(1, Math.floor(batch * oBlocks * cBlocks / targetLanes));
  const chunks = Math.ceil(batch / perChunk);
  const lanes = chunks * oBlocks * cBlocks;
  const workgroupSize = lanes >= 64 * 8 ? 64 : 8;
  const groups = Math.ceil(lanes / workgroupSize);
  const partial = Tensor.empty([chunks, width]);

  // Declared per row: the segment values, zero where the row falls in the padding.
  const rowDeclarations = Array.from(
    { length: cBlock },
    (_, cb) =>
      Array.from(
        { length: KH },
        (_, ky) =>
          Array.from({ length: segment }, (_, j) => `var x${cb}_${ky}_${j} = 0.0;`).join(" "),
      ).join("\n        "),
  ).join("\n        ");
  const gLoads: string[] = [];
  for (let ob = 0; ob < oBlock; ob++) {
    const gRow = `(n * ${u32(O)} + o0 + ${u32(ob)}) * ${u32(OH * OW)} + oy * ${u32(OW)}`;
    if (OW % 4 === 0) {
      for (let q = 0; q < OW / 4; q++) {
        gLoads.push(`let gv${ob}_${q} = gVec4((${gRow}) / 4u + ${u32(q)});`);
        for (let c = 0; c < 4; c++) {
          gLoads.push(`let g${ob}_${4 * q + c} = gv${ob}_${q}.${"xyzw"[c]};`);
        }
      }
    } else {
      for (let ox = 0; ox < OW; ox++) gLoads.push(`let g${ob}_${ox} = gAt(${gRow} + ${u32(ox)});`);
    }
    if (withBias) {
      gLoads.push(
        `b${ob} += ${Array.from({ length: OW }, (_, ox) => `g${ob}_${ox}`).join(" + ")};`,
      );
    }
  }
  const fmas: string[] = [];
  for (let ob = 0; ob < oBlock; ob++) {
    for (let cb = 0; cb < cBlock; cb++) {
      for (let ky = 0; ky < KH; ky++) {
        for (let kx = 0; kx < KW; kx++) {
          const terms = Array.from(
            { length: OW },
            (_, ox) => `g${ob}_${ox} * x${cb}_${ky}_${ox * S + kx}`,
          );
          fmas.push(`a${ob}_${cb}_${ky}_${kx} += ${terms.join(" + ")};`);
        }
      }
    }
  }
  const accumulators: string[] = [];
  const stores: string[] = [];
  for (let ob = 0; ob < oBlock; ob++) {
    if (withBias) accumulators.push(`var b${ob} = 0.0;`);
    for (let cb = 0; cb < cBlock; cb++) {
      for (let ky = 0; ky < KH; ky++) {
        for (let kx = 0; kx < KW; kx++) {
          accumulators.push(`var a${ob}_${cb}_${ky}_${kx} = 0.0;`);
          const index = `((o0 + ${u32(ob)}) * ${u32(C)} + c0 + ${u32(cb)}) * ${u32(taps)} + ${
            u32(ky * KW + kx)
          }`;
          stores.push(`partial[base + ${index}] = a${ob}_${cb}_${ky}_${kx};`);
        }
      }
    }
    if (withBias) {
      stores.push(`if (cb == 0u) { partial[base + ${u32(weights)} + o0 + ${u32(ob)}] = b${ob}; }`);
    }
  }
  const loadRows: string[] = [];
  for (let cb = 0; cb < cBlock; cb++) {
    for (let ky = 0; ky < KH; ky++) {
      const iy = `iy${cb}_${ky}`;
      const body = segmentSource({ segment, width: W, stride: S, padding: P, pixels: OW })
        .replace(/\blet s(\d+) =/g, `x${cb}_${ky}_$1 =`)
        .replace(/\bs(\d+)\b/g, `x${cb}_${ky}_$1`)
        .replace(/\bt(\d+)\b/g, `t${cb}_${ky}_$1`);
      loadRows.push(
        `let ${iy} = i32(oy * ${u32(S)}) + ${ky - P};\n        ` +
          `if (${iy} >= 0 && ${iy} < ${H}) {\n          ` +
          `let rowBase = ((n * ${u32(C)} + c0 + ${u32(cb)}) * ${u32(H)} + u32(${iy})) * ${
            u32(W)
          };\n          ` +
          `${body.replace(/\n\s*/g, "\n          ")}\n        } else {\n          ` +
          Array.from({ length: segment }, (_, j) => `x${cb}_${ky}_${j} = 0.0;`).join(" ") +
          `\n        }`,
      );
    }
  }
  const code = /* wgsl */ `
// conv2d weight gradient: x [${batch}, ${C}, ${H}, ${W}], grad [${batch}, ${O}, ${OH}, ${OW}],
// ${oBlock} output x ${cBlock} input channels per lane, ${perChunk} images per chunk
@group(0) @binding(0) var g: texture_2d<f32>;
@group(0) @binding(1) var x: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
${textureReaders("g")}
${textureReaders("x")}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = wid.x * ${u32(workgroupSize)} + lid;
  if (lane >= ${u32(lanes)}) { return; }
  let cb = lane % ${u32(cBlocks)};
  let chunk = lane / ${u32(cBlocks * oBlocks)};
  // The last block of a dimension that does not divide evenly overlaps the one before: both
  // compute and write the same values there.
  let c0 = min(cb * ${u32(cBlock)}, ${u32(C - cBlock)});
  let o0 = min(((lane / ${u32(cBlocks)}) % ${u32(oBlocks)}) * ${u32(oBlock)}, ${u32(O - oBlock)});
  let ix0 = ${-P};
  ${accumulators.join("\n  ")}
  ${rowDeclarations}
  for (var n = chunk * ${u32(perChunk)}; n < min((chunk + 1u) * ${u32(perChunk)}, ${
    u32(batch)
  }); n++) {
    for (var oy = 0u; oy < ${u32(OH)}; oy++) {
        ${loadRows.join("\n        ")}
        ${gLoads.join("\n        ")}
        ${fmas.join("\n        ")}
    }
  }
  let base = chunk * ${u32(width)};
  ${stores.join("\n  ")}
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
