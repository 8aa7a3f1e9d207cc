/**
 * Regression and binary losses (PyTorch 1.13's `torch.nn.functional` semantics): `mseLoss`,
 * `l1Loss`, `smoothL1Loss`, `huberLoss`, `binaryCrossEntropy`, `binaryCrossEntropyWithLogits`
 * and `klDiv`, each with `reduction: "mean" | "sum" | "none"` (default "mean"; `klDiv` also
 * "batchmean").
 *
 * Every loss is one fused element-wise kernel (4 elements per invocation, inputs read through
 * `xAt`/`xVec4`, one vec4 store) that writes the element losses, then, for "mean"/"sum", the
 * existing sum (`sumAll`, one dispatch, two for large tensors) scaled by 1/size (or 1/N). The
 * backward is one fused kernel too: it reads the output's gradient (the whole tensor for
 * "none", else its one element times the reduction's factor) and writes the input's gradient
 * and, when the target requires one, the target's, in the same dispatch.
 *
 * Targets must have the input's shape (PyTorch broadcasts some with a warning; here a mismatch
 * is an error naming both shapes). `weight` and `posWeight` broadcast to the input's shape (a
 * copy when their shapes differ) and get no gradient. Gradients: the input always; the target
 * for every loss here (PyTorch differentiates all of them in the target too). `klDiv`'s target
 * gradient at a zero target is -inf (PyTorch's is NaN there).
 *
 * Inputs are not checked on the GPU (that would need a readback): `binaryCrossEntropy` of
 * values outside [0, 1] gives NaN where PyTorch raises.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, full, Tensor, zeros } from "../tensor.ts";
import { sumAll } from "./reduce.ts";
import { expand } from "./layout.ts";

/** How a loss reduces its element (or row) losses: their mean (default), their sum, or none. */
export type Reduction = "mean" | "sum" | "none";

/** Options of the losses that only reduce. */
export interface LossOptions {
  /** "mean" (default): the mean of the element losses; "sum": their sum; "none": all of them. */
  reduction?: Reduction;
}

/** Options of `mseLoss`. */
export type MseLossOptions = LossOptions;
/** Options of `l1Loss`. */
export type L1LossOptions = LossOptions;

/** Options of `smoothL1Loss`. */
export interface SmoothL1LossOptions extends LossOptions {
  /** Where the loss turns from quadratic to linear (default 1; 0 gives the L1 loss). */
  beta?: number;
}

/** Options of `huberLoss`. */
export interface HuberLossOptions extends LossOptions {
  /** Where the loss turns from quadratic to linear (default 1; must be > 0). */
  delta?: number;
}

/** Options of `binaryCrossEntropy`. */
export interface BinaryCrossEntropyOptions extends LossOptions {
  /** A weight of each element's loss, broadcast to the input's shape (no gradient). */
  weight?: Tensor;
}

/** Options of `binaryCrossEntropyWithLogits`. */
export interface BinaryCrossEntropyWithLogitsOptions extends BinaryCrossEntropyOptions {
  /**
   * The weight of the positive term (the target's), broadcast to the input's shape, e.g. [C]
   * over the last dimension of [N, C] (no gradient).
   */
  posWeight?: Tensor;
}

/** Options of `klDiv`. */
export interface KlDivOptions {
  /**
   * "mean" (default, PyTorch's: over all elements), "batchmean" (the sum over the first
   * dimension's size: the KL divergence's definition), "sum" or "none".
   */
  reduction?: Reduction | "batchmean";
  /** Whether the target holds log-probabilities (default false: probabilities). */
  logTarget?: boolean;
}

/** The element-wise losses with a kernel below. */
type PointwiseLoss = "mse" | "l1" | "smooth_l1" | "huber" | "bce" | "bce_logits" | "kl" | "kl_log";

/**
 * WGSL (vec4) of one loss on `x` (input) and `y` (target), with `w` its weight and `p` its
 * positive weight (1 when absent) and `K` its constant (beta or delta): `setup` (statements),
 * the element loss and its derivatives in x and y (without the weight, applied by the kernel).
 */
interface LossWgsl {
  setup: string;
  loss: string;
  dx: string;
  dy: string;
}

