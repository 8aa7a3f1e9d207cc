/**
 * Layer normalisation and group normalisation, as PyTorch's `F.layer_norm` and `F.group_norm`.
 *
 * Both normalise contiguous rows: `layerNorm` the last dimensions (a row per product of the
 * leading ones), `groupNorm` each (sample, group) block of C/G channels times the spatial size.
 * So both run on the same kernels, which see x as [N, C, S] with G groups over C (layerNorm: N
 * rows, C = the row length, S = 1, G = 1) and an affine weight per element of the row
 * (layerNorm) or per channel (groupNorm):
 *
 * - forward: one row per invocation (no barriers): the row's mean, then the mean of the squared
 *   deviations from it (two passes, no E[x²] - E[x]² cancellation; sums about the row's first
 *   value, so that |mean| >> std loses no digits), then y = x̂ · weight + bias with vec4 stores;
 *   it saves each row's statistics for the backward;
 * - input gradient: one row per invocation: dx = rstd · (g·w - mean(g·w) - x̂ · mean(g·w·x̂));
 * - weight and bias gradients: one invocation per element of the row (layerNorm, 4 at a time
 *   when the row length is a multiple of 4) or per channel (groupNorm), summing g·x̂ and g over
 *   the rows.
 *
 * Rows are read as vec4s when their affine pattern allows (layerNorm: a row length that is a
 * multiple of 4; groupNorm: a spatial size that is a multiple of 4).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";

/** Options of `layerNorm`. */
export interface LayerNormOptions {
  /** Scale, of shape `normalizedShape`; absent: none. */
  weight?: Tensor;
  /** Shift, of shape `normalizedShape`; absent: none. */
  bias?: Tensor;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
}

/** Options of `groupNorm`. */
export interface GroupNormOptions {
  /** Per-channel scale [C]; absent: none. */
  weight?: Tensor;
  /** Per-channel shift [C]; absent: none. */
  bias?: Tensor;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
}

/** x seen as [N, C, S] with G groups over C; what every norm kernel is generated for. */
interface NormShape {
  n: number;
  channels: number;
  spatial: number;
  groups: number;
  /** Affine per element of the row (layerNorm) rather than per channel (groupNorm). */
  perElement: boolean;
}

/** Derived sizes of a `NormShape`. */
interface NormLayout {
  rows: number;
  /** Values per row. */
  count: number;
  /** 4: rows are read as vec4 units; 1: as scalars. */
  width: number;
  /** Units per row. */
  units: number;
  /** Channels per group. */
  perGroup: number;
  /** Units per channel (groupNorm). */
  spatialUnits: number;
}

function layoutOf(s: NormShape): NormLayout {
  const perGroup = s.channels / s.groups;
  const count = perGroup * s.spatial;
  const width = (s.perElement ? count : s.spatial) % 4 === 0 ? 4 : 1;
  return {
    rows: s.n * s.groups,
    count,
    width,
    units: count / width,
    perGroup,
    // Used by groupNorm only (layerNorm's affine index is the unit itself).
    spatialUnits: s.perElement ? 1 : s.spatial / width,
  };
}

function shapeKey(s: NormShape): string {
  return `${s.n}x${s.channels}x${s.spatial}_g${s.groups}${s.perElement ? "_e" : "_c"}`;
}

