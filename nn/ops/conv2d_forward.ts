/**
 * The conv2d forward kernel (also the input gradient's, with the weights read flipped and
 * transposed): each lane computes a block of output rows x pixels x channels chosen by a cost
 * model, loading each input row it meets once per input channel and each weight once. Pooled,
 * it stores relu(maxPool2d(output, 2)) and the packed argmaxes instead of the output.
 *
 * @module
 */

import { f32, u32 } from "../gpu/kernel.ts";
import { type KernelPolicy, kernelPolicy } from "../gpu/policy.ts";
import { type BindingSpec, type KernelPlan, type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { type ConvShape, convShapeKey, segmentSource } from "./conv2d_shape.ts";
import { relu1 } from "./nan_wgsl.ts";
import { PACKED_ARGMAX, quadMax } from "./pool_quads.ts";

/** Lanes from which a dispatch runs 64-wide workgroups (else the policy's narrow ones). */
const WIDE_WORKGROUP_LANES = 64 * 16;
const UNIFORM_LIMIT_BYTES = 65536;

/** How the forward kernel reads weight (o, c, ky, kx): as stored, or flipped and transposed. */
export type WeightOrder = "oihw" | "flipped_iohw";

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

/** Most FMAs unrolled per input channel, to bound shader size and compile time. */
const MAX_UNROLLED_FMAS = 6400;
/**
 * Most FMAs per input channel when there are several, so that the body is a loop: on llvmpipe
 * the study's conv2 (10 input channels, 5 x 5) ran 5-15% faster as 8 x 8 x 2 blocks (3,200
 * FMAs per channel) than as 8 x 8 x 3 or 8 x 8 x 4 (1.60-1.63 ms against 1.72-2.01 at batch
 * 128, 0.55-0.56 against 0.62-0.63 ms at batch 32, blocks timed one by one in one session),
 * while conv1 (one input channel, no loop) ran fastest with 6,000.
 */
const MAX_LOOPED_FMAS = 3200;

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
 *
 * Each accumulator adds the sum of one kernel row's products at a time (see `forwardBody`), so
 * spilled accumulators cost little and blocks may hold up to `convAccumulators` outputs; with
 * more than 12 pixels per row the row's input values no longer fit, which the model counts as
 * 2.75 cycles per FMA against 1.5. Blocks giving fewer lanes than `convLanes` cost that many
 * times more (a square root there gave small shapes blocks of 72 outputs, whose shaders
 * SwiftShader took minutes over until the device was lost). The weight loads' 70 is fitted to
 * the study's shapes (blocks timed side by side in one run): conv1 gets 6 x 8 x 5 (pooled
 * 0.88-1.18 ms against 0.94-1.39 for 8 x 8 x 2; not pooled about even with it, and 8 x 12 x 2 a
 * few percent faster; 8 x 16 x 2 was 15-30% slower). conv2 got 8 x 8 x 3 at batch 32 and
 * 8 x 8 x 4 at 128 (then 0.71-0.74 ms against 0.79-0.83 for 8 x 8 x 2 at batch 32, on another
 * CPU); timed again on 2026-12-04, 8 x 8 x 2 was the faster, which `MAX_LOOPED_FMAS` now gives.
 */
