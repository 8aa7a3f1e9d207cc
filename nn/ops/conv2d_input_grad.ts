/**
 * The conv2d input gradient for stride 1, as a transposed convolution: each lane owns whole rows
 * of the input gradient (a block of rows x every column x a block of input channels) and adds
 * every output-gradient value into the input positions it touches, so no FMA is spent on the
 * zero padding a "full" convolution of the gradient would multiply through.
 *
 * dx[n, c, iy, ix] = Σ_o Σ_ky Σ_kx g[n, o, iy + p - ky, ix + p - kx] · w[o, c, ky, kx]
 *
 * @module
 */

import { gpu } from "../device.ts";
import { type Access, grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch, type Resource } from "../stream.ts";
import { releaseTexture, tensorTexture, textureReaders } from "../texture.ts";
import { Tensor } from "../tensor.ts";
import type { ConvShape } from "./conv2d_shape.ts";

const MAX_ACCUMULATORS = 128;
const UNIFORM_LIMIT_BYTES = 65536;

/** Rows and input channels per lane, by the same llvmpipe cost model as the forward kernel. */
function inputGradBlock(shape: ConvShape): { rows: number; channels: number } | null {
  const { inChannels: C, height: H, width: W, kernelHeight: KH, kernelWidth: KW } = shape;
  const { outHeight: OH, outWidth: OW, padding: P } = shape;
  const lanesWanted = gpu().adapter.isFallbackAdapter ? 512 : 8192;
  let pairs = 0; // (ox, kx) pairs that land inside the row
  for (let ox = 0; ox < OW; ox++) {
    for (let kx = 0; kx < KW; kx++) pairs += +(ox + kx - P >= 0 && ox + kx - P < W);
  }
  let best: { rows: number; channels: number } | null = null, bestCost = Infinity;
  for (let rows = 1; rows <= Math.min(H, 8); rows++) {
    for (let channels = 1; channels <= C; channels++) {
      if (rows * channels * W > MAX_ACCUMULATORS) continue;
      const fmas = channels * rows * KH * pairs * Math.min(1, OH / H);
      const texels = (rows + KH - 1) * Math.ceil(OW / 4);
      const lanes = shape.batch * Math.ceil(H / rows) * Math.ceil(C / channels);
      const waste = (Math.ceil(H / rows) * rows / H) * (Math.ceil(C / channels) * channels / C);
      const starve = lanes < lanesWanted ? lanesWanted / lanes : 1;
      const cost = (texels * 150 + channels * KH * KW * 35 + fmas * 2.75) / fmas * waste * starve;
      if (cost < bestCost) [best, bestCost] = [{ rows, channels }, cost];
    }
  }
  return best;
}

/**
 * The input gradient of a stride-1 convolution, or null when this kernel does not apply (a row
 * wider than the register budget, or weights over 64 KiB).
 */