/** WGSL constants and helpers shared by the norm kernels. */
function normPrelude(s: NormShape, inputs: readonly string[], weight: boolean): string {
  const l = layoutOf(s);
  const vec = l.width === 4;
  const readers = inputs.map((name) =>
    `fn ${name}Unit(i: u32) -> V { return ${vec ? `${name}Vec4(i)` : `${name}At(i)`}; }`
  ).join("\n");
  // The weight (or 1) of unit u of row `row`.
  const scale = !weight
    ? "V(1.0)"
    : s.perElement
    ? (vec ? "weightVec4(u)" : "weightAt(u)")
    : "V(weightAt((row % G) * PER_GROUP + u / SPATIAL_UNITS))";
  return /* wgsl */ `
const ROWS: u32 = ${u32(l.rows)};
const COUNT: f32 = ${f32(l.count)};
const UNITS: u32 = ${u32(l.units)};
const G: u32 = ${u32(s.groups)};
const PER_GROUP: u32 = ${u32(l.perGroup)};
const SPATIAL_UNITS: u32 = ${u32(l.spatialUnits)};
alias V = ${vec ? "vec4<f32>" : "f32"};
fn hsum(v: V) -> f32 { return ${vec ? "dot(v, V(1.0))" : "v"}; }
fn lead(v: V) -> f32 { return ${vec ? "v.x" : "v"}; }
// x - mean, as (x - origin) - offset (see the forward).
fn centred(v: V, origin: f32, offset: f32) -> V { return (v - V(origin)) - V(offset); }
${readers}
fn scaleOf(row: u32, u: u32) -> V { return ${scale}; }`;
}

/** Everything the forward kernel bakes in. */
interface ForwardOptions extends NormShape {
  eps: number;
  weight: boolean;
  bias: boolean;
}

/**
 * The forward: y, and each row's (origin, offset, 1/std) in `stats` [3, rows]. Sums are taken
 * about the row's first value (its origin) and the mean is kept relative to it (the offset), so
 * that rows with |mean| >> std keep their digits in f32 (as `batchNorm` does).
 */
const NORM_FORWARD: KernelSpec<ForwardOptions> = {
  name: "norm",
  key: (o) => `${shapeKey(o)}_e${o.eps}${o.weight ? "_w" : ""}${o.bias ? "_b" : ""}`,
  bindings: (o) => [
    { name: "x", role: "input" },
    ...(o.weight ? [{ name: "weight", role: "input" } as const] : []),
    ...(o.bias ? [{ name: "bias", role: "input" } as const] : []),
    { name: "stats", role: "write", type: "f32" },
    { name: "out", role: "write", type: layoutOf(o).width === 4 ? "vec4<f32>" : "f32" },
  ],
  plan: (o, policy) => ({
    workgroupSize: policy.narrowWorkgroup,
    groups: Math.ceil(layoutOf(o).rows / policy.narrowWorkgroup),
  }),
  prelude: (o) => {
    const vec = layoutOf(o).width === 4;
    const shift = !o.bias
      ? "V(0.0)"
      : o.perElement
      ? (vec ? "biasVec4(u)" : "biasAt(u)")
      : "V(biasAt((row % G) * PER_GROUP + u / SPATIAL_UNITS))";
    return normPrelude(o, o.bias ? ["x", "bias"] : ["x"], o.weight) + /* wgsl */ `
const EPS: f32 = ${f32(o.eps)};
fn shiftOf(row: u32, u: u32) -> V { return ${shift}; }`;
  },
  body: (_, { plan }) => /* wgsl */ `
  let row = group * ${u32(plan.workgroupSize)} + lid;
  if (row >= ROWS) { return; }
  let base = row * UNITS;
  let origin = lead(xUnit(base));
  var total = V(0.0);
  for (var u = 0u; u < UNITS; u++) { total += xUnit(base + u) - V(origin); }
  let offset = hsum(total) / COUNT;
  var squares = V(0.0);
  for (var u = 0u; u < UNITS; u++) {
    let d = centred(xUnit(base + u), origin, offset);
    squares += d * d;
  }
  let rstd = inverseSqrt(hsum(squares) / COUNT + EPS);
  stats[row] = origin;
  stats[ROWS + row] = offset;
  stats[2u * ROWS + row] = rstd;
  for (var u = 0u; u < UNITS; u++) {
    out[base + u] = centred(xUnit(base + u), origin, offset) * V(rstd) * scaleOf(row, u) +
      shiftOf(row, u);
  }`,
};

/** What the input-gradient kernel bakes in. */
interface BackwardOptions extends NormShape {
  weight: boolean;
}

