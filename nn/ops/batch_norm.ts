/**
 * Batch normalisation of [N, C] (per feature, as BatchNorm1d) and [N, C, H, W] (per channel, as
 * BatchNorm2d) tensors, with running statistics updated in place on the GPU.
 *
 * Each op is one dispatch with one workgroup per channel (see the cost table in
 * docs/DESIGN.md): the workgroup reads its channel's M = N·H·W values through a texture, reduces
 * them (each invocation a strided share, then a tree in workgroup memory), and reads them again
 * to write its output with vec4 stores. The forward reduces the channel's mean and sum of
 * squared deviations and normalises; the backward reduces the sums of grad and grad·x̂ and
 * writes dx. Invocation 0 writes the per-channel results: the saved statistics, the running
 * statistics, dweight and dbias.
 *
 * The invocations' shares merge with Chan et al.'s parallel variance formula, so the variance
 * does not suffer the cancellation of E[x²] - E[x]²; means are kept relative to the channel's
 * first value (its origin), and x is centred as (x - origin) - offset, so that data with
 * |mean| >> std keeps its digits in f32. When H·W is a multiple of 4 the kernels read and write
 * vec4s.
 *
 * `batchNormReluMaxPool2d` fuses batch norm, ReLU and 2×2 max pooling: the same statistics, then
 * each workgroup pools its channel's normalised values in "quads" of 4 windows (as `maxPool2d`'s
 * 2×2 kernels), so no full-size activation or gradient is ever written but dx.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { type Access, f32, grid, u32, workgroupIndex } from "../kernel.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { relu1 } from "./nan_wgsl.ts";
import { PACKED_ARGMAX, quadCorners, quadGradient, quadMax, spreadGradient } from "./pool_quads.ts";
import { declareTensors, dispatchTensors, type TensorBinding } from "./tensor_bindings.ts";

/**
 * Invocations per workgroup (a power of two, for the tree). One SIMD vector: llvmpipe runs a
 * workgroup with barriers as one coroutine per 8 lanes, and a channel's loop ran 2-4x slower
 * with 64-256 invocations than with 8 (measured: 1.5 vs 3.2-3.7 ms forward on [128,10,24,24]).
 */
const WORKGROUP = 8;

/** Options of `batchNorm`. */
export interface BatchNormOptions {
  /** Per-channel scale [C]; absent: no scale (affine off). */
  weight?: Tensor;
  /** Per-channel shift [C]; absent: no shift. */
  bias?: Tensor;
  /** Running mean [C]: updated in place in training, used in eval. */
  runningMean?: Tensor;
  /** Running unbiased variance [C]: updated in place in training, used in eval. */
  runningVar?: Tensor;
  /** Normalise with the batch's statistics (true) or the running ones (false). */
  training: boolean;
  /** Weight of the batch statistics in the running ones; default 0.1. */
  momentum?: number;
  /** Added to the variance before the square root; default 1e-5. */
  eps?: number;
}

/** How a channel's values lie in memory, in units of `width` floats. */
interface Layout {
  channels: number;
  /** Values per channel (M). */
  count: number;
  /** 4 when H·W is a multiple of 4 (vec4 loads and stores), else 1. */
  width: number;
  /** Units per (n, c) row: H·W / width. */
  rowUnits: number;
  /** Units per channel: N · rowUnits. */
  units: number;
}

function layoutOf(shape: readonly number[]): Layout {
  const channels = shape[1];
  const spatial = shape.slice(2).reduce((a, b) => a * b, 1);
  const width = spatial % 4 === 0 ? 4 : 1;
  const rowUnits = spatial / width;
  const units = shape[0] * rowUnits;
  return { channels, count: shape[0] * spatial, width, rowUnits, units };
}

/**
 * WGSL declarations of a kernel's bindings (a storage binding's `type` may be "V", the layout's
 * unit); each texture also gets `<name>Unit(i)`, its unit i.
 */
function declare(bound: readonly TensorBinding[], l: Layout): string {
  const units = bound.filter((b) => b.access === "texture").map(({ name }) =>
    `fn ${name}Unit(i: u32) -> V { return ${l.width === 4 ? `${name}Vec4(i)` : `${name}At(i)`}; }`
  );
  return [declareTensors(bound), ...units].join("\n");
}

