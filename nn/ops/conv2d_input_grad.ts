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

import { u32 } from "../gpu/kernel.ts";
import type { KernelPolicy } from "../gpu/policy.ts";
import { type KernelPlan, type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";
import { type ConvShape, convShapeKey } from "./conv2d_shape.ts";
import { expandedGradientRow } from "./pool_quads.ts";

/** Accumulators a lane must hold for one row of one channel, under any policy. */
const MAX_ROW_ACCUMULATORS = 128;
const UNIFORM_LIMIT_BYTES = 65536;
/** Lanes from which a dispatch runs 64-wide workgroups (else the policy's narrow ones). */
const WIDE_WORKGROUP_LANES = 64 * 16;

/** What one lane computes: a block of input-gradient rows (all columns) x input channels. */
interface InputGradBlock {
  rows: number;
  channels: number;
}

/**
 * What a weight load costs the model, in cycles per 8 lanes: the weights' offsets depend on the
 * loop over output channels, so each is a gather. Fitted to the study's conv2 at batch 32 and
 * 128, blocks timed one by one in one session: the fewer channels per lane the faster, down to 2
 * (1 x 10: 4.3 ms at batch 128), so that 6 rows x 2 channels ran 2.31-2.37 ms against 2.67-2.74
 * for the 4 x 5 that 35 cycles chose (0.75-0.76 against 0.83-0.86 ms at batch 32).
 */
const WEIGHT_LOAD_CYCLES = 100;

/**
 * Rows and input channels per lane (at most `accumulators` values), by an llvmpipe cost model like
 * the forward kernel's (an FMA here ~1.5 cycles: see `inputGradBody`); null when even one row of
 * one channel exceeds `MAX_ROW_ACCUMULATORS`.
 */
function inputGradBlock(
  shape: ConvShape,
  policy: Pick<KernelPolicy, "convLanes" | "inputGradRows" | "inputGradAccumulators">,
): InputGradBlock | null {
  const { convLanes: lanesWanted, inputGradRows: maxRows, inputGradAccumulators: accumulators } =
    policy;
  const { inChannels: C, height: H, width: W, kernelHeight: KH, kernelWidth: KW } = shape;
  const { outHeight: OH, outWidth: OW, padding: P } = shape;
  if (W > MAX_ROW_ACCUMULATORS) return null;
  let pairs = 0; // (ox, kx) pairs that land inside the row
  for (let ox = 0; ox < OW; ox++) {
    for (let kx = 0; kx < KW; kx++) pairs += +(ox + kx - P >= 0 && ox + kx - P < W);
  }
  let best: InputGradBlock | null = null, bestCost = Infinity;
  for (let rows = 1; rows <= Math.min(H, maxRows); rows++) {
    for (let channels = 1; channels <= C; channels++) {
      if (rows * channels * W > accumulators) continue;
      const fmas = channels * rows * KH * pairs * Math.min(1, OH / H);
      const texels = (rows + KH - 1) * Math.ceil(OW / 4);
      const lanes = shape.batch * Math.ceil(H / rows) * Math.ceil(C / channels);
      const waste = (Math.ceil(H / rows) * rows / H) * (Math.ceil(C / channels) * channels / C);
      const starve = lanes < lanesWanted ? lanesWanted / lanes : 1;
      const weights = channels * KH * KW * WEIGHT_LOAD_CYCLES;
      const cost = (texels * 150 + weights + fmas * 1.5) / fmas * waste * starve;
      if (cost < bestCost) [best, bestCost] = [{ rows, channels }, cost];
    }
  }
  return best;
}

/**
 * Whether this kernel computes the input gradient of `shape`: stride 1, a row within the register
 * budget and weights within a uniform buffer (64 KiB). Whether a block exists does not depend on
 * the lanes wanted, only its choice does.
 */
export function transposedInputGradApplies(shape: ConvShape): boolean {
  const { outChannels: O, inChannels: C, kernelHeight: KH, kernelWidth: KW } = shape;
  return shape.stride === 1 && O * C * KH * KW * 4 <= UNIFORM_LIMIT_BYTES &&
    inputGradBlock(shape, {
        convLanes: 0,
        inputGradRows: 1,
        inputGradAccumulators: MAX_ROW_ACCUMULATORS,
      }) !== null;
}

/** What an input-gradient kernel is specialised on. */
interface InputGradOptions {
  shape: ConvShape;
  /**
   * The output gradient comes as relu(maxPool2d(·, 2))'s: its pooled gradient `g` and packed
   * argmaxes `indices`, expanded row by row as the kernel reads it.
   */
  pooled: boolean;
}

/** Lanes over (image, row block); input-channel blocks along z. */
interface InputGradPlan extends KernelPlan {
  block: InputGradBlock;
  lanes: number;
}

function planInputGrad({ shape }: InputGradOptions, policy: KernelPolicy): InputGradPlan {
  const block = inputGradBlock(shape, policy);
  if (!block) throw new Error(`conv2d input gradient: no block fits ${convShapeKey(shape)}`);
  const lanes = shape.batch * Math.ceil(shape.height / block.rows);
  const workgroupSize = lanes >= WIDE_WORKGROUP_LANES ? 64 : policy.narrowWorkgroup;
  return {
    block,
    lanes,
    workgroupSize,
    groups: Math.ceil(lanes / workgroupSize),
    layers: Math.ceil(shape.inChannels / block.channels),
  };
}

/**
 * Each lane loads, per output channel, the gradient rows its input rows meet and its channels'
 * weights, and adds every product into the input positions it lands on.
 */
function inputGradBody({ shape, pooled }: InputGradOptions, plan: InputGradPlan): string {
  const { batch, inChannels: C, outChannels: O, height: H, width: W } = shape;
  const { kernelHeight: KH, kernelWidth: KW, padding: P, outHeight: OH, outWidth: OW } = shape;
  const { block: { rows, channels }, lanes, workgroupSize } = plan;
  const gRows = rows + KH - 1;
  const vectorRows = OW % 4 === 0;
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
    const row = pooled
      ? expandedGradientRow({
        grad: "g",
        indices: "indices",
        first: `((n * ${u32(O)} + o) * ${u32(OH / 2)} + u32(top + ${j}) / 2u) * ${u32(OW / 8)}`,
        lower: `(u32(top + ${j}) & 1u) == 1u`,
        quads: OW / 8,
        assign: (x, value) => `g${j}_${x} = ${value};`,
        prefix: `p${j}`,
      })
      : `let rowBase = ((n * ${u32(O)} + o) * ${u32(OH)} + u32(top + ${j})) * ${u32(OW)};\n` +
        loads.join("\n");
    rowLoads.push(
      `if (top + ${j} >= 0 && top + ${j} < ${OH}) {\n      ` +
        `${row.replace(/\n/g, "\n      ")}\n    }`,
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
  // Per gradient row j (a row outside the gradient is skipped), each accumulator adds the sum of
  // that row's products: on llvmpipe the products load their operands either way, but an
  // accumulator (spilled, in a block this large) is loaded and stored once per row, not per FMA.
  const fmas: string[] = [];
  for (let j = 0; j < gRows; j++) {
    const body: string[] = [];
    for (let r = 0; r < rows; r++) {
      const ky = r + KH - 1 - j;
      if (ky < 0 || ky >= KH) continue;
      for (let q = 0; q < channels; q++) {
        for (let ix = 0; ix < W; ix++) {
          const terms: string[] = [];
          for (let kx = 0; kx < KW; kx++) {
            const ox = ix - kx + P;
            if (ox >= 0 && ox < OW) terms.push(`w${q}_${ky}_${kx} * g${j}_${ox}`);
          }
          if (terms.length > 0) body.push(`a${q}_${r}_${ix} += ${terms.join(" + ")};`);
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
      if (vectorStores(shape)) {
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
  return /* wgsl */ `
  // conv2d input gradient (transposed, stride 1): grad [${batch}, ${O}, ${OH}, ${OW}] -> dx
  // [${batch}, ${C}, ${H}, ${W}], kernel ${KH}x${KW} padding ${P}, ${rows} rows x ${channels} channels per lane
  // Rows are the slowest-varying index, so that the lanes of a workgroup skip the same
  // out-of-range gradient rows.
  let lane = min(group * ${u32(workgroupSize)} + lid, ${u32(lanes - 1)});
  let n = lane % ${u32(batch)};
  let iy0 = (lane / ${u32(batch)}) * ${u32(rows)};
  let c0 = ${plan.layers === 1 ? "0u" : `min(wid.z * ${u32(channels)}, ${u32(C - channels)})`};
  let top = i32(iy0) + ${P - (KH - 1)};
  ${accumulators.join("\n  ")}
  ${gDeclarations}
  for (var o = 0u; o < ${u32(O)}; o++) {
    ${rowLoads.join("\n    ")}
    ${weights.join("\n    ")}
    ${fmas.join("\n    ")}
  }
  if (group * ${u32(workgroupSize)} + lid >= ${u32(lanes)}) { return; }
  ${stores.join("\n  ")}`;
}

/** Whether lanes store the input gradient four columns at a time. */
function vectorStores(shape: ConvShape): boolean {
  return shape.width % 4 === 0;
}

/** The transposed input-gradient kernel: the gradient g read as an input, weights as a uniform. */
const CONV2D_INPUT_GRAD: KernelSpec<InputGradOptions, InputGradPlan> = {
  name: "conv2d_input_grad",
  key: ({ shape, pooled }) => convShapeKey(shape) + (pooled ? "_pooled" : ""),
  bindings: ({ shape, pooled }) => [
    { name: "g", role: "input", uniform: true },
    ...(pooled ? [{ name: "indices", role: "input", uniform: true } as const] : []),
    {
      name: "w",
      role: "uniform",
      type: `array<vec4<f32>, ${
        Math.ceil(shape.outChannels * shape.inChannels * shape.kernelHeight * shape.kernelWidth / 4)
      }>`,
    },
    { name: "dx", role: "write", type: vectorStores(shape) ? "vec4<f32>" : "f32" },
  ],
  plan: planInputGrad,
  body: (options, { plan }) => inputGradBody(options, plan),
};

/**
 * The input gradient of a convolution that `transposedInputGradApplies` to. With `indices`,
 * `grad` is relu(maxPool2d(output, 2))'s pooled gradient and `indices` its packed argmaxes
 * (`runPooledForward`'s): the input gradient is that of the expanded output gradient, which is
 * never written.
 */
export function transposedInputGrad(
  grad: Tensor,
  weight: Tensor,
  shape: ConvShape,
  options: { indices?: Tensor } = {},
): Tensor {
  const dx = Tensor.empty([shape.batch, shape.inChannels, shape.height, shape.width]);
  const { indices } = options;
  runKernel(
    CONV2D_INPUT_GRAD,
    { shape, pooled: indices !== undefined },
    { g: grad, w: weight, dx, ...(indices ? { indices } : {}) },
  );
  return dx;
}