/** dx, a row per invocation: rstd · (g·w - mean(g·w) - x̂ · mean(g·w·x̂)). */
const NORM_INPUT_GRAD: KernelSpec<BackwardOptions> = {
  name: "norm_input_grad",
  key: (o) => `${shapeKey(o)}${o.weight ? "_w" : ""}`,
  bindings: (o) => [
    { name: "grad", role: "input" },
    { name: "x", role: "input" },
    { name: "stats", role: "input" },
    ...(o.weight ? [{ name: "weight", role: "input" } as const] : []),
    { name: "dx", role: "write", type: layoutOf(o).width === 4 ? "vec4<f32>" : "f32" },
  ],
  plan: (o, policy) => ({
    workgroupSize: policy.narrowWorkgroup,
    groups: Math.ceil(layoutOf(o).rows / policy.narrowWorkgroup),
  }),
  prelude: (o) => normPrelude(o, ["grad", "x"], o.weight),
  body: (_, { plan }) => /* wgsl */ `
  let row = group * ${u32(plan.workgroupSize)} + lid;
  if (row >= ROWS) { return; }
  let base = row * UNITS;
  let origin = statsAt(row);
  let offset = statsAt(ROWS + row);
  let rstd = statsAt(2u * ROWS + row);
  var sumGw = V(0.0);
  var sumGwx = V(0.0);
  for (var u = 0u; u < UNITS; u++) {
    let gw = gradUnit(base + u) * scaleOf(row, u);
    sumGw += gw;
    sumGwx += gw * centred(xUnit(base + u), origin, offset);
  }
  let meanGw = hsum(sumGw) / COUNT;
  // mean(g·w·x̂) · rstd, folded: x̂ · that = (x - mean) · rstd² · mean(g·w·(x - mean)).
  let meanGwx = hsum(sumGwx) / COUNT * rstd * rstd;
  for (var u = 0u; u < UNITS; u++) {
    let gw = gradUnit(base + u) * scaleOf(row, u);
    let d = centred(xUnit(base + u), origin, offset);
    dx[base + u] = V(rstd) * (gw - V(meanGw) - d * V(meanGwx));
  }`,
};

/** What the weight/bias-gradient kernel bakes in. */
interface ParamGradOptions extends NormShape {
  needWeight: boolean;
  needBias: boolean;
}

/** Invocations of the parameter-gradient kernel: units of the row, or channels. */
function paramInvocations(o: NormShape): number {
  return o.perElement ? layoutOf(o).units : o.channels;
}

/**
 * dweight = Σ g·x̂ and dbias = Σ g over the rows: per element of the row (layerNorm, a unit per
 * invocation), or per channel over samples and spatial positions (groupNorm).
 */