/** `log(1 + u)` for u >= 0, accurate for small u (WGSL has no log1p). */
const LOG1P = /* wgsl */ `
fn log1p4(u: vec4<f32>) -> vec4<f32> {
  let series = u * (1.0 - u * (0.5 - u * (1.0 / 3.0 - u * 0.25)));
  return select(log(1.0 + u), series, u < vec4<f32>(0.01));
}`;

const LOSS_WGSL: Record<PointwiseLoss, LossWgsl> = {
  mse: { setup: "let d = x - y;", loss: "d * d", dx: "2.0 * d", dy: "-2.0 * d" },
  l1: { setup: "let d = x - y;", loss: "abs(d)", dx: "sign(d)", dy: "-sign(d)" },
  smooth_l1: {
    setup: "let d = x - y; let a = abs(d); let inner = a < vec4<f32>(K);",
    loss: "select(a - 0.5 * K, 0.5 * d * d / K, inner)",
    dx: "select(sign(d), d / K, inner)",
    dy: "-select(sign(d), d / K, inner)",
  },
  huber: {
    setup: "let d = x - y; let a = abs(d); let inner = a < vec4<f32>(K);",
    loss: "select(K * (a - 0.5 * K), 0.5 * d * d, inner)",
    dx: "select(K * sign(d), d, inner)",
    dy: "-select(K * sign(d), d, inner)",
  },
  // PyTorch clamps each log at -100 and divides the gradient by max(x (1 - x), 1e-12).
  bce: {
    setup:
      // log(0) is -inf in WGSL only by convention (SwiftShader gives -88): clamp it explicitly.
      "let lx = select(max(log(x), vec4<f32>(-100.0)), vec4<f32>(-100.0), x == vec4<f32>(0.0)); " +
      "let l1x = select(max(log(1.0 - x), vec4<f32>(-100.0)), vec4<f32>(-100.0), " +
      "x == vec4<f32>(1.0));",
    loss: "-(y * lx + (1.0 - y) * l1x)",
    dx: "(x - y) / max((1.0 - x) * x, vec4<f32>(1e-12))",
    dy: "l1x - lx",
  },
  // (1 - y) x + (1 + (p - 1) y) softplus(-x), softplus(-x) = max(-x, 0) + log1p(exp(-|x|)).
  bce_logits: {
    setup: "let spn = max(-x, vec4<f32>(0.0)) + log1p4(exp(-abs(x))); " +
      "let s = 1.0 / (1.0 + exp(-x));",
    loss: "(1.0 - y) * x + (1.0 + (p - 1.0) * y) * spn",
    dx: "(p * y + 1.0 - y) * s - p * y",
    dy: "(p - 1.0) * spn - x",
  },
  // y (log y - x), 0 where y == 0 (PyTorch's xlogy).
  kl: {
    setup: "let ly = log(y);",
    loss: "select(y * ly, vec4<f32>(0.0), y == vec4<f32>(0.0)) - y * x",
    dx: "-y",
    dy: "ly + 1.0 - x",
  },
  kl_log: {
    setup: "let e = exp(y);",
    loss: "e * (y - x)",
    dx: "-e",
    dy: "e * (y - x + 1.0)",
  },
};

/** One element-wise loss kernel: the forward, or the backward. */
interface PointwiseOptions {
  loss: PointwiseLoss;
  size: number;
  /** beta or delta (0 when unused). */
  constant: number;
  weight: boolean;
  posWeight: boolean;
  /** Forward: write the element losses. */
  backward: boolean;
  /** Backward: the output's gradient is one element (a reduced loss), times `factor`. */
  scalarGrad: boolean;
  factor: number;
  inputGrad: boolean;
  targetGrad: boolean;
}