function forwardBlock(
  shape: ConvShape,
  policy: Pick<KernelPolicy, "convLanes" | "convAccumulators">,
  pooled = false,
): ForwardBlock {
  const { convLanes: lanesWanted, convAccumulators: accumulators } = policy;
  const {
    outChannels: O,
    kernelHeight: KH,
    kernelWidth: KW,
    stride: S,
    outHeight: OH,
    outWidth: OW,
  } = shape;
  const taps = KH * KW;
  const maxFmas = shape.inChannels > 1 ? MAX_LOOPED_FMAS : MAX_UNROLLED_FMAS;
  let best: ForwardBlock = pooled
    ? { rows: 2, pixels: 8, channels: 1 }
    : { rows: 1, pixels: Math.min(4, OW), channels: 1 };
  let bestCost = Infinity;
  // Pooled, a lane's block is whole 2 x 8 pooling quads.
  const pixelChoices = [4, 8, 12, 16, 24, 32].filter((p) =>
    p <= OW && OW % p === 0 && (!pooled || p % 8 === 0)
  );
  if (pixelChoices.length === 0) pixelChoices.push(Math.min(4, OW));
  for (const pixels of pixelChoices) {
    for (let rows = pooled ? 2 : 1; rows <= Math.min(OH, 8); rows += pooled ? 2 : 1) {
      for (let channels = 1; channels <= O; channels++) {
        const fmas = channels * rows * pixels * taps;
        if (channels * rows * pixels > accumulators || fmas > maxFmas) continue;
        const lanes = shape.batch * Math.ceil(OH / rows) * Math.ceil(OW / pixels) *
          Math.ceil(O / channels);
        const texels = ((rows - 1) * S + KH) * Math.ceil(((pixels - 1) * S + KW) / 4 + 1);
        // Wasted work where blocks overhang the output (rows, columns or channels past the end).
        const waste = (Math.ceil(OH / rows) * rows / OH) * (Math.ceil(O / channels) * channels / O);
        const starve = lanes < lanesWanted ? lanesWanted / lanes : 1;
        const fmaCost = pixels <= 12 ? 1.5 : 2.75;
        const cost = (texels * 150 + channels * taps * 70 + fmas * fmaCost) / fmas * waste * starve;
        if (cost < bestCost) [best, bestCost] = [{ rows, pixels, channels }, cost];
      }
    }
  }
  return best;
}

/** What a forward kernel is specialised on. */
interface ForwardOptions {
  shape: ConvShape;
  order: WeightOrder;
  bias: boolean;
  /** Writes relu(maxPool2d(output, 2)) and its packed argmaxes instead of the output. */
  pooled: boolean;
  /**
   * Also writes each lane's (count, mean, sum of squared deviations) of each of its channels'
   * outputs, for batch norm's statistics (`partials`, see `runForwardWithStatistics`).
   */
  statistics: boolean;
}

/** Lanes over (image, output-row block, column block); output-channel blocks along z. */
interface ForwardPlan extends KernelPlan {
  block: ForwardBlock;
  /** Lanes per channel block (the last workgroup's extra lanes only load). */
  lanes: number;
  /** Column blocks per output row. */
  blocksX: number;
}

function planForward({ shape, pooled }: ForwardOptions, policy: KernelPolicy): ForwardPlan {
  const block = forwardBlock(shape, policy, pooled);
  const blocksX = Math.ceil(shape.outWidth / block.pixels);
  const lanes = shape.batch * Math.ceil(shape.outHeight / block.rows) * blocksX;
  const workgroupSize = lanes >= WIDE_WORKGROUP_LANES ? 64 : policy.narrowWorkgroup;
  return {
    block,
    lanes,
    blocksX,
    workgroupSize,
    groups: Math.ceil(lanes / workgroupSize),
    layers: Math.ceil(shape.outChannels / block.channels),
  };
}

/** Whether the weights fit a uniform buffer (the cheapest loads on llvmpipe), else storage. */
function uniformWeights(shape: ConvShape): boolean {
  const { outChannels: O, inChannels: C, kernelHeight: KH, kernelWidth: KW } = shape;
  return O * C * KH * KW * 4 <= UNIFORM_LIMIT_BYTES;
}

/**
 * Whether lanes store four pixels at a time: whenever the output width is a multiple of 4, as
 * every block width `forwardBlock` offers such a width is one too.
 */
function vectorStores(shape: ConvShape): boolean {
  return shape.outWidth % 4 === 0;
}

function forwardBindings({ shape, bias, pooled, statistics }: ForwardOptions): BindingSpec[] {
  const weightVectors = Math.ceil(
    shape.outChannels * shape.inChannels * shape.kernelHeight * shape.kernelWidth / 4,
  );
  const biasVectors = Math.ceil(shape.outChannels / 4);
  return [
    { name: "x", role: "input", uniform: true },
    uniformWeights(shape)
      ? { name: "w", role: "uniform", type: `array<vec4<f32>, ${weightVectors}>` }
      : { name: "w", role: "read" },
    { name: "out", role: "write", type: vectorStores(shape) ? "vec4<f32>" : "f32" },
    ...(pooled ? [{ name: "indices", role: "write" }] : []),
    ...(statistics ? [{ name: "partials", role: "write", type: "vec4<f32>" }] : []),
    ...(bias ? [{ name: "b", role: "uniform", type: `array<vec4<f32>, ${biasVectors}>` }] : []),
  ] as BindingSpec[];
}