const NORM_PARAM_GRAD: KernelSpec<ParamGradOptions> = {
  name: "norm_param_grad",
  key: (o) => `${shapeKey(o)}_${o.needWeight ? "w" : ""}${o.needBias ? "b" : ""}`,
  bindings: (o) => {
    const type = o.perElement && layoutOf(o).width === 4 ? "vec4<f32>" : "f32";
    return [
      { name: "grad", role: "input" },
      ...(o.needWeight
        ? [{ name: "x", role: "input" } as const, { name: "stats", role: "input" } as const]
        : []),
      ...(o.needWeight ? [{ name: "dweight", role: "write", type } as const] : []),
      ...(o.needBias ? [{ name: "dbias", role: "write", type } as const] : []),
    ];
  },
  plan: (o, policy) => ({
    workgroupSize: policy.narrowWorkgroup,
    groups: Math.ceil(paramInvocations(o) / policy.narrowWorkgroup),
  }),
  prelude: (o) =>
    normPrelude(o, o.needWeight ? ["grad", "x"] : ["grad"], false) +
    `\nconst N: u32 = ${u32(o.n)};\nconst PARAMS: u32 = ${u32(paramInvocations(o))};`,
  body: (o, { plan }) => {
    const accumulate = /* wgsl */ `
      let g = gradUnit(i);
      ${o.needBias ? "sumG += g;" : ""}
      ${
      o.needWeight
        ? "sumGx += g * centred(xUnit(i), statsAt(row), statsAt(ROWS + row)) * " +
          "V(statsAt(2u * ROWS + row));"
        : ""
    }`;
    const loops = o.perElement
      ? /* wgsl */ `
  for (var row = 0u; row < ROWS; row++) {
    let i = row * UNITS + p;${accumulate}
  }`
      : /* wgsl */ `
  let within = (p % PER_GROUP) * SPATIAL_UNITS;
  for (var n = 0u; n < N; n++) {
    let row = n * G + p / PER_GROUP;
    for (var s = 0u; s < SPATIAL_UNITS; s++) {
      let i = row * UNITS + within + s;${accumulate}
    }
  }`;
    const result = (v: string) => o.perElement ? v : `hsum(${v})`;
    return /* wgsl */ `
  let p = group * ${u32(plan.workgroupSize)} + lid;
  if (p >= PARAMS) { return; }
  var sumG = V(0.0);
  var sumGx = V(0.0);${loops}
  ${o.needWeight ? `dweight[p] = ${result("sumGx")};` : ""}
  ${o.needBias ? `dbias[p] = ${result("sumG")};` : ""}`;
  },
};

/** Runs the normalisation of `x` seen as `shape`; records [x, weight?, bias?] for autograd. */
function normalize(
  name: string,
  x: Tensor,
  shape: NormShape,
  { weight, bias, eps = 1e-5 }: LayerNormOptions,
): Tensor {
  if (!(eps >= 0)) throw new Error(`${name}: eps must be a number >= 0, got ${eps}`);
  const { rows } = layoutOf(shape);
  const out = Tensor.empty(x.shape);
  const stats = Tensor.empty([3, rows]);
  const resources: Record<string, Tensor> = { x, stats, out };
  if (weight) resources.weight = weight;
  if (bias) resources.bias = bias;
  runKernel(NORM_FORWARD, { ...shape, eps, weight: !!weight, bias: !!bias }, resources);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return recordOp(
    name,
    out,
    inputs,
    (grad) => normBackward(grad, x, stats, shape, weight, bias),
    [stats],
  );
}

/** [dx, dweight?, dbias?] (those of present inputs; null where not required). */
function normBackward(
  grad: Tensor,
  x: Tensor,
  stats: Tensor,
  shape: NormShape,
  weight: Tensor | undefined,
  bias: Tensor | undefined,
): (Tensor | null)[] {
  const dx = x.requiresGrad ? Tensor.empty(x.shape) : null;
  const needWeight = weight?.requiresGrad ?? false;
  const needBias = bias?.requiresGrad ?? false;
  const dweight = needWeight ? Tensor.empty(weight!.shape) : null;
  const dbias = needBias ? Tensor.empty(bias!.shape) : null;
  if (dx) {
    const resources: Record<string, Tensor> = { grad, x, stats, dx };
    if (weight) resources.weight = weight;
    runKernel(NORM_INPUT_GRAD, { ...shape, weight: !!weight }, resources);
  }
  if (dweight || dbias) {
    const resources: Record<string, Tensor> = { grad };
    if (dweight) Object.assign(resources, { x, stats, dweight });
    if (dbias) resources.dbias = dbias;
    runKernel(NORM_PARAM_GRAD, { ...shape, needWeight, needBias }, resources);
  }
  return [dx, ...(weight ? [dweight] : []), ...(bias ? [dbias] : [])];
}

function checkFloat(op: string, name: string, t: Tensor): void {
  if (t.dtype !== "f32") throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
}

