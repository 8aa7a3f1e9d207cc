/**
 * Log-softmax over the last dimension, negative log-likelihood and cross-entropy losses.
 *
 * Rows are short (class scores), so each invocation owns whole rows (lanes on batch rows); the
 * losses sum their rows in one workgroup. Rows of up to 64 classes are read from storage once
 * into private memory (on llvmpipe storage loads are the dear part of these kernels). `crossEntropy` saves each row's log-sum-exp and has
 * one fused backward kernel producing (softmax - onehot) * grad / N.
 *
 * Targets are not checked on the GPU (that would need a readback): a target outside [0, C)
 * contributes 0 to the loss and gets no gradient, and the mean still divides by N.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { isNan } from "./nan_wgsl.ts";
import { checkTarget, workgroupSumWgsl } from "./reduce.ts";

/** Invocations per workgroup of the row kernels (one row each). */
const ROW_WORKGROUP = 8;
/** Invocations of the one workgroup that sums a loss over the rows (a power of two). */
const LOSS_WORKGROUP = 32;

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
fn expKeepNan(v: f32) -> f32 { return select(exp(v), v, ${isNan("v")}); }
fn logKeepNan(v: f32) -> f32 { return select(log(v), v, ${isNan("v")}); }`;

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

/** log(softmax(x)) over the last dimension (e.g. x [N, C]). Differentiable. */
export function logSoftmax(x: Tensor): Tensor {
  const [rows, classes] = rowsOf("logSoftmax", x);
  const out = Tensor.empty(x.shape);
  runKernel(LOG_SOFTMAX, { rows, classes }, { x, out });
  return recordOp("logSoftmax", out, [x], (grad) => [logSoftmaxBackward(grad, out)]);
}

/** The gradient of log-softmax given its output y: grad - exp(y) * rowSum(grad). */
function logSoftmaxBackward(grad: Tensor, output: Tensor): Tensor {
  const [rows, classes] = rowsOf("logSoftmax backward", output);
  const dx = Tensor.empty(output.shape);
  runKernel(LOG_SOFTMAX_BACKWARD, { rows, classes }, { grad, y: output, dx });
  return dx;
}

/** WGSL: whether `t` (an i32 target) names a class. */
const VALID_TARGET = "(t >= 0 && t < i32(C))";

/**
 * A one-workgroup kernel that sums `perRow` (statements adding to `acc`) over the rows and
 * writes the sum times 1 / rows (negated when `negate`) into loss[0].
 */
function lossKernel(
  name: string,
  bindings: readonly BindingSpec[],
  prelude: (cached: boolean) => string,
  perRow: (cached: boolean) => string,
  negate: boolean,
): KernelSpec<Rows> {
  return {
    name,
    key: ({ rows, classes }) => `${rows}x${classes}`,
    bindings: () => bindings,
    plan: () => ({ workgroupSize: LOSS_WORKGROUP, groups: 1 }),
    prelude: ({ classes }) =>
      `const C: u32 = ${u32(classes)};\n${KEEP_NAN}\n${prelude(classes <= CACHED_CLASSES)}\n` +
      workgroupSumWgsl(LOSS_WORKGROUP),
    body: ({ rows, classes }) => /* wgsl */ `
  var acc = 0.0;
  for (var row = lid; row < ${u32(rows)}; row += ${u32(LOSS_WORKGROUP)}) {
${perRow(classes <= CACHED_CLASSES)}
  }
  let total = workgroupSum(lid, acc);
  if (lid == 0u) { loss[0] = total * ${f32((negate ? -1 : 1) / rows)}; }`,
  };
}

function checkLossInputs(op: string, scores: Tensor, target: Tensor, name: string): void {
  checkTarget(op, scores, target, name);
  if (scores.shape[0] === 0) throw new Error(`${op}: ${name} has no rows`);
}

const NLL_LOSS = lossKernel(
  "nll_loss",
  [storage("logProbs", "f32"), storage("labels", "i32"), storage("loss", "f32", true)],
  () => "",
  () => /* wgsl */ `
    let t = labels[row];
    if ${VALID_TARGET} { acc += logProbs[row * C + u32(t)]; }`,
  true,
);

const NLL_LOSS_BACKWARD = rowKernel(
  "nll_loss_backward",
  [storage("grad", "f32"), storage("labels", "i32"), storage("dx", "f32", true)],
  () => "",
  ({ rows }) => /* wgsl */ `
    let value = -grad[0] * ${f32(1 / rows)};
    let t = labels[row];
    for (var j = 0u; j < C; j++) { dx[row * C + j] = select(0.0, value, i32(j) == t); }`,
);

/**
 * The negative log-likelihood -mean_n logProbs[n, target[n]] of logProbs [N, C] and i32 target
 * [N], as a scalar []. Targets outside [0, C) contribute 0 (and the mean still divides by N).
 * Differentiable with respect to logProbs.
 */
export function nllLoss(logProbs: Tensor, target: Tensor): Tensor {
  checkLossInputs("nllLoss", logProbs, target, "logProbs");
  const [rows, classes] = logProbs.shape;
  const loss = Tensor.empty([]);
  runKernel(NLL_LOSS, { rows, classes }, { logProbs, labels: target, loss });
  return recordOp("nllLoss", loss, [logProbs, target], (grad) => [
    nllLossBackward(grad, target, rows, classes),
    null,
  ]);
}

/** dx[n, j] = -grad / N where j == target[n], else 0. */
function nllLossBackward(grad: Tensor, target: Tensor, rows: number, classes: number): Tensor {
  const dx = Tensor.empty([rows, classes]);
  runKernel(NLL_LOSS_BACKWARD, { rows, classes }, { grad, labels: target, dx });
  return dx;
}

const CROSS_ENTROPY = lossKernel(
  "cross_entropy",
  [
    storage("x", "f32"),
    storage("labels", "i32"),
    storage("logSums", "f32", true),
    storage("loss", "f32", true),
  ],
  (cached) => cached ? CACHED_ROW_LOG_SUM_EXP : ROW_LOG_SUM_EXP,
  (cached) => /* wgsl */ `
    let base = row * C;
    let logSum = rowLogSumExp(base);
    logSums[row] = logSum;
    let t = labels[row];
    if ${VALID_TARGET} { acc += logSum - ${cached ? "rowValues[u32(t)]" : "x[base + u32(t)]"}; }`,
  false,
);

/** dx = (exp(x - logSumExp) - onehot(target)) * grad / N, zero on rows with a bad target. */
const CROSS_ENTROPY_BACKWARD = rowKernel(
  "cross_entropy_backward",
  [
    storage("grad", "f32"),
    storage("x", "f32"),
    storage("labels", "i32"),
    storage("logSums", "f32"),
    storage("dx", "f32", true),
  ],
  () => "",
  ({ rows }) => /* wgsl */ `
    let t = labels[row];
    let factor = select(0.0, grad[0] * ${f32(1 / rows)}, ${VALID_TARGET});
    let logSum = logSums[row];
    let base = row * C;
    for (var j = 0u; j < C; j++) {
      let onehot = select(0.0, 1.0, i32(j) == t);
      dx[base + j] = (expKeepNan(x[base + j] - logSum) - onehot) * factor;
    }`,
);

/**
 * Cross-entropy of logits [N, C] against i32 target [N]: nllLoss(logSoftmax(logits), target),
 * fused, as a scalar []. Targets outside [0, C) contribute 0 and get a zero gradient row.
 * Differentiable with respect to logits, with one fused backward kernel.
 */
export function crossEntropy(logits: Tensor, target: Tensor): Tensor {
  checkLossInputs("crossEntropy", logits, target, "logits");
  const [rows, classes] = logits.shape;
  const loss = Tensor.empty([]);
  const logSums = Tensor.empty([rows]);
  runKernel(CROSS_ENTROPY, { rows, classes }, { x: logits, labels: target, logSums, loss });
  return recordOp(
    "crossEntropy",
    loss,
    [logits, target],
    (grad) => [crossEntropyBackward(grad, logits, target, logSums), null],
    [logSums],
  );
}

/** dx = (exp(x - logSumExp) - onehot(target)) * grad / N, zero on rows with a bad target. */
function crossEntropyBackward(
  grad: Tensor,
  logits: Tensor,
  target: Tensor,
  logSums: Tensor,
): Tensor {
  const [rows, classes] = logits.shape;
  const dx = Tensor.empty(logits.shape);
  runKernel(CROSS_ENTROPY_BACKWARD, { rows, classes }, {
    grad,
    x: logits,
    labels: target,
    logSums,
    dx,
  });
  return dx;
}