export function transposedInputGrad(grad: Tensor, weight: Tensor, shape: ConvShape): Tensor | null {
  const { batch, inChannels: C, outChannels: O, height: H, width: W } = shape;
  const { kernelHeight: KH, kernelWidth: KW, padding: P, outHeight: OH, outWidth: OW } = shape;
  const block = inputGradBlock(shape);
  if (shape.stride !== 1 || !block || O * C * KH * KW * 4 > UNIFORM_LIMIT_BYTES) return null;
  const { rows, channels } = block;
  const rowBlocks = Math.ceil(H / rows);
  const channelBlocks = Math.ceil(C / channels);
  const lanes = batch * rowBlocks;
  const workgroup = lanes >= 64 * 16 ? 64 : 8;
  const groups = Math.ceil(lanes / workgroup);
  const gRows = rows + KH - 1;
  const vectorRows = OW % 4 === 0;
  const vectorStores = W % 4 === 0;
  const out = Tensor.empty([batch, C, H, W]);

  const rowLoads: string[] = [];
  for (let j = 0; j < gRows; j++) {
    const loads = vectorRows
      ? Array.from({ length: OW / 4 }, (_, v) => {
        const texel = `gVec4((rowBase + ${u32(4 * v)}) / 4u)`;
        return `let t${j}_${v} = ${texel}; ` +
          Array.from({ length: 4 }, (_, c) => `g${j}_${4 * v + c} = t${j}_${v}.${"xyzw"[c]};`).join(
            " ",
          );
      })
      : Array.from({ length: OW }, (_, ox) => `g${j}_${ox} = gAt(rowBase + ${u32(ox)});`);
    rowLoads.push(
      `if (top + ${j} >= 0 && top + ${j} < ${OH}) {\n      ` +
        `let rowBase = ((n * ${u32(O)} + o) * ${u32(OH)} + u32(top + ${j})) * ${u32(OW)};\n      ` +
        `${loads.join("\n      ")}\n    }`,
    );
  }
  const gDeclarations = Array.from(
    { length: gRows },
    (_, j) => Array.from({ length: OW }, (_, ox) => `var g${j}_${ox} = 0.0;`).join(" "),
  ).join("\n  ");
  const weights: string[] = [];
  for (let q = 0; q < channels; q++) {
    for (let ky = 0; ky < KH; ky++) {
      for (let kx = 0; kx < KW; kx++) {
        const index = `(o * ${u32(C)} + c0 + ${u32(q)}) * ${u32(KH * KW)} + ${u32(ky * KW + kx)}`;
        weights.push(`let w${q}_${ky}_${kx} = w[(${index}) >> 2u][(${index}) & 3u];`);
      }
    }
  }
  // FMAs grouped by the gradient row they read: a row outside the gradient is skipped.
  const fmas: string[] = [];
  for (let j = 0; j < gRows; j++) {
    const body: string[] = [];
    for (let r = 0; r < rows; r++) {
      const ky = r + KH - 1 - j;
      if (ky < 0 || ky >= KH) continue;
      for (let q = 0; q < channels; q++) {
        for (let kx = 0; kx < KW; kx++) {
          for (let ox = 0; ox < OW; ox++) {
            const ix = ox + kx - P;
            if (ix < 0 || ix >= W) continue;
            body.push(`a${q}_${r}_${ix} += w${q}_${ky}_${kx} * g${j}_${ox};`);
          }
        }
      }
    }
    fmas.push(
      `if (top + ${j} >= 0 && top + ${j} < ${OH}) {\n      ${body.join("\n      ")}\n    }`,
    );
  }
  const accumulators: string[] = [];
  const stores: string[] = [];
  for (let q = 0; q < channels; q++) {
    for (let r = 0; r < rows; r++) {
      accumulators.push(
        Array.from({ length: W }, (_, ix) => `var a${q}_${r}_${ix} = 0.0;`).join(" "),
      );
      const row = `((n * ${u32(C)} + c0 + ${u32(q)}) * ${u32(H)} + iy0 + ${u32(r)}) * ${u32(W)}`;
      const inRange = `iy0 + ${u32(r)} < ${u32(H)}`;
      if (vectorStores) {
        for (let v = 0; v < W / 4; v++) {
          const values = Array.from({ length: 4 }, (_, c) => `a${q}_${r}_${4 * v + c}`).join(", ");
          stores.push(`if (${inRange}) { dx[(${row}) / 4u + ${u32(v)}] = vec4<f32>(${values}); }`);
        }
      } else {
        for (let ix = 0; ix < W; ix++) {
          stores.push(`if (${inRange}) { dx[${row} + ${u32(ix)}] = a${q}_${r}_${ix}; }`);
        }
      }
    }
  }
  const code = /* wgsl */ `
// conv2d input gradient (transposed, stride 1): grad [${batch}, ${O}, ${OH}, ${OW}] -> dx
// [${batch}, ${C}, ${H}, ${W}], kernel ${KH}x${KW} padding ${P}, ${rows} rows x ${channels} channels per lane
@group(0) @binding(0) var g: texture_2d<f32>;
${textureReaders("g")}
@group(0) @binding(1) var<uniform> w: array<vec4<f32>, ${Math.ceil(O * C * KH * KW / 4)}>;
@group(0) @binding(2) var<storage, read_write> dx: array<${vectorStores ? "vec4<f32>" : "f32"}>;

@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // Rows are the slowest-varying index, so that the lanes of a workgroup skip the same
  // out-of-range gradient rows.
  let lane = min(${workgroupIndex(groups)} * ${u32(workgroup)} + lid, ${u32(lanes - 1)});
  let n = lane % ${u32(batch)};
  let iy0 = (lane / ${u32(batch)}) * ${u32(rows)};
  let c0 = ${channelBlocks === 1 ? "0u" : `min(wid.z * ${u32(channels)}, ${u32(C - channels)})`};
  let top = i32(iy0) + ${P - (KH - 1)};
  ${accumulators.join("\n  ")}
  ${gDeclarations}
  for (var o = 0u; o < ${u32(O)}; o++) {
    ${rowLoads.join("\n    ")}
    ${weights.join("\n    ")}
    ${fmas.join("\n    ")}
  }
  if (${workgroupIndex(groups)} * ${u32(workgroup)} + lid >= ${u32(lanes)}) { return; }
  ${stores.join("\n  ")}
}`;
  const bindings: Access[] = ["texture", "uniform", "read_write"];
  const texture = tensorTexture(grad);
  const resources: Resource[] = [texture, weight.buffer, out.buffer];
  dispatch(
    kernel({
      name: `conv2d_input_grad_${batch}x${C}x${H}x${W}_${O}k${KH}x${KW}p${P}`,
      code,
      bindings,
    }),
    resources,
    [...grid(groups), channelBlocks],
  );
  releaseTexture(texture);
  return out;
}
