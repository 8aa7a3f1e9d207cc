/**
 * CPU references (float64) of one optimizer update, written from the published algorithms of
 * `torch.optim.SGD`, `torch.optim.Adam` and `torch.optim.AdamW` (PyTorch 2.x, single-tensor
 * path). Each function is pure: it returns new arrays and leaves its inputs alone.
 *
 * @module
 */

/** Hyperparameters of SGD, as `torch.optim.SGD`. */
export interface SgdReferenceOptions {
  /** Learning rate. */
  lr: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
}

/** A parameter, its gradient and its SGD state before the step. */
export interface SgdReferenceInput {
  /** The parameter. */
  param: ArrayLike<number>;
  /** Its gradient. */
  grad: ArrayLike<number>;
  /** The momentum buffer, or null/absent before the first step with momentum. */
  momentumBuffer?: ArrayLike<number> | null;
}

/** The parameter and SGD state after the step. */
export interface SgdReferenceOutput {
  /** The updated parameter. */
  param: Float64Array;
  /** The momentum buffer (null when momentum is 0). */
  momentumBuffer: Float64Array | null;
}

/**
 * One SGD step:
 * `d = g + wd·p`; with momentum, `buf = d` on the first step, else `buf = μ·buf + (1-τ)·d`, and
 * `d = d + μ·buf` (Nesterov) or `d = buf`; then `p = p - lr·d`.
 */
export function sgdStepReference(
  input: SgdReferenceInput,
  options: SgdReferenceOptions,
): SgdReferenceOutput {
  const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = options;
  const { param, grad } = input;
  const previous = input.momentumBuffer ?? null;
  const next = new Float64Array(param.length);
  const buffer = momentum !== 0 ? new Float64Array(param.length) : null;
  for (let i = 0; i < param.length; i++) {
    let d = grad[i];
    if (weightDecay !== 0) d += weightDecay * param[i];
    if (buffer) {
      buffer[i] = previous === null ? d : momentum * previous[i] + (1 - dampening) * d;
      d = nesterov ? d + momentum * buffer[i] : buffer[i];
    }
    next[i] = param[i] - lr * d;
  }
  return { param: next, momentumBuffer: buffer };
}

/** Hyperparameters of Adam / AdamW, as `torch.optim.Adam` / `torch.optim.AdamW`. */
export interface AdamReferenceOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay of the first moment (default 0.9). */
  beta1?: number;
  /** Decay of the second moment (default 0.999). */
  beta2?: number;
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Weight decay (default 0 for Adam, 1e-2 for AdamW). */
  weightDecay?: number;
  /** AdamW: decay the parameter by `lr·wd` instead of adding `wd·p` to the gradient. */
  decoupledWeightDecay?: boolean;
  /** AMSGrad: divide by the running maximum of the second moment. */
  amsgrad?: boolean;
}

/** A parameter, its gradient and its Adam state before the step. */
export interface AdamReferenceInput {
  /** The parameter. */
  param: ArrayLike<number>;
  /** Its gradient. */
  grad: ArrayLike<number>;
  /** First moment, or null/absent before the first step (zeros). */
  expAvg?: ArrayLike<number> | null;
  /** Second moment, or null/absent before the first step (zeros). */
  expAvgSq?: ArrayLike<number> | null;
  /** AMSGrad's running maximum of the second moment, or null/absent (zeros). */
  maxExpAvgSq?: ArrayLike<number> | null;
  /** Steps this parameter has taken so far (default 0). */
  step?: number;
}

/** The parameter and Adam state after the step. */
export interface AdamReferenceOutput {
  /** The updated parameter. */
  param: Float64Array;
  /** First moment. */
  expAvg: Float64Array;
  /** Second moment. */
  expAvgSq: Float64Array;
  /** AMSGrad's running maximum (null without AMSGrad). */
  maxExpAvgSq: Float64Array | null;
  /** Steps taken, this one included. */
  step: number;
}