function checkAffine(
  op: string,
  name: string,
  t: Tensor | undefined,
  expected: readonly number[],
  x: Tensor,
): void {
  if (!t) return;
  checkFloat(op, name, t);
  if (t.rank !== expected.length || t.shape.some((d, k) => d !== expected[k])) {
    throw new Error(
      `${op}: ${name} has shape ${formatShape(t.shape)}, expected ${formatShape(expected)} ` +
        `for x ${formatShape(x.shape)}`,
    );
  }
}

/** `normalizedShape` as an array of positive integers, or throws naming `op`. */
export function normalizedShapeOf(
  op: string,
  normalizedShape: number | readonly number[],
): number[] {
  const shape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
  if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(
      `${op}: normalizedShape must be one or more positive integers, got ` +
        `${typeof normalizedShape === "number" ? normalizedShape : formatShape(shape)}`,
    );
  }
  return shape;
}

/**
 * Layer normalisation over the last `normalizedShape.length` dimensions of x, as PyTorch's
 * `F.layer_norm`: each row (the product of those dimensions) is normalised by its own mean and
 * biased variance, y = (x - mean) / sqrt(var + eps) * weight + bias, with `weight` and `bias`
 * (optional) of shape `normalizedShape`. x must end in `normalizedShape`. Differentiable with
 * respect to x, weight and bias.
 *
 * @example
 * ```ts
 * import { init, layerNorm, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const y = layerNorm(tensor([1, 2, 3, 2, 2, 2], [2, 3]), 3);
 * console.log(await y.toArray()); // ≈ [-1.2247, 0, 1.2247, 0, 0, 0]
 * ```
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  options: LayerNormOptions = {},
): Tensor {
  const shape = normalizedShapeOf("layerNorm", normalizedShape);
  checkFloat("layerNorm", "x", x);
  const trailing = x.shape.slice(x.rank - shape.length);
  if (x.rank < shape.length || trailing.some((d, k) => d !== shape[k])) {
    throw new Error(
      `layerNorm: x ${formatShape(x.shape)} does not end in normalizedShape ` +
        `${formatShape(shape)} (expected [*, ${shape.join(", ")}])`,
    );
  }
  checkAffine("layerNorm", "weight", options.weight, shape, x);
  checkAffine("layerNorm", "bias", options.bias, shape, x);
  const count = shape.reduce((a, b) => a * b, 1);
  if (x.size === 0) {
    throw new Error(`layerNorm: x ${formatShape(x.shape)} has no values to normalise`);
  }
  return normalize("layerNorm", x, {
    n: x.size / count,
    channels: count,
    spatial: 1,
    groups: 1,
    perElement: true,
  }, options);
}

/**
 * Group normalisation of x [N, C, *], as PyTorch's `F.group_norm`: the C channels are split into
 * `numGroups` groups of C / numGroups consecutive channels, and each (sample, group) is
 * normalised by its own mean and biased variance over its channels and spatial positions; then
 * y = x̂ * weight[c] + bias[c] (both optional, [C]). C must be divisible by `numGroups`.
 * Differentiable with respect to x, weight and bias.
 */
export function groupNorm(x: Tensor, numGroups: number, options: GroupNormOptions = {}): Tensor {
  checkFloat("groupNorm", "x", x);
  if (x.rank < 2 || x.size === 0) {
    throw new Error(
      `groupNorm: needs x of shape [N, C, *] with values, got ${formatShape(x.shape)}`,
    );
  }
  const channels = x.shape[1];
  if (!Number.isInteger(numGroups) || numGroups < 1 || channels % numGroups !== 0) {
    throw new Error(
      `groupNorm: ${channels} channels (x ${formatShape(x.shape)}) cannot be split into ` +
        `${numGroups} groups: numGroups must be a positive integer dividing the channels`,
    );
  }
  checkAffine("groupNorm", "weight", options.weight, [channels], x);
  checkAffine("groupNorm", "bias", options.bias, [channels], x);
  return normalize("groupNorm", x, {
    n: x.shape[0],
    channels,
    spatial: x.size / (x.shape[0] * channels),
    groups: numGroups,
    perElement: false,
  }, options);
}
