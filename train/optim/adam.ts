/**
 * `Adam` (L2 weight decay added to the gradient) and `AdamW` (decoupled weight decay), as
 * `torch.optim.Adam` / `torch.optim.AdamW`, bias correction included. One fused kernel per
 * parameter updates the parameter and both moments in place (see `updateSpec`: large tensors
 * are read through textures; vec4 stores); the step-dependent scalars (`lr / (1-β1^t)`,
 * `sqrt(1-β2^t)`, `1 - lr·wd`) come from one shared params slot.
 *
 * @module
 */

import { f32 } from "../../nn/gpu/kernel.ts";
import type { Tensor } from "../../nn/tensor.ts";
import {
  checkNonNegative,
  encodeUpdate,
  type Hyperparameters,
  Optimizer,
  type ParameterUpdate,
  stepSlot,
  updateSpec,
} from "./optimizer.ts";

const EXP_AVG = "exp_avg";
const EXP_AVG_SQ = "exp_avg_sq";

/** Options of `Adam` and `AdamW` (PyTorch's names in camelCase). */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moments (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled decay (default 1e-2). */
  weightDecay?: number;
}

interface AdamSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

function validate(
  options: { beta1?: number; beta2?: number; eps?: number; weightDecay?: number },
  defaultWeightDecay: number,
): AdamSettings {
  const eps = checkNonNegative(options.eps ?? 1e-8, "epsilon value");
  const beta1 = options.beta1 ?? 0.9, beta2 = options.beta2 ?? 0.999;
  if (typeof beta1 !== "number" || !(beta1 >= 0 && beta1 < 1)) {
    throw new Error(`Invalid beta parameter at index 0: ${beta1}`);
  }
  if (typeof beta2 !== "number" || !(beta2 >= 0 && beta2 < 1)) {
    throw new Error(`Invalid beta parameter at index 1: ${beta2}`);
  }
  const weightDecay = checkNonNegative(
    options.weightDecay ?? defaultWeightDecay,
    "weight_decay value",
  );
  return { beta1, beta2, eps, weightDecay };
}

/**
 * The Adam update (`decoupled`: AdamW's). Params: `step_size` = lr / (1 - beta1^t),
 * `bias_correction2_sqrt` = sqrt(1 - beta2^t), `decay` = 1 - lr * weight_decay (AdamW), and
 * `first_step` (1 on the parameter's first step: both moments start from zero).
 */
function adamUpdate(name: string, decoupled: boolean) {
  return updateSpec<AdamSettings>({
    name,
    key: ({ beta1, beta2, eps, weightDecay }) => `${beta1}_${beta2}_${eps}_${weightDecay}`,
    params: "step_size: f32, bias_correction2_sqrt: f32, decay: f32, first_step: f32",
    constants: ({ beta1, beta2, eps, weightDecay }) => /* wgsl */ `
const BETA1: f32 = ${f32(beta1)};
const ONE_MINUS_BETA1: f32 = ${f32(1 - beta1)};
const BETA2: f32 = ${f32(beta2)};
const ONE_MINUS_BETA2: f32 = ${f32(1 - beta2)};
const EPS: f32 = ${f32(eps)};
const WEIGHT_DECAY: f32 = ${f32(weightDecay)};`,
    body: ({ weightDecay }) => /* wgsl */ `
  var p = load_param_data(j);
  var g = load_grad_data(j);
  ${
      weightDecay === 0
        ? "// no weight decay"
        : decoupled
        ? "p = p * params.decay; // AdamW: decoupled weight decay"
        : "g = g + WEIGHT_DECAY * p; // Adam: L2 penalty"
    }
  var m = ONE_MINUS_BETA1 * g;
  var v = ONE_MINUS_BETA2 * g * g;
  if (params.first_step == 0.0) {
    m = m + BETA1 * load_exp_avg(j);
    v = v + BETA2 * load_exp_avg_sq(j);
  }
  exp_avg[j] = m;
  exp_avg_sq[j] = v;
  let denom = sqrt(v) / params.bias_correction2_sqrt + EPS;
  let updated = p - params.step_size * m / denom;`,
  });
}

const ADAM_UPDATE = adamUpdate("adam", false);
const ADAMW_UPDATE = adamUpdate("adamw", true);

/**
 * Adam, exactly as `torch.optim.Adam` (`amsgrad`, `maximize` aside): per parameter, `t += 1`,
 * `g = g + wd·p`, `m = β1·m + (1-β1)·g`, `v = β2·v + (1-β2)·g²`,
 * `p = p - (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)`.
 */
export class Adam extends Optimizer {
  #settings: AdamSettings;

  /** Validates the options as PyTorch does. */
  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
    super(params, { lr: options.lr ?? 1e-3 });
    const [beta1, beta2] = options.betas ?? [0.9, 0.999];
    this.#settings = validate(
      { beta1, beta2, eps: options.eps, weightDecay: options.weightDecay },
      this.decoupledWeightDecay ? 1e-2 : 0,
    );
  }

  /** `"Adam"`. */
  get name(): string {
    return "Adam";
  }

  /** False: Adam adds the L2 penalty to the gradient (AdamW overrides this). */
  protected get decoupledWeightDecay(): boolean {
    return false;
  }

  /** Decay rates of the two moments. */
  get betas(): [number, number] {
    return [this.#settings.beta1, this.#settings.beta2];
  }

  /** Added to the denominator. */
  get eps(): number {
    return this.#settings.eps;
  }

  /** Weight decay (L2 for Adam, decoupled for AdamW). */
  get weightDecay(): number {
    return this.#settings.weightDecay;
  }

  /** `exp_avg` and `exp_avg_sq`. */
  protected stateNames(): readonly string[] {
    return [EXP_AVG, EXP_AVG_SQ];
  }

  /** beta1, beta2, eps, weightDecay. */
  protected hyperparameters(): Hyperparameters {
    return { ...this.#settings };
  }

  /** Validates, then applies, saved hyperparameters. */
  protected setHyperparameters(saved: Hyperparameters): void {
    this.#settings = validate(saved as Partial<AdamSettings>, this.decoupledWeightDecay ? 1e-2 : 0);
  }

  /** One dispatch: param, exp_avg and exp_avg_sq updated in place. */
  protected update(target: ParameterUpdate): void {
    const { step, fresh } = target;
    const { beta1, beta2, weightDecay } = this.#settings;
    const decoupled = this.decoupledWeightDecay;
    const lr = this.lr;
    const slot = stepSlot([
      lr / (1 - beta1 ** step),
      Math.sqrt(1 - beta2 ** step),
      decoupled ? 1 - lr * weightDecay : 1,
      fresh ? 1 : 0,
    ]);
    encodeUpdate(decoupled ? ADAMW_UPDATE : ADAM_UPDATE, this.#settings, target, slot);
  }
}

/**
 * AdamW, exactly as `torch.optim.AdamW` (`amsgrad`, `maximize` aside): Adam with decoupled
 * weight decay, `p = p · (1 - lr·wd)` before the Adam update; default `weightDecay` 1e-2.
 */
export class AdamW extends Adam {
  /** Validates the options as PyTorch does; `weightDecay` defaults to 1e-2. */
  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
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
