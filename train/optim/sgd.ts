/**
 * `SGD`, as `torch.optim.SGD`: plain by default, with optional momentum, dampening, Nesterov
 * momentum and L2 weight decay, per parameter group. One fused kernel per parameter updates it
 * (and its momentum buffer) in place (see `updateSpec`: large tensors are read through textures;
 * vec4 stores); the hyperparameters travel in the step's params slot, so changing them between
 * steps (a scheduler's lr or momentum) compiles nothing.
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

const MOMENTUM_BUFFER = "momentum_buffer";

/** Options of `SGD` (PyTorch's names in camelCase): defaults of its parameter groups. */
export interface SGDOptions {
  /** Learning rate (default 1e-3, as PyTorch 2). */
  lr?: number;
  /** Momentum factor (default 0: plain SGD). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false); needs momentum > 0 and dampening 0. */
  nesterov?: boolean;
  /** L2 penalty: `weightDecay · param` is added to the gradient (default 0). */
  weightDecay?: number;
}

/** A parameter group of `SGD`: its parameters and hyperparameters, changeable between steps. */
export interface SGDParamGroup extends ParamGroup {
  /** Momentum factor. */
  momentum: number;
  /** Dampening of the momentum. */
  dampening: number;
  /** Nesterov momentum. */
  nesterov: boolean;
  /** L2 weight decay. */
  weightDecay: number;
}

/** Throws PyTorch's message unless the SGD hyperparameters (other than lr) are valid. */
function validate(
  { momentum, dampening, nesterov, weightDecay }: GroupHyperparameters<SGDParamGroup>,
): void {
  checkNonNegative(momentum, "momentum value");
  checkNonNegative(weightDecay, "weight_decay value");
  if (typeof dampening !== "number" || !Number.isFinite(dampening)) {
    throw new Error(`Invalid dampening value: ${dampening}`);
  }
  if (typeof nesterov !== "boolean") throw new Error(`Invalid nesterov value: ${nesterov}`);
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new Error("Nesterov momentum requires a momentum and zero dampening");
  }
}

/** What the SGD kernel's code depends on: which terms it has. */
interface SgdKernel {
  momentum: boolean;
  nesterov: boolean;
  weightDecay: boolean;
}

/**
 * The SGD update. Params: the group's `lr`, `momentum`, `1 - dampening`, `weight_decay`, and
 * `first_step` (1 when the momentum buffer is new: it starts as the gradient).
 */
const SGD_UPDATE = updateSpec<SgdKernel>({
  name: "sgd",
  key: ({ momentum, nesterov, weightDecay }) =>
    `${momentum ? "m" : ""}${nesterov ? "n" : ""}${weightDecay ? "wd" : ""}`,
  params: "lr: f32, momentum: f32, one_minus_dampening: f32, weight_decay: f32, first_step: f32",
  constants: () => "",
  body: ({ momentum, nesterov, weightDecay }) => /* wgsl */ `
  let p = load_param_data(j);
  var d = load_grad_data(j);
  ${weightDecay ? "d = d + params.weight_decay * p;" : "// no weight decay"}
  ${
    momentum
      ? `var buf = d;
  if (params.first_step == 0.0) {
    buf = params.momentum * load_momentum_buffer(j) + params.one_minus_dampening * d;
  }
  momentum_buffer[j] = buf;
  d = ${nesterov ? "d + params.momentum * buf" : "buf"};`
      : "// no momentum"
  }
  let updated = p - params.lr * d;`,
});

/**
 * Stochastic gradient descent, exactly as `torch.optim.SGD` (`maximize` aside), per parameter
 * group: `d = g + wd·p`; with momentum `buf = d` on a parameter's first step (with momentum),
 * then `buf = μ·buf + (1-dampening)·d`, and `d = d + μ·buf` (Nesterov) or `d = buf`;
 * `p = p - lr·d`.
 *
 * @example Two parameter groups: no weight decay on the biases
 * ```ts ignore
 * const sgd = new SGD([
 *   { params: weights },
 *   { params: biases, weightDecay: 0 },
 * ], { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
 * sgd.paramGroups[1].lr = 0.01; // from the next step on
 * ```
 */
export class SGD extends Optimizer<SGDParamGroup> {
  /**
   * Takes parameters (one group) or parameter groups `{ params, ...options }`; `options` are
   * the groups' defaults. Validates them as PyTorch does (e.g. Nesterov needs momentum, no
   * dampening).
   */
  constructor(params: ParamsInput<SGDOptions>, options: SGDOptions = {}) {
    super(params, {
      lr: options.lr ?? 1e-3,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      nesterov: options.nesterov ?? false,
      weightDecay: options.weightDecay ?? 0,
    });
  }

  /** `"SGD"`. */
  get name(): string {
    return "SGD";
  }

  /** Momentum factor (of the first group). */
  get momentum(): number {
    return this.paramGroups[0].momentum;
  }

  /** Dampening of the momentum (of the first group). */
  get dampening(): number {
    return this.paramGroups[0].dampening;
  }

  /** Whether the momentum is Nesterov's (in the first group). */
  get nesterov(): boolean {
    return this.paramGroups[0].nesterov;
  }

  /** L2 weight decay (of the first group). */
  get weightDecay(): number {
    return this.paramGroups[0].weightDecay;
  }

  /** PyTorch's checks. */
  protected validateGroup(group: GroupHyperparameters<SGDParamGroup>): void {
    validate(group);
  }

  /** `momentum_buffer` when momentum is on, else nothing. */
  protected stateNames(group: GroupHyperparameters<SGDParamGroup>): readonly string[] {
    return group.momentum !== 0 ? [MOMENTUM_BUFFER] : [];
  }

  /** None: the momentum buffer exists only once a step had momentum. */
  protected requiredStateNames(): readonly string[] {
    return [];
  }

  /** `momentum_buffer`. */
  protected knownStateNames(): readonly string[] {
    return [MOMENTUM_BUFFER];
  }

  /** One dispatch: param (and momentum buffer) updated in place. */
  protected update(target: ParameterUpdate, group: GroupHyperparameters<SGDParamGroup>): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = group;
    const slot = stepSlot([
      lr,
      momentum,
      1 - dampening,
      weightDecay,
      target.freshState.has(MOMENTUM_BUFFER) ? 1 : 0,
    ]);
    const kernel = { momentum: momentum !== 0, nesterov, weightDecay: weightDecay !== 0 };
    encodeUpdate(SGD_UPDATE, kernel, target, slot);
  }
}
