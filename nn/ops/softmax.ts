/**
 * Softmax and log-softmax over any dimension, negative log-likelihood and cross-entropy losses.
 *
 * `softmax` and `logSoftmax` over a dimension of size C and stride S (the product of the sizes
 * after it) run one strided row kernel: each invocation owns one row (C elements S apart, read
 * through `xAt`: no transpose); when the row is contiguous (S = 1) and C a multiple of 4, it reads
 * and writes it 4 elements at a time, and when S is a multiple of 4 it owns 4 neighbouring rows,
 * one per lane of a vec4. Three passes over the row: the maximum, the sum of
 * exp(x - max), the output. `logSoftmax` over the last dimension of at most 64 classes keeps its
 * own kernel below (the study's training path).
 *
 * Rows are short (class scores), so each invocation owns whole rows (lanes on batch rows); the
 * losses sum their rows in one workgroup. Rows of up to 64 classes are read from storage once
 * into private memory (on llvmpipe storage loads are the dear part of these kernels).
 * `crossEntropy` saves each row's log-sum-exp and the mean's divisor, and has one fused
 * backward kernel producing (softmax - onehot) * grad / (rows not ignored).
 *
 * Targets are not checked on the GPU (that would need a readback): a target outside [0, C)
 * contributes 0 to the loss and gets no gradient; the mean divides by the rows whose target is
 * not -100 (PyTorch's default ignoreIndex), so out-of-range targets other than -100 still count.
 * Other options (weights, ignoreIndex, reductions, label smoothing, probability targets, the
 * K-dimensional case) take the general kernels of `classification_losses.ts`.
 *
 * @module
 */

