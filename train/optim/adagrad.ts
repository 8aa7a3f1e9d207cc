/**
 * `Adagrad`, as `torch.optim.Adagrad` (PyTorch 1.13): each element's step is scaled by the root
 * of its sum of squared gradients, with learning-rate decay and L2 weight decay, per parameter
 * group. One fused kernel per parameter updates it and its `sum` in place (see `updateSpec`);
 * the hyperparameters travel in the step's params slot, so changing them compiles nothing.
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

const SUM = "sum";

/** Options of `Adagrad` (PyTorch's names in camelCase): defaults of its parameter groups. */
export interface AdagradOptions {
  /** Learning rate (default 0.01). */
  lr?: number;
  /** Learning-rate decay: step t uses `lr / (1 + (t-1)·lrDecay)` (default 0). */
  lrDecay?: number;
  /** L2 penalty: `weightDecay · param` is added to the gradient (default 0). */
  weightDecay?: number;
  /** The sum of squared gradients starts at this value (default 0). */
  initialAccumulatorValue?: number;
  /** Added to the denominator (default 1e-10). */
  eps?: number;
}

/** A parameter group of `Adagrad`: parameters and hyperparameters. */
export interface AdagradParamGroup extends ParamGroup {
  /** Learning-rate decay. */
  lrDecay: number;
  /** L2 weight decay. */
  weightDecay: number;
  /** Initial value of the sum of squared gradients (used on a parameter's first step). */
  initialAccumulatorValue: number;
  /** Added to the denominator. */
  eps: number;
}

/**
 * The Adagrad update. Params: `clr` = lr / (1 + (t-1)·lr_decay), `eps`, `weight_decay`, `initial`
 * (the accumulator's initial value) and `first_step` (1 when `sum` is new: it starts at
 * `initial`).
 */
const ADAGRAD_UPDATE = updateSpec<{ weightDecay: boolean }>({
  name: "adagrad",
  key: ({ weightDecay }) => weightDecay ? "wd" : "",
  params: "clr: f32, eps: f32, weight_decay: f32, initial: f32, first_step: f32",
  constants: () => "",
  body: ({ weightDecay }) => /* wgsl */ `
  let p = load_param_data(j);
  var g = load_grad_data(j);
  ${weightDecay ? "g = g + params.weight_decay * p;" : "// no weight decay"}
  var total = vec4<f32>(params.initial);
  if (params.first_step == 0.0) {
    total = load_sum(j);
  }
  total = total + g * g;
  sum[j] = total;
  let denom = sqrt(total) + params.eps;
  let updated = p - params.clr * (g / denom);`,
});

/**
 * Adagrad, exactly as `torch.optim.Adagrad` (dense gradients, `maximize` aside), per parameter
 * group: per parameter, `t += 1`, `g = g + wd·p`, `clr = lr / (1 + (t-1)·lrDecay)`,
 * `sum = sum + g²` (starting at `initialAccumulatorValue`), `p = p - clr·g / (sqrt(sum) + eps)`.
 * One difference: a parameter's `sum` starts at its group's `initialAccumulatorValue` (on its
 * first step), where PyTorch 1.13 fills every `sum` with the constructor's value and ignores
 * the groups'.
 */
export class Adagrad extends Optimizer<AdagradParamGroup> {
  /**
   * Takes parameters (one group) or parameter groups `{ params, ...options }`; `options` are
   * the groups' defaults. Validates them as PyTorch does.
   */
  constructor(params: ParamsInput<AdagradOptions>, options: AdagradOptions = {}) {
    super(params, {
      lr: options.lr ?? 0.01,
      lrDecay: options.lrDecay ?? 0,
      weightDecay: options.weightDecay ?? 0,
      initialAccumulatorValue: options.initialAccumulatorValue ?? 0,
      eps: options.eps ?? 1e-10,
    });
  }

  /** `"Adagrad"`. */
  get name(): string {
    return "Adagrad";
  }

  /** PyTorch's checks (its messages). */
  protected validateGroup(
    { lrDecay, weightDecay, initialAccumulatorValue, eps }: GroupHyperparameters<AdagradParamGroup>,
  ): void {
    checkNonNegative(lrDecay, "lr_decay value");
    checkNonNegative(weightDecay, "weight_decay value");
    checkNonNegative(initialAccumulatorValue, "initial_accumulator_value value");
    checkNonNegative(eps, "epsilon value");
  }

  /** `sum`. */
  protected stateNames(): readonly string[] {
    return [SUM];
  }

  /** `sum`. */
  protected requiredStateNames(): readonly string[] {
    return [SUM];
  }

  /** `sum`. */
  protected knownStateNames(): readonly string[] {
    return [SUM];
  }

  /** One dispatch: param and sum updated in place. */
  protected update(target: ParameterUpdate, group: GroupHyperparameters<AdagradParamGroup>): void {
    const { lr, lrDecay, eps, weightDecay, initialAccumulatorValue } = group;
    const slot = stepSlot([
      lr / (1 + (target.step - 1) * lrDecay),
      eps,
      weightDecay,
      initialAccumulatorValue,
      target.fresh ? 1 : 0,
    ]);
    encodeUpdate(ADAGRAD_UPDATE, { weightDecay: weightDecay !== 0 }, target, slot);
  }
}
