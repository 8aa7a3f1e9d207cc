/**
 * The general path of `nllLoss` and `crossEntropy` (`softmax.ts`): class weights, `ignoreIndex`,
 * every reduction, label smoothing, probability targets and the K-dimensional case, with
 * PyTorch 1.13's semantics. The default options (mean, no weight, ignoreIndex -100, no
 * smoothing, [N, C] with class indices) keep the fast kernels of `softmax.ts`.
 *
 * Rows [rows, C] (the K-dimensional input [N, C, d1, ...] is permuted to [N, d1, ..., C] first,
 * one copy) go through two kernels:
 *
 * - the forward, one workgroup looping over the rows: each row's log-sum-exp (cross-entropy,
 *   saved for the backward), its loss and its weight in the mean's divisor; it writes the row
 *   losses ("none"), or their sum and the divisor's inverse (saved as `scale`);
 * - the backward, one row per invocation: softmax minus the (weighted, smoothed) target, times
 *   the row's gradient.
 *
 * Per row with class index t (PyTorch 1.13, `cross_entropy_loss_label_smoothing`): loss =
 * (1 - s) w_t (-logp_t) + s / C sum_c w_c (-logp_c), and the mean divides by the sum of w_t over
 * the rows not ignored. With probabilities q: loss = -sum_c w_c ((1 - s) q_c + s / C) logp_c,
 * and the mean divides by the rows; the probabilities get a gradient too, as in PyTorch.
 *
 * Targets are not checked on the GPU (that would need a readback; PyTorch raises): a class
 * index outside [0, C) other than ignoreIndex contributes 0 to the loss and gets no gradient,
 * and counts 1 in an unweighted mean's divisor (as the fast kernels), 0 in a weighted one.
 *
 * @module
 */

import { holdForGraph, recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, full, Tensor, zeros } from "../tensor.ts";
import { workgroupSumWgsl } from "./reduce.ts";
import { permute } from "./layout.ts";
import type { Reduction } from "./losses.ts";

/** Invocations of the one workgroup of the forward kernel (a power of two). */
const FORWARD_WORKGROUP = 32;

