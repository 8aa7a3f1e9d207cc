/**
 * `Adam` (L2 weight decay added to the gradient) and `AdamW` (decoupled weight decay), as
 * `torch.optim.Adam` / `torch.optim.AdamW`, bias correction included, per parameter group. One
 * fused kernel per parameter updates the parameter and both moments in place (see `updateSpec`:
 * large tensors are read through textures; vec4 stores); the hyperparameters and the
 * step-dependent scalars (`lr / (1-β1^t)`, `sqrt(1-β2^t)`, `1 - lr·wd`) come from one shared
 * params slot, so changing `lr` or `betas` between steps compiles nothing.
 *
 * @module
 */

import { isNan4 } from "../../nn/ops/nan_wgsl.ts";
import {
  checkNonNegative,
  encodeUpdate,
  type GroupHyperparameters,
  type Hyperparameters,
  Optimizer,
  type ParameterUpdate,
  type ParamGroup,
  type ParamsInput,
  stepSlot,
  updateSpec,
} from "./optimizer.ts";

const EXP_AVG = "exp_avg";
const EXP_AVG_SQ = "exp_avg_sq";
const MAX_EXP_AVG_SQ = "max_exp_avg_sq";

/** Options of `Adam` and `AdamW` (PyTorch's names in camelCase): defaults of their groups. */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moments (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled decay (default 1e-2). */
  weightDecay?: number;
  /** AMSGrad: divide by the running maximum of the second moment (default false). */
  amsgrad?: boolean;
}

/** A parameter group of `Adam` or `AdamW`: parameters and hyperparameters. */
export interface AdamParamGroup extends ParamGroup {
  /** Decay rates of the two moments (assign a new pair or change one in place). */
  betas: [number, number];
  /** Added to the denominator. */
  eps: number;
  /** Weight decay (L2 for Adam, decoupled for AdamW). */
  weightDecay: number;
  /** Whether this group uses AMSGrad. */
  amsgrad: boolean;
}

/** Throws PyTorch's message unless the Adam hyperparameters (other than lr) are valid. */
function validate(
  { betas, eps, weightDecay, amsgrad }: GroupHyperparameters<AdamParamGroup>,
): void {
  checkNonNegative(eps, "epsilon value");
  if (!Array.isArray(betas) || betas.length !== 2) {
    throw new Error(`Invalid betas: ${JSON.stringify(betas)} (a pair [beta1, beta2])`);
  }
  const [beta1, beta2] = betas;
  if (typeof beta1 !== "number" || !(beta1 >= 0 && beta1 < 1)) {
    throw new Error(`Invalid beta parameter at index 0: ${beta1}`);
  }
  if (typeof beta2 !== "number" || !(beta2 >= 0 && beta2 < 1)) {
    throw new Error(`Invalid beta parameter at index 1: ${beta2}`);
  }
  checkNonNegative(weightDecay, "weight_decay value");
  if (typeof amsgrad !== "boolean") throw new Error(`Invalid amsgrad value: ${amsgrad}`);
}

/**
 * The Adam update (`decoupled`: AdamW's) with or without weight decay. Params: `step_size` =
 * lr / (1 - beta1^t), `bias_correction2_sqrt` = sqrt(1 - beta2^t), `decay` = 1 - lr * weight_decay
 * (AdamW), the betas, eps and weight decay, `first_step` (1 on the parameter's first step: both
 * moments start from zero) and, for AMSGrad, `fresh_max` (1 when `max_exp_avg_sq` is new: zero).
 * The running maximum keeps NaN, as `torch.maximum` does.
 */
function adamUpdate(name: string, decoupled: boolean) {
  return updateSpec<{ weightDecay: boolean; amsgrad: boolean }>({
    name,
    key: ({ weightDecay, amsgrad }) => `${weightDecay ? "wd" : ""}${amsgrad ? "ams" : ""}`,
    params: "step_size: f32, bias_correction2_sqrt: f32, decay: f32, beta1: f32, " +
      "one_minus_beta1: f32, beta2: f32, one_minus_beta2: f32, eps: f32, weight_decay: f32, " +
      "first_step: f32, fresh_max: f32",
    constants: () => "",
    body: ({ weightDecay, amsgrad }) => /* wgsl */ `
  var p = load_param_data(j);
  var g = load_grad_data(j);
  ${
      !weightDecay
        ? "// no weight decay"
        : decoupled
        ? "p = p * params.decay; // AdamW: decoupled weight decay"
        : "g = g + params.weight_decay * p; // Adam: L2 penalty"
    }
  var m = params.one_minus_beta1 * g;
  var v = params.one_minus_beta2 * g * g;
  if (params.first_step == 0.0) {
    m = m + params.beta1 * load_exp_avg(j);
    v = v + params.beta2 * load_exp_avg_sq(j);
  }
  exp_avg[j] = m;
  exp_avg_sq[j] = v;
  ${
      amsgrad
        ? `var v_max = v;
  if (params.fresh_max == 0.0) {
    let old = load_max_exp_avg_sq(j);
    let both = old + v; // NaN exactly when one is (both are >= 0 or NaN)
    v_max = select(max(old, v), both, ${isNan4("both")});
  }
  max_exp_avg_sq[j] = v_max;
  let denom = sqrt(v_max) / params.bias_correction2_sqrt + params.eps;`
        : "let denom = sqrt(v) / params.bias_correction2_sqrt + params.eps;"
    }
  let updated = p - params.step_size * m / denom;`,
  });
}