const POINTWISE: KernelSpec<PointwiseOptions> = {
  name: "pointwise_loss",
  key: (o) =>
    [
      o.loss,
      o.size,
      f32(o.constant),
      o.weight ? "w" : "",
      o.posWeight ? "p" : "",
      o.backward ? `b${o.scalarGrad ? `s${f32(o.factor)}` : ""}` : "f",
      o.inputGrad ? "dx" : "",
      o.targetGrad ? "dy" : "",
    ].join("_"),
  bindings: (o) => {
    const bindings: BindingSpec[] = [
      { name: "inp", role: "input", readOnce: true },
      { name: "tgt", role: "input", readOnce: true },
    ];
    if (o.weight) bindings.push({ name: "wgt", role: "input", readOnce: true });
    if (o.posWeight) bindings.push({ name: "pw", role: "input", readOnce: true });
    if (!o.backward) {
      bindings.push({ name: "out", role: "write", type: "vec4<f32>" });
      return bindings;
    }
    bindings.push(
      o.scalarGrad ? { name: "g", role: "read" } : { name: "g", role: "input", readOnce: true },
    );
    if (o.inputGrad) bindings.push({ name: "dx", role: "write", type: "vec4<f32>" });
    if (o.targetGrad) bindings.push({ name: "dy", role: "write", type: "vec4<f32>" });
    return bindings;
  },
  plan: ({ size }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(Math.ceil(size / 4) / policy.elementwiseWorkgroup),
  }),
  prelude: ({ constant }) => `const K: f32 = ${f32(constant)};\n${LOG1P}`,
  body: (o, { plan }) => {
    const wgsl = LOSS_WGSL[o.loss];
    const w = o.weight ? "wgtVec4(j)" : "vec4<f32>(1.0)";
    const p = o.posWeight ? "pwVec4(j)" : "vec4<f32>(1.0)";
    let work: string;
    if (!o.backward) {
      work = `out[j] = w * (${wgsl.loss});`;
    } else {
      const g = o.scalarGrad ? `vec4<f32>(g[0] * ${f32(o.factor)})` : "gVec4(j)";
      work = `let gw = ${g} * w;` +
        (o.inputGrad ? ` dx[j] = gw * (${wgsl.dx});` : "") +
        (o.targetGrad ? ` dy[j] = gw * (${wgsl.dy});` : "");
    }
    return /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j < ${u32(Math.ceil(o.size / 4))}) {
    let x = inpVec4(j); let y = tgtVec4(j); let w = ${w}; let p = ${p};
    ${wgsl.setup}
    ${work}
  }`;
  },
};

const REDUCTIONS = ["mean", "sum", "none"];

function checkReduction(op: string, reduction: string, allowed = REDUCTIONS): void {
  if (!allowed.includes(reduction)) {
    throw new Error(
      `${op}: reduction must be ${allowed.map((r) => `"${r}"`).join(", ")}; got ${
        JSON.stringify(reduction)
      }`,
    );
  }
}

function checkFloat(op: string, name: string, x: Tensor): void {
  if (!(x instanceof Tensor)) throw new Error(`${op}: ${name} must be a Tensor`);
  if (x.dtype !== "f32") {
    throw new Error(
      `${op}: ${name} must be an f32 tensor, got ${x.dtype} of shape ${formatShape(x.shape)}`,
    );
  }
}

/** Checks input and target (f32, same shape); the message names the op and both shapes. */
function checkPair(op: string, input: Tensor, target: Tensor): void {
  checkFloat(op, "input", input);
  checkFloat(op, "target", target);
  if (
    input.rank !== target.rank || input.shape.some((size, d) => size !== target.shape[d])
  ) {
    throw new Error(
      `${op}: target shape ${formatShape(target.shape)} does not match input shape ` +
        `${formatShape(input.shape)} (they must be the same)`,
    );
  }
}

/** `weight` as a contiguous tensor of `shape` (itself when it already is), or undefined. */
function broadcastWeight(
  op: string,
  name: string,
  weight: Tensor | undefined,
  shape: readonly number[],
): Tensor | undefined {
  if (weight === undefined) return undefined;
  checkFloat(op, name, weight);
  const lead = shape.length - weight.rank;
  const fits = lead >= 0 &&
    weight.shape.every((size, d) => size === 1 || size === shape[d + lead]);
  if (!fits) {
    throw new Error(
      `${op}: ${name} shape ${formatShape(weight.shape)} does not broadcast to input shape ` +
        `${formatShape(shape)}`,
    );
  }
  if (lead === 0 && weight.shape.every((size, d) => size === shape[d])) return weight;
  return expand(weight, shape);
}

interface PointwiseCall {
  op: string;
  loss: PointwiseLoss;
  input: Tensor;
  target: Tensor;
  reduction: Reduction | "batchmean";
  constant?: number;
  weight?: Tensor;
  posWeight?: Tensor;
}

/** Runs one element-wise loss, reduced, with its fused backward. */
function pointwiseLoss(call: PointwiseCall): Tensor {
  const { op, loss, input, target, reduction } = call;
  const weight = broadcastWeight(op, "weight", call.weight, input.shape);
  const posWeight = broadcastWeight(op, "posWeight", call.posWeight, input.shape);
  // Copies made by broadcasting are private to this call.
  const owned = [weight, posWeight].filter((t): t is Tensor =>
    t !== undefined && t !== call.weight && t !== call.posWeight
  );
  const size = input.size;
  const base = {
    loss,
    size,
    constant: call.constant ?? 0,
    weight: weight !== undefined,
    posWeight: posWeight !== undefined,
  };
  const extra: Record<string, Tensor> = {};
  if (weight) extra.wgt = weight;
  if (posWeight) extra.pw = posWeight;
  const factor = reduction === "mean"
    ? 1 / size
    : reduction === "batchmean"
    ? 1 / (input.rank === 0 ? 1 : input.shape[0])
    : 1;
  const none = reduction === "none";
  const inputShape = input.shape;

  let out: Tensor;
  if (size === 0) {
    out = none ? Tensor.empty(inputShape) : full([], reduction === "sum" ? 0 : NaN);
    for (const t of owned) t.dispose();
    return recordOp(op, out, [input, target], () => [zeros(inputShape), zeros(inputShape)]);
  }
  const elements = Tensor.empty(inputShape);
  runKernel(
    POINTWISE,
    {
      ...base,
      backward: false,
      scalarGrad: false,
      factor: 1,
      inputGrad: false,
      targetGrad: false,
    },
    { inp: input, tgt: target, ...extra, out: elements },
  );
  if (none) {
    out = elements;
  } else {
    out = sumAll(elements, factor, []);
    elements.dispose();
  }
  return recordOp(op, out, [input, target], (grad) => {
    const inputGrad = input.requiresGrad;
    const targetGrad = target.requiresGrad;
    const dx = inputGrad ? Tensor.empty(inputShape) : null;
    const dy = targetGrad ? Tensor.empty(inputShape) : null;
    if (dx || dy) {
      const resources: Record<string, Tensor> = { inp: input, tgt: target, ...extra, g: grad };
      if (dx) resources.dx = dx;
      if (dy) resources.dy = dy;
      runKernel(POINTWISE, {
        ...base,
        backward: true,
        scalarGrad: !none,
        factor: none ? 1 : factor,
        inputGrad,
        targetGrad,
      }, resources);
    }
    return [dx, dy];
  }, owned);
}

/**
 * The mean squared error mean((input - target)^2) (PyTorch's `mse_loss`), or its sum or
 * element losses. Differentiable in input and target.
 *
 * @example
 * ```ts
 * import { init, mseLoss, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const loss = mseLoss(tensor([1, 2, 3]), tensor([1, 0, 0]));
 * console.log(await loss.item()); // (0 + 4 + 9) / 3 = 4.333
 * ```
 */
export function mseLoss(input: Tensor, target: Tensor, options: MseLossOptions = {}): Tensor {
  const { reduction = "mean" } = options;
  checkReduction("mseLoss", reduction);
  checkPair("mseLoss", input, target);
  return pointwiseLoss({ op: "mseLoss", loss: "mse", input, target, reduction });
}

/**
 * The mean absolute error mean(|input - target|) (PyTorch's `l1_loss`), or its sum or element
 * losses. Differentiable in input and target (gradient 0 where they are equal).
 */
export function l1Loss(input: Tensor, target: Tensor, options: L1LossOptions = {}): Tensor {
  const { reduction = "mean" } = options;
  checkReduction("l1Loss", reduction);
  checkPair("l1Loss", input, target);
  return pointwiseLoss({ op: "l1Loss", loss: "l1", input, target, reduction });
}

/**
 * PyTorch's `smooth_l1_loss`: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, with
 * d = input - target (beta = 0: the L1 loss). Differentiable in input and target.
 */
export function smoothL1Loss(
  input: Tensor,
  target: Tensor,
  options: SmoothL1LossOptions = {},
): Tensor {
  const { reduction = "mean", beta = 1 } = options;
  checkReduction("smoothL1Loss", reduction);
  checkPair("smoothL1Loss", input, target);
  if (!(beta >= 0) || !Number.isFinite(beta)) {
    throw new Error(`smoothL1Loss: beta must be a finite number >= 0, got ${beta}`);
  }
  const loss = beta === 0 ? "l1" : "smooth_l1";
  return pointwiseLoss({ op: "smoothL1Loss", loss, input, target, reduction, constant: beta });
}

/**
 * PyTorch's `huber_loss`: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), with
 * d = input - target. Differentiable in input and target.
 */
export function huberLoss(input: Tensor, target: Tensor, options: HuberLossOptions = {}): Tensor {
  const { reduction = "mean", delta = 1 } = options;
  checkReduction("huberLoss", reduction);
  checkPair("huberLoss", input, target);
  if (!(delta > 0) || !Number.isFinite(delta)) {
    throw new Error(`huberLoss: delta must be a finite number > 0, got ${delta}`);
  }
  return pointwiseLoss({
    op: "huberLoss",
    loss: "huber",
    input,
    target,
    reduction,
    constant: delta,
  });
}

/**
 * Binary cross-entropy -w (y log x + (1 - y) log(1 - x)) of probabilities `input` in [0, 1]
 * (PyTorch's `binary_cross_entropy`: each log clamped at -100). Values outside [0, 1] give NaN
 * (PyTorch raises; checking would need a readback). Differentiable in input and target.
 */
export function binaryCrossEntropy(
  input: Tensor,
  target: Tensor,
  options: BinaryCrossEntropyOptions = {},
): Tensor {
  const { reduction = "mean", weight } = options;
  checkReduction("binaryCrossEntropy", reduction);
  checkPair("binaryCrossEntropy", input, target);
  return pointwiseLoss({
    op: "binaryCrossEntropy",
    loss: "bce",
    input,
    target,
    reduction,
    weight,
  });
}

/**
 * Binary cross-entropy of logits, sigmoid folded in, in PyTorch's stable form:
 * w ((1 - y) x + (1 + (posWeight - 1) y) softplus(-x)) (`binary_cross_entropy_with_logits`).
 * Differentiable in input and target.
 *
 * @example
 * ```ts
 * import { binaryCrossEntropyWithLogits, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const loss = binaryCrossEntropyWithLogits(tensor([0, 2]), tensor([1, 0]));
 * console.log(await loss.item()); // (0.693 + 2.127) / 2 = 1.410
 * ```
 */
export function binaryCrossEntropyWithLogits(
  input: Tensor,
  target: Tensor,
  options: BinaryCrossEntropyWithLogitsOptions = {},
): Tensor {
  const { reduction = "mean", weight, posWeight } = options;
  const op = "binaryCrossEntropyWithLogits";
  checkReduction(op, reduction);
  checkPair(op, input, target);
  return pointwiseLoss({ op, loss: "bce_logits", input, target, reduction, weight, posWeight });
}

/**
 * PyTorch's `kl_div`: target (log target - input) element-wise, with `input` log-probabilities
 * and `target` probabilities (0 where the target is 0) or, with `logTarget`, log-probabilities
 * (exp(target) (target - input)). "mean" divides by the element count (PyTorch's default);
 * "batchmean" by the first dimension's size. Differentiable in input and target.
 */
export function klDiv(input: Tensor, target: Tensor, options: KlDivOptions = {}): Tensor {
  const { reduction = "mean", logTarget = false } = options;
  checkReduction("klDiv", reduction, [...REDUCTIONS, "batchmean"]);
  checkPair("klDiv", input, target);
  return pointwiseLoss({
    op: "klDiv",
    loss: logTarget ? "kl_log" : "kl",
    input,
    target,
    reduction,
  });
}