/** Options of `nllLoss`. */
export interface NllLossOptions {
  /** A weight for each class, f32 [C] (no gradient). */
  weight?: Tensor;
  /** A class index whose rows count for nothing, in the loss or in the mean (default -100). */
  ignoreIndex?: number;
  /** "mean" (default: divided by the summed weights of the rows not ignored), "sum" or "none". */
  reduction?: Reduction;
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions extends NllLossOptions {
  /**
   * Mixes the target with the uniform distribution: (1 - s) target + s / C (default 0), in
   * [0, 1].
   */
  labelSmoothing?: number;
}

/** What a class-loss kernel computes. */
type ClassKind = "nll" | "ce" | "ce_prob";

interface ClassOptions {
  kind: ClassKind;
  rows: number;
  classes: number;
  weighted: boolean;
  ignoreIndex: number;
  smoothing: number;
  reduction: Reduction;
  /** Backward of probability targets: also the target's gradient (`dq`). */
  targetGrad?: boolean;
}

function classKey(o: ClassOptions): string {
  return [
    o.kind,
    o.targetGrad ? "dq" : "",
    `${o.rows}x${o.classes}`,
    o.weighted ? "w" : "",
    o.ignoreIndex,
    f32(o.smoothing),
    o.reduction,
  ].join("_");
}

/** WGSL constants and helpers of both kernels: `W(c)`, `LP(base, j)` (a log-probability). */
function classPrelude(o: ClassOptions): string {
  return /* wgsl */ `
const C: u32 = ${u32(o.classes)};
const IGNORE: i32 = ${o.ignoreIndex};
const S: f32 = ${f32(o.smoothing)};
fn W(c: u32) -> f32 { return ${o.weighted ? "weightAt(c)" : "1.0"}; }
fn rowLogSumExp(base: u32) -> f32 {
  var biggest = xAt(base);
  for (var j = 1u; j < C; j++) { biggest = max(biggest, xAt(base + j)); }
  var total = 0.0;
  for (var j = 0u; j < C; j++) { total += exp(xAt(base + j) - biggest); }
  return biggest + log(total);
}`;
}

function classBindings(o: ClassOptions): BindingSpec[] {
  const bindings: BindingSpec[] = [{ name: "x", role: "input" }];
  if (o.kind === "ce_prob") bindings.push({ name: "q", role: "input" });
  else bindings.push({ name: "labels", role: "read", type: "i32" });
  if (o.weighted) bindings.push({ name: "weight", role: "input" });
  return bindings;
}

/** WGSL: the loss of row `row` (base `base`) into `rowLoss` and its divisor weight `rowWeight`. */
function rowLossWgsl(o: ClassOptions): string {
  const lp = (j: string) => o.kind === "nll" ? `xAt(base + ${j})` : `(xAt(base + ${j}) - lse)`;
  const lse = o.kind === "nll" ? "" : "let lse = rowLogSumExp(base); logSums[row] = lse;";
  if (o.kind === "ce_prob") {
    return /* wgsl */ `
    ${lse}
    var rowLoss = 0.0;
    for (var j = 0u; j < C; j++) { rowLoss -= W(j) * ((1.0 - S) * qAt(base + j) + S / f32(C)) * ${
      lp("j")
    }; }
    let rowWeight = 1.0;`;
  }
  const smooth = o.smoothing > 0
    ? /* wgsl */ `
        var uniformPart = 0.0;
        for (var j = 0u; j < C; j++) { uniformPart -= W(j) * ${lp("j")}; }
        rowLoss += S / f32(C) * uniformPart;`
    : "";
  return /* wgsl */ `
    ${lse}
    let t = labels[row];
    var rowLoss = 0.0;
    var rowWeight = 0.0;
    if (t != IGNORE) {
      if (t >= 0 && t < i32(C)) {
        let wt = W(u32(t));
        rowWeight = wt;
        rowLoss = -(1.0 - S) * wt * ${lp("u32(t)")};${smooth}
      } else {
        rowWeight = ${o.weighted ? "0.0" : "1.0"};
      }
    }`;
}

const CLASS_FORWARD: KernelSpec<ClassOptions> = {
  name: "class_loss",
  key: classKey,
  bindings: (o) => {
    const bindings = classBindings(o);
    if (o.kind !== "nll") bindings.push({ name: "logSums", role: "write" });
    if (o.reduction === "none") bindings.push({ name: "rowLosses", role: "write" });
    else bindings.push({ name: "loss", role: "write" }, { name: "scale", role: "write" });
    return bindings;
  },
  plan: () => ({ workgroupSize: FORWARD_WORKGROUP, groups: 1 }),
  prelude: (o) =>
    classPrelude(o) + (o.reduction === "none" ? "" : workgroupSumWgsl(FORWARD_WORKGROUP)),
  body: (o) => {
    const none = o.reduction === "none";
    const finish = o.reduction === "mean"
      ? "loss[0] = total / divisor; scale[0] = 1.0 / divisor;"
      : "loss[0] = total; scale[0] = 1.0;";
    return /* wgsl */ `
  var acc = 0.0;
  var weights = 0.0;
  for (var row = lid; row < ${u32(o.rows)}; row += ${u32(FORWARD_WORKGROUP)}) {
    let base = row * C;
${rowLossWgsl(o)}
    ${none ? "rowLosses[row] = rowLoss;" : "acc += rowLoss; weights += rowWeight;"}
  }${
      none ? "" : /* wgsl */ `
  let total = workgroupSum(lid, acc);
  workgroupBarrier();
  let divisor = workgroupSum(lid, weights);
  if (lid == 0u) { ${finish} }`
    }`;
  },
};

/** WGSL of one row's gradient: `dx[base + j]` from the row's gradient `gr`. */
function rowGradWgsl(o: ClassOptions): string {
  if (o.kind === "nll") {
    return /* wgsl */ `
    let t = labels[row];
    let valid = t != IGNORE && t >= 0 && t < i32(C);
    let value = select(0.0, -gr * W(u32(select(0, t, valid))), valid);
    for (var j = 0u; j < C; j++) { dx[base + j] = select(0.0, value, i32(j) == t); }`;
  }
  const p = "exp(xAt(base + j) - lse)";
  if (o.kind === "ce_prob") {
    // d/dx_j = p_j sum_c w_c q_c - w_j q_j, with q the smoothed target.
    return /* wgsl */ `
    let lse = logSums[row];
    var total = 0.0;
    for (var j = 0u; j < C; j++) { total += W(j) * ((1.0 - S) * qAt(base + j) + S / f32(C)); }
    for (var j = 0u; j < C; j++) {
      let qj = (1.0 - S) * qAt(base + j) + S / f32(C);
      dx[base + j] = gr * (${p} * total - W(j) * qj);${
      o.targetGrad ? "\n      dq[base + j] = -gr * (1.0 - S) * W(j) * (xAt(base + j) - lse);" : ""
    }
    }`;
  }
  // d/dx_j = (1 - s) w_t (p_j - [j == t]) + s / C (p_j sum_c w_c - w_j).
  return /* wgsl */ `
    let t = labels[row];
    let valid = t != IGNORE && t >= 0 && t < i32(C);
    let lse = logSums[row];
    let wt = W(u32(select(0, t, valid)));
    var weightSum = 0.0;
    ${o.smoothing > 0 ? "for (var j = 0u; j < C; j++) { weightSum += W(j); }" : ""}
    let factor = select(0.0, gr, valid);
    for (var j = 0u; j < C; j++) {
      let pj = ${p};
      let onehot = select(0.0, 1.0, i32(j) == t);
      dx[base + j] = factor * ((1.0 - S) * wt * (pj - onehot) + S / f32(C) * (pj * weightSum - W(j)));
    }`;
}

const CLASS_BACKWARD: KernelSpec<ClassOptions> = {
  name: "class_loss_backward",
  key: classKey,
  bindings: (o) => {
    const bindings = classBindings(o);
    if (o.kind !== "nll") bindings.push({ name: "logSums", role: "read" });
    bindings.push({ name: "grad", role: "read" });
    if (o.reduction !== "none") bindings.push({ name: "scale", role: "read" });
    bindings.push({ name: "dx", role: "write" });
    if (o.targetGrad) bindings.push({ name: "dq", role: "write" });
    return bindings;
  },
  plan: ({ rows }, policy) => ({
    workgroupSize: policy.narrowWorkgroup,
    groups: Math.ceil(rows / policy.narrowWorkgroup),
  }),
  prelude: classPrelude,
  body: (o, { plan }) => /* wgsl */ `
  let row = group * ${u32(plan.workgroupSize)} + lid;
  if (row < ${u32(o.rows)}) {
    let base = row * C;
    let gr = ${o.reduction === "none" ? "grad[row]" : "grad[0] * scale[0]"};
${rowGradWgsl(o)}
  }`,
};

/** The checked options of one class-loss call. */
export interface ClassLossCall {
  /** The op, named in messages. */
  op: "nllLoss" | "crossEntropy";
  /** Log-probabilities (nllLoss) or logits (crossEntropy): [C], [N, C] or [N, C, d1, ...]. */
  input: Tensor;
  /** i32 class indices, or (crossEntropy) f32 probabilities of the input's shape. */
  target: Tensor;
  /** Class weights [C]. */
  weight?: Tensor;
  /** The class index of rows that count for nothing. */
  ignoreIndex: number;
  /** Label smoothing in [0, 1]. */
  smoothing: number;
  /** How the row losses reduce. */
  reduction: Reduction;
}

/** The input's name in messages. */
function inputName(op: string): string {
  return op === "nllLoss" ? "logProbs" : "logits";
}

function targetError(op: string, input: Tensor, target: Tensor, probabilities: boolean): Error {
  const indices = input.rank === 1 ? [] : [input.shape[0], ...input.shape.slice(2)];
  return new Error(
    `${op}: target shape ${formatShape(target.shape)} does not match ${inputName(op)} ` +
      `${formatShape(input.shape)} (needs ${formatShape(indices)}` +
      (probabilities ? `, or f32 probabilities of shape ${formatShape(input.shape)})` : ")"),
  );
}

/** Checks a class loss's input, target and options; whether the target holds probabilities. */
export function checkClassLoss(call: ClassLossCall): boolean {
  const { op, input, target, weight } = call;
  if (!(input instanceof Tensor) || !(target instanceof Tensor)) {
    throw new Error(`${op}: input and target must be Tensors`);
  }
  if (input.dtype !== "f32") {
    throw new Error(`${op}: ${inputName(op)} must be an f32 tensor, got ${input.dtype}`);
  }
  if (input.rank === 0 || input.shape[1 % input.rank] === 0) {
    throw new Error(
      `${op}: ${inputName(op)} must have shape [C], [N, C] or [N, C, d1, ...] with C > 0, got ` +
        formatShape(input.shape),
    );
  }
  if (!["mean", "sum", "none"].includes(call.reduction)) {
    throw new Error(
      `${op}: reduction must be "mean", "sum" or "none"; got ${JSON.stringify(call.reduction)}`,
    );
  }
  const classes = input.rank === 1 ? input.shape[0] : input.shape[1];
  if (weight !== undefined) {
    if (
      !(weight instanceof Tensor) || weight.dtype !== "f32" || weight.rank !== 1 ||
      weight.shape[0] !== classes
    ) {
      throw new Error(
        `${op}: weight must be an f32 tensor of shape [${classes}] (one per class), got ` +
          (weight instanceof Tensor ? `${weight.dtype} ${formatShape(weight.shape)}` : "no tensor"),
      );
    }
  }
  if (!Number.isInteger(call.ignoreIndex)) {
    throw new Error(`${op}: ignoreIndex must be an integer, got ${call.ignoreIndex}`);
  }
  if (!(call.smoothing >= 0 && call.smoothing <= 1)) {
    throw new Error(`${op}: labelSmoothing must be in [0, 1], got ${call.smoothing}`);
  }
  const sameShape = target.rank === input.rank &&
    target.shape.every((size, d) => size === input.shape[d]);
  const probabilities = op === "crossEntropy";
  if (target.dtype === "f32" && probabilities && sameShape) {
    if (call.ignoreIndex !== -100) {
      throw new Error(
        `${op}: ignoreIndex is not supported with probability targets (got ${call.ignoreIndex})`,
      );
    }
    return true;
  }
  const indexShape = input.rank === 1 ? [] : [input.shape[0], ...input.shape.slice(2)];
  const fits = target.rank === indexShape.length &&
    target.shape.every((size, d) => size === indexShape[d]);
  if (!fits) throw targetError(op, input, target, probabilities);
  if (target.dtype !== "i32") {
    throw new Error(
      `${op}: target must be an i32 tensor of class indices${
        probabilities ? " (or f32 probabilities of the input's shape)" : ""
      }, got ${target.dtype} of shape ${formatShape(target.shape)}`,
    );
  }
  return false;
}

/** The class loss of `call` (checked), through the general kernels. */
export function classLoss(call: ClassLossCall, probabilities: boolean): Tensor {
  const { op, input, target, weight, reduction } = call;
  const rank = input.rank;
  const classes = rank === 1 ? input.shape[0] : input.shape[1];
  // Classes last: [rows, C]. A 1-d input is one row; [N, C, d...] is permuted (one copy).
  const order = rank > 2 ? [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2), 1] : null;
  const rowShape = rank === 1 ? [] : [input.shape[0], ...input.shape.slice(2)];
  const rows = rowShape.reduce((a, b) => a * b, 1);
  // [N, C] and its [N] target are used as they are; other shapes are permuted (a copy) and
  // viewed as rows, and the loss's node holds those tensors (see `adopt`).
  const made: Tensor[] = [];
  const rowsOf = (t: Tensor): Tensor => {
    if (rank === 2) return t;
    const permuted = order ? permute(t, order) : t;
    if (permuted !== t) made.push(permuted);
    const viewed = permuted.reshape([rows, classes]);
    made.push(viewed);
    return viewed;
  };
  const x = rowsOf(input);
  let targetRows = target;
  if (probabilities) targetRows = rowsOf(target);
  else if (rank !== 2) made.push(targetRows = target.view([rows]));
  if (rows === 0) {
    const out = reduction === "none"
      ? Tensor.empty(rowShape)
      : full([], reduction === "sum" ? 0 : NaN);
    const inputShape = input.shape;
    return adopt(recordOp(op, out, [input], () => [zeros(inputShape)]), made);
  }
  const options: ClassOptions = {
    kind: op === "nllLoss" ? "nll" : probabilities ? "ce_prob" : "ce",
    rows,
    classes,
    weighted: weight !== undefined,
    ignoreIndex: call.ignoreIndex,
    smoothing: call.smoothing,
    reduction,
  };
  const resources: Record<string, Tensor> = { x };
  if (probabilities) resources.q = targetRows;
  else resources.labels = targetRows;
  if (weight) resources.weight = weight;
  const saved: Tensor[] = [];
  if (options.kind !== "nll") {
    resources.logSums = Tensor.empty([rows]);
    saved.push(resources.logSums);
  }
  let out: Tensor;
  if (reduction === "none") {
    out = Tensor.empty([rows]);
    runKernel(CLASS_FORWARD, options, { ...resources, rowLosses: out });
  } else {
    out = Tensor.empty([]);
    const scale = Tensor.empty([1]);
    saved.push(scale);
    runKernel(CLASS_FORWARD, options, { ...resources, loss: out, scale });
    resources.scale = scale;
  }
  const inputs = [x, targetRows];
  const result = recordOp(op, out, inputs, (grad) => {
    const dx = Tensor.empty([rows, classes]);
    // Probability targets are differentiable, as in PyTorch: -(1 - s) w_c logp_c per element.
    const dq = probabilities && targetRows.requiresGrad ? Tensor.empty([rows, classes]) : null;
    const backward = { ...options, targetGrad: dq !== null };
    runKernel(CLASS_BACKWARD, backward, { ...resources, grad, dx, ...(dq ? { dq } : {}) });
    return [dx, dq];
  }, saved);
  adopt(result, made);
  if (reduction !== "none" || rank === 2) return result;
  return adopt(result.reshape(rowShape), [result]);
}

/**
 * Gives `made` (tensors an op created and does not return) to `out`'s node, which frees them
 * when released; without a node (no gradient recorded), frees them now. Returns `out`.
 */
function adopt(out: Tensor, made: readonly Tensor[]): Tensor {
  for (const tensor of made) {
    if (out.node) holdForGraph(out.node, tensor);
    else tensor.dispose();
  }
  return out;
}