const ADAM_UPDATE = adamUpdate("adam", false);
const ADAMW_UPDATE = adamUpdate("adamw", true);

/**
 * Adam, exactly as `torch.optim.Adam` (`maximize` aside), per parameter group: per
 * parameter, `t += 1`, `g = g + wd·p`, `m = β1·m + (1-β1)·g`, `v = β2·v + (1-β2)·g²`,
 * `p = p - (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)`; with AMSGrad, `v` in the
 * denominator is the running maximum `v_max = max(v_max, v)` (`max_exp_avg_sq`).
 */
export class Adam extends Optimizer<AdamParamGroup> {
  /**
   * Takes parameters (one group) or parameter groups `{ params, ...options }`; `options` are
   * the groups' defaults. Validates them as PyTorch does.
   */
  constructor(params: ParamsInput<AdamOptions>, options: AdamOptions = {}) {
    const [beta1, beta2] = options.betas ?? [0.9, 0.999];
    super(params, {
      lr: options.lr ?? 1e-3,
      betas: [beta1, beta2],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ??
        (new.target === AdamW || new.target.prototype instanceof AdamW ? 1e-2 : 0),
      amsgrad: options.amsgrad ?? false,
    });
  }

  /** `"Adam"`. */
  get name(): string {
    return "Adam";
  }

  /** False: Adam adds the L2 penalty to the gradient (AdamW overrides this). */
  protected get decoupledWeightDecay(): boolean {
    return false;
  }

  /** Decay rates of the two moments (of the first group; a copy). */
  get betas(): [number, number] {
    const [beta1, beta2] = this.paramGroups[0].betas;
    return [beta1, beta2];
  }

  /** Added to the denominator (in the first group). */
  get eps(): number {
    return this.paramGroups[0].eps;
  }

  /** Weight decay (L2 for Adam, decoupled for AdamW) of the first group. */
  get weightDecay(): number {
    return this.paramGroups[0].weightDecay;
  }

  /** PyTorch's checks. */
  protected validateGroup(group: GroupHyperparameters<AdamParamGroup>): void {
    validate(group);
  }

  /** `exp_avg` and `exp_avg_sq`, and `max_exp_avg_sq` with AMSGrad. */
  protected stateNames(group: GroupHyperparameters<AdamParamGroup>): readonly string[] {
    return group.amsgrad ? [EXP_AVG, EXP_AVG_SQ, MAX_EXP_AVG_SQ] : [EXP_AVG, EXP_AVG_SQ];
  }

  /** `exp_avg` and `exp_avg_sq`. */
  protected requiredStateNames(): readonly string[] {
    return [EXP_AVG, EXP_AVG_SQ];
  }

  /** `exp_avg`, `exp_avg_sq` and `max_exp_avg_sq`. */
  protected knownStateNames(): readonly string[] {
    return [EXP_AVG, EXP_AVG_SQ, MAX_EXP_AVG_SQ];
  }

  /** Old state dicts saved the betas as `beta1` and `beta2`, and had no AMSGrad. */
  protected override legacyGroup(saved: Hyperparameters): Record<string, unknown> {
    const { beta1, beta2, ...rest } = saved;
    return { amsgrad: false, ...rest, betas: [beta1, beta2] };
  }

  /** One dispatch: param, exp_avg and exp_avg_sq updated in place. */
  protected update(target: ParameterUpdate, group: GroupHyperparameters<AdamParamGroup>): void {
    const { step, fresh } = target;
    const { lr, betas: [beta1, beta2], eps, weightDecay, amsgrad } = group;
    const decoupled = this.decoupledWeightDecay;
    const slot = stepSlot([
      lr / (1 - beta1 ** step),
      Math.sqrt(1 - beta2 ** step),
      decoupled ? 1 - lr * weightDecay : 1,
      beta1,
      1 - beta1,
      beta2,
      1 - beta2,
      eps,
      weightDecay,
      fresh ? 1 : 0,
      target.freshState.has(MAX_EXP_AVG_SQ) ? 1 : 0,
    ]);
    const kernel = decoupled ? ADAMW_UPDATE : ADAM_UPDATE;
    encodeUpdate(kernel, { weightDecay: weightDecay !== 0, amsgrad }, target, slot);
  }
}

/**
 * AdamW, exactly as `torch.optim.AdamW` (`maximize` aside): Adam with decoupled
 * weight decay, `p = p · (1 - lr·wd)` before the Adam update; default `weightDecay` 1e-2.
 */
export class AdamW extends Adam {
  /** Validates the options as PyTorch does; `weightDecay` defaults to 1e-2. */
  constructor(params: ParamsInput<AdamOptions>, options: AdamOptions = {}) {
    super(params, options);
  }

  /** `"AdamW"`. */
  override get name(): string {
    return "AdamW";
  }

  /** True: the decay multiplies the parameter instead of joining the gradient. */
  protected override get decoupledWeightDecay(): boolean {
    return true;
  }
}