import { isGradEnabled, recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { kernelPolicy } from "../gpu/policy.ts";
import { COOPERATIVE_ROWS, type RowKind } from "./softmax_rows.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { isNan, isNan4, keepNan } from "./nan_wgsl.ts";
import { checkTarget, workgroupSumWgsl } from "./reduce.ts";
import { normalizeDims } from "./reduce_dim.ts";
import {
  checkClassLoss,
  classLoss,
  type ClassLossCall,
  type CrossEntropyOptions,
  type NllLossOptions,
} from "./classification_losses.ts";

export type { CrossEntropyOptions, NllLossOptions };

/** Invocations per workgroup of the row kernels (one row each). */
const ROW_WORKGROUP = 8;

/** Rows and classes of x, viewed as [rows, C] with C its last dimension. */
function rowsOf(op: string, x: Tensor): [number, number] {
  const classes = x.shape.at(-1) ?? 0;
  if (x.rank < 1 || classes === 0) {
    throw new Error(`${op}: needs a last dimension of at least 1, got ${formatShape(x.shape)}`);
  }
  if (x.dtype !== "f32") throw new Error(`${op}: needs an f32 tensor, got ${x.dtype}`);
  return [x.size / classes, classes];
}

/**
 * exp and log that give NaN for NaN: WGSL leaves them undefined there, and SwiftShader (Chrome's
 * software adapter) gives 0, inf or a number, which would hide a NaN row's NaN.
 */
const KEEP_NAN = /* wgsl */ `
fn expKeepNan(v: f32) -> f32 { return ${keepNan("exp", "v")}; }
fn logKeepNan(v: f32) -> f32 { return ${keepNan("log", "v")}; }`;

/** WGSL `fn rowLogSumExp(base: u32) -> f32` over `x[base .. base + C)`, max-shifted. */
const ROW_LOG_SUM_EXP = /* wgsl */ `
fn rowLogSumExp(base: u32) -> f32 {
  var biggest = x[base];
  for (var j = 1u; j < C; j++) { biggest = max(biggest, x[base + j]); }
  var total = 0.0;
  for (var j = 0u; j < C; j++) { total += expKeepNan(x[base + j] - biggest); }
  return biggest + logKeepNan(total);
}`;

/**
 * WGSL `fn rowLogSumExp(base: u32) -> f32` as above, reading the row once into \`rowValues\`
 * (\`var<private>\`, for rows of at most CACHED_CLASSES): storage loads are the dear part.
 */
const CACHED_ROW_LOG_SUM_EXP = /* wgsl */ `
var<private> rowValues: array<f32, C>;
fn rowLogSumExp(base: u32) -> f32 {
  for (var j = 0u; j < C; j++) { rowValues[j] = x[base + j]; }
  var biggest = rowValues[0];
  for (var j = 1u; j < C; j++) { biggest = max(biggest, rowValues[j]); }
  var total = 0.0;
  for (var j = 0u; j < C; j++) { total += expKeepNan(rowValues[j] - biggest); }
  return biggest + logKeepNan(total);
}`;

/** Rows of at most this many classes are read once into private memory. */
const CACHED_CLASSES = 64;

/** The shape a row or loss kernel is generated for. */
interface Rows {
  rows: number;
  classes: number;
}

/** A storage binding: `read` of `type`, or `write` when `written`. */
function storage(name: string, type: "f32" | "i32", written = false): BindingSpec {
  return { name, role: written ? "write" : "read", type };
}

/**
 * A kernel whose invocation `row` runs `body` for each row < rows, with `C` the class count and
 * `prelude` (given whether rows are cached in private memory) before `main`.
 */
function rowKernel(
  name: string,
  bindings: readonly BindingSpec[],
  prelude: (cached: boolean) => string,
  body: (rows: Rows, cached: boolean) => string,
): KernelSpec<Rows> {
  return {
    name,
    key: ({ rows, classes }) => `${rows}x${classes}`,
    bindings: () => bindings,
    plan: ({ rows }) => ({ workgroupSize: ROW_WORKGROUP, groups: Math.ceil(rows / ROW_WORKGROUP) }),
    prelude: ({ classes }) =>
      `const C: u32 = ${u32(classes)};\n${KEEP_NAN}\n${prelude(classes <= CACHED_CLASSES)}`,
    body: (shape) => /* wgsl */ `
  let row = group * ${u32(ROW_WORKGROUP)} + lid;
  if (row < ${u32(shape.rows)}) {
${body(shape, shape.classes <= CACHED_CLASSES)}
  }`,
  };
}

const LOG_SOFTMAX = rowKernel(
  "log_softmax",
  [storage("x", "f32"), storage("out", "f32", true)],
  (cached) => cached ? CACHED_ROW_LOG_SUM_EXP : ROW_LOG_SUM_EXP,
  (_, cached) => /* wgsl */ `
    let base = row * C;
    let logSum = rowLogSumExp(base);
    for (var j = 0u; j < C; j++) { out[base + j] = ${
    cached ? "rowValues[j]" : "x[base + j]"
  } - logSum; }`,
);

const LOG_SOFTMAX_BACKWARD = rowKernel(
  "log_softmax_backward",
  [storage("grad", "f32"), storage("y", "f32"), storage("dx", "f32", true)],
  (cached) => cached ? "var<private> rowGrad: array<f32, C>;" : "",
  (_, cached) =>
    cached
      ? /* wgsl */ `
    let base = row * C;
    var total = 0.0;
    for (var j = 0u; j < C; j++) { rowGrad[j] = grad[base + j]; total += rowGrad[j]; }
    for (var j = 0u; j < C; j++) { dx[base + j] = rowGrad[j] - expKeepNan(y[base + j]) * total; }`
      : /* wgsl */ `
    let base = row * C;
    var total = 0.0;
    for (var j = 0u; j < C; j++) { total += grad[base + j]; }
    for (var j = 0u; j < C; j++) { dx[base + j] = grad[base + j] - expKeepNan(y[base + j]) * total; }`,
);

/** Options of `softmax` and `logSoftmax`. */
export interface SoftmaxOptions {
  /** The dimension the probabilities run along, negative counting from the end (default -1). */
  dim?: number;
}

/** The four strided row kernels. */
type StridedKind = RowKind;

/** A tensor seen as rows of `classes` elements `stride` apart. */
interface StridedRows {
  kind: StridedKind;
  /** Rows: the product of every size but the dimension's. */
  rows: number;
  classes: number;
  stride: number;
}

/**
 * How an invocation reads: `row` (one contiguous row, C a multiple of 4, 4 elements at a time),
 * `columns` (four neighbouring rows, S a multiple of 4: their elements j are one vec4, so each
 * lane of the vec4 is a row of its own) or `scalar` (one row, one element at a time).
 */
type StridedMode = "row" | "columns" | "scalar";

function stridedMode({ classes, stride }: StridedRows): StridedMode {
  if (stride === 1 && classes % 4 === 0) return "row";
  return stride % 4 === 0 ? "columns" : "scalar";
}

/**
 * WGSL of one strided kernel's row(s): forward kernels read `x` and write `out`; backward
 * kernels read `g` (the output's gradient) and `y` (the output) and write `dx`.
 */
function stridedRow(kind: StridedKind, mode: StridedMode): string {
  const vec = mode !== "scalar";
  const t = vec ? "vec4<f32>" : "f32";
  const index = mode === "row" ? "base4 + j" : mode === "columns" ? "base4 + j * (S / 4u)" : "";
  const read = (name: string) => vec ? `${name}Vec4(${index})` : `${name}At(base + j * S)`;
  const write = (name: string, value: string) =>
    vec ? `${name}[${index}] = ${value};` : `${name}[base + j * S] = ${value};`;
  // A contiguous row's 4 lanes are one row: sum them; in columns mode each lane is a row.
  const total = (value: string) => mode === "row" ? `dot(${value}, vec4<f32>(1.0))` : value;
  const nan = (v: string) => vec ? isNan4(v) : isNan(v);
  const n = mode === "row" ? "C / 4u" : "C";
  switch (kind) {
    case "softmax":
    case "log_softmax": {
      // A NaN lane wins the row's maximum (m + 0 * ... carries it into every lane's sum).
      const most = mode === "row"
        ? "select(max(max(m.x, m.y), max(m.z, m.w)), m.x + m.y + m.z + m.w, any(" + nan("m") + "))"
        : "m";
      const value = kind === "softmax" ? "exp(v - biggest) * inverse" : "v - biggest - logSum";
      const either = vec ? `${nan("m")} | ${nan("v")}` : `${nan("m")} || ${nan("v")}`;
      return /* wgsl */ `
    var m = ${read("x").replace("j", "0u")};
    // NaN kept explicitly, once met: WGSL's max may drop it (in SwiftShader a logSoftmax row
    // whose NaN came early was finite), and exp(NaN) is undefined (SwiftShader: inf).
    for (var j = 1u; j < ${n}; j++) {
      let v = ${read("x")};
      m = select(max(m, v), m + v, ${either});
    }
    let biggest = ${most};
    var s = ${t}(0.0);
    for (var j = 0u; j < ${n}; j++) { let d = ${read("x")} - biggest; s += select(exp(d), d, ${
        nan("d")
      }); }
    let sum = ${total("s")};
    let inverse = 1.0 / sum;
    let logSum = log(sum);
    for (var j = 0u; j < ${n}; j++) { let v = ${read("x")}; ${write("out", value)} }`;
    }
    case "softmax_backward":
      // dx = y * (g - sum(g * y))
      return /* wgsl */ `
    var s = ${t}(0.0);
    for (var j = 0u; j < ${n}; j++) { s += ${read("g")} * ${read("y")}; }
    let weighted = ${total("s")};
    for (var j = 0u; j < ${n}; j++) { ${write("dx", `${read("y")} * (${read("g")} - weighted)`)} }`;
    case "log_softmax_backward":
      // dx = g - exp(y) * sum(g)
      return /* wgsl */ `
    var s = ${t}(0.0);
    for (var j = 0u; j < ${n}; j++) { s += ${read("g")}; }
    let sum = ${total("s")};
    for (var j = 0u; j < ${n}; j++) { ${write("dx", `${read("g")} - exp(${read("y")}) * sum`)} }`;
  }
}

/** Rows an invocation owns. */
function rowsPerInvocation(options: StridedRows): number {
  return stridedMode(options) === "columns" ? 4 : 1;
}

/** Softmax, log-softmax and their gradients over rows `stride` apart, one row per invocation. */
const STRIDED: KernelSpec<StridedRows> = {
  name: "softmax_strided",
  key: ({ kind, rows, classes, stride }) => `${kind}_${rows}x${classes}s${stride}`,
  bindings: (options) => {
    const type = stridedMode(options) === "scalar" ? "f32" : "vec4<f32>";
    return options.kind.endsWith("backward")
      ? [
        { name: "g", role: "input" },
        { name: "y", role: "input" },
        { name: "dx", role: "write", type },
      ]
      : [{ name: "x", role: "input" }, { name: "out", role: "write", type }];
  },
  plan: (options, policy) => ({
    workgroupSize: policy.narrowWorkgroup,
    groups: Math.ceil(options.rows / rowsPerInvocation(options) / policy.narrowWorkgroup),
  }),
  prelude: ({ rows, classes, stride }) => /* wgsl */ `
const ROWS: u32 = ${u32(rows)};
const C: u32 = ${u32(classes)};
const S: u32 = ${u32(stride)};`,
  body: (options, { plan }) => /* wgsl */ `
  let row = (group * ${u32(plan.workgroupSize)} + lid) * ${u32(rowsPerInvocation(options))};
  if (row < ROWS) {
    // Row (outer, inner) starts at outer * C * S + inner.
    let base = (row / S) * (C * S) + row % S;
    let base4 = base / 4u;
${stridedRow(options.kind, stridedMode(options))}
  }`,
};

/** Runs `STRIDED` of `kind` over dim `dim` of `shape` into `out`. */
function runStrided(
  kind: StridedKind,
  shape: readonly number[],
  dim: number,
  resources: Record<string, Tensor>,
  out: Tensor,
): Tensor {
  if (out.size === 0) return out;
  const classes = shape[dim] ?? 1;
  const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
  const rows = out.size / classes;
  const name = kind.endsWith("backward") ? "dx" : "out";
  if (stride === 1 && classes >= kernelPolicy().cooperativeRowLength) {
    runKernel(COOPERATIVE_ROWS, { kind, rows, classes }, { ...resources, [name]: out });
  } else {
    runKernel(STRIDED, { kind, rows, classes, stride }, { ...resources, [name]: out });
  }
  return out;
}

/** The dimension `dim` names (0 for a 0-d tensor), checked as PyTorch does. */
function softmaxDim(op: string, x: Tensor, dim: number | undefined): number {
  if (x.dtype !== "f32") {
    throw new Error(`${op}: needs an f32 tensor, got ${x.dtype} of shape ${formatShape(x.shape)}`);
  }
  if (dim !== undefined && typeof dim !== "number") {
    throw new Error(`${op}: dim must be one dimension (a number), got ${JSON.stringify(dim)}`);
  }
  return normalizeDims(op, x.shape, dim ?? -1)[0] ?? 0;
}

/**
 * softmax(x) = exp(x) / sum(exp(x)) along `dim` (default -1), computed without overflow (shifted
 * by the maximum). Differentiable.
 *
 * @example Probabilities along the last dimension, and along the first
 * ```ts
 * import { init, softmax, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 2, 3, 1, 1, 1], [2, 3]);
 * console.log(await softmax(x).toArray()); // [0.090, 0.245, 0.665, 0.333, 0.333, 0.333]
 * console.log(await softmax(x, { dim: 0 }).toArray()); // [0.5, 0.731, 0.881, 0.5, 0.269, 0.119]
 * ```
 */
export function softmax(x: Tensor, options: SoftmaxOptions = {}): Tensor {
  const dim = softmaxDim("softmax", x, options.dim);
  const out = runStrided("softmax", x.shape, dim, { x }, Tensor.empty(x.shape));
  return recordOp("softmax", out, [x], (grad) => [
    runStrided("softmax_backward", out.shape, dim, { g: grad, y: out }, Tensor.empty(out.shape)),
  ]);
}

/**
 * log(softmax(x)) along `dim` (default -1, e.g. the classes of scores [N, C]), computed without
 * overflow. Differentiable.
 */
export function logSoftmax(x: Tensor, options: SoftmaxOptions = {}): Tensor {
  const dim = softmaxDim("logSoftmax", x, options.dim);
  const last = dim === x.rank - 1;
  const classes = x.shape[dim] ?? 1;
  if (last && classes <= CACHED_CLASSES && classes > 0) {
    // The training path: rows of few classes, read once into private memory.
    const out = Tensor.empty(x.shape);
    if (out.size > 0) runKernel(LOG_SOFTMAX, { rows: x.size / classes, classes }, { x, out });
    return recordLogSoftmax(x, out);
  }
  const out = runStrided("log_softmax", x.shape, dim, { x }, Tensor.empty(x.shape));
  return recordOp("logSoftmax", out, [x], (grad) => [
    runStrided(
      "log_softmax_backward",
      out.shape,
      dim,
      { g: grad, y: out },
      Tensor.empty(out.shape),
    ),
  ]);
}

/**
 * Records `out` as `logSoftmax(x)` over the last dimension of a [rows, classes] x (as the row
 * kernel, for `nllLoss`'s fused backward too), where a kernel computed it exactly as the row
 * kernel does (such as the matmul's log_softmax epilogue).
 */
export function recordLogSoftmax(x: Tensor, out: Tensor): Tensor {
  recordOp("logSoftmax", out, [x], (grad) => [logSoftmaxBackward(grad, out)]);
  if (out.node) logSoftmaxInputs.set(out, x);
  return out;
}

/** The input of each recorded row-cached `logSoftmax` output, for `nllLoss`'s fused backward. */
const logSoftmaxInputs = new WeakMap<Tensor, Tensor>();

/** The gradient of log-softmax given its output y: grad - exp(y) * rowSum(grad). */
function logSoftmaxBackward(grad: Tensor, output: Tensor): Tensor {
  const [rows, classes] = rowsOf("logSoftmax backward", output);
  const dx = Tensor.empty(output.shape);
  runKernel(LOG_SOFTMAX_BACKWARD, { rows, classes }, { grad, y: output, dx });
  return dx;
}

/** WGSL: whether `t` (an i32 target) names a class. */
const VALID_TARGET = "(t >= 0 && t < i32(C))";

/** PyTorch's default `ignoreIndex`: rows with this target count for nothing. */
const DEFAULT_IGNORE = -100;

/** Runs a loss's forward kernel on `buffers`, writing the unit-seed gradient into `dx` if given. */
type LossForward = (rows: Rows, buffers: Record<string, Tensor>, dx: Tensor | null) => void;

/**
 * A one-workgroup kernel that sums `perRow` (statements adding to `acc`, with `t` the row's
 * target) over the rows and writes the sum divided by the rows whose target is not -100
 * (negated when `negate`) into loss[0], and that divisor's inverse into scale[0] (for the
 * backward); and its variant that also writes the gradient at a unit seed into `dx` (for
 * `backward()` on the loss: `unitGradRow`, the backward kernel's row formula, with the divisor's
 * inverse computed here as `unitScale`).
 */
function lossKernels(
  name: string,
  bindings: readonly BindingSpec[],
  prelude: (cached: boolean) => string,
  perRow: (cached: boolean) => string,
  negate: boolean,
  unitGradRow: string,
): LossForward {
  const kernel = (unitGrad: boolean): KernelSpec<Rows> => ({
    name: unitGrad ? `${name}_unit_grad` : name,
    key: ({ rows, classes }) => `${rows}x${classes}`,
    bindings: () => [
      ...bindings,
      storage("scale", "f32", true),
      ...(unitGrad ? [storage("dx", "f32", true)] : []),
    ],
    // The head's workgroup size (a power of two), so that the loss may run in the head's
    // workgroup right after it (`chain`).
    plan: (_, policy) => ({ workgroupSize: policy.narrowWorkgroup, groups: 1 }),
    chain: () => true,
    prelude: ({ classes }, { plan }) =>
      `const C: u32 = ${u32(classes)};\n${KEEP_NAN}\n${prelude(classes <= CACHED_CLASSES)}\n` +
      workgroupSumWgsl(plan.workgroupSize),
    body: ({ rows, classes }, { plan }) => /* wgsl */ `
  var acc = 0.0;
  var counted = 0.0;
  for (var row = lid; row < ${u32(rows)}; row += ${u32(plan.workgroupSize)}) {
    let t = labels[row];
    counted += select(1.0, 0.0, t == ${DEFAULT_IGNORE});
${perRow(classes <= CACHED_CLASSES)}
  }
  let total = workgroupSum(lid, acc);
  workgroupBarrier();
  let count = workgroupSum(lid, counted);
  if (lid == 0u) {
    loss[0] = ${negate ? "-total" : "total"} / count;
    scale[0] = 1.0 / count;
  }${
      unitGrad
        ? /* wgsl */ `
  let unitScale = 1.0 / count;
  for (var row = lid; row < ${u32(rows)}; row += ${u32(plan.workgroupSize)}) {${unitGradRow}
  }`
        : ""
    }`,
  });
  const plain = kernel(false), withUnitGrad = kernel(true);
  return (rows, buffers, dx) => {
    if (dx) runKernel(withUnitGrad, rows, { ...buffers, dx });
    else runKernel(plain, rows, buffers);
  };
}

function checkLossInputs(op: string, scores: Tensor, target: Tensor, name: string): void {
  checkTarget(op, scores, target, name);
  if (scores.shape[0] === 0) throw new Error(`${op}: ${name} has no rows`);
}

const NLL_LOSS_BINDINGS = [
  storage("logProbs", "f32"),
  storage("labels", "i32"),
  storage("loss", "f32", true),
];
const NLL_LOSS_ROW = () => /* wgsl */ `
    if ${VALID_TARGET} { acc += logProbs[row * C + u32(t)]; }`;

/** Row `row` of nllLoss's gradient: -grad * scale at the target, 0 elsewhere. */
function nllGradRow(grad: string, scale: string): string {
  return /* wgsl */ `
    let value = -${grad} * ${scale};
    let t = labels[row];
    for (var j = 0u; j < C; j++) { dx[row * C + j] = select(0.0, value, i32(j) == t); }`;
}

/**
 * Row `row` of the gradient of nllLoss(logSoftmax(logits)) with respect to the logits, from `y`
 * (logSoftmax's output): the same operations in the same order as nllLoss's and logSoftmax's
 * backward kernels (so the same float results).
 */
function nllLogSoftmaxGradRow(grad: string, scale: string, y: string): string {
  return /* wgsl */ `
    let value = -${grad} * ${scale};
    let t = labels[row];
    let base = row * C;
    var total = 0.0;
    for (var j = 0u; j < C; j++) { total += select(0.0, value, i32(j) == t); }
    for (var j = 0u; j < C; j++) {
      dx[base + j] = select(0.0, value, i32(j) == t) - expKeepNan(${y}[base + j]) * total;
    }`;
}

const NLL_LOSS = lossKernels(
  "nll_loss",
  NLL_LOSS_BINDINGS,
  () => "",
  NLL_LOSS_ROW,
  true,
  nllGradRow("1.0", "unitScale"),
);
/** nllLoss of logSoftmax's output: its unit-seed gradient is the logits'. */
const NLL_OF_LOG_SOFTMAX = lossKernels(
  "nll_loss_of_log_softmax",
  NLL_LOSS_BINDINGS,
  () => "",
  NLL_LOSS_ROW,
  true,
  nllLogSoftmaxGradRow("1.0", "unitScale", "logProbs"),
);

/**
 * Hands `dx`, the gradient a loss kernel wrote at a unit seed, to the first `backward()` on the
 * loss, which then owns it (so nothing can add into a gradient the graph still holds); later
 * calls (with `retainGraph`) get null and run the backward kernel.
 */
function handOnce(dx: Tensor | null): () => Tensor | null {
  let held = dx;
  return () => {
    const out = held;
    held = null;
    return out && !out.isDisposed ? out : null;
  };
}

/** Whether a loss of `input` records a graph, so that its kernel writes the unit gradient. */
function wantsUnitGrad(input: Tensor): boolean {
  return isGradEnabled() && input.requiresGrad;
}

/**
 * A loss's output gradient, as its backward kernels read it: the binding of `grad` and
 * `grad[0]`, or (`unit`: `backward()` on the loss itself) no binding and 1, so that no seed
 * tensor is filled.
 */
function lossGrad(unit: boolean): { bindings: BindingSpec[]; value: string } {
  return unit
    ? { bindings: [], value: "1.0" }
    : { bindings: [storage("grad", "f32")], value: "grad[0]" };
}

/** Runs a loss's backward kernel on `buffers`, given the output gradient (null: a unit seed). */
type LossBackward = (rows: Rows, grad: Tensor | null, buffers: Record<string, Tensor>) => void;

/** A loss's backward kernel for an output gradient and for a unit seed (see `lossGrad`). */
function lossBackwardKernels(
  name: string,
  bindings: readonly BindingSpec[],
  body: (grad: string) => string,
): LossBackward {
  const kernel = (unit: boolean) => {
    const grad = lossGrad(unit);
    return rowKernel(
      unit ? `${name}_unit` : name,
      [...grad.bindings, ...bindings],
      () => "",
      () => body(grad.value),
    );
  };
  const seeded = kernel(false), unit = kernel(true);
  return (rows, grad, buffers) => {
    if (grad) runKernel(seeded, rows, { grad, ...buffers });
    else runKernel(unit, rows, buffers);
  };
}

const NLL_LOSS_BACKWARD = lossBackwardKernels(
  "nll_loss_backward",
  [storage("scale", "f32"), storage("labels", "i32"), storage("dx", "f32", true)],
  (grad) => nllGradRow(grad, "scale[0]"),
);

/**
 * The negative log-likelihood of log-probabilities against class indices (PyTorch's
 * `nll_loss`): -logProbs[n, target[n]] per row, weighted by `weight[target[n]]`, with
 * `reduction` "mean" (default: divided by the summed weights of the rows whose target is not
 * `ignoreIndex`, default -100), "sum" or "none" (one loss per row). Shapes: logProbs [N, C] with
 * i32 target [N], [C] with a 0-d target, or [N, C, d1, ...] with [N, d1, ...] (the
 * K-dimensional case). Targets outside [0, C) other than ignoreIndex contribute 0 (PyTorch
 * raises; checking would need a readback) and count in an unweighted mean's divisor.
 * Differentiable with respect to logProbs. The default options on [N, C] take one fused kernel.
 */
export function nllLoss(logProbs: Tensor, target: Tensor, options: NllLossOptions = {}): Tensor {
  const call: ClassLossCall = {
    op: "nllLoss",
    input: logProbs,
    target,
    weight: options.weight,
    ignoreIndex: options.ignoreIndex ?? DEFAULT_IGNORE,
    smoothing: 0,
    reduction: options.reduction ?? "mean",
  };
  const probabilities = checkClassLoss(call);
  if (!fastPath(call)) return classLoss(call, probabilities);
  checkLossInputs("nllLoss", logProbs, target, "logProbs");
  const [rows, classes] = logProbs.shape;
  const loss = Tensor.empty([]);
  const scale = Tensor.empty([1]);
  const logits = logSoftmaxInputs.get(logProbs);
  // nllLoss(logSoftmax(logits)): the gradient goes straight to the logits (the logSoftmax node
  // still carries any gradient that other uses of logProbs send it).
  const fused = logits !== undefined && !!logProbs.node && !logProbs.node.released;
  const dx = wantsUnitGrad(logProbs) ? Tensor.empty([rows, classes]) : null;
  (fused ? NLL_OF_LOG_SOFTMAX : NLL_LOSS)({ rows, classes }, {
    logProbs,
    labels: target,
    loss,
    scale,
  }, dx);
  const unitGrad = handOnce(dx);
  const saved = dx ? [scale, dx] : [scale];
  if (fused) {
    const y = logProbs.view();
    return recordOp(
      "nllLoss",
      loss,
      [logits, target],
      (grad) => [nllLogSoftmaxBackward(grad, scale, y, target), null],
      [...saved, y],
      () => [unitGrad() ?? nllLogSoftmaxBackward(null, scale, y, target), null],
    );
  }
  return recordOp(
    "nllLoss",
    loss,
    [logProbs, target],
    (grad) => [nllLossBackward(grad, scale, target, rows, classes), null],
    saved,
    () => [unitGrad() ?? nllLossBackward(null, scale, target, rows, classes), null],
  );
}

/** Whether a class loss takes the fast fused kernels: the default options on [N, C] indices. */
function fastPath(call: ClassLossCall): boolean {
  return call.input.rank === 2 && call.input.shape[0] > 0 && call.target.dtype === "i32" &&
    call.weight === undefined &&
    call.ignoreIndex === DEFAULT_IGNORE && call.smoothing === 0 && call.reduction === "mean";
}

/** dx[n, j] = -grad * scale where j == target[n], else 0 (grad null: 1, see `lossGrad`). */
function nllLossBackward(
  grad: Tensor | null,
  scale: Tensor,
  target: Tensor,
  rows: number,
  classes: number,
): Tensor {
  const dx = Tensor.empty([rows, classes]);
  NLL_LOSS_BACKWARD({ rows, classes }, grad, { scale, labels: target, dx });
  return dx;
}

/** nllLoss's and logSoftmax's backward in one kernel, given logSoftmax's output y. */
const NLL_LOG_SOFTMAX_BACKWARD = lossBackwardKernels(
  "nll_log_softmax_backward",
  [
    storage("scale", "f32"),
    storage("y", "f32"),
    storage("labels", "i32"),
    storage("dx", "f32", true),
  ],
  (grad) => nllLogSoftmaxGradRow(grad, "scale[0]", "y"),
);

/**
 * The gradient of nllLoss(logSoftmax(logits)) with respect to the logits, from y = logSoftmax
 * (grad null: 1, see `lossGrad`).
 */
function nllLogSoftmaxBackward(
  grad: Tensor | null,
  scale: Tensor,
  y: Tensor,
  target: Tensor,
): Tensor {
  const [rows, classes] = y.shape;
  const dx = Tensor.empty([rows, classes]);
  NLL_LOG_SOFTMAX_BACKWARD({ rows, classes }, grad, { scale, y, labels: target, dx });
  return dx;
}

const CROSS_ENTROPY_BINDINGS = [
  storage("x", "f32"),
  storage("labels", "i32"),
  storage("logSums", "f32", true),
  storage("loss", "f32", true),
];
const CROSS_ENTROPY_PRELUDE = (cached: boolean) =>
  cached ? CACHED_ROW_LOG_SUM_EXP : ROW_LOG_SUM_EXP;
const CROSS_ENTROPY_ROW = (cached: boolean) => /* wgsl */ `
    let base = row * C;
    let logSum = rowLogSumExp(base);
    logSums[row] = logSum;
    if ${VALID_TARGET} { acc += logSum - ${cached ? "rowValues[u32(t)]" : "x[base + u32(t)]"}; }`;

/**
 * Row `row` of crossEntropy's gradient, (exp(x - logSumExp) - onehot(target)) * grad * scale,
 * zero on rows with a bad target (each invocation reads the log-sum-exps it wrote itself).
 */
function crossEntropyGradRow(grad: string, scale: string): string {
  return /* wgsl */ `
    let t = labels[row];
    let factor = select(0.0, ${grad} * ${scale}, ${VALID_TARGET});
    let logSum = logSums[row];
    let base = row * C;
    for (var j = 0u; j < C; j++) {
      let onehot = select(0.0, 1.0, i32(j) == t);
      dx[base + j] = (expKeepNan(x[base + j] - logSum) - onehot) * factor;
    }`;
}

const CROSS_ENTROPY = lossKernels(
  "cross_entropy",
  CROSS_ENTROPY_BINDINGS,
  CROSS_ENTROPY_PRELUDE,
  CROSS_ENTROPY_ROW,
  false,
  crossEntropyGradRow("1.0", "unitScale"),
);

/** dx = (exp(x - logSumExp) - onehot(target)) * grad / N, zero on rows with a bad target. */
const CROSS_ENTROPY_BACKWARD = lossBackwardKernels(
  "cross_entropy_backward",
  [
    storage("scale", "f32"),
    storage("x", "f32"),
    storage("labels", "i32"),
    storage("logSums", "f32"),
    storage("dx", "f32", true),
  ],
  (grad) => crossEntropyGradRow(grad, "scale[0]"),
);

/**
 * Cross-entropy of logits against class indices or probabilities (PyTorch's `cross_entropy`):
 * nllLoss(logSoftmax(logits), target) with the same `weight`, `ignoreIndex` and `reduction`,
 * plus `labelSmoothing` (PyTorch 1.13's formula: (1 - s) times the loss plus s / C times the
 * weighted sum of -logp over the classes). `target` is i32 class indices (shapes as `nllLoss`)
 * or f32 probabilities of the logits' shape (then "mean" divides by the rows, and ignoreIndex is
 * refused). Targets outside [0, C) contribute 0 and get a zero gradient row. Differentiable
 * with respect to logits and to probability targets; the default options on [N, C] take one
 * fused kernel each way.
 *
 * @example Weighted, with label smoothing
 * ```ts
 * import { crossEntropy, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const logits = tensor([2, 0, 0, 0, 1, 0], [2, 3]);
 * const target = tensor([0, 1], [2], { dtype: "i32" });
 * console.log(await crossEntropy(logits, target).item()); // 0.3954
 * const weight = tensor([1, 2, 1], [3]);
 * console.log(await crossEntropy(logits, target, { weight, labelSmoothing: 0.1 }).item()); // 0.5268
 * ```
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  const call: ClassLossCall = {
    op: "crossEntropy",
    input: logits,
    target,
    weight: options.weight,
    ignoreIndex: options.ignoreIndex ?? DEFAULT_IGNORE,
    smoothing: options.labelSmoothing ?? 0,
    reduction: options.reduction ?? "mean",
  };
  const probabilities = checkClassLoss(call);
  if (!fastPath(call)) return classLoss(call, probabilities);
  checkLossInputs("crossEntropy", logits, target, "logits");
  const [rows, classes] = logits.shape;
  const loss = Tensor.empty([]);
  const logSums = Tensor.empty([rows]);
  const scale = Tensor.empty([1]);
  const dx = wantsUnitGrad(logits) ? Tensor.empty([rows, classes]) : null;
  CROSS_ENTROPY({ rows, classes }, { x: logits, labels: target, logSums, loss, scale }, dx);
  const unitGrad = handOnce(dx);
  return recordOp(
    "crossEntropy",
    loss,
    [logits, target],
    (grad) => [crossEntropyBackward(grad, scale, logits, target, logSums), null],
    dx ? [logSums, scale, dx] : [logSums, scale],
    () => [unitGrad() ?? crossEntropyBackward(null, scale, logits, target, logSums), null],
  );
}

/**
 * dx = (exp(x - logSumExp) - onehot(target)) * grad * scale, zero on rows with a bad target
 * (grad null: 1, see `lossGrad`).
 */
function crossEntropyBackward(
  grad: Tensor | null,
  scale: Tensor,
  logits: Tensor,
  target: Tensor,
  logSums: Tensor,
): Tensor {
  const [rows, classes] = logits.shape;
  const dx = Tensor.empty(logits.shape);
  CROSS_ENTROPY_BACKWARD({ rows, classes }, grad, {
    scale,
    x: logits,
    labels: target,
    logSums,
    dx,
  });
  return dx;
}
