/**
 * Float64 references of the losses (`nn/ops/losses.ts` and the class losses of
 * `nn/ops/softmax.ts`), written from PyTorch 1.13's formulas. Gradients are checked by finite
 * differences of these.
 *
 * @module
 */

/** A reduction, as the losses take it. */
export type ReferenceReduction = "mean" | "sum" | "none" | "batchmean";

/** `elements` reduced: mean over all, sum, none, or sum / `batch`. */
export function reduceReference(
  elements: ArrayLike<number>,
  reduction: ReferenceReduction,
  batch = 1,
): Float64Array | number {
  if (reduction === "none") return Float64Array.from(elements);
  let total = 0;
  for (let i = 0; i < elements.length; i++) total += elements[i];
  if (reduction === "sum") return total;
  if (reduction === "batchmean") return total / batch;
  return total / elements.length;
}

/** The element-wise losses of the references. */
export type PointwiseReference =
  | "mse"
  | "l1"
  | "smoothL1"
  | "huber"
  | "bce"
  | "bceLogits"
  | "kl"
  | "klLog";

function softplus(v: number): number {
  return Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
}

/**
 * The element losses of `loss` on input x and target y, with weight w and positive weight p
 * (each broadcast already; 1 when absent) and constant k (beta or delta).
 */
export function pointwiseReference(
  loss: PointwiseReference,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  options: { w?: ArrayLike<number>; p?: ArrayLike<number>; k?: number } = {},
): Float64Array {
  const { w, p, k = 1 } = options;
  return Float64Array.from({ length: x.length }, (_, i) => {
    const a = x[i], b = y[i], d = a - b;
    let value: number;
    switch (loss) {
      case "mse":
        value = d * d;
        break;
      case "l1":
        value = Math.abs(d);
        break;
      case "smoothL1":
        value = k === 0 ? Math.abs(d) : Math.abs(d) < k ? 0.5 * d * d / k : Math.abs(d) - 0.5 * k;
        break;
      case "huber":
        value = Math.abs(d) < k ? 0.5 * d * d : k * (Math.abs(d) - 0.5 * k);
        break;
      case "bce":
        value = -(b * Math.max(Math.log(a), -100) + (1 - b) * Math.max(Math.log(1 - a), -100));
        break;
      case "bceLogits": {
        const pos = p ? p[i] : 1;
        value = (1 - b) * a + (1 + (pos - 1) * b) * softplus(-a);
        break;
      }
      case "kl":
        value = (b === 0 ? 0 : b * Math.log(b)) - b * a;
        break;
      case "klLog":
        value = Math.exp(b) * (b - a);
        break;
    }
    return (w ? w[i] : 1) * value;
  });
}

/** `values` of `shape` broadcast to `to` (row-major), as PyTorch broadcasts. */
export function broadcastReference(
  values: ArrayLike<number>,
  shape: readonly number[],
  to: readonly number[],
): Float64Array {
  const lead = to.length - shape.length;
  const size = to.reduce((a, b) => a * b, 1);
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    let rest = i, source = 0, stride = 1;
    for (let d = to.length - 1; d >= 0; d--) {
      const index = rest % to[d];
      rest = Math.floor(rest / to[d]);
      if (d >= lead) {
        const own = shape[d - lead];
        if (own !== 1) source += index * stride;
        stride *= own;
      }
    }
    out[i] = values[source];
  }
  return out;
}

/** Options of the class-loss reference. */
export interface ClassLossReferenceOptions {
  /** Class weights [C]. */
  weight?: ArrayLike<number>;
  ignoreIndex?: number;
  labelSmoothing?: number;
  reduction?: "mean" | "sum" | "none";
}

function logSoftmaxRows(x: ArrayLike<number>, classes: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += classes) {
    let biggest = -Infinity;
    for (let j = 0; j < classes; j++) biggest = Math.max(biggest, x[base + j]);
    let total = 0;
    for (let j = 0; j < classes; j++) total += Math.exp(x[base + j] - biggest);
    const logSum = biggest + Math.log(total);
    for (let j = 0; j < classes; j++) out[base + j] = x[base + j] - logSum;
  }
  return out;
}

/**
 * PyTorch 1.13's nll_loss (`logits: false`, x log-probabilities) or cross_entropy (`logits:
 * true`) of rows x [rows, C] against class indices `target` [rows]. Targets outside [0, C)
 * other than ignoreIndex contribute 0 and count 1 in an unweighted mean's divisor, 0 in a
 * weighted one (wgtorch's rule: PyTorch raises).
 */
export function classLossReference(
  x: ArrayLike<number>,
  target: ArrayLike<number>,
  classes: number,
  logits: boolean,
  options: ClassLossReferenceOptions = {},
): Float64Array | number {
  const { weight, ignoreIndex = -100, labelSmoothing = 0, reduction = "mean" } = options;
  const logProbs = logits ? logSoftmaxRows(x, classes) : x;
  const rows = target.length;
  const losses = new Float64Array(rows);
  let divisor = 0;
  for (let n = 0; n < rows; n++) {
    const t = target[n];
    if (t === ignoreIndex) continue;
    if (!(t >= 0 && t < classes)) {
      if (!weight) divisor += 1;
      continue;
    }
    const wt = weight ? weight[t] : 1;
    divisor += wt;
    let smooth = 0;
    for (let c = 0; c < classes; c++) {
      smooth -= (weight ? weight[c] : 1) * logProbs[n * classes + c];
    }
    losses[n] = -(1 - labelSmoothing) * wt * logProbs[n * classes + t] +
      labelSmoothing / classes * smooth;
  }
  if (reduction === "none") return losses;
  const total = losses.reduce((a, b) => a + b, 0);
  return reduction === "sum" ? total : total / divisor;
}

/**
 * PyTorch 1.13's cross_entropy of logits x [rows, C] against probabilities `target` [rows, C]:
 * -sum_c w_c q_c log softmax(x)_c per row with q = (1 - s) target + s / C; "mean" divides by the
 * rows (not by the weights).
 */
export function crossEntropyProbReference(
  x: ArrayLike<number>,
  target: ArrayLike<number>,
  classes: number,
  options: ClassLossReferenceOptions = {},
): Float64Array | number {
  const { weight, labelSmoothing = 0, reduction = "mean" } = options;
  const logProbs = logSoftmaxRows(x, classes);
  const rows = x.length / classes;
  const losses = new Float64Array(rows);
  for (let n = 0; n < rows; n++) {
    for (let c = 0; c < classes; c++) {
      const q = (1 - labelSmoothing) * target[n * classes + c] + labelSmoothing / classes;
      losses[n] -= (weight ? weight[c] : 1) * q * logProbs[n * classes + c];
    }
  }
  if (reduction === "none") return losses;
  const total = losses.reduce((a, b) => a + b, 0);
  return reduction === "sum" ? total : total / rows;
}

/** [N, C, d...] (row-major) to [N, d..., C]: the class dimension moved last. */
export function classesLastReference(
  x: ArrayLike<number>,
  shape: readonly number[],
): Float64Array {
  const [n, c] = shape;
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const out = new Float64Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < c; k++) {
      for (let i = 0; i < inner; i++) out[(b * inner + i) * c + k] = x[(b * c + k) * inner + i];
    }
  }
  return out;
}
