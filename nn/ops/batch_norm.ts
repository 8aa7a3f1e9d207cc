/**
 * Batch normalisation of [N, C] (per feature, as BatchNorm1d) and [N, C, H, W] (per channel, as
 * BatchNorm2d) tensors, with running statistics updated in place on the GPU.
 *
 * A channel's M = N·H·W values are strided in memory, and M can be large (73,728 for
 * [128, 10, 24, 24]), so statistics are reduced in two steps without barriers:
 *
 * 1. a "partials" kernel gives each invocation one contiguous chunk of one channel (P chunks
 *    per channel), and writes that chunk's mean and sum of squared deviations (forward) or its
 *    sums of grad and grad·x̂ (backward);
 * 2. the element-wise kernel that normalises (or computes dx) gives each workgroup one slice of
 *    one channel; it merges that channel's P partials itself (the loads are uniform across the
 *    workgroup, so cheap), and the workgroup holding the channel's first slice writes the
 *    per-channel results: the saved statistics, the running statistics, dweight and dbias.
 *
 * Chunks merge with Chan et al.'s parallel variance formula, so the variance does not suffer the
 * cancellation of E[x²] - E[x]²; means are kept relative to the channel's first value (its
 * origin), and x is centred as (x - origin) - offset, so that data with |mean| >> std keeps its
 * digits in f32. When H·W is a multiple of 4 the kernels read vec4s.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { type Access, f32, grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch } from "../stream.ts";
import { formatShape, Tensor } from "../tensor.ts";

/** Invocations per workgroup of the partials kernels (one chunk each). */
const PARTIAL_WORKGROUP = 8;
/** Total partial chunks to aim for (over all channels), to keep both cores busy. */
const PARTIAL_TARGET = 512;
/** Fewest vectors a chunk should hold, so that each invocation does real work. */
const MIN_CHUNK_UNITS = 32;
/** Invocations per workgroup of the element-wise kernels. */
const SLICE_WORKGROUP = 16;
/** Total element-wise workgroups to aim for: enough for two cores, few partial re-merges. */
const SLICE_TARGET = 64;
/** Fewest vectors per invocation of an element-wise kernel. */
const MIN_PER_INVOCATION = 4;

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
  /** 4 when H·W is a multiple of 4 (vec4 loads), else 1. */
  width: number;
  /** Units per (n, c) row: H·W / width. */
  rowUnits: number;
  /** Units per channel: N · rowUnits. */
  units: number;
  /** Partial chunks per channel. */
  chunks: number;
  /** Units per chunk (the last may be shorter). */
  chunkUnits: number;
}

function layoutOf(shape: readonly number[]): Layout {
  const channels = shape[1];
  const spatial = shape.slice(2).reduce((a, b) => a * b, 1);
  const width = spatial % 4 === 0 ? 4 : 1;
  const rowUnits = spatial / width;
  const units = shape[0] * rowUnits;
  const wanted = Math.min(Math.ceil(PARTIAL_TARGET / channels), Math.ceil(units / MIN_CHUNK_UNITS));
  const chunkUnits = Math.ceil(units / Math.max(1, wanted));
  const chunks = Math.ceil(units / chunkUnits);
  return { channels, count: shape[0] * spatial, width, rowUnits, units, chunks, chunkUnits };
}

/** WGSL shared by every batch-norm kernel: the layout and vector helpers. */
function prelude(l: Layout): string {
  const vector = l.width === 4;
  return /* wgsl */ `
const C: u32 = ${u32(l.channels)};
const COUNT: f32 = ${f32(l.count)};
const WIDTH: u32 = ${u32(l.width)};
const ROW_UNITS: u32 = ${u32(l.rowUnits)};
const UNITS: u32 = ${u32(l.units)};
const P: u32 = ${u32(l.chunks)};
const CHUNK: u32 = ${u32(l.chunkUnits)};
alias V = ${vector ? "vec4<f32>" : "f32"};

// Index (in units) of unit m of channel c, m running over (n, h, w).
fn unitAt(c: u32, m: u32) -> u32 {
  return (m / ROW_UNITS) * (C * ROW_UNITS) + c * ROW_UNITS + m % ROW_UNITS;
}
fn hsum(v: V) -> f32 { return ${vector ? "dot(v, V(1.0))" : "v"}; }
fn lead(v: V) -> f32 { return ${vector ? "v.x" : "v"}; }
fn chunkCount(p: u32) -> f32 { return f32(min(CHUNK, UNITS - p * CHUNK) * WIDTH); }`;
}

