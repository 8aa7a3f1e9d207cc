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
 * A producer can hand the training forward its output's statistics instead: per channel, partial
 * (count, mean, sum of squared deviations) vectors (`BatchStatistics`, which the conv2d forward
 * kernel writes for `conv2dBatchNormReluMaxPool2d`), merged the same way; then x is read once.
 *
 * `batchNormReluMaxPool2d` fuses batch norm, ReLU and 2×2 max pooling: the same statistics, then
 * each workgroup pools its channel's normalised values in "quads" of 4 windows (as `maxPool2d`'s
 * 2×2 kernels), so no full-size activation or gradient is ever written but dx.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import {
  type BindingResource,
  type BindingSpec,
  type KernelSpec,
  runKernel,
} from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { relu1 } from "./nan_wgsl.ts";
import { PACKED_ARGMAX, quadCorners, quadMax, spreadGradient } from "./pool_quads.ts";

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

/** WGSL `<name>Unit(i)`, unit i, of each input (a storage binding's `type` may be "V"). */
function unitReaders(bindings: readonly BindingSpec[], l: Layout): string {
  return bindings.filter((b) => b.role === "input").map(({ name }) =>
    `fn ${name}Unit(i: u32) -> V { return ${l.width === 4 ? `${name}Vec4(i)` : `${name}At(i)`}; }`
  ).join("\n");
}

/** The WGSL of a kernel over channels, phase by phase (see `channelKernel`). */
interface ChannelPhases {
  helpers?: string;
  setup: string;
  reduce?: {
    init: string;
    unit: string;
    share: string;
    combine: string;
    overQuads?: boolean;
    /** Run `unit` for each `k` of the channel's partials (`partials[c * overPartials + k]`). */
    overPartials?: number;
  };
  finish: string;
  mapUnit?: string;
  /** Run `mapUnit` over the channel's quads (see `quadLoop`) rather than its units. */
  mapOverQuads?: boolean;
}

/** What every kernel over channels is planned from. */
interface ChannelOptions {
  shape: readonly number[];
  /** `batchNormReluMaxPool2d`: the loops run over 2×2 pooling quads (see `quadLoop`). */
  pool: boolean;
}

/**
 * A kernel over every channel, a workgroup each, of a power-of-two size (for the tree): narrow
 * (under the software policy one SIMD vector: llvmpipe runs a workgroup with barriers as one
 * coroutine per 8 lanes, and a channel's loop ran 2-4x slower with 64-256 invocations than with
 * 8; measured: 1.5 vs 3.2-3.7 ms forward on [128,10,24,24]).
 *
 * WGSL, in order: `setup` (sees `c` and `lid`); the optional reduction: `init`, then `unit` for
 * each unit `i` of the invocation's share, then `share` (a vec4 expression: the invocation's
 * result), merged over the workgroup by a tree of `combine` (an expression of `a` and `b`) into
 * `merged`; `finish` (per-channel values; `lid == 0` writes the per-channel results); and
 * `mapUnit` for each unit `i` again.
 */
