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
  /** Steps taken, this one included. */
  step: number;
}

/**
 * One Adam step: `t += 1`; Adam adds `wd·p` to `g`, AdamW multiplies `p` by `1 - lr·wd`;
 * `m = β1·m + (1-β1)·g`, `v = β2·v + (1-β2)·g²`;
 * `p = p - (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)`.
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
  for (let i = 0; i < param.length; i++) {
    let p = param[i], g = grad[i];
    if (decoupled) p *= 1 - lr * weightDecay;
    else if (weightDecay !== 0) g += weightDecay * p;
    expAvg[i] = beta1 * (input.expAvg?.[i] ?? 0) + (1 - beta1) * g;
    expAvgSq[i] = beta2 * (input.expAvgSq?.[i] ?? 0) + (1 - beta2) * g * g;
    const denom = Math.sqrt(expAvgSq[i]) / biasCorrection2Sqrt + eps;
    next[i] = p - stepSize * expAvg[i] / denom;
  }
  return { param: next, expAvg, expAvgSq, step };
}

/** One AdamW step: `adamStepReference` with decoupled weight decay (default 1e-2). */
export function adamWStepReference(
  input: AdamReferenceInput,
  options: Omit<AdamReferenceOptions, "decoupledWeightDecay"> = {},
): AdamReferenceOutput {
  return adamStepReference(input, { ...options, decoupledWeightDecay: true });
}