/**
 * One Adam step: `t += 1`; Adam adds `wd·p` to `g`, AdamW multiplies `p` by `1 - lr·wd`;
 * `m = β1·m + (1-β1)·g`, `v = β2·v + (1-β2)·g²` (AMSGrad: `v_max = max(v_max, v)` takes `v`'s
 * place below); `p = p - (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)`.
 */
export function adamStepReference(
  input: AdamReferenceInput,
  options: AdamReferenceOptions = {},
): AdamReferenceOutput {
  const { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = options;
  const decoupled = options.decoupledWeightDecay ?? false;
  const weightDecay = options.weightDecay ?? (decoupled ? 1e-2 : 0);
  const { param, grad } = input;
  const step = (input.step ?? 0) + 1;
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2 = 1 - beta2 ** step;
  const stepSize = lr / biasCorrection1;
  const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
  const next = new Float64Array(param.length);
  const expAvg = new Float64Array(param.length);
  const expAvgSq = new Float64Array(param.length);
  const maxExpAvgSq = options.amsgrad ? new Float64Array(param.length) : null;
  for (let i = 0; i < param.length; i++) {
    let p = param[i], g = grad[i];
    if (decoupled) p *= 1 - lr * weightDecay;
    else if (weightDecay !== 0) g += weightDecay * p;
    expAvg[i] = beta1 * (input.expAvg?.[i] ?? 0) + (1 - beta1) * g;
    expAvgSq[i] = beta2 * (input.expAvgSq?.[i] ?? 0) + (1 - beta2) * g * g;
    let second = expAvgSq[i];
    if (maxExpAvgSq) {
      const old = input.maxExpAvgSq?.[i] ?? 0;
      second = maxExpAvgSq[i] = Number.isNaN(old) || Number.isNaN(second)
        ? NaN
        : Math.max(old, second);
    }
    const denom = Math.sqrt(second) / biasCorrection2Sqrt + eps;
    next[i] = p - stepSize * expAvg[i] / denom;
  }
  return { param: next, expAvg, expAvgSq, maxExpAvgSq, step };
}

/** One AdamW step: `adamStepReference` with decoupled weight decay (default 1e-2). */
export function adamWStepReference(
  input: AdamReferenceInput,
  options: Omit<AdamReferenceOptions, "decoupledWeightDecay"> = {},
): AdamReferenceOutput {
  return adamStepReference(input, { ...options, decoupledWeightDecay: true });
}

/** Hyperparameters of RMSprop, as `torch.optim.RMSprop`. */
export interface RmspropReferenceOptions {
  /** Learning rate (default 0.01). */
  lr?: number;
  /** Smoothing constant (default 0.99). */
  alpha?: number;
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Centered (default false). */
  centered?: boolean;
}

/** A parameter, its gradient and its RMSprop state before the step (absent: zeros). */
export interface RmspropReferenceInput {
  /** The parameter. */
  param: ArrayLike<number>;
  /** Its gradient. */
  grad: ArrayLike<number>;
  /** Running average of squared gradients. */
  squareAvg?: ArrayLike<number> | null;
  /** Momentum buffer. */
  momentumBuffer?: ArrayLike<number> | null;
  /** Running average of gradients (centered). */
  gradAvg?: ArrayLike<number> | null;
}

/** The parameter and RMSprop state after the step (null: not used). */
export interface RmspropReferenceOutput {
  /** The updated parameter. */
  param: Float64Array;
  /** Running average of squared gradients. */
  squareAvg: Float64Array;
  /** Momentum buffer (null without momentum). */
  momentumBuffer: Float64Array | null;
  /** Running average of gradients (null unless centered). */
  gradAvg: Float64Array | null;
}

/**
 * One RMSprop step (PyTorch 1.13, `_single_tensor_rmsprop`): `g = g + wd·p`,
 * `v = α·v + (1-α)·g²`; centered: `ḡ = α·ḡ + (1-α)·g`, `avg = sqrt(v - ḡ²) + eps`, else
 * `avg = sqrt(v) + eps`; momentum: `b = μ·b + g/avg`, `p = p - lr·b`; else `p = p - lr·g/avg`.
 */
export function rmspropStepReference(
  input: RmspropReferenceInput,
  options: RmspropReferenceOptions = {},
): RmspropReferenceOutput {
  const { lr = 0.01, alpha = 0.99, eps = 1e-8, weightDecay = 0, momentum = 0 } = options;
  const centered = options.centered ?? false;
  const { param, grad } = input;
  const n = param.length;
  const next = new Float64Array(n);
  const squareAvg = new Float64Array(n);
  const momentumBuffer = momentum > 0 ? new Float64Array(n) : null;
  const gradAvg = centered ? new Float64Array(n) : null;
  for (let i = 0; i < n; i++) {
    let g = grad[i];
    if (weightDecay !== 0) g += weightDecay * param[i];
    squareAvg[i] = alpha * (input.squareAvg?.[i] ?? 0) + (1 - alpha) * g * g;
    let avg: number;
    if (gradAvg) {
      gradAvg[i] = alpha * (input.gradAvg?.[i] ?? 0) + (1 - alpha) * g;
      avg = Math.sqrt(squareAvg[i] - gradAvg[i] * gradAvg[i]) + eps;
    } else {
      avg = Math.sqrt(squareAvg[i]) + eps;
    }
    if (momentumBuffer) {
      momentumBuffer[i] = momentum * (input.momentumBuffer?.[i] ?? 0) + g / avg;
      next[i] = param[i] - lr * momentumBuffer[i];
    } else {
      next[i] = param[i] - lr * g / avg;
    }
  }
  return { param: next, squareAvg, momentumBuffer, gradAvg };
}

/** Hyperparameters of Adagrad, as `torch.optim.Adagrad`. */
export interface AdagradReferenceOptions {
  /** Learning rate (default 0.01). */
  lr?: number;
  /** Learning-rate decay (default 0). */
  lrDecay?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Initial value of the sum (default 0). */
  initialAccumulatorValue?: number;
  /** Added to the denominator (default 1e-10). */
  eps?: number;
}

/** A parameter, its gradient and its Adagrad state before the step. */
export interface AdagradReferenceInput {
  /** The parameter. */
  param: ArrayLike<number>;
  /** Its gradient. */
  grad: ArrayLike<number>;
  /** Sum of squared gradients (absent: `initialAccumulatorValue`). */
  sum?: ArrayLike<number> | null;
  /** Steps taken so far (default 0). */
  step?: number;
}

/** The parameter and Adagrad state after the step. */
export interface AdagradReferenceOutput {
  /** The updated parameter. */
  param: Float64Array;
  /** Sum of squared gradients. */
  sum: Float64Array;
  /** Steps taken, this one included. */
  step: number;
}

/**
 * One Adagrad step (PyTorch 1.13, dense): `t += 1`, `g = g + wd·p`,
 * `clr = lr / (1 + (t-1)·lrDecay)`, `sum = sum + g²`, `p = p - clr·g / (sqrt(sum) + eps)`.
 */
export function adagradStepReference(
  input: AdagradReferenceInput,
  options: AdagradReferenceOptions = {},
): AdagradReferenceOutput {
  const { lr = 0.01, lrDecay = 0, weightDecay = 0, initialAccumulatorValue = 0 } = options;
  const eps = options.eps ?? 1e-10;
  const { param, grad } = input;
  const step = (input.step ?? 0) + 1;
  const clr = lr / (1 + (step - 1) * lrDecay);
  const next = new Float64Array(param.length);
  const sum = new Float64Array(param.length);
  for (let i = 0; i < param.length; i++) {
    let g = grad[i];
    if (weightDecay !== 0) g += weightDecay * param[i];
    sum[i] = (input.sum?.[i] ?? initialAccumulatorValue) + g * g;
    next[i] = param[i] - clr * g / (Math.sqrt(sum[i]) + eps);
  }
  return { param: next, sum, step };
}