/** One storage binding of a kernel whose binding list depends on the options. */
interface Bound {
  name: string;
  tensor: Tensor;
  access: Access;
  /** Element type: "V" (the layout's vector), "f32". */
  type: string;
}

function declare(bound: readonly Bound[]): string {
  return bound.map(({ name, access, type }, i) =>
    `@group(0) @binding(${i}) var<storage, ${access === "read" ? "read" : "read_write"}> ` +
    `${name}: array<${type}>;`
  ).join("\n");
}

function encode(name: string, code: string, bound: readonly Bound[], groups: number): void {
  const compiled = kernel({ name, code, bindings: bound.map((b) => b.access) });
  dispatch(compiled, bound.map((b) => b.tensor.buffer), grid(groups));
}

/**
 * Encodes the partials kernel: invocation t = c * P + p reduces chunk p of channel c with
 * `body` (which sees `c`, `first` and `count`, the chunk's first unit and unit count, and
 * writes `partials[2t]` and `partials[2t + 1]`).
 */
function encodePartials(
  name: string,
  l: Layout,
  bound: readonly Bound[],
  body: string,
): void {
  const lanes = l.channels * l.chunks;
  const groups = Math.ceil(lanes / PARTIAL_WORKGROUP);
  const code = /* wgsl */ `
${prelude(l)}
${declare(bound)}

@compute @workgroup_size(${PARTIAL_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = ${workgroupIndex(groups)} * ${u32(PARTIAL_WORKGROUP)} + lid;
  if (t < ${u32(lanes)}) {
    let c = t / P;
    let first = (t % P) * CHUNK;
    let count = min(CHUNK, UNITS - first);
${body}
  }
}`;
  encode(name, code, bound, groups);
}

/** Workgroups per channel (slices) and units per invocation of an element-wise kernel. */
function slicing(l: Layout): { slices: number; perInvocation: number } {
  const slices = Math.max(
    1,
    Math.min(
      Math.ceil(SLICE_TARGET / l.channels),
      Math.ceil(l.units / (SLICE_WORKGROUP * MIN_PER_INVOCATION)),
    ),
  );
  return { slices, perInvocation: Math.ceil(l.units / (slices * SLICE_WORKGROUP)) };
}

/**
 * Encodes an element-wise kernel over every unit of every channel: `setup` runs once per
 * workgroup (it sees `c`, and `slice` and `lid` to elect the per-channel writer), `perUnit` for
 * each unit index `i` of channel `c`. With no `perUnit`, one workgroup per channel runs `setup`.
 */
function encodeSlices(
  name: string,
  l: Layout,
  bound: readonly Bound[],
  helpers: string,
  setup: string,
  perUnit: string,
): void {
  const { slices, perInvocation } = perUnit ? slicing(l) : { slices: 1, perInvocation: 0 };
  const groups = l.channels * slices;
  const code = /* wgsl */ `
${prelude(l)}
${declare(bound)}
${helpers}

@compute @workgroup_size(${SLICE_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group = ${workgroupIndex(groups)};
  let c = group / ${u32(slices)};
  let slice = group % ${u32(slices)};
${setup}
  let first = slice * ${u32(perInvocation * SLICE_WORKGROUP)} + lid;
  for (var k = 0u; k < ${u32(perInvocation)}; k++) {
    let m = first + k * ${u32(SLICE_WORKGROUP)};
    if (m < UNITS) {
      let i = unitAt(c, m);
${perUnit}
    }
  }
}`;
  encode(name, code, bound, groups);
}

/**
 * WGSL `fn channelStats(c: u32) -> vec2<f32>`: (mean - origin, sum of squared deviations) of
 * channel c.
 */
