/**
 * The conv2d weight and bias gradients: lanes over (image chunk, output-channel block,
 * input-channel block), each accumulating its block's weights in registers; partial sums per
 * chunk are added up by a second kernel.
 *
 * @module
 */

import { gpu } from "../device.ts";
import { grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch } from "../stream.ts";
import { releaseTexture, tensorTexture, textureReaders } from "../texture.ts";
import { Tensor } from "../tensor.ts";
import { type ConvShape, segmentSource } from "./conv2d_shape.ts";

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
export function weightAndBiasGrad(
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
