/**
 * The general convolution kernels: any stride per dimension, padding per side, dilation and
 * groups, every size baked in as a constant. `conv2d`, `conv1d` and `convTranspose2d` use them
 * for what the specialised kernels (`conv2d_forward.ts`, `conv2d_input_grad.ts`,
 * `conv2d_weight_grad.ts`: one stride, the same padding on every side, no dilation, one group)
 * do not cover.
 *
 * A convolution here maps x [N, C, H, W] with weight [O, C / groups, KH, KW] to
 * [N, O, OH, OW]:
 *
 * out[n, o, oy, ox] = Σ_c Σ_ky Σ_kx x[n, g·C/G + c, oy·sh + ky·dh − pt, ox·sw + kx·dw − pl] ·
 * w[o, c, ky, kx], with g = o / (O / G) and reads outside the input zero.
 *
 * @module
 */

import { u32 } from "../gpu/kernel.ts";
import { type KernelPlan, type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";
import { CONV2D_SUM_CHUNKS } from "./conv2d_weight_grad.ts";

/** Every size a general convolution kernel is specialised on. */
export interface GeneralConvShape {
  /** Images. */
  batch: number;
  /** Input channels (C). */
  inChannels: number;
  /** Output channels (O). */
  outChannels: number;
  /** Channel groups (G): C and O are both multiples of it. */
  groups: number;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Kernel height. */
  kernelHeight: number;
  /** Kernel width. */
  kernelWidth: number;
  /** Vertical stride. */
  strideHeight: number;
  /** Horizontal stride. */
  strideWidth: number;
  /** Zero rows above the input (the rows below follow from the output height). */
  padTop: number;
  /** Zero columns left of the input (those on the right follow from the output width). */
  padLeft: number;
  /** Vertical dilation. */
  dilationHeight: number;
  /** Horizontal dilation. */
  dilationWidth: number;
  /** Output height. */
  outHeight: number;
  /** Output width. */
  outWidth: number;
}

/** A kernel-name key of every size in `shape`. */
export function generalConvKey(shape: GeneralConvShape): string {
  const s = shape;
  return `${s.batch}x${s.inChannels}x${s.height}x${s.width}_${s.outChannels}g${s.groups}` +
    `k${s.kernelHeight}x${s.kernelWidth}s${s.strideHeight}x${s.strideWidth}` +
    `p${s.padTop}x${s.padLeft}d${s.dilationHeight}x${s.dilationWidth}` +
    `o${s.outHeight}x${s.outWidth}`;
}

/**
 * WGSL defining `v<offset>` for each offset: input column `ixs + offset` of the row starting at
 * `rowBase`, zero outside the row. At stride 1 on rows of a multiple of 4 columns, with `ixs`
 * of the same residue mod 4 in every lane (−padLeft), whole texels are read, each once.
 */
function rowValues(
  offsets: ReadonlySet<number>,
  rowBase: string,
  width: number,
  strideWidth: number,
  padLeft: number,
): string[] {
  const sorted = [...offsets].sort((a, b) => a - b);
  if (strideWidth !== 1 || width % 4 !== 0) {
    return sorted.map((offset) => {
      const ix = `ixs + ${offset}`;
      return `let v${offset} = select(0.0, xAt(${rowBase} + u32(clamp(${ix}, 0, ${
        width - 1
      }))), ${ix} >= 0 && ${ix} < ${width});`;
    });
  }
  const residue = ((-padLeft % 4) + 4) % 4;
  const texels = new Set(sorted.map((offset) => Math.floor((residue + offset) / 4)));
  const lines = [`let tb = (ixs - ${residue}) / 4;`];
  for (const k of texels) {
    lines.push(
      `let x4_${k} = select(vec4<f32>(0.0), xVec4(${rowBase} / 4u + u32(clamp(tb + ${k}, 0, ${
        width / 4 - 1
      }))), tb + ${k} >= 0 && tb + ${k} < ${width / 4});`,
    );
  }
  for (const offset of sorted) {
    const at = residue + offset;
    lines.push(`let v${offset} = x4_${Math.floor(at / 4)}.${"xyzw"[at % 4]};`);
  }
  return lines;
}

/** What a general forward kernel is specialised on. */
interface GeneralOptions {
  shape: GeneralConvShape;
  bias: boolean;
  /**
   * Read the weight flipped and transposed (the forward kernel computing a stride-1 input
   * gradient): `shape`'s weight (o, c, ky, kx) is the stored [O', O / G, KH, KW] weight's
   * (group·C/G + c, o mod O/G, KH − 1 − ky, KW − 1 − kx).
   */
  flipped?: boolean;
}

function elementPlan(lanes: number, workgroupSize: number): KernelPlan {
  return { workgroupSize, groups: Math.max(1, Math.ceil(lanes / workgroupSize)) };
}

/**
 * What a forward lane computes: `pixels` neighbouring outputs of a row x `channels` output
 * channels of one group (`channels` divides the group's output channels: no channel guard).
 */
function forwardBlock(shape: GeneralConvShape): { pixels: number; channels: number } {
  const perGroup = shape.outChannels / shape.groups;
  const channels = [4, 2, 1].find((q) => perGroup % q === 0)!;
  // One channel (depthwise): longer rows, so that each input column feeds more outputs.
  const pixels = channels === 1 && shape.outWidth % 16 === 0
    ? 16
    : shape.outWidth % 8 === 0
    ? 8
    : 4;
  return { pixels, channels };
}

/** Lanes of the general forward kernel on `shape` (one per block of outputs). */
export function generalForwardLanes(shape: GeneralConvShape): number {
  const { pixels, channels } = forwardBlock(shape);
  return shape.batch * (shape.outChannels / channels) * shape.outHeight *
    Math.ceil(shape.outWidth / pixels);
}

/**
 * The forward kernel: a lane computes a block of neighbouring outputs of one row x a few output
 * channels (`forwardBlock`), looping over the input channels of its group; per input row it
 * loads each input column its block meets once, and each weight once.
 */
const CONV_GENERAL_FORWARD: KernelSpec<GeneralOptions> = {
  name: "conv_general",
  key: ({ shape, bias, flipped }) =>
    generalConvKey(shape) + (bias ? "_bias" : "") + (flipped ? "_flipped" : ""),
  bindings: ({ shape, bias }) => [
    { name: "x", role: "input" },
    { name: "w", role: "input" },
    ...(bias ? [{ name: "b", role: "input", readOnce: true } as const] : []),
    { name: "out", role: "write", type: shape.outWidth % 4 === 0 ? "vec4<f32>" : "f32" },
  ],
  plan: ({ shape }, policy) => elementPlan(generalForwardLanes(shape), policy.elementwiseWorkgroup),
  body: ({ shape, bias, flipped }, { plan }) => {
    const { batch, inChannels: C, outChannels: O, groups: G, height: H, width: W } = shape;
    const { kernelHeight: KH, kernelWidth: KW, strideHeight: SH, strideWidth: SW } = shape;
    const { padTop: PT, padLeft: PL, dilationHeight: DH, dilationWidth: DW } = shape;
    const { outHeight: OH, outWidth: OW } = shape;
    const CG = C / G, OG = O / G, T = KH * KW;
    const { pixels: P, channels: Q } = forwardBlock(shape);
    const weightOffset = (q: number, ky: number, kx: number) =>
      flipped ? q * T + (KH - 1 - ky) * KW + (KW - 1 - kx) : q * CG * T + ky * KW + kx;
    const weightBase = flipped
      ? `(((o0 / ${u32(OG)}) * ${u32(CG)} + c) * ${u32(OG)} + o0 % ${u32(OG)}) * ${u32(T)}`
      : `(o0 * ${u32(CG)} + c) * ${u32(T)}`;
    const blocksX = Math.ceil(OW / P);
    const acc = (q: number, p: number) => `a${q}_${p}`;
    const taps: string[] = [];
    for (let ky = 0; ky < KH; ky++) {
      const row: string[] = [];
      const offsets = new Set<number>();
      for (let p = 0; p < P; p++) {
        for (let kx = 0; kx < KW; kx++) offsets.add(p * SW + kx * DW);
      }
      row.push(...rowValues(offsets, "rowBase", W, SW, PL));
      for (let q = 0; q < Q; q++) {
        for (let kx = 0; kx < KW; kx++) {
          row.push(`let w${q}_${kx} = wAt(wBase + ${u32(weightOffset(q, ky, kx))});`);
          for (let p = 0; p < P; p++) {
            row.push(`${acc(q, p)} += w${q}_${kx} * v${p * SW + kx * DW};`);
          }
        }
      }
      taps.push(
        `{\n      let iy = iys + ${ky * DH};\n      if (iy >= 0 && iy < ${H}) {\n        ` +
          `let rowBase = plane + u32(iy) * ${u32(W)};\n        ${
            row.join("\n        ")
          }\n      }\n    }`,
      );
    }
    const stores: string[] = [];
    for (let q = 0; q < Q; q++) {
      const plus = bias ? ` + bAt(o0 + ${u32(q)})` : "";
      const rowOut = `((n * ${u32(O)} + o0 + ${u32(q)}) * ${u32(OH)} + oy) * ${u32(OW)} + ox0`;
      if (OW % 4 === 0) {
        for (let v = 0; v < P / 4; v++) {
          const values = Array.from({ length: 4 }, (_, p) => acc(q, 4 * v + p)).join(", ");
          const store = `out[(${rowOut}) / 4u + ${u32(v)}] = vec4<f32>(${values})${plus};`;
          stores.push(OW % P === 0 ? store : `if (ox0 + ${u32(4 * v)} < ${u32(OW)}) { ${store} }`);
        }
      } else {
        for (let p = 0; p < P; p++) {
          stores.push(
            `if (ox0 + ${u32(p)} < ${u32(OW)}) { out[${rowOut} + ${u32(p)}] = ${
              acc(q, p)
            }${plus}; }`,
          );
        }
      }
    }
    const accumulators = Array.from(
      { length: Q },
      (_, q) => Array.from({ length: P }, (_, p) => `var ${acc(q, p)} = 0.0;`).join(" "),
    );
    return /* wgsl */ `
  // general conv [${batch}, ${C}, ${H}, ${W}] * [${O}, ${CG}, ${KH}, ${KW}], groups ${G},
  // stride ${SH}x${SW}, padding top ${PT} left ${PL}, dilation ${DH}x${DW} -> ${OH}x${OW};
  // ${P} pixels x ${Q} channels per lane${flipped ? ", weight read flipped and transposed" : ""}
  let lane = group * ${u32(plan.workgroupSize)} + lid;
  if (lane >= ${u32(generalForwardLanes(shape))}) { return; }
  let ox0 = (lane % ${u32(blocksX)}) * ${u32(P)};
  let oy = (lane / ${u32(blocksX)}) % ${u32(OH)};
  let o0 = ((lane / ${u32(blocksX * OH)}) % ${u32(O / Q)}) * ${u32(Q)};
  let n = lane / ${u32(blocksX * OH * (O / Q))};
  let firstChannel = (o0 / ${u32(OG)}) * ${u32(CG)};
  let iys = i32(oy) * ${SH} - ${PT};
  let ixs = i32(ox0) * ${SW} - ${PL};
  ${accumulators.join("\n  ")}
  for (var c = 0u; c < ${u32(CG)}; c++) {
    let plane = (n * ${u32(C)} + firstChannel + c) * ${u32(H * W)};
    let wBase = ${weightBase};
    ${taps.join("\n    ")}
  }
  ${stores.join("\n  ")}`;
  },
};

/**
 * The input-gradient kernel (also the transposed convolution's forward): one lane per input
 * element, adding every output-gradient value whose window covers it, times the weight that
 * joined them, over the output channels of its group (+ bias per input channel).
 */
const CONV_GENERAL_INPUT_GRAD: KernelSpec<GeneralOptions> = {
  name: "conv_general_input_grad",
  key: ({ shape, bias }) => generalConvKey(shape) + (bias ? "_bias" : ""),
  bindings: ({ bias }) => [
    { name: "g", role: "input" },
    { name: "w", role: "input" },
    ...(bias ? [{ name: "b", role: "input", readOnce: true } as const] : []),
    { name: "dx", role: "write" },
  ],
  plan: ({ shape }, policy) =>
    elementPlan(
      shape.batch * shape.inChannels * shape.height * shape.width,
      policy.elementwiseWorkgroup,
    ),
  body: ({ shape, bias }, { plan }) => {
    const { batch, inChannels: C, outChannels: O, groups: G, height: H, width: W } = shape;
    const { kernelHeight: KH, kernelWidth: KW, strideHeight: SH, strideWidth: SW } = shape;
    const { padTop: PT, padLeft: PL, dilationHeight: DH, dilationWidth: DW } = shape;
    const { outHeight: OH, outWidth: OW } = shape;
    const CG = C / G, OG = O / G;
    const size = batch * C * H * W;
    const onGrid = (t: string, s: number, limit: number) =>
      `${t} >= 0${s === 1 ? "" : ` && ${t} % ${s} == 0`} && ${t} < ${s * limit}`;
    const taps: string[] = [];
    for (let ky = 0; ky < KH; ky++) {
      const row: string[] = [];
      for (let kx = 0; kx < KW; kx++) {
        row.push(
          `{ let tx = txs - ${kx * DW}; if (${onGrid("tx", SW, OW)}) { ` +
            `acc += gAt(gRow + u32(tx${SW === 1 ? "" : ` / ${SW}`})) * ` +
            `wAt(wBase + ${u32(ky * KW + kx)}); } }`,
        );
      }
      taps.push(
        `{\n      let ty = tys - ${ky * DH};\n      if (${onGrid("ty", SH, OH)}) {\n        ` +
          `let gRow = gPlane + u32(ty${SH === 1 ? "" : ` / ${SH}`}) * ${u32(OW)};\n        ` +
          `${row.join("\n        ")}\n      }\n    }`,
      );
    }
    return /* wgsl */ `
  // general conv input gradient: grad [${batch}, ${O}, ${OH}, ${OW}] -> [${batch}, ${C}, ${H}, ${W}],
  // weight [${O}, ${CG}, ${KH}, ${KW}], groups ${G}, stride ${SH}x${SW}, padding top ${PT} left ${PL},
  // dilation ${DH}x${DW}
  let lane = group * ${u32(plan.workgroupSize)} + lid;
  if (lane >= ${u32(size)}) { return; }
  let ix = lane % ${u32(W)};
  let iy = (lane / ${u32(W)}) % ${u32(H)};
  let ci = (lane / ${u32(H * W)}) % ${u32(C)};
  let n = lane / ${u32(C * H * W)};
  let firstOut = (ci / ${u32(CG)}) * ${u32(OG)};
  let local = ci % ${u32(CG)};
  let tys = i32(iy) + ${PT};
  let txs = i32(ix) + ${PL};
  var acc = 0.0;
  for (var k = 0u; k < ${u32(OG)}; k++) {
    let o = firstOut + k;
    let gPlane = (n * ${u32(O)} + o) * ${u32(OH * OW)};
    let wBase = (o * ${u32(CG)} + local) * ${u32(KH * KW)};
    ${taps.join("\n    ")}
  }
  dx[lane] = acc${bias ? " + bAt(ci)" : ""};`;
  },
};

/** What the general weight-gradient kernel is specialised on. */
interface WeightGradOptions {
  shape: GeneralConvShape;
  bias: boolean;
  /** Images per chunk: each lane sums over one chunk, a second kernel over the chunks. */
  perChunk: number;
}

function weightCount(shape: GeneralConvShape): number {
  return shape.outChannels * (shape.inChannels / shape.groups) * shape.kernelHeight *
    shape.kernelWidth;
}

/** Most accumulators of a weight-gradient lane. */
const WEIGHT_GRAD_ACCUMULATORS = 64;
/** Output pixels a weight-gradient lane reads per step along a row. */
const WEIGHT_GRAD_PIXELS = 4;

/** Output channels per weight-gradient lane (dividing a group's output channels). */
function weightGradChannels(shape: GeneralConvShape): number {
  const perGroup = shape.outChannels / shape.groups;
  const taps = shape.kernelHeight * shape.kernelWidth;
  return [4, 2, 1].find((q) => perGroup % q === 0 && q * taps <= WEIGHT_GRAD_ACCUMULATORS) ?? 1;
}

/** Lanes per chunk of images: one per (output-channel block, input channel), one per bias. */
function weightGradLanesPerChunk(shape: GeneralConvShape, bias: boolean): number {
  const blocks = shape.outChannels / weightGradChannels(shape) * (shape.inChannels / shape.groups);
  return blocks + (bias ? shape.outChannels : 0);
}

/**
 * Partial weight (and bias) gradients per chunk of images: a lane takes a block of output
 * channels and one input channel of their group, and accumulates every tap of those weights,
 * reading per output row `WEIGHT_GRAD_PIXELS` gradient values per channel and each input
 * column they meet once; bias lanes sum the gradient of one output channel.
 */
const CONV_GENERAL_WEIGHT_GRAD: KernelSpec<WeightGradOptions> = {
  name: "conv_general_weight_grad",
  key: ({ shape, bias, perChunk }) => `${generalConvKey(shape)}_c${perChunk}${bias ? "_bias" : ""}`,
  bindings: () => [
    { name: "g", role: "input" },
    { name: "x", role: "input" },
    { name: "partial", role: "write" },
  ],
  plan: ({ shape, bias, perChunk }, policy) =>
    elementPlan(
      Math.ceil(shape.batch / perChunk) * weightGradLanesPerChunk(shape, bias),
      policy.elementwiseWorkgroup,
    ),
  body: ({ shape, bias, perChunk }, { plan }) => {
    const { batch, inChannels: C, outChannels: O, groups: G, height: H, width: W } = shape;
    const { kernelHeight: KH, kernelWidth: KW, strideHeight: SH, strideWidth: SW } = shape;
    const { padTop: PT, padLeft: PL, dilationHeight: DH, dilationWidth: DW } = shape;
    const { outHeight: OH, outWidth: OW } = shape;
    const CG = C / G, OG = O / G, T = KH * KW, P = WEIGHT_GRAD_PIXELS;
    const Q = weightGradChannels(shape);
    const weights = weightCount(shape);
    const width = weights + (bias ? O : 0);
    const perChunkLanes = weightGradLanesPerChunk(shape, bias);
    const blocks = O / Q * CG;
    const lanes = Math.ceil(batch / perChunk) * perChunkLanes;
    const gLoads: string[] = [];
    for (let q = 0; q < Q; q++) {
      for (let p = 0; p < P; p++) {
        const value = `gAt(gRow + ${u32(q * OH * OW)} + min(ox0 + ${u32(p)}, ${u32(OW - 1)}))`;
        gLoads.push(
          OW % P === 0
            ? `let g${q}_${p} = ${value};`
            : `let g${q}_${p} = select(0.0, ${value}, ox0 + ${u32(p)} < ${u32(OW)});`,
        );
      }
    }
    const rows: string[] = [];
    for (let ky = 0; ky < KH; ky++) {
      const offsets = new Set<number>();
      for (let p = 0; p < P; p++) {
        for (let kx = 0; kx < KW; kx++) offsets.add(p * SW + kx * DW);
      }
      const body: string[] = [];
      body.push(...rowValues(offsets, "xRow", W, SW, PL));
      for (let q = 0; q < Q; q++) {
        for (let kx = 0; kx < KW; kx++) {
          const terms = Array.from({ length: P }, (_, p) => `g${q}_${p} * v${p * SW + kx * DW}`);
          body.push(`a${q}_${ky * KW + kx} += ${terms.join(" + ")};`);
        }
      }
      rows.push(
        `{\n          let iy = i32(oy) * ${SH} + ${ky * DH - PT};\n          ` +
          `if (iy >= 0 && iy < ${H}) {\n            ` +
          `let xRow = xPlane + u32(iy) * ${u32(W)};\n            ${
            body.join("\n            ")
          }\n          }\n        }`,
      );
    }
    const accumulators = Array.from(
      { length: Q },
      (_, q) => Array.from({ length: T }, (_, t) => `var a${q}_${t} = 0.0;`).join(" "),
    );
    const stores: string[] = [];
    for (let q = 0; q < Q; q++) {
      for (let t = 0; t < T; t++) {
        stores.push(
          `partial[base + ((o0 + ${u32(q)}) * ${u32(CG)} + local) * ${u32(T)} + ${u32(t)}] = ` +
            `a${q}_${t};`,
        );
      }
    }
    const biasLanes = bias
      ? /* wgsl */ `
  if (i >= ${u32(blocks)}) {
    let o = i - ${u32(blocks)};
    var total = 0.0;
    for (var n = n0; n < n1; n++) {
      let gPlane = (n * ${u32(O)} + o) * ${u32(OH * OW)};
      for (var j = 0u; j < ${u32(OH * OW)}; j++) { total += gAt(gPlane + j); }
    }
    partial[base + ${u32(weights)} + o] = total;
    return;
  }`
      : "";
    return /* wgsl */ `
  // general conv weight gradient: x [${batch}, ${C}, ${H}, ${W}], grad [${batch}, ${O}, ${OH}, ${OW}],
  // weight [${O}, ${CG}, ${KH}, ${KW}], groups ${G}, stride ${SH}x${SW}, padding top ${PT}
  // left ${PL}, dilation ${DH}x${DW}; ${Q} output channels x 1 input channel x ${T} taps per lane,
  // ${perChunk} images per chunk
  let lane = group * ${u32(plan.workgroupSize)} + lid;
  if (lane >= ${u32(lanes)}) { return; }
  let i = lane % ${u32(perChunkLanes)};
  let chunk = lane / ${u32(perChunkLanes)};
  let base = chunk * ${u32(width)};
  let n0 = chunk * ${u32(perChunk)};
  let n1 = min(n0 + ${u32(perChunk)}, ${u32(batch)});${biasLanes}
  let local = i % ${u32(CG)};
  let o0 = (i / ${u32(CG)}) * ${u32(Q)};
  let ci = (o0 / ${u32(OG)}) * ${u32(CG)} + local;
  ${accumulators.join("\n  ")}
  for (var n = n0; n < n1; n++) {
    let gPlane = (n * ${u32(O)} + o0) * ${u32(OH * OW)};
    let xPlane = (n * ${u32(C)} + ci) * ${u32(H * W)};
    for (var oy = 0u; oy < ${u32(OH)}; oy++) {
      let gRow = gPlane + oy * ${u32(OW)};
      for (var ox0 = 0u; ox0 < ${u32(OW)}; ox0 += ${u32(P)}) {
        let ixs = i32(ox0) * ${SW} - ${PL};
        ${gLoads.join("\n        ")}
        ${rows.join("\n        ")}
      }
    }
  }
  ${stores.join("\n  ")}`;
  },
};

/** The general convolution of x with weight (+ bias): [N, O, OH, OW]. */
export function generalForward(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: GeneralConvShape,
): Tensor {
  const out = Tensor.empty([shape.batch, shape.outChannels, shape.outHeight, shape.outWidth]);
  runKernel(
    CONV_GENERAL_FORWARD,
    { shape, bias: !!bias },
    { x, w: weight, out, ...(bias ? { b: bias } : {}) },
  );
  return out;
}

/**
 * The input gradient of the general convolution `shape` from the output gradient `grad`
 * (+ `bias` per input channel: the transposed convolution's forward): [N, C, H, W].
 */
export function generalInputGrad(
  grad: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: GeneralConvShape,
): Tensor {
  const { kernelHeight: KH, kernelWidth: KW, dilationHeight: DH, dilationWidth: DW } = shape;
  const padTop = DH * (KH - 1) - shape.padTop, padLeft = DW * (KW - 1) - shape.padLeft;
  if (shape.strideHeight === 1 && shape.strideWidth === 1 && padTop >= 0 && padLeft >= 0) {
    // Stride 1: the convolution of the gradient with the weight flipped and transposed.
    const full: GeneralConvShape = {
      ...shape,
      inChannels: shape.outChannels,
      outChannels: shape.inChannels,
      height: shape.outHeight,
      width: shape.outWidth,
      padTop,
      padLeft,
      outHeight: shape.height,
      outWidth: shape.width,
    };
    const out = Tensor.empty([shape.batch, shape.inChannels, shape.height, shape.width]);
    runKernel(
      CONV_GENERAL_FORWARD,
      { shape: full, bias: !!bias, flipped: true },
      { x: grad, w: weight, out, ...(bias ? { b: bias } : {}) },
    );
    return out;
  }
  const dx = Tensor.empty([shape.batch, shape.inChannels, shape.height, shape.width]);
  runKernel(
    CONV_GENERAL_INPUT_GRAD,
    { shape, bias: !!bias },
    { g: grad, w: weight, dx, ...(bias ? { b: bias } : {}) },
  );
  return dx;
}

/** Lanes a general weight-gradient dispatch aims for (chunks of the batch add lanes). */
const WEIGHT_GRAD_LANES = 2048;

/**
 * The weight gradient [O, C / G, KH, KW] (and the bias gradient [O] when `withBias`) of the
 * general convolution `shape`, from its output gradient `grad` and input `x`.
 */
export function generalWeightGrad(
  grad: Tensor,
  x: Tensor,
  shape: GeneralConvShape,
  withBias: boolean,
): [Tensor, Tensor | null] {
  const weights = weightCount(shape);
  const biases = withBias ? shape.outChannels : 0;
  const perChunkLanes = weightGradLanesPerChunk(shape, withBias);
  const wanted = Math.min(shape.batch, Math.max(1, Math.ceil(WEIGHT_GRAD_LANES / perChunkLanes)));
  const perChunk = Math.ceil(shape.batch / wanted);
  const chunks = Math.ceil(shape.batch / perChunk);
  const partial = Tensor.empty([chunks, weights + biases]);
  runKernel(CONV_GENERAL_WEIGHT_GRAD, { shape, bias: withBias, perChunk }, { g: grad, x, partial });
  const weightGrad = Tensor.empty([
    shape.outChannels,
    shape.inChannels / shape.groups,
    shape.kernelHeight,
    shape.kernelWidth,
  ]);
  const biasGrad = withBias ? Tensor.empty([shape.outChannels]) : null;
  runKernel(
    CONV2D_SUM_CHUNKS,
    { chunks, weights, biases },
    { partial, weightGrad, ...(biasGrad ? { biasGrad } : {}) },
  );
  partial.dispose();
  return [weightGrad, biasGrad];
}