/** The WGSL of a kernel over channels, phase by phase (see `encodeChannels`). */
interface ChannelPhases {
  helpers?: string;
  setup: string;
  reduce?: { init: string; unit: string; share: string; combine: string; overQuads?: boolean };
  finish: string;
  mapUnit?: string;
  /** Run `mapUnit` over the channel's quads (see `quadLoop`) rather than its units. */
  mapOverQuads?: boolean;
}

/**
 * Encodes one kernel over every channel, a workgroup each. WGSL, in order: `setup` (sees `c`
 * and `lid`); the optional reduction: `init`, then `unit` for each unit `i` of the invocation's
 * share, then `share` (a vec4 expression: the invocation's result), merged over the workgroup
 * by a tree of `combine` (an expression of `a` and `b`) into `merged`; `finish` (per-channel
 * values; `lid == 0` writes the per-channel results); and `mapUnit` for each unit `i` again.
 */
function encodeChannels(
  name: string,
  l: Layout,
  bound: readonly TensorBinding[],
  phases: ChannelPhases,
  pool?: { height: number; width: number },
): void {
  const wg = WORKGROUP;
  const iterations = Math.ceil(l.units / wg);
  const guard = l.units % wg !== 0 ? "if (m < UNITS)" : "";
  const unitLoop = (body: string) => /* wgsl */ `
  for (var k = 0u; k < ${u32(iterations)}; k++) {
    let m = lid + k * WG;
    ${guard} {
      let i = unitAt(c, m);
${body}
    }
  }`;
  // Quads: 4 adjacent 2×2 windows (a 2 × 8 block of input, 4 pooled outputs) of 2×2 pooling,
  // for planes with an even height and a width that is a multiple of 8. The body sees `p`, the
  // quad's pooled vec4 (and saved code) index, and `top`, the texel index of its upper left.
  const quads = pool ? l.count / 16 : 0;
  const quadsPerPlane = pool ? (pool.height / 2) * (pool.width / 8) : 0;
  const quadLoop = (body: string) => /* wgsl */ `
  for (var k = 0u; k < ${u32(Math.ceil(quads / wg))}; k++) {
    let m = lid + k * WG;
    ${quads % wg !== 0 ? `if (m < ${u32(quads)})` : ""} {
      let plane = (m / ${u32(quadsPerPlane)}) * C + c;
      let r = m % ${u32(quadsPerPlane)};
      let p = plane * ${u32(quadsPerPlane)} + r;
      let top = plane * ROW_UNITS + (r / ${u32(pool ? pool.width / 8 : 1)}) * ${
    u32(pool ? pool.width / 2 : 1)
  } + 2u * (r % ${u32(pool ? pool.width / 8 : 1)});
${body}
    }
  }`;
  const loop = (body: string, overQuads = false) => overQuads ? quadLoop(body) : unitLoop(body);
  const r = phases.reduce;
  const reduce = r
    ? /* wgsl */ `
  ${r.init}
  ${loop(r.unit, r.overQuads)}
  scratch[lid] = ${r.share};
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let a = scratch[lid];
      let b = scratch[lid + stride];
      scratch[lid] = ${r.combine};
    }
    workgroupBarrier();
  }
  let merged = scratch[0];`
    : "";
  const code = /* wgsl */ `
const C: u32 = ${u32(l.channels)};
const COUNT: f32 = ${f32(l.count)};
const WIDTH: u32 = ${u32(l.width)};
const ROW_UNITS: u32 = ${u32(l.rowUnits)};
const UNITS: u32 = ${u32(l.units)};
const WG: u32 = ${u32(wg)};
alias V = ${l.width === 4 ? "vec4<f32>" : "f32"};
${declare(bound, l)}
${r ? `var<workgroup> scratch: array<vec4<f32>, ${wg}>;` : ""}
${pool ? `// Texels per input row.\nconst ROW_TEXELS: u32 = ${u32(pool.width / 4)};` : ""}

// Index (in units) of unit m of channel c, m running over (n, h, w).
fn unitAt(c: u32, m: u32) -> u32 {
  return (m / ROW_UNITS) * (C * ROW_UNITS) + c * ROW_UNITS + m % ROW_UNITS;
}
fn hsum(v: V) -> f32 { return ${l.width === 4 ? "dot(v, V(1.0))" : "v"}; }
fn lead(v: V) -> f32 { return ${l.width === 4 ? "v.x" : "v"}; }
// Values of the units invocation lid visits.
fn shareCount(lid: u32) -> f32 {
  return f32(select(0u, (UNITS - lid + WG - 1u) / WG, lid < UNITS) * WIDTH);
}
${phases.helpers ?? ""}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = ${workgroupIndex(l.channels)};
  ${grid(l.channels)[1] > 1 ? "if (c >= C) { return; }" : ""}
${phases.setup}
${reduce}
${phases.finish}
${phases.mapUnit ? loop(phases.mapUnit, phases.mapOverQuads) : ""}
}`;
  dispatchTensors(name, code, bound, l.channels);
}

/**
 * One invocation's (count, mean, M2) from its count and its sums of d and d² (d = x - origin),
 * and Chan et al.'s merge of two such shares (either count may be 0).
 */
const CHAN_MERGE = /* wgsl */ `
fn shareStats(n: f32, s1: f32, s2: f32) -> vec4<f32> {
  if (n == 0.0) { return vec4<f32>(0.0); }
  // Clamps rounding below 0, but keeps a NaN (from NaN or infinite x): WGSL's max may drop it.
  let m2 = s2 - s1 * s1 / n;
  return vec4<f32>(n, s1 / n, ${relu1("m2")}, 0.0);
}
fn chanMerge(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  let total = a.x + b.x;
  if (b.x == 0.0) { return a; }
  if (a.x == 0.0) { return b; }
  let delta = b.y - a.y;
  let mean = a.y + delta * b.x / total;
  return vec4<f32>(total, mean, a.z + b.z + delta * delta * a.x * b.x / total, 0.0);
}`;

function checkChannelTensor(name: string, t: Tensor | undefined, x: Tensor): void {
  if (!t) return;
  const channels = x.shape[1];
  if (t.rank !== 1 || t.shape[0] !== channels) {
    throw new Error(
      `batchNorm: ${name} shape ${formatShape(t.shape)} does not match x ` +
        `${formatShape(x.shape)} (needs [${channels}])`,
    );
  }
  if (t.dtype !== "f32") throw new Error(`batchNorm: ${name} must be f32, got ${t.dtype}`);
}

function checkOptions(x: Tensor, options: BatchNormOptions): void {
  if (x.rank < 2 || x.shape[1] === 0 || x.size === 0) {
    throw new Error(
      `batchNorm: needs x of shape [N, C] or [N, C, H, W] with values, got ${formatShape(x.shape)}`,
    );
  }
  if (x.dtype !== "f32") throw new Error(`batchNorm: needs an f32 tensor, got ${x.dtype}`);
  for (const name of ["weight", "bias", "runningMean", "runningVar"] as const) {
    checkChannelTensor(name, options[name], x);
  }
  if (!options.training && (!options.runningMean || !options.runningVar)) {
    throw new Error("batchNorm: eval mode (training: false) needs runningMean and runningVar");
  }
  if (!!options.runningMean !== !!options.runningVar) {
    throw new Error("batchNorm: give both runningMean and runningVar, or neither");
  }
  if (options.runningMean && options.runningMean === options.runningVar) {
    throw new Error("batchNorm: runningMean and runningVar must be different tensors");
  }
  if (options.training && x.size / x.shape[1] < 2) {
    throw new Error(
      `batchNorm: training needs more than one value per channel, got x ${formatShape(x.shape)}`,
    );
  }
}

/** "train" or "eval", and x's shape: what every kernel name holds. */
function kernelKey(x: Tensor, training: boolean): string {
  return `${training ? "train" : "eval"}_${x.shape.join("x")}`;
}

/** [x, weight?, bias?]: the inputs recorded for autograd (never the running statistics). */
function differentiableInputs(x: Tensor, { weight, bias }: BatchNormOptions): Tensor[] {
  return [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
}

/**
 * The bindings a forward kernel starts with: x, the running statistics, weight and bias (those
 * given), the saved statistics and the output.
 */
function forwardBindings(
  x: Tensor,
  options: BatchNormOptions,
  stats: Tensor,
  out: Tensor,
): TensorBinding[] {
  const { weight, bias, runningMean, runningVar, training } = options;
  const runningAccess: Access = training ? "read_write" : "read";
  return [
    { name: "x", tensor: x, access: "texture" },
    ...(runningMean && runningVar
      ? [
        { name: "runningMean", tensor: runningMean, access: runningAccess, type: "f32" },
        { name: "runningVar", tensor: runningVar, access: runningAccess, type: "f32" },
      ]
      : []),
    ...(weight ? [{ name: "weight", tensor: weight, access: "read" as const, type: "f32" }] : []),
    ...(bias ? [{ name: "bias", tensor: bias, access: "read" as const, type: "f32" }] : []),
    { name: "stats", tensor: stats, access: "read_write", type: "f32" },
    { name: "out", tensor: out, access: "read_write", type: "V" },
  ];
}

/**
 * The phases of a forward kernel before its `mapUnit`: the channel's statistics (the batch's in
 * training, else the running ones), saved to `stats`, and the running update in training. After
 * them y = ((x - origin) - offset) * scale + shift.
 */
function statisticsPhases(options: BatchNormOptions): Omit<ChannelPhases, "mapUnit"> {
  const { weight, bias, runningMean, training } = options;
  const momentum = options.momentum ?? 0.1, eps = options.eps ?? 1e-5;
  const statistics = training
    ? /* wgsl */ `
  let offset = merged.y;
  let mean = origin + offset;
  let variance = merged.z / COUNT;`
    : /* wgsl */ `
  let offset = 0.0;
  let mean = origin;
  let variance = runningVar[c];`;
  const updateRunning = training && runningMean
    ? /* wgsl */ `
    runningMean[c] = ${f32(1 - momentum)} * runningMean[c] + ${f32(momentum)} * mean;
    runningVar[c] = ${f32(1 - momentum)} * runningVar[c] +
      ${f32(momentum)} * merged.z / (COUNT - 1.0);`
    : "";
  return {
    helpers: training ? CHAN_MERGE : "",
    // Sums are taken about the channel's first value (its origin) and the mean is kept
    // relative to it: all stay small, so f32 keeps their digits when |mean| >> std.
    setup: training
      ? "  let origin = lead(xUnit(unitAt(c, 0u)));"
      : "  let origin = runningMean[c];",
    reduce: training
      ? {
        init: "var s1 = V(0.0);\n  var s2 = V(0.0);",
        unit: /* wgsl */ `
      let d = xUnit(i) - V(origin);
      s1 += d;
      s2 += d * d;`,
        share: /* wgsl */ `shareStats(shareCount(lid), hsum(s1), hsum(s2))`,
        combine: "chanMerge(a, b)",
      }
      : undefined,
    finish: /* wgsl */ `${statistics}
  let invStd = inverseSqrt(variance + ${f32(eps)});
  let scale = ${weight ? "weight[c] * " : ""}invStd;
  let shift = ${bias ? "bias[c]" : "0.0"};
  if (lid == 0u) {
    stats[c] = origin;
    stats[C + c] = offset;
    stats[2u * C + c] = invStd;${updateRunning}
  }`,
  };
}

/**
 * Batch normalisation of x [N, C] or [N, C, H, W] over every axis but the channel axis 1:
 * y = (x - mean) / sqrt(var + eps) * weight + bias.
 *
 * In training the batch mean and biased variance are used, and `runningMean`/`runningVar` (if
 * given) are updated in place: running = (1 - momentum) * running + momentum * batch, with the
 * unbiased batch variance. In eval the running statistics are used. Differentiable with respect
 * to x, weight and bias (through the batch statistics in training); never the running stats.
 */
export function batchNorm(x: Tensor, options: BatchNormOptions): Tensor {
  checkOptions(x, options);
  const { weight, bias, training } = options;
  const l = layoutOf(x.shape);
  const out = Tensor.empty(x.shape);
  // Saved for backward: the channel's origin, mean - origin, and 1 / std.
  const stats = Tensor.empty([3, l.channels]);
  encodeChannels(
    `batch_norm_${kernelKey(x, training)}${weight ? "_w" : ""}${bias ? "_b" : ""}`,
    l,
    forwardBindings(x, options, stats, out),
    {
      ...statisticsPhases(options),
      // Not x * scale - mean * scale: that cancels when |mean| >> std.
      mapUnit: /* wgsl */ `      out[i] = (${centred("xUnit(i)")}) * scale + shift;`,
    },
  );
  return recordOp(
    "batchNorm",
    out,
    differentiableInputs(x, options),
    (grad) => batchNormBackward(grad, x, stats, options),
    [stats],
  );
}

/** What the backward kernels of `batchNorm` and `batchNormReluMaxPool2d` do each their way. */
interface BackwardKernel {
  /** The start of the kernel's name. */
  prefix: string;
  /** The bindings before `stats`: grad, and what the WGSL below reads (`withSums`: the sums). */
  inputs: (withSums: boolean) => TensorBinding[];
  /** WGSL adding a unit's gradient and gradient·(x - mean) to `sumGrad` and `sumGradX`. */
  sumUnit: string;
  /** WGSL writing a unit's dx: through the batch statistics (training) or not (eval). */
  dxUnit: (training: boolean) => string;
  /** `batchNormReluMaxPool2d`'s plane size: the loops run over quads (see `quadLoop`). */
  pool?: { height: number; width: number };
}

/**
 * Encodes a backward kernel: (sum grad, sum grad·x̂) of each channel where dx in training,
 * dweight or dbias needs them, then dx. Returns [dx, dweight?, dbias?] (only those of present
 * inputs; null where not required).
 */
function encodeBackward(
  x: Tensor,
  stats: Tensor,
  options: BatchNormOptions,
  k: BackwardKernel,
): (Tensor | null)[] {
  const { weight, bias, training } = options;
  const l = layoutOf(x.shape);
  const needX = x.requiresGrad;
  const needWeight = weight?.requiresGrad ?? false;
  const needBias = bias?.requiresGrad ?? false;
  const dx = needX ? Tensor.empty(x.shape) : null;
  const dweight = needWeight ? Tensor.empty([l.channels]) : null;
  const dbias = needBias ? Tensor.empty([l.channels]) : null;
  const gradients = [dx, ...(weight ? [dweight] : []), ...(bias ? [dbias] : [])];
  const withSums = (training && needX) || needWeight || needBias;
  if (!dx && !withSums) return gradients;
  const optional = (
    name: string,
    t: Tensor | null,
    access: Access,
    type = "f32",
  ): TensorBinding[] => t ? [{ name, tensor: t, access, type }] : [];
  const bound: TensorBinding[] = [
    ...k.inputs(withSums),
    { name: "stats", tensor: stats, access: "read", type: "f32" },
    ...optional("weight", needX ? weight ?? null : null, "read"),
    ...optional("dx", dx, "read_write", "V"),
    ...optional("dweight", dweight, "read_write"),
    ...optional("dbias", dbias, "read_write"),
  ];
  encodeChannels(
    `${k.prefix}_backward_${kernelKey(x, training)}` +
      `_${needX ? "x" : ""}${needWeight ? "w" : ""}${needBias ? "b" : ""}${weight ? "_w" : ""}`,
    l,
    bound,
    {
      setup: /* wgsl */ `
  let origin = stats[c];
  let offset = stats[C + c];
  let invStd = stats[2u * C + c];
  let scale = ${needX && weight ? "weight[c] * " : ""}invStd;`,
      reduce: withSums
        ? {
          init: "var sumGrad = V(0.0);\n  var sumGradX = V(0.0);",
          unit: k.sumUnit,
          share: "vec4<f32>(hsum(sumGrad), hsum(sumGradX), 0.0, 0.0)",
          combine: "a + b",
          overQuads: k.pool !== undefined,
        }
        : undefined,
      // (sum grad, sum grad·x̂) of the channel.
      finish: withSums
        ? /* wgsl */ `
  let sums = vec2<f32>(merged.x, merged.y * invStd);
  if (lid == 0u) {
    ${dweight ? "dweight[c] = sums.y;" : ""}
    ${dbias ? "dbias[c] = sums.x;" : ""}
  }`
        : "",
      mapUnit: dx ? k.dxUnit(training) : undefined,
      mapOverQuads: k.pool !== undefined,
    },
    k.pool,
  );
  return gradients;
}

/** WGSL: the value at `v` centred as the forward centres it, (v - origin) - offset. */
function centred(v: string): string {
  return `(${v} - V(origin)) - V(offset)`;
}

/** Returns [dx, dweight?, dbias?] of `batchNorm`. */
function batchNormBackward(
  grad: Tensor,
  x: Tensor,
  stats: Tensor,
  options: BatchNormOptions,
): (Tensor | null)[] {
  return encodeBackward(x, stats, options, {
    prefix: "batch_norm",
    inputs: (withSums) => [
      { name: "grad", tensor: grad, access: "texture" },
      ...(withSums ? [{ name: "x", tensor: x, access: "texture" as const }] : []),
    ],
    sumUnit: /* wgsl */ `
      let g = gradUnit(i);
      sumGrad += g;
      sumGradX += g * (${centred("xUnit(i)")});`,
    dxUnit: (training) =>
      training
        ? /* wgsl */ `
      let normalised = (${centred("xUnit(i)")}) * invStd;
      dx[i] = scale * (gradUnit(i) - V(sums.x / COUNT) - normalised * (sums.y / COUNT));`
        : /* wgsl */ `      dx[i] = gradUnit(i) * scale;`,
  });
}

/**
 * relu(maxPool2d(batchNorm(x, options), { kernelSize: 2 })) in one kernel per pass, equal to
 * the three ops in sequence (values and gradients; ReLU after the pool equals ReLU before it).
 * x is [N, C, H, W] with an even H and a W that is a multiple of 8 (else this throws: use the
 * three ops). The forward writes only the pooled output and the packed argmaxes; the backward
 * writes dx from the pooled gradient without the full-size intermediate gradients.
 * Differentiable with respect to x, weight and bias.
 */
export function batchNormReluMaxPool2d(x: Tensor, options: BatchNormOptions): Tensor {
  checkOptions(x, options);
  if (x.rank !== 4 || x.shape[2] % 2 !== 0 || x.shape[3] % 8 !== 0) {
    throw new Error(
      `batchNormReluMaxPool2d: needs x [N, C, H, W] with an even H and W a multiple of 8, got ` +
        `${formatShape(x.shape)}; use maxPool2d(batchNorm(x), { kernelSize: 2, relu: true })`,
    );
  }
  const { weight, bias, training } = options;
  const [n, channels, height, width] = x.shape;
  const l = layoutOf(x.shape);
  const out = Tensor.empty([n, channels, height / 2, width / 2]);
  const stats = Tensor.empty([3, l.channels]);
  // The 4 argmaxes of each quad (0..3 in window order; 4: relu gave 0, no gradient), base 8.
  const codes = Tensor.empty([out.size / 4]);
  encodeChannels(
    `batch_norm_relu_pool_${kernelKey(x, training)}${weight ? "_w" : ""}${bias ? "_b" : ""}`,
    l,
    [
      ...forwardBindings(x, options, stats, out),
      { name: "codes", tensor: codes, access: "read_write", type: "f32" },
    ],
    {
      ...statisticsPhases(options),
      // y as batchNorm computes it; then the pool's window order and ties, then relu.
      mapUnit: /* wgsl */ `
      ${quadCorners("y", "ROW_TEXELS", (v) => `(${centred(v)}) * scale + shift`)}
      ${quadMax("y", true)}
      out[p] = result;
      codes[p] = ${PACKED_ARGMAX};`,
      mapOverQuads: true,
    },
    { height, width },
  );
  return recordOp(
    "batchNormReluMaxPool2d",
    out,
    differentiableInputs(x, options),
    (grad) => fusedBackward(grad, x, stats, codes, options),
    [stats, codes],
  );
}

/** Returns [dx, dweight?, dbias?] of `batchNormReluMaxPool2d`. */
function fusedBackward(
  grad: Tensor,
  x: Tensor,
  stats: Tensor,
  codes: Tensor,
  options: BatchNormOptions,
): (Tensor | null)[] {
  // The quad's pooled gradient, masked where relu or the argmax passes none.
  const pooledGradient = quadGradient("gradVec4(p)", "codesAt(p)");
  const dxTraining = (texel: string, dy: string) =>
    `dx[${texel}] = scale * (${dy} - meanGrad - (${centred(`xVec4(${texel})`)}) * invStd * ` +
    `meanGradX);`;
  return encodeBackward(x, stats, options, {
    prefix: "batch_norm_relu_pool",
    inputs: () => [
      { name: "grad", tensor: grad, access: "texture" },
      { name: "codes", tensor: codes, access: "texture" },
      { name: "x", tensor: x, access: "texture" },
    ],
    // Only each window's argmax has a gradient: the sums run over the pooled outputs.
    sumUnit: /* wgsl */ `
      ${pooledGradient}
      ${quadCorners("v", "ROW_TEXELS", centred)}
      let chosen = select(select(select(v0, v1, arg == vec4<u32>(1u)), v2, arg == vec4<u32>(2u)),
        v3, arg == vec4<u32>(3u));
      let passed = select(vec4<f32>(0.0), g, arg < vec4<u32>(4u));
      sumGrad += passed;
      sumGradX += passed * chosen;`,
    dxUnit: (training) =>
      training
        ? /* wgsl */ `
      ${pooledGradient}
      let meanGrad = V(sums.x / COUNT);
      let meanGradX = sums.y / COUNT;
      ${spreadGradient("ROW_TEXELS", dxTraining)}`
        : /* wgsl */ `
      ${pooledGradient}
      ${spreadGradient("ROW_TEXELS", (texel, dy) => `dx[${texel}] = ${dy} * scale;`)}`,
    pool: { height: x.shape[2], width: x.shape[3] },
  });
}
