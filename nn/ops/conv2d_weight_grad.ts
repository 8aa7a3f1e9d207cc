/**
 * The conv2d weight and bias gradients: lanes over (image chunk, output-channel block,
 * input-channel block), each accumulating its block's weights in registers; partial sums per
 * chunk are added up by a second kernel.
 *
 * @module
 */

import { u32 } from "../gpu/kernel.ts";
import type { KernelPolicy } from "../gpu/policy.ts";
import { type KernelPlan, type KernelSpec, planKernel, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";
import { type ConvShape, convShapeKey, segmentSource } from "./conv2d_shape.ts";
import { expandedGradientRow } from "./pool_quads.ts";
import { batchNormDx, dxCoefficientLoads } from "./batch_norm.ts";

/**
 * The (output, input) channel block of a weight-gradient lane with the most FMAs per texel
 * loaded, within `accumulators` weights.
 */
function weightGradBlocks(
  shape: ConvShape,
  segment: number,
  accumulators: number,
): [number, number] {
  const taps = shape.kernelHeight * shape.kernelWidth;
  let best: [number, number] = [1, 1], bestRatio = 0;
  for (let oBlock = 1; oBlock <= shape.outChannels; oBlock++) {
    for (let cBlock = 1; cBlock <= shape.inChannels; cBlock++) {
      if (oBlock * cBlock * taps > accumulators) continue;
      const texels = cBlock * shape.kernelHeight * Math.ceil(segment / 4) +
        oBlock * Math.ceil(shape.outWidth / 4);
      const ratio = oBlock * cBlock * taps * shape.outWidth / texels;
      if (ratio > bestRatio) [best, bestRatio] = [[oBlock, cBlock], ratio];
    }
  }
  return best;
}

/** Lanes from which a dispatch runs 64-wide workgroups (else the policy's narrow ones). */
const WIDE_WORKGROUP_LANES = 64 * 8;

/** What a weight-gradient kernel is specialised on. */
interface WeightGradOptions {
  shape: ConvShape;
  withBias: boolean;
  /**
   * The output gradient comes as relu(maxPool2d(·, 2))'s: its pooled gradient `g` and packed
   * argmaxes `indices`, expanded row by row as the kernel reads it.
   */
  pooled: boolean;
  /**
   * With `pooled`: the pooled op followed batch norm in training, so the output gradient is batch
   * norm's dx, computed per element from the expanded gradient, the convolution's output `z` and
   * the channel's `DX_COEFFICIENTS` (the input `bn`).
   */
  batchNorm?: boolean;
}

/** Lanes over (image chunk, output-channel block, input-channel block). */
interface WeightGradPlan extends KernelPlan {
  oBlock: number;
  cBlock: number;
  perChunk: number;
  chunks: number;
  lanes: number;
}

/** Input columns a lane's row of output pixels meets. */
function segmentLength(shape: ConvShape): number {
  return (shape.outWidth - 1) * shape.stride + shape.kernelWidth;
}

function planWeightGrad({ shape }: WeightGradOptions, policy: KernelPolicy): WeightGradPlan {
  const [oBlock, cBlock] = weightGradBlocks(
    shape,
    segmentLength(shape),
    policy.weightGradAccumulators,
  );
  const blocks = Math.ceil(shape.outChannels / oBlock) * Math.ceil(shape.inChannels / cBlock);
  const perChunk = Math.max(1, Math.floor(shape.batch * blocks / policy.weightGradLanes));
  const chunks = Math.ceil(shape.batch / perChunk);
  const lanes = chunks * blocks;
  const workgroupSize = lanes >= WIDE_WORKGROUP_LANES ? 64 : policy.narrowWorkgroup;
  return {
    oBlock,
    cBlock,
    perChunk,
    chunks,
    lanes,
    workgroupSize,
    groups: Math.ceil(lanes / workgroupSize),
  };
}

/**
 * Each lane takes a chunk of images, a block of output channels and a block of input channels,
 * and accumulates every (kernel row, kernel column) weight of those blocks in registers: per
 * output row it loads the gradient rows of its output channels and the input rows they meet (as
 * whole texels where aligned), then does every FMA those values allow. The bias gradient (the
 * sum of the output gradient per channel) rides along in lanes of the first input-channel block.
 */
function weightGradBody(
  { shape, withBias, pooled, batchNorm }: WeightGradOptions,
  plan: WeightGradPlan,
): string {
  const { inChannels: C, outChannels: O, height: H, width: W, kernelHeight: KH, kernelWidth: KW } =
    shape;
  const { stride: S, padding: P, outHeight: OH, outWidth: OW, batch } = shape;
  const { oBlock, cBlock, perChunk, lanes, workgroupSize } = plan;
  const weights = O * C * KH * KW;
  const width = weights + (withBias ? O : 0);
  const taps = KH * KW;
  const segment = segmentLength(shape);
  const cBlocks = Math.ceil(C / cBlock), oBlocks = Math.ceil(O / oBlock);

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
  // Batch norm's dx, as its backward kernel computes it (the same operations in the same order).
  const coefficientLoads = batchNorm
    ? Array.from(
      { length: oBlock },
      (_, ob) => dxCoefficientLoads("bn", `o0 + ${u32(ob)}`, O, `${ob}`),
    ).flat()
    : [];
  for (let ob = 0; ob < oBlock; ob++) {
    const gRow = `(n * ${u32(O)} + o0 + ${u32(ob)}) * ${u32(OH * OW)} + oy * ${u32(OW)}`;
    if (pooled) {
      if (batchNorm) {
        for (let q = 0; q < OW / 4; q++) {
          gLoads.push(`let zv${ob}_${q} = zVec4((${gRow}) / 4u + ${u32(q)});`);
          for (let c = 0; c < 4; c++) {
            gLoads.push(`let z${ob}_${4 * q + c} = zv${ob}_${q}.${"xyzw"[c]};`);
          }
        }
      }
      gLoads.push(expandedGradientRow({
        grad: "g",
        indices: batchNorm ? "codes" : "indices",
        first: `((n * ${u32(O)} + o0 + ${u32(ob)}) * ${u32(OH / 2)} + oy / 2u) * ${u32(OW / 8)}`,
        lower: "(oy & 1u) == 1u",
        quads: OW / 8,
        assign: (x, value) =>
          `let g${ob}_${x} = ${batchNorm ? batchNormDx(value, `z${ob}_${x}`, `${ob}`) : value};`,
        prefix: `p${ob}`,
      }));
    } else if (OW % 4 === 0) {
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
  return /* wgsl */ `
  // conv2d weight gradient: x [${batch}, ${C}, ${H}, ${W}], grad [${batch}, ${O}, ${OH}, ${OW}],
  // ${oBlock} output x ${cBlock} input channels per lane, ${perChunk} images per chunk
  let lane = group * ${u32(workgroupSize)} + lid;
  if (lane >= ${u32(lanes)}) { return; }
  let cb = lane % ${u32(cBlocks)};
  let chunk = lane / ${u32(cBlocks * oBlocks)};
  // The last block of a dimension that does not divide evenly overlaps the one before: both
  // compute and write the same values there.
  let c0 = min(cb * ${u32(cBlock)}, ${u32(C - cBlock)});
  let o0 = min(((lane / ${u32(cBlocks)}) % ${u32(oBlocks)}) * ${u32(oBlock)}, ${u32(O - oBlock)});
  let ix0 = ${-P};
  ${coefficientLoads.join("\n  ")}
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
  ${stores.join("\n  ")}`;
}

/** Partial weight (and bias) gradients per chunk of images: g and x read as inputs. */
const CONV2D_WEIGHT_GRAD: KernelSpec<WeightGradOptions, WeightGradPlan> = {
  name: "conv2d_weight_grad",
  key: ({ shape, withBias, pooled, batchNorm }) =>
    convShapeKey(shape) + (withBias ? "_bias" : "") + (pooled ? "_pooled" : "") +
    (batchNorm ? "_bn" : ""),
  bindings: ({ pooled, batchNorm }) => [
    { name: "g", role: "input", uniform: true },
    // Batch norm's argmaxes come straight from its kernel: read from storage, a few per row,
    // they cost less than the texture copy (a pass break) they would need.
    ...(batchNorm
      ? [
        { name: "codes", role: "read", type: "f32" } as const,
        { name: "z", role: "input", uniform: true } as const,
        { name: "bn", role: "read", type: "f32" } as const,
      ]
      : pooled
      ? [{ name: "indices", role: "input", uniform: true } as const]
      : []),
    { name: "x", role: "input", uniform: true },
    { name: "partial", role: "write" },
  ],
  plan: planWeightGrad,
  prelude: ({ batchNorm }) => batchNorm ? "fn codesAt(i: u32) -> f32 { return codes[i]; }" : "",
  body: (options, { plan }) => weightGradBody(options, plan),
};

/** What a chunk sum is specialised on: `chunks` rows of `weights` (+ `biases`) partial sums. */
export interface SumChunksOptions {
  chunks: number;
  weights: number;
  biases: number;
}

/** Weights (or biases) one chunk-sum lane adds up. */
const SUM_LANE_VALUES = 4;

/** A chunk sum's lanes, and whether each chunk's row is whole `vec4`s (read as such). */
function sumLayout({ weights, biases }: SumChunksOptions): { lanes: number; vec4Rows: boolean } {
  const width = weights + biases;
  return { lanes: Math.ceil(width / SUM_LANE_VALUES), vec4Rows: width % SUM_LANE_VALUES === 0 };
}

/**
 * Adds up the partial sums of every chunk, in chunk order: four neighbouring weights (or
 * biases) per lane, read as one `vec4` per chunk where the rows are whole `vec4`s. On llvmpipe
 * that took the study's two chunk sums (one dispatch) from 144-160 to 84-96 µs at batch 32 (a
 * quarter of the workgroups, a quarter of the storage loads).
 */
export const CONV2D_SUM_CHUNKS: KernelSpec<SumChunksOptions> = {
  name: "conv2d_sum_chunks",
  key: ({ chunks, weights, biases }) => `${chunks}x${weights}+${biases}`,
  bindings: (options) => [
    { name: "partial", role: "read", type: sumLayout(options).vec4Rows ? "vec4<f32>" : "f32" },
    { name: "weightGrad", role: "write" },
    ...(options.biases > 0 ? [{ name: "biasGrad", role: "write" } as const] : []),
  ],
  plan: (options, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(sumLayout(options).lanes / policy.elementwiseWorkgroup),
  }),
  body: (options, { plan }) => {
    const { chunks, weights, biases } = options;
    const width = weights + biases;
    const { lanes, vec4Rows } = sumLayout(options);
    const components = Array.from({ length: SUM_LANE_VALUES }, (_, k) => k);
    // Component k holds value i + k of each chunk's row.
    const value = (k: number) => `i + ${u32(k)}`;
    const add = vec4Rows
      ? `total += partial[chunk * ${u32(lanes)} + lane];`
      : components.map((k) =>
        `if (${value(k)} < ${u32(width)}) { total[${k}] += partial[chunk * ${u32(width)} + ${
          value(k)
        }]; }`
      ).join("\n    ");
    const store = (k: number) =>
      `if (${value(k)} < ${u32(weights)}) { weightGrad[${value(k)}] = total[${k}]; }` +
      (biases > 0
        ? ` else if (${value(k)} < ${u32(width)}) ` +
          `{ biasGrad[${value(k)} - ${u32(weights)}] = total[${k}]; }`
        : "");
    return /* wgsl */ `
  let lane = group * ${u32(plan.workgroupSize)} + lid;
  if (lane >= ${u32(lanes)}) { return; }
  let i = lane * ${u32(SUM_LANE_VALUES)};
  var total = vec4<f32>(0.0);
  for (var chunk = 0u; chunk < ${u32(chunks)}; chunk++) {
    ${add}
  }
  ${components.map(store).join("\n  ")}`;
  },
};

/**
 * Weight and bias gradients: partial sums per chunk of images (see `weightGradBody`), then
 * added up over the chunks. With `indices`, `grad` is relu(maxPool2d(output, 2))'s pooled
 * gradient and `indices` its packed argmaxes (`runPooledForward`'s): the gradients are those of
 * the expanded output gradient, which is never written.
 */
export function weightAndBiasGrad(
  grad: Tensor,
  x: Tensor,
  shape: ConvShape,
  options: {
    withBias: boolean;
    indices?: Tensor;
    batchNorm?: { z: Tensor; coefficients: Tensor };
  },
): [Tensor, Tensor | null] {
  const { outChannels: O, inChannels: C, kernelHeight: KH, kernelWidth: KW } = shape;
  const { withBias, indices, batchNorm } = options;
  if (batchNorm && !indices) {
    throw new Error("weightAndBiasGrad: batch norm's dx needs the pooled gradient's indices");
  }
  const kernelOptions = {
    shape,
    withBias,
    pooled: indices !== undefined,
    batchNorm: batchNorm !== undefined,
  };
  const weights = O * C * KH * KW;
  const biases = withBias ? O : 0;
  const { chunks } = planKernel(CONV2D_WEIGHT_GRAD, kernelOptions);
  const partial = Tensor.empty([chunks, weights + biases]);
  runKernel(CONV2D_WEIGHT_GRAD, kernelOptions, {
    g: grad,
    x,
    partial,
    ...(batchNorm
      ? { codes: indices!, z: batchNorm.z, bn: batchNorm.coefficients }
      : indices
      ? { indices }
      : {}),
  });
  const weightGrad = Tensor.empty([O, C, KH, KW]);
  const biasGrad = withBias ? Tensor.empty([O]) : null;
  runKernel(
    CONV2D_SUM_CHUNKS,
    { chunks, weights, biases },
    { partial, weightGrad, ...(biasGrad ? { biasGrad } : {}) },
  );
  partial.dispose();
  return [weightGrad, biasGrad];
}
