/**
 * CPU references (float64) of log-softmax, negative log-likelihood and cross-entropy, forward
 * and backward, over the last dimension of row-major [N, C] data.
 *
 * Targets outside [0, C) contribute 0 to the losses and get no gradient; the mean still
 * divides by N (as the GPU ops do).
 *
 * @module
 */

function isValidTarget(target: number, classes: number): boolean {
  return Number.isInteger(target) && target >= 0 && target < classes;
}

/** log(softmax(x)) of each row of `classes` values. */
export function logSoftmaxReference(x: ArrayLike<number>, classes: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += classes) {
    let max = -Infinity;
    for (let j = 0; j < classes; j++) max = Math.max(max, x[base + j]);
    let total = 0;
    for (let j = 0; j < classes; j++) total += Math.exp(x[base + j] - max);
    const logSum = max + Math.log(total);
    for (let j = 0; j < classes; j++) out[base + j] = x[base + j] - logSum;
  }
  return out;
}

/** The gradient of log-softmax given its output: grad - softmax * rowSum(grad). */
export function logSoftmaxBackwardReference(
  grad: ArrayLike<number>,
  output: ArrayLike<number>,
  classes: number,
): Float64Array {
  const dx = new Float64Array(grad.length);
  for (let base = 0; base < grad.length; base += classes) {
    let total = 0;
    for (let j = 0; j < classes; j++) total += grad[base + j];
    for (let j = 0; j < classes; j++) {
      dx[base + j] = grad[base + j] - Math.exp(output[base + j]) * total;
    }
  }
  return dx;
}

/** -mean over rows of logProbs[n, target[n]]. */
export function nllLossReference(
  logProbs: ArrayLike<number>,
  target: ArrayLike<number>,
  classes: number,
): number {
  let total = 0;
  for (let n = 0; n < target.length; n++) {
    if (isValidTarget(target[n], classes)) total += logProbs[n * classes + target[n]];
  }
  return -total / countedRows(target);
}

/** Rows counted by the mean: those whose target is not -100 (PyTorch's default ignoreIndex). */
function countedRows(target: ArrayLike<number>): number {
  let count = 0;
  for (let n = 0; n < target.length; n++) if (target[n] !== -100) count++;
  return count;
}

/** The gradient of `nllLossReference` times the loss's gradient `grad`. */
export function nllLossBackwardReference(
  grad: number,
  target: ArrayLike<number>,
  classes: number,
): Float64Array {
  const dx = new Float64Array(target.length * classes);
  for (let n = 0; n < target.length; n++) {
    if (isValidTarget(target[n], classes)) {
      dx[n * classes + target[n]] = -grad / countedRows(target);
    }
  }
  return dx;
}

/** nllLoss(logSoftmax(logits), target). */
export function crossEntropyReference(
  logits: ArrayLike<number>,
  target: ArrayLike<number>,
  classes: number,
): number {
  return nllLossReference(logSoftmaxReference(logits, classes), target, classes);
}

/** The gradient of cross-entropy: (softmax - onehot) * grad / N, zero on rows with bad targets. */
export function crossEntropyBackwardReference(
  grad: number,
  logits: ArrayLike<number>,
  target: ArrayLike<number>,
  classes: number,
): Float64Array {
  const logProbs = logSoftmaxReference(logits, classes);
  const dx = new Float64Array(logits.length);
  for (let n = 0; n < target.length; n++) {
    if (!isValidTarget(target[n], classes)) continue;
    for (let j = 0; j < classes; j++) {
      const i = n * classes + j;
      dx[i] = (Math.exp(logProbs[i]) - (j === target[n] ? 1 : 0)) * grad / countedRows(target);
    }
  }
  return dx;
}

/** Rows of `shape` along `dim`: for each, the flat indices of its elements in order. */
function rowsAlong(shape: readonly number[], dim: number): number[][] {
  const d = shape.length === 0 ? 0 : (dim + shape.length) % shape.length;
  const classes = shape[d] ?? 1;
  const stride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
  const size = shape.reduce((a, b) => a * b, 1);
  const rows: number[][] = [];
  for (let outer = 0; outer < size / (classes * stride); outer++) {
    for (let inner = 0; inner < stride; inner++) {
      const base = outer * classes * stride + inner;
      rows.push(Array.from({ length: classes }, (_, j) => base + j * stride));
    }
  }
  return rows;
}

/** softmax (or log-softmax, with `log`) of x along `dim`. */
export function softmaxDimReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  log = false,
): Float64Array {
  const out = new Float64Array(x.length);
  for (const row of rowsAlong(shape, dim)) {
    const m = Math.max(...row.map((i) => x[i]));
    const logSum = m + Math.log(row.reduce((s, i) => s + Math.exp(x[i] - m), 0));
    for (const i of row) out[i] = log ? x[i] - logSum : Math.exp(x[i] - logSum);
  }
  return out;
}

/** The gradient of softmax (or log-softmax) along `dim`, given the input. */
export function softmaxDimBackwardReference(
  grad: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  log = false,
): Float64Array {
  const p = softmaxDimReference(x, shape, dim);
  const dx = new Float64Array(x.length);
  for (const row of rowsAlong(shape, dim)) {
    if (log) {
      const sum = row.reduce((s, i) => s + grad[i], 0);
      for (const i of row) dx[i] = grad[i] - p[i] * sum;
    } else {
      const dot = row.reduce((s, i) => s + grad[i] * p[i], 0);
      for (const i of row) dx[i] = p[i] * (grad[i] - dot);
    }
  }
  return dx;
}