function channelKernel<Options extends ChannelOptions>(
  name: string,
  key: (options: Options) => string,
  bindings: (options: Options) => BindingSpec[],
  phases: (options: Options) => ChannelPhases,
): KernelSpec<Options> {
  return {
    name,
    key,
    bindings,
    plan: ({ shape }, policy) => ({
      workgroupSize: policy.narrowWorkgroup,
      groups: layoutOf(shape).channels,
    }),
    prelude: (options, { plan }) => {
      const l = layoutOf(options.shape);
      const pool = options.pool;
      const wg = plan.workgroupSize;
      return /* wgsl */ `
const C: u32 = ${u32(l.channels)};
const COUNT: f32 = ${f32(l.count)};
const WIDTH: u32 = ${u32(l.width)};
const ROW_UNITS: u32 = ${u32(l.rowUnits)};
const UNITS: u32 = ${u32(l.units)};
const WG: u32 = ${u32(wg)};
alias V = ${l.width === 4 ? "vec4<f32>" : "f32"};
${unitReaders(bindings(options), l)}
${phases(options).reduce ? `var<workgroup> scratch: array<vec4<f32>, ${wg}>;` : ""}
${pool ? `// Texels per input row.\nconst ROW_TEXELS: u32 = ${u32(options.shape[3] / 4)};` : ""}

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
${phases(options).helpers ?? ""}`;
    },
    body: (options, { plan }) => channelBody(options, plan.workgroupSize, phases(options)),
  };
}

/** The body of a `channelKernel`'s main. */
function channelBody(options: ChannelOptions, wg: number, phases: ChannelPhases): string {
  const l = layoutOf(options.shape);
  const pool = options.pool ? { height: options.shape[2], width: options.shape[3] } : undefined;
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
  const partialLoop = (body: string, count: number) => /* wgsl */ `
  for (var k = lid; k < ${u32(count)}; k += WG) {
${body}
  }`;
  const reduce = r
    ? /* wgsl */ `
  ${r.init}
  ${r.overPartials ? partialLoop(r.unit, r.overPartials) : loop(r.unit, r.overQuads)}
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
  // The grid may be folded past the per-dimension limit: workgroups past the channels return.
  return /* wgsl */ `
  let c = group;
  if (c >= C) { return; }
${phases.setup}
${reduce}
${phases.finish}
${phases.mapUnit ? loop(phases.mapUnit, phases.mapOverQuads) : ""}`;
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

/** Everything a forward kernel bakes in. */
interface ForwardOptions extends ChannelOptions {
  training: boolean;
  /**
   * Partial statistics per channel read from `partials` instead of x's values (training only):
   * 0 for none (see `BatchStatistics`).
   */
  partials: number;
  running: boolean;
  weight: boolean;
  bias: boolean;
  momentum: number;
  eps: number;
}

function forwardOptions(
  x: Tensor,
  options: BatchNormOptions,
  pool: boolean,
  statistics?: BatchStatistics,
): ForwardOptions {
  return {
    shape: x.shape,
    pool,
    training: options.training,
    partials: options.training && statistics ? statistics.perChannel : 0,
    running: !!options.runningMean,
    weight: !!options.weight,
    bias: !!options.bias,
    momentum: options.momentum ?? 0.1,
    eps: options.eps ?? 1e-5,
  };
}

function forwardKey(o: ForwardOptions): string {
  return `${o.training ? "train" : "eval"}_${o.shape.join("x")}${o.running ? "_r" : ""}` +
    `${o.partials ? `_p${o.partials}` : ""}` +
    `${o.weight ? "_w" : ""}${o.bias ? "_b" : ""}_m${o.momentum}_e${o.eps}`;
}

/**
 * The bindings of a forward kernel: x, the running statistics, weight and bias (those given),
 * the saved statistics and the output.
 */
function forwardBindings(o: ForwardOptions): BindingSpec[] {
  const running = o.training ? "write" : "read";
  return [
    { name: "x", role: "input" },
    ...(o.running
      ? [
        { name: "runningMean", role: running, type: "f32" },
        { name: "runningVar", role: running, type: "f32" },
      ] as const
      : []),
    ...(o.weight ? [{ name: "weight", role: "read", type: "f32" } as const] : []),
    ...(o.bias ? [{ name: "bias", role: "read", type: "f32" } as const] : []),
    ...(o.partials ? [{ name: "partials", role: "read", type: "vec4<f32>" } as const] : []),
    { name: "stats", role: "write", type: "f32" },
    { name: "out", role: "write", type: "V" },
  ];
}

/**
 * The phases of a forward kernel before its `mapUnit`: the channel's statistics (the batch's in
 * training, else the running ones), saved to `stats`, and the running update in training. After
 * them y = ((x - origin) - offset) * scale + shift.
 */
function statisticsPhases(o: ForwardOptions): Omit<ChannelPhases, "mapUnit"> {
  const { training, momentum, eps } = o;
  const statistics = training
    ? /* wgsl */ `
  let offset = merged.y;
  let mean = origin + offset;
  let variance = merged.z / COUNT;`
    : /* wgsl */ `
  let offset = 0.0;
  let mean = origin;
  let variance = runningVar[c];`;
  const updateRunning = training && o.running
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
      ? (o.partials ? "  let origin = 0.0;" : "  let origin = lead(xUnit(unitAt(c, 0u)));")
      : "  let origin = runningMean[c];",
    // From partials, each already (count, mean, M2) of its values: merged as they are.
    reduce: training && o.partials
      ? {
        init: "var acc = vec4<f32>(0.0);",
        unit: "    acc = chanMerge(acc, partials[c * " + u32(o.partials) + " + k]);",
        share: "acc",
        combine: "chanMerge(a, b)",
        overPartials: o.partials,
      }
      : training
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
  let scale = ${o.weight ? "weight[c] * " : ""}invStd;
  let shift = ${o.bias ? "bias[c]" : "0.0"};
  if (lid == 0u) {
    stats[c] = origin;
    stats[C + c] = offset;
    stats[2u * C + c] = invStd;${updateRunning}
  }`,
  };
}

/** `batchNorm`'s forward. */
const BATCH_NORM = channelKernel<ForwardOptions>(
  "batch_norm",
  forwardKey,
  forwardBindings,
  (o) => ({
    ...statisticsPhases(o),
    // Not x * scale - mean * scale: that cancels when |mean| >> std.
    mapUnit: /* wgsl */ `      out[i] = (${centred("xUnit(i)")}) * scale + shift;`,
  }),
);

/**
 * `batchNormReluMaxPool2d`'s forward: y as batchNorm computes it; then the pool's window order
 * and ties, then relu.
 */
const BATCH_NORM_RELU_POOL = channelKernel<ForwardOptions>(
  "batch_norm_relu_pool",
  forwardKey,
  forwardBindings,
  (o) => ({
    ...statisticsPhases(o),
    mapUnit: /* wgsl */ `
      ${quadCorners("y", "ROW_TEXELS", (v) => `(${centred(v)}) * scale + shift`)}
      ${quadMax("y", true)}
      out[p] = result;`,
    mapOverQuads: true,
  }),
);

/** The tensors of a kernel by binding name, those absent left out. */
function resources(
  tensors: Record<string, Tensor | null | undefined>,
): Record<string, BindingResource> {
  const present: Record<string, BindingResource> = {};
  for (const [name, tensor] of Object.entries(tensors)) if (tensor) present[name] = tensor;
  return present;
}

/** [x, weight?, bias?]: the inputs recorded for autograd (never the running statistics). */
function differentiableInputs(x: Tensor, { weight, bias }: BatchNormOptions): Tensor[] {
  return [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
}

/** Runs a forward kernel: its output and saved tensors, the running statistics updated. */
function runForward(
  spec: KernelSpec<ForwardOptions>,
  x: Tensor,
  options: BatchNormOptions,
  out: Tensor,
  saved: { stats: Tensor },
  statistics?: BatchStatistics,
): void {
  const { weight, bias, runningMean, runningVar } = options;
  const o = forwardOptions(x, options, spec === BATCH_NORM_RELU_POOL, statistics);
  const partials = o.partials ? statistics!.partials : undefined;
  runKernel(
    spec,
    o,
    resources({ x, runningMean, runningVar, weight, bias, partials, out, ...saved }),
  );
}

/**
 * x's batch statistics as partial ones its producer wrote (`runForwardWithStatistics`): for each
 * channel c, `perChannel` vectors (count, mean, sum of squared deviations from that mean) at
 * `partials[c * perChannel + k]`, whose counts add up to N·H·W. In training the forward merges
 * them instead of reading x for its statistics.
 */
export interface BatchStatistics {
  partials: Tensor;
  perChannel: number;
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
  const out = Tensor.empty(x.shape);
  // Saved for backward: the channel's origin, mean - origin, and 1 / std.
  const stats = Tensor.empty([3, x.shape[1]]);
  runForward(BATCH_NORM, x, options, out, { stats });
  return recordOp(
    "batchNorm",
    out,
    differentiableInputs(x, options),
    (grad) => runBackward(BATCH_NORM_BACKWARD, grad, x, stats, options),
    [stats],
  );
}

/** Everything a backward kernel bakes in: which gradients it writes. */
interface BackwardOptions extends ChannelOptions {
  training: boolean;
  needX: boolean;
  needWeight: boolean;
  needBias: boolean;
  /** Whether the op has a weight. */
  weight: boolean;
  /** Whether the op has a bias. */
  bias: boolean;
  /**
   * The pooled kernel in training, for a kernel that computes dx as it reads it
   * (`batchNormReluPoolGradientParts`): write each quad's packed argmaxes and each channel's
   * `DX_COEFFICIENTS` instead of dx.
   */
  parts?: boolean;
}

/** Whether a backward kernel reduces (sum grad, sum grad·x̂) first. */
function withSums(o: BackwardOptions): boolean {
  return (o.training && o.needX) || o.needWeight || o.needBias || !!o.parts;
}

/**
 * What dx = scale * (dy - meanGrad - ((x - origin) - offset) * invStd * meanGradX) takes per
 * channel, in this order (rows of the [6, C] tensor `batchNormReluPoolGradientParts` returns).
 */
export const DX_COEFFICIENTS = [
  "origin",
  "offset",
  "invStd",
  "scale",
  "meanGrad",
  "meanGradX",
] as const;

/**
 * WGSL loading a channel's `DX_COEFFICIENTS` from the [6, channels] f32 binding `binding` as
 * `origin<suffix>`, `offset<suffix>`, ... (for `batchNormDx`).
 */
export function dxCoefficientLoads(
  binding: string,
  channel: string,
  channels: number,
  suffix: string,
): string[] {
  return DX_COEFFICIENTS.map((name, k) =>
    `let ${name}${suffix} = ${binding}[${u32(k * channels)} + ${channel}];`
  );
}

/**
 * WGSL: batch norm's dx at an element with (expanded) output gradient `dy` and input `x`, from
 * the coefficients `dxCoefficientLoads` declared with `suffix`: the operations of batch norm's
 * own backward kernel, in its order.
 */
export function batchNormDx(dy: string, x: string, suffix: string): string {
  const c = (name: string) => `${name}${suffix}`;
  return `${c("scale")} * (${dy} - ${c("meanGrad")} - ((${x} - ${c("origin")}) - ${
    c("offset")
  }) * ${c("invStd")} * ${c("meanGradX")})`;
}

/** What the backward kernels of `batchNorm` and `batchNormReluMaxPool2d` do each their way. */
interface BackwardKernel {
  /** The start of the kernel's name. */
  prefix: string;
  /** The bindings before `stats`: grad, and what the WGSL below reads (`withSums`: the sums). */
  inputs: (withSums: boolean) => BindingSpec[];
  /** WGSL adding a unit's gradient and gradient·(x - mean) to `sumGrad` and `sumGradX`. */
  sumUnit: string;
  /** WGSL writing a unit's dx: through the batch statistics (training) or not (eval). */
  dxUnit: (training: boolean) => string;
}

/**
 * A backward kernel: (sum grad, sum grad·x̂) of each channel where dx in training, dweight or
 * dbias needs them, then dx.
 */
function backwardKernel(k: BackwardKernel): KernelSpec<BackwardOptions> {
  return channelKernel<BackwardOptions>(
    `${k.prefix}_backward`,
    (o) =>
      `${o.training ? "train" : "eval"}_${o.shape.join("x")}` +
      `_${o.needX ? "x" : ""}${o.needWeight ? "w" : ""}${o.needBias ? "b" : ""}` +
      (o.weight ? "_w" : "") + (o.pool && o.bias ? "_b" : "") + (o.parts ? "_parts" : ""),
    (o) => [
      ...k.inputs(withSums(o)),
      { name: "stats", role: "read", type: "f32" },
      // The pooled kernel recomputes the forward's argmaxes, so it reads the affine parameters.
      ...((o.needX || o.pool) && o.weight
        ? [{ name: "weight", role: "read", type: "f32" } as const]
        : []),
      ...(o.pool && o.bias ? [{ name: "bias", role: "read", type: "f32" } as const] : []),
      ...(o.needX ? [{ name: "dx", role: "write", type: "V" } as const] : []),
      ...(o.needWeight ? [{ name: "dweight", role: "write", type: "f32" } as const] : []),
      ...(o.needBias ? [{ name: "dbias", role: "write", type: "f32" } as const] : []),
      ...(o.parts
        ? [
          { name: "codes", role: "write", type: "f32" } as const,
          { name: "coefficients", role: "write", type: "f32" } as const,
        ]
        : []),
    ],
    (o) => ({
      setup: /* wgsl */ `
  let origin = stats[c];
  let offset = stats[C + c];
  let invStd = stats[2u * C + c];
  let scale = ${(o.needX || o.parts) && o.weight ? "weight[c] * " : ""}invStd;${
        o.pool
          ? /* wgsl */ `
  // The forward's affine map, to recompute its argmaxes.
  let forwardScale = ${o.weight ? "weight[c] * " : ""}invStd;
  let forwardShift = ${o.bias ? "bias[c]" : "0.0"};`
          : ""
      }`,
      reduce: withSums(o)
        ? {
          init: "var sumGrad = V(0.0);\n  var sumGradX = V(0.0);",
          unit: k.sumUnit + (o.parts ? `\n      codes[p] = ${PACKED_ARGMAX};` : ""),
          share: "vec4<f32>(hsum(sumGrad), hsum(sumGradX), 0.0, 0.0)",
          combine: "a + b",
          overQuads: o.pool,
        }
        : undefined,
      // (sum grad, sum grad·x̂) of the channel.
      finish: withSums(o)
        ? /* wgsl */ `
  let sums = vec2<f32>(merged.x, merged.y * invStd);${
          o.parts ? "\n  let meanGrad = sums.x / COUNT;\n  let meanGradX = sums.y / COUNT;" : ""
        }
  if (lid == 0u) {
    ${o.needWeight ? "dweight[c] = sums.y;" : ""}
    ${o.needBias ? "dbias[c] = sums.x;" : ""}${
          o.parts
            ? DX_COEFFICIENTS.map((name, k) => `\n    coefficients[${k}u * C + c] = ${name};`)
              .join("")
            : ""
        }
  }`
        : "",
      mapUnit: o.needX ? k.dxUnit(o.training) : undefined,
      mapOverQuads: o.pool,
    }),
  );
}

/**
 * Runs a backward kernel. Returns [dx, dweight?, dbias?] (only those of present inputs; null
 * where not required).
 */
function runBackward(
  spec: KernelSpec<BackwardOptions>,
  grad: Tensor,
  x: Tensor,
  stats: Tensor,
  options: BatchNormOptions,
): (Tensor | null)[] {
  const { weight, bias, training } = options;
  const o: BackwardOptions = {
    shape: x.shape,
    pool: spec === BATCH_NORM_RELU_POOL_BACKWARD,
    training,
    needX: x.requiresGrad,
    needWeight: weight?.requiresGrad ?? false,
    needBias: bias?.requiresGrad ?? false,
    weight: !!weight,
    bias: !!bias,
  };
  const dx = o.needX ? Tensor.empty(x.shape) : null;
  const dweight = o.needWeight ? Tensor.empty([x.shape[1]]) : null;
  const dbias = o.needBias ? Tensor.empty([x.shape[1]]) : null;
  const gradients = [dx, ...(weight ? [dweight] : []), ...(bias ? [dbias] : [])];
  if (!dx && !withSums(o)) return gradients;
  runKernel(spec, o, resources({ grad, x, stats, weight, bias, dx, dweight, dbias }));
  return gradients;
}

/** WGSL: the value at `v` centred as the forward centres it, (v - origin) - offset. */
function centred(v: string): string {
  return `(${v} - V(origin)) - V(offset)`;
}

/** `batchNorm`'s backward: [dx, dweight?, dbias?]. */
const BATCH_NORM_BACKWARD = backwardKernel({
  prefix: "batch_norm",
  inputs: (withSums) => [
    { name: "grad", role: "input" },
    ...(withSums ? [{ name: "x", role: "input" } as const] : []),
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

/**
 * relu(maxPool2d(batchNorm(x, options), { kernelSize: 2 })) in one kernel per pass, equal to
 * the three ops in sequence (values and gradients; ReLU after the pool equals ReLU before it).
 * x is [N, C, H, W] with an even H and a W that is a multiple of 8 (else this throws: use the
 * three ops). The forward writes only the pooled output; the backward recomputes each window's
 * argmax from x and the saved statistics (reading x anyway, so saving no argmaxes saves their
 * writes and a texture copy) and writes dx from the pooled gradient without the full-size
 * intermediate gradients.
 * Differentiable with respect to x, weight and bias.
 */
export function batchNormReluMaxPool2d(x: Tensor, options: BatchNormOptions): Tensor {
  return batchNormReluMaxPool2dOf(x, options);
}

/** `batchNormReluMaxPool2d`, its statistics (in training) merged from `statistics` if given. */
export function batchNormReluMaxPool2dOf(
  x: Tensor,
  options: BatchNormOptions,
  statistics?: BatchStatistics,
): Tensor {
  checkOptions(x, options);
  if (x.rank !== 4 || x.shape[2] % 2 !== 0 || x.shape[3] % 8 !== 0) {
    throw new Error(
      `batchNormReluMaxPool2d: needs x [N, C, H, W] with an even H and W a multiple of 8, got ` +
        `${formatShape(x.shape)}; use maxPool2d(batchNorm(x), { kernelSize: 2, relu: true })`,
    );
  }
  const [n, channels, height, width] = x.shape;
  const out = Tensor.empty([n, channels, height / 2, width / 2]);
  const stats = Tensor.empty([3, channels]);
  runForward(BATCH_NORM_RELU_POOL, x, options, out, { stats }, statistics);
  return recordOp(
    "batchNormReluMaxPool2d",
    out,
    differentiableInputs(x, options),
    (grad) => runBackward(BATCH_NORM_RELU_POOL_BACKWARD, grad, x, stats, options),
    [stats],
  );
}

/**
 * `batchNormReluMaxPool2d`'s forward kernel, unrecorded (for ops that fuse it): the pooled output
 * and the saved statistics its backward takes. x must meet `batchNormReluMaxPool2d`'s shape rule.
 */
export function batchNormReluPoolForward(
  x: Tensor,
  options: BatchNormOptions,
  statistics?: BatchStatistics,
): { out: Tensor; stats: Tensor } {
  checkOptions(x, options);
  const [n, channels, height, width] = x.shape;
  const out = Tensor.empty([n, channels, height / 2, width / 2]);
  const stats = Tensor.empty([3, channels]);
  runForward(BATCH_NORM_RELU_POOL, x, options, out, { stats }, statistics);
  return { out, stats };
}

/**
 * `batchNormReluMaxPool2d`'s backward in training without dx, for a kernel that computes dx as it
 * reads it: dweight and dbias (null where not required), the packed argmaxes of each quad
 * (`codes`, one f32 per 4 pooled outputs, as `PACKED_ARGMAX`) and each channel's
 * `DX_COEFFICIENTS` ([6, C]). dx is then, per element, scale * (dy - meanGrad - ((x - origin) -
 * offset) * invStd * meanGradX) with dy the pooled gradient where the quad's argmax is, else 0.
 */
export function batchNormReluPoolGradientParts(
  grad: Tensor,
  x: Tensor,
  stats: Tensor,
  options: BatchNormOptions,
): { dweight: Tensor | null; dbias: Tensor | null; codes: Tensor; coefficients: Tensor } {
  const { weight, bias } = options;
  if (!options.training) {
    throw new Error("batchNormReluPoolGradientParts: needs the batch statistics (training)");
  }
  const o: BackwardOptions = {
    shape: x.shape,
    pool: true,
    training: true,
    needX: false,
    needWeight: weight?.requiresGrad ?? false,
    needBias: bias?.requiresGrad ?? false,
    weight: !!weight,
    bias: !!bias,
    parts: true,
  };
  const dweight = o.needWeight ? Tensor.empty([x.shape[1]]) : null;
  const dbias = o.needBias ? Tensor.empty([x.shape[1]]) : null;
  const codes = Tensor.empty([x.size / 16]);
  const coefficients = Tensor.empty([DX_COEFFICIENTS.length, x.shape[1]]);
  runKernel(
    BATCH_NORM_RELU_POOL_BACKWARD,
    o,
    resources({ grad, x, stats, weight, bias, dweight, dbias, codes, coefficients }),
  );
  return { dweight, dbias, codes, coefficients };
}

/**
 * WGSL: the quad's centred window corners `v0`..`v3`, `arg`, its argmaxes as the forward found
 * them (the same arithmetic on the same values: 0..3, or 4 where relu passes no gradient), and
 * `g`, its pooled gradient.
 */
const POOLED_GRADIENT = /* wgsl */ `
      ${quadCorners("v", "ROW_TEXELS", centred)}
      ${
  [0, 1, 2, 3].map((k) => `let y${k} = v${k} * forwardScale + forwardShift;`).join("\n      ")
}
      ${quadMax("y", true)}
      let g = gradVec4(p);`;

/** `batchNormReluMaxPool2d`'s backward: [dx, dweight?, dbias?]. */
const BATCH_NORM_RELU_POOL_BACKWARD = backwardKernel({
  prefix: "batch_norm_relu_pool",
  inputs: () => [
    { name: "grad", role: "input" },
    { name: "x", role: "input" },
  ],
  // Only each window's argmax has a gradient: the sums run over the pooled outputs.
  sumUnit: /* wgsl */ `
      ${POOLED_GRADIENT}
      let chosen = select(select(select(v0, v1, arg == vec4<u32>(1u)), v2, arg == vec4<u32>(2u)),
        v3, arg == vec4<u32>(3u));
      let passed = select(vec4<f32>(0.0), g, arg < vec4<u32>(4u));
      sumGrad += passed;
      sumGradX += passed * chosen;`,
  dxUnit: (training) =>
    training
      ? /* wgsl */ `
      ${POOLED_GRADIENT}
      let meanGrad = V(sums.x / COUNT);
      let meanGradX = sums.y / COUNT;
      ${
        spreadGradient(
          "ROW_TEXELS",
          (texel, dy) => `dx[${texel}] = ${batchNormDx(dy, `xVec4(${texel})`, "")};`,
        )
      }`
      : /* wgsl */ `
      ${POOLED_GRADIENT}
      ${spreadGradient("ROW_TEXELS", (texel, dy) => `dx[${texel}] = ${dy} * scale;`)}`,
});
