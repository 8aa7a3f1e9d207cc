/**
 * `RMSprop`, as `torch.optim.RMSprop` (PyTorch 1.13): a running average of squared gradients
 * scales each step, optionally centered (minus the squared running average of the gradients),
 * with optional momentum and L2 weight decay, per parameter group. One fused kernel per
 * parameter updates it and its state in place (see `updateSpec`); the hyperparameters travel in
 * the step's params slot, so changing them between steps compiles nothing.
 *
 * @module
 */

import {
  checkNonNegative,
  encodeUpdate,
  type GroupHyperparameters,
  Optimizer,
  type ParameterUpdate,
  type ParamGroup,
  type ParamsInput,
  stepSlot,
  updateSpec,
} from "./optimizer.ts";

const SQUARE_AVG = "square_avg";
const MOMENTUM_BUFFER = "momentum_buffer";
const GRAD_AVG = "grad_avg";

/** Options of `RMSprop` (PyTorch's names in camelCase): defaults of its parameter groups. */
export interface RMSpropOptions {
  /** Learning rate (default 0.01). */
  lr?: number;
  /** Smoothing constant of the running averages (default 0.99). */
  alpha?: number;
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** L2 penalty: `weightDecay · param` is added to the gradient (default 0). */
  weightDecay?: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Centered RMSprop: normalise by an estimate of the gradient's variance (default false). */
  centered?: boolean;
}

/** A parameter group of `RMSprop`: parameters and hyperparameters. */
export interface RMSpropParamGroup extends ParamGroup {
  /** Smoothing constant. */
  alpha: number;
  /** Added to the denominator. */
  eps: number;
  /** L2 weight decay. */
  weightDecay: number;
  /** Momentum factor. */
  momentum: number;
  /** Whether the RMSprop is centered. */
  centered: boolean;
}

/** What the RMSprop kernel's code depends on: which terms it has. */
interface RmspropKernel {
  momentum: boolean;
  centered: boolean;
  weightDecay: boolean;
}

/**
 * The RMSprop update. Params: the group's `lr`, `alpha`, `1 - alpha`, `eps`, `momentum`,
 * `weight_decay`, and a flag per state tensor that is new this step (it starts from zeros).
 */
const RMSPROP_UPDATE = updateSpec<RmspropKernel>({
  name: "rmsprop",
  key: ({ momentum, centered, weightDecay }) =>
    `${momentum ? "m" : ""}${centered ? "c" : ""}${weightDecay ? "wd" : ""}`,
  params: "lr: f32, alpha: f32, one_minus_alpha: f32, eps: f32, momentum: f32, " +
    "weight_decay: f32, fresh_square_avg: f32, fresh_grad_avg: f32, fresh_momentum: f32",
  constants: () => "",
  body: ({ momentum, centered, weightDecay }) => /* wgsl */ `
  let p = load_param_data(j);
  var g = load_grad_data(j);
  ${weightDecay ? "g = g + params.weight_decay * p;" : "// no weight decay"}
  var square = params.one_minus_alpha * g * g;
  if (params.fresh_square_avg == 0.0) {
    square = params.alpha * load_square_avg(j) + square;
  }
  square_avg[j] = square;
  ${
    centered
      ? `var mean = params.one_minus_alpha * g;
  if (params.fresh_grad_avg == 0.0) {
    mean = params.alpha * load_grad_avg(j) + mean;
  }
  grad_avg[j] = mean;
  let avg = sqrt(square - mean * mean) + params.eps;`
      : "let avg = sqrt(square) + params.eps;"
  }
  ${
    momentum
      ? `var buf = g / avg;
  if (params.fresh_momentum == 0.0) {
    buf = params.momentum * load_momentum_buffer(j) + buf;
  }
  momentum_buffer[j] = buf;
  let updated = p - params.lr * buf;`
      : "let updated = p - params.lr * (g / avg);"
  }`,
});

/**
 * RMSprop, exactly as `torch.optim.RMSprop` (`maximize` aside), per parameter group:
 * `g = g + wd·p`, `v = α·v + (1-α)·g²`; centered: `ḡ = α·ḡ + (1-α)·g` and `v' = v - ḡ²`, else
 * `v' = v`; `avg = sqrt(v') + eps`; with momentum `b = μ·b + g / avg`, `p = p - lr·b`, else
 * `p = p - lr·g / avg`. The state (`square_avg`, `momentum_buffer`, `grad_avg`) starts at zero.
 */
export class RMSprop extends Optimizer<RMSpropParamGroup> {
  /**
   * Takes parameters (one group) or parameter groups `{ params, ...options }`; `options` are
   * the groups' defaults. Validates them as PyTorch does.
   */
  constructor(params: ParamsInput<RMSpropOptions>, options: RMSpropOptions = {}) {
    super(params, {
      lr: options.lr ?? 0.01,
      alpha: options.alpha ?? 0.99,
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
      momentum: options.momentum ?? 0,
      centered: options.centered ?? false,
    });
  }

  /** `"RMSprop"`. */
  get name(): string {
    return "RMSprop";
  }

  /** PyTorch's checks (its messages). */
  protected validateGroup(
    { alpha, eps, weightDecay, momentum, centered }: GroupHyperparameters<RMSpropParamGroup>,
  ): void {
    checkNonNegative(eps, "epsilon value");
    checkNonNegative(momentum, "momentum value");
    checkNonNegative(weightDecay, "weight_decay value");
    checkNonNegative(alpha, "alpha value");
    if (typeof centered !== "boolean") throw new Error(`Invalid centered value: ${centered}`);
  }

  /** `square_avg`, plus `momentum_buffer` with momentum and `grad_avg` when centered. */
  protected stateNames(
    { momentum, centered }: GroupHyperparameters<RMSpropParamGroup>,
  ): readonly string[] {
    return [
      SQUARE_AVG,
      ...(momentum > 0 ? [MOMENTUM_BUFFER] : []),
      ...(centered ? [GRAD_AVG] : []),
    ];
  }

  /** `square_avg`. */
  protected requiredStateNames(): readonly string[] {
    return [SQUARE_AVG];
  }

  /** `square_avg`, `momentum_buffer`, `grad_avg`. */
  protected knownStateNames(): readonly string[] {
    return [SQUARE_AVG, MOMENTUM_BUFFER, GRAD_AVG];
  }

  /** One dispatch: param and its state updated in place. */
  protected update(target: ParameterUpdate, group: GroupHyperparameters<RMSpropParamGroup>): void {
    const { lr, alpha, eps, momentum, weightDecay, centered } = group;
    const fresh = (name: string) => target.freshState.has(name) ? 1 : 0;
    const slot = stepSlot([
      lr,
      alpha,
      1 - alpha,
      eps,
      momentum,
      weightDecay,
      fresh(SQUARE_AVG),
      fresh(GRAD_AVG),
      fresh(MOMENTUM_BUFFER),
    ]);
    const kernel = { momentum: momentum > 0, centered, weightDecay: weightDecay !== 0 };
    encodeUpdate(RMSPROP_UPDATE, kernel, target, slot);
  }
}