const CHANNEL_STATS = /* wgsl */ `
// Merges the channel's chunks with Chan et al.'s parallel update of (count, mean, M2).
fn channelStats(c: u32) -> vec2<f32> {
  var count = chunkCount(0u);
  var mean = partials[2u * c * P];
  var m2 = partials[2u * c * P + 1u];
  for (var p = 1u; p < P; p++) {
    let t = c * P + p;
    let n = chunkCount(p);
    let total = count + n;
    let delta = partials[2u * t] - mean;
    mean += delta * n / total;
    m2 += partials[2u * t + 1u] + delta * delta * count * n / total;
    count = total;
  }
  return vec2<f32>(mean, m2);
}`;

/** WGSL `fn channelSums(c: u32) -> vec2<f32>`: (sum grad, sum grad·x̂) of channel c. */
const CHANNEL_SUMS = /* wgsl */ `
fn channelSums(c: u32) -> vec2<f32> {
  var sums = vec2<f32>(0.0);
  for (var p = 0u; p < P; p++) {
    let t = c * P + p;
    sums += vec2<f32>(partials[2u * t], partials[2u * t + 1u]);
  }
  return sums;
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
  const { weight, bias, runningMean, runningVar, training } = options;
  const momentum = options.momentum ?? 0.1, eps = options.eps ?? 1e-5;
  const l = layoutOf(x.shape);
  const id = `${x.shape.join("x")}`;
  const out = Tensor.empty(x.shape);
  // Saved for backward: the channel's origin, mean - origin, and 1 / std (see channelStats).
  const stats = Tensor.empty([3, l.channels]);
  const partials = training ? Tensor.empty([l.channels * l.chunks * 2]) : null;
  if (partials) {
    encodePartials(
      `batch_norm_stats_${id}`,
      l,
      [
        { name: "x", tensor: x, access: "read", type: "V" },
        { name: "partials", tensor: partials, access: "read_write", type: "f32" },
      ],
      /* wgsl */ `
    // Sums are taken about the chunk's first value and means stored relative to the channel's
    // first value (its origin): all stay small, so f32 keeps their digits when |mean| >> std.
    let origin = lead(x[unitAt(c, 0u)]);
    let shift = V(lead(x[unitAt(c, first)]));
    var s1 = V(0.0);
    var s2 = V(0.0);
    for (var m = first; m < first + count; m++) {
      let d = x[unitAt(c, m)] - shift;
      s1 += d;
      s2 += d * d;
    }
    let n = f32(count * WIDTH);
    let a = hsum(s1);
    partials[2u * t] = (lead(shift) - origin) + a / n;
    partials[2u * t + 1u] = max(hsum(s2) - a * a / n, 0.0);`,
    );
  }
  const runningAccess: Access = training ? "read_write" : "read";
  const bound: Bound[] = [
    { name: "x", tensor: x, access: "read", type: "V" },
    ...(partials
      ? [{ name: "partials", tensor: partials, access: "read" as const, type: "f32" }]
      : []),
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
  const statistics = training
    ? /* wgsl */ `
  let origin = lead(x[unitAt(c, 0u)]);
  let merged = channelStats(c);
  let offset = merged.x;
  let mean = origin + offset;
  let variance = merged.y / COUNT;`
    : /* wgsl */ `
  let origin = runningMean[c];
  let offset = 0.0;
  let mean = origin;
  let variance = runningVar[c];`;
  const updateRunning = training && runningMean
    ? /* wgsl */ `
    runningMean[c] = ${f32(1 - momentum)} * runningMean[c] + ${f32(momentum)} * mean;
    runningVar[c] = ${f32(1 - momentum)} * runningVar[c] +
      ${f32(momentum)} * merged.y / (COUNT - 1.0);`
    : "";
  encodeSlices(
    `batch_norm_${training ? "train" : "eval"}_${id}${weight ? "_w" : ""}${bias ? "_b" : ""}`,
    l,
    bound,
    training ? CHANNEL_STATS : "",
    /* wgsl */ `${statistics}
  let invStd = inverseSqrt(variance + ${f32(eps)});
  let scale = ${weight ? "weight[c] * " : ""}invStd;
  let shift = ${bias ? "bias[c]" : "0.0"};
  if (slice == 0u && lid == 0u) {
    stats[c] = origin;
    stats[C + c] = offset;
    stats[2u * C + c] = invStd;${updateRunning}
  }`,
    // Not x * scale - mean * scale: that cancels when |mean| >> std.
    /* wgsl */ `      out[i] = ((x[i] - V(origin)) - V(offset)) * scale + shift;`,
  );
  partials?.dispose();
  return recordOp(
    "batchNorm",
    out,
    [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])],
    (grad) => batchNormBackward(grad, x, stats, options),
    [stats],
  );
}

/** Returns [dx, dweight?, dbias?] (only those of present inputs; null where not required). */
function batchNormBackward(
  grad: Tensor,
  x: Tensor,
  stats: Tensor,
  options: BatchNormOptions,
): (Tensor | null)[] {
  const { weight, bias, training } = options;
  const l = layoutOf(x.shape);
  const id = `${x.shape.join("x")}`;
  const needX = x.requiresGrad;
  const needWeight = weight?.requiresGrad ?? false;
  const needBias = bias?.requiresGrad ?? false;
  const dx = needX ? Tensor.empty(x.shape) : null;
  const dweight = needWeight ? Tensor.empty([l.channels]) : null;
  const dbias = needBias ? Tensor.empty([l.channels]) : null;
  const withSums = (training && needX) || needWeight || needBias;
  const partials = withSums ? Tensor.empty([l.channels * l.chunks * 2]) : null;
  if (partials) {
    encodePartials(
      `batch_norm_backward_sums_${id}`,
      l,
      [
        { name: "grad", tensor: grad, access: "read", type: "V" },
        { name: "x", tensor: x, access: "read", type: "V" },
        { name: "stats", tensor: stats, access: "read", type: "f32" },
        { name: "partials", tensor: partials, access: "read_write", type: "f32" },
      ],
      /* wgsl */ `
    let origin = V(stats[c]);
    let offset = V(stats[C + c]);
    var sumGrad = V(0.0);
    var sumGradX = V(0.0);
    for (var m = first; m < first + count; m++) {
      let i = unitAt(c, m);
      let g = grad[i];
      sumGrad += g;
      sumGradX += g * ((x[i] - origin) - offset);
    }
    partials[2u * t] = hsum(sumGrad);
    partials[2u * t + 1u] = hsum(sumGradX) * stats[2u * C + c];`,
    );
  }
  const optional = (name: string, t: Tensor | null, access: Access, type = "f32"): Bound[] =>
    t ? [{ name, tensor: t, access, type }] : [];
  const bound: Bound[] = [
    { name: "grad", tensor: grad, access: "read", type: "V" },
    ...optional("x", training && needX ? x : null, "read", "V"),
    { name: "stats", tensor: stats, access: "read", type: "f32" },
    ...optional("partials", partials, "read"),
    ...optional("weight", needX ? weight ?? null : null, "read"),
    ...optional("dx", dx, "read_write", "V"),
    ...optional("dweight", dweight, "read_write"),
    ...optional("dbias", dbias, "read_write"),
  ];
  const perUnit = !dx ? "" : training
    ? /* wgsl */ `
      let normalised = ((x[i] - V(origin)) - V(offset)) * invStd;
      dx[i] = scale * (grad[i] - V(sums.x / COUNT) - normalised * (sums.y / COUNT));`
    : /* wgsl */ `      dx[i] = grad[i] * scale;`;
  encodeSlices(
    `batch_norm_backward_${training ? "train" : "eval"}_${id}` +
      `_${needX ? "x" : ""}${needWeight ? "w" : ""}${needBias ? "b" : ""}${weight ? "_w" : ""}`,
    l,
    bound,
    partials ? CHANNEL_SUMS : "",
    /* wgsl */ `
  let origin = stats[c];
  let offset = stats[C + c];
  let invStd = stats[2u * C + c];
  let scale = ${needX && weight ? "weight[c] * " : ""}invStd;
  ${partials ? "let sums = channelSums(c);" : ""}
  if (slice == 0u && lid == 0u) {
    ${dweight ? "dweight[c] = sums.y;" : ""}
    ${dbias ? "dbias[c] = sums.x;" : ""}
  }`,
    perUnit,
  );
  partials?.dispose();
  return [dx, ...(weight ? [dweight] : []), ...(bias ? [dbias] : [])];
}