/**
 * Pooled stores of channel q of a lane's block: per 2 x 8 quad of outputs (bias added), the 4
 * windows' relu(max) as one vector and their packed argmaxes, as `maxPool2d`'s quad kernel
 * writes them from the stored output (the same pieces, so the same values, ties and codes).
 */
function pooledStores(shape: ConvShape, plan: ForwardPlan, q: number, plus: string): string[] {
  const { outChannels: O, outHeight: OH, outWidth: OW } = shape;
  const { rows, pixels } = plan.block;
  const channel = `oBase + ${u32(q)}`;
  const stores: string[] = [];
  for (let r = 0; r < rows; r += 2) {
    // Pooled row (oy0 + r) / 2; a quad's 4 pooled outputs are one vector.
    const row = `((n * ${u32(O)} + ${channel}) * ${u32(OH / 2)} + (oy0 + ${u32(r)}) / 2u) * ${
      u32(OW / 8)
    } + ox0 / 8u`;
    for (let v = 0; v < pixels / 8; v++) {
      const corner = (dr: number, dp: number) =>
        `vec4<f32>(${
          [0, 2, 4, 6].map((p) => `a${q}_${r + dr}_${8 * v + p + dp}`).join(", ")
        })${plus}`;
      stores.push(/* wgsl */ `if (${channel} < ${u32(O)} && oy0 + ${u32(r)} < ${u32(OH)}) {
      let v0 = ${corner(0, 0)};
      let v1 = ${corner(0, 1)};
      let v2 = ${corner(1, 0)};
      let v3 = ${corner(1, 1)};${quadMax("v", true)}
      out[${row} + ${u32(v)}] = result;
      indices[${row} + ${u32(v)}] = ${PACKED_ARGMAX};
  }`);
    }
  }
  return stores;
}

/**
 * The statistics of channel q of a lane's block (bias added): its count of outputs inside the
 * output, their mean, and the sum of their squared deviations from it, as one vector at
 * `partials[channel * lanes + lane]` (a channel the last channel block overlaps is written twice,
 * with the same values). Batch norm merges them (Chan et al.) instead of reading the output.
 */
function partialStores(shape: ConvShape, plan: ForwardPlan, q: number, plus: string): string {
  const { outHeight: OH, outWidth: OW } = shape;
  const { block: { rows, pixels }, lanes } = plan;
  const rowsOverhang = Math.ceil(OH / rows) * rows !== OH;
  const pixelsOverhang = Math.ceil(OW / pixels) * pixels !== OW;
  // The deviations are taken before the bias is added (it shifts only the mean).
  const values: string[] = [];
  const inside: string[] = [];
  for (let r = 0; r < rows; r++) {
    for (let p = 0; p < pixels; p++) {
      values.push(`a${q}_${r}_${p}`);
      const tests = [
        ...(rowsOverhang ? [`oy0 + ${u32(r)} < ${u32(OH)}`] : []),
        ...(pixelsOverhang ? [`ox0 + ${u32(p)} < ${u32(OW)}`] : []),
      ];
      inside.push(tests.join(" && "));
    }
  }
  const add = (k: number, term: string) => inside[k] ? `select(0.0, ${term}, ${inside[k]})` : term;
  const count = inside.every((test) => test === "")
    ? f32(values.length)
    : inside.map((_, k) => add(k, "1.0")).join(" + ");
  // One pass of sums about the block's first value (always inside the output), as batch norm's
  // own shares are taken: each accumulator is reloaded once.
  const sums = values.map((v, k) =>
    `{ let d = ${v} - shift; s1 += ${add(k, "d")}; s2 += ${add(k, "d * d")}; }`
  );
  return /* wgsl */ `{
    let n = ${count};
    let shift = ${values[0]};
    var s1 = 0.0;
    var s2 = 0.0;
    ${sums.join("\n    ")}
    let m2 = s2 - s1 * s1 / n;
    partials[(oBase + ${u32(q)}) * ${u32(lanes)} + lane] =
      vec4<f32>(n, shift + s1 / n${plus}, ${relu1("m2")}, 0.0);
  }`;
}

/**
 * The forward kernel's body: each lane computes a block of output rows x pixels x channels (see
 * `forwardBlock`), looping over input channels; per input channel it loads the input rows its
 * block meets once (zero where they fall in the padding) and every weight of its channels once.
 */
function forwardBody(
  { shape, order, bias, pooled, statistics }: ForwardOptions,
  plan: ForwardPlan,
): string {
  const { batch, inChannels: C, outChannels: O, height: H, width: W } = shape;
  const { kernelHeight: KH, kernelWidth: KW, stride: S, padding: P, outHeight: OH, outWidth: OW } =
    shape;
  const { block: { rows, pixels, channels }, lanes, blocksX, workgroupSize } = plan;
  const segment = (pixels - 1) * S + KW;
  const inputRows = (rows - 1) * S + KH;
  const loadWeight = (index: string) =>
    uniformWeights(shape) ? `w[(${index}) >> 2u][(${index}) & 3u]` : `w[${index}]`;
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
  // Each accumulator adds one kernel row's products at a time: on llvmpipe the products load
  // their operands anyway, and a spilled accumulator is loaded and stored once per kernel row,
  // not per FMA. With padding, a kernel row that meets no input row is skipped (the lanes of a
  // workgroup share their output rows, so mostly together).
  for (let q = 0; q < channels; q++) {
    for (let r = 0; r < rows; r++) {
      for (let ky = 0; ky < KH; ky++) {
        const input = r * S + ky;
        const run: string[] = [];
        for (let p = 0; p < pixels; p++) {
          const terms = Array.from(
            { length: KW },
            (_, kx) => `w${q}_${ky}_${kx} * r${input}_${p * S + kx}`,
          );
          run.push(`${acc(q, r, p)} += ${terms.join(" + ")};`);
        }
        fmas.push(
          P > 0
            ? `if (top + ${input} >= 0 && top + ${input} < ${H}) {\n      ${
              run.join("\n      ")
            }\n    }`
            : run.join("\n    "),
        );
      }
    }
  }
  for (let q = 0; q < channels; q++) {
    const channel = `oBase + ${u32(q)}`;
    const plus = bias ? ` + b[(${channel}) >> 2u][(${channel}) & 3u]` : "";
    if (statistics) stores.push(partialStores(shape, plan, q, plus));
    if (pooled) {
      stores.push(...pooledStores(shape, plan, q, plus));
      continue;
    }
    for (let r = 0; r < rows; r++) {
      const row = `((n * ${u32(O)} + ${channel}) * ${u32(OH)} + oy0 + ${u32(r)}) * ${
        u32(OW)
      } + ox0`;
      const inRange = `${channel} < ${u32(O)} && oy0 + ${u32(r)} < ${u32(OH)}`;
      if (vectorStores(shape)) {
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
  return /* wgsl */ `
  // conv2d ${
    formatShape([batch, C, H, W])
  } * [${O}, ${C}, ${KH}, ${KW}] stride ${S} padding ${P} (${order}),
  // ${rows} rows x ${pixels} pixels x ${channels} channels per lane
  let lane = min(group * ${u32(workgroupSize)} + lid, ${u32(lanes - 1)});
  let xBlock = lane % ${u32(blocksX)};
  let n = (lane / ${u32(blocksX)}) % ${u32(batch)};
  let oy0 = (lane / ${u32(blocksX * batch)}) * ${u32(rows)};
  let ox0 = xBlock * ${u32(pixels)};
  // Channels come from wid.z; the last block of a channel count that does not divide evenly
  // overlaps the one before (same values written twice).
  let oBase = ${plan.layers === 1 ? "0u" : `min(wid.z * ${u32(channels)}, ${u32(O - channels)})`};
  let ix0 = i32(ox0 * ${u32(S)}) - ${P};
  let top = i32(oy0 * ${u32(S)}) - ${P};
  ${accumulators.join("\n  ")}
  ${rowDeclarations}
  for (var c = 0u; c < ${u32(C)}; c++) {
    ${rowLoads.join("\n    ")}
    ${fmas.join("\n    ")}
  }
  if (group * ${u32(workgroupSize)} + lid >= ${u32(lanes)}) { return; }
  ${stores.join("\n  ")}`;
}

/** The conv2d forward kernel: x read as an input, weights (and bias) preferably as uniforms. */
const CONV2D_FORWARD: KernelSpec<ForwardOptions, ForwardPlan> = {
  name: "conv2d",
  key: ({ shape, order, bias, pooled, statistics }) =>
    `${order}_${convShapeKey(shape)}${bias ? "_bias" : ""}${pooled ? "_relu_pool2" : ""}` +
    `${statistics ? "_stats" : ""}`,
  bindings: forwardBindings,
  plan: planForward,
  body: (options, { plan }) => forwardBody(options, plan),
};

/**
 * The convolution of x with weight (read in `order`) plus bias, into a new
 * [batch, outChannels, outHeight, outWidth] tensor.
 */
export function runForward(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: ConvShape,
  order: WeightOrder,
): Tensor {
  const out = Tensor.empty([shape.batch, shape.outChannels, shape.outHeight, shape.outWidth]);
  runKernel(
    CONV2D_FORWARD,
    { shape, order, bias: !!bias, pooled: false, statistics: false },
    { x, w: weight, out, ...(bias ? { b: bias } : {}) },
  );
  return out;
}

/**
 * Whether `runPooledForward` applies to `shape`: an output of even height and a width that is a
 * multiple of 8 (whole 2 x 8 pooling quads, as `maxPool2d`'s quad kernel needs).
 */
export function pooledForwardApplies(shape: ConvShape): boolean {
  return shape.outHeight % 2 === 0 && shape.outWidth % 8 === 0;
}

/**
 * relu(maxPool2d(x * weight + bias, 2)) [batch, outChannels, outHeight / 2, outWidth / 2] in one
 * kernel, and the packed argmaxes of its quads (one float per 4 pooled outputs), as
 * `maxPool2d(..., { relu: true })` gives them, for its backward. Needs `pooledForwardApplies`.
 */
export function runPooledForward(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: ConvShape,
): { out: Tensor; indices: Tensor } {
  const { batch, outChannels: O, outHeight: OH, outWidth: OW } = shape;
  const out = Tensor.empty([batch, O, OH / 2, OW / 2]);
  const indices = Tensor.empty([batch * O * OH * OW / 16]);
  runKernel(
    CONV2D_FORWARD,
    { shape, order: "oihw", bias: !!bias, pooled: true, statistics: false },
    { x, w: weight, out, indices, ...(bias ? { b: bias } : {}) },
  );
  return { out, indices };
}

/**
 * `runForward` (weights as stored) that also writes, per output channel, one vector per lane of
 * the kernel: (count, mean, sum of squared deviations) of the outputs that lane computed, bias
 * added. `partials` is [outChannels, perChannel, 4]; merged (Chan et al.) they are the channel's
 * batch statistics, so batch norm need not read the output to get them.
 */
export function runForwardWithStatistics(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  shape: ConvShape,
): { out: Tensor; partials: Tensor; perChannel: number } {
  const options: ForwardOptions = {
    shape,
    order: "oihw",
    bias: !!bias,
    pooled: false,
    statistics: true,
  };
  const perChannel = planForward(options, kernelPolicy()).lanes;
  const out = Tensor.empty([shape.batch, shape.outChannels, shape.outHeight, shape.outWidth]);
  const partials = Tensor.empty([shape.outChannels, perChannel, 4]);
  runKernel(CONV2D_FORWARD, options, { x, w: weight, out, partials, ...(bias ? { b: bias } : {}) });
  return { out, partials, perChannel };
}
